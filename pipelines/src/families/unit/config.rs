//! The `unit` family's model section and its checks.
use crate::config::{non_negative, Settings};
use ganzoo_models::unit::{UnitDiscriminatorConfig, UnitGeneratorConfig};
use serde::{Deserialize, Serialize};

/// UNIT settings; defaults are the authors' (configs/unit_*.yaml of mingyuliutw/UNIT), except the weight
/// sharing, which follows the paper (the authors' current code shares nothing: `shared_*_blocks: 0`).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UnitModelConfig {
    /// Encoders and decoders: dim 64, n_downsample 2, n_res 4, 1 shared encoder block and 1 shared decoder
    /// block, reflection padding.
    #[serde(default)]
    pub generator: UnitGeneratorConfig,
    /// Multi-scale PatchGAN per domain: dim 64, n_layer 4, 3 scales, no norm, reflection padding.
    #[serde(default)]
    pub discriminator: UnitDiscriminatorConfig,
    /// λ0: weight of the adversarial terms (the code's gan_w: 1).
    #[serde(default = "one")]
    pub gan_w: f64,
    /// λ2: weight of the within-domain L1 reconstruction (recon_x_w: 10).
    #[serde(default = "ten")]
    pub recon_x_w: f64,
    /// λ1: weight of the KL term mean(μ²) of both encodings (recon_kl_w: 0.01).
    #[serde(default = "hundredth")]
    pub recon_kl_w: f64,
    /// λ4: weight of the cycle L1 reconstruction A → B → A and B → A → B (recon_x_cyc_w: 10).
    #[serde(default = "ten")]
    pub recon_x_cyc_w: f64,
    /// λ3: weight of the KL term of the re-encoded translations (recon_kl_cyc_w: 0.01).
    #[serde(default = "hundredth")]
    pub recon_kl_cyc_w: f64,
    /// Standard deviation of D's initial weights (the reference's `gaussian` init: 0.02); G uses He
    /// (kaiming, fan_in) initialization as the authors' `init: kaiming`.
    #[serde(default = "default_d_init_std")]
    pub d_init_std: f64,
}

fn one() -> f64 {
    1.0
}
fn ten() -> f64 {
    10.0
}
fn hundredth() -> f64 {
    0.01
}
fn default_d_init_std() -> f64 {
    0.02
}

impl UnitModelConfig {
    /// Every cross-field problem, each naming its dotted key.
    pub fn check(&self, cfg: &Settings, p: &mut Vec<String>) {
        let m = self;
        if !cfg.data.is_two_domain() {
            p.push(format!("data.kind: family unit needs two domains (unpaired or shapes2), got {}", cfg.data.kind()));
            return;
        }
        let s = cfg.shape();
        p.extend(m.generator.check(s.channels, s.height).into_iter().map(|e| format!("model.generator: {e}")));
        p.extend(m.discriminator.check(s.channels, s.height).into_iter().map(|e| format!("model.discriminator: {e}")));
        non_negative(
            p,
            &[
                ("model.gan_w", m.gan_w),
                ("model.recon_x_w", m.recon_x_w),
                ("model.recon_kl_w", m.recon_kl_w),
                ("model.recon_x_cyc_w", m.recon_x_cyc_w),
                ("model.recon_kl_cyc_w", m.recon_kl_cyc_w),
            ],
        );
        if !(m.d_init_std > 0.0 && m.d_init_std.is_finite()) {
            p.push(format!("model.d_init_std: must be positive, got {}", m.d_init_std));
        }
    }
}
