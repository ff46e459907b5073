//! The unconditional GAN family: G(z) → x, D(x) → score, trained with any adversarial loss of
//! `ganzoo_models::losses` (Goodfellow 2014; DCGAN networks from Radford 2016; WGAN, WGAN-GP, SN, hinge).
mod config;

pub use config::GanModelConfig;
use crate::config::Settings;
use crate::error::{PipelineError, Result};
use crate::family::{mean, scalar, Batch, CriticInput, Ctx, Family, FamilyConfig, Compared, Images, Losses, MetricSet, Net, Reference, Role, Update};
use crate::feed::Feed;
use ganzoo_data::source::{Part, Source};
use ganzoo_data::toy::{mode_report, Toy2d};
use ganzoo_models::losses::AdvLoss;
use ganzoo_models::nets::{Discriminator, Generator};
use ganzoo_models::rng::{derived_rng, randn};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Samples in the fixed grid shown during training.
const GRID: i64 = 64;

impl FamilyConfig for GanModelConfig {
    fn problems(&self, _family: &'static str, s: &Settings, p: &mut Vec<String>) {
        self.check(s, p);
    }

    fn build(&self, _family: &'static str, s: &Settings, device: Device, with_data: bool, _run_dir: Option<&Path>) -> Result<Box<dyn Family>> {
        Ok(Box::new(Gan::new(s, self, device, with_data)?))
    }
}

fn tensor_points(t: &Tensor) -> Result<Vec<[f32; 2]>> {
    let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous().view([-1]);
    let v: Vec<f32> = Vec::<f32>::try_from(&t).map_err(PipelineError::torch("reading generated points"))?;
    Ok(v.chunks_exact(2).map(|c| [c[0], c[1]]).collect())
}

/// The GAN family in training.
pub struct Gan {
    s: Settings,
    m: GanModelConfig,
    device: Device,
    g_vs: VarStore,
    d_vs: VarStore,
    g: Box<dyn Generator>,
    d: Box<dyn Discriminator>,
    source: Option<Source>,
    /// With one D update per G update, the fakes of D's update keep their graph and serve G's update of the
    /// same batch (the DCGAN recipe); by draw.
    fakes: HashMap<i64, Tensor>,
    /// D's mean scores of the last D update (real, fake), for the Wasserstein estimate.
    last_scores: (f64, f64),
}

impl Gan {
    /// Builds networks (initialized from the config's seed); `with_data` opens the training data too (not
    /// needed to sample).
    pub fn new(s: &Settings, m: &GanModelConfig, device: Device, with_data: bool) -> Result<Self> {
        let shape = s.shape();
        let g_vs = VarStore::new(device);
        let g = m.generator.build(&g_vs.root(), m.z_dim, &shape)?;
        let d_vs = VarStore::new(device);
        let d = m.discriminator.build(&d_vs.root(), &shape, s.loss.spectral_norm)?;
        for (vs, stream) in [(&g_vs, "init_G"), (&d_vs, "init_D")] {
            m.init.apply(vs, s.seed, stream);
        }
        if s.loss.spectral_norm {
            ganzoo_models::spectral::warm_up(&d_vs, 15); // σ converged for the re-initialized weights
        }
        let source = if with_data { Some(ganzoo_data::open(&s.data, Part::train(), s.seed)?) } else { None };
        Ok(Gan { s: s.clone(), m: m.clone(), device, g_vs, d_vs, g, d, source, fakes: HashMap::new(), last_scores: (0.0, 0.0) })
    }

    fn noise(&self, stream: &str, index: u64, n: i64) -> Tensor {
        randn(&mut derived_rng(self.s.seed, stream, index), &[n, self.m.z_dim], self.device)
    }

    fn generate(&self, z: &Tensor) -> Tensor {
        tch::no_grad(|| self.g.forward_t(z, false))
    }

    fn toy(&self) -> Option<(Toy2d, f64)> {
        self.s.data.points()
    }

    fn picture(&self, z: &Tensor, seed: u64, path: &Path) -> Result<()> {
        let x = self.generate(z);
        if let Some((set, std)) = self.toy() {
            let real = set.sample(x.size()[0] as usize, std, &mut derived_rng(seed, "plot_real", 0));
            let extent = if set == Toy2d::Ring8 { 3.0 } else { 6.0 };
            return crate::plot::scatter_png(path, &real, &tensor_points(&x)?, &set.centers(), extent);
        }
        let ncol = (x.size()[0] as f64).sqrt().ceil() as usize;
        crate::plot::save_tensor_grid(&x, ncol, path)?;
        Ok(())
    }
}

impl Family for Gan {
    fn networks(&self) -> Vec<Net<'_>> {
        let t = &self.s.train;
        vec![
            Net { name: "G", role: Role::Generator, vs: &self.g_vs, opt: Some(("opt_G", t.g_optimizer.clone())) },
            Net { name: "D", role: Role::Discriminator, vs: &self.d_vs, opt: Some(("opt_D", t.d_optimizer.clone())) },
        ]
    }

    fn train_source(&self) -> Option<Source> {
        self.source.clone()
    }

    fn begin_step(&mut self, _step: i64) -> Result<Losses> {
        self.fakes.clear();
        Ok(Losses::new())
    }

    fn d_loss(&mut self, batch: &Batch, ctx: &Ctx) -> Result<Update> {
        let real = &batch.x; // (N, C, H, W) or (N, 2)
        let z = self.noise("z", batch.draw as u64, real.size()[0]);
        // With one D step per G step the same fakes serve both (the DCGAN recipe); with several, each D step
        // draws its own and G draws fresh ones (the WGAN recipe).
        let fake = if self.s.train.n_critic == 1 {
            let f = self.g.forward_t(&z, true); // (N, C, H, W) or (N, 2)
            self.fakes.insert(batch.draw, f.shallow_clone());
            f.detach()
        } else {
            tch::no_grad(|| self.g.forward_t(&z, true))
        };
        let d_real = self.d.forward_t(&ctx.d_input(real)?, true); // (N,)
        let d_fake = self.d.forward_t(&ctx.d_input(&fake)?, true); // (N,)
        let loss = self.s.loss.adversarial.d_loss(&d_real, &d_fake);
        self.last_scores = (mean(&d_real), mean(&d_fake));
        let mut logs = Losses::new();
        logs.insert("loss_D".into(), scalar(&loss));
        logs.insert("D_real".into(), self.last_scores.0);
        logs.insert("D_fake".into(), self.last_scores.1);
        let mut u = Update::new(loss, logs);
        u.critics.push(CriticInput { d: "D", real: real.shallow_clone(), fake, cond: None });
        Ok(u)
    }

    fn g_loss(&mut self, batch: &Batch, ctx: &Ctx) -> Result<Update> {
        let fake = match self.fakes.remove(&batch.draw) {
            Some(f) => f,
            None => {
                let acc = self.s.train.accumulate;
                let z = self.noise("z_g", (ctx.step * acc + ctx.micro as i64) as u64, batch.x.size()[0]);
                self.g.forward_t(&z, true)
            }
        };
        let loss = self.s.loss.adversarial.g_loss(&self.d.forward_t(&ctx.d_input(&fake)?, true));
        let mut logs = Losses::new();
        logs.insert("loss_G".into(), scalar(&loss));
        if self.s.loss.adversarial == AdvLoss::Wasserstein {
            logs.insert("wasserstein_estimate".into(), self.last_scores.0 - self.last_scores.1);
        }
        Ok(Update::new(loss, logs))
    }

    fn critic(&self, _d: &str, x: &Tensor, _cond: Option<&Tensor>) -> Result<Tensor> {
        Ok(self.d.forward_t(x, true))
    }

    fn write_samples(&self, path: &Path) -> Result<()> {
        let n = if self.toy().is_some() { 1000 } else { GRID };
        self.picture(&self.noise("fixed_z", 0, n), self.s.seed, path)
    }

    fn sample_to(&self, n: usize, seed: u64, path: &Path) -> Result<()> {
        let z = randn(&mut derived_rng(seed, "sample", 0), &[n as i64, self.m.z_dim], self.device);
        self.picture(&z, seed, path)
    }

    fn evaluate(&self) -> Result<serde_json::Value> {
        let n = self.s.eval.samples;
        if let Some((set, std)) = self.toy() {
            let x = self.generate(&self.noise("eval", 0, n as i64));
            let report = mode_report(&set.centers(), std, &tensor_points(&x)?);
            return Ok(json!({
                "protocol": format!("{n} samples from G; a sample is high-quality within 3σ (σ={std}) of its nearest mode; a mode is covered when it has at least one high-quality sample (VEEGAN / PacGAN)"),
                "modes": report.modes,
                "modes_covered": report.modes_covered,
                "high_quality_fraction": report.high_quality_fraction,
                "per_mode": report.per_mode,
            }));
        }
        // Image data: D's view of real and generated images, and their pixel statistics.
        // A fresh source, so the report at the end of training and `ganzoo eval` see the same batch.
        let bs = self.s.train.batch_size;
        let source = ganzoo_data::open(&self.s.data, Part::train(), self.s.seed)?;
        let real = Feed::new(source, &self.s.train, self.s.seed, self.device).next(0)?.x;
        let fake = tch::no_grad(|| self.g.forward_t(&self.noise("eval", 0, bs), false));
        let (dr, df) = tch::no_grad(|| (self.d.forward_t(&real, false), self.d.forward_t(&fake, false)));
        Ok(json!({
            "protocol": format!("one batch of {bs} real and {bs} generated images (evaluation mode)"),
            "D_real_mean": scalar(&dr.mean(Kind::Float)),
            "D_fake_mean": scalar(&df.mean(Kind::Float)),
            "real_pixel_mean": scalar(&real.mean(Kind::Float)),
            "fake_pixel_mean": scalar(&fake.mean(Kind::Float)),
            "real_pixel_std": scalar(&real.std(true)),
            "fake_pixel_std": scalar(&fake.std(true)),
        }))
    }

    fn metric_sets(&self, n: usize) -> Result<Vec<MetricSet<'_>>> {
        if self.toy().is_some() {
            return Ok(Vec::new());
        }
        let draw = move |first: usize, len: usize| Ok(self.generate(&self.noise("metrics", first as u64, len as i64)));
        Ok(vec![MetricSet { name: "samples".into(), how: "G(z), z ~ N(0, I)".into(), generated: Compared::Made(Images::new(n, draw)), reference: Reference::test() }])
    }

    fn summarize(&self, eval: &serde_json::Value) -> String {
        if let (Some(c), Some(m), Some(hq)) = (
            eval["modes_covered"].as_u64(),
            eval["modes"].as_u64(),
            eval["high_quality_fraction"].as_f64(),
        ) {
            return format!("{c}/{m} modes covered, {:.1}% of samples high-quality (within 3σ of a mode)", hq * 100.0);
        }
        format!(
            "D scores real images {:.3} and generated ones {:.3} on average; pixel mean/std real {:.3}/{:.3}, generated {:.3}/{:.3}",
            eval["D_real_mean"].as_f64().unwrap_or(f64::NAN),
            eval["D_fake_mean"].as_f64().unwrap_or(f64::NAN),
            eval["real_pixel_mean"].as_f64().unwrap_or(f64::NAN),
            eval["real_pixel_std"].as_f64().unwrap_or(f64::NAN),
            eval["fake_pixel_mean"].as_f64().unwrap_or(f64::NAN),
            eval["fake_pixel_std"].as_f64().unwrap_or(f64::NAN),
        )
    }
}
