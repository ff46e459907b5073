//! Optimizer state round trip, LR schedules, EMA and clipping helpers.

use std::collections::HashMap;

use ganzoo_models::losses::{clip_grad_norm, clip_weights};
use ganzoo_models::optim::{ema_update, LrSchedule, Optimizer, OptimizerConfig};
use tch::{nn, Device, Kind, Tensor};

fn store(init: &[f32]) -> (nn::VarStore, Tensor, Tensor) {
    let vs = nn::VarStore::new(Device::Cpu);
    let w = vs.root().var_copy("w", &Tensor::from_slice(init));
    let b = (vs.root() / "layer").var_copy("b", &Tensor::from_slice(&[0.5f32, -0.5]));
    (vs, w, b)
}

fn loss(w: &Tensor, b: &Tensor) -> Tensor {
    (w * w * 3.0).sum(Kind::Float)
        + (b - 1.0).pow_tensor_scalar(4).sum(Kind::Float)
        + (w.narrow(0, 0, 2) * b).sum(Kind::Float)
}

fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&t.detach().flatten(0, -1)).expect("vec")
}

#[test]
fn state_round_trip_gives_identical_next_step() {
    let configs = [
        OptimizerConfig::Adam {
            lr: 0.05,
            betas: (0.5, 0.999),
            eps: 1e-8,
            weight_decay: 0.01,
        },
        OptimizerConfig::Rmsprop {
            lr: 0.01,
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.9,
            weight_decay: 0.0,
        },
        OptimizerConfig::Sgd {
            lr: 0.05,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 0.0,
        },
    ];
    for cfg in configs {
        let (vs, w, b) = store(&[1.0, -2.0, 0.3]);
        let mut opt = Optimizer::new(&vs, &cfg);
        for _ in 0..3 {
            opt.zero_grad();
            loss(&w, &b).backward();
            opt.step().expect("step");
        }
        opt.set_lr(opt.base_lr() * 0.5);
        let state: HashMap<String, Tensor> = opt.state_tensors("opt_g").into_iter().collect();
        assert!(state.contains_key("opt_g.step"));

        // A fresh store with the same weights and a fresh optimizer loaded from the saved state.
        let (vs2, w2, b2) = store(&[0.0, 0.0, 0.0]);
        tch::no_grad(|| {
            w2.shallow_clone().copy_(&w);
            b2.shallow_clone().copy_(&b);
        });
        let mut opt2 = Optimizer::new(&vs2, &cfg);
        opt2.load_state(&state, "opt_g").expect("load");
        assert_eq!(opt2.steps(), 3);
        assert_eq!(opt2.lr(), opt.lr());

        for (o, ww, bb) in [(&mut opt, &w, &b), (&mut opt2, &w2, &b2)] {
            o.zero_grad();
            loss(ww, bb).backward();
            o.step().expect("step");
        }
        assert_eq!(values(&w), values(&w2), "{cfg:?}");
        assert_eq!(values(&b), values(&b2), "{cfg:?}");
    }
}

#[test]
fn load_state_names_missing_and_misshaped_tensors() {
    let cfg = OptimizerConfig::Adam {
        lr: 0.1,
        betas: (0.9, 0.999),
        eps: 1e-8,
        weight_decay: 0.0,
    };
    let (vs, _, _) = store(&[1.0, 2.0, 3.0]);
    let opt = Optimizer::new(&vs, &cfg);
    let mut state: HashMap<String, Tensor> = opt.state_tensors("d").into_iter().collect();
    state.remove("d.exp_avg.w");
    state.insert(
        "d.exp_avg_sq.layer.b".into(),
        Tensor::zeros([5], (Kind::Float, Device::Cpu)),
    );
    let mut fresh = Optimizer::new(&vs, &cfg);
    let err = fresh
        .load_state(&state, "d")
        .expect_err("must fail")
        .to_string();
    assert!(err.contains("d.exp_avg.w"), "{err}");
    assert!(err.contains("d.exp_avg_sq.layer.b"), "{err}");
    assert!(fresh.load_state(&HashMap::new(), "d").is_err());
}

#[test]
fn config_defaults_and_unknown_keys() {
    let c: OptimizerConfig = serde_json::from_str(r#"{"kind":"adam","lr":0.001}"#).expect("parse");
    assert_eq!(
        c,
        OptimizerConfig::Adam {
            lr: 0.001,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0
        }
    );
    assert!(
        serde_json::from_str::<OptimizerConfig>(r#"{"kind":"adam","lr":0.001,"beta":1}"#).is_err()
    );
    assert!(
        serde_json::from_str::<OptimizerConfig>(r#"{"kind":"sgd"}"#).is_err(),
        "lr is required"
    );
    let r: OptimizerConfig =
        serde_json::from_str(r#"{"kind":"rmsprop","lr":5e-5}"#).expect("parse");
    assert!(r.check().is_empty());
    let bad = OptimizerConfig::Sgd {
        lr: -1.0,
        momentum: 0.0,
        nesterov: true,
        weight_decay: 0.0,
    };
    assert_eq!(bad.check().len(), 2);
    let s: LrSchedule = serde_json::from_str(r#"{"kind":"linear"}"#).expect("parse");
    assert_eq!(s, LrSchedule::Linear { start: 0.5 });
    assert_eq!(LrSchedule::default(), LrSchedule::Constant);
}

#[test]
fn schedules() {
    let lin = LrSchedule::Linear { start: 0.5 };
    assert_eq!(lin.factor(0, 200), 1.0);
    assert_eq!(lin.factor(100, 200), 1.0);
    assert!((lin.factor(150, 200) - 0.5).abs() < 1e-12);
    assert_eq!(lin.factor(200, 200), 0.0);
    let st = LrSchedule::Step {
        every: 10,
        gamma: 0.5,
    };
    assert_eq!(st.factor(9, 100), 1.0);
    assert_eq!(st.factor(10, 100), 0.5);
    assert_eq!(st.factor(25, 100), 0.25);
    assert_eq!(LrSchedule::Constant.factor(5, 10), 1.0);
}

#[test]
fn ema_mixes_weights_and_buffers() {
    let mk = |v: f32| {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = vs.root().var_copy("w", &Tensor::from_slice(&[v, v]));
        let _ = (vs.root() / "bn").add("running_mean", Tensor::from_slice(&[v]), false);
        vs
    };
    let target = mk(1.0);
    let source = mk(3.0);
    ema_update(&target, &source, 0.9);
    let vars = target.variables();
    assert!(values(&vars["w"]).iter().all(|x| (x - 1.2).abs() < 1e-6));
    assert_eq!(
        values(&vars["bn.running_mean"])[0],
        3.0,
        "buffers are copied, not averaged"
    );
    assert!(target.trainable_variables()[0].requires_grad());
}

#[test]
fn clipping() {
    let (vs, w, b) = store(&[1.0, -2.0, 0.3]);
    clip_weights(&vs.trainable_variables(), 0.5);
    assert_eq!(values(&w), vec![0.5, -0.5, 0.3]);
    assert!(w.requires_grad());
    // grads: d/dw sum(w * k) = k
    let k = Tensor::from_slice(&[3.0f32, 4.0, 0.0]);
    (&w * &k).sum(Kind::Float).backward();
    let total = clip_grad_norm(&[w.shallow_clone(), b.shallow_clone()], 1.0);
    assert!((total - 5.0).abs() < 1e-5);
    let g = values(&w.grad());
    assert!((g[0] - 0.6).abs() < 1e-5 && (g[1] - 0.8).abs() < 1e-5);
    let total2 = clip_grad_norm(&[w.shallow_clone()], 10.0);
    assert!((total2 - 1.0).abs() < 1e-5);
}

#[test]
fn max_norm_rescales_each_unit_incoming_weights_only() {
    let vs = nn::VarStore::new(Device::Cpu);
    let w = (vs.root() / "fc").var_copy("weight", &Tensor::from_slice(&[3.0f32, 4.0, 0.0, 0.3, 0.4, 0.0]).view([2, 3]));
    let b = (vs.root() / "fc").var_copy("bias", &Tensor::from_slice(&[10.0f32, -10.0]));
    let named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    ganzoo_models::losses::max_norm(named.iter().map(|(n, t)| (n.as_str(), t)), 1.0);
    // Row 1 had norm 5: scaled to norm 1; row 2 (norm 0.5) and the bias are left alone.
    let got = values(&w);
    assert!((got[0] - 0.6).abs() < 1e-5 && (got[1] - 0.8).abs() < 1e-5 && got[2] == 0.0, "{got:?}");
    assert!((got[3] - 0.3).abs() < 1e-7 && (got[4] - 0.4).abs() < 1e-7, "{got:?}");
    assert_eq!(values(&b), vec![10.0, -10.0]);
}
