//! pix2pix networks against the reference PyTorch code (junyanz/pytorch-CycleGAN-and-pix2pix), as rebuilt by
//! `models/golden/pix2pix_golden.py` (torch 2.11.0, CPU): state_dict names, shapes and parameter counts
//! (`pix2pix_golden.json`), and the outputs, losses and gradients of small networks with the reference's
//! weights (`pix2pix_golden.safetensors`).

mod common;
use common::max_diff;

use std::collections::BTreeMap;

use ganzoo_models::cyclegan::{load_named_tensors, Norm, PatchDiscriminator, PatchDiscriminatorConfig};
use ganzoo_models::losses::{AdvLoss, Target};
use ganzoo_models::nets::count_parameters;
use ganzoo_models::pix2pix::{Run, UnetGenerator, UnetGeneratorConfig};
use ganzoo_models::rng::derived_rng;
use serde_json::Value;
use tch::{nn, Device, Kind, Tensor};

const CPU: Device = Device::Cpu;
const LAYOUTS: &str = include_str!("../golden/pix2pix_golden.json");
const TENSORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/pix2pix_golden.safetensors");

fn reference_keys(layout: &Value) -> BTreeMap<String, Vec<i64>> {
    layout["state_dict"]
        .as_array()
        .expect("state_dict list")
        .iter()
        .map(|kv| (kv[0].as_str().expect("name").to_string(), kv[1].as_array().expect("shape").iter().map(|d| d.as_i64().expect("dim")).collect()))
        .filter(|(n, _): &(String, Vec<i64>)| !n.ends_with(".num_batches_tracked"))
        .collect()
}

fn store_keys(vs: &nn::VarStore) -> BTreeMap<String, Vec<i64>> {
    vs.variables().into_iter().map(|(n, t)| (n, t.size())).collect()
}

fn pix2pix_d(ndf: i64) -> PatchDiscriminatorConfig {
    PatchDiscriminatorConfig { ndf, n_layers: 3, norm: Norm::Batch, antialias: false }
}

/// Relative to the reference's largest magnitude (losses of 50 and gradients of 10 are compared like outputs
/// of 1).
fn rel_diff(got: &Tensor, want: &Tensor) -> f64 {
    let scale = want.abs().max().double_value(&[]).max(1.0);
    (got.to_kind(Kind::Double) - want.to_kind(Kind::Double)).abs().max().double_value(&[]) / scale
}

#[test]
fn names_shapes_and_counts_equal_the_reference() {
    let l: Value = serde_json::from_str(LAYOUTS).expect("pix2pix_golden.json parses");
    let gens = [
        ("g_unet_256", UnetGeneratorConfig::unet_256()),
        ("g_unet_128", UnetGeneratorConfig::unet_128()),
        ("g_unet_256_instance", UnetGeneratorConfig { norm: Norm::Instance, ..UnetGeneratorConfig::unet_256() }),
    ];
    for (key, cfg) in gens {
        let vs = nn::VarStore::new(CPU);
        cfg.build(&vs.root(), 3, 3).expect("G builds");
        assert_eq!(store_keys(&vs), reference_keys(&l[key]), "{key}");
        assert_eq!(Some(count_parameters(&vs)), l[key]["parameters"].as_i64(), "{key}");
    }
    assert_eq!(l["g_unet_256"]["parameters"].as_i64(), Some(54_413_955));
    let vs = nn::VarStore::new(CPU);
    PatchDiscriminator::new(&vs.root(), &pix2pix_d(64), 6, false).expect("D builds");
    assert_eq!(store_keys(&vs), reference_keys(&l["d_pix2pix"]));
    assert_eq!(count_parameters(&vs), 2_768_705);
}

#[test]
fn outputs_losses_and_gradients_match_pytorch() {
    let all = Tensor::read_safetensors(TENSORS).expect("golden file reads");
    let get = |name: &str| all.iter().find(|(n, _)| n == name).map(|(_, t)| t.shallow_clone()).unwrap_or_else(|| panic!("no {name}"));
    let prefixed = |p: &str| -> Vec<(String, Tensor)> { all.iter().filter_map(|(n, t)| n.strip_prefix(p).map(|r| (r.to_string(), t.shallow_clone()))).collect() };
    let gvs = nn::VarStore::new(CPU);
    let g_cfg = UnetGeneratorConfig { ngf: 8, num_downs: 6, norm: Norm::Batch, dropout: true };
    let g = UnetGenerator::new(&gvs.root(), &g_cfg, 3, 3).expect("G builds");
    load_named_tensors(&gvs, &prefixed("G.")).expect("G takes the reference weights");
    let mut dvs = nn::VarStore::new(CPU);
    let d = PatchDiscriminator::new(&dvs.root(), &pix2pix_d(8), 6, false).expect("D builds");
    load_named_tensors(&dvs, &prefixed("D.")).expect("D takes the reference weights");
    let (a, b) = (get("A"), get("B"));

    let eval = tch::no_grad(|| g.forward(&a, Run::Eval, None));
    assert!(max_diff(&eval, &get("G_eval")) < 1e-4, "eval mode: {}", max_diff(&eval, &get("G_eval")));
    // The paper's test time: the same batch statistics as training, running averages untouched.
    let before = gvs.variables()["model.model.1.model.2.running_mean"].copy();
    let test = tch::no_grad(|| g.forward(&a, Run::Test, None));
    assert!(max_diff(&test, &get("G_train")) < 1e-4, "test mode: {}", max_diff(&test, &get("G_train")));
    assert_eq!(gvs.variables()["model.model.1.model.2.running_mean"], before, "Run::Test changed a running mean");

    let fake = g.forward(&a, Run::Train, None); // dropout off without noise, as the golden copy
    assert!(max_diff(&fake, &get("G_train")) < 1e-4, "train mode: {}", max_diff(&fake, &get("G_train")));
    let rm = gvs.variables()["model.model.1.model.2.running_mean"].copy();
    assert!(max_diff(&rm, &get("G_running_mean_after")) < 1e-5, "running mean after one forward");

    let adv = AdvLoss::NonSaturating;
    let pred_fake = d.forward_t(&Tensor::cat(&[&a, &fake.detach()], 1), true);
    let pred_real = d.forward_t(&Tensor::cat(&[&a, &b], 1), true);
    assert!(max_diff(&pred_real, &get("D_real")) < 1e-4);
    assert!(max_diff(&pred_fake, &get("D_fake")) < 1e-4);
    let loss_d = (adv.d_term(&pred_fake, Target::Fake) + adv.d_term(&pred_real, Target::Real)) * 0.5;
    loss_d.backward();
    let d_first = dvs.variables()["model.0.weight"].grad();
    assert!(rel_diff(&loss_d, &get("loss_D")) < 1e-4, "loss_D {loss_d}");
    assert!(rel_diff(&d_first, &get("grad_D_first")) < 1e-4, "grad D: {}", rel_diff(&d_first, &get("grad_D_first")));
    dvs.freeze();
    let pred = d.forward_t(&Tensor::cat(&[&a, &fake], 1), true);
    let loss_g = adv.g_loss(&pred) + (&fake - &b).abs().mean(Kind::Float) * 100.0;
    loss_g.backward();
    let g_first = gvs.variables()["model.model.0.weight"].grad();
    assert!(rel_diff(&loss_g, &get("loss_G")) < 1e-4, "loss_G {loss_g}");
    assert!(rel_diff(&g_first, &get("grad_G_first")) < 1e-4, "grad G: {}", rel_diff(&g_first, &get("grad_G_first")));
}

#[test]
fn dropout_noise_is_seeded_and_only_in_training_and_test() {
    let vs = nn::VarStore::new(CPU);
    let cfg = UnetGeneratorConfig { ngf: 4, num_downs: 6, ..UnetGeneratorConfig::default() };
    let g = cfg.build(&vs.root(), 3, 3).expect("G builds");
    let x = ganzoo_models::rng::uniform(&mut derived_rng(1, "x", 0), &[2, 3, 64, 64], -1.0, 1.0, CPU);
    tch::no_grad(|| {
        let run = |seed: u64| g.forward(&x, Run::Test, Some(&mut derived_rng(seed, "noise", 0)));
        assert_eq!(run(1), run(1), "the same noise seed gives the same output");
        assert!(max_diff(&run(1), &run(2)) > 1e-4, "dropout noise changes the output");
        let eval = |seed: u64| g.forward(&x, Run::Eval, Some(&mut derived_rng(seed, "noise", 0)));
        assert_eq!(eval(1), eval(2), "no dropout in evaluation mode");
    });
    // Sides that are not a multiple of 2^num_downs are what the family's config check refuses.
    assert_eq!(cfg.side_multiple(), 64);
    assert!(!UnetGeneratorConfig { num_downs: 4, ..cfg }.check(3, 3).is_empty());
}
