//! Helpers shared by several test files: golden JSON as tensors (golden, augment) and the spectral-norm check
//! of the model families (cyclegan, unit, vaegan). Each test crate uses only some of them.
#![allow(dead_code)]

use ganzoo_models::spectral::{spectral_norms, top_singular_value, warm_up};
use serde_json::Value;
use tch::{nn, Tensor};

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
