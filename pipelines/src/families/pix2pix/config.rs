//! The `pix2pix` family's model section and its checks; defaults are the reference implementation's.
use crate::config::{non_negative, Settings};
use ganzoo_models::cyclegan::{Norm, PatchDiscriminatorConfig};
use ganzoo_models::pix2pix::UnetGeneratorConfig;
use serde::{Deserialize, Serialize};

/// How G translates outside training (`ganzoo translate`, samples, `eval`).
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Inference {
    /// As the paper (§6.1.1) and the reference's `test.py`: each image alone, batch norm on its own
    /// statistics, dropout on (seeded by the run's seed and the image's place in the call).
    #[default]
    Paper,
    /// Evaluation mode (the reference's `--eval`): running statistics, no dropout; deterministic.
    Eval,
}

/// Networks and loss weights of pix2pix; defaults are the reference implementation's.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pix2pixModelConfig {
    /// U-Net generator: ngf 64, 8 levels (`unet_256`; 7 = `unet_128`), batch norm, dropout.
    #[serde(default)]
    pub generator: UnetGeneratorConfig,
    /// 70×70 PatchGAN on the (input, output) pair: ndf 64, n_layers 3, batch norm; a key left out keeps this
    /// default.
    #[serde(default = "patch_batch", deserialize_with = "discriminator_over_pix2pix")]
    #[schemars(extend("x-keys-keep-section-default" = true))]
    pub discriminator: PatchDiscriminatorConfig,
    /// Weight of ‖G(a) − b‖₁ (λ, eq. 4: 100).
    #[serde(default = "hundred")]
    pub lambda_l1: f64,
    /// Standard deviation of the N(0, σ) initialization (batch-norm scales N(1, σ)).
    #[serde(default = "init_std")]
    pub init_std: f64,
    /// How G translates outside training: `paper` (as the paper's test.py) or `eval` (the reference's `--eval`).
    #[serde(default)]
    pub inference: Inference,
}

fn discriminator_over_pix2pix<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PatchDiscriminatorConfig, D::Error> {
    crate::translation::patch_keys_over(d, patch_batch())
}

fn patch_batch() -> PatchDiscriminatorConfig {
    PatchDiscriminatorConfig { norm: Norm::Batch, ..PatchDiscriminatorConfig::default() }
}
fn hundred() -> f64 {
    100.0
}
fn init_std() -> f64 {
    0.02
}

impl Pix2pixModelConfig {
    /// Every cross-field problem, each naming its dotted key.
    pub fn check(&self, s: &Settings, p: &mut Vec<String>) {
        if !(s.data.is_two_domain() && s.data.has_ground_truth()) {
            p.push(format!(
                "data.kind: family pix2pix trains on true pairs: kind unpaired with layout side_by_side or a_b_folders, or kind shapes2; got {}{}",
                s.data.kind(),
                if s.data.is_two_domain() { " with layout folders (unrelated A and B images: use cyclegan or unit)" } else { "" }
            ));
            return;
        }
        let shape = s.shape();
        p.extend(self.generator.check(shape.channels, shape.channels).into_iter().map(|e| format!("model.generator: {e}")));
        p.extend(self.discriminator.check(2 * shape.channels).into_iter().map(|e| format!("model.discriminator: {e}")));
        let m = self.generator.side_multiple();
        if shape.height % m != 0 {
            p.push(format!(
                "data.size: a U-Net with num_downs {} needs a multiple of {m}, got {} (num_downs 8 for 256 px, 7 for 128)",
                self.generator.num_downs, shape.height
            ));
        }
        if self.discriminator.output_size(shape.height).is_none_or(|s| s < 1) {
            p.push(format!("data.size: {} is too small for a PatchGAN with n_layers {}", shape.height, self.discriminator.n_layers));
        }
        non_negative(p, &[("model.lambda_l1", self.lambda_l1)]);
        if self.init_std.is_nan() || self.init_std <= 0.0 {
            p.push(format!("model.init_std: must be positive, got {}", self.init_std));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(yaml: &str) -> Result<Pix2pixModelConfig, serde_yaml::Error> {
        serde_yaml::from_str(yaml)
    }

    #[test]
    fn a_partial_discriminator_keeps_the_reference_batch_norm() {
        assert_eq!(model("{}").unwrap().discriminator.norm, Norm::Batch);
        let d = model("discriminator: {ndf: 16, n_layers: 2}").unwrap().discriminator;
        assert_eq!((d.ndf, d.n_layers, d.norm), (16, 2, Norm::Batch));
        assert_eq!(model("discriminator: {norm: instance}").unwrap().discriminator.norm, Norm::Instance);
        let e = model("discriminator: {ndf: 16, nrom: batch}").unwrap_err().to_string();
        assert!(e.contains("nrom"), "{e}");
    }
}
