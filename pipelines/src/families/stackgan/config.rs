//! The `stackgan` family's model section and its checks.
use crate::config::{non_negative, Init, Settings};
use crate::text::{TextConfig, TextEncoderChoice, TextTraining};
use ganzoo_models::cond::HeadDesign;
use ganzoo_models::stackgan::{StackDConditioning, StackGanNetConfig};
use serde::{Deserialize, Serialize};

/// The `stackgan` model section.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StackGanModelConfig {
    /// The stage this config trains: 1 (G1 and D1 at `net.stage1_size`) or 2 (G2 and D2 at 4 × that, on a
    /// frozen G1 taken from an earlier stage with `init_from: {G1: <stage>}` and `freeze: [G1]`).
    #[serde(default = "one")]
    pub stage: u8,
    /// Widths of both stages' networks (defaults: the authors' birds settings).
    #[serde(default)]
    pub net: StackGanNetConfig,
    /// `joint`: one score for "real and matching" (StackGAN); `split`: also a real/fake head on the image
    /// alone (StackGAN-v2), with its own loss terms.
    #[serde(default)]
    pub heads: HeadDesign,
    /// How D scores the text: `concat` (the paper: the compressed text code replicated over D's feature grid)
    /// or `projection` (Miyato & Koyama 2018: ψ(φ) + ⟨V t, φ⟩ on the grid-summed features; not in the paper).
    #[serde(default)]
    pub d_conditioning: StackDConditioning,
    /// Batch norm after D's convs (the paper: true). Spectral norm (`loss.spectral_norm`) usually goes without.
    #[serde(default = "yes")]
    pub d_batch_norm: bool,
    /// Weight of the KL term of the conditioning augmentation in G's loss (COEFF.KL, 2).
    #[serde(default = "two")]
    pub kl_weight: f64,
    /// Weight w of the (real image, mismatching text) → fake term; (generated, matching) → fake gets 1 − w.
    /// 0.5 gives the code's real + (wrong + fake)/2.
    #[serde(default = "half")]
    pub mismatch_weight: f64,
    /// Weight λ of a Stage-II consistency term in G2's loss: λ · mean |downscale(G2(x₁, c)) − x₁|, the L1
    /// distance between the Stage-II image brought to Stage-I size and the Stage-I image it refines. Not in
    /// the paper (0, the default); it keeps Stage-II from redrawing what Stage-I got right.
    #[serde(default)]
    pub stage2_consistency: f64,
    /// Weight λ of MSGAN's mode-seeking term (as `gan_cls`'s `mode_seeking`; not in the paper, 0): a second
    /// image of the same captions from other noise (z, and the CA's ε) must differ in proportion to z.
    #[serde(default)]
    pub mode_seeking: f64,
    /// Captions and the text encoder: `minilm`, `precomputed` (the paper: char-CNN-RNN embeddings of 1024) or
    /// `trainable` with `training: pretrained` (contrastively pretrained before Stage-I's first step, then
    /// frozen; Stage-II takes it with `init_from: {T: <stage>}`, `freeze: [T]`).
    pub text: TextConfig,
    /// How parameters are initialized (`dcgan`: N(0, 0.02), BN scale N(1, 0.02), as the TF code).
    #[serde(default)]
    pub init: Init,
}

fn yes() -> bool {
    true
}
fn one() -> u8 {
    1
}
fn two() -> f64 {
    2.0
}
fn half() -> f64 {
    0.5
}

impl StackGanModelConfig {
    /// Every cross-field problem, each naming its dotted key.
    pub fn check(&self, cfg: &Settings, p: &mut Vec<String>) {
        let m = self;
        if !matches!(m.stage, 1 | 2) {
            p.push(format!("model.stage: must be 1 (Stage-I) or 2 (Stage-II), got {}", m.stage));
        }
        p.extend(m.net.check().into_iter().map(|e| format!("model.net: {e}")));
        if !cfg.data.has_captions() {
            p.push(format!("data.kind: family stackgan needs captioned images (shapes or captioned), got {}", cfg.data.kind()));
        } else {
            let size = cfg.shape().height;
            if size != m.net.stage2_size() {
                p.push(format!(
                    "data.size: both stages read the Stage-II resolution, 4 × model.net.stage1_size = {}, got {size} (Stage-I sees the images downscaled by 4)",
                    m.net.stage2_size()
                ));
            }
        }
        if let TextEncoderChoice::Trainable { training, pretrain_steps, .. } = &m.text.encoder {
            if *training == TextTraining::Joint {
                p.push("model.text.encoder.training: family stackgan conditions on a frozen encoder; use training: pretrained".into());
            }
            if *pretrain_steps < 1 {
                p.push("model.text.encoder.pretrain_steps: a pretrained (frozen) encoder needs at least 1 pretraining step".into());
            }
        }
        m.text.check(p);
        if !(0.0..=1.0).contains(&m.mismatch_weight) {
            p.push(format!("model.mismatch_weight: must be in [0, 1], got {}", m.mismatch_weight));
        }
        non_negative(
            p,
            &[("model.stage2_consistency", m.stage2_consistency), ("model.mode_seeking", m.mode_seeking), ("model.kl_weight", m.kl_weight)],
        );
        if cfg.train.batch_size < 2 {
            p.push("train.batch_size: mismatching pairs shift the batch's text by one image; use at least 2".into());
        }
    }
}

