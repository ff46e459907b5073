//! The `gan` family's model section and its checks.
use crate::config::{Init, Settings};
use ganzoo_models::nets::{DiscriminatorConfig, GeneratorConfig};
use serde::{Deserialize, Serialize};

/// Networks of the unconditional GAN family.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GanModelConfig {
    /// Size of the noise vector z.
    #[serde(default = "default_z_dim")]
    pub z_dim: i64,
    /// G(z): `arch: mlp` (2-D points) or `arch: dcgan` (28, 32 or 64-pixel images).
    pub generator: GeneratorConfig,
    /// D(x): `arch: mlp` (2-D points) or `arch: dcgan` (images).
    pub discriminator: DiscriminatorConfig,
    /// How parameters are initialized.
    #[serde(default)]
    pub init: Init,
}

fn default_z_dim() -> i64 {
    100
}

impl GanModelConfig {
    /// Every cross-field problem, each naming its dotted key.
    pub fn check(&self, s: &Settings, p: &mut Vec<String>) {
        if self.z_dim < 1 {
            p.push(format!("model.z_dim: must be at least 1, got {}", self.z_dim));
        }
        if s.data.is_two_domain() {
            p.push(format!("data.kind: {} holds two domains; family gan takes one (use family: cyclegan)", s.data.kind()));
            return;
        }
        let shape = s.shape();
        let points = s.data.is_points();
        p.extend(self.generator.check(&shape).into_iter().map(|e| format!("model.generator: {e}")));
        p.extend(self.discriminator.check(&shape).into_iter().map(|e| format!("model.discriminator: {e}")));
        let g_mlp = matches!(self.generator, GeneratorConfig::Mlp(_));
        let d_mlp = matches!(self.discriminator, DiscriminatorConfig::Mlp(_));
        if points && (!g_mlp || !d_mlp) {
            p.push("model: 2-D point data needs arch: mlp for both generator and discriminator".into());
        }
        if !points && (g_mlp || d_mlp) {
            p.push("model: image data needs arch: dcgan for both generator and discriminator".into());
        }
    }
}
