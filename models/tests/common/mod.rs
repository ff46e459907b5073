//! Checks shared by the spectral-norm tests of the model families (cyclegan, unit, vaegan).

use ganzoo_models::spectral::{spectral_norms, top_singular_value, warm_up};
use tch::nn;

/// Every weight matrix of `vs` is spectrally normalized (no 2+-D `*.weight` is left; 1-D batch-norm scales
/// are not weights of a linear map), and after [`warm_up`] each normalized weight W/σ(W) has top singular
/// value 1 (relative 1e-3, against an exact eigenvalue computation). Returns how many there are.
pub fn assert_all_spectrally_normalized(vs: &nn::VarStore) -> usize {
    let plain: Vec<String> =
        vs.variables().into_iter().filter(|(n, t)| n.ends_with(".weight") && t.dim() >= 2).map(|(n, _)| n).collect();
    assert!(plain.is_empty(), "weights without spectral norm: {plain:?}");
    warm_up(vs, 100);
    let sns = spectral_norms(vs);
    for (name, sn) in &sns {
        let s = top_singular_value(&sn.weight(false));
        assert!((s - 1.0).abs() < 1e-3, "{name}: top singular value of W/σ(W) is {s}");
    }
    sns.len()
}
