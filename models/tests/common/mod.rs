//! Helpers shared by several test files: the difference to a (well-conditioned) reference, golden JSON as
//! tensors (golden, augment), the spectral-norm check of the model families (cyclegan, unit, vaegan) and the
//! cached pretrained files (minilm, inception). Each test crate uses only some of them.
#![allow(dead_code)]

use ganzoo_models::spectral::{spectral_norms, top_singular_value, warm_up};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tch::{nn, Kind, Tensor};

/// The largest absolute difference between `got` and the reference `want` (same shape; compared in float64).
/// The tests' tolerances (1e-4 and finer) are absolute on values of order 1, so the reference must be
/// well-conditioned: a reference above 1e3 in magnitude (where one float32 step is already 6e-5) fails here,
/// naming its scale, instead of letting a test pass only on the CPU that wrote the golden file.
pub fn max_diff(got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.size(), want.size(), "shapes differ");
    let want = want.to_kind(Kind::Double);
    let scale = want.abs().max().double_value(&[]);
    assert!(scale < 1e3, "ill-conditioned reference: values up to {scale:e}; a fixed tolerance means nothing there");
    (got.to_kind(Kind::Double) - want).abs().max().double_value(&[])
}

/// Every number of a (nested) JSON array, flattened in order.
pub fn to_vec(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(to_vec).collect(),
        Value::Number(n) => vec![n.as_f64().expect("number")],
        other => panic!("not numeric: {other}"),
    }
}

/// The shape of a nested JSON array (its first element's, at each depth).
pub fn shape(v: &Value) -> Vec<i64> {
    match v {
        Value::Array(a) => std::iter::once(a.len() as i64).chain(a.first().map(shape).unwrap_or_default()).collect(),
        _ => vec![],
    }
}

/// A nested JSON array as a float64 tensor of its shape.
pub fn tensor(v: &Value) -> Tensor {
    Tensor::from_slice(&to_vec(v)).reshape(shape(v).as_slice())
}

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

/// `<cache>/<rel>`, the cache being `$GANZOO_CACHE` (default `<workspace>/.ganzoo-cache`), for the tests of a
/// pretrained network (`what`) that `ganzoo data get <dataset>` fetches. `None`, said on stderr, when `skip_var`
/// is `1`; when the file is missing it panics with the command to run, so such a test never passes silently.
pub fn cached_file(rel: &str, what: &str, dataset: &str, skip_var: &str) -> Option<PathBuf> {
    if std::env::var(skip_var).is_ok_and(|v| v == "1") {
        eprintln!("{skip_var}=1: skipping the {what} test");
        return None;
    }
    let cache = match std::env::var_os("GANZOO_CACHE") {
        Some(c) if !c.is_empty() => PathBuf::from(c),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ganzoo-cache"),
    };
    let file = cache.join(rel);
    if !file.is_file() {
        panic!(
            "{what} not found: {} is missing; run `ganzoo data get {dataset} --cache DIR` and set GANZOO_CACHE=DIR \
             (default <workspace>/.ganzoo-cache), or set {skip_var}=1 to skip this test",
            file.display()
        );
    }
    Some(file)
}
