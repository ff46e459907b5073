//! What a model family describes and the engine drives: its networks by role, the discriminator and generator
//! losses of one batch, D's raw scores for the input penalties, its sampler and its evaluation.
//!
//! The split follows PyTorch Lightning's manual optimization and mmagic's `train_step`: a family keeps the
//! order and content of its updates (which losses, which cached fakes), and the engine ([`crate::engine`]) owns
//! everything around them: the data feed, `n_critic`, gradient accumulation, freezing D during G's backward,
//! zero_grad / backward / step, bf16 autocast, gradient clipping, max-norm, weight clipping, the gradient
//! penalty and R1, DiffAugment on D's inputs, and the EMA of the generators.
use crate::config::Settings;
use crate::error::{PipelineError, Result};
use ganzoo_data::source::Source;
use ganzoo_models::augment::DiffAugment;
use ganzoo_models::optim::OptimizerConfig;
use ganzoo_models::rng::derived_rng;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tch::nn::VarStore;
use tch::{Device, Tensor};

/// Losses and diagnostics of one step, by name (e.g. `loss_D`, `loss_G`).
pub type Losses = BTreeMap<String, f64>;

/// What a conditional sample is asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Class(i64),
    Prompt(String),
}

/// The part a network plays; it decides which update trains it and whether it has an EMA copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Trained by the generator update; EMA'd when `train.ema` is set (samples, eval and translation use the
    /// average).
    Generator,
    /// An encoder trained with the generators (VAE-GAN's E); EMA'd like them.
    Encoder,
    /// Trained by the discriminator update; frozen during the generator update's backward.
    Discriminator,
    /// A text encoder trained jointly with D (GAN-CLS with `training: joint`).
    TextEncoder,
}

/// One of the two updates of a GAN step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The discriminator update (repeated `train.n_critic` times a step).
    D,
    /// The generator update.
    G,
}

impl Role {
    /// The update that trains a network of this role.
    pub fn phase(self) -> Phase {
        match self {
            Role::Generator | Role::Encoder => Phase::G,
            Role::Discriminator | Role::TextEncoder => Phase::D,
        }
    }
}

/// A network of a family.
pub struct Net<'a> {
    /// Its checkpoint prefix (`G`, `D_A`, `Dec`, …).
    pub name: &'static str,
    pub role: Role,
    pub vs: &'a VarStore,
    /// Its optimizer's checkpoint prefix (`opt_G`) and settings; `None` when it is not trained in this run
    /// (taken from an earlier stage and frozen, or pretrained before GAN training).
    pub opt: Option<(&'static str, OptimizerConfig)>,
}

/// A batch of the run, as the engine's feed made it.
pub struct Batch {
    /// Examples on the device: (N, C, H, W) images, (N, 2, C, H, W) A/B pairs, (N, 2) points.
    pub x: Tensor,
    /// Class labels, or the dataset indices of captioned data (on the CPU).
    pub y: Option<Vec<i64>>,
    /// Which batch of the run this is (0, 1, 2, … in the order drawn): seeds the family's per-batch noise, so a
    /// resumed run draws what an uninterrupted one does.
    pub draw: i64,
}

impl Batch {
    /// The labels, or an error saying the dataset gave none.
    pub fn labels(&self) -> Result<&[i64]> {
        self.y.as_deref().ok_or_else(|| PipelineError::Runtime("the dataset gave no labels".into()))
    }
}

/// What a D input penalty needs: which D, its real and generated inputs, and the condition it is held at.
pub struct CriticInput {
    pub d: &'static str,
    pub real: Tensor,
    pub fake: Tensor,
    pub cond: Option<Tensor>,
}

/// The loss of one update on one batch, and what the engine does with it.
pub struct Update {
    /// The scalar to minimize.
    pub loss: Tensor,
    /// Terms backpropagated after `loss`, each once the gradients so far of the named networks are scaled:
    /// VAE-GAN's decoder takes γ·∇L_llike + ∇L_GAN while its encoder takes ∇L_llike (Larsen et al. 2016).
    pub then: Vec<(Vec<(&'static str, f64)>, Tensor)>,
    /// Diagnostics to log.
    pub logs: Losses,
    /// D updates: what the gradient penalty and R1 are computed on.
    pub critics: Vec<CriticInput>,
    /// Networks whose optimizer does not step this time (VAE-GAN's equilibrium).
    pub hold: Vec<&'static str>,
}

impl Update {
    pub fn new(loss: Tensor, logs: Losses) -> Self {
        Update { loss, then: Vec::new(), logs, critics: Vec::new(), hold: Vec::new() }
    }
}

/// Where an update is: the step, the micro-batch of an accumulated update, and DiffAugment for D's inputs.
pub struct Ctx<'a> {
    pub step: i64,
    /// Which micro-batch of an accumulated update (0 without accumulation).
    pub micro: usize,
    pub phase: Phase,
    pub(crate) augment: Option<&'a DiffAugment>,
    pub(crate) seed: u64,
    pub(crate) draw: i64,
}

impl Ctx<'_> {
    /// An image batch as D must see it: DiffAugment'ed (differentiably) when `train.diffaugment` is set, with
    /// the same random transform for every call of this update on this batch, so real and generated images
    /// of one batch are augmented alike. Without DiffAugment, `x` itself.
    pub fn d_input(&self, x: &Tensor) -> Result<Tensor> {
        let Some(aug) = self.augment else { return Ok(x.shallow_clone()) };
        let s = x.size();
        if s.len() != 4 {
            return Err(PipelineError::Runtime(format!("DiffAugment transforms image batches (N, C, H, W), got {s:?}")));
        }
        let stream = match self.phase {
            Phase::D => "diffaugment_D",
            Phase::G => "diffaugment_G",
        };
        let params = aug.draw(&mut derived_rng(self.seed, stream, self.draw as u64), s[0], s[2], s[3], x.device())?;
        Ok(ganzoo_models::augment::apply(x, &params)?)
    }
}

/// Images a family makes for the standard metrics (FID, KID, precision/recall, density/coverage), drawn in
/// batches so that no more than a batch is held.
pub struct Images<'a> {
    /// How many.
    pub count: usize,
    /// Images `first..first + len` as (len, C, H, W) in [-1, 1] on any device: the same images for the same
    /// arguments (callers draw in batches of a fixed size from 0).
    pub draw: Box<dyn Fn(usize, usize) -> Result<Tensor> + 'a>,
    /// Each image's class, for class-conditional images (intra-class FID).
    pub labels: Option<Vec<i64>>,
}

impl<'a> Images<'a> {
    pub fn new(count: usize, draw: impl Fn(usize, usize) -> Result<Tensor> + 'a) -> Self {
        Images { count, draw: Box::new(draw), labels: None }
    }
}

/// Real images the generated ones are compared with: `part` of the run's data (of two-domain data, the
/// images of `domain` 0 = A or 1 = B).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reference {
    pub part: ganzoo_data::source::Part,
    pub domain: Option<usize>,
}

impl Reference {
    /// The test split (all of the data where it has none).
    pub fn test() -> Self {
        Reference { part: ganzoo_data::source::Part::test(), domain: None }
    }

    /// The training split.
    pub fn train() -> Self {
        Reference { part: ganzoo_data::source::Part::train(), domain: None }
    }

    /// The test images of one domain of two-domain data.
    pub fn test_domain(d: usize) -> Self {
        Reference { domain: Some(d), ..Reference::test() }
    }
}

/// One comparison of the standard metrics: generated images against real ones.
pub struct MetricSet<'a> {
    /// What is compared (`samples`, `A→B`, `Stage-II`, `reconstructions`, …).
    pub name: String,
    /// How the generated images are made, in words (for the protocol).
    pub how: String,
    pub generated: Compared<'a>,
    pub reference: Reference,
}

/// What a comparison sets against its reference: images the family makes, or real images of the run's data
/// (a baseline: a translator's untranslated inputs), whose features come from the reference cache.
pub enum Compared<'a> {
    Made(Images<'a>),
    Real(Reference),
}

/// A trained translator between domains A and B (evaluation mode, no gradients).
pub trait Translate {
    /// x: (N, C, H, W) in [-1, 1] → its translation, A → B when `a2b`, else B → A.
    fn translate(&self, x: &Tensor, a2b: bool) -> Tensor;
    /// Whether B → A exists too; a paired translator (pix2pix) has one G, A → B.
    fn both_ways(&self) -> bool {
        true
    }
    /// The image sides the translator takes are the multiples of this (4 for a ResNet G; 2^num_downs for a U-Net).
    fn side_multiple(&self) -> i64 {
        4
    }
}

/// A trained conditional generator G(z, c) → image (evaluation mode, no gradients), for `ganzoo export`.
pub trait Generate {
    /// z: (N, z_dim) noise, c: (N, cond_dim) conditions → (N, C, H, W) images in [-1, 1].
    fn generate(&self, z: &Tensor, c: &Tensor) -> Tensor;
    /// z's width and its distribution in words (`normal N(0, 1)`, `uniform on [-1, 1]`).
    fn noise(&self) -> (i64, &'static str);
    /// The condition's width and what it is in words (`one-hot class`, `sentence vector`).
    fn condition(&self) -> (i64, &'static str);
}

/// What a family's model section does: check itself against the rest of the config, and build the family.
/// `crate::families` names one such type per `family:` value.
pub trait FamilyConfig {
    /// Every cross-field problem of the model section (and of the shared sections as this family reads
    /// them), each naming its dotted key. `family` is the `family:` value (one type may serve two).
    fn problems(&self, family: &'static str, s: &Settings, p: &mut Vec<String>);
    /// Builds the family on `device`; `with_data` opens its training data too (not needed to sample).
    /// `run_dir` is the run's folder, where families keep what they derive from the data (a trained tokenizer).
    fn build(&self, family: &'static str, s: &Settings, device: Device, with_data: bool, run_dir: Option<&Path>) -> Result<Box<dyn Family>>;
}

/// A model family the engine can train, sample and evaluate.
pub trait Family {
    /// Every network, by role, with its optimizer settings.
    fn networks(&self) -> Vec<Net<'_>>;
    /// The updates of one step in order: D then G (default), G then D (CycleGAN's order), or G alone (a
    /// family without a discriminator).
    fn phases(&self) -> &'static [Phase] {
        &[Phase::D, Phase::G]
    }
    /// What the engine's feed reads (opened when the family was built with its data).
    fn train_source(&self) -> Option<Source>;
    /// Work before a step's updates (a text encoder's pretraining at step 0, dropout seeds); its losses are
    /// logged with the step's.
    fn begin_step(&mut self, _step: i64) -> Result<Losses> {
        Ok(Losses::new())
    }
    /// The discriminator update's loss on `batch`.
    fn d_loss(&mut self, batch: &Batch, ctx: &Ctx) -> Result<Update>;
    /// The generator update's loss on `batch`.
    fn g_loss(&mut self, batch: &Batch, ctx: &Ctx) -> Result<Update>;
    /// D `d`'s raw scores (N, …) for inputs `x` (already as D sees them) at condition `cond`, in training
    /// mode: what the gradient penalty and R1 differentiate.
    fn critic(&self, d: &str, _x: &Tensor, _cond: Option<&Tensor>) -> Result<Tensor> {
        Err(PipelineError::Runtime(format!("this family has no discriminator `{d}`")))
    }
    /// Writes the picture of the fixed samples to `path` (PNG).
    fn write_samples(&self, path: &Path) -> Result<()>;
    /// Writes `n` fresh samples drawn with `seed` to `path` (PNG).
    fn sample_to(&self, n: usize, seed: u64, path: &Path) -> Result<()>;
    /// Writes `n` samples of each condition (a class or a prompt) drawn with `seed` to `path` (PNG): one
    /// condition as a square grid, several as one row each with the same noise in every row.
    fn sample_with(&self, _n: usize, _seed: u64, conds: &[Condition], _path: &Path) -> Result<()> {
        let flag = match conds.first() {
            Some(Condition::Class(_)) => "--class",
            _ => "--prompt",
        };
        Err(PipelineError::Usage(format!("{flag}: this run is not conditional; sample it without --class or --prompt")))
    }
    /// Freezes networks a pipeline stage took from an earlier stage (`freeze:`); they get no optimizer.
    fn freeze(&mut self, nets: &[String]) -> Result<()> {
        match nets.first() {
            None => Ok(()),
            Some(n) => Err(PipelineError::Usage(format!("freeze: `{n}`: this family trains all its networks and cannot freeze one"))),
        }
    }
    /// The family's metrics, with the protocol used.
    fn evaluate(&self) -> Result<serde_json::Value>;
    /// One line saying what the evaluation shows.
    fn summarize(&self, eval: &serde_json::Value) -> String;
    /// State beyond networks and optimizers that a checkpoint must hold (e.g. image pools).
    fn extra_state(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }
    fn load_extra_state(&mut self, _tensors: &HashMap<String, Tensor>) -> Result<()> {
        Ok(())
    }
    /// The family's A ↔ B translator, for `ganzoo translate` (two-domain families only).
    fn translator(&self) -> Option<&dyn Translate> {
        None
    }
    /// The family's conditional generator G(z, c), for `ganzoo export` (`cgan`, `gan_cls`).
    fn generator(&self) -> Option<&dyn Generate> {
        None
    }
    /// What the standard metrics compare (image families; none for 2-D points): sets of `n` generated images
    /// each, with the real images each is compared with. `ganzoo eval`, `eval.every` and `ganzoo fid RUN`
    /// (which takes the first set) use them, with the EMA weights where the run has them.
    fn metric_sets(&self, _n: usize) -> Result<Vec<MetricSet<'_>>> {
        Ok(Vec::new())
    }
    /// Trainable parameters per network.
    fn parameter_counts(&self) -> Vec<(&'static str, i64)> {
        self.networks().into_iter().map(|n| (n.name, ganzoo_models::nets::count_parameters(n.vs))).collect()
    }
}

/// Dataset indices of a captioned batch.
pub fn indices(batch: &Batch) -> Result<Vec<usize>> {
    Ok(batch.labels()?.iter().map(|&i| i as usize).collect())
}

/// A scalar tensor's value.
pub fn scalar(t: &Tensor) -> f64 {
    t.double_value(&[])
}

/// The mean of a tensor, as f64.
pub fn mean(t: &Tensor) -> f64 {
    scalar(&t.mean(tch::Kind::Float))
}

/// The first device of a family's networks (CPU when it has none).
pub fn device_of(fam: &dyn Family) -> Device {
    fam.networks().first().map(|n| n.vs.device()).unwrap_or(Device::Cpu)
}
