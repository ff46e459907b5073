//! Conditional networks: output shapes for every architecture × head design × image size, the split
//! head's independence from the condition, GAN-CLS parameter counts at the paper's widths, outputs equal to
//! the same networks in PyTorch (golden/cond_golden.py), gradients reaching the condition, seeded dropout,
//! configs.
mod common;
use common::max_diff;

use std::collections::BTreeMap;

use ganzoo_models::cond::{
    CondDcganDConfig, CondDcganGConfig, CondDiscriminatorConfig, CondGeneratorConfig, HeadDesign,
    MirzaDConfig, MirzaGConfig, Pool, ProjectionDConfig, SeededDropout,
};
use ganzoo_models::cyclegan::load_named_tensors;
use ganzoo_models::init::init_dcgan;
use ganzoo_models::nets::{count_parameters, DataShape};
use ganzoo_models::rng::{derived_rng, randn};
use tch::{nn, Device, Kind, Tensor};

const CPU: Device = Device::Cpu;
const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/golden/cond_golden.safetensors"
);
const GOLDEN_JSON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/cond_golden.json");

fn small_g(arch: &str) -> CondGeneratorConfig {
    match arch {
        "mlp" => CondGeneratorConfig::Mlp(MirzaGConfig {
            z_hidden: 16,
            cond_hidden: 24,
            joint_hidden: Some(32),
            dropout: 0.5,
        }),
        _ => CondGeneratorConfig::Dcgan(CondDcganGConfig {
            ngf: 8,
            ..Default::default()
        }),
    }
}

fn small_d(arch: &str) -> CondDiscriminatorConfig {
    match arch {
        "maxout" => CondDiscriminatorConfig::Maxout(MirzaDConfig {
            x_units: 12,
            x_pieces: 3,
            cond_units: 5,
            cond_pieces: 2,
            joint_units: 10,
            joint_pieces: 2,
            ..Default::default()
        }),
        "dcgan" => CondDiscriminatorConfig::Dcgan(CondDcganDConfig {
            ndf: 8,
            cond_proj: Some(6),
            extra_layers: true,
            ..Default::default()
        }),
        _ => CondDiscriminatorConfig::Projection(ProjectionDConfig {
            ndf: 8,
            ..Default::default()
        }),
    }
}

#[test]
fn output_shapes_for_every_arch_head_and_size() {
    let (n, nz, nc) = (3, 7, 5);
    for (size, channels) in [(28, 1), (32, 3), (64, 3)] {
        let shape = DataShape::image(channels, size);
        let z = randn(&mut derived_rng(1, "z", 0), &[n, nz], CPU);
        let c = randn(&mut derived_rng(1, "c", 0), &[n, nc], CPU);
        for g_arch in ["mlp", "dcgan"] {
            let vs = nn::VarStore::new(CPU);
            let cfg = small_g(g_arch);
            assert!(cfg.check(&shape).is_empty());
            let g = cfg.build(&vs.root(), nz, nc, &shape).expect("G builds");
            assert_eq!((g.z_dim(), g.cond_dim()), (nz, nc));
            for train in [true, false] {
                let x = g.forward_t(&z, &c, train);
                assert_eq!(x.size(), vec![n, channels, size, size], "{g_arch} {size}");
                assert!(x.abs().max().double_value(&[]) <= 1.0);
            }
        }
        let x = randn(&mut derived_rng(1, "x", 0), &[n, channels, size, size], CPU);
        for d_arch in ["maxout", "dcgan", "projection"] {
            for heads in [HeadDesign::Joint, HeadDesign::Split] {
                for sn in [false, true] {
                    let vs = nn::VarStore::new(CPU);
                    let cfg = small_d(d_arch);
                    assert!(cfg.check(&shape).is_empty());
                    let d = cfg
                        .build(&vs.root(), nc, &shape, heads, sn)
                        .expect("D builds");
                    init_dcgan(&vs, &mut derived_rng(2, "init", 0));
                    for train in [true, false] {
                        let s = d.forward_t(&x, &c, train);
                        assert_eq!(s.matched.size(), vec![n], "{d_arch} {heads:?} {size}");
                        assert_eq!(
                            s.uncond.as_ref().map(Tensor::size),
                            (heads == HeadDesign::Split).then(|| vec![n]),
                            "{d_arch} {heads:?} {size}"
                        );
                        assert!(s.matched.isfinite().all().int64_value(&[]) == 1);
                    }
                    let names: Vec<String> = vs.variables().keys().cloned().collect();
                    if sn {
                        assert!(names.iter().any(|k| k.ends_with("weight_orig")));
                        assert!(!names.iter().any(|k| k.ends_with("conv1.weight")));
                    }
                }
            }
        }
    }
}

#[test]
fn split_uncond_ignores_the_condition_and_matched_does_not() {
    let shape = DataShape::image(3, 32);
    let x = randn(&mut derived_rng(3, "x", 0), &[4, 3, 32, 32], CPU);
    let c1 = randn(&mut derived_rng(3, "c", 0), &[4, 6], CPU);
    let c2 = randn(&mut derived_rng(3, "c", 1), &[4, 6], CPU);
    for d_arch in ["maxout", "dcgan", "projection"] {
        let vs = nn::VarStore::new(CPU);
        let d = small_d(d_arch)
            .build(&vs.root(), 6, &shape, HeadDesign::Split, true)
            .expect("D builds");
        init_dcgan(&vs, &mut derived_rng(4, "init", 0));
        // Power iterations first: before any, σ(W) is estimated from random u, v and the scores explode.
        for _ in 0..10 {
            tch::no_grad(|| d.forward_t(&x, &c1, true));
        }
        // Eval mode: no dropout mask or power iteration changes between the two calls.
        let h = d.features(&x, false);
        let (a, b) = (d.heads(&h, &c1, false), d.heads(&h, &c2, false));
        let (ua, ub) = (a.uncond.expect("split"), b.uncond.expect("split"));
        assert_eq!(
            max_diff(&ua, &ub),
            0.0,
            "{d_arch}: uncond must not see c"
        );
        assert!(
            max_diff(&a.matched, &b.matched) > 1e-6,
            "{d_arch}: matched must see c"
        );
        // Joint: one score that depends on c.
        let vs = nn::VarStore::new(CPU);
        let d = small_d(d_arch)
            .build(&vs.root(), 6, &shape, HeadDesign::Joint, false)
            .expect("D builds");
        init_dcgan(&vs, &mut derived_rng(4, "init", 0));
        let (a, b) = (d.forward_t(&x, &c1, false), d.forward_t(&x, &c2, false));
        assert!(a.uncond.is_none());
        assert!(max_diff(&a.matched, &b.matched) > 1e-6, "{d_arch}");
    }
}

/// The GAN-CLS networks at the published widths (ngf 128, ndf 64, nz 100, text 1024 -> 128, 64×64×3),
/// counted by hand from the layer list of reedscot/icml2016 `main_cls_int.lua` (convs without their
/// always-zeroed biases; BN: weight + bias) and by golden/cond_golden.py in PyTorch.
#[test]
fn gan_cls_parameter_counts_match_the_layer_list_and_pytorch() {
    let bn = |c: i64| 2 * c;
    let res = |c: i64| {
        let m = c / 4;
        c * m + m * m * 9 + m * c * 9 + bn(m) + bn(m) + bn(c)
    };
    let g_hand = (1024 * 128 + 128)
        + (100 + 128) * 1024 * 16
        + bn(1024)
        + res(1024)
        + 1024 * 512 * 16
        + bn(512)
        + res(512)
        + 512 * 256 * 16
        + bn(256)
        + 256 * 128 * 16
        + bn(128)
        + 128 * 3 * 16;
    let d_hand = 3 * 64 * 16
        + 64 * 128 * 16
        + bn(128)
        + 128 * 256 * 16
        + bn(256)
        + 256 * 512 * 16
        + bn(512)
        + (1024 * 128 + 128)
        + bn(128)
        + (512 + 128) * 512
        + bn(512)
        + 512 * 16;
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(GOLDEN_JSON).expect("golden json"))
            .expect("json");
    let py = |k: &str| golden["counts"][k].as_i64().expect("count");
    assert_eq!(g_hand, py("gan_cls_g"));
    assert_eq!(d_hand, py("gan_cls_d_joint"));

    let shape = DataShape::image(3, 64);
    let gvs = nn::VarStore::new(CPU);
    CondGeneratorConfig::default()
        .build(&gvs.root(), 100, 1024, &shape)
        .expect("G builds");
    assert_eq!(count_parameters(&gvs), g_hand);
    for (heads, extra, key) in [
        (HeadDesign::Joint, false, "gan_cls_d_joint"),
        (HeadDesign::Split, false, "gan_cls_d_split"),
        (HeadDesign::Joint, true, "gan_cls_d_extra_joint"),
    ] {
        let dvs = nn::VarStore::new(CPU);
        let cfg = CondDiscriminatorConfig::Dcgan(CondDcganDConfig {
            extra_layers: extra,
            ..Default::default()
        });
        cfg.build(&dvs.root(), 1024, &shape, heads, false)
            .expect("D builds");
        assert_eq!(count_parameters(&dvs), py(key), "{key}");
    }
}

/// Mirza & Osindero's MNIST networks at the paper's widths, counted by hand.
#[test]
fn mirza_parameter_counts() {
    let shape = DataShape::image(1, 28);
    let gvs = nn::VarStore::new(CPU);
    CondGeneratorConfig::Mlp(MirzaGConfig::default())
        .build(&gvs.root(), 100, 10, &shape)
        .expect("G builds");
    let g_hand = (100 * 200 + 200) + (10 * 1000 + 1000) + (1200 * 784 + 784);
    assert_eq!(count_parameters(&gvs), g_hand);
    let dvs = nn::VarStore::new(CPU);
    CondDiscriminatorConfig::Maxout(MirzaDConfig::default())
        .build(&dvs.root(), 10, &shape, HeadDesign::Joint, false)
        .expect("D builds");
    let d_hand = (784 * 1200 + 1200) + (10 * 250 + 250) + (290 * 960 + 960) + (240 + 1);
    assert_eq!(count_parameters(&dvs), d_hand);
}

fn golden() -> BTreeMap<String, Tensor> {
    Tensor::read_safetensors(GOLDEN)
        .expect("golden safetensors reads")
        .into_iter()
        .collect()
}

fn with_prefix(all: &BTreeMap<String, Tensor>, prefix: &str, skip: &str) -> Vec<(String, Tensor)> {
    all.iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix(prefix)?;
            (skip.is_empty() || !name.starts_with(skip))
                .then(|| (name.to_string(), v.shallow_clone()))
        })
        .collect()
}

#[test]
fn gan_cls_outputs_match_pytorch_with_reference_weights() {
    let all = golden();
    let shape = DataShape::image(3, 64);
    let gvs = nn::VarStore::new(CPU);
    let g = CondGeneratorConfig::Dcgan(CondDcganGConfig {
        ngf: 8,
        cond_proj: Some(6),
        extra_layers: true,
        batch_norm: true,
        cond_bn: false,
    })
    .build(&gvs.root(), 10, 12, &shape)
    .expect("G builds");
    load_named_tensors(&gvs, &with_prefix(&all, "G.", "")).expect("G weights load by name");
    let (z, c, x) = (&all["z"], &all["c"], &all["x"]);
    tch::no_grad(|| {
        let eval = g.forward_t(z, c, false);
        assert!(max_diff(&eval, &all["G_eval"]) < 1e-4);
        let train = g.forward_t(z, c, true);
        assert!(max_diff(&train, &all["G_train"]) < 1e-4);
    });

    let cfg = CondDiscriminatorConfig::Dcgan(CondDcganDConfig {
        ndf: 8,
        cond_proj: Some(6),
        cond_proj_bn: true,
        extra_layers: true,
        batch_norm: true,
    });
    let dvs = nn::VarStore::new(CPU);
    let d = cfg
        .build(&dvs.root(), 12, &shape, HeadDesign::Split, false)
        .expect("D builds");
    load_named_tensors(&dvs, &with_prefix(&all, "D.", "")).expect("D weights load by name");
    tch::no_grad(|| {
        let s = d.forward_t(x, c, false);
        assert!(max_diff(&s.matched, &all["D_eval_matched"]) < 1e-4);
        let u = s.uncond.expect("split");
        assert!(max_diff(&u, &all["D_eval_uncond"]) < 1e-4);
    });
    // The joint design is the split one without `uncond.*`. Loaded before the training-mode pass,
    // which updates running statistics.
    let jvs = nn::VarStore::new(CPU);
    let j = cfg
        .build(&jvs.root(), 12, &shape, HeadDesign::Joint, false)
        .expect("D builds");
    load_named_tensors(&jvs, &with_prefix(&all, "D.", "uncond.")).expect("joint D loads");
    tch::no_grad(|| {
        let s = d.forward_t(x, c, true);
        assert!(max_diff(&s.matched, &all["D_train_matched"]) < 1e-4);
        let u = s.uncond.expect("split");
        assert!(max_diff(&u, &all["D_train_uncond"]) < 1e-4);
        let sj = j.forward_t(x, c, false);
        assert!(max_diff(&sj.matched, &all["D_eval_matched"]) < 1e-4);
    });
}

#[test]
fn names_read_well_in_checkpoints() {
    let shape = DataShape::image(3, 64);
    let names = |f: &dyn Fn(&nn::Path)| {
        let vs = nn::VarStore::new(CPU);
        f(&vs.root());
        let mut v: Vec<String> = vs.variables().keys().cloned().collect();
        v.sort();
        v
    };
    let d = names(&|p| {
        small_d("dcgan")
            .build(p, 5, &shape, HeadDesign::Split, false)
            .map(|_| ())
            .expect("builds")
    });
    for k in [
        "trunk.conv1.weight",
        "trunk.bn2.running_mean",
        "trunk.res.conv3.weight",
        "cond_proj.weight",
        "cond_bn.weight",
        "head.mix.weight",
        "head.bn.weight",
        "head.conv.weight",
        "uncond.conv.weight",
    ] {
        assert!(d.contains(&k.to_string()), "{k} in {d:?}");
    }
    let p = names(&|p| {
        small_d("projection")
            .build(p, 5, &shape, HeadDesign::Joint, true)
            .map(|_| ())
            .expect("builds")
    });
    for k in [
        "trunk.conv4.weight_orig",
        "uncond.weight_orig",
        "embed.weight_orig",
    ] {
        assert!(p.contains(&k.to_string()), "{k} in {p:?}");
    }
    assert!(!p.iter().any(|k| k == "embed.bias"), "V has no bias");
    let g = names(&|p| {
        small_g("dcgan")
            .build(p, 4, 5, &shape)
            .map(|_| ())
            .expect("builds")
    });
    for k in [
        "cond_proj.weight",
        "body.deconv1.weight",
        "body.res2.conv1.weight",
        "body.out.weight",
    ] {
        assert!(g.contains(&k.to_string()), "{k} in {g:?}");
    }
    assert!(!g.iter().any(|k| k.starts_with("body.res3")));
}

#[test]
fn gradients_reach_the_condition_through_d() {
    let shape = DataShape::image(1, 28);
    let x = randn(&mut derived_rng(5, "x", 0), &[3, 1, 28, 28], CPU);
    let mut configs: Vec<(String, CondDiscriminatorConfig)> = ["maxout", "dcgan", "projection"]
        .iter()
        .map(|a| (a.to_string(), small_d(a)))
        .collect();
    configs.push((
        "dcgan, no projection".into(),
        CondDiscriminatorConfig::Dcgan(CondDcganDConfig {
            ndf: 8,
            cond_proj: None,
            ..Default::default()
        }),
    ));
    for (name, cfg) in configs {
        for heads in [HeadDesign::Joint, HeadDesign::Split] {
            let vs = nn::VarStore::new(CPU);
            let d = cfg
                .build(&vs.root(), 4, &shape, heads, true)
                .expect("builds");
            init_dcgan(&vs, &mut derived_rng(6, "init", 0));
            let c = randn(&mut derived_rng(5, "c", 0), &[3, 4], CPU).set_requires_grad(true);
            let s = d.forward_t(&x, &c, true);
            s.matched.sum(Kind::Float).backward();
            let g = c.grad();
            assert!(g.defined(), "{name} {heads:?}");
            assert!(
                g.abs().sum(Kind::Float).double_value(&[]) > 0.0,
                "{name} {heads:?}"
            );
        }
    }
}

#[test]
fn dropout_masks_are_reproducible_for_the_same_seed_and_step() {
    let shape = DataShape::image(1, 28);
    let build = || {
        let vs = nn::VarStore::new(CPU);
        let g = small_g("mlp")
            .build(&vs.root(), 6, 4, &shape)
            .expect("builds");
        init_dcgan(&vs, &mut derived_rng(7, "init", 0));
        (vs, g)
    };
    let (_va, ga) = build();
    let (_vb, gb) = build();
    let z = randn(&mut derived_rng(7, "z", 0), &[2, 6], CPU);
    let c = randn(&mut derived_rng(7, "c", 0), &[2, 4], CPU);
    let run = |g: &dyn ganzoo_models::cond::CondGenerator, seed, step| {
        g.set_dropout_state(seed, step);
        let first = g.forward_t(&z, &c, true);
        let second = g.forward_t(&z, &c, true);
        (first, second)
    };
    let (a1, a2) = run(ga.as_ref(), 11, 5);
    let (b1, b2) = run(gb.as_ref(), 11, 5);
    assert_eq!(
        max_diff(&a1, &b1),
        0.0,
        "same seed and step, same masks"
    );
    assert_eq!(
        max_diff(&a2, &b2),
        0.0,
        "and the same sequence within the step"
    );
    assert!(max_diff(&a1, &a2) > 0.0, "a fresh mask per forward");
    let (r1, _) = run(ga.as_ref(), 11, 5);
    assert_eq!(
        max_diff(&a1, &r1),
        0.0,
        "resuming at the step redraws the masks"
    );
    let (s1, _) = run(ga.as_ref(), 11, 6);
    assert!(max_diff(&a1, &s1) > 0.0, "another step, other masks");
    let e1 = ga.forward_t(&z, &c, false);
    let e2 = gb.forward_t(&z, &c, false);
    assert_eq!(max_diff(&e1, &e2), 0.0);
    assert!(max_diff(&e1, &a1) > 0.0, "no dropout in evaluation");

    // The layer itself: inverted dropout, about p of the values zeroed, the rest scaled by 1/(1-p).
    let d = SeededDropout::new(0.5, "t");
    d.set_state(3, 0);
    let ones = Tensor::ones([10_000], (Kind::Float, CPU));
    let y = d.forward_t(&ones, true);
    let kept = y
        .gt(0.0)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[]);
    assert!((kept - 0.5).abs() < 0.03, "kept {kept}");
    assert!((y.max().double_value(&[]) - 2.0).abs() < 1e-6);
    assert_eq!(d.calls(), 1);
    let (vs, dm) = {
        let vs = nn::VarStore::new(CPU);
        let d = small_d("maxout")
            .build(&vs.root(), 4, &shape, HeadDesign::Split, false)
            .expect("builds");
        (vs, d)
    };
    init_dcgan(&vs, &mut derived_rng(8, "init", 0));
    let x = randn(&mut derived_rng(8, "x", 0), &[2, 1, 28, 28], CPU);
    dm.set_dropout_state(1, 2);
    let m1 = dm.forward_t(&x, &c, true).matched;
    dm.set_dropout_state(1, 2);
    let m2 = dm.forward_t(&x, &c, true).matched;
    assert_eq!(max_diff(&m1, &m2), 0.0);
}

#[test]
fn configs_parse_with_defaults_reject_unknown_keys_and_report_every_problem() {
    let g: CondGeneratorConfig =
        serde_json::from_str(r#"{"arch": "dcgan", "ngf": 64}"#).expect("parses");
    assert_eq!(
        g,
        CondGeneratorConfig::Dcgan(CondDcganGConfig {
            ngf: 64,
            cond_proj: Some(128),
            extra_layers: true,
            batch_norm: true,
            cond_bn: false
        })
    );
    let g: CondGeneratorConfig = serde_json::from_str(r#"{"arch": "mlp"}"#).expect("parses");
    assert_eq!(g, CondGeneratorConfig::Mlp(MirzaGConfig::default()));
    let d: CondDiscriminatorConfig =
        serde_json::from_str(r#"{"arch": "projection", "pool": "mean"}"#).expect("parses");
    assert_eq!(
        d,
        CondDiscriminatorConfig::Projection(ProjectionDConfig {
            pool: Pool::Mean,
            ..Default::default()
        })
    );
    for bad in [
        r#"{"arch": "dcgan", "ndf": 64, "nfd": 3}"#,
        r#"{"arch": "maxout", "pieces": 3}"#,
        r#"{"arch": "resnet"}"#,
        r#"{"arch": "projection", "cond_proj": 3}"#,
    ] {
        assert!(
            serde_json::from_str::<CondDiscriminatorConfig>(bad).is_err(),
            "{bad}"
        );
    }
    let h: HeadDesign = serde_json::from_str(r#""split""#).expect("parses");
    assert_eq!(h, HeadDesign::Split);

    let bad_g = CondGeneratorConfig::Dcgan(CondDcganGConfig {
        ngf: 0,
        cond_proj: Some(0),
        ..Default::default()
    });
    let problems = bad_g.check(&DataShape::image(3, 48));
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("ngf")));
    assert!(problems.iter().any(|p| p.contains("cond_proj")));
    assert!(problems.iter().any(|p| p.contains("48")));
    let vs = nn::VarStore::new(CPU);
    let err = bad_g
        .build(&vs.root(), 0, 10, &DataShape::image(3, 48))
        .err()
        .expect("fails");
    assert!(err.to_string().contains("z_dim"), "{err}");
    let bad_d = CondDiscriminatorConfig::Maxout(MirzaDConfig {
        x_units: 0,
        dropout: 1.0,
        input_dropout: -0.1,
        ..Default::default()
    });
    let problems = bad_d.check(&DataShape::image(1, 28));
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("x_units")));
    assert!(problems.iter().any(|p| p.starts_with("dropout")));
    assert!(problems.iter().any(|p| p.contains("input_dropout")));
    assert!(bad_d
        .build(
            &vs.root(),
            10,
            &DataShape::image(1, 28),
            HeadDesign::Joint,
            false
        )
        .is_err());
    let not_square = DataShape {
        channels: 3,
        height: 64,
        width: 32,
    };
    assert_eq!(small_d("projection").check(&not_square).len(), 1);
    assert!(
        small_d("maxout").check(&not_square).is_empty(),
        "the MLP takes any shape"
    );
}

#[test]
fn conditional_batch_norm_starts_as_plain_batch_norm_and_learns_per_condition() {
    let shape = DataShape::image(3, 28);
    let cfg = |cond_bn| {
        CondGeneratorConfig::Dcgan(CondDcganGConfig {
            ngf: 8,
            cond_proj: Some(6),
            cond_bn,
            ..Default::default()
        })
    };
    let build = |cond_bn| {
        let vs = nn::VarStore::new(CPU);
        let g = cfg(cond_bn).build(&vs.root(), 5, 7, &shape).expect("G builds");
        (vs, g)
    };
    let (plain_vs, plain) = build(false);
    let (vs, g) = build(true);
    // The same weights in both (tests run in parallel, so the global seed cannot make them equal).
    let vars = vs.variables();
    tch::no_grad(|| {
        for (name, t) in plain_vs.variables() {
            vars[&name].shallow_clone().copy_(&t);
        }
    });
    assert!(vs.variables().contains_key("body.cbn2.gain.weight"));
    assert!(!plain_vs.variables().contains_key("body.cbn2.gain.weight"));
    let z = Tensor::randn([4, 5], (tch::Kind::Float, CPU));
    let c = Tensor::randn([4, 7], (tch::Kind::Float, CPU));
    // Zero-initialized gains and biases: the same function as plain batch norm at the start.
    let y = g.forward_t(&z, &c, true);
    assert!(max_diff(&y, &plain.forward_t(&z, &c, true)) < 1e-6);
    // The gains learn: they receive gradient, and once non-zero they change the output per condition.
    y.square().sum(tch::Kind::Float).backward();
    let gain = vs.variables()["body.cbn2.gain.weight"].shallow_clone();
    assert!(gain.grad().abs().sum(tch::Kind::Float).double_value(&[]) > 0.0);
    tch::no_grad(|| {
        let _ = gain.shallow_clone().fill_(0.5);
    });
    assert!(max_diff(&g.forward_t(&z, &c, true), &y) > 1e-3);
    let problems = CondDcganGConfig { cond_bn: true, batch_norm: false, ..Default::default() }
        .check(&DataShape::image(3, 64));
    assert!(problems.iter().any(|p| p.contains("cond_bn")), "{problems:?}");
}
