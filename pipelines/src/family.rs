//! What the engine needs from a model family: networks to checkpoint, optimizers, one training step,
//! sample pictures and an evaluation. Each family (GAN, and later CGAN, CycleGAN, …) implements it.
use crate::error::Result;
use ganzoo_models::optim::Optimizer;
use std::collections::BTreeMap;
use std::path::Path;
use tch::nn::VarStore;

/// Losses and diagnostics of one step, by name (e.g. `loss_D`, `loss_G`).
pub type Losses = BTreeMap<String, f64>;

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
    /// The family's metrics, with the protocol used.
    fn evaluate(&mut self) -> Result<serde_json::Value>;
    /// One line saying what the evaluation shows.
    fn summarize(&self, eval: &serde_json::Value) -> String;
}
