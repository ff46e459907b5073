//! Networks: output shapes, parameter counts against the PyTorch DCGAN example, config checks,
//! spectral normalization and seeded initialization.

use ganzoo_models::dcgan::{DcganDConfig, DcganGConfig};
use ganzoo_models::init::{init_dcgan, init_default};
use ganzoo_models::mlp::{Activation, MlpConfig};
use ganzoo_models::nets::{count_parameters, DataShape, DiscriminatorConfig, GeneratorConfig};
use ganzoo_models::rng::{derived_rng, randn};
use ganzoo_models::spectral::{top_singular_value, SnConv2d, SnLinear, SpectralNorm};
use tch::{nn, nn::ModuleT, Device, Kind, Tensor};

const CPU: Device = Device::Cpu;

// Parameter counts of the same layouts built in PyTorch (nn.Sequential as in pytorch/examples/dcgan):
// (base, stages) -> G(nz=100, ngf=64, nc=3, BN), D(nc=3, ndf=64, BN), G(nz=16, ngf=8, nc=1, no BN), D(nc=1, ndf=8, no BN)
// (4, 4) 3576704 2765568 59641 44280 ; (4, 3) 1068928 663296 18617 10936 ; (7, 2) 761728 140672 14745 2984
const COUNTS: [(i64, [i64; 4]); 3] = [
    (64, [3_576_704, 2_765_568, 59_641, 44_280]),
    (32, [1_068_928, 663_296, 18_617, 10_936]),
    (28, [761_728, 140_672, 14_745, 2_984]),
];

#[test]
fn dcgan_shapes_and_parameter_counts_match_pytorch() {
    for (size, counts) in COUNTS {
        for (channels, ngf, nz, bn, g_count, d_count) in [
            (3, 64, 100, true, counts[0], counts[1]),
            (1, 8, 16, false, counts[2], counts[3]),
        ] {
            let shape = DataShape::image(channels, size);
            let gvs = nn::VarStore::new(CPU);
            let g = GeneratorConfig::Dcgan(DcganGConfig {
                ngf,
                batch_norm: bn,
            })
            .build(&gvs.root(), nz, &shape)
            .expect("G builds");
            assert_eq!(count_parameters(&gvs), g_count, "G {size} {channels}");
            let dvs = nn::VarStore::new(CPU);
            let d = DiscriminatorConfig::Dcgan(DcganDConfig {
                ndf: ngf,
                batch_norm: bn,
            })
            .build(&dvs.root(), &shape, false)
            .expect("D builds");
            assert_eq!(count_parameters(&dvs), d_count, "D {size} {channels}");
            let z = randn(&mut derived_rng(1, "z", 0), &[2, nz], CPU);
            let x = g.forward_t(&z, true);
            assert_eq!(x.size(), vec![2, channels, size, size]);
            assert!(x.abs().max().double_value(&[]) <= 1.0);
            assert_eq!(g.z_dim(), nz);
            let s = d.forward_t(&x, true);
            assert_eq!(s.size(), vec![2]);
        }
    }
}

#[test]
fn dcgan_names_follow_the_pytorch_example() {
    let vs = nn::VarStore::new(CPU);
    let _d = DiscriminatorConfig::Dcgan(DcganDConfig::default())
        .build(&vs.root(), &DataShape::image(3, 64), false)
        .expect("D");
    let mut names: Vec<String> = vs.variables().into_keys().collect();
    names.sort();
    for k in [
        "main.0.weight",
        "main.2.weight",
        "main.3.weight",
        "main.3.running_var",
        "main.11.weight",
    ] {
        assert!(names.contains(&k.to_string()), "{k} missing from {names:?}");
    }
}

#[test]
fn spectral_norm_dcgan_discriminator() {
    let vs = nn::VarStore::new(CPU);
    let d = DiscriminatorConfig::Dcgan(DcganDConfig {
        ndf: 8,
        batch_norm: false,
    })
    .build(&vs.root(), &DataShape::image(1, 28), true)
    .expect("D");
    let vars = vs.variables();
    assert!(vars.contains_key("main.0.weight_orig") && vars.contains_key("main.0.weight_u"));
    let x = randn(&mut derived_rng(2, "x", 0), &[3, 1, 28, 28], CPU);
    assert_eq!(d.forward_t(&x, true).size(), vec![3]);
}

#[test]
fn spectral_warm_up_converges_sigma_before_the_first_forward() {
    let vs = nn::VarStore::new(CPU);
    let d = DiscriminatorConfig::Dcgan(DcganDConfig { ndf: 8, batch_norm: false })
        .build(&vs.root(), &DataShape::image(1, 28), true)
        .expect("D");
    ganzoo_models::init::init_dcgan(&vs, &mut derived_rng(5, "init", 0));
    let vars = vs.variables();
    let names: Vec<String> = vars.keys().filter(|n| n.ends_with("weight_orig")).cloned().collect();
    assert!(!names.is_empty());
    ganzoo_models::spectral::warm_up(&vs, 15);
    for name in &names {
        let prefix = name.trim_end_matches("weight_orig");
        let sn = SpectralNorm {
            weight_orig: vars[name].shallow_clone(),
            u: vars[&format!("{prefix}weight_u")].shallow_clone(),
            v: vars[&format!("{prefix}weight_v")].shallow_clone(),
        };
        let (est, exact) = (sn.sigma().double_value(&[]), top_singular_value(&vars[name]));
        assert!((est - exact).abs() / exact < 0.05, "{name}: σ estimate {est} vs exact {exact}");
    }
    // Evaluation before any training forward now gives finite, moderate scores.
    let x = randn(&mut derived_rng(2, "x", 0), &[3, 1, 28, 28], CPU);
    let s = d.forward_t(&x, false);
    assert!(s.abs().max().double_value(&[]) < 1e3, "{s:?}");
}

#[test]
fn mlp_shapes() {
    let cfg = MlpConfig {
        hidden: 16,
        layers: 2,
        activation: Activation::LeakyRelu,
    };
    let vs = nn::VarStore::new(CPU);
    let g = GeneratorConfig::Mlp(cfg.clone())
        .build(&vs.root(), 4, &DataShape::flat(2))
        .expect("G");
    // 4*16+16 + 16*16+16 + 16*2+2
    assert_eq!(count_parameters(&vs), 80 + 272 + 34);
    let z = randn(&mut derived_rng(3, "z", 0), &[5, 4], CPU);
    assert_eq!(g.forward_t(&z, true).size(), vec![5, 2]);
    for sn in [false, true] {
        let dvs = nn::VarStore::new(CPU);
        let d = DiscriminatorConfig::Mlp(cfg.clone())
            .build(&dvs.root(), &DataShape::flat(2), sn)
            .expect("D");
        assert_eq!(d.forward_t(&g.forward_t(&z, false), true).size(), vec![5]);
        assert_eq!(count_parameters(&dvs), 2 * 16 + 16 + 272 + 17);
    }
    let ivs = nn::VarStore::new(CPU);
    let gi = GeneratorConfig::Mlp(cfg)
        .build(&ivs.root(), 4, &DataShape::image(1, 8))
        .expect("image G");
    assert_eq!(gi.forward_t(&z, false).size(), vec![5, 1, 8, 8]);
}

#[test]
fn check_reports_every_problem() {
    let g = GeneratorConfig::Dcgan(DcganGConfig {
        ngf: 0,
        batch_norm: true,
    });
    let problems = g.check(&DataShape::image(3, 48));
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("48"), "{problems:?}");
    let vs = nn::VarStore::new(CPU);
    let err = g
        .build(&vs.root(), 100, &DataShape::image(3, 48))
        .err()
        .expect("must fail")
        .to_string();
    assert!(err.contains("48") && err.contains("ngf"), "{err}");
    let d = DiscriminatorConfig::Dcgan(DcganDConfig::default());
    assert_eq!(
        d.check(&DataShape {
            channels: 3,
            height: 32,
            width: 64
        })
        .len(),
        1
    );
    assert!(d.check(&DataShape::image(1, 28)).is_empty());
    assert!(
        GeneratorConfig::Mlp(MlpConfig {
            hidden: 0,
            ..Default::default()
        })
        .check(&DataShape::flat(2))
        .len()
            == 1
    );
    assert!(GeneratorConfig::Mlp(MlpConfig::default())
        .build(&vs.root(), 0, &DataShape::flat(2))
        .is_err());
}

#[test]
fn configs_parse_with_defaults_and_reject_unknown_keys() {
    let g: GeneratorConfig = serde_json::from_str(r#"{"arch":"dcgan","ngf":32}"#).expect("parse");
    assert_eq!(
        g,
        GeneratorConfig::Dcgan(DcganGConfig {
            ngf: 32,
            batch_norm: true
        })
    );
    let d: DiscriminatorConfig =
        serde_json::from_str(r#"{"arch":"mlp","activation":"leaky_relu"}"#).expect("parse");
    assert_eq!(
        d,
        DiscriminatorConfig::Mlp(MlpConfig {
            activation: Activation::LeakyRelu,
            ..Default::default()
        })
    );
    assert!(serde_json::from_str::<GeneratorConfig>(r#"{"arch":"dcgan","ngff":32}"#).is_err());
    assert!(serde_json::from_str::<GeneratorConfig>(r#"{"arch":"resnet"}"#).is_err());
}

#[test]
fn spectral_norm_power_iteration_converges_and_u_is_not_trainable() {
    let vs = nn::VarStore::new(CPU);
    let sn = SpectralNorm::new(&(vs.root() / "layer"), &[6, 4, 3, 3]);
    let w = randn(&mut derived_rng(4, "w", 0), &[6, 4, 3, 3], CPU) * 0.7;
    tch::no_grad(|| sn.weight_orig.shallow_clone().copy_(&w));
    let sigma_true = top_singular_value(&w);
    for _ in 0..20 {
        sn.power_iteration();
    }
    let est = sn.sigma().double_value(&[]);
    assert!(
        (est - sigma_true).abs() / sigma_true < 1e-4,
        "sigma {est} vs SVD {sigma_true}"
    );
    let normalized = sn.weight(false);
    assert!((top_singular_value(&normalized) - 1.0).abs() < 1e-4);
    // u, v are buffers: present by name, absent from the trainable set, and unfreeze keeps them so.
    let mut vs = vs;
    vs.freeze();
    vs.unfreeze();
    let trainable = vs.trainable_variables();
    assert_eq!(trainable.len(), 1);
    assert_eq!(trainable[0].size(), vec![6, 4, 3, 3]);
    assert!(!sn.u.requires_grad() && vs.variables().contains_key("layer.weight_u"));
    // Eval forward leaves u untouched, a train forward updates it.
    let u0 = sn.u.copy();
    let lin_in = Tensor::ones([1, 4, 5, 5], (Kind::Float, CPU));
    let conv = SnConv2d {
        sn,
        bias: None,
        config: nn::ConvConfig {
            padding: 1,
            bias: false,
            ..Default::default()
        },
    };
    let y = conv.forward_t(&lin_in, false);
    assert_eq!(y.size(), vec![1, 6, 5, 5]);
    assert!(conv.sn.u.equal(&u0));
    // The gradient flows to weight_orig through W / sigma.
    y.sum(Kind::Float).backward();
    assert!(conv.sn.weight_orig.grad().defined());
}

#[test]
fn spectral_linear_weight_has_unit_norm_after_training_forwards() {
    let vs = nn::VarStore::new(CPU);
    let l = SnLinear::new(&vs.root(), 5, 3, true);
    let x = Tensor::ones([2, 5], (Kind::Float, CPU));
    for _ in 0..30 {
        let _ = l.forward_t(&x, true);
    }
    assert!((top_singular_value(&l.sn.weight(false)) - 1.0).abs() < 1e-4);
}

#[test]
fn seeded_init_is_deterministic_and_leaves_buffers_alone() {
    let build = |seed: u64| {
        let vs = nn::VarStore::new(CPU);
        let _g = GeneratorConfig::Dcgan(DcganGConfig {
            ngf: 8,
            batch_norm: true,
        })
        .build(&vs.root(), 8, &DataShape::image(1, 28))
        .expect("G");
        let _d = DiscriminatorConfig::Dcgan(DcganDConfig {
            ndf: 8,
            batch_norm: false,
        })
        .build(&(vs.root() / "d"), &DataShape::image(1, 28), true)
        .expect("D");
        let u_before = vs.variables()["d.main.0.weight_u"].copy();
        init_dcgan(&vs, &mut derived_rng(seed, "init", 0));
        assert!(vs.variables()["d.main.0.weight_u"].equal(&u_before));
        vs
    };
    let (a, b, c) = (build(1), build(1), build(2));
    let (va, vb, vc) = (a.variables(), b.variables(), c.variables());
    assert!(va["main.0.weight"].equal(&vb["main.0.weight"]));
    assert!(!va["main.0.weight"].equal(&vc["main.0.weight"]));
    let w = &va["main.0.weight"];
    assert!((w.std(true).double_value(&[]) - 0.02).abs() < 0.003);
    let bn_w = &va["main.1.weight"];
    assert!((bn_w.mean(Kind::Float).double_value(&[]) - 1.0).abs() < 0.02);
    assert!(va["main.1.bias"].abs().max().double_value(&[]) == 0.0);
    assert!(va["main.1.running_var"].equal(&Tensor::ones([16], (Kind::Float, CPU))));
    // init_default: U(±1/sqrt(fan_in)).
    let vs = nn::VarStore::new(CPU);
    let _ = DiscriminatorConfig::Mlp(MlpConfig {
        hidden: 64,
        layers: 1,
        ..Default::default()
    })
    .build(&vs.root(), &DataShape::flat(16), false);
    init_default(&vs, &mut derived_rng(0, "init", 0));
    let v = vs.variables();
    assert!(v["hidden.0.weight"].abs().max().double_value(&[]) <= 0.25);
    assert!(v["out.bias"].abs().max().double_value(&[]) <= 0.125 + 1e-7);
}

/// D runs on real and on fake images before one backward: the second forward's power iteration must not
/// invalidate what the first one saved for the backward (PyTorch clones u and v for this).
#[test]
fn spectral_norm_survives_two_training_forwards_before_backward() {
    use ganzoo_models::nets::{DataShape, DiscriminatorConfig};
    for (cfg, shape) in [
        (DiscriminatorConfig::Mlp(Default::default()), DataShape::flat(2)),
        (DiscriminatorConfig::Dcgan(Default::default()), DataShape::image(1, 28)),
    ] {
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let d = cfg.build(&vs.root(), &shape, true).unwrap();
        let x = tch::Tensor::ones(shape.batch_shape(4), (tch::Kind::Float, tch::Device::Cpu));
        let loss = d.forward_t(&x, true).mean(tch::Kind::Float) - d.forward_t(&(&x * 0.5), true).mean(tch::Kind::Float);
        loss.f_backward().expect("backward through two spectrally normalized forwards");
    }
}

#[test]
fn leaky_relu_is_libtorchs_kernel_and_twice_differentiable() {
    let mut rng = derived_rng(9, "leaky", 0);
    let x = randn(&mut rng, &[4, 3, 5, 5], Device::Cpu);
    // Zeros of both signs too.
    let x = Tensor::cat(&[x.flatten(0, -1), Tensor::from_slice(&[0.0f32, -0.0])], 0).set_requires_grad(true);
    // Slope 0.01 is the one tch binds: the same kernel, bit for bit (slope 0.2 against PyTorch: models/ext's test).
    let ours01 = ganzoo_models::nets::leaky_relu(&x, 0.01);
    assert!(ours01.equal(&x.leaky_relu()), "forward, slope 0.01");
    let g01 = Tensor::run_backward(&[ours01.sum(Kind::Float)], &[&x], false, false).remove(0);
    let gt = Tensor::run_backward(&[x.leaky_relu().sum(Kind::Float)], &[&x], false, false).remove(0);
    assert!(g01.equal(&gt), "gradient, slope 0.01");
    let ours = ganzoo_models::nets::leaky_relu(&x, 0.2);
    let fused = x.prelu(&Tensor::full([1], 0.2, (Kind::Float, Device::Cpu))); // the form of an earlier version
    assert!(ours.equal(&fused), "forward");
    let g_ours = Tensor::run_backward(&[ours.sum(Kind::Float)], &[&x], true, true).remove(0);
    let g_fused = Tensor::run_backward(&[fused.sum(Kind::Float)], &[&x], true, true).remove(0);
    assert!(g_ours.equal(&g_fused), "gradient");
    // The gradient penalty's double backward reaches the weights through it as through the fused form.
    let vs = nn::VarStore::new(Device::Cpu);
    let (l1, l2) = (nn::linear(vs.root() / "l1", 6, 8, Default::default()), nn::linear(vs.root() / "l2", 8, 1, Default::default()));
    let real = randn(&mut rng, &[5, 6], Device::Cpu);
    let fake = randn(&mut rng, &[5, 6], Device::Cpu);
    let eps = ganzoo_models::rng::uniform(&mut rng, &[5, 1], 0.0, 1.0, Device::Cpu);
    let grads = |fused: bool| {
        let critic = |x: &Tensor| {
            let h = l1.forward_t(x, true);
            let h = if fused { h.prelu(&Tensor::full([1], 0.2, (Kind::Float, Device::Cpu))) } else { ganzoo_models::nets::leaky_relu(&h, 0.2) };
            l2.forward_t(&h, true).view([-1])
        };
        let gp = ganzoo_models::losses::gradient_penalty(&critic, &real, &fake, &eps).expect("penalty");
        let w = vs.variables()["l1.weight"].shallow_clone();
        Tensor::run_backward(&[gp], &[&w], false, false).remove(0)
    };
    assert!(grads(false).allclose(&grads(true), 1e-6, 1e-7, false), "GP's gradient on the weights");
    // bf16 too.
    let xb = x.detach().to_kind(Kind::BFloat16);
    assert!(ganzoo_models::nets::leaky_relu(&xb, 0.01).equal(&xb.leaky_relu()), "bf16");
}
