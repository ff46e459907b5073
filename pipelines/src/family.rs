//! What the engine needs from a model family: networks to checkpoint, optimizers, one training step,
//! sample pictures and an evaluation. Each family (GAN, and later CGAN, CycleGAN, …) implements it.
use crate::error::Result;
use ganzoo_models::optim::Optimizer;
use crate::config::{Config, ModelConfig};
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

/// A model family the training engine can drive.
pub trait Trainable {
    /// Every network's variables by checkpoint prefix (e.g. `G`, `D`, `G_ema`).
    fn stores(&self) -> Vec<(&'static str, &VarStore)>;
    /// Every optimizer by checkpoint prefix (e.g. `opt_G`).
    fn optimizers(&self) -> Vec<(&'static str, &Optimizer)>;
    fn optimizers_mut(&mut self) -> Vec<(&'static str, &mut Optimizer)>;
    /// One generator update (and the discriminator updates before it). `step` counts from 0.
    fn train_step(&mut self, step: i64) -> Result<Losses>;
    /// Writes the picture of the fixed samples to `path` (PNG).
    fn write_samples(&self, path: &Path) -> Result<()>;
    /// Writes `n` fresh samples drawn with `seed` to `path` (PNG).
    fn sample_to(&self, n: usize, seed: u64, path: &Path) -> Result<()>;
    /// Writes `n` samples of one condition (a class or a prompt) drawn with `seed` to `path` (PNG).
    fn sample_with(&self, _n: usize, _seed: u64, cond: &Condition, _path: &Path) -> Result<()> {
        Err(crate::PipelineError::Usage(format!(
            "{}: this run is not conditional; sample it without --class or --prompt",
            match cond {
                Condition::Class(_) => "--class",
                Condition::Prompt(_) => "--prompt",
            }
        )))
    }
    /// Freezes networks a pipeline stage took from an earlier stage (`freeze:`); families that cannot say so.
    fn freeze(&mut self, nets: &[String]) -> Result<()> {
        match nets.first() {
            None => Ok(()),
            Some(n) => Err(crate::PipelineError::Usage(format!("freeze: `{n}`: this family trains all its networks and cannot freeze one"))),
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
    fn translator(&self) -> Option<&dyn crate::translation::Translate> {
        None
    }
    /// Trainable parameters per network (EMA copies left out).
    fn parameter_counts(&self) -> Vec<(&'static str, i64)> {
        self.stores()
            .into_iter()
            .filter(|(name, _)| !name.ends_with("_ema"))
            .map(|(name, vs)| (name, ganzoo_models::nets::count_parameters(vs)))
            .collect()
    }
}

/// Builds the config's family on `device`; `with_data` opens the training data too. `run_dir` is the run's
/// folder, where families keep what they derive from the data (a trained tokenizer).
pub fn build(cfg: &Config, device: Device, with_data: bool, run_dir: Option<&Path>) -> Result<Box<dyn Trainable>> {
    Ok(match &cfg.model {
        ModelConfig::Gan(_) => Box::new(crate::gan::Gan::new(cfg, device, with_data)?),
        ModelConfig::Cyclegan(_) => Box::new(crate::cyclegan::CycleGan::new(cfg, device, with_data)?),
        ModelConfig::Cgan(_) | ModelConfig::GanCls(_) => Box::new(crate::cond::Cond::new(cfg, device, with_data, run_dir)?),
        ModelConfig::Stackgan(_) => Box::new(crate::stackgan::StackGan::new(cfg, device, with_data, run_dir)?),
        ModelConfig::Vaegan(_) => Box::new(crate::vaegan::VaeGan::new(cfg, device, with_data)?),
        ModelConfig::Unit(_) => Box::new(crate::unit::Unit::new(cfg, device, with_data)?),
    })
}
