//! What the regularizers do to real networks (the engine's arithmetic is checked on a toy in engine.rs):
//! WGAN-GP training pulls the critic's gradient norm on interpolates toward 1 (Gulrajani et al. 2017).
use ganzoo_pipelines::config::load::{from_value, parse_yaml};
use ganzoo_pipelines::engine::Trainer;
use ganzoo_pipelines::family::Family;
use ganzoo_pipelines::families::Config;
use ganzoo_models::rng::{derived_rng, randn, uniform};
use tch::{Device, Kind, Tensor};

/// Mean |‖∇ₓD(x̂)‖ − 1| over 256 interpolates between ring samples and a Gaussian cloud around the origin (where
/// G's samples start and move out from), with fixed draws.
fn gradient_norm_gap(fam: &dyn Family) -> f64 {
    let mut rng = derived_rng(11, "gp_probe", 0);
    let real: Vec<f32> = ganzoo_data::toy::Toy2d::Ring8.sample(256, 0.02, &mut rng).into_iter().flatten().collect();
    let real = Tensor::from_slice(&real).view([256, 2]);
    let fake = randn(&mut rng, &[256, 2], Device::Cpu) * 0.5;
    let eps = uniform(&mut rng, &[256, 1], 0.0, 1.0, Device::Cpu);
    let x = (&eps * &real + (-&eps + 1.0) * &fake).set_requires_grad(true);
    let s = fam.critic("D", &x, None).expect("critic");
    let g = Tensor::run_backward(&[s.sum(Kind::Float)], &[&x], false, false).remove(0);
    (g.norm_scalaropt_dim(2.0, [1i64].as_slice(), false) - 1.0).abs().mean(Kind::Float).double_value(&[])
}

#[test]
fn gradient_penalty_pulls_the_critic_gradient_norm_toward_one() {
    tch::set_num_threads(1);
    let yaml = "name: gp\nseed: 2\ndevice: cpu\ndata: {kind: ring8}\nmodel: {family: gan, z_dim: 2, init: pytorch, generator: {arch: mlp, hidden: 64, layers: 2}, discriminator: {arch: mlp, hidden: 64, layers: 2}}\nloss: {adversarial: wasserstein, gradient_penalty: 10}\ntrain: {steps: 150, batch_size: 128, n_critic: 5, g_optimizer: {kind: adam, lr: 1.0e-3, betas: [0.5, 0.9]}, d_optimizer: {kind: adam, lr: 1.0e-3, betas: [0.5, 0.9]}}";
    let cfg: Config = from_value(parse_yaml(yaml).unwrap(), &[], &[]).unwrap();
    assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
    let mut fam = cfg.build(Device::Cpu, true, None).unwrap();
    let mut t = Trainer::new(fam.as_ref(), &cfg.settings(), Device::Cpu).unwrap();
    let before = gradient_norm_gap(fam.as_ref());
    for step in 0..cfg.train.steps {
        t.step(fam.as_mut(), step).unwrap();
    }
    let after = gradient_norm_gap(fam.as_ref());
    eprintln!("mean |‖∇D‖ − 1| on interpolates: before {before:.3}, after {after:.3}");
    assert!(after < 0.5 * before && after < 0.25, "mean |‖∇D‖ − 1| before {before:.3}, after {after:.3}");
}
