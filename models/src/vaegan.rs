//! VAE-GAN networks (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric"):
//! an encoder x → (μ, log σ²), one decoder that is both the VAE's decoder and the GAN's generator, and a
//! discriminator whose l-th convolution gives the features of the learned similarity L_llike^{Dis_l}.
//!
//! The layout is the authors' 64×64 architecture (`architectures.img64x64` of andersbll/
//! autoencoding_beyond_pixels; the paper's Table in §A lists the same layers with a 2048-unit encoder fc,
//! the code uses 1024). Every stride-2 convolution is 5×5 with padding 2 ("same"), without bias, followed by
//! batch norm and ReLU; a "backward" convolution is a 5×5 stride-2 transposed convolution with padding 2 and
//! output padding 1 (doubling the size exactly).
//!
//! - Enc: [conv 64 ↓, BN, ReLU] [conv 128 ↓ …] [conv 256 ↓ …] → fc 1024 (no bias), BN, ReLU → fc μ, fc log σ².
//! - Dec: fc 8·8·256 (no bias), BN, ReLU → [tconv 256 ↑, BN, ReLU] [tconv 128 ↑ …] [tconv 32 ↑ …] → conv 5×5
//!   to C channels (bias) → tanh.
//! - Dis: conv 5×5 32 (stride 1, bias), ReLU → [conv 128 ↓, BN, ReLU] [conv 256 ↓ …] [conv 256 ↓ …] → fc 512
//!   (no bias), BN, ReLU → fc 1 (a logit; the code's sigmoid lives in the loss).
//!   The similarity features are the output of D's `feature_conv`-th convolution before its batch norm
//!   (the code's `recon_depth = 9`: D's 4th convolution, 256 channels).
//!
//! Variable names are those of the PyTorch rebuild in `models/golden/vaegan_golden.py` (`convs.0.weight`,
//! `bns.0.running_mean`, `fc_bn.weight`, …), so its state_dicts load by name.

use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, nn::ModuleT, Kind, Tensor};

use crate::error::{ModelError, Result};
use crate::spectral;

/// Sizes of the three VAE-GAN networks. Defaults are the authors' 64×64 CelebA architecture.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VaeganNetConfig {
    /// Size of the latent code z (the code's `n_hidden`: 128).
    pub z_dim: i64,
    /// Channels of the encoder's stride-2 convolutions (64, 128, 256); each halves the image size.
    pub enc_channels: Vec<i64>,
    /// Units of the encoder's fully connected layer before μ and log σ² (the code: 1024; the paper: 2048).
    pub enc_fc: i64,
    /// Channels of the decoder's first feature map, made by its fully connected layer (256, at size/2^k).
    pub dec_fc_channels: i64,
    /// Channels of the decoder's stride-2 transposed convolutions (256, 128, 32); each doubles the size.
    pub dec_channels: Vec<i64>,
    /// Channels of D's first (stride-1) convolution (32).
    pub dis_first: i64,
    /// Channels of D's stride-2 convolutions (128, 256, 256).
    pub dis_channels: Vec<i64>,
    /// Units of D's fully connected layer (512).
    pub dis_fc: i64,
    /// Which of D's convolutions (1-based, counting the first stride-1 one) gives the similarity features,
    /// taken before its batch norm (the authors: 4, the last 256-channel convolution).
    pub feature_conv: usize,
    /// Batch-norm epsilon (the code's `bn_eps`: 1e-6).
    pub bn_eps: f64,
    /// Batch-norm running-average momentum in PyTorch's sense (the code's 0.9 decay is PyTorch's 0.1).
    pub bn_momentum: f64,
}

impl Default for VaeganNetConfig {
    fn default() -> Self {
        VaeganNetConfig {
            z_dim: 128,
            enc_channels: vec![64, 128, 256],
            enc_fc: 1024,
            dec_fc_channels: 256,
            dec_channels: vec![256, 128, 32],
            dis_first: 32,
            dis_channels: vec![128, 256, 256],
            dis_fc: 512,
            feature_conv: 4,
            bn_eps: 1e-6,
            bn_momentum: 0.1,
        }
    }
}

impl VaeganNetConfig {
    /// Every problem building the networks for `channels`×`size`×`size` images (empty when buildable).
    pub fn check(&self, channels: i64, size: i64) -> Vec<String> {
        let mut p = Vec::new();
        if channels < 1 {
            p.push(format!("image channels must be >= 1, got {channels}"));
        }
        for (name, v) in [
            ("z_dim", self.z_dim),
            ("enc_fc", self.enc_fc),
            ("dec_fc_channels", self.dec_fc_channels),
            ("dis_first", self.dis_first),
            ("dis_fc", self.dis_fc),
        ] {
            if v < 1 {
                p.push(format!("{name} must be >= 1, got {v}"));
            }
        }
        for (name, list) in [
            ("enc_channels", &self.enc_channels),
            ("dec_channels", &self.dec_channels),
            ("dis_channels", &self.dis_channels),
        ] {
            if list.is_empty() {
                p.push(format!("{name} must list at least one width"));
            }
            if let Some(v) = list.iter().find(|v| **v < 1) {
                p.push(format!("{name}: every width must be >= 1, got {v}"));
            }
            let k = list.len() as u32;
            if k > 0 && (k > 10 || size % (1 << k) != 0) {
                p.push(format!(
                    "{name}: {k} stride-2 stages need an image size divisible by {}, got {size}",
                    1i64 << k.min(10)
                ));
            }
        }
        let n_convs = 1 + self.dis_channels.len();
        if self.feature_conv < 1 || self.feature_conv > n_convs {
            p.push(format!(
                "feature_conv must name one of D's {n_convs} convolutions (1..={n_convs}), got {}",
                self.feature_conv
            ));
        }
        if !(self.bn_eps > 0.0 && self.bn_eps.is_finite()) {
            p.push(format!("bn_eps must be positive, got {}", self.bn_eps));
        }
        if !(0.0..=1.0).contains(&self.bn_momentum) {
            p.push(format!("bn_momentum must be in [0, 1], got {}", self.bn_momentum));
        }
        p
    }

    fn bn_config(&self) -> nn::BatchNormConfig {
        nn::BatchNormConfig {
            eps: self.bn_eps,
            momentum: self.bn_momentum,
            ws_init: nn::Init::Const(1.0),
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        }
    }

    /// Number of features of the similarity layer for `size`×`size` images (per image).
    pub fn feature_size(&self, size: i64) -> i64 {
        let k = self.feature_conv.max(1) - 1; // stride-2 convs up to and including the feature conv
        let c = if k == 0 { self.dis_first } else { self.dis_channels[k.min(self.dis_channels.len()) - 1] };
        let s = size >> k;
        c * s * s
    }
}

/// A 5×5 stride-2 "same" convolution without bias, spectrally normalized when `sn`.
fn down(p: &nn::Path, c_in: i64, c_out: i64, sn: bool) -> Box<dyn ModuleT> {
    let cfg = nn::ConvConfig { stride: 2, padding: 2, bias: false, ..Default::default() };
    spectral::conv2d_config(p, c_in, c_out, 5, cfg, sn)
}

/// Stride-2 convolutions `convs.{i}` (spectrally normalized when `sn`) with batch norms `bns.{i}` of the given
/// widths; returns the last width.
fn down_stack(
    p: &nn::Path,
    c_in: i64,
    widths: &[i64],
    cfg: &VaeganNetConfig,
    sn: bool,
) -> (Vec<Box<dyn ModuleT>>, Vec<crate::base::BatchNorm>, i64) {
    let (mut convs, mut bns, mut c_in) = (Vec::new(), Vec::new(), c_in);
    for (i, &c) in widths.iter().enumerate() {
        convs.push(down(&(p / "convs" / i), c_in, c, sn));
        bns.push(crate::base::batch_norm2d(p / "bns" / i, c, cfg.bn_config()));
        c_in = c;
    }
    (convs, bns, c_in)
}

fn up(p: &nn::Path, c_in: i64, c_out: i64) -> nn::ConvTranspose2D {
    let cfg = nn::ConvTransposeConfig { stride: 2, padding: 2, output_padding: 1, bias: false, ..Default::default() };
    nn::conv_transpose2d(p, c_in, c_out, 5, cfg)
}

fn linear(p: &nn::Path, i: i64, o: i64, bias: bool) -> nn::Linear {
    nn::linear(p, i, o, nn::LinearConfig { bias, ..Default::default() })
}

fn checked(cfg: &VaeganNetConfig, channels: i64, size: i64) -> Result<()> {
    let p = cfg.check(channels, size);
    if p.is_empty() {
        Ok(())
    } else {
        Err(ModelError::Config(format!("vaegan: {}", p.join("; "))))
    }
}

/// The encoder: x (N, C, S, S) → (μ, log σ²), each (N, z_dim).
#[derive(Debug)]
pub struct VaeEncoder {
    convs: Vec<Box<dyn ModuleT>>,
    bns: Vec<crate::base::BatchNorm>,
    fc: nn::Linear,
    fc_bn: crate::base::BatchNorm,
    mu: nn::Linear,
    logvar: nn::Linear,
}

impl VaeEncoder {
    pub fn new(p: &nn::Path, cfg: &VaeganNetConfig, channels: i64, size: i64) -> Result<Self> {
        checked(cfg, channels, size)?;
        let (convs, bns, c_in) = down_stack(p, channels, &cfg.enc_channels, cfg, false);
        let s = size >> cfg.enc_channels.len();
        let fc = linear(&(p / "fc"), c_in * s * s, cfg.enc_fc, false);
        let fc_bn = crate::base::batch_norm1d(p / "fc_bn", cfg.enc_fc, cfg.bn_config());
        let mu = linear(&(p / "mu"), cfg.enc_fc, cfg.z_dim, true);
        let logvar = linear(&(p / "logvar"), cfg.enc_fc, cfg.z_dim, true);
        Ok(VaeEncoder { convs, bns, fc, fc_bn, mu, logvar })
    }

    /// (μ, log σ²) of q(z | x).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let mut h = x.shallow_clone(); // (N, C, S, S)
        for (conv, bn) in self.convs.iter().zip(&self.bns) {
            h = bn.forward_t(&conv.forward_t(&h, train), train).relu(); // (N, c_k, S/2^(k+1), S/2^(k+1))
        }
        let h = h.flatten(1, -1); // (N, c·s·s)
        let h = self.fc_bn.forward_t(&self.fc.forward(&h), train).relu(); // (N, enc_fc)
        (self.mu.forward(&h), self.logvar.forward(&h)) // (N, z), (N, z)
    }
}

/// Reparameterization (Kingma & Welling 2014): z = μ + exp(½ log σ²) ⊙ ε with ε ~ N(0, I) given.
pub fn reparameterize(mu: &Tensor, logvar: &Tensor, eps: &Tensor) -> Tensor {
    mu + (logvar * 0.5).exp() * eps // (N, z)
}

/// L_prior = D_KL(q(z|x) ‖ N(0, I)) = −½ Σ_j (1 + log σ_j² − μ_j² − σ_j²), summed over z and averaged over
/// the batch (Kingma & Welling 2014, appendix B; Larsen et al. 2016 eq. 2).
pub fn kl_divergence(mu: &Tensor, logvar: &Tensor) -> Tensor {
    let per = (logvar + 1.0 - mu.square() - logvar.exp()).sum_dim_intlist(1, false, Kind::Float) * -0.5; // (N,)
    per.mean(Kind::Float)
}

/// Negative log-likelihood of `x` under N(`x_rec`, σ²I) up to its constant: Σ (x_rec − x)² / (2σ²) over
/// every value of an example, averaged over the batch. With D's features this is L_llike^{Dis_l}
/// (Larsen et al. 2016 eq. 6, σ = 1 as the authors' `GaussianNegLogLikelihood`); on pixels it is the plain
/// VAE's reconstruction term.
pub fn gaussian_nll(x_rec: &Tensor, x: &Tensor, sigma: f64) -> Tensor {
    let n = x.size()[0];
    let per = (x_rec - x).square().reshape([n, -1]).sum_dim_intlist(1, false, Kind::Float); // (N,)
    per.mean(Kind::Float) / (2.0 * sigma * sigma)
}

/// The decoder / generator: z (N, z_dim) → x (N, C, S, S) in [-1, 1]. One set of weights serves both the
/// VAE's p(x|z) and the GAN's G(z).
#[derive(Debug)]
pub struct VaeDecoder {
    fc: nn::Linear,
    fc_bn: crate::base::BatchNorm,
    ups: Vec<nn::ConvTranspose2D>,
    up_bns: Vec<crate::base::BatchNorm>,
    out: nn::Conv2D,
    c0: i64,
    s0: i64,
}

impl VaeDecoder {
    pub fn new(p: &nn::Path, cfg: &VaeganNetConfig, channels: i64, size: i64) -> Result<Self> {
        checked(cfg, channels, size)?;
        let s0 = size >> cfg.dec_channels.len();
        let c0 = cfg.dec_fc_channels;
        let fc = linear(&(p / "fc"), cfg.z_dim, c0 * s0 * s0, false);
        let fc_bn = crate::base::batch_norm1d(p / "fc_bn", c0 * s0 * s0, cfg.bn_config());
        let (mut ups, mut up_bns) = (Vec::new(), Vec::new());
        let mut c_in = c0;
        for (i, &c) in cfg.dec_channels.iter().enumerate() {
            ups.push(up(&(p / "ups" / i), c_in, c));
            up_bns.push(crate::base::batch_norm2d(p / "up_bns" / i, c, cfg.bn_config()));
            c_in = c;
        }
        let out = nn::conv2d(p / "out", c_in, channels, 5, nn::ConvConfig { padding: 2, ..Default::default() });
        Ok(VaeDecoder { fc, fc_bn, ups, up_bns, out, c0, s0 })
    }

    pub fn forward_t(&self, z: &Tensor, train: bool) -> Tensor {
        let n = z.size()[0];
        let h = self.fc_bn.forward_t(&self.fc.forward(z), train).relu(); // (N, c0·s0·s0)
        let mut h = h.reshape([n, self.c0, self.s0, self.s0]); // (N, c0, s0, s0)
        for (conv, bn) in self.ups.iter().zip(&self.up_bns) {
            h = bn.forward_t(&conv.forward(&h), train).relu(); // (N, c_k, 2s, 2s)
        }
        self.out.forward(&h).tanh() // (N, C, S, S) in [-1, 1]
    }
}

/// The discriminator: x → a logit per image, and the similarity features of its `feature_conv`-th conv.
///
/// With spectral norm (Miyato et al. 2018) every convolution and linear layer is normalized (names
/// `conv0.weight_orig`, `…weight_u`, `…weight_v`, as `torch.nn.utils.spectral_norm`); the batch norms stay.
/// In training mode each call runs one power iteration for every weight it passes through: a full pass
/// ([`Self::forward_with_features`], [`Self::forward_t`]) for all of them, [`Self::features_t`] for the
/// convolutions up to the feature layer, as PyTorch's hooks would.
#[derive(Debug)]
pub struct VaeDiscriminator {
    conv0: Box<dyn ModuleT>,
    convs: Vec<Box<dyn ModuleT>>,
    bns: Vec<crate::base::BatchNorm>,
    fc: Box<dyn ModuleT>,
    fc_bn: crate::base::BatchNorm,
    out: Box<dyn ModuleT>,
    feature_conv: usize,
}

impl VaeDiscriminator {
    /// Builds D under `p` for `channels`×`size`×`size` images; `spectral_norm` normalizes every conv and linear.
    pub fn new(p: &nn::Path, cfg: &VaeganNetConfig, channels: i64, size: i64, spectral_norm: bool) -> Result<Self> {
        checked(cfg, channels, size)?;
        let sn = spectral_norm;
        let conv0_cfg = nn::ConvConfig { padding: 2, ..Default::default() };
        let conv0 = spectral::conv2d_config(&(p / "conv0"), channels, cfg.dis_first, 5, conv0_cfg, sn);
        let (convs, bns, c_in) = down_stack(p, cfg.dis_first, &cfg.dis_channels, cfg, sn);
        let s = size >> cfg.dis_channels.len();
        let fc = spectral::linear(&(p / "fc"), c_in * s * s, cfg.dis_fc, false, sn);
        let fc_bn = crate::base::batch_norm1d(p / "fc_bn", cfg.dis_fc, cfg.bn_config());
        let out = spectral::linear(&(p / "out"), cfg.dis_fc, 1, true, sn);
        Ok(VaeDiscriminator { conv0, convs, bns, fc, fc_bn, out, feature_conv: cfg.feature_conv })
    }

    /// Logits (N,) and the similarity features (N, F) of one pass.
    pub fn forward_with_features(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let n = x.size()[0];
        let h0 = self.conv0.forward_t(x, train); // (N, dis_first, S, S)
        let mut feats = h0.reshape([n, -1]); // (N, dis_first·S·S): conv 1, which has no batch norm
        let mut h = h0.relu();
        for (i, (conv, bn)) in self.convs.iter().zip(&self.bns).enumerate() {
            let c = conv.forward_t(&h, train); // (N, c_i, S/2^(i+1), S/2^(i+1))
            if self.feature_conv == i + 2 {
                feats = c.reshape([n, -1]); // (N, c_i·s·s), before the batch norm
            }
            h = bn.forward_t(&c, train).relu(); // same shape
        }
        let h = h.flatten(1, -1); // (N, c·s·s)
        let h = self.fc_bn.forward_t(&self.fc.forward_t(&h, train), train).relu(); // (N, dis_fc)
        (self.out.forward_t(&h, train).reshape([n]), feats) // (N,), (N, F)
    }

    /// Logits (N,) of "real".
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.forward_with_features(x, train).0
    }

    /// Only the similarity features (N, F): D is run up to its `feature_conv`-th convolution (the batch
    /// norms before it update their running statistics in training mode, as in a full pass).
    pub fn features_t(&self, x: &Tensor, train: bool) -> Tensor {
        let n = x.size()[0];
        let mut h = self.conv0.forward_t(x, train); // (N, dis_first, S, S)
        for (i, (conv, bn)) in self.convs.iter().zip(&self.bns).enumerate().take(self.feature_conv - 1) {
            h = conv.forward_t(&h.relu(), train); // (N, c_i, S/2^(i+1), S/2^(i+1))
            if i + 2 < self.feature_conv {
                h = bn.forward_t(&h, train); // same shape (the ReLU follows at the next stage)
            }
        }
        h.reshape([n, -1]) // (N, F)
    }
}
