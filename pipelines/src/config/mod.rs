//! The config schema: every key a run can set, its default, and the cross-field checks.
//!
//! Every struct rejects unknown keys (`deny_unknown_fields`, never `flatten`); choices are enums.
pub mod load;

use ganzoo_data::folder::ImageFolderConfig;
use ganzoo_models::losses::AdvLoss;
use ganzoo_models::nets::{DataShape, DiscriminatorConfig, GeneratorConfig};
use ganzoo_models::optim::{LrSchedule, OptimizerConfig};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A whole run: what data, which networks, which losses, how to train and evaluate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Name of the run; the default run directory is `runs/<name>`.
    #[serde(default = "default_name")]
    pub name: String,
    /// Seed of every random draw (initialization, noise, data order, augmentation).
    #[serde(default)]
    pub seed: u64,
    /// `auto` (CUDA when available), `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    pub data: DataConfig,
    pub model: ModelConfig,
    #[serde(default)]
    pub loss: LossConfig,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(default)]
    pub eval: EvalConfig,
}

fn default_name() -> String {
    "run".into()
}
fn default_device() -> String {
    "auto".into()
}

/// Where training examples come from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataConfig {
    /// 8 Gaussians on a circle of radius 2 (VEEGAN / PacGAN mode-collapse benchmark).
    Ring8 {
        /// Standard deviation of each mode (default 0.02).
        #[serde(default)]
        std: Option<f64>,
    },
    /// 25 Gaussians on a 5×5 grid.
    Grid25 {
        /// Standard deviation of each mode (default 0.05).
        #[serde(default)]
        std: Option<f64>,
    },
    /// The 10,000 real MNIST digits of `ganzoo data get mnist`.
    Mnist {
        /// Folder holding the converted IDX files (default: `<cache>/mnist`).
        #[serde(default)]
        root: Option<PathBuf>,
        /// Zero-pad 28×28 digits to 32×32.
        #[serde(default)]
        pad_to_32: bool,
    },
    /// A folder of images (flat, or one subfolder per class).
    ImageFolder(ImageFolderConfig),
}

impl DataConfig {
    /// The shape of one example.
    pub fn shape(&self) -> DataShape {
        match self {
            DataConfig::Ring8 { .. } | DataConfig::Grid25 { .. } => DataShape { channels: 2, height: 1, width: 1 },
            DataConfig::Mnist { pad_to_32, .. } => {
                let s = if *pad_to_32 { 32 } else { 28 };
                DataShape { channels: 1, height: s, width: s }
            }
            DataConfig::ImageFolder(f) => DataShape { channels: f.channels, height: f.size, width: f.size },
        }
    }

    /// Whether examples are 2-D points rather than images.
    pub fn is_points(&self) -> bool {
        matches!(self, DataConfig::Ring8 { .. } | DataConfig::Grid25 { .. })
    }
}

/// The model family and its networks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    #[serde(default)]
    pub family: Family,
    /// Size of the noise vector z.
    #[serde(default = "default_z_dim")]
    pub z_dim: i64,
    pub generator: GeneratorConfig,
    pub discriminator: DiscriminatorConfig,
    /// How parameters are initialized.
    #[serde(default)]
    pub init: Init,
}

fn default_z_dim() -> i64 {
    100
}

/// Which model family trains (more land with the other model issues).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Unconditional GAN: G(z), D(x) (Goodfellow 2014; Radford 2016 for the DCGAN networks).
    #[default]
    Gan,
}

/// Parameter initialization.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// DCGAN: conv/linear weights N(0, 0.02), batch-norm weights N(1, 0.02), biases 0.
    #[default]
    Dcgan,
    /// PyTorch's layer defaults: U(−1/√fan_in, 1/√fan_in) for weights and biases.
    Pytorch,
}

/// The adversarial loss and its Lipschitz constraints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LossConfig {
    /// minimax | non_saturating | lsgan | wasserstein | hinge.
    #[serde(default = "default_adv")]
    pub adversarial: AdvLoss,
    /// Weight λ of the WGAN-GP gradient penalty (0: off).
    #[serde(default)]
    pub gradient_penalty: f64,
    /// Clip D's weights to [−c, c] after each D step (WGAN).
    #[serde(default)]
    pub weight_clip: Option<f64>,
    /// Spectral normalization of D's layers (Miyato 2018).
    #[serde(default)]
    pub spectral_norm: bool,
}

fn default_adv() -> AdvLoss {
    AdvLoss::NonSaturating
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig { adversarial: default_adv(), gradient_penalty: 0.0, weight_clip: None, spectral_norm: false }
    }
}

/// The training loop.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Number of generator updates.
    #[serde(default = "default_steps")]
    pub steps: i64,
    #[serde(default = "default_batch")]
    pub batch_size: i64,
    /// Discriminator updates per generator update, each on a fresh batch.
    #[serde(default = "one")]
    pub n_critic: i64,
    #[serde(default)]
    pub g_optimizer: OptimizerConfig,
    #[serde(default)]
    pub d_optimizer: OptimizerConfig,
    /// Multiplies both learning rates over the run.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Decay of an exponential moving average of G's weights used for samples and eval (e.g. 0.999).
    #[serde(default)]
    pub ema: Option<f64>,
    /// Clip each network's gradient norm to this value.
    #[serde(default)]
    pub grad_clip: Option<f64>,
    #[serde(default = "default_log_every")]
    pub log_every: i64,
    #[serde(default = "default_sample_every")]
    pub sample_every: i64,
    #[serde(default = "default_sample_every")]
    pub checkpoint_every: i64,
    /// How many checkpoints to keep (the newest).
    #[serde(default = "default_keep")]
    pub keep_checkpoints: usize,
    /// Decoding threads of the data loader (0: one per core).
    #[serde(default)]
    pub workers: usize,
    /// Batches decoded ahead of the training step.
    #[serde(default = "default_prefetch")]
    pub prefetch: usize,
}

fn default_steps() -> i64 {
    1000
}
fn default_batch() -> i64 {
    64
}
fn one() -> i64 {
    1
}
fn default_log_every() -> i64 {
    50
}
fn default_sample_every() -> i64 {
    500
}
fn default_keep() -> usize {
    3
}
fn default_prefetch() -> usize {
    2
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            steps: default_steps(),
            batch_size: default_batch(),
            n_critic: 1,
            g_optimizer: OptimizerConfig::default(),
            d_optimizer: OptimizerConfig::default(),
            lr_schedule: LrSchedule::default(),
            ema: None,
            grad_clip: None,
            log_every: default_log_every(),
            sample_every: default_sample_every(),
            checkpoint_every: default_sample_every(),
            keep_checkpoints: default_keep(),
            workers: 0,
            prefetch: default_prefetch(),
        }
    }
}

/// Evaluation protocol.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Generated samples to evaluate (2,500 in the VEEGAN / PacGAN mode protocol).
    #[serde(default = "default_eval_samples")]
    pub samples: usize,
}

fn default_eval_samples() -> usize {
    2500
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig { samples: default_eval_samples() }
    }
}

impl Config {
    /// Every cross-field problem, each naming its dotted key; empty when the config is consistent.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if let Err(e) = crate::device::parse_device(&self.device) {
            p.push(format!("device: {e}"));
        }
        let t = &self.train;
        for (key, v) in [
            ("train.steps", t.steps),
            ("train.batch_size", t.batch_size),
            ("train.n_critic", t.n_critic),
            ("train.log_every", t.log_every),
            ("train.sample_every", t.sample_every),
            ("train.checkpoint_every", t.checkpoint_every),
            ("model.z_dim", self.model.z_dim),
        ] {
            if v < 1 {
                p.push(format!("{key}: must be at least 1, got {v}"));
            }
        }
        if t.keep_checkpoints < 1 {
            p.push("train.keep_checkpoints: must be at least 1 (the last checkpoint is what --resume uses)".into());
        }
        for (key, o) in [("train.g_optimizer", &t.g_optimizer), ("train.d_optimizer", &t.d_optimizer)] {
            p.extend(o.check().into_iter().map(|m| format!("{key}: {m}")));
        }
        p.extend(t.lr_schedule.check().into_iter().map(|m| format!("train.lr_schedule: {m}")));
        if let Some(d) = t.ema {
            if !(0.0..1.0).contains(&d) {
                p.push(format!("train.ema: the decay must be in [0, 1), got {d}"));
            }
        }
        if let Some(c) = t.grad_clip {
            if c <= 0.0 {
                p.push(format!("train.grad_clip: must be positive, got {c}"));
            }
        }
        if self.eval.samples < 1 {
            p.push("eval.samples: must be at least 1".into());
        }
        let l = &self.loss;
        if l.gradient_penalty < 0.0 {
            p.push(format!("loss.gradient_penalty: must be ≥ 0, got {}", l.gradient_penalty));
        }
        if let Some(c) = l.weight_clip {
            if c <= 0.0 {
                p.push(format!("loss.weight_clip: must be positive, got {c}"));
            }
            if l.adversarial != AdvLoss::Wasserstein {
                p.push(format!("loss.weight_clip: weight clipping is the WGAN critic's constraint; it needs loss.adversarial: wasserstein (got {})", adv_name(l.adversarial)));
            }
            if l.gradient_penalty > 0.0 {
                p.push("loss.weight_clip: choose either weight clipping or loss.gradient_penalty, not both (Gulrajani 2017 replaces one with the other)".into());
            }
        }
        if l.adversarial == AdvLoss::Wasserstein && l.weight_clip.is_none() && l.gradient_penalty == 0.0 && !l.spectral_norm {
            p.push("loss.adversarial: wasserstein needs a Lipschitz constraint on D: set loss.weight_clip, loss.gradient_penalty or loss.spectral_norm".into());
        }
        let shape = self.data.shape();
        let points = self.data.is_points();
        p.extend(self.model.generator.check(&shape).into_iter().map(|m| format!("model.generator: {m}")));
        p.extend(self.model.discriminator.check(&shape).into_iter().map(|m| format!("model.discriminator: {m}")));
        let g_mlp = matches!(self.model.generator, GeneratorConfig::Mlp(_));
        let d_mlp = matches!(self.model.discriminator, DiscriminatorConfig::Mlp(_));
        if points && (!g_mlp || !d_mlp) {
            p.push("model: 2-D point data needs arch: mlp for both generator and discriminator".into());
        }
        if !points && (g_mlp || d_mlp) {
            p.push("model: image data needs arch: dcgan for both generator and discriminator".into());
        }
        if let DataConfig::ImageFolder(f) = &self.data {
            if !matches!(f.channels, 1 | 3) {
                p.push(format!("data.channels: must be 1 or 3, got {}", f.channels));
            }
            if let Some(ls) = f.load_size {
                if ls < f.size {
                    p.push(format!("data.load_size: {ls} is smaller than data.size {}; the random crop needs load_size ≥ size", f.size));
                }
            }
        }
        p
    }
}

fn adv_name(a: AdvLoss) -> String {
    load::to_yaml(&a).map(|s| s.trim().to_string()).unwrap_or_default()
}
