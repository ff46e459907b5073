//! What every family shares in a config: the run's name, seed, device, data, loss, training and evaluation
//! sections, pipeline stages, and their cross-field checks. Family sections live with their family
//! (`crate::families::<family>`); `crate::families` joins the two into a `Config`.
//!
//! Every struct rejects unknown keys (`deny_unknown_fields`, never `flatten`); choices are enums.
pub mod keys;
pub mod limits;
pub mod load;

pub use ganzoo_data::resize::ResizeProtocol;
pub use ganzoo_data::source::DataConfig;
use ganzoo_models::augment::AugOp;
use ganzoo_models::losses::AdvLoss;
use ganzoo_models::nets::DataShape;
use ganzoo_models::optim::{LrSchedule, OptimizerConfig};
use serde::{Deserialize, Serialize};
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A whole run: what data, which model `M`, which losses, how to train and evaluate. `crate::families::Config`
/// is `RunConfig<ModelConfig>`; families read [`Settings`], the same without the model section.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunConfig<M> {
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
    /// Where training examples come from, chosen by `kind:`.
    pub data: DataConfig,
    /// The model family and its networks, chosen by `family:`.
    pub model: M,
    /// The adversarial loss and D's constraints.
    #[serde(default)]
    pub loss: LossConfig,
    /// The training loop.
    #[serde(default)]
    pub train: TrainConfig,
    /// Evaluation: the family's own measures and the standard metrics.
    #[serde(default)]
    pub eval: EvalConfig,
    /// A multi-stage pipeline (e.g. StackGAN Stage-I then Stage-II): the stages run in order, each this config
    /// with its own `set` overrides, taking networks from earlier stages (`init_from`) and freezing some
    /// (`freeze`). Empty: a single-stage run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageConfig>,
}

/// A run's config without its model section: what the engine and every family read.
pub type Settings = RunConfig<()>;

impl<M> RunConfig<M> {
    /// The same config without the model section (and without stages).
    pub fn settings(&self) -> Settings {
        RunConfig {
            name: self.name.clone(),
            seed: self.seed,
            device: self.device.clone(),
            threads: self.threads,
            data: self.data.clone(),
            model: (),
            loss: self.loss.clone(),
            train: self.train.clone(),
            eval: self.eval.clone(),
            stages: Vec::new(),
        }
    }

    /// The shape of one example of the data.
    pub fn shape(&self) -> DataShape {
        let [channels, height, width] = self.data.dims();
        DataShape { channels, height, width }
    }
}

fn default_name() -> String {
    "run".into()
}
fn default_device() -> String {
    "auto".into()
}

/// One stage of a pipeline (an entry of `stages:`).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// The stage's name: letters, digits, `-` and `_` (its folder is `stages/<name>/`).
    pub name: String,
    /// Overrides of the config for this stage by dotted key, e.g. `{model.stage: 2, train.steps: 600}`;
    /// they win over the file and over a plain `--set`; `--set stages.<name>.<key>=…` changes them.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub set: BTreeMap<String, Value>,
    /// Networks taken before the stage's first step, by checkpoint name: `{G1: stage1}` takes `G1` from the
    /// newest checkpoint of the earlier stage `stage1`; the value may also be a run folder of another run's
    /// stage or a checkpoint `.safetensors` file.
    #[serde(default)]
    pub init_from: BTreeMap<String, String>,
    /// Networks kept fixed in this stage (they must come from `init_from`).
    #[serde(default)]
    pub freeze: Vec<String>,
}

/// Parameter initialization.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// DCGAN: conv/linear weights N(0, 0.02), batch-norm weights N(1, 0.02), biases 0.
    #[default]
    Dcgan,
    /// PyTorch's layer defaults: U(−1/√fan_in, 1/√fan_in) for weights and biases.
    Pytorch,
}

impl Init {
    /// Initializes every variable of `vs` from the stream `(seed, stream)`.
    pub fn apply(self, vs: &tch::nn::VarStore, seed: u64, stream: &str) {
        let mut rng = ganzoo_models::rng::derived_rng(seed, stream, 0);
        match self {
            Init::Dcgan => ganzoo_models::init::init_dcgan(vs, &mut rng),
            Init::Pytorch => ganzoo_models::init::init_default(vs, &mut rng),
        }
    }
}

/// The adversarial loss and its Lipschitz constraints.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LossConfig {
    /// The adversarial loss: `minimax` (saturating, Goodfellow 2014 eq. 1), `non_saturating`, `lsgan`,
    /// `wasserstein` or `hinge`.
    #[serde(default = "default_adv")]
    pub adversarial: AdvLoss,
    /// Weight λ of the WGAN-GP gradient penalty (0: off).
    #[serde(default)]
    pub gradient_penalty: f64,
    /// Clip D's weights to [−c, c] after each D step (WGAN).
    #[serde(default)]
    pub weight_clip: Option<f64>,
    /// Spectral normalization of every D layer (Miyato 2018), in every family.
    #[serde(default)]
    pub spectral_norm: bool,
    /// Weight γ of the R1 penalty (Mescheder et al. 2018, eq. 9): γ/2 · E‖∇D(x_real)‖² on real images only, the
    /// condition held for conditional Ds (0: off).
    #[serde(default)]
    pub r1: f64,
    /// Lazy regularization (StyleGAN2): R1 every k-th step, weighted by k (1: every step).
    #[serde(default = "one")]
    pub r1_every: i64,
}

fn default_adv() -> AdvLoss {
    AdvLoss::NonSaturating
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig { adversarial: default_adv(), gradient_penalty: 0.0, weight_clip: None, spectral_norm: false, r1: 0.0, r1_every: 1 }
    }
}

/// The training loop.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Number of generator updates.
    #[serde(default = "default_steps")]
    pub steps: i64,
    /// Examples per batch: in data-parallel training the global batch, of which each rank takes batch_size / world_size.
    #[serde(default = "default_batch")]
    pub batch_size: i64,
    /// Discriminator updates per generator update, each on a fresh batch.
    #[serde(default = "one")]
    pub n_critic: i64,
    /// The optimizer of the generators (and encoders), with PyTorch's semantics and defaults.
    #[serde(default)]
    pub g_optimizer: OptimizerConfig,
    /// The optimizer of the discriminators, with PyTorch's semantics and defaults.
    #[serde(default)]
    pub d_optimizer: OptimizerConfig,
    /// Multiplies both learning rates over the run.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Decay of an exponential moving average of every generator and encoder (e.g. 0.999), updated after each G
    /// update; sample grids, `sample`, `eval`, `translate`, `reconstruct` and the final report use the averages.
    #[serde(default)]
    pub ema: Option<f64>,
    /// Clip each network's gradient norm to this value.
    #[serde(default)]
    pub grad_clip: Option<f64>,
    /// Rescale every unit's incoming weights (each row of a linear weight, each output channel of a conv) of
    /// every trained network to at most this L2 norm after each update; biases and norm parameters are left
    /// alone (pylearn2's max_col_norm: 1.9365 in Goodfellow 2014 and Mirza & Osindero 2014).
    #[serde(default)]
    pub max_norm: Option<f64>,
    /// Log the losses to `metrics.jsonl` every this many steps (and at the last step).
    #[serde(default = "default_log_every")]
    pub log_every: i64,
    /// Write a sample grid every this many steps (and at the last step).
    #[serde(default = "default_sample_every")]
    pub sample_every: i64,
    /// Write a checkpoint every this many steps (and at the last step).
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
    /// Gradient accumulation: each update sums the gradients of k batches (an effective batch of
    /// k × batch_size) before its optimizer step.
    #[serde(default = "one")]
    pub accumulate: i64,
    /// `fp32`, or `bf16`: the forward passes and losses under bfloat16 autocast (weights, gradients and
    /// optimizer state stay float32).
    #[serde(default)]
    pub precision: Precision,
    /// DiffAugment (Zhao et al. 2020): differentiable augmentations applied to every image D sees, real and
    /// generated, in D's and G's updates, e.g. `[color, translation, cutout]` (empty: off).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diffaugment: Vec<AugOp>,
    /// Data-parallel training (launched by torchrun): a collective that does not complete in this many seconds
    /// (a rank died or hangs) stops every rank with an error.
    #[serde(default = "default_collective_timeout", skip_serializing_if = "is_default_collective_timeout")]
    #[schemars(extend("default" = default_collective_timeout()))]
    pub collective_timeout_s: u64,
    /// Data-parallel training: batch norms in training use the statistics of the whole global batch (all
    /// ranks' rows, as torch.nn.SyncBatchNorm) instead of each rank's own (as PyTorch DDP by default). In one
    /// process it selects the same arithmetic (float64 statistics), so that 1 and N ranks give the same numbers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sync_batch_norm: bool,
    /// Also write what `metrics.jsonl` logs and the sample grids as TensorBoard event files under `RUN/tb/`.
    /// May change on `--resume`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tensorboard: bool,
}

fn default_collective_timeout() -> u64 {
    300
}
fn is_default_collective_timeout(v: &u64) -> bool {
    *v == default_collective_timeout()
}

/// The arithmetic of the forward passes.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    #[default]
    Fp32,
    Bf16,
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
            accumulate: 1,
            precision: Precision::Fp32,
            diffaugment: Vec::new(),
            collective_timeout_s: default_collective_timeout(),
            sync_batch_norm: false,
            tensorboard: false,
        }
    }
}

/// Evaluation: the family's own measures (judges, PSNR, mode coverage) and the standard metrics of GAN papers
/// (FID, KID, precision/recall, density/coverage; IS with a user's classifier), each reported with its
/// protocol. Every key here may change on `--resume` and with `ganzoo eval RUN --set eval.KEY=VALUE`.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Generated images to evaluate, and the most real images of the reference split the standard metrics
    /// compare them with (2,500 in the VEEGAN / PacGAN mode protocol; papers' FID uses 10,000 to 50,000).
    #[serde(default = "default_eval_samples")]
    pub samples: usize,
    /// The standard metrics `ganzoo eval` and `eval.every` report for image data: any of `fid`, `kid`,
    /// `precision_recall`, `density_coverage`. Empty: only the family's own measures (no feature network
    /// needed).
    #[serde(default = "default_metrics")]
    pub metrics: Vec<StandardMetric>,
    /// How images are resized to the network's 299×299: `clean` (clean-fid: PIL bicubic with antialiasing,
    /// in float) or `legacy` (pytorch-fid: bilinear, no antialiasing).
    #[serde(default)]
    pub resize: ResizeProtocol,
    /// The feature network, a TorchScript file mapping (N, 3, 299, 299) pixel values to (N, 2048) (default:
    /// `<cache>/inception/default_1.pt`, from `ganzoo data get inception`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<PathBuf>,
    /// A TorchScript classifier for the Inception Score: it takes the same (N, 3, 299, 299) pixel values in
    /// [0, 255] and returns (N, K) logits (e.g. a wrapped torchvision Inception-v3). The FID network has no
    /// logits, so without this file there is no IS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inception: Option<PathBuf>,
    /// Images per batch through the feature network.
    #[serde(default = "default_eval_batch")]
    pub batch_size: usize,
    /// While training, evaluate the standard metrics every this many steps (and at the last step) into
    /// `metrics.jsonl`. 0: never.
    #[serde(default)]
    pub every: i64,
    /// With `eval.every`: keep the checkpoint with the lowest value of this metric (`fid` or `kid`, of the
    /// first comparison: samples, A→B, Stage-II, prior samples) as `checkpoints/best.*`, apart from the
    /// rolling checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<BestMetric>,
}

/// A standard metric (`eval.metrics`).
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StandardMetric {
    /// Fréchet Inception Distance (Heusel et al. 2017).
    Fid,
    /// Kernel Inception Distance (Bińkowski et al. 2018): 100 subsets of up to 1,000, cubic kernel.
    Kid,
    /// Improved precision and recall (Kynkäänniemi et al. 2019), k = 3.
    PrecisionRecall,
    /// Density and coverage (Naeem et al. 2020), k = 5.
    DensityCoverage,
}

/// The metric `eval.best` keeps the best checkpoint by (lower is better).
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BestMetric {
    Fid,
    Kid,
}

impl BestMetric {
    /// Its key in a metrics report.
    pub fn key(self) -> &'static str {
        match self {
            BestMetric::Fid => "fid",
            BestMetric::Kid => "kid",
        }
    }
}

fn default_eval_samples() -> usize {
    2500
}

fn default_metrics() -> Vec<StandardMetric> {
    vec![StandardMetric::Fid, StandardMetric::Kid, StandardMetric::PrecisionRecall, StandardMetric::DensityCoverage]
}

fn default_eval_batch() -> usize {
    50
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            samples: default_eval_samples(),
            metrics: default_metrics(),
            resize: ResizeProtocol::default(),
            network: None,
            inception: None,
            batch_size: default_eval_batch(),
            every: 0,
            best: None,
        }
    }
}

impl EvalConfig {
    /// Every problem of the section, each naming its dotted key.
    fn problems(&self, data: &DataConfig, p: &mut Vec<String>) {
        if self.samples < 1 {
            p.push("eval.samples: must be at least 1".into());
        }
        if self.batch_size < 1 {
            p.push("eval.batch_size: must be at least 1".into());
        }
        if self.every < 0 {
            p.push(format!("eval.every: must be 0 (never) or a number of steps, got {}", self.every));
        }
        let mut seen = Vec::new();
        for m in &self.metrics {
            if seen.contains(m) {
                p.push(format!("eval.metrics: {} is listed twice", load::to_yaml(m).map(|s| s.trim().to_string()).unwrap_or_default()));
            }
            seen.push(*m);
        }
        if self.every > 0 && data.is_points() {
            p.push(format!("eval.every: the standard metrics compare images; data.kind {} is 2-D points", data.kind()));
        }
        if self.every > 0 && self.metrics.is_empty() && self.inception.is_none() {
            p.push("eval.every: eval.metrics is empty, so there is nothing to evaluate while training".into());
        }
        if let Some(b) = self.best {
            if self.every == 0 {
                p.push(format!("eval.best: {} needs eval.every (how often to evaluate while training)", b.key()));
            }
            let needed = match b {
                BestMetric::Fid => StandardMetric::Fid,
                BestMetric::Kid => StandardMetric::Kid,
            };
            if !self.metrics.contains(&needed) {
                p.push(format!("eval.best: {} is not in eval.metrics", b.key()));
            }
        }
    }
}

impl<M> RunConfig<M> {
    /// Every cross-field problem of the shared sections, each naming its dotted key; empty when consistent.
    /// The family's own checks come from `crate::families`.
    pub fn shared_problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if let Some(problem) = name_problem(&self.name) {
            p.push(format!("name: {problem}"));
        }
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
            ("train.accumulate", t.accumulate),
            ("loss.r1_every", self.loss.r1_every),
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
            if c.is_nan() || c <= 0.0 {
                p.push(format!("train.grad_clip: must be positive, got {c}"));
            }
        }
        if let Some(c) = t.max_norm {
            if c.is_nan() || c <= 0.0 {
                p.push(format!("train.max_norm: must be positive, got {c}"));
            }
        }
        if !t.diffaugment.is_empty() && self.data.is_points() {
            p.push(format!("train.diffaugment: DiffAugment transforms images; data.kind {} is 2-D points", self.data.kind()));
        }
        let mut seen = Vec::new();
        for op in &t.diffaugment {
            if seen.contains(op) {
                p.push(format!("train.diffaugment: {} is listed twice", load::to_yaml(op).map(|s| s.trim().to_string()).unwrap_or_default()));
            }
            seen.push(*op);
        }
        self.eval.problems(&self.data, &mut p);
        let l = &self.loss;
        if l.gradient_penalty < 0.0 {
            p.push(format!("loss.gradient_penalty: must be ≥ 0, got {}", l.gradient_penalty));
        }
        non_negative(&mut p, &[("loss.r1", l.r1)]);
        if let Some(c) = l.weight_clip {
            if c.is_nan() || c <= 0.0 {
                p.push(format!("loss.weight_clip: must be positive, got {c}"));
            }
            if l.adversarial != AdvLoss::Wasserstein {
                p.push(format!("loss.weight_clip: weight clipping is the WGAN critic's constraint; it needs loss.adversarial: wasserstein (got {})", adv_name(l.adversarial)));
            }
            if l.gradient_penalty > 0.0 {
                p.push("loss.weight_clip: choose either weight clipping or loss.gradient_penalty, not both (Gulrajani 2017 replaces one with the other)".into());
            }
        }
        if l.r1 > 0.0 && l.gradient_penalty > 0.0 {
            p.push("loss.r1: choose either the R1 penalty or loss.gradient_penalty, not both (both constrain D's input gradients: R1 pulls them to 0 on real data, WGAN-GP to norm 1 between real and generated data)".into());
        }
        if l.adversarial == AdvLoss::Wasserstein && l.weight_clip.is_none() && l.gradient_penalty == 0.0 && !l.spectral_norm {
            p.push("loss.adversarial: wasserstein needs a Lipschitz constraint on D: set loss.weight_clip, loss.gradient_penalty or loss.spectral_norm".into());
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

/// The longest run name (it is a folder name under `runs/`).
pub const MAX_NAME_LEN: usize = 100;

/// Why `name` cannot be a run's folder name under `runs/`: it must be one path component (no `/`, not `.`
/// or `..`) of printable characters, at most [`MAX_NAME_LEN`] long. A long name is not repeated.
pub fn name_problem(name: &str) -> Option<String> {
    let n = name.chars().count();
    if n > MAX_NAME_LEN {
        return Some(format!("must be at most {MAX_NAME_LEN} characters (it is the run's folder name), got {n}"));
    }
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) || name.chars().any(char::is_control) {
        return Some(format!("{name:?} is not a folder name: use one path component of letters, digits, `-`, `_` or `.` (no `/`, not `.` or `..`)"));
    }
    None
}

/// An adversarial loss as written in configs.
pub fn adv_name(a: AdvLoss) -> String {
    load::to_yaml(&a).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// A problem for each loss weight (by dotted key) that is negative, NaN or infinite.
pub fn non_negative(p: &mut Vec<String>, weights: &[(&str, f64)]) {
    for &(key, v) in weights {
        if !(v >= 0.0 && v.is_finite()) {
            p.push(format!("{key}: must be a number ≥ 0, got {v}"));
        }
    }
}
