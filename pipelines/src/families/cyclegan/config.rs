//! The `cyclegan` family's model section and its checks; defaults are the reference implementation's.
use crate::config::{non_negative, Settings};
use crate::translation::resnet_patchgan_problems;
use ganzoo_models::cyclegan::{PatchDiscriminatorConfig, ResnetGeneratorConfig};
use serde::{Deserialize, Serialize};

/// Networks and loss weights of CycleGAN; defaults are the reference implementation's.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
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

impl CycleganModelConfig {
    /// Every cross-field problem, each naming its dotted key.
    pub fn check(&self, s: &Settings, p: &mut Vec<String>) {
        if !resnet_patchgan_problems("cyclegan", s, &self.generator, &self.discriminator, p) {
            return;
        }
        non_negative(p, &[("model.lambda_a", self.lambda_a), ("model.lambda_b", self.lambda_b), ("model.lambda_identity", self.lambda_identity)]);
        if self.init_std.is_nan() || self.init_std <= 0.0 {
            p.push(format!("model.init_std: must be positive, got {}", self.init_std));
        }
    }
}
