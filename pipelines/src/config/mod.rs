//! The config schema: every key a run can set, its default, and the cross-field checks.
//!
//! Every struct rejects unknown keys (`deny_unknown_fields`, never `flatten`); choices are enums.
pub mod load;

use ganzoo_data::folder::ImageFolderConfig;
use ganzoo_data::shapes2::Shapes2Config;
use ganzoo_data::unpaired::UnpairedConfig;
use ganzoo_models::losses::AdvLoss;
use ganzoo_models::cyclegan::{PatchDiscriminatorConfig, ResnetGeneratorConfig};
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
    /// libtorch intra-op CPU threads (0: libtorch's default, one per core). Small networks run fastest on 1;
    /// more threads than free cores make libtorch's OpenMP threads spin and slow everything down.
    #[serde(default)]
    pub threads: usize,
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
    /// Two image domains: `trainA/ trainB/ testA/ testB/`, or side-by-side A|B images (pix2pix form).
    Unpaired(UnpairedConfig),
    /// Procedural two-domain scenes with a hidden ground-truth correspondence.
    Shapes2(Shapes2Config),
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
            DataConfig::Unpaired(u) => DataShape { channels: u.channels, height: u.size, width: u.size },
            DataConfig::Shapes2(s) => DataShape { channels: 3, height: s.size, width: s.size },
        }
    }

    /// Whether an example holds an A and a B image (unpaired translation).
    pub fn is_two_domain(&self) -> bool {
        matches!(self, DataConfig::Unpaired(_) | DataConfig::Shapes2(_))
    }

    /// The `kind:` as written in configs.
    pub fn kind(&self) -> &'static str {
        match self {
            DataConfig::Ring8 { .. } => "ring8",
            DataConfig::Grid25 { .. } => "grid25",
            DataConfig::Mnist { .. } => "mnist",
            DataConfig::ImageFolder(_) => "image_folder",
            DataConfig::Unpaired(_) => "unpaired",
            DataConfig::Shapes2(_) => "shapes2",
        }
    }

    /// Whether examples are 2-D points rather than images.
    pub fn is_points(&self) -> bool {
        matches!(self, DataConfig::Ring8 { .. } | DataConfig::Grid25 { .. })
    }
}

/// The model family and its networks, chosen by `family:`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "family", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelConfig {
    /// Unconditional GAN: G(z), D(x) (Goodfellow 2014; DCGAN networks from Radford 2016).
    Gan(GanModelConfig),
    /// CycleGAN (Zhu et al. 2017): G_A: A→B, G_B: B→A, PatchGAN D_A (judges B) and D_B (judges A).
    Cyclegan(CycleganModelConfig),
}

impl ModelConfig {
    /// The family's name as written in configs.
    pub fn family(&self) -> &'static str {
        match self {
            ModelConfig::Gan(_) => "gan",
            ModelConfig::Cyclegan(_) => "cyclegan",
        }
    }
}

/// Networks of the unconditional GAN family.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GanModelConfig {
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

/// Networks and loss weights of CycleGAN; defaults are the reference implementation's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CycleganModelConfig {
    /// ResNet generator (both directions): ngf 64, 9 blocks (6 at 128 px), instance norm, reflection padding.
    #[serde(default)]
    pub generator: ResnetGeneratorConfig,
    /// 70×70 PatchGAN: ndf 64, n_layers 3, instance norm.
    #[serde(default)]
    pub discriminator: PatchDiscriminatorConfig,
    /// Weight of the cycle loss A → B → A (λ_A).
    #[serde(default = "ten")]
    pub lambda_a: f64,
    /// Weight of the cycle loss B → A → B (λ_B).
    #[serde(default = "ten")]
    pub lambda_b: f64,
    /// Identity loss weight relative to λ: ‖G_A(B) − B‖₁ · λ_B · lambda_identity (the reference's 0.5, so 5 on
    /// the L1; mmagic applies 0.5 directly, a known discrepancy).
    #[serde(default = "half")]
    pub lambda_identity: f64,
    /// Generated images kept per discriminator in the history pool (Shrivastava et al. 2017); 0: no pool.
    #[serde(default = "fifty")]
    pub pool_size: usize,
    /// Standard deviation of the N(0, σ) initialization (the reference's init_gain).
    #[serde(default = "init_std")]
    pub init_std: f64,
}

fn ten() -> f64 {
    10.0
}
fn half() -> f64 {
    0.5
}
fn fifty() -> usize {
    50
}
fn init_std() -> f64 {
    0.02
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
        match &self.model {
            ModelConfig::Gan(m) => self.gan_problems(m, &mut p),
            ModelConfig::Cyclegan(m) => self.cyclegan_problems(m, &mut p),
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

impl Config {
    fn gan_problems(&self, m: &GanModelConfig, p: &mut Vec<String>) {
        if m.z_dim < 1 {
            p.push(format!("model.z_dim: must be at least 1, got {}", m.z_dim));
        }
        if self.data.is_two_domain() {
            p.push(format!("data.kind: {} holds two domains; family gan takes one (use family: cyclegan)", self.data.kind()));
            return;
        }
        let shape = self.data.shape();
        let points = self.data.is_points();
        p.extend(m.generator.check(&shape).into_iter().map(|e| format!("model.generator: {e}")));
        p.extend(m.discriminator.check(&shape).into_iter().map(|e| format!("model.discriminator: {e}")));
        let g_mlp = matches!(m.generator, GeneratorConfig::Mlp(_));
        let d_mlp = matches!(m.discriminator, DiscriminatorConfig::Mlp(_));
        if points && (!g_mlp || !d_mlp) {
            p.push("model: 2-D point data needs arch: mlp for both generator and discriminator".into());
        }
        if !points && (g_mlp || d_mlp) {
            p.push("model: image data needs arch: dcgan for both generator and discriminator".into());
        }
    }

    fn cyclegan_problems(&self, m: &CycleganModelConfig, p: &mut Vec<String>) {
        if !self.data.is_two_domain() {
            p.push(format!("data.kind: family cyclegan needs two domains (unpaired or shapes2), got {}", self.data.kind()));
            return;
        }
        let shape = self.data.shape();
        p.extend(m.generator.check(shape.channels, shape.channels).into_iter().map(|e| format!("model.generator: {e}")));
        p.extend(m.discriminator.check(shape.channels).into_iter().map(|e| format!("model.discriminator: {e}")));
        if shape.height % 4 != 0 {
            p.push(format!("data.size: the ResNet generator needs a multiple of 4, got {}", shape.height));
        }
        if m.discriminator.output_size(shape.height).is_none_or(|s| s < 1) {
            p.push(format!("data.size: {} is too small for a PatchGAN with n_layers {}", shape.height, m.discriminator.n_layers));
        }
        for (key, v) in [("model.lambda_a", m.lambda_a), ("model.lambda_b", m.lambda_b), ("model.lambda_identity", m.lambda_identity)] {
            if !(v >= 0.0 && v.is_finite()) {
                p.push(format!("{key}: must be a number ≥ 0, got {v}"));
            }
        }
        if m.init_std.is_nan() || m.init_std <= 0.0 {
            p.push(format!("model.init_std: must be positive, got {}", m.init_std));
        }
        if self.loss.weight_clip.is_some() || self.loss.gradient_penalty > 0.0 || self.loss.spectral_norm {
            p.push("loss: weight_clip, gradient_penalty and spectral_norm are not wired into family cyclegan; choose loss.adversarial (lsgan as in the paper)".into());
        }
        if self.train.n_critic != 1 {
            p.push("train.n_critic: family cyclegan updates G and D once per step".into());
        }
    }
}
