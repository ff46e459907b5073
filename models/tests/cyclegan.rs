//! CycleGAN networks against the reference PyTorch code (junyanz/pytorch-CycleGAN-and-pix2pix), as rebuilt
//! by `models/golden/cyclegan_golden.py` (torch 2.11.0, CPU): state_dict names, shapes and parameter
//! counts (`cyclegan_golden.json`), and outputs of small networks with the reference's weights
//! (`cyclegan_golden.safetensors`).

mod common;
use common::max_diff;

use std::collections::BTreeMap;

use ganzoo_models::cyclegan::{
    load_named_tensors, Norm, Padding, PatchDiscriminator, PatchDiscriminatorConfig,
    ResnetGenerator, ResnetGeneratorConfig,
};
use ganzoo_models::init::init_normal;
use ganzoo_models::nets::count_parameters;
use ganzoo_models::rng::{derived_rng, uniform};
use ganzoo_models::ModelError;
use serde_json::Value;
use tch::{nn, Device, Kind, Tensor};

const CPU: Device = Device::Cpu;
const LAYOUTS: &str = include_str!("../golden/cyclegan_golden.json");
const TENSORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/golden/cyclegan_golden.safetensors"
);

fn layouts() -> Value {
    serde_json::from_str(LAYOUTS).expect("cyclegan_golden.json parses")
}

/// The reference state_dict of one layout as name -> shape, without BatchNorm's `num_batches_tracked`
/// (which tch does not have and `load_named_tensors` ignores).
fn reference_keys(layout: &Value) -> BTreeMap<String, Vec<i64>> {
    layout["state_dict"]
        .as_array()
        .expect("state_dict list")
        .iter()
        .map(|kv| {
            let name = kv[0].as_str().expect("name").to_string();
            let shape = kv[1]
                .as_array()
                .expect("shape")
                .iter()
                .map(|d| d.as_i64().expect("dim"))
                .collect();
            (name, shape)
        })
        .filter(|(n, _)| !n.ends_with(".num_batches_tracked"))
        .collect()
}

fn store_keys(vs: &nn::VarStore) -> BTreeMap<String, Vec<i64>> {
    vs.variables()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect()
}

fn generator(cfg: &ResnetGeneratorConfig) -> (nn::VarStore, ResnetGenerator) {
    let vs = nn::VarStore::new(CPU);
    let g = ResnetGenerator::new(&vs.root(), cfg, 3, 3).expect("G builds");
    (vs, g)
}

fn discriminator(cfg: &PatchDiscriminatorConfig) -> (nn::VarStore, PatchDiscriminator) {
    let vs = nn::VarStore::new(CPU);
    let d = PatchDiscriminator::new(&vs.root(), cfg, 3, false).expect("D builds");
    (vs, d)
}

#[test]
fn parameter_counts_match_the_reference() {
    let (gvs, _) = generator(&ResnetGeneratorConfig::resnet_9blocks());
    assert_eq!(count_parameters(&gvs), 11_378_179, "G resnet_9blocks");
    let (gvs, _) = generator(&ResnetGeneratorConfig::resnet_6blocks());
    assert_eq!(count_parameters(&gvs), 7_837_699, "G resnet_6blocks");
    let (dvs, _) = discriminator(&PatchDiscriminatorConfig::default());
    assert_eq!(count_parameters(&dvs), 2_764_737, "D n_layers 3");
}

#[test]
fn names_and_shapes_equal_the_reference_state_dicts() {
    let l = layouts();
    let g6 = ResnetGeneratorConfig::resnet_6blocks();
    let gens = [
        ("g_9blocks", ResnetGeneratorConfig::resnet_9blocks()),
        ("g_6blocks", g6.clone()),
        (
            "g_6blocks_dropout",
            ResnetGeneratorConfig {
                dropout: true,
                ..g6.clone()
            },
        ),
        (
            "g_6blocks_batch",
            ResnetGeneratorConfig {
                norm: Norm::Batch,
                ..g6.clone()
            },
        ),
        (
            "g_6blocks_none",
            ResnetGeneratorConfig {
                norm: Norm::None,
                ..g6.clone()
            },
        ),
        (
            "g_6blocks_zero",
            ResnetGeneratorConfig {
                padding: Padding::Zero,
                ..g6.clone()
            },
        ),
    ];
    for (key, cfg) in gens {
        let (vs, _) = generator(&cfg);
        assert_eq!(store_keys(&vs), reference_keys(&l[key]), "{key}");
        assert_eq!(
            Some(count_parameters(&vs)),
            l[key]["parameters"].as_i64(),
            "{key}"
        );
    }
    let d3 = PatchDiscriminatorConfig::default();
    let discs = [
        ("d_3layers", d3.clone()),
        (
            "d_3layers_batch",
            PatchDiscriminatorConfig {
                norm: Norm::Batch,
                ..d3.clone()
            },
        ),
        (
            "d_5layers",
            PatchDiscriminatorConfig {
                n_layers: 5,
                ..d3.clone()
            },
        ),
    ];
    for (key, cfg) in discs {
        let (vs, _) = discriminator(&cfg);
        assert_eq!(store_keys(&vs), reference_keys(&l[key]), "{key}");
        assert_eq!(
            Some(count_parameters(&vs)),
            l[key]["parameters"].as_i64(),
            "{key}"
        );
    }
}

#[test]
fn full_size_shapes_at_256() {
    let d_cfg = PatchDiscriminatorConfig::default();
    assert_eq!(d_cfg.output_size(256), Some(30));
    assert_eq!(
        layouts()["d_3layers"]["output_shape_256"],
        serde_json::json!([1, 1, 30, 30])
    );
    let (_gvs, g) = generator(&ResnetGeneratorConfig::resnet_9blocks());
    let (_dvs, d) = discriminator(&d_cfg);
    let x = uniform(
        &mut derived_rng(3, "x", 0),
        &[1, 3, 256, 256],
        -1.0,
        1.0,
        CPU,
    );
    tch::no_grad(|| {
        let y = g.forward_t(&x, false);
        assert_eq!(y.size(), vec![1, 3, 256, 256]);
        assert!(y.abs().max().double_value(&[]) <= 1.0);
        assert_eq!(d.forward_t(&y, false).size(), vec![1, 1, 30, 30]);
    });
}

/// The tensors of the golden file whose names start with `prefix`, with the prefix removed.
fn with_prefix(all: &[(String, Tensor)], prefix: &str) -> Vec<(String, Tensor)> {
    all.iter()
        .filter_map(|(n, t)| {
            n.strip_prefix(prefix)
                .map(|rest| (rest.to_string(), t.shallow_clone()))
        })
        .collect()
}

fn named(all: &[(String, Tensor)], name: &str) -> Tensor {
    all.iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t.shallow_clone())
        .unwrap_or_else(|| panic!("golden file has no {name}"))
}

#[test]
fn outputs_match_pytorch_with_reference_weights() {
    let all = Tensor::read_safetensors(TENSORS).expect("golden safetensors reads");
    let x = named(&all, "input");
    let g_cfg = ResnetGeneratorConfig {
        ngf: 8,
        ..ResnetGeneratorConfig::resnet_6blocks()
    };
    let (gvs, g) = generator(&g_cfg);
    load_named_tensors(&gvs, &with_prefix(&all, "G.")).expect("G weights load");
    let d_cfg = PatchDiscriminatorConfig {
        ndf: 8,
        ..Default::default()
    };
    let (dvs, d) = discriminator(&d_cfg);
    load_named_tensors(&dvs, &with_prefix(&all, "D.")).expect("D weights load");
    let (g_ref, d_ref) = (named(&all, "G_out"), named(&all, "D_out"));
    tch::no_grad(|| {
        // Instance norm without running stats: training and evaluation give the same output.
        for train in [false, true] {
            let dg = max_diff(&g.forward_t(&x, train), &g_ref);
            assert!(dg < 1e-4, "G (train {train}) differs from PyTorch by {dg}");
            let dd = max_diff(&d.forward_t(&x, train), &d_ref);
            assert!(dd < 1e-4, "D (train {train}) differs from PyTorch by {dd}");
        }
    });
}

#[test]
fn load_errors_name_every_mismatched_tensor_and_load_nothing() {
    let all = Tensor::read_safetensors(TENSORS).expect("golden safetensors reads");
    let mut d_tensors = with_prefix(&all, "D.");
    let d_cfg = PatchDiscriminatorConfig {
        ndf: 8,
        ..Default::default()
    };
    let (dvs, _) = discriminator(&d_cfg);
    let before = dvs.variables()["model.0.weight"].copy();
    d_tensors.retain(|(n, _)| n != "model.11.bias"); // missing
    d_tensors.push((
        "model.12.weight".into(),
        Tensor::zeros([1, 4], (Kind::Float, CPU)),
    )); // unexpected
    for (n, t) in d_tensors.iter_mut() {
        if n == "model.5.weight" {
            *t = Tensor::zeros([32, 16, 3, 3], (Kind::Float, CPU)); // mis-shaped
        }
    }
    let err = load_named_tensors(&dvs, &d_tensors).expect_err("mismatch must fail");
    let msg = err.to_string();
    assert!(matches!(err, ModelError::State(_)), "{msg}");
    for needle in [
        "missing model.11.bias [1]",
        "unexpected model.12.weight [1, 4]",
        "mis-shaped model.5.weight: store [32, 16, 4, 4], given [32, 16, 3, 3]",
        "3 problem(s)",
    ] {
        assert!(msg.contains(needle), "{needle:?} not in: {msg}");
    }
    let after = dvs.variables()["model.0.weight"].shallow_clone();
    assert_eq!(max_diff(&before, &after), 0.0, "nothing may be loaded");

    // BatchNorm's num_batches_tracked (int64 in PyTorch) is accepted and ignored; running stats load.
    let (bvs, _) = discriminator(&PatchDiscriminatorConfig {
        ndf: 4,
        norm: Norm::Batch,
        ..Default::default()
    });
    let mut sd: Vec<(String, Tensor)> = bvs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.detach().ones_like() * 0.5))
        .collect();
    sd.push((
        "model.3.num_batches_tracked".into(),
        Tensor::from_slice(&[7i64]).reshape([] as [i64; 0]),
    ));
    load_named_tensors(&bvs, &sd).expect("batch-norm state loads");
    let rv = bvs.variables()["model.3.running_var"].shallow_clone();
    assert_eq!(rv.mean(Kind::Float).double_value(&[]), 0.5);
}

#[test]
fn configs_default_to_cyclegan_and_reject_unknown_keys() {
    let g: ResnetGeneratorConfig = serde_json::from_str("{}").expect("defaults");
    assert_eq!(g, ResnetGeneratorConfig::resnet_9blocks());
    assert_eq!(
        (g.ngf, g.n_blocks, g.norm, g.dropout, g.padding),
        (64, 9, Norm::Instance, false, Padding::Reflect)
    );
    let g: ResnetGeneratorConfig =
        serde_json::from_str(r#"{"n_blocks": 6, "norm": "batch", "padding": "zero"}"#)
            .expect("parses");
    assert_eq!(
        (g.n_blocks, g.norm, g.padding),
        (6, Norm::Batch, Padding::Zero)
    );
    assert!(serde_json::from_str::<ResnetGeneratorConfig>(r#"{"blocks": 6}"#).is_err());
    assert!(serde_json::from_str::<ResnetGeneratorConfig>(r#"{"norm": "group"}"#).is_err());
    let d: PatchDiscriminatorConfig = serde_json::from_str(r#"{"norm": "none"}"#).expect("parses");
    assert_eq!((d.ndf, d.n_layers, d.norm), (64, 3, Norm::None));
    assert!(serde_json::from_str::<PatchDiscriminatorConfig>(r#"{"layers": 3}"#).is_err());

    let vs = nn::VarStore::new(CPU);
    let bad = ResnetGeneratorConfig {
        ngf: 0,
        n_blocks: -1,
        ..Default::default()
    };
    let msg = match ResnetGenerator::new(&vs.root(), &bad, 3, 3) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("ngf 0 must fail"),
    };
    assert!(
        msg.contains("ngf must be >= 1") && msg.contains("n_blocks must be >= 0"),
        "{msg}"
    );
    let bad = PatchDiscriminatorConfig {
        n_layers: 0,
        ..Default::default()
    };
    assert!(PatchDiscriminator::new(&vs.root(), &bad, 3, false).is_err());
    assert_eq!(PatchDiscriminatorConfig::default().output_size(16), None);
}

#[test]
fn dropout_is_seeded_and_only_active_in_training() {
    let cfg = ResnetGeneratorConfig {
        ngf: 4,
        n_blocks: 2,
        dropout: true,
        ..Default::default()
    };
    let run = || {
        let (vs, g) = generator(&cfg);
        init_normal(&vs, &mut derived_rng(5, "init", 0), 0.02);
        let x = uniform(&mut derived_rng(5, "x", 0), &[2, 3, 16, 16], -1.0, 1.0, CPU);
        tch::no_grad(|| {
            let train = g.forward_t(&x, true);
            let eval = g.forward_t(&x, false);
            (train, eval, g.forward_t(&x, false))
        })
    };
    let (train_a, eval_a, eval_a2) = run();
    let (train_b, _, _) = run();
    assert_eq!(train_a.size(), vec![2, 3, 16, 16]);
    assert_eq!(
        max_diff(&eval_a, &eval_a2),
        0.0,
        "eval is deterministic"
    );
    assert!(
        max_diff(&train_a, &eval_a) > 0.0,
        "dropout acts in training"
    );
    assert_eq!(
        max_diff(&train_a, &train_b),
        0.0,
        "masks come from a seeded stream"
    );
}

/// The PatchGAN D with `torch.nn.utils.spectral_norm` on every conv (`DSN.*` in the golden file, converged u, v):
/// names load one to one, and eval, training-mode (one power iteration) outputs and the updated u match.
#[test]
fn spectral_norm_patch_discriminator_matches_pytorch() {
    let all = Tensor::read_safetensors(TENSORS).expect("golden safetensors reads");
    let cfg = PatchDiscriminatorConfig { ndf: 8, ..Default::default() };
    let vs = nn::VarStore::new(CPU);
    let d = PatchDiscriminator::new(&vs.root(), &cfg, 3, true).expect("D builds");
    let theirs = with_prefix(&all, "DSN.");
    assert_eq!(theirs.len(), 5 * 4, "weight_orig, weight_u, weight_v and bias of 5 convs");
    load_named_tensors(&vs, &theirs).expect("torch.nn.utils.spectral_norm's state_dict loads by name");
    let x = named(&all, "input");
    tch::no_grad(|| {
        let eval = d.forward_t(&x, false);
        assert_eq!(eval.size(), vec![1, 1, 2, 2]);
        let de = max_diff(&eval, &named(&all, "DSN_eval"));
        assert!(de < 1e-4, "eval differs from PyTorch by {de}");
        let dt = max_diff(&d.forward_t(&x, true), &named(&all, "DSN_train"));
        assert!(dt < 1e-4, "train differs from PyTorch by {dt}");
    });
    let u = vs.variables()["model.0.weight_u"].shallow_clone();
    let du = max_diff(&u, &named(&all, "DSN_model.0.weight_u_after"));
    assert!(du < 1e-5, "u after one power iteration differs by {du}");
}

#[test]
fn spectral_norm_patch_discriminator_has_unit_sigma_and_finite_outputs() {
    let vs = nn::VarStore::new(CPU);
    let d = PatchDiscriminator::new(&vs.root(), &PatchDiscriminatorConfig { ndf: 4, ..Default::default() }, 3, true)
        .expect("D builds");
    init_normal(&vs, &mut derived_rng(11, "init", 0), 0.02);
    assert_eq!(common::assert_all_spectrally_normalized(&vs), 5);
    let x = uniform(&mut derived_rng(11, "x", 0), &[2, 3, 32, 32], -1.0, 1.0, CPU);
    for train in [false, true] {
        let y = tch::no_grad(|| d.forward_t(&x, train));
        assert_eq!(y.size(), vec![2, 1, 2, 2]);
        let m = y.abs().max().double_value(&[]);
        assert!(m.is_finite() && m < 10.0, "train {train}: max |score| {m}");
    }
}
