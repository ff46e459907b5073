//! StackGAN networks: outputs equal to the same networks in PyTorch (golden/stackgan_golden.py) in
//! evaluation and training mode, parameter counts at the authors' birds widths, the KL term, shapes at
//! several sizes, and config checks.
mod common;
use common::max_diff;

use std::collections::BTreeMap;

use ganzoo_models::cond::{CondDiscriminator, HeadDesign};
use ganzoo_models::cyclegan::load_named_tensors;
use ganzoo_models::nets::count_parameters;
use ganzoo_models::rng::{derived_rng, randn};
use ganzoo_models::stackgan::{
    kl_loss, Stage1Generator, Stage2Generator, StackDConditioning, StackDOptions, StackDiscriminator, StackGanNetConfig,
};
use tch::{nn, Device, Kind, Tensor};

const CPU: Device = Device::Cpu;
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/stackgan_golden.safetensors");
const GOLDEN_JSON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/stackgan_golden.json");

fn prefixed(all: &BTreeMap<String, Tensor>, prefix: &str) -> Vec<(String, Tensor)> {
    all.iter().filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.shallow_clone()))).collect()
}

fn small() -> StackGanNetConfig {
    StackGanNetConfig { z_dim: 6, ef_dim: 5, gf_dim: 8, df_dim: 4, r_num: 2, stage1_size: 16 }
}

#[test]
fn outputs_match_pytorch_with_reference_weights() {
    let all: BTreeMap<String, Tensor> = Tensor::read_safetensors(GOLDEN).expect("golden reads").into_iter().collect();
    let cfg = small();
    let (z, text, eps, x1, x2) = (&all["z"], &all["text"], &all["eps"], &all["x1"], &all["x2"]);
    let (g1vs, g2vs, d1vs, d2vs) = (nn::VarStore::new(CPU), nn::VarStore::new(CPU), nn::VarStore::new(CPU), nn::VarStore::new(CPU));
    let g1 = Stage1Generator::new(&g1vs.root(), &cfg, 7).expect("G1");
    let g2 = Stage2Generator::new(&g2vs.root(), &cfg, 7).expect("G2");
    let d1 = StackDiscriminator::new(&d1vs.root(), &cfg, 7, &StackDOptions { heads: HeadDesign::Split, ..Default::default() }, false).expect("D1");
    let d2 = StackDiscriminator::new(&d2vs.root(), &cfg, 7, &StackDOptions { heads: HeadDesign::Split, ..Default::default() }, true).expect("D2");
    for (vs, p) in [(&g1vs, "G1."), (&g2vs, "G2."), (&d1vs, "D1."), (&d2vs, "D2.")] {
        load_named_tensors(vs, &prefixed(&all, p)).unwrap_or_else(|e| panic!("{p} loads by name: {e}"));
    }
    tch::no_grad(|| {
        for mode in ["eval", "train"] {
            let train = mode == "train";
            let (img, mu, ls) = g1.forward_t(z, text, eps, train);
            assert_eq!(img.size(), [3, 3, 16, 16]);
            let d = max_diff(&img, &all[&format!("G1_{mode}")]);
            assert!(d < 1e-4, "G1 {mode}: {d}");
            if !train {
                assert!(max_diff(&mu, &all["mu1"]) < 1e-5);
                assert!(max_diff(&ls, &all["logsigma1"]) < 1e-5);
                assert!(max_diff(&kl_loss(&mu, &ls).reshape([1]), &all["kl1"]) < 1e-5);
            }
            let (img2, _, _) = g2.forward_t(x1, text, eps, train);
            assert_eq!(img2.size(), [3, 3, 64, 64]);
            let d = max_diff(&img2, &all[&format!("G2_{mode}")]);
            assert!(d < 1e-4, "G2 {mode}: {d}");
            for (name, dn, x) in [("D1", &d1, x1), ("D2", &d2, x2)] {
                let s = dn.forward_t(x, text, train);
                let m = max_diff(&s.matched, &all[&format!("{name}_{mode}_matched")]);
                let u = max_diff(&s.uncond.expect("split"), &all[&format!("{name}_{mode}_uncond")]);
                assert!(m < 1e-4 && u < 1e-4, "{name} {mode}: matched {m}, uncond {u}");
            }
        }
    });
}

/// D with `d_conditioning: projection`, no batch norm and spectral norm on every weight, against PyTorch's
/// `torch.nn.utils.spectral_norm` (same u, v; train mode runs one power iteration per weight on both sides).
#[test]
fn projection_d_with_spectral_norm_matches_pytorch() {
    let all: BTreeMap<String, Tensor> = Tensor::read_safetensors(GOLDEN).expect("golden reads").into_iter().collect();
    let cfg = small();
    let opts = StackDOptions {
        heads: HeadDesign::Split,
        conditioning: StackDConditioning::Projection,
        batch_norm: false,
        spectral_norm: true,
    };
    let text = &all["text"];
    for (name, x, stage2) in [("D1P", &all["x1"], false), ("D2P", &all["x2"], true)] {
        let vs = nn::VarStore::new(CPU);
        let d = StackDiscriminator::new(&vs.root(), &cfg, 7, &opts, stage2).expect("D");
        let theirs = prefixed(&all, &format!("{name}."));
        assert_eq!(vs.variables().len(), theirs.len(), "{name}: the same tensors (no batch norm, u and v buffers)");
        load_named_tensors(&vs, &theirs).unwrap_or_else(|e| panic!("{name} loads by name: {e}"));
        tch::no_grad(|| {
            for mode in ["eval", "train"] {
                let s = d.forward_t(x, text, mode == "train");
                let m = max_diff(&s.matched, &all[&format!("{name}_{mode}_matched")]);
                let u = max_diff(&s.uncond.expect("split"), &all[&format!("{name}_{mode}_uncond")]);
                assert!(m < 1e-4 && u < 1e-4, "{name} {mode}: matched {m}, uncond {u}");
            }
        });
    }
}

#[test]
fn parameter_counts_at_the_authors_widths_equal_pytorch() {
    let golden: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(GOLDEN_JSON).expect("json")).expect("parses");
    let py = |k: &str| golden["counts"][k].as_i64().expect("count");
    let cfg = StackGanNetConfig::default();
    let count = |build: &dyn Fn(&nn::Path)| {
        let vs = nn::VarStore::new(CPU);
        build(&vs.root());
        count_parameters(&vs)
    };
    assert_eq!(count(&|p| drop(Stage1Generator::new(p, &cfg, 1024).expect("G1"))), py("G1"));
    assert_eq!(count(&|p| drop(Stage2Generator::new(p, &cfg, 1024).expect("G2"))), py("G2"));
    for (key, heads, stage2) in [
        ("D1_joint", HeadDesign::Joint, false),
        ("D1_split", HeadDesign::Split, false),
        ("D2_joint", HeadDesign::Joint, true),
        ("D2_split", HeadDesign::Split, true),
    ] {
        assert_eq!(count(&|p| drop(StackDiscriminator::new(p, &cfg, 1024, &StackDOptions { heads, ..Default::default() }, stage2).expect("D"))), py(key), "{key}");
    }
    let proj = StackDOptions { conditioning: StackDConditioning::Projection, batch_norm: false, spectral_norm: true, ..Default::default() };
    for (key, stage2) in [("D1_projection_sn", false), ("D2_projection_sn", true)] {
        assert_eq!(count(&|p| drop(StackDiscriminator::new(p, &cfg, 1024, &proj, stage2).expect("D"))), py(key), "{key}");
    }
    // Hand count of the CA layer (1024 -> 2·128 with bias) inside G1 and G2.
    let vs = nn::VarStore::new(CPU);
    let _ = Stage1Generator::new(&vs.root(), &cfg, 1024).expect("G1");
    let ca: i64 = vs.variables().iter().filter(|(k, _)| k.starts_with("ca.")).map(|(_, t)| t.numel() as i64).sum();
    assert_eq!(ca, 1024 * 256 + 256);
}

#[test]
fn shapes_at_other_sizes_and_kl_is_zero_only_at_the_prior() {
    for s1 in [16, 32] {
        let cfg = StackGanNetConfig { stage1_size: s1, r_num: 1, ..small() };
        let vs = nn::VarStore::new(CPU);
        let g1 = Stage1Generator::new(&(vs.root() / "g1"), &cfg, 7).expect("G1");
        let g2 = Stage2Generator::new(&(vs.root() / "g2"), &cfg, 7).expect("G2");
        let d1 = StackDiscriminator::new(&(vs.root() / "d1"), &cfg, 7, &StackDOptions::default(), false).expect("D1");
        let d2 = StackDiscriminator::new(&(vs.root() / "d2"), &cfg, 7, &StackDOptions::default(), true).expect("D2");
        let mut rng = derived_rng(3, "t", 0);
        let (z, t, e) = (randn(&mut rng, &[2, 6], CPU), randn(&mut rng, &[2, 7], CPU), randn(&mut rng, &[2, 5], CPU));
        let (x, _, _) = g1.forward_t(&z, &t, &e, true);
        assert_eq!(x.size(), [2, 3, s1, s1]);
        let (y, _, _) = g2.forward_t(&x, &t, &e, true);
        assert_eq!(y.size(), [2, 3, 4 * s1, 4 * s1]);
        assert_eq!(d1.forward_t(&x, &t, true).matched.size(), [2]);
        let s = d2.forward_t(&y, &t, true);
        assert_eq!(s.matched.size(), [2]);
        assert!(s.uncond.is_none());
    }
    let zero = Tensor::zeros([4, 3], (Kind::Float, CPU));
    assert!(kl_loss(&zero, &zero).double_value(&[]).abs() < 1e-7);
    let mu = Tensor::full([4, 3], 0.5, (Kind::Float, CPU));
    // KL per element with σ = 1: μ²/2 = 0.125.
    assert!((kl_loss(&mu, &zero).double_value(&[]) - 0.125).abs() < 1e-6);
}

#[test]
fn bad_widths_are_reported_by_key() {
    let cfg = StackGanNetConfig { gf_dim: 6, stage1_size: 40, df_dim: 0, ..Default::default() };
    let p = cfg.check().join("; ");
    assert!(p.contains("gf_dim must be a multiple of 4"), "{p}");
    assert!(p.contains("stage1_size must be a positive multiple of 16"), "{p}");
    assert!(p.contains("df_dim must be >= 1"), "{p}");
    let vs = nn::VarStore::new(CPU);
    assert!(Stage1Generator::new(&vs.root(), &cfg, 7).is_err());
}
