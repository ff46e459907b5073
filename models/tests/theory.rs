//! Goodfellow et al. 2014, Proposition 1 and Theorem 1, checked numerically in 1-D.
//!
//! With p_data = N(0, 1) and a fixed generator distribution p_g = N(1.5, 0.8²):
//! - a discriminator trained with the GAN D loss approaches D*(x) = p_data(x) / (p_data(x) + p_g(x));
//! - V(D*, G) = ∫ p_data log D* + p_g log(1 − D*) equals −log 4 + 2·JSD(p_data ‖ p_g) (the proof of Thm. 1),
//!   with the JSD computed separately from the two KL divergences to the mixture;
//! - the trained D's value V(D, G) is close to (and never above) V(D*, G), since D* maximizes V.

use ganzoo_models::init::init_default;
use ganzoo_models::losses::AdvLoss;
use ganzoo_models::mlp::{Activation, MlpConfig};
use ganzoo_models::nets::{DataShape, DiscriminatorConfig};
use ganzoo_models::optim::{Optimizer, OptimizerConfig};
use ganzoo_models::rng::{derived_rng, randn};
use tch::{nn, Device, Kind, Tensor};

const MU_G: f64 = 1.5;
const SIGMA_G: f64 = 0.8;

fn normal_pdf(x: f64, mu: f64, sigma: f64) -> f64 {
    let z = (x - mu) / sigma;
    (-0.5 * z * z).exp() / (sigma * (2.0 * std::f64::consts::PI).sqrt())
}

fn p_data(x: f64) -> f64 {
    normal_pdf(x, 0.0, 1.0)
}

fn p_g(x: f64) -> f64 {
    normal_pdf(x, MU_G, SIGMA_G)
}

fn d_star(x: f64) -> f64 {
    p_data(x) / (p_data(x) + p_g(x))
}

fn ln_normal(x: f64, mu: f64, sigma: f64) -> f64 {
    let z = (x - mu) / sigma;
    -0.5 * z * z - (sigma * (2.0 * std::f64::consts::PI).sqrt()).ln()
}

/// (log D*(x), log(1 − D*(x))) in log space, so the far tails do not underflow to log 0.
fn ln_d_star(x: f64) -> (f64, f64) {
    let (a, b) = (ln_normal(x, 0.0, 1.0), ln_normal(x, MU_G, SIGMA_G));
    let m = a.max(b);
    let lse = m + ((a - m).exp() + (b - m).exp()).ln();
    (a - lse, b - lse)
}

/// The integrand of V(D*, G): p_data log D* + p_g log(1 − D*).
fn v_star_integrand(x: f64) -> f64 {
    let (ld, l1d) = ln_d_star(x);
    p_data(x) * ld + p_g(x) * l1d
}

/// Composite Simpson's rule on [a, b] with `n` (even) intervals.
fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
    let h = (b - a) / n as f64;
    let mut s = f(a) + f(b);
    for i in 1..n {
        s += f(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    s * h / 3.0
}

/// x·log(x/y) with the 0·log 0 = 0 convention.
fn kl_term(p: f64, q: f64) -> f64 {
    if p <= 0.0 {
        0.0
    } else {
        p * (p / q).ln()
    }
}

#[test]
fn value_at_optimal_d_is_minus_log4_plus_two_jsd() {
    let (a, b, n) = (-14.0, 16.0, 60_000);
    let v_star = simpson(v_star_integrand, a, b, n);
    let m = |x: f64| 0.5 * (p_data(x) + p_g(x));
    let kl_data = simpson(|x| kl_term(p_data(x), m(x)), a, b, n);
    let kl_g = simpson(|x| kl_term(p_g(x), m(x)), a, b, n);
    let jsd = 0.5 * (kl_data + kl_g);
    assert!(jsd > 0.1 && jsd < std::f64::consts::LN_2, "JSD {jsd}");
    let theorem = -(4.0f64).ln() + 2.0 * jsd;
    assert!(
        (v_star - theorem).abs() < 1e-6,
        "V(D*,G) {v_star} vs -log4 + 2 JSD {theorem}"
    );
    // Sanity: both densities integrate to 1 on this range.
    assert!(
        (simpson(p_data, a, b, n) - 1.0).abs() < 1e-9 && (simpson(p_g, a, b, n) - 1.0).abs() < 1e-9
    );
}

#[test]
fn trained_discriminator_approaches_the_optimal_discriminator() {
    tch::set_num_threads(1);
    let dev = Device::Cpu;
    let vs = nn::VarStore::new(dev);
    let cfg = DiscriminatorConfig::Mlp(MlpConfig {
        hidden: 32,
        layers: 2,
        activation: Activation::Tanh,
    });
    let d = cfg
        .build(&vs.root(), &DataShape::flat(1), false)
        .expect("D builds");
    init_default(&vs, &mut derived_rng(0, "theory.init", 0));
    let ocfg = OptimizerConfig::Adam {
        lr: 1e-2,
        betas: (0.9, 0.999),
        eps: 1e-8,
        weight_decay: 0.0,
    };
    let mut opt = Optimizer::new(&vs, &ocfg);
    let loss = AdvLoss::Minimax;
    let steps = 600;
    let batch = 512;
    for step in 0..steps {
        // Step decay keeps the final D from tracking the last batches' noise.
        opt.set_lr(
            opt.base_lr()
                * if step < 300 {
                    1.0
                } else if step < 450 {
                    0.3
                } else {
                    0.1
                },
        );
        let real = randn(&mut derived_rng(1, "theory.data", step), &[batch, 1], dev);
        let fake = randn(&mut derived_rng(1, "theory.g", step), &[batch, 1], dev) * SIGMA_G + MU_G;
        opt.zero_grad();
        let l = loss.d_loss(&d.forward_t(&real, true), &d.forward_t(&fake, true));
        l.backward();
        opt.step().expect("step");
    }

    let d_of = |xs: &[f64]| -> Vec<f64> {
        let x = Tensor::from_slice(xs).to_kind(Kind::Float).reshape([-1, 1]);
        let s = tch::no_grad(|| d.forward_t(&x, false).sigmoid().to_kind(Kind::Double));
        Vec::<f64>::try_from(&s).expect("vec")
    };

    // D(x) vs D*(x) on a grid over [-2, 3].
    let grid: Vec<f64> = (0..=100).map(|i| -2.0 + 5.0 * i as f64 / 100.0).collect();
    let got = d_of(&grid);
    let errs: Vec<f64> = grid
        .iter()
        .zip(&got)
        .map(|(x, g)| (g - d_star(*x)).abs())
        .collect();
    let mean_err = errs.iter().sum::<f64>() / errs.len() as f64;
    let max_err = errs.iter().cloned().fold(0.0, f64::max);
    eprintln!("D vs D*: mean abs error {mean_err:.4}, max {max_err:.4}");
    assert!(mean_err < 0.02, "mean |D - D*| = {mean_err}");
    assert!(max_err < 0.05, "max |D - D*| = {max_err}");

    // V(D, G) by quadrature with the trained D, against V(D*, G).
    let (a, b, n) = (-7.0, 8.0, 3000);
    let xs: Vec<f64> = (0..=n).map(|i| a + (b - a) * i as f64 / n as f64).collect();
    let dx = d_of(&xs);
    let h = (b - a) / n as f64;
    let integrand = |i: usize, dv: f64| {
        p_data(xs[i]) * dv.max(1e-12).ln() + p_g(xs[i]) * (1.0 - dv).max(1e-12).ln()
    };
    let v_d: f64 = (0..=n)
        .map(|i| {
            integrand(i, dx[i])
                * if i == 0 || i == n {
                    1.0
                } else if i % 2 == 1 {
                    4.0
                } else {
                    2.0
                }
        })
        .sum::<f64>()
        * h
        / 3.0;
    let v_star = simpson(v_star_integrand, a, b, n);
    eprintln!("V(D,G) {v_d:.5}, V(D*,G) {v_star:.5}");
    assert!(
        v_d <= v_star + 1e-6,
        "D* maximizes V: V(D) {v_d} > V(D*) {v_star}"
    );
    assert!(v_star - v_d < 0.005, "V(D*) - V(D) = {}", v_star - v_d);
}
