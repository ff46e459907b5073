//! The unconditional GAN family: G(z) → x, D(x) → score, trained with any adversarial loss of
//! `ganzoo_models::losses` (Goodfellow 2014; DCGAN networks from Radford 2016; WGAN, WGAN-GP, SN, hinge).
use crate::config::{Config, DataConfig, GanModelConfig, Init, ModelConfig};
use crate::error::{PipelineError, Result};
use crate::family::{Losses, Trainable};
use crate::feed::Feed;
use ganzoo_data::toy::{mode_report, Toy2d};
use ganzoo_models::losses::{clip_grad_norm, clip_weights, gradient_penalty, max_norm, AdvLoss};
use ganzoo_models::nets::{Discriminator, Generator};
use ganzoo_models::optim::{ema_update, Optimizer};
use ganzoo_models::rng::{derived_rng, randn, uniform};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Samples in the fixed grid shown during training.
const GRID: i64 = 64;

/// G, D (and the EMA copy of G), built and initialized from the config's seed.
pub struct Networks {
    pub g_vs: VarStore,
    pub d_vs: VarStore,
    pub g: Box<dyn Generator>,
    pub d: Box<dyn Discriminator>,
    pub ema: Option<(VarStore, Box<dyn Generator>)>,
}

impl Networks {
    pub fn build(cfg: &Config, m: &GanModelConfig, device: Device) -> Result<Self> {
        let shape = cfg.data.shape();
        let g_vs = VarStore::new(device);
        let g = m.generator.build(&g_vs.root(), m.z_dim, &shape)?;
        let d_vs = VarStore::new(device);
        let d = m.discriminator.build(&d_vs.root(), &shape, cfg.loss.spectral_norm)?;
        for (vs, stream) in [(&g_vs, "init_G"), (&d_vs, "init_D")] {
            let mut rng = derived_rng(cfg.seed, stream, 0);
            match m.init {
                Init::Dcgan => ganzoo_models::init::init_dcgan(vs, &mut rng),
                Init::Pytorch => ganzoo_models::init::init_default(vs, &mut rng),
            }
        }
        if cfg.loss.spectral_norm {
            ganzoo_models::spectral::warm_up(&d_vs, 15); // σ converged for the re-initialized weights
        }
        let ema = match cfg.train.ema {
            None => None,
            Some(_) => {
                let mut vs = VarStore::new(device);
                let net = m.generator.build(&vs.root(), m.z_dim, &shape)?;
                vs.copy(&g_vs).map_err(PipelineError::torch("copying G into its EMA"))?;
                vs.freeze();
                Some((vs, net))
            }
        };
        Ok(Networks { g_vs, d_vs, g, d, ema })
    }

    /// The generator used for samples and evaluation: the EMA copy when there is one.
    pub fn sampler(&self) -> &dyn Generator {
        match &self.ema {
            Some((_, g)) => g.as_ref(),
            None => self.g.as_ref(),
        }
    }
}

/// Where real examples come from.
enum Source {
    Points { set: Toy2d, std: f64 },
    Images(Feed),
}

impl Source {
    fn open(cfg: &Config) -> Result<Self> {
        Ok(match &cfg.data {
            DataConfig::Ring8 { std } => Source::Points { set: Toy2d::Ring8, std: std.unwrap_or(Toy2d::Ring8.default_std()) },
            DataConfig::Grid25 { std } => Source::Points { set: Toy2d::Grid25, std: std.unwrap_or(Toy2d::Grid25.default_std()) },
            DataConfig::Mnist { root, pad_to_32 } => {
                Source::Images(Feed::new(cfg, Arc::new(crate::feed::open_mnist(root, *pad_to_32)?)))
            }
            DataConfig::ImageFolder(f) => Source::Images(Feed::new(cfg, Arc::new(ganzoo_data::folder::ImageFolder::open(f)?))),
            DataConfig::Shapes(s) => Source::Images(Feed::new(
                cfg,
                Arc::new(ganzoo_data::shapes::CaptionedShapes::open(s, ganzoo_data::Split::Train, cfg.seed)?),
            )),
            DataConfig::Captioned(c) => {
                Source::Images(Feed::new(cfg, Arc::new(ganzoo_data::captions::CaptionedImages::open(c, ganzoo_data::Split::Train)?)))
            }
            DataConfig::Unpaired(_) | DataConfig::Shapes2(_) => {
                return Err(PipelineError::Usage(format!("data.kind: {} is for family cyclegan", cfg.data.kind())))
            }
        })
    }

    /// The `draw`-th batch of the run.
    fn next(&mut self, draw: i64, batch: i64, seed: u64) -> Result<Tensor> {
        match self {
            Source::Points { set, std } => {
                let pts = set.sample(batch as usize, *std, &mut derived_rng(seed, "data", draw as u64));
                Ok(points_tensor(&pts))
            }
            Source::Images(feed) => feed.next(draw),
        }
    }
}

fn points_tensor(pts: &[[f32; 2]]) -> Tensor {
    let flat: Vec<f32> = pts.iter().flat_map(|p| [p[0], p[1]]).collect();
    Tensor::from_slice(&flat).view([pts.len() as i64, 2])
}

fn tensor_points(t: &Tensor) -> Result<Vec<[f32; 2]>> {
    let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous().view([-1]);
    let v: Vec<f32> = Vec::<f32>::try_from(&t).map_err(PipelineError::torch("reading generated points"))?;
    Ok(v.chunks_exact(2).map(|c| [c[0], c[1]]).collect())
}

fn scalar(t: &Tensor) -> f64 {
    t.double_value(&[])
}

/// The GAN family in training.
pub struct Gan {
    cfg: Config,
    m: GanModelConfig,
    device: Device,
    nets: Networks,
    opt_g: Optimizer,
    opt_d: Optimizer,
    source: Option<Source>,
}

impl Gan {
    /// Builds networks and optimizers; `with_data` opens the training data too (not needed to sample).
    pub fn new(cfg: &Config, device: Device, with_data: bool) -> Result<Self> {
        let ModelConfig::Gan(m) = &cfg.model else {
            return Err(PipelineError::Runtime(format!("family {} is not gan", cfg.model.family())));
        };
        let nets = Networks::build(cfg, m, device)?;
        let opt_g = Optimizer::new(&nets.g_vs, &cfg.train.g_optimizer);
        let opt_d = Optimizer::new(&nets.d_vs, &cfg.train.d_optimizer);
        let source = if with_data { Some(Source::open(cfg)?) } else { None };
        Ok(Gan { cfg: cfg.clone(), m: m.clone(), device, nets, opt_g, opt_d, source })
    }

    fn noise(&self, stream: &str, index: u64, n: i64) -> Tensor {
        randn(&mut derived_rng(self.cfg.seed, stream, index), &[n, self.m.z_dim], self.device)
    }

    fn generate(&self, z: &Tensor) -> Tensor {
        tch::no_grad(|| self.nets.sampler().forward_t(z, false))
    }

    fn toy(&self) -> Option<(Toy2d, f64)> {
        match &self.cfg.data {
            DataConfig::Ring8 { std } => Some((Toy2d::Ring8, std.unwrap_or(Toy2d::Ring8.default_std()))),
            DataConfig::Grid25 { std } => Some((Toy2d::Grid25, std.unwrap_or(Toy2d::Grid25.default_std()))),
            _ => None,
        }
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

impl Trainable for Gan {
    fn stores(&self) -> Vec<(&'static str, &VarStore)> {
        let mut v = vec![("G", &self.nets.g_vs), ("D", &self.nets.d_vs)];
        if let Some((vs, _)) = &self.nets.ema {
            v.push(("G_ema", vs));
        }
        v
    }

    fn optimizers(&self) -> Vec<(&'static str, &Optimizer)> {
        vec![("opt_G", &self.opt_g), ("opt_D", &self.opt_d)]
    }

    fn optimizers_mut(&mut self) -> Vec<(&'static str, &mut Optimizer)> {
        vec![("opt_G", &mut self.opt_g), ("opt_D", &mut self.opt_d)]
    }

    fn train_step(&mut self, step: i64) -> Result<Losses> {
        let (cfg, z_dim) = (&self.cfg, self.m.z_dim);
        let (seed, bs, n_critic) = (cfg.seed, cfg.train.batch_size, cfg.train.n_critic);
        let adv = cfg.loss.adversarial;
        let mut losses = Losses::new();
        let mut fake_for_g = None;
        let source = self.source.as_mut().ok_or_else(|| PipelineError::Runtime("no training data opened".into()))?;
        for k in 0..n_critic {
            let draw = step * n_critic + k;
            let real = source.next(draw, bs, seed)?.to_device(self.device);
            let z = randn(&mut derived_rng(seed, "z", draw as u64), &[bs, z_dim], self.device);
            // With one D step per G step the same fakes serve both (the DCGAN recipe); with several, each
            // D step draws its own and G draws fresh ones (the WGAN recipe).
            let fake = if n_critic == 1 {
                let f = self.nets.g.forward_t(&z, true); // (N, C, H, W) or (N, 2)
                fake_for_g = Some(f.shallow_clone());
                f.detach()
            } else {
                tch::no_grad(|| self.nets.g.forward_t(&z, true))
            };
            self.opt_d.zero_grad();
            let d_real = self.nets.d.forward_t(&real, true); // (N,)
            let d_fake = self.nets.d.forward_t(&fake, true); // (N,)
            let mut loss_d = adv.d_loss(&d_real, &d_fake);
            if cfg.loss.gradient_penalty > 0.0 {
                let mut eps_shape = vec![bs];
                eps_shape.extend(std::iter::repeat_n(1, real.dim() - 1));
                let eps = uniform(&mut derived_rng(seed, "gp", draw as u64), &eps_shape, 0.0, 1.0, self.device);
                let d = &self.nets.d;
                let gp = gradient_penalty(&|x: &Tensor| d.forward_t(x, true), &real, &fake, &eps)?;
                losses.insert("gp".into(), scalar(&gp));
                loss_d += gp * cfg.loss.gradient_penalty;
            }
            loss_d.backward();
            if let Some(c) = cfg.train.grad_clip {
                clip_grad_norm(&self.nets.d_vs.trainable_variables(), c);
            }
            self.opt_d.step()?;
            if let Some(c) = cfg.train.max_norm {
                max_norm(&self.nets.d_vs, c);
            }
            if let Some(c) = cfg.loss.weight_clip {
                clip_weights(&self.nets.d_vs, c);
            }
            losses.insert("loss_D".into(), scalar(&loss_d));
            losses.insert("D_real".into(), scalar(&d_real.mean(Kind::Float)));
            losses.insert("D_fake".into(), scalar(&d_fake.mean(Kind::Float)));
        }
        let fake = match fake_for_g {
            Some(f) => f,
            None => {
                let z = randn(&mut derived_rng(seed, "z_g", step as u64), &[bs, z_dim], self.device);
                self.nets.g.forward_t(&z, true)
            }
        };
        // D's weights need no gradient in the G step; its input does.
        self.nets.d_vs.freeze();
        self.opt_g.zero_grad();
        let loss_g = adv.g_loss(&self.nets.d.forward_t(&fake, true));
        loss_g.backward();
        self.nets.d_vs.unfreeze();
        if let Some(c) = cfg.train.grad_clip {
            clip_grad_norm(&self.nets.g_vs.trainable_variables(), c);
        }
        self.opt_g.step()?;
        if let Some(c) = cfg.train.max_norm {
            max_norm(&self.nets.g_vs, c);
        }
        if let (Some(decay), Some((vs, _))) = (cfg.train.ema, &self.nets.ema) {
            ema_update(vs, &self.nets.g_vs, decay);
        }
        losses.insert("loss_G".into(), scalar(&loss_g));
        if adv == AdvLoss::Wasserstein {
            losses.insert("wasserstein_estimate".into(), losses["D_real"] - losses["D_fake"]);
        }
        Ok(losses)
    }

    fn write_samples(&self, path: &Path) -> Result<()> {
        let n = if self.toy().is_some() { 1000 } else { GRID };
        self.picture(&self.noise("fixed_z", 0, n), self.cfg.seed, path)
    }

    fn sample_to(&self, n: usize, seed: u64, path: &Path) -> Result<()> {
        let z = randn(&mut derived_rng(seed, "sample", 0), &[n as i64, self.m.z_dim], self.device);
        self.picture(&z, seed, path)
    }

    fn evaluate(&self) -> Result<serde_json::Value> {
        let n = self.cfg.eval.samples;
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
        let bs = self.cfg.train.batch_size;
        let real = Source::open(&self.cfg)?.next(0, bs, self.cfg.seed)?.to_device(self.device);
        let fake = tch::no_grad(|| self.nets.sampler().forward_t(&self.noise("eval", 0, bs), false));
        let (dr, df) = tch::no_grad(|| (self.nets.d.forward_t(&real, false), self.nets.d.forward_t(&fake, false)));
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
