//! The engine's side of every update, on a toy family whose gradients are known in closed form: gradient
//! accumulation, D frozen during G's backward, held optimizer steps, scaled loss terms, n_critic and phase
//! order, weight clipping, max-norm, gradient clipping, EMA, the gradient penalty and R1, DiffAugment's
//! transform per update, and bf16 autocast.
use ganzoo_pipelines::config::{Precision, Settings};
use ganzoo_pipelines::engine::Trainer;
use ganzoo_pipelines::error::Result;
use ganzoo_pipelines::family::{Batch, CriticInput, Ctx, Family, Losses, Net, Phase, Role, Update};
use ganzoo_pipelines::feed::Feed;
use ganzoo_data::source::Source;
use ganzoo_models::optim::OptimizerConfig;
use std::path::Path;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// G has a parameter `a` (2,), D a parameter `w` (2,): D(x) = x·w, so ∇ₓD = w for every sample.
struct Toy {
    g: VarStore,
    d: VarStore,
    a: Tensor,
    w: Tensor,
    phases: &'static [Phase],
    /// (phase, draw, micro-batch) of every loss the engine asked for.
    seen: Vec<(Phase, i64, usize)>,
    /// G's loss adds `a·a` after scaling G's gradients so far by this factor.
    then_scale: Option<f64>,
    hold_d: bool,
    /// The dtype of D's scores in the last D loss (autocast check).
    score_kind: Option<Kind>,
    /// Real and generated inputs D's update sees (DiffAugment check): (real as D sees it, fake as D sees it).
    seen_inputs: Vec<(Tensor, Tensor)>,
    images: bool,
    /// The generated inputs the penalties see are NaN (R1 must not look at them).
    nan_fake: bool,
}

impl Toy {
    fn new(phases: &'static [Phase]) -> Self {
        let (g, d) = (VarStore::new(Device::Cpu), VarStore::new(Device::Cpu));
        let a = g.root().var_copy("a", &Tensor::from_slice(&[0.5f32, -1.0]));
        let w = d.root().var_copy("w", &Tensor::from_slice(&[2.0f32, 1.0]));
        Toy { g, d, a, w, phases, seen: vec![], then_scale: None, hold_d: false, score_kind: None, seen_inputs: vec![], images: false, nan_fake: false }
    }

    fn sgd(lr: f64) -> OptimizerConfig {
        OptimizerConfig::Sgd { lr, momentum: 0.0, nesterov: false, weight_decay: 0.0 }
    }

    fn flat(&self, x: &Tensor) -> Tensor {
        if self.images {
            x.flatten(1, -1).narrow(1, 0, 2)
        } else {
            x.shallow_clone()
        }
    }
}

impl Family for Toy {
    fn networks(&self) -> Vec<Net<'_>> {
        vec![
            Net { name: "G", role: Role::Generator, vs: &self.g, opt: Some(("opt_G", Toy::sgd(0.1))) },
            Net { name: "D", role: Role::Discriminator, vs: &self.d, opt: Some(("opt_D", Toy::sgd(0.1))) },
        ]
    }
    fn phases(&self) -> &'static [Phase] {
        self.phases
    }
    fn train_source(&self) -> Option<Source> {
        None
    }
    /// (draw + 1) · mean(x·w): ∂/∂w = (draw + 1) · mean(x).
    fn d_loss(&mut self, b: &Batch, ctx: &Ctx) -> Result<Update> {
        self.seen.push((Phase::D, b.draw, ctx.micro));
        let real = ctx.d_input(&b.x)?;
        let fake = ctx.d_input(&(b.x.detach() * 0.0 + 1.0))?;
        self.seen_inputs.push((real.shallow_clone(), fake.shallow_clone()));
        let scores = self.flat(&real).matmul(&self.w); // (N,)
        self.score_kind = Some(scores.kind());
        let loss = scores.to_kind(Kind::Float).mean(Kind::Float) * (b.draw + 1) as f64;
        let mut u = Update::new(loss, Losses::new());
        let fake = if self.nan_fake { b.x.detach() * f64::NAN } else { b.x.detach() * 0.0 + 1.0 };
        u.critics.push(CriticInput { d: "D", real: b.x.shallow_clone(), fake, cond: None });
        if self.hold_d {
            u.hold.push("D");
        }
        Ok(u)
    }
    /// mean(x·w)·sum(a) (+ a·a after scaling): ∂/∂a = mean(x·w) per element.
    fn g_loss(&mut self, b: &Batch, ctx: &Ctx) -> Result<Update> {
        self.seen.push((Phase::G, b.draw, ctx.micro));
        let loss = self.flat(&b.x).matmul(&self.w).mean(Kind::Float) * self.a.sum(Kind::Float);
        let mut u = Update::new(loss, Losses::new());
        if let Some(s) = self.then_scale {
            u.then.push((vec![("G", s)], self.a.square().sum(Kind::Float)));
        }
        Ok(u)
    }
    fn critic(&self, _d: &str, x: &Tensor, _cond: Option<&Tensor>) -> Result<Tensor> {
        Ok(self.flat(x).matmul(&self.w))
    }
    fn write_samples(&self, _path: &Path) -> Result<()> {
        Ok(())
    }
    fn sample_to(&self, _n: usize, _seed: u64, _path: &Path) -> Result<()> {
        Ok(())
    }
    fn evaluate(&self) -> Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }
    fn summarize(&self, _eval: &serde_json::Value) -> String {
        String::new()
    }
}

/// Settings of a run on points (the toy ignores the data section; its feed is one fixed batch).
fn settings(extra: &str) -> Settings {
    let mut s: Settings = serde_yaml::from_str(&format!("data: {{kind: ring8}}\nmodel: ~\n{extra}")).expect("settings parse");
    s.device = "cpu".into();
    s
}

/// x = [[1, 2], [3, 4]]: mean(x) = [2, 3].
fn batch() -> Tensor {
    Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([2, 2])
}

fn trainer(fam: &Toy, s: &Settings) -> Trainer {
    Trainer::new(fam, s, Device::Cpu).expect("trainer").with_feed(Feed::fixed(batch(), None, s.seed))
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.detach().to_kind(Kind::Double).flatten(0, -1)).expect("values")
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{a:?} vs {b:?}");
    }
}

#[test]
fn accumulation_averages_the_micro_batch_gradients() {
    let s = settings("train: {accumulate: 2}");
    let mut fam = Toy::new(&[Phase::D]);
    let mut t = trainer(&fam, &s);
    t.step(&mut fam, 0).unwrap();
    // Draws 0 and 1: gradients 1·[2, 3] and 2·[2, 3]; their mean, times lr 0.1.
    close(&values(&fam.w), &[2.0 - 0.1 * 3.0, 1.0 - 0.1 * 4.5]);
    assert_eq!(fam.seen, vec![(Phase::D, 0, 0), (Phase::D, 1, 1)]);
}

#[test]
fn n_critic_draws_fresh_batches_and_g_reuses_the_last_or_the_first() {
    let s = settings("train: {n_critic: 3}");
    let mut fam = Toy::new(&[Phase::D, Phase::G]);
    let mut t = trainer(&fam, &s);
    t.step(&mut fam, 1).unwrap();
    assert_eq!(fam.seen, vec![(Phase::D, 3, 0), (Phase::D, 4, 0), (Phase::D, 5, 0), (Phase::G, 5, 0)]);
    let mut fam = Toy::new(&[Phase::G, Phase::D]);
    let mut t = trainer(&fam, &settings("train: {n_critic: 2, accumulate: 2}"));
    t.step(&mut fam, 0).unwrap();
    let g: Vec<_> = fam.seen.iter().filter(|s| s.0 == Phase::G).map(|s| s.1).collect();
    let d: Vec<_> = fam.seen.iter().filter(|s| s.0 == Phase::D).map(|s| s.1).collect();
    assert_eq!((g, d), (vec![0, 1], vec![0, 1, 2, 3]));
}

#[test]
fn d_is_frozen_during_g_backward_and_g_steps_on_its_own_gradient() {
    let s = settings("");
    let mut fam = Toy::new(&[Phase::D, Phase::G]);
    let mut t = trainer(&fam, &s);
    t.step(&mut fam, 0).unwrap();
    // D's gradient is its own loss's, [2, 3], untouched by G's loss (which depends on w).
    close(&values(&fam.w.grad()), &[2.0, 3.0]);
    // G's: mean(x·w) with the updated w = [1.8, 0.7]: (1·1.8 + 2·0.7 + 3·1.8 + 4·0.7) / 2 = 5.7 per element.
    close(&values(&fam.a), &[0.5 - 0.1 * 5.7, -1.0 - 0.1 * 5.7]);
}

#[test]
fn held_networks_do_not_step() {
    let mut fam = Toy::new(&[Phase::D]);
    fam.hold_d = true;
    let mut t = trainer(&fam, &settings(""));
    t.step(&mut fam, 0).unwrap();
    close(&values(&fam.w), &[2.0, 1.0]);
}

#[test]
fn then_scales_the_earlier_gradient_of_the_named_network_per_micro_batch() {
    let mut fam = Toy::new(&[Phase::G]);
    fam.then_scale = Some(0.5);
    let mut t = trainer(&fam, &settings("train: {accumulate: 2}"));
    t.step(&mut fam, 0).unwrap();
    // Each micro-batch: 0.5 · mean(x·w) + 2a = 0.5 · 7 + 2a; the same for both, so their mean.
    close(&values(&fam.a), &[0.5 - 0.1 * (3.5 + 1.0), -1.0 - 0.1 * (3.5 - 2.0)]);
}

#[test]
fn weight_clip_max_norm_and_grad_clip_act_after_the_step() {
    let mut fam = Toy::new(&[Phase::D]);
    let mut t = trainer(&fam, &settings("loss: {adversarial: wasserstein, weight_clip: 1.85}"));
    t.step(&mut fam, 0).unwrap();
    close(&values(&fam.w), &[1.8, 0.7]); // [1.8, 0.7] is inside the clip
    t.step(&mut fam, 0).unwrap();
    close(&values(&fam.w), &[1.6, 0.4]);
    let mut fam = Toy::new(&[Phase::D]);
    let mut t = trainer(&fam, &settings("loss: {adversarial: wasserstein, weight_clip: 1.7}"));
    t.step(&mut fam, 0).unwrap();
    close(&values(&fam.w), &[1.7, 0.7]);
    // Gradient clipping to norm 1: the gradient [2, 3] becomes [2, 3]/√13.
    let mut fam = Toy::new(&[Phase::D]);
    let mut t = trainer(&fam, &settings("train: {grad_clip: 1.0}"));
    t.step(&mut fam, 0).unwrap();
    let n = 13f64.sqrt();
    close(&values(&fam.w), &[2.0 - 0.2 / n, 1.0 - 0.3 / n]);
}

#[test]
fn ema_is_the_running_average_of_the_generator() {
    let mut fam = Toy::new(&[Phase::D, Phase::G]);
    let s = settings("train: {ema: 0.9}");
    let mut t = trainer(&fam, &s);
    let mut avg = values(&fam.a);
    for step in 0..3 {
        t.step(&mut fam, step).unwrap();
        let now = values(&fam.a);
        avg = avg.iter().zip(&now).map(|(e, x)| 0.9 * e + 0.1 * x).collect();
    }
    let state: std::collections::HashMap<String, Tensor> = t.state(&fam).into_iter().collect();
    close(&values(&state["G_ema.a"]), &avg);
    // Sampling sees the average, then the live weights come back bit for bit.
    let live = values(&fam.a);
    t.with_ema(|| close(&values(&fam.a), &avg));
    assert_eq!(values(&fam.a), live);
}

#[test]
fn gradient_penalty_and_r1_are_the_known_values_and_r1_sees_only_real_data() {
    // ∇ₓ(x·w) = w everywhere: GP = (‖w‖ − 1)², R1 = ‖w‖² (logged unweighted).
    let w2 = 5.0f64;
    let mut fam = Toy::new(&[Phase::D]);
    let mut t = trainer(&fam, &settings("loss: {gradient_penalty: 10}"));
    let logs = t.step(&mut fam, 0).unwrap();
    assert!((logs["gp"] - (w2.sqrt() - 1.0).powi(2)).abs() < 1e-5, "{logs:?}");
    let mut fam = Toy::new(&[Phase::D]);
    fam.nan_fake = true; // R1 is on real data only: NaN generated inputs change nothing
    let mut t = trainer(&fam, &settings("loss: {r1: 2, r1_every: 2}"));
    let logs = t.step(&mut fam, 0).unwrap();
    assert!((logs["r1"] - w2).abs() < 1e-5, "{logs:?}");
    // γ/2 · k · ‖w‖² adds γ·k·w = 4w to the gradient: w − 0.1·([2, 3] + 4w).
    close(&values(&fam.w), &[2.0 - 0.1 * (2.0 + 8.0), 1.0 - 0.1 * (3.0 + 4.0)]);
    // Lazy: nothing at step 1 (every 2nd step).
    assert!(!t.step(&mut fam, 1).unwrap().contains_key("r1"));
}

#[test]
fn diffaugment_transforms_real_and_generated_alike_within_an_update() {
    let s = settings("train: {diffaugment: [translation, cutout]}");
    let mut fam = Toy::new(&[Phase::D]);
    fam.images = true;
    let x = (Tensor::arange(2 * 3 * 8 * 8, (Kind::Float, Device::Cpu)).view([2, 3, 8, 8]) + 1.0) / 384.0; // no zero
    let mut t = Trainer::new(&fam, &s, Device::Cpu).unwrap().with_feed(Feed::fixed(x.shallow_clone(), None, 0));
    t.step(&mut fam, 0).unwrap();
    t.step(&mut fam, 1).unwrap();
    let ((r0, f0), (r1, _)) = (&fam.seen_inputs[0], &fam.seen_inputs[1]);
    // The same translation and cutout for the real batch and the constant "generated" one: where cutout or
    // the translation's zero fill blanks a pixel, it is blank in both.
    assert_eq!(values(&r0.eq(0.0).to_kind(Kind::Float)), values(&f0.eq(0.0).to_kind(Kind::Float)));
    assert!(values(&r0.eq(0.0).to_kind(Kind::Float)).contains(&1.0), "something is cut out");
    assert_ne!(values(r0), values(r1), "another draw, another transform");
    assert_ne!(values(r0), values(&x), "augmented");
}

#[test]
fn bf16_runs_the_losses_under_autocast() {
    let mut fam = Toy::new(&[Phase::D]);
    let mut s = settings("");
    s.train.precision = Precision::Bf16;
    let mut t = trainer(&fam, &s);
    t.step(&mut fam, 0).unwrap();
    assert_eq!(fam.score_kind, Some(Kind::BFloat16));
    assert_eq!(fam.w.kind(), Kind::Float, "weights stay float32");
    assert!(values(&fam.w).iter().all(|v| v.is_finite()));
}
