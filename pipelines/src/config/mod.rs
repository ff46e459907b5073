//! The config schema: every key a run can set, its default, and the cross-field checks.
//!
//! Every struct rejects unknown keys (`deny_unknown_fields`, never `flatten`); choices are enums.
pub mod load;

use ganzoo_data::captions::CaptionedConfig;
use ganzoo_data::folder::ImageFolderConfig;
use ganzoo_data::shapes::ShapesConfig;
use ganzoo_data::tokenize::TokenizerConfig;
use ganzoo_data::shapes2::Shapes2Config;
use ganzoo_data::unpaired::UnpairedConfig;
use ganzoo_models::losses::AdvLoss;
use ganzoo_models::cond::{CondDiscriminatorConfig, CondGeneratorConfig, HeadDesign};
use ganzoo_models::cyclegan::{PatchDiscriminatorConfig, ResnetGeneratorConfig};
use ganzoo_models::text::TextEncoderConfig;
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
    /// A multi-stage pipeline (e.g. StackGAN Stage-I then Stage-II): the stages run in order, each this config
    /// with its own `set` overrides, taking networks from earlier stages (`init_from`) and freezing some
    /// (`freeze`). Empty: a single-stage run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<crate::pipeline::StageConfig>,
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
    /// Procedural captioned shapes ("a small red circle on a blue background") with exact attributes.
    Shapes(ShapesConfig),
    /// Images with caption files in the CUB-200 / Oxford-102 layout (`images/`, `text/`, split files).
    Captioned(CaptionedConfig),
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
            DataConfig::Shapes(s) => DataShape { channels: 3, height: s.size, width: s.size },
            DataConfig::Captioned(c) => DataShape { channels: 3, height: c.size, width: c.size },
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
            DataConfig::Shapes(_) => "shapes",
            DataConfig::Captioned(_) => "captioned",
        }
    }

    /// Whether every example comes with captions (text-to-image data).
    pub fn has_captions(&self) -> bool {
        matches!(self, DataConfig::Shapes(_) | DataConfig::Captioned(_))
    }

    /// The number of class labels, for class-conditional data (MNIST; image folders with class subfolders
    /// report theirs when opened, so `None` here).
    pub fn known_classes(&self) -> Option<i64> {
        match self {
            DataConfig::Mnist { .. } => Some(10),
            _ => None,
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
    /// Class-conditional GAN (Mirza & Osindero 2014): G(z, y), D(x, y); concatenation or projection D.
    Cgan(CondModelConfig),
    /// Text-conditional GAN-CLS / GAN-INT (Reed et al. 2016): G(z, φ(t)), matching-aware D.
    GanCls(CondModelConfig),
    /// StackGAN (Zhang et al. 2017): conditioning augmentation, Stage-I G/D at 64×64, Stage-II G/D at 256×256.
    Stackgan(crate::stackgan::StackGanModelConfig),
    /// VAE-GAN (Larsen et al. 2016): encoder, one decoder that is also the generator, D's l-th layer as the
    /// reconstruction metric; or the same encoder and decoder as a plain VAE (`plain_vae: true`).
    Vaegan(crate::vaegan::VaeganModelConfig),
    /// UNIT (Liu, Breuel & Kautz 2017): a VAE-GAN per domain (EN_A, DE_A, EN_B, DE_B) whose last encoder and
    /// first decoder blocks are shared, so both domains map to one latent space; a multi-scale D per domain.
    Unit(crate::unit::UnitModelConfig),
}

impl ModelConfig {
    /// The family's name as written in configs.
    pub fn family(&self) -> &'static str {
        match self {
            ModelConfig::Gan(_) => "gan",
            ModelConfig::Cyclegan(_) => "cyclegan",
            ModelConfig::Cgan(_) => "cgan",
            ModelConfig::GanCls(_) => "gan_cls",
            ModelConfig::Stackgan(_) => "stackgan",
            ModelConfig::Vaegan(_) => "vaegan",
            ModelConfig::Unit(_) => "unit",
        }
    }
}

/// Networks and loss weights of the conditional families (`cgan`: class labels; `gan_cls`: captions).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CondModelConfig {
    /// Size of the noise vector z.
    #[serde(default = "default_z_dim")]
    pub z_dim: i64,
    /// Distribution of z: normal N(0, 1), or uniform U(−1, 1) (Mirza & Osindero).
    #[serde(default)]
    pub noise: Noise,
    /// G(z, c): `mlp` (Mirza & Osindero) or `dcgan` (GAN-CLS).
    pub generator: CondGeneratorConfig,
    /// D(x, c): `maxout` (Mirza & Osindero), `dcgan` (GAN-CLS, text replicated at 4×4) or `projection`.
    pub discriminator: CondDiscriminatorConfig,
    /// `joint`: one score for "real and matching"; `split`: a real/fake head on the image alone plus a match
    /// head on image + condition, each with its own loss term.
    #[serde(default)]
    pub heads: HeadDesign,
    /// Weight w of the (real image, mismatching condition) → fake term in D's loss; the (generated image,
    /// matching condition) → fake term gets 1 − w. GAN-CLS: 0.5 (default for gan_cls); plain CGAN: 0
    /// (default for cgan).
    #[serde(default)]
    pub mismatch_weight: Option<f64>,
    /// GAN-INT (Reed et al. 2016, §4.3): weight of an extra generator term on interpolated conditions
    /// β·c₁ + (1 − β)·c₂ with β = 0.5; 0 switches it off (the paper's GAN-INT uses 1).
    #[serde(default)]
    pub interpolation: f64,
    /// Mode seeking (Mao et al. 2019, MSGAN): weight λ of an extra generator term 1 / (d_img / d_z + 1e-5),
    /// d_img and d_z the mean absolute differences between two images of the same conditions and between
    /// their noise vectors, so that G cannot ignore z; 0 switches it off (MSGAN uses 1).
    #[serde(default)]
    pub mode_seeking: f64,
    /// Captions and the text encoder (family gan_cls only).
    #[serde(default)]
    pub text: Option<TextConfig>,
    /// How parameters are initialized.
    #[serde(default)]
    pub init: Init,
}

impl CondModelConfig {
    /// The mismatch weight with the family's default.
    pub fn mismatch(&self, text: bool) -> f64 {
        self.mismatch_weight.unwrap_or(if text { 0.5 } else { 0.0 })
    }
}

/// The distribution of the noise z.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Noise {
    #[default]
    Normal,
    Uniform,
}

/// How captions become condition vectors.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextConfig {
    /// The text encoder: `trainable`, `minilm` (pretrained, frozen) or `precomputed` embeddings.
    pub encoder: TextEncoderChoice,
    /// Tokenizer of a trainable encoder: `word_level` or `bpe` trained on the training captions (saved as
    /// `tokenizer.json` in the run), or `file` (a user's tokenizer.json). MiniLM uses its own.
    #[serde(default)]
    pub tokenizer: TokenizerConfig,
    /// Embeddings of this many randomly chosen captions of an image are averaged (Reed et al.: 4).
    #[serde(default = "four")]
    pub captions_per_image: usize,
    /// Captions are cut to this many tokens.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
}

fn four() -> usize {
    4
}
fn default_max_tokens() -> usize {
    32
}

/// Which text encoder turns a caption into φ(t).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TextEncoderChoice {
    /// A text encoder of models/ trained here: contrastively pretrained on (image, caption) pairs and then
    /// frozen (`training: pretrained`), or trained jointly by D's loss (`training: joint`).
    Trainable {
        /// The network: `arch: gru` (bidirectional GRU) or `arch: transformer`.
        #[serde(default)]
        network: TextEncoderConfig,
        /// Size of φ(t).
        #[serde(default = "default_text_dim")]
        dim: i64,
        #[serde(default)]
        training: TextTraining,
        /// Contrastive pretraining steps before GAN training (training: pretrained).
        #[serde(default = "default_pretrain_steps")]
        pretrain_steps: i64,
        /// Learning rate of the encoder's Adam (pretraining or joint training).
        #[serde(default = "default_text_lr")]
        lr: f64,
    },
    /// The pretrained MiniLM sentence encoder (all-MiniLM-L6-v2, 384-d), frozen; `ganzoo data get minilm`.
    Minilm {
        /// Folder with model.safetensors, config.json and tokenizer.json (default: `<cache>/minilm`).
        #[serde(default)]
        dir: Option<PathBuf>,
    },
    /// Precomputed embeddings (e.g. CUB's char-CNN-RNN, converted to .npy or .safetensors): (N, K, D) or
    /// (N, D) rows in the dataset's image order, or in the order of `names`.
    Precomputed {
        file: PathBuf,
        /// A text file naming the image of each row (`class/name`), one a line.
        #[serde(default)]
        names: Option<PathBuf>,
    },
}

fn default_text_dim() -> i64 {
    128
}
fn default_pretrain_steps() -> i64 {
    500
}
fn default_text_lr() -> f64 {
    1e-3
}

/// How a trainable text encoder learns.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum TextTraining {
    /// Contrastive (image, caption) pretraining for `pretrain_steps`, then frozen.
    #[default]
    Pretrained,
    /// Updated with D's loss during GAN training (G sees its output detached).
    Joint,
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
    /// Rescale every unit's incoming weights of G and D to at most this L2 norm after each update
    /// (pylearn2's max_col_norm: 1.9365 in Goodfellow 2014 and Mirza & Osindero 2014).
    #[serde(default)]
    pub max_norm: Option<f64>,
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
            max_norm: None,
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
        if let Some(c) = t.max_norm {
            if c.is_nan() || c <= 0.0 {
                p.push(format!("train.max_norm: must be positive, got {c}"));
            }
            if matches!(self.model, ModelConfig::Cyclegan(_)) {
                p.push("train.max_norm: not wired into family cyclegan".into());
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
            ModelConfig::Cgan(m) => self.cond_problems(m, false, &mut p),
            ModelConfig::GanCls(m) => self.cond_problems(m, true, &mut p),
            ModelConfig::Stackgan(m) => self.stackgan_problems(m, &mut p),
            ModelConfig::Vaegan(m) => crate::vaegan::problems(self, m, &mut p),
            ModelConfig::Unit(m) => crate::unit::problems(self, m, &mut p),
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
        non_negative(p, &[("model.lambda_a", m.lambda_a), ("model.lambda_b", m.lambda_b), ("model.lambda_identity", m.lambda_identity)]);
        if m.init_std.is_nan() || m.init_std <= 0.0 {
            p.push(format!("model.init_std: must be positive, got {}", m.init_std));
        }
        if self.loss.weight_clip.is_some() || self.loss.gradient_penalty > 0.0 || self.loss.spectral_norm {
            p.push("loss: weight_clip, gradient_penalty and spectral_norm are not wired into family cyclegan; choose loss.adversarial (lsgan as in the paper)".into());
        }
        if self.train.n_critic != 1 {
            p.push("train.n_critic: family cyclegan updates G and D once per step".into());
        }
        if self.train.ema.is_some() {
            p.push("train.ema: not wired into family cyclegan; remove it".into());
        }
    }
}

impl Config {
    fn cond_problems(&self, m: &CondModelConfig, text: bool, p: &mut Vec<String>) {
        let family = if text { "gan_cls" } else { "cgan" };
        if m.z_dim < 1 {
            p.push(format!("model.z_dim: must be at least 1, got {}", m.z_dim));
        }
        if self.data.is_two_domain() || self.data.is_points() {
            p.push(format!("data.kind: family {family} needs images with {}, got {}", if text { "captions" } else { "class labels" }, self.data.kind()));
            return;
        }
        if text && !self.data.has_captions() {
            p.push(format!("data.kind: family gan_cls needs captioned images (shapes or captioned), got {}", self.data.kind()));
        }
        if !text && !matches!(self.data, DataConfig::Mnist { .. } | DataConfig::ImageFolder(_)) {
            p.push(format!("data.kind: family cgan needs class labels (mnist, or image_folder with one subfolder per class), got {}", self.data.kind()));
        }
        match (&m.text, text) {
            (None, true) => p.push("model.text: family gan_cls needs a text section (encoder: trainable, minilm or precomputed)".into()),
            (Some(_), false) => p.push("model.text: family cgan is conditioned on class labels; remove the text section (or use family: gan_cls)".into()),
            _ => {}
        }
        if let Some(t) = &m.text {
            if t.captions_per_image < 1 {
                p.push("model.text.captions_per_image: must be at least 1".into());
            }
            if self.train.batch_size < 2 && matches!(self.model, ModelConfig::GanCls(_)) {
                p.push("train.batch_size: text-conditional D normalizes its text projection over the batch; use at least 2".into());
            }
            if t.max_tokens < 3 {
                p.push(format!("model.text.max_tokens: must be at least 3, got {}", t.max_tokens));
            }
            if let TextEncoderChoice::Trainable { dim, pretrain_steps, lr, training, .. } = &t.encoder {
                if *dim < 1 {
                    p.push(format!("model.text.encoder.dim: must be at least 1, got {dim}"));
                }
                if *training == TextTraining::Pretrained && *pretrain_steps < 1 {
                    p.push("model.text.encoder.pretrain_steps: a pretrained (frozen) encoder needs at least 1 pretraining step; use training: joint to train it with D".into());
                }
                if lr.is_nan() || *lr <= 0.0 {
                    p.push(format!("model.text.encoder.lr: must be positive, got {lr}"));
                }
            }
        }
        if self.train.ema.is_some() {
            p.push(format!("train.ema: not wired into family {family}; remove it"));
        }
        let shape = self.data.shape();
        p.extend(m.generator.check(&shape).into_iter().map(|e| format!("model.generator: {e}")));
        p.extend(m.discriminator.check(&shape).into_iter().map(|e| format!("model.discriminator: {e}")));
        let w = m.mismatch(text);
        if !(0.0..=1.0).contains(&w) {
            p.push(format!("model.mismatch_weight: must be in [0, 1], got {w}"));
        }
        non_negative(p, &[("model.interpolation", m.interpolation), ("model.mode_seeking", m.mode_seeking)]);
    }
}

/// A problem for each loss weight (by dotted key) that is negative, NaN or infinite.
pub(crate) fn non_negative(p: &mut Vec<String>, weights: &[(&str, f64)]) {
    for &(key, v) in weights {
        if !(v >= 0.0 && v.is_finite()) {
            p.push(format!("{key}: must be a number ≥ 0, got {v}"));
        }
    }
}
