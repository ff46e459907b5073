//! Our side of every step benchmark: the product's training step. A family built from a config
//! (`Config::build`), the engine's `Trainer` over it (`ganzoo_pipelines::engine::Trainer`: optimizers,
//! n_critic, freezing D during G's update, bf16 autocast via `train.precision`, EMA, penalties), and
//! `Trainer::step` timed. Nothing of the step is re-created here.
//!
//! The variant (device, channels-last, bf16) is applied the way a user would get it: `train.precision: bf16`
//! for bf16; for channels-last, the family's variables converted before `Trainer::new`, so the optimizers'
//! moment buffers (made by `zeros_like`) get the same strides, as torch.optim's lazily created state does
//! after `model.to(memory_format=torch.channels_last)`.
use crate::device::{self, to_channels_last, vs_channels_last};
use crate::Opts;
use anyhow::{anyhow, bail, Result};
use ganzoo_models::rng::{derived_rng, randn};
use ganzoo_pipelines::config::load::{from_value, parse_yaml};
use ganzoo_pipelines::config::Precision;
use ganzoo_pipelines::engine::Trainer;
use ganzoo_pipelines::family::{Family, Losses};
use ganzoo_pipelines::feed::Feed;
use ganzoo_pipelines::families::Config;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// What the timed steps train on.
pub enum Input {
    /// The family's own training data through the engine's feed (its loader's background threads included),
    /// as in a run.
    Data,
    /// The first batch of the family's own data, then that batch every step (captioned data: the images with
    /// their dataset indices, so the family looks their text up as in a run).
    FirstBatch,
    /// This CPU batch every step (copied to the device once), with its labels or dataset indices.
    Batch(Tensor, Option<Vec<i64>>),
}

/// How our side runs.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    pub device: Device,
    pub channels_last: bool,
    /// `train.precision: bf16`: the product's autocast around the forward passes and losses.
    pub bf16: bool,
}

impl Variant {
    /// The variant the options ask for.
    pub fn of(o: &Opts) -> Self {
        Variant { device: o.device, channels_last: o.channels_last, bf16: o.ours_in_bf16() }
    }
}

/// A family and the engine's trainer over it, ready to step.
pub struct Step {
    fam: Box<dyn Family>,
    trainer: Trainer,
    device: Device,
    /// How many 4-D variables the channels-last conversion gave new strides.
    pub converted: usize,
}

impl Step {
    /// Builds `cfg`'s family on `v.device` (its `freeze` networks frozen, as a pipeline stage does), converts
    /// it to channels-last if asked, and makes the trainer that will feed it `input`.
    pub fn new(cfg: &Config, v: Variant, input: Input, freeze: &[&str]) -> Result<Self> {
        let mut cfg = cfg.clone();
        cfg.device = device::device_name(v.device);
        if v.bf16 {
            cfg.train.precision = Precision::Bf16;
        }
        let with_data = !matches!(input, Input::Batch(..));
        let mut fam = cfg.build(v.device, with_data, None)?;
        fam.freeze(&freeze.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        let converted = if v.channels_last { fam.networks().iter().map(|n| vs_channels_last(n.vs)).sum() } else { 0 };
        let s = cfg.settings();
        let trainer = Trainer::new(fam.as_ref(), &s, v.device)?;
        let fixed = match input {
            Input::Data => None,
            Input::FirstBatch => {
                let source = fam.train_source().ok_or_else(|| anyhow!("{}: the family opened no training data", cfg.name))?;
                let b = Feed::new(source, &s.train, s.seed, Device::Cpu).next(0)?;
                Some((b.x, b.y))
            }
            Input::Batch(x, y) => Some((x, y)),
        };
        let trainer = match fixed {
            None => trainer,
            Some((x, y)) => {
                let x = x.to_device(v.device);
                // As the PyTorch scripts' inputs (`setup.input`); the real feed's batches stay NCHW.
                let x = if v.channels_last && x.dim() == 4 { to_channels_last(&x) } else { x };
                trainer.with_feed(Feed::fixed(x, y, s.seed))
            }
        };
        Ok(Step { fam, trainer, device: v.device, converted })
    }

    /// One training step (`Trainer::step`); the losses it logs.
    pub fn step(&mut self, step: i64) -> Result<Losses> {
        Ok(self.trainer.step(self.fam.as_mut(), step)?)
    }

    /// (wall ms, CPU ms) per step over `steps` timed steps after `warmup`.
    pub fn time(&mut self, warmup: usize, steps: usize) -> Result<(f64, f64)> {
        let d = self.device;
        device::time_steps(d, warmup, steps, |s| self.step(s).map(|_| ()))
    }

    pub fn family(&self) -> &dyn Family {
        self.fam.as_ref()
    }
}

/// Trainable parameters per network of `cfg`'s family (built on the CPU, without its training data).
pub fn parameter_counts(cfg: &Config) -> Result<Vec<(&'static str, i64)>> {
    Ok(cfg.build(Device::Cpu, false, None)?.parameter_counts())
}

/// The parameter count of network `name` in `counts`.
pub fn count(counts: &[(&'static str, i64)], name: &str) -> Result<i64> {
    counts.iter().find(|c| c.0 == name).map(|c| c.1).ok_or_else(|| anyhow!("no network {name} in {counts:?}"))
}

/// A text-to-image bench config (`gan_cls`, `stackgan`): family section `model` (YAML lines at the indentation of
/// `model:`'s keys, `family:` first) on `batch` procedural shapes of `size` px, with a `precomputed` text
/// encoder over `emb` (one row per image, one caption per image), BCE (`non_saturating`), Adam 2e-4 (0.5,
/// 0.999) for G and D, one loader worker. Checked as `ganzoo train` checks a file: strict keys, then every
/// cross-field problem.
pub fn shapes_text_config(model: &str, size: i64, batch: i64, emb: &Path) -> Result<Config> {
    let text = format!(
        "name: bench_text_to_image
data: {{kind: shapes, size: {size}, train_count: {batch}}}
model:
{model}
  text: {{encoder: {{kind: precomputed, file: {emb:?}}}, captions_per_image: 1}}
loss: {{adversarial: non_saturating}}
train:
  batch_size: {batch}
  workers: 1
  g_optimizer: {{kind: adam, lr: 2.0e-4, betas: [0.5, 0.999]}}
  d_optimizer: {{kind: adam, lr: 2.0e-4, betas: [0.5, 0.999]}}
"
    );
    let value = parse_yaml(&text).map_err(|e| anyhow!("bench config: {e}\n{text}"))?;
    let cfg: Config = from_value(value, &[], &[])?;
    let problems = cfg.problems();
    if !problems.is_empty() {
        bail!("bench config: {}\n{text}", problems.join("; "));
    }
    Ok(cfg)
}

/// Text embeddings standing in for CUB's precomputed char-CNN-RNN ones (1024-d): `rows` rows of N(0, 1)
/// values, one per training image, written as `dir/embeddings_ROWS.npy` for a `precomputed` text encoder.
pub fn random_embeddings(dir: &Path, rows: usize) -> Result<PathBuf> {
    const DIM: usize = 1024;
    let path = dir.join(format!("embeddings_{rows}.npy"));
    let values = randn(&mut derived_rng(0, "bench_embeddings", 0), &[(rows * DIM) as i64], Device::Cpu);
    ganzoo_data::embeddings::write_npy_f32(&path, &[rows, DIM], &Vec::<f32>::try_from(&values)?)?;
    Ok(path)
}
