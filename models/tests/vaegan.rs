//! VAE-GAN networks against the PyTorch rebuild of the authors' layout (`models/golden/vaegan_golden.py`,
//! torch 2.11.0, CPU): outputs of tiny networks with the same weights in training and evaluation mode,
//! the KL and feature-space likelihood terms, batch-norm running statistics, and full-size parameter counts.

mod common;
use common::max_diff;

use ganzoo_models::cyclegan::load_named_tensors;
use ganzoo_models::nets::count_parameters;
use ganzoo_models::rng::{derived_rng, uniform};
use ganzoo_models::spectral::spectral_norms;
use ganzoo_models::vaegan::{
    gaussian_nll, kl_divergence, reparameterize, VaeDecoder, VaeDiscriminator, VaeEncoder, VaeganNetConfig,
};
use tch::{nn, Device, Tensor};

const CPU: Device = Device::Cpu;
const TENSORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/vaegan_golden.safetensors");
const COUNTS: &str = include_str!("../golden/vaegan_golden.json");

fn tiny() -> VaeganNetConfig {
    VaeganNetConfig {
        z_dim: 8,
        enc_channels: vec![4, 6],
        enc_fc: 10,
        dec_fc_channels: 6,
        dec_channels: vec![6, 4],
        dis_first: 3,
        dis_channels: vec![5, 6],
        dis_fc: 7,
        feature_conv: 3,
        ..VaeganNetConfig::default()
    }
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

struct Nets {
    _vs: [nn::VarStore; 3],
    e: VaeEncoder,
    g: VaeDecoder,
    d: VaeDiscriminator,
}

fn loaded(all: &[(String, Tensor)]) -> Nets {
    let cfg = tiny();
    let vs = [nn::VarStore::new(CPU), nn::VarStore::new(CPU), nn::VarStore::new(CPU)];
    let e = VaeEncoder::new(&vs[0].root(), &cfg, 3, 16).expect("E builds");
    let g = VaeDecoder::new(&vs[1].root(), &cfg, 3, 16).expect("Dec builds");
    let d = VaeDiscriminator::new(&vs[2].root(), &cfg, 3, 16, false).expect("Dis builds");
    for (v, prefix) in vs.iter().zip(["E.", "Dec.", "Dis."]) {
        let t: Vec<_> = with_prefix(all, prefix).into_iter().filter(|(n, _)| !n.ends_with("_after")).collect();
        load_named_tensors(v, &t).unwrap_or_else(|e| panic!("{prefix}: {e}"));
    }
    Nets { _vs: vs, e, g, d }
}

#[test]
fn outputs_equal_pytorch_in_eval_and_train_mode() {
    let all = golden();
    let n = loaded(&all);
    let (x, z) = (named(&all, "x"), named(&all, "z"));
    tch::no_grad(|| {
        for (mode, train) in [("eval", false), ("train", true)] {
            let (mu, logvar) = n.e.forward_t(&x, train);
            assert!(max_diff(&mu, &named(&all, &format!("mu_{mode}"))) < 1e-4, "mu {mode}");
            assert!(max_diff(&logvar, &named(&all, &format!("logvar_{mode}"))) < 1e-4, "logvar {mode}");
            let y = n.g.forward_t(&z, train);
            assert!(max_diff(&y, &named(&all, &format!("dec_{mode}"))) < 1e-4, "decoder {mode}");
            let (logits, feat) = n.d.forward_with_features(&x, train);
            assert!(max_diff(&logits, &named(&all, &format!("logits_{mode}"))) < 1e-4, "logits {mode}");
            assert!(max_diff(&feat, &named(&all, &format!("feat_{mode}"))) < 1e-4, "features {mode}");
        }
    });
    // The one train-mode D pass above updated the running mean with momentum 0.1, as PyTorch's did.
    let vars = n._vs[2].variables();
    assert!(max_diff(&vars["bns.0.running_mean"], &named(&all, "Dis.bns.0.running_mean_after")) < 1e-5);
}

#[test]
fn kl_and_feature_likelihood_equal_pytorch() {
    let all = golden();
    let n = loaded(&all);
    let x = named(&all, "x");
    tch::no_grad(|| {
        let (mu, logvar) = n.e.forward_t(&x, false);
        let kl = kl_divergence(&mu, &logvar);
        assert!((kl.double_value(&[]) - named(&all, "kl").double_value(&[0])).abs() < 1e-4);
        let x_rec = n.g.forward_t(&reparameterize(&mu, &logvar, &named(&all, "eps")), false);
        let llike = gaussian_nll(&n.d.features_t(&x_rec, false), &n.d.features_t(&x, false), 1.0);
        assert!((llike.double_value(&[]) - named(&all, "llike").double_value(&[0])).abs() < 1e-4);
    });
}

#[test]
fn features_only_pass_equals_the_full_pass_at_every_layer() {
    let all = golden();
    let x = named(&all, "x");
    for k in 1..=3 {
        let cfg = VaeganNetConfig { feature_conv: k, ..tiny() };
        let vs = nn::VarStore::new(CPU);
        let d = VaeDiscriminator::new(&vs.root(), &cfg, 3, 16, false).expect("D builds");
        let t: Vec<_> = with_prefix(&all, "Dis.").into_iter().filter(|(n, _)| !n.ends_with("_after")).collect();
        load_named_tensors(&vs, &t).expect("loads");
        tch::no_grad(|| {
            let (_, full) = d.forward_with_features(&x, false);
            let only = d.features_t(&x, false);
            assert_eq!(only.size()[1], cfg.feature_size(16), "feature_conv {k}");
            assert!(max_diff(&full, &only) < 1e-6, "feature_conv {k}");
        });
    }
    // Layer 3 of the tiny D is the golden one.
    let feat3 = named(&all, "feat_eval");
    assert_eq!(feat3.size()[1], tiny().feature_size(16));
}

#[test]
fn full_size_parameter_counts_equal_the_pytorch_rebuild() {
    let counts: serde_json::Value = serde_json::from_str(COUNTS).expect("json");
    let cfg = VaeganNetConfig::default();
    let vs = [nn::VarStore::new(CPU), nn::VarStore::new(CPU), nn::VarStore::new(CPU)];
    VaeEncoder::new(&vs[0].root(), &cfg, 3, 64).expect("E");
    VaeDecoder::new(&vs[1].root(), &cfg, 3, 64).expect("Dec");
    let d = VaeDiscriminator::new(&vs[2].root(), &cfg, 3, 64, false).expect("Dis");
    for (v, name) in vs.iter().zip(["E", "Dec", "Dis"]) {
        assert_eq!(Some(count_parameters(v)), counts["parameters_64x64_rgb"][name].as_i64(), "{name}");
    }
    // The authors' similarity layer: D's 4th convolution, 256 channels at 8×8.
    let f = tch::no_grad(|| d.features_t(&Tensor::zeros([2, 3, 64, 64], (tch::Kind::Float, CPU)), false));
    assert_eq!(f.size(), vec![2, 256 * 8 * 8]);
}

#[test]
fn bad_configs_are_named() {
    let cfg = VaeganNetConfig { feature_conv: 9, ..VaeganNetConfig::default() };
    let p = cfg.check(3, 64);
    assert!(p.iter().any(|m| m.contains("feature_conv")), "{p:?}");
    let p = VaeganNetConfig::default().check(3, 28);
    assert!(p.iter().any(|m| m.contains("divisible by 8, got 28")), "{p:?}");
    let vs = nn::VarStore::new(CPU);
    let err = VaeEncoder::new(&vs.root(), &VaeganNetConfig::default(), 3, 20).unwrap_err().to_string();
    assert!(err.contains("vaegan") && err.contains("20"), "{err}");
}

/// D with `torch.nn.utils.spectral_norm` on every conv and linear (`DisSN.*`, converged u, v, batch norms
/// kept): names load one to one; logits and similarity features match in eval mode and after a training-mode
/// pass (one power iteration per weight, batch statistics).
#[test]
fn spectral_norm_discriminator_matches_pytorch() {
    let all = golden();
    let vs = nn::VarStore::new(CPU);
    let d = VaeDiscriminator::new(&vs.root(), &tiny(), 3, 16, true).expect("D builds");
    load_named_tensors(&vs, &with_prefix(&all, "DisSN.")).expect("spectral_norm's state_dict loads by name");
    let x = named(&all, "x");
    tch::no_grad(|| {
        for (mode, train) in [("eval", false), ("train", true)] {
            let (logits, feat) = d.forward_with_features(&x, train);
            let dl = max_diff(&logits, &named(&all, &format!("sn_logits_{mode}")));
            let df = max_diff(&feat, &named(&all, &format!("sn_feat_{mode}")));
            assert!(dl < 1e-4 && df < 1e-4, "{mode}: logits differ by {dl}, features by {df}");
        }
    });
}

#[test]
fn spectral_norm_discriminator_has_unit_sigma_and_its_feature_pass_iterates_only_the_layers_it_runs() {
    let cfg = VaeganNetConfig { feature_conv: 2, ..tiny() };
    let vs = nn::VarStore::new(CPU);
    let d = VaeDiscriminator::new(&vs.root(), &cfg, 3, 16, true).expect("D builds");
    ganzoo_models::init::init_dcgan(&vs, &mut derived_rng(13, "init", 0));
    let x = uniform(&mut derived_rng(13, "x", 0), &[4, 3, 16, 16], -1.0, 1.0, CPU);
    let us = || -> Vec<(String, Tensor)> { spectral_norms(&vs).into_iter().map(|(n, sn)| (n, sn.u.copy())).collect() };
    let moved = |before: &[(String, Tensor)]| -> Vec<String> {
        let after = us();
        before.iter().zip(&after).filter(|((_, a), (_, b))| max_diff(a, b) > 0.0).map(|((n, _), _)| n.clone()).collect()
    };
    // Evaluation never iterates; the feature pass in training mode iterates conv0 and convs.0 (the features
    // are convs.0's output), not convs.1, fc or out.
    let before = us();
    let f_eval = tch::no_grad(|| d.features_t(&x, false));
    assert!(moved(&before).is_empty());
    let f_train = tch::no_grad(|| d.features_t(&x, true));
    assert_eq!(moved(&before), vec!["conv0.".to_string(), "convs.0.".to_string()]);
    assert_eq!(f_eval.size(), vec![4, cfg.feature_size(16)]);
    assert_eq!(f_train.size(), f_eval.size());
    assert_eq!(common::assert_all_spectrally_normalized(&vs), 5);
    // After warm-up: finite, moderate scores, and the feature pass equals the full pass's features.
    tch::no_grad(|| {
        let (logits, feats) = d.forward_with_features(&x, false);
        let m = logits.abs().max().double_value(&[]);
        assert!(m.is_finite() && m < 10.0, "max |logit| {m}");
        assert!(max_diff(&feats, &d.features_t(&x, false)) < 1e-6);
    });
}
