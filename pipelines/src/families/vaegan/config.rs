//! The `vaegan` family's model section and its checks.
use crate::config::{non_negative, DataConfig, Init, Settings};
use ganzoo_models::losses::AdvLoss;
use ganzoo_models::vaegan::VaeganNetConfig;
use serde::{Deserialize, Serialize};

/// VAE-GAN settings; defaults are the paper's (and the authors' code where the paper gives no number).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VaeganModelConfig {
    /// The three networks (the authors' 64×64 layout by default; `z_dim` 128).
    #[serde(default)]
    pub networks: VaeganNetConfig,
    /// γ: weight of L_llike against the GAN loss in the decoder's update (the brief and DESIGN: 1e-6; the
    /// authors' code passes `recon_vs_gan_weight` 1e-5 for CelebA, 5e-5 by default).
    #[serde(default = "default_gamma")]
    pub gamma: f64,
    /// Whether D also judges reconstructions Dec(Enc(x)) as fake, as the paper's L_GAN does (default). The
    /// authors' code feeds D Dec(z) for the encoded z and for prior samples (aegan.py with sample_z), so it
    /// does too; `false` leaves only prior samples.
    #[serde(default = "yes")]
    pub d_sees_reconstructions: bool,
    /// The authors' equilibrium trick (absent: off): skip D's update when it wins too clearly, the
    /// decoder's when it loses too clearly. Needs loss.adversarial minimax or non_saturating. Like `gamma`,
    /// `d_sees_reconstructions` and every setting of D (its loss and penalties, spectral norm, DiffAugment,
    /// n_critic), ignored by a plain VAE (so one `--set model.plain_vae=true` gives the comparison run).
    #[serde(default)]
    pub equilibrium: Option<Equilibrium>,
    /// Train a plain VAE instead: the same encoder and decoder, Gaussian likelihood on pixels, no D.
    #[serde(default)]
    pub plain_vae: bool,
    /// σ of the Gaussian likelihood: on D's features for the VAE-GAN (the authors: 1), on pixels in [-1, 1]
    /// for the plain VAE.
    #[serde(default = "one")]
    pub recon_sigma: f64,
    /// Images at the end of the (sorted) dataset kept out of training, for `ganzoo eval`'s reconstruction
    /// error and the real side of its Fréchet distance (MNIST: the last 1,000 digits, the digit judge's test
    /// set; CelebA sorted by file name: the last images of its test partition). Captioned shapes use their
    /// test split instead.
    #[serde(default = "default_held_out")]
    pub held_out: usize,
    /// How parameters are initialized.
    #[serde(default)]
    pub init: Init,
}

/// The authors' equilibrium band around the cost of an undecided D.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Equilibrium {
    /// Half-width of the band (the authors' CelebA run: 0.35).
    #[serde(default = "default_margin")]
    pub margin: f64,
    /// Centre of the band, about ln 2 (the authors: 0.68).
    #[serde(default = "default_center")]
    pub center: f64,
}

fn default_gamma() -> f64 {
    1e-6
}
fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}
fn default_held_out() -> usize {
    1000
}
fn default_margin() -> f64 {
    0.35
}
fn default_center() -> f64 {
    0.68
}

impl VaeganModelConfig {
    /// Every cross-field problem, each naming its dotted key.
    pub fn check(&self, cfg: &Settings, p: &mut Vec<String>) {
        let m = self;
        if !matches!(cfg.data, DataConfig::Mnist { .. } | DataConfig::ImageFolder(_) | DataConfig::Shapes(_)) {
            p.push(format!("data.kind: family vaegan needs one domain of images (mnist, image_folder or shapes), got {}", cfg.data.kind()));
            return;
        }
        let s = cfg.shape();
        if s.height != s.width {
            p.push(format!("data: family vaegan needs square images, got {}×{}", s.height, s.width));
        }
        p.extend(m.networks.check(s.channels, s.height).into_iter().map(|e| format!("model.networks: {e}")));
        if matches!(cfg.data, DataConfig::Mnist { pad_to_32: false, .. }) {
            p.push("data.pad_to_32: family vaegan halves the image size three times; set pad_to_32: true for MNIST".into());
        }
        non_negative(p, &[("model.gamma", m.gamma)]);
        if !(m.recon_sigma > 0.0 && m.recon_sigma.is_finite()) {
            p.push(format!("model.recon_sigma: must be positive, got {}", m.recon_sigma));
        }
        if let Some(e) = &m.equilibrium {
            if !(e.margin > 0.0 && e.margin.is_finite()) {
                p.push(format!("model.equilibrium.margin: must be positive, got {}", e.margin));
            }
            if !(e.center > 0.0 && e.center.is_finite()) {
                p.push(format!("model.equilibrium.center: must be positive, got {}", e.center));
            }
            if !matches!(cfg.loss.adversarial, AdvLoss::Minimax | AdvLoss::NonSaturating) {
                p.push("model.equilibrium: the band is on D's cross-entropy costs; it needs loss.adversarial minimax or non_saturating".into());
            }
        }
        if cfg.train.batch_size < 2 {
            p.push("train.batch_size: batch norm needs at least 2 images a batch".into());
        }
    }
}
