//! The conditional families' model section (`cgan`, `gan_cls`) and its checks.
use crate::config::{non_negative, DataConfig, Init, Settings};
use crate::text::{TextConfig, TextEncoderChoice, TextTraining};
use ganzoo_models::cond::{CondDiscriminatorConfig, CondGeneratorConfig, HeadDesign};
use serde::{Deserialize, Serialize};

/// Networks and loss weights of the conditional families (`cgan`: class labels; `gan_cls`: captions).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
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
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Noise {
    #[default]
    Normal,
    Uniform,
}


impl CondModelConfig {
    /// Every cross-field problem of family `cgan` (`text` false) or `gan_cls` (`text` true), each naming its
    /// dotted key.
    pub fn check(&self, text: bool, s: &Settings, p: &mut Vec<String>) {
        let m = self;
        let family = if text { "gan_cls" } else { "cgan" };
        if m.z_dim < 1 {
            p.push(format!("model.z_dim: must be at least 1, got {}", m.z_dim));
        }
        if s.data.is_two_domain() || s.data.is_points() {
            p.push(format!("data.kind: family {family} needs images with {}, got {}", if text { "captions" } else { "class labels" }, s.data.kind()));
            return;
        }
        if text && !s.data.has_captions() {
            p.push(format!("data.kind: family gan_cls needs captioned images (shapes or captioned), got {}", s.data.kind()));
        }
        if !text && !matches!(s.data, DataConfig::Mnist { .. } | DataConfig::ImageFolder(_)) {
            p.push(format!("data.kind: family cgan needs class labels (mnist, or image_folder with one subfolder per class), got {}", s.data.kind()));
        }
        match (&m.text, text) {
            (None, true) => p.push("model.text: family gan_cls needs a text section (encoder: trainable, minilm or precomputed)".into()),
            (Some(_), false) => p.push("model.text: family cgan is conditioned on class labels; remove the text section (or use family: gan_cls)".into()),
            _ => {}
        }
        if let Some(t) = &m.text {
            t.check(p);
            if s.train.batch_size < 2 && text {
                p.push("train.batch_size: text-conditional D normalizes its text projection over the batch; use at least 2".into());
            }
            if let TextEncoderChoice::Trainable { pretrain_steps, training, .. } = &t.encoder {
                if *training == TextTraining::Pretrained && *pretrain_steps < 1 {
                    p.push("model.text.encoder.pretrain_steps: a pretrained (frozen) encoder needs at least 1 pretraining step; use training: joint to train it with D".into());
                }
            }
        }
        let shape = s.shape();
        p.extend(m.generator.check(&shape).into_iter().map(|e| format!("model.generator: {e}")));
        p.extend(m.discriminator.check(&shape).into_iter().map(|e| format!("model.discriminator: {e}")));
        let w = m.mismatch(text);
        if !(0.0..=1.0).contains(&w) {
            p.push(format!("model.mismatch_weight: must be in [0, 1], got {w}"));
        }
        non_negative(p, &[("model.interpolation", m.interpolation), ("model.mode_seeking", m.mode_seeking)]);
    }
}

fn default_z_dim() -> i64 {
    100
}
