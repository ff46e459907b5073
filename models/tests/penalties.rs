//! R1 (Mescheder et al. 2018, eq. 9) and the WGAN-GP penalty on critics whose input gradient is known in closed
//! form, their gradients w.r.t. the critic's weights against finite differences (float64), and the errors for
//! outputs they cannot use. The PyTorch golden comparisons are in golden.rs.

use ganzoo_models::losses::{gradient_penalty, r1_penalty};
use ganzoo_models::rng::{derived_rng, randn};
use tch::{Device, Kind, Tensor};

const CPU: Device = Device::Cpu;

fn f64s(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.detach().to_kind(Kind::Double).flatten(0, -1)).expect("to vec")
}

fn data(seed: u64, shape: &[i64]) -> Tensor {
    randn(&mut derived_rng(seed, "penalties", 0), shape, CPU).to_kind(Kind::Double)
}

#[test]
fn r1_of_a_linear_critic_is_the_squared_norm_of_its_weight() {
    let w = data(1, &[1, 5]);
    let x = data(2, &[4, 5]);
    let p = r1_penalty(&|x: &Tensor| x.matmul(&w.tr()), &x).expect("R1"); // critic (N, 1)
    let want = w.square().sum(Kind::Double).double_value(&[]);
    assert!((p.double_value(&[]) - want).abs() <= 1e-12 * want, "{} vs ‖w‖² {want}", p.double_value(&[]));
    // On images too: ⟨w, x⟩ over C·H·W.
    let w = data(3, &[2, 3, 3]);
    let x = data(4, &[3, 2, 3, 3]);
    let critic = |x: &Tensor| (x * &w).sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Double); // (N,)
    let p = r1_penalty(&critic, &x).expect("R1").double_value(&[]);
    let want = w.square().sum(Kind::Double).double_value(&[]);
    assert!((p - want).abs() <= 1e-12 * want, "{p} vs {want}");
}

#[test]
fn r1_of_a_quadratic_critic_equals_the_analytic_value() {
    // D(x) = Σⱼ aⱼ xⱼ²: ∇D = 2 a ⊙ x, so R1 = mean over n of 4 Σⱼ aⱼ² xₙⱼ².
    let a = data(5, &[6]);
    let x = data(6, &[5, 6]);
    let critic = |x: &Tensor| (x.square() * &a).sum_dim_intlist([1i64].as_slice(), false, Kind::Double);
    let p = r1_penalty(&critic, &x).expect("R1").double_value(&[]);
    let want = (x.square() * a.square() * 4.0).sum(Kind::Double).double_value(&[]) / 5.0;
    assert!((p - want).abs() <= 1e-12 * want, "{p} vs analytic {want}");
}

#[test]
fn several_scores_per_sample_are_averaged_per_sample() {
    // A map of k identical copies of ⟨w, x⟩ has the same per-sample mean, so the same penalties.
    let w = data(7, &[4, 1]);
    let (real, fake) = (data(8, &[3, 4]), data(9, &[3, 4]));
    let eps = Tensor::from_slice(&[0.2f64, 0.5, 0.9]).reshape([3, 1]);
    let one = |x: &Tensor| x.matmul(&w); // (N, 1)
    let map = |x: &Tensor| x.matmul(&w).reshape([3, 1, 1, 1]).expand([3, 1, 2, 3], false) * 1.0; // (N, 1, 2, 3)
    let r1 = |c: &dyn Fn(&Tensor) -> Tensor| r1_penalty(c, &real).expect("R1").double_value(&[]);
    let gp = |c: &dyn Fn(&Tensor) -> Tensor| gradient_penalty(c, &real, &fake, &eps).expect("GP").double_value(&[]);
    assert!((r1(&one) - r1(&map)).abs() < 1e-12);
    assert!((gp(&one) - gp(&map)).abs() < 1e-12);
    // A map whose entries differ: sample n's gradient is the mean of its entries' gradients, Σₖ wₖ / K.
    let w2 = data(10, &[4, 6]); // 6 scores per sample
    let map2 = |x: &Tensor| x.matmul(&w2); // (N, 6)
    let mean_w = w2.mean_dim(1, false, Kind::Double);
    let want = mean_w.square().sum(Kind::Double).double_value(&[]);
    assert!((r1(&map2) - want).abs() <= 1e-12 * want);
    let want_gp = (mean_w.norm().double_value(&[]) - 1.0).powi(2);
    assert!((gp(&map2) - want_gp).abs() <= 1e-12 * want_gp.max(1e-12));
}

/// The penalty's gradient w.r.t. each of D's weights equals central finite differences of the penalty itself.
#[test]
fn penalty_gradients_match_finite_differences() {
    let w1 = data(11, &[3, 4]).set_requires_grad(true);
    let w2 = data(12, &[4, 1]).set_requires_grad(true);
    let (real, fake) = (data(13, &[5, 3]), data(14, &[5, 3]));
    let eps = Tensor::from_slice(&[0.1f64, 0.3, 0.5, 0.7, 0.9]).reshape([5, 1]);
    let critic_with = |w1: &Tensor, w2: &Tensor| {
        let (w1, w2) = (w1.shallow_clone(), w2.shallow_clone());
        move |x: &Tensor| x.matmul(&w1).tanh().matmul(&w2) // (N, 1)
    };
    type Pen<'a> = Box<dyn Fn(&Tensor, &Tensor) -> Tensor + 'a>;
    let penalties: [(&str, Pen); 2] = [
        ("R1", Box::new(|a: &Tensor, b: &Tensor| r1_penalty(&critic_with(a, b), &real).expect("R1"))),
        ("GP", Box::new(|a: &Tensor, b: &Tensor| gradient_penalty(&critic_with(a, b), &real, &fake, &eps).expect("GP"))),
    ];
    for (name, pen) in &penalties {
        for w in [&w1, &w2] {
            w.shallow_clone().zero_grad();
        }
        pen(&w1, &w2).backward();
        let (g1, g2) = (f64s(&w1.grad()), f64s(&w2.grad()));
        let h = 1e-6;
        for (which, w, grad) in [("w1", &w1, &g1), ("w2", &w2, &g2)] {
            for i in 0..grad.len() {
                let bump = |d: f64| {
                    let mut v = f64s(w);
                    v[i] += d;
                    let t = Tensor::from_slice(&v).reshape(w.size().as_slice());
                    let (a, b) = if which == "w1" { (t, w2.detach()) } else { (w1.detach(), t) };
                    pen(&a.set_requires_grad(true), &b.set_requires_grad(true)).double_value(&[])
                };
                let fd = (bump(h) - bump(-h)) / (2.0 * h);
                assert!(
                    (fd - grad[i]).abs() <= 1e-6 * fd.abs().max(1.0),
                    "{name} d/d{which}[{i}]: autograd {} vs finite difference {fd}",
                    grad[i]
                );
            }
        }
    }
}

#[test]
fn r1_refuses_graph_less_critics_and_mismatched_batches() {
    let w = data(15, &[2, 1]);
    let x = data(16, &[3, 2]);
    // No graph: an error, not a segfault.
    assert!(r1_penalty(&|x: &Tensor| x.matmul(&w).detach(), &x).is_err());
    assert!(tch::no_grad(|| r1_penalty(&|x: &Tensor| x.matmul(&w), &x)).is_err());
    // A first dimension that is not the batch: a shape error, for R1 and for the gradient penalty.
    let scalar = |x: &Tensor| x.matmul(&w).sum(Kind::Double); // ()
    let transposed = |x: &Tensor| x.matmul(&w).tr(); // (1, N)
    let eps = Tensor::full([3, 1], 0.5, (Kind::Double, CPU));
    for critic in [&scalar as &dyn Fn(&Tensor) -> Tensor, &transposed] {
        let e = r1_penalty(critic, &x).expect_err("R1 must refuse").to_string();
        assert!(e.contains("batch of 3"), "{e}");
        let e = gradient_penalty(critic, &x, &x, &eps).expect_err("GP must refuse").to_string();
        assert!(e.contains("batch of 3"), "{e}");
    }
    // A critic that ignores its input (its output has a graph, through a weight) has no gradient to penalize.
    let b = data(17, &[1]).set_requires_grad(true);
    let constant = |x: &Tensor| x.zeros_like().sum_dim_intlist([1i64].as_slice(), false, Kind::Double) + &b;
    assert!(r1_penalty(&constant, &x).is_err());
}
