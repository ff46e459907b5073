//! UNIT networks against the PyTorch rebuild of the authors' layout with the paper's weight sharing
//! (`models/golden/unit_golden.py`, torch 2.11.0, CPU): state_dict names, outputs of tiny networks with the
//! same weights, full-size parameter counts (shared blocks counted once), and that the shared blocks are
//! really one set of weights.

mod common;
use common::max_diff;

use std::collections::BTreeMap;

use ganzoo_models::cyclegan::load_named_tensors;
use ganzoo_models::nets::count_parameters;
use ganzoo_models::optim::{Optimizer, OptimizerConfig};
use ganzoo_models::rng::{derived_rng, randn};
use ganzoo_models::unit::{
    init_generators, kl_unit_variance, Domain, MsImageDis, UnitDiscriminatorConfig, UnitGeneratorConfig, UnitGenerators,
    UnitPadding,
};
use tch::{nn, Device, Kind, Tensor};

const CPU: Device = Device::Cpu;
const TENSORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/unit_golden.safetensors");
const COUNTS: &str = include_str!("../golden/unit_golden.json");

fn tiny_g() -> UnitGeneratorConfig {
    UnitGeneratorConfig { dim: 4, n_downsample: 2, n_res: 3, shared_enc_blocks: 2, shared_dec_blocks: 1, ..Default::default() }
}

fn tiny_d() -> UnitDiscriminatorConfig {
    UnitDiscriminatorConfig { dim: 3, n_layer: 2, num_scales: 2, ..Default::default() }
}

fn golden() -> Vec<(String, Tensor)> {
    Tensor::read_safetensors(TENSORS).expect("golden file reads")
}

fn named(all: &[(String, Tensor)], name: &str) -> Tensor {
    all.iter().find(|(n, _)| n == name).map(|(_, t)| t.shallow_clone()).unwrap_or_else(|| panic!("no {name}"))
}

fn with_prefix(all: &[(String, Tensor)], prefix: &str) -> Vec<(String, Tensor)> {
    all.iter().filter_map(|(n, t)| n.strip_prefix(prefix).map(|r| (r.to_string(), t.shallow_clone()))).collect()
}

#[test]
fn outputs_match_the_pytorch_rebuild() {
    let all = golden();
    let (gvs, dvs) = (nn::VarStore::new(CPU), nn::VarStore::new(CPU));
    let g = UnitGenerators::new(&gvs.root(), &tiny_g(), 3, 16).expect("G builds");
    let d = MsImageDis::new(&dvs.root(), &tiny_d(), 3, 16, false).expect("D builds");
    // Every name and shape agrees (load_named_tensors checks both ways before copying anything).
    load_named_tensors(&gvs, &with_prefix(&all, "G.")).expect("G's state_dict loads by name");
    load_named_tensors(&dvs, &with_prefix(&all, "D.")).expect("D's state_dict loads by name");
    let (x_a, x_b, noise) = (named(&all, "x_a"), named(&all, "x_b"), named(&all, "noise"));
    tch::no_grad(|| {
        let mu_a = g.encode(&x_a, Domain::A);
        let mu_b = g.encode(&x_b, Domain::B);
        assert!(max_diff(&mu_a, &named(&all, "mu_a")) < 1e-4, "EN_A");
        assert!(max_diff(&mu_b, &named(&all, "mu_b")) < 1e-4, "EN_B");
        assert!(max_diff(&g.decode(&(&mu_a + &noise), Domain::B), &named(&all, "ab")) < 1e-4, "DE_B(μ_a + ε)");
        assert!(max_diff(&g.translate(&x_b, Domain::B, Domain::A), &named(&all, "ba")) < 1e-4, "B → A");
        assert!(max_diff(&g.decode(&mu_a, Domain::A), &named(&all, "aa")) < 1e-4, "A → A");
        let kl = kl_unit_variance(&mu_a).view([1]);
        assert!(max_diff(&kl, &named(&all, "kl_a")) < 1e-5, "KL");
        let scores = d.forward(&x_a);
        assert_eq!(scores.len(), 2);
        for (i, s) in scores.iter().enumerate() {
            assert!(max_diff(s, &named(&all, &format!("d_{i}"))) < 1e-4, "D scale {i}");
        }
    });
}

#[test]
fn parameter_counts_match_the_pytorch_rebuild_with_shared_blocks_counted_once() {
    let counts: serde_json::Value = serde_json::from_str(COUNTS).expect("counts parse");
    for (key, shared) in [("shared_1_1", 1), ("shared_0_0", 0)] {
        let vs = nn::VarStore::new(CPU);
        let cfg = UnitGeneratorConfig { shared_enc_blocks: shared, shared_dec_blocks: shared, ..Default::default() };
        UnitGenerators::new(&vs.root(), &cfg, 3, 256).expect("G builds");
        assert_eq!(count_parameters(&vs), counts[key]["G"].as_i64().unwrap(), "G {key}");
        assert_eq!(vs.variables().keys().any(|n| n.starts_with("shared.")), shared > 0, "{key}");
    }
    let vs = nn::VarStore::new(CPU);
    MsImageDis::new(&vs.root(), &UnitDiscriminatorConfig::default(), 3, 256, false).expect("D builds");
    assert_eq!(count_parameters(&vs), counts["shared_1_1"]["D"].as_i64().unwrap(), "D");
    let (gvs, dvs) = (nn::VarStore::new(CPU), nn::VarStore::new(CPU));
    UnitGenerators::new(&gvs.root(), &tiny_g(), 3, 16).unwrap();
    MsImageDis::new(&dvs.root(), &tiny_d(), 3, 16, false).unwrap();
    assert_eq!(count_parameters(&gvs), counts["tiny"]["G"].as_i64().unwrap());
    assert_eq!(count_parameters(&dvs), counts["tiny"]["D"].as_i64().unwrap());
}

/// Copies of the variables whose names start with `prefix`, by name.
fn snapshot(vs: &nn::VarStore, prefix: &str) -> BTreeMap<String, Tensor> {
    vs.variables().into_iter().filter(|(n, _)| n.starts_with(prefix)).map(|(n, t)| (n, t.detach().copy())).collect()
}

#[test]
fn a_step_through_en_a_changes_what_en_b_shared_block_computes() {
    let vs = nn::VarStore::new(CPU);
    let cfg = UnitGeneratorConfig { dim: 4, n_downsample: 1, n_res: 2, shared_enc_blocks: 1, shared_dec_blocks: 1, ..Default::default() };
    let g = UnitGenerators::new(&vs.root(), &cfg, 3, 8).unwrap();
    init_generators(&vs, &mut derived_rng(7, "init", 0));
    let mut opt = Optimizer::new(&vs, &OptimizerConfig::Adam { lr: 1e-2, betas: (0.5, 0.999), eps: 1e-8, weight_decay: 0.0 });
    let mut rng = derived_rng(7, "x", 0);
    let (x_a, x_b) = (randn(&mut rng, &[2, 3, 8, 8], CPU), randn(&mut rng, &[2, 3, 8, 8], CPU));
    let before_b = tch::no_grad(|| g.encode(&x_b, Domain::B));
    let private_b = snapshot(&vs, "gen_b.");
    // A loss on EN_A's output only: gradients reach gen_a's layers and the shared block, nothing of gen_b.
    opt.zero_grad();
    g.encode(&x_a, Domain::A).square().mean(Kind::Float).backward();
    opt.step().unwrap();
    for (name, old) in &private_b {
        let now = vs.variables()[name].detach();
        assert_eq!(max_diff(&now, old), 0.0, "{name} is EN_B's own and must not move");
    }
    let after_b = tch::no_grad(|| g.encode(&x_b, Domain::B));
    assert!(max_diff(&after_b, &before_b) > 1e-4, "EN_B's output moved through the shared block");
    // With no sharing the same step leaves EN_B's output exactly as it was.
    let vs0 = nn::VarStore::new(CPU);
    let g0 = UnitGenerators::new(&vs0.root(), &UnitGeneratorConfig { shared_enc_blocks: 0, shared_dec_blocks: 0, ..cfg }, 3, 8).unwrap();
    init_generators(&vs0, &mut derived_rng(7, "init", 0));
    let mut opt0 = Optimizer::new(&vs0, &OptimizerConfig::Adam { lr: 1e-2, betas: (0.5, 0.999), eps: 1e-8, weight_decay: 0.0 });
    let before0 = tch::no_grad(|| g0.encode(&x_b, Domain::B));
    opt0.zero_grad();
    g0.encode(&x_a, Domain::A).square().mean(Kind::Float).backward();
    opt0.step().unwrap();
    assert_eq!(max_diff(&tch::no_grad(|| g0.encode(&x_b, Domain::B)), &before0), 0.0);
}

#[test]
fn bad_sizes_and_share_counts_are_named() {
    let vs = nn::VarStore::new(CPU);
    let cfg = UnitGeneratorConfig { n_res: 2, shared_enc_blocks: 3, ..Default::default() };
    let e = UnitGenerators::new(&vs.root(), &cfg, 3, 30).unwrap_err().to_string();
    assert!(e.contains("shared_enc_blocks must be in 0..=n_res (2), got 3"), "{e}");
    assert!(e.contains("image side 30 must be a multiple of 2^n_downsample = 4"), "{e}");
    let e = MsImageDis::new(&vs.root(), &UnitDiscriminatorConfig::default(), 3, 32, false).unwrap_err().to_string();
    assert!(e.contains("too small for scale 2"), "{e}");
}

/// The tiny D with `torch.nn.utils.spectral_norm` on every conv (`DSN.*`, converged u, v; reflection padding
/// before the normalized convs): names load one to one, and every scale's map matches in eval mode and after a
/// training-mode forward (one power iteration per weight).
#[test]
fn spectral_norm_discriminator_matches_pytorch() {
    let all = golden();
    let vs = nn::VarStore::new(CPU);
    let d = MsImageDis::new(&vs.root(), &tiny_d(), 3, 16, true).expect("D builds");
    let theirs = with_prefix(&all, "DSN.");
    assert_eq!(theirs.len(), 2 * 3 * 4, "2 scales × 3 convs × (weight_orig, weight_u, weight_v, bias)");
    load_named_tensors(&vs, &theirs).expect("torch.nn.utils.spectral_norm's state_dict loads by name");
    let x_a = named(&all, "x_a");
    tch::no_grad(|| {
        for (mode, train) in [("eval", false), ("train", true)] {
            let maps = d.forward_t(&x_a, train);
            assert_eq!(maps.len(), 2);
            for (i, s) in maps.iter().enumerate() {
                let diff = max_diff(s, &named(&all, &format!("dsn_{mode}_{i}")));
                assert!(diff < 1e-4, "{mode} scale {i}: differs from PyTorch by {diff}");
            }
        }
    });
}

#[test]
fn spectral_norm_discriminator_has_unit_sigma_and_finite_outputs() {
    for pad in [UnitPadding::Reflect, UnitPadding::Zero] {
        let vs = nn::VarStore::new(CPU);
        let cfg = UnitDiscriminatorConfig { pad, ..tiny_d() };
        let d = MsImageDis::new(&vs.root(), &cfg, 3, 16, true).expect("D builds");
        ganzoo_models::init::init_normal(&vs, &mut derived_rng(12, "init", 0), 0.02);
        assert_eq!(common::assert_all_spectrally_normalized(&vs), 6, "{pad:?}");
        let x = randn(&mut derived_rng(12, "x", 0), &[2, 3, 16, 16], CPU);
        for train in [false, true] {
            let maps = tch::no_grad(|| d.forward_t(&x, train));
            assert_eq!(maps.iter().map(|m| m.size()).collect::<Vec<_>>(), vec![vec![2, 1, 4, 4], vec![2, 1, 2, 2]]);
            for m in maps {
                let v = m.abs().max().double_value(&[]);
                assert!(v.is_finite() && v < 10.0, "{pad:?} train {train}: max |score| {v}");
            }
        }
    }
}
