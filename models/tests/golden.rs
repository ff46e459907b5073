//! Golden tests: losses, gradient penalty, R1 and optimizers against numbers PyTorch 2.11 produced
//! (`models/golden/make_golden.py` writes `models/golden/golden.json`; float64 throughout).

mod common;

use common::{tensor, to_vec};
use ganzoo_models::losses::{gradient_penalty, r1_penalty, AdvLoss, Target};
use ganzoo_models::optim::{Optimizer, OptimizerConfig};
use serde_json::Value;
use tch::{nn, Device, Kind, Tensor};

const GOLDEN: &str = include_str!("../golden/golden.json");

fn golden() -> Value {
    serde_json::from_str(GOLDEN).expect("golden.json parses")
}

fn flat(t: &Tensor) -> Vec<f64> {
    let t = t.detach().to_kind(Kind::Double).flatten(0, -1);
    Vec::<f64>::try_from(&t).expect("to vec")
}

fn close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-6 * w.abs().max(1e-3);
        assert!(
            (g - w).abs() <= tol,
            "{what}[{i}]: got {g}, PyTorch {w} (diff {})",
            (g - w).abs()
        );
    }
}

#[test]
fn adversarial_losses_match_pytorch() {
    let g = golden();
    let scores = tensor(&g["losses"]["scores"]);
    for (name, loss) in [
        ("minimax", AdvLoss::Minimax),
        ("non_saturating", AdvLoss::NonSaturating),
        ("lsgan", AdvLoss::Lsgan),
        ("wasserstein", AdvLoss::Wasserstein),
        ("hinge", AdvLoss::Hinge),
    ] {
        let e = &g["losses"]["expected"][name];
        let real = loss.d_term(&scores, Target::Real);
        let fake = loss.d_term(&scores, Target::Fake);
        assert_eq!(real.size(), Vec::<i64>::new(), "{name}: scalar");
        close(
            &flat(&real),
            &to_vec(&e["d_real"]),
            &format!("{name}.d_real"),
        );
        close(
            &flat(&fake),
            &to_vec(&e["d_fake"]),
            &format!("{name}.d_fake"),
        );
        close(
            &flat(&loss.g_loss(&scores)),
            &to_vec(&e["g"]),
            &format!("{name}.g"),
        );
        let d = loss.d_loss(&scores, &scores);
        close(
            &flat(&d),
            &[to_vec(&e["d_real"])[0] + to_vec(&e["d_fake"])[0]],
            &format!("{name}.d_loss"),
        );
    }
}

/// The golden MLP critic tanh(x·w1 + b1)·w2 of `golden.json`'s "gp" section: its weights (w1, b1, w2), kept
/// in a store.
fn mlp_critic_weights(gp: &Value) -> (nn::VarStore, [Tensor; 3]) {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let w = ["w1", "b1", "w2"].map(|k| root.add(k, tensor(&gp[k]), true));
    (vs, w)
}

fn mlp_critic([w1, b1, w2]: &[Tensor; 3]) -> impl Fn(&Tensor) -> Tensor + '_ {
    move |x: &Tensor| (x.matmul(w1) + b1).tanh().matmul(w2).reshape([-1]) // (N, 3) -> (N,)
}

#[test]
fn gradient_penalty_matches_pytorch_including_double_backward() {
    let g = golden();
    let gp = &g["gp"];
    let (_vs, w) = mlp_critic_weights(gp);
    let [w1, _, w2] = &w;
    let critic = mlp_critic(&w);
    let p = gradient_penalty(
        &critic,
        &tensor(&gp["real"]),
        &tensor(&gp["fake"]),
        &tensor(&gp["eps"]),
    )
    .expect("penalty");
    close(&flat(&p), &to_vec(&gp["penalty"]), "penalty");
    p.backward();
    close(&flat(&w1.grad()), &to_vec(&gp["grad_w1"]), "grad w1");
    close(&flat(&w2.grad()), &to_vec(&gp["grad_w2"]), "grad w2");
}

#[test]
fn r1_penalty_matches_pytorch_including_double_backward() {
    let g = golden();
    let (gp, r1) = (&g["gp"], &g["r1"]);
    let (_vs, w) = mlp_critic_weights(gp);
    let [w1, b1, w2] = &w;
    let p = r1_penalty(&mlp_critic(&w), &tensor(&gp["real"])).expect("R1");
    close(&flat(&p), &to_vec(&r1["penalty"]), "R1");
    p.backward();
    close(&flat(&w1.grad()), &to_vec(&r1["grad_w1"]), "R1 grad w1");
    close(&flat(&b1.grad()), &to_vec(&r1["grad_b1"]), "R1 grad b1");
    close(&flat(&w2.grad()), &to_vec(&r1["grad_w2"]), "R1 grad w2");
}

/// A PatchGAN-like critic (N, 2, 4, 4) -> (N, 1, 2, 2): R1 and the gradient penalty reduce each sample's map
/// by its mean before differentiating, as the PyTorch reference does.
#[test]
fn penalties_on_a_patch_map_critic_match_pytorch() {
    let g = golden();
    let pt = &g["patch"];
    for which in ["r1", "gp"] {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let k1 = root.add("k1", tensor(&pt["k1"]), true);
        let c1 = root.add("c1", tensor(&pt["c1"]), true);
        let k2 = root.add("k2", tensor(&pt["k2"]), true);
        let critic = |x: &Tensor| {
            x.conv2d(&k1, Some(&c1), [1, 1], [1, 1], [1, 1], 1) // (N, 3, 4, 4)
                .tanh()
                .conv2d(&k2, None::<Tensor>, [2, 2], [0, 0], [1, 1], 1) // (N, 1, 2, 2)
        };
        let real = tensor(&pt["real"]);
        let p = match which {
            "r1" => r1_penalty(&critic, &real),
            _ => gradient_penalty(&critic, &real, &tensor(&pt["fake"]), &tensor(&pt["eps"])),
        }
        .expect("penalty");
        let want = &pt[which];
        close(&flat(&p), &to_vec(&want["penalty"]), &format!("{which} penalty"));
        p.backward();
        close(&flat(&k1.grad()), &to_vec(&want["grad_k1"]), &format!("{which} grad k1"));
        close(&flat(&c1.grad()), &to_vec(&want["grad_c1"]), &format!("{which} grad c1"));
        close(&flat(&k2.grad()), &to_vec(&want["grad_k2"]), &format!("{which} grad k2"));
    }
}

#[test]
fn gradient_penalty_refuses_graph_less_critic() {
    let w = Tensor::from_slice(&[1.0f32, 2.0]).reshape([2, 1]);
    let real = Tensor::ones([3, 2], (Kind::Float, Device::Cpu));
    let fake = Tensor::zeros([3, 2], (Kind::Float, Device::Cpu));
    let eps = Tensor::full([3, 1], 0.5, (Kind::Float, Device::Cpu));
    // A critic that detaches its output has no graph: must be an error, not a segfault.
    let detached = |x: &Tensor| x.matmul(&w).reshape([-1]).detach();
    assert!(gradient_penalty(&detached, &real, &fake, &eps).is_err());
    let under_no_grad = tch::no_grad(|| {
        gradient_penalty(&|x: &Tensor| x.matmul(&w).reshape([-1]), &real, &fake, &eps)
    });
    assert!(under_no_grad.is_err());
    // An eps that does not broadcast is an error, not a panic.
    let bad_eps = Tensor::full([2, 1], 0.5, (Kind::Float, Device::Cpu));
    assert!(gradient_penalty(
        &|x: &Tensor| x.matmul(&w).reshape([-1]),
        &real,
        &fake,
        &bad_eps
    )
    .is_err());
    // Shape mismatch is an error too.
    assert!(gradient_penalty(
        &|x: &Tensor| x.sum_dim_intlist([1i64].as_slice(), false, Kind::Float),
        &real,
        &fake.narrow(0, 0, 2),
        &eps
    )
    .is_err());
}

#[test]
fn optimizers_match_pytorch_trajectories() {
    let g = golden();
    let o = &g["optim"];
    let k = tensor(&o["k"]);
    let c = tensor(&o["c"]);
    for case in o["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let cfg: OptimizerConfig =
            serde_json::from_value(case["config"].clone()).expect("config parses");
        let vs = nn::VarStore::new(Device::Cpu);
        let a = vs.root().add("a", tensor(&o["a0"]), true);
        let b = vs.root().add("b", tensor(&o["b0"]), true);
        let mut opt = Optimizer::new(&vs, &cfg);
        assert_eq!(opt.param_names(), vec!["a".to_string(), "b".to_string()]);
        for (i, want) in case["trajectory"]
            .as_array()
            .expect("trajectory")
            .iter()
            .enumerate()
        {
            opt.zero_grad();
            let loss = (&k * (&a - &c).square()).sum(Kind::Double)
                + b.pow_tensor_scalar(4).sum(Kind::Double)
                + (a.narrow(0, 0, 2) * b.get(0)).sum(Kind::Double);
            loss.backward();
            opt.step().expect("step");
            close(
                &flat(&a),
                &to_vec(&want["a"]),
                &format!("{name} step {} a", i + 1),
            );
            close(
                &flat(&b),
                &to_vec(&want["b"]),
                &format!("{name} step {} b", i + 1),
            );
        }
        assert_eq!(opt.steps(), 5);
    }
}
