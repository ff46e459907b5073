//! StackGAN (Zhang et al. 2017, "StackGAN: Text to Photo-realistic Image Synthesis with Stacked Generative
//! Adversarial Networks"): conditioning augmentation, Stage-I G/D (64×64) and Stage-II G/D (256×256).
//!
//! Layouts follow the authors' TensorFlow code for birds and flowers (hanzhanggit/StackGAN, `stageII/model.py`,
//! which holds both stages), with the widths of its `cfg/birds.yml`: z 100, GF_DIM 128, DF_DIM 64,
//! EMBEDDING_DIM 128, four Stage-II residual blocks. Where the code and PyTorch conventions differ:
//! - TF's `SAME` padding of a 4×4 stride-2 conv pads (1, 2); here PyTorch's symmetric padding 1 (same output size).
//! - The TF layers all have biases; here a conv or linear layer followed by batch norm has none (the bias
//!   is cancelled by the norm's mean), as the authors' PyTorch port does. The parameter counts therefore
//!   leave those redundant biases out.
//! - Stage-I D's encoder has no LeakyReLU after its third and fourth convs' batch norm: the TF code's
//!   (the residual branch is added to the fourth's output, then activated).
//!
//! Image sizes: Stage-I works at `s` (a multiple of 16: 64 in the paper), Stage-II at 4·s. Both D's reduce
//! their input to s/16 × s/16 before the text code is replicated over that grid.

use serde::{Deserialize, Serialize};
use tch::{nn, nn::ModuleT, Tensor};

use crate::cond::{projection_scores, CondDiscriminator, HeadDesign, Scores};
use crate::dcgan::{bn as bn2d, pytorch_bn};
use crate::error::{ModelError, Result};
use crate::nets::leaky_relu;
use crate::spectral;

/// Network widths of both stages (defaults: the authors' `cfg/birds.yml`).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StackGanNetConfig {
    /// Size of the noise z (Z_DIM, 100).
    pub z_dim: i64,
    /// Size of the augmented text code ĉ and of D's compressed text (EMBEDDING_DIM, 128).
    pub ef_dim: i64,
    /// Generator width (GF_DIM, 128): Stage-I G starts at s/16 × s/16 × 8·gf_dim (4×4×1024 at 64 px);
    /// Stage-II G works at 4·gf_dim on its s/4 grid and ends at gf_dim/4 (a multiple of 4 is needed).
    pub gf_dim: i64,
    /// Discriminator width (DF_DIM, 64): features of 8·df_dim channels on the s/16 grid.
    pub df_dim: i64,
    /// Residual blocks of Stage-II G (4 in the TF code; the PyTorch port for COCO uses 2).
    pub r_num: i64,
    /// Stage-I image size s (64); Stage-II makes 4·s.
    pub stage1_size: i64,
}

impl Default for StackGanNetConfig {
    fn default() -> Self {
        StackGanNetConfig { z_dim: 100, ef_dim: 128, gf_dim: 128, df_dim: 64, r_num: 4, stage1_size: 64 }
    }
}

impl StackGanNetConfig {
    /// Every problem building the networks would hit, naming the key.
    pub fn check(&self) -> Vec<String> {
        let mut p = vec![];
        for (k, v) in [("z_dim", self.z_dim), ("ef_dim", self.ef_dim), ("gf_dim", self.gf_dim), ("df_dim", self.df_dim)] {
            if v < 1 {
                p.push(format!("{k} must be >= 1, got {v}"));
            }
        }
        if self.gf_dim % 4 != 0 {
            p.push(format!("gf_dim must be a multiple of 4 (Stage-II G ends at gf_dim/4 channels), got {}", self.gf_dim));
        }
        if self.r_num < 0 {
            p.push(format!("r_num must be >= 0, got {}", self.r_num));
        }
        if self.stage1_size < 16 || self.stage1_size % 16 != 0 {
            p.push(format!("stage1_size must be a positive multiple of 16 (64 in the paper), got {}", self.stage1_size));
        }
        p
    }

    /// Stage-II image size (4 × Stage-I).
    pub fn stage2_size(&self) -> i64 {
        4 * self.stage1_size
    }

    fn checked(&self, text_dim: i64) -> Result<()> {
        let mut p = self.check();
        if text_dim < 1 {
            p.push(format!("text_dim must be >= 1, got {text_dim}"));
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(ModelError::Config(p.join("; ")))
        }
    }
}

/// Padding that keeps H/stride: 1 for the 4×4 convs, k/2 for odd kernels.
fn pad(k: i64) -> i64 {
    if k == 4 {
        1
    } else {
        k / 2
    }
}

fn conv(p: nn::Path, i: i64, o: i64, k: i64, stride: i64, bias: bool) -> nn::Conv2D {
    nn::conv2d(p, i, o, k, nn::ConvConfig { stride, padding: pad(k), bias, ..Default::default() })
}

/// A conv followed by batch norm: names `{conv_name}` and `{bn_name}`. The generators' convs have no bias (the
/// norm's mean cancels it); a discriminator built without batch norm gives its convs a bias instead, and with
/// spectral norm each conv's weight is spectrally normalized ([`crate::spectral`]).
struct ConvBn {
    conv: Box<dyn ModuleT>,
    bn: Option<crate::base::BatchNorm>,
}

impl ConvBn {
    fn new(p: &nn::Path, conv_name: &str, bn_name: &str, i: i64, o: i64, k: i64, stride: i64) -> Self {
        Self::with(p, conv_name, bn_name, i, o, k, stride, Layers::default())
    }

    #[allow(clippy::too_many_arguments)]
    fn with(p: &nn::Path, conv_name: &str, bn_name: &str, i: i64, o: i64, k: i64, stride: i64, l: Layers) -> Self {
        ConvBn {
            conv: spectral::conv2d(&(p / conv_name), i, o, k, stride, pad(k), !l.batch_norm, l.spectral_norm),
            bn: l.batch_norm.then(|| bn2d(&(p / bn_name), o)),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let h = self.conv.forward_t(x, train); // (N, o, H/stride, W/stride)
        match &self.bn {
            Some(bn) => bn.forward_t(&h, train),
            None => h,
        }
    }
}

/// How a block's convs are built: batch norm after each (the paper) and spectral norm on every
/// conv and linear weight (Miyato et al. 2018; not in the paper). The generators use the default.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Layers {
    batch_norm: bool,
    spectral_norm: bool,
}

impl Default for Layers {
    fn default() -> Self {
        Layers { batch_norm: true, spectral_norm: false }
    }
}

// ---------------------------------------------------------------------------------------------------
// Conditioning augmentation

/// Conditioning augmentation (§3.1): φ(t) -> FC -> LeakyReLU(0.2) -> [μ, log σ] (the TF code's activation;
/// the PyTorch port uses ReLU); ĉ = μ + σ ⊙ ε with ε ~ N(0, I) supplied by the caller. Names `fc`.
pub struct CondAug {
    fc: nn::Linear,
    ef_dim: i64,
}

impl CondAug {
    pub fn new(p: &nn::Path, text_dim: i64, ef_dim: i64) -> Self {
        CondAug { fc: nn::linear(p / "fc", text_dim, 2 * ef_dim, Default::default()), ef_dim }
    }

    /// μ and log σ (N, ef_dim) of text embeddings (N, text_dim).
    pub fn mu_log_sigma(&self, text: &Tensor) -> (Tensor, Tensor) {
        let h = leaky_relu(&self.fc.forward_t(text, true), 0.2); // (N, 2·ef)
        (h.narrow(1, 0, self.ef_dim), h.narrow(1, self.ef_dim, self.ef_dim)) // (N, ef) each
    }

    /// ĉ = μ + exp(log σ) ⊙ ε, with μ and log σ. `eps` (N, ef_dim).
    pub fn forward(&self, text: &Tensor, eps: &Tensor) -> (Tensor, Tensor, Tensor) {
        let (mu, ls) = self.mu_log_sigma(text); // (N, ef)
        let c = &mu + ls.exp() * eps; // (N, ef)
        (c, mu, ls)
    }

    pub fn ef_dim(&self) -> i64 {
        self.ef_dim
    }
}

/// KL(N(μ, σ²) ‖ N(0, I)) averaged over every element, as the authors' code (`KL_loss`):
/// mean(−log σ + ½(−1 + σ² + μ²)).
pub fn kl_loss(mu: &Tensor, log_sigma: &Tensor) -> Tensor {
    let t = -log_sigma + ((log_sigma * 2.0).exp() + mu.square() - 1.0) * 0.5; // (N, ef)
    t.mean(tch::Kind::Float) // ()
}

// ---------------------------------------------------------------------------------------------------
// Generators

/// The TF code's bottleneck residual branch [1×1 conv → mid, BN, act, 3×3 conv mid → mid, BN, act, 3×3 conv
/// mid → c, BN], added to its input, then `act`. Names `conv1..3`, `bn1..3`.
struct Bottleneck {
    a: ConvBn,
    b: ConvBn,
    c: ConvBn,
    leaky: bool,
}

impl Bottleneck {
    fn new(p: &nn::Path, c: i64, mid: i64, leaky: bool, l: Layers) -> Self {
        Bottleneck {
            a: ConvBn::with(p, "conv1", "bn1", c, mid, 1, 1, l),
            b: ConvBn::with(p, "conv2", "bn2", mid, mid, 3, 1, l),
            c: ConvBn::with(p, "conv3", "bn3", mid, c, 3, 1, l),
            leaky,
        }
    }

    fn act(&self, x: &Tensor) -> Tensor {
        if self.leaky {
            leaky_relu(x, 0.2)
        } else {
            x.relu()
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let h = self.act(&self.a.forward_t(x, train)); // (N, mid, H, W)
        let h = self.act(&self.b.forward_t(&h, train)); // (N, mid, H, W)
        self.act(&(x + self.c.forward_t(&h, train))) // (N, c, H, W)
    }
}

/// Nearest-neighbour ×2 upsampling, 3×3 conv, BN, ReLU (the TF code's `resize_nearest_neighbor` +
/// `custom_conv2d` + `conv_batch_norm`). Names `conv`, `bn`.
struct Up {
    cb: ConvBn,
}

impl Up {
    fn new(p: &nn::Path, i: i64, o: i64) -> Self {
        Up { cb: ConvBn::new(p, "conv", "bn", i, o, 3, 1) }
    }

    /// Upsampling and conv + BN, before the activation.
    fn pre_act(&self, x: &Tensor, train: bool) -> Tensor {
        let s = x.size();
        let h = x.upsample_nearest2d([s[2] * 2, s[3] * 2], None, None); // (N, i, 2H, 2W)
        self.cb.forward_t(&h, train) // (N, o, 2H, 2W)
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.pre_act(x, train).relu() // (N, o, 2H, 2W)
    }
}

/// Stage-I generator: [ĉ, z] -> FC + BN1d to (s/16)²·8gf -> bottleneck residual (2gf) -> ↑ 4gf (no act) ->
/// bottleneck residual (gf) -> ↑ 2gf -> ↑ gf -> ↑ 3×3 conv to 3 channels -> tanh: (N, 3, s, s).
/// Names: `ca.fc`, `fc`, `fc_bn`, `res1.*`, `up1.*`, `res2.*`, `up2.*`, `up3.*`, `out`.
pub struct Stage1Generator {
    pub ca: CondAug,
    fc: nn::Linear,
    fc_bn: crate::base::BatchNorm,
    res1: Bottleneck,
    up1: Up,
    res2: Bottleneck,
    up2: Up,
    up3: Up,
    out: nn::Conv2D,
    cfg: StackGanNetConfig,
}

impl Stage1Generator {
    pub fn new(p: &nn::Path, cfg: &StackGanNetConfig, text_dim: i64) -> Result<Self> {
        cfg.checked(text_dim)?;
        let (gf, s16) = (cfg.gf_dim, cfg.stage1_size / 16);
        let no_bias = nn::LinearConfig { bias: false, ..Default::default() };
        Ok(Stage1Generator {
            ca: CondAug::new(&(p / "ca"), text_dim, cfg.ef_dim),
            fc: nn::linear(p / "fc", cfg.ef_dim + cfg.z_dim, s16 * s16 * gf * 8, no_bias),
            fc_bn: crate::base::batch_norm1d(p / "fc_bn", s16 * s16 * gf * 8, pytorch_bn()),
            res1: Bottleneck::new(&(p / "res1"), gf * 8, gf * 2, false, Layers::default()),
            up1: Up::new(&(p / "up1"), gf * 8, gf * 4),
            res2: Bottleneck::new(&(p / "res2"), gf * 4, gf, false, Layers::default()),
            up2: Up::new(&(p / "up2"), gf * 4, gf * 2),
            up3: Up::new(&(p / "up3"), gf * 2, gf),
            out: conv(p / "out", gf, 3, 3, 1, true),
            cfg: cfg.clone(),
        })
    }

    /// Images (N, 3, s, s) in [-1, 1] from z (N, z_dim), text embeddings (N, text_dim) and the CA noise ε
    /// (N, ef_dim); also μ and log σ for the KL term.
    pub fn forward_t(&self, z: &Tensor, text: &Tensor, eps: &Tensor, train: bool) -> (Tensor, Tensor, Tensor) {
        let (c, mu, ls) = self.ca.forward(text, eps); // (N, ef) each
        (self.from_code(z, &c, train), mu, ls)
    }

    /// Images from z and an augmented text code ĉ (N, ef_dim).
    pub fn from_code(&self, z: &Tensor, c: &Tensor, train: bool) -> Tensor {
        let n = z.size()[0];
        let (gf, s16) = (self.cfg.gf_dim, self.cfg.stage1_size / 16);
        let h = Tensor::cat(&[c, z], 1); // (N, ef + z)
        let h = self.fc_bn.forward_t(&self.fc.forward_t(&h, train), train); // (N, s16²·8gf)
        let h = h.view([n, gf * 8, s16, s16]); // (N, 8gf, s/16, s/16)
        let h = self.res1.forward_t(&h, train); // (N, 8gf, s/16, s/16)
        let h = self.up1.pre_act(&h, train); // (N, 4gf, s/8, s/8)
        let h = self.res2.forward_t(&h, train); // (N, 4gf, s/8, s/8)
        let h = self.up2.forward_t(&h, train); // (N, 2gf, s/4, s/4)
        let h = self.up3.forward_t(&h, train); // (N, gf, s/2, s/2)
        let s = h.size();
        let h = h.upsample_nearest2d([s[2] * 2, s[3] * 2], None, None); // (N, gf, s, s)
        self.out.forward_t(&h, train).tanh() // (N, 3, s, s)
    }
}

/// The plain residual block of Stage-II G: [3×3 conv, BN, ReLU, 3×3 conv, BN] + input, ReLU.
/// Names `conv1`, `bn1`, `conv2`, `bn2`.
struct ResBlock {
    a: ConvBn,
    b: ConvBn,
}

impl ResBlock {
    fn new(p: &nn::Path, c: i64) -> Self {
        ResBlock { a: ConvBn::new(p, "conv1", "bn1", c, c, 3, 1), b: ConvBn::new(p, "conv2", "bn2", c, c, 3, 1) }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let h = self.a.forward_t(x, train).relu(); // (N, c, H, W)
        (x + self.b.forward_t(&h, train)).relu() // (N, c, H, W)
    }
}

/// Stage-II generator: a Stage-I image (N, 3, s, s) -> 3×3 conv gf + ReLU -> 4×4/2 conv 2gf BN ReLU ->
/// 4×4/2 conv 4gf BN ReLU (s/4 grid) -> [·, ĉ replicated] -> 3×3 conv 4gf BN ReLU -> `r_num` residual blocks
/// -> ↑ 2gf -> ↑ gf -> ↑ gf/2 -> ↑ gf/4 -> 3×3 conv to 3 -> tanh: (N, 3, 4s, 4s). It has its own CA.
/// Names: `ca.fc`, `enc.conv1`, `enc.conv2`, `enc.bn2`, `enc.conv3`, `enc.bn3`, `joint.conv`, `joint.bn`,
/// `res{k}.*` (k = 1..r_num), `up1..up4.*`, `out`.
pub struct Stage2Generator {
    pub ca: CondAug,
    enc1: nn::Conv2D,
    enc2: ConvBn,
    enc3: ConvBn,
    joint: ConvBn,
    res: Vec<ResBlock>,
    ups: Vec<Up>,
    out: nn::Conv2D,
}

impl Stage2Generator {
    pub fn new(p: &nn::Path, cfg: &StackGanNetConfig, text_dim: i64) -> Result<Self> {
        cfg.checked(text_dim)?;
        let gf = cfg.gf_dim;
        let enc = p / "enc";
        let widths = [gf * 4, gf * 2, gf, gf / 2, gf / 4];
        Ok(Stage2Generator {
            ca: CondAug::new(&(p / "ca"), text_dim, cfg.ef_dim),
            enc1: conv(&enc / "conv1", 3, gf, 3, 1, true),
            enc2: ConvBn::new(&enc, "conv2", "bn2", gf, gf * 2, 4, 2),
            enc3: ConvBn::new(&enc, "conv3", "bn3", gf * 2, gf * 4, 4, 2),
            joint: ConvBn::new(&(p / "joint"), "conv", "bn", gf * 4 + cfg.ef_dim, gf * 4, 3, 1),
            res: (1..=cfg.r_num).map(|k| ResBlock::new(&(p / format!("res{k}")), gf * 4)).collect(),
            ups: (0..4).map(|k| Up::new(&(p / format!("up{}", k + 1)), widths[k], widths[k + 1])).collect(),
            out: conv(p / "out", gf / 4, 3, 3, 1, true),
        })
    }

    /// Images (N, 3, 4s, 4s) from Stage-I images (N, 3, s, s), text embeddings and CA noise ε (N, ef_dim);
    /// also μ and log σ.
    pub fn forward_t(&self, x: &Tensor, text: &Tensor, eps: &Tensor, train: bool) -> (Tensor, Tensor, Tensor) {
        let (c, mu, ls) = self.ca.forward(text, eps); // (N, ef) each
        let h = self.enc1.forward_t(x, train).relu(); // (N, gf, s, s)
        let h = self.enc2.forward_t(&h, train).relu(); // (N, 2gf, s/2, s/2)
        let h = self.enc3.forward_t(&h, train).relu(); // (N, 4gf, s/4, s/4)
        let hs = h.size();
        let (n, ef) = (hs[0], c.size()[1]);
        let cc = c.view([n, ef, 1, 1]).expand([n, ef, hs[2], hs[3]], false); // (N, ef, s/4, s/4)
        let mut h = self.joint.forward_t(&Tensor::cat(&[h, cc], 1), train).relu(); // (N, 4gf, s/4, s/4)
        for r in &self.res {
            h = r.forward_t(&h, train); // (N, 4gf, s/4, s/4)
        }
        for u in &self.ups {
            h = u.forward_t(&h, train); // (N, 2gf | gf | gf/2 | gf/4, ×2 each)
        }
        (self.out.forward_t(&h, train).tanh(), mu, ls) // (N, 3, 4s, 4s)
    }
}

// ---------------------------------------------------------------------------------------------------
// Discriminators

/// The D image encoders. Stage-I: 4×4/2 convs df (LeakyReLU), 2df (BN, LeakyReLU), 4df (BN), 8df (BN).
/// Stage-II: 4×4/2 convs df … 32df (BN from the second, LeakyReLU each), 1×1 16df (BN, LeakyReLU), 1×1 8df
/// (BN). Both then add a bottleneck residual branch (2df) and apply LeakyReLU: (N, 8df, s/16, s/16).
/// Names `enc.conv{k}`, `enc.bn{k}` (k from 2), `enc.res.*`.
struct DEncoder {
    first: Box<dyn ModuleT>,
    rest: Vec<(ConvBn, bool)>,
    res: Bottleneck,
}

impl DEncoder {
    fn new(p: &nn::Path, df: i64, stage2: bool, l: Layers) -> Self {
        let first = spectral::conv2d(&(p / "conv1"), 3, df, 4, 2, 1, true, l.spectral_norm);
        // (out channels, kernel, stride, LeakyReLU after BN)
        let spec: Vec<(i64, i64, i64, bool)> = if stage2 {
            vec![(2, 4, 2, true), (4, 4, 2, true), (8, 4, 2, true), (16, 4, 2, true), (32, 4, 2, true), (16, 1, 1, true), (8, 1, 1, false)]
        } else {
            vec![(2, 4, 2, true), (4, 4, 2, false), (8, 4, 2, false)]
        };
        let mut c_in = df;
        let mut rest = vec![];
        for (j, (m, k, s, act)) in spec.into_iter().enumerate() {
            let i = j + 2;
            rest.push((ConvBn::with(p, &format!("conv{i}"), &format!("bn{i}"), c_in, df * m, k, s, l), act));
            c_in = df * m;
        }
        DEncoder { first, rest, res: Bottleneck::new(&(p / "res"), df * 8, df * 2, true, l) }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = leaky_relu(&self.first.forward_t(x, train), 0.2); // (N, df, S/2, S/2)
        for (cb, act) in &self.rest {
            h = cb.forward_t(&h, train); // (N, df·m, ., .)
            if *act {
                h = leaky_relu(&h, 0.2); // same shape
            }
        }
        self.res.forward_t(&h, train) // (N, 8df, s/16, s/16)
    }
}

/// How D brings in the text.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StackDConditioning {
    /// The paper: the compressed text code replicated over the feature grid and concatenated, then convs.
    #[default]
    Concat,
    /// Miyato & Koyama 2018 (not in the paper): φ = the features summed over the grid; score ψ(φ) + ⟨V t, φ⟩.
    Projection,
}

/// Discriminator options beyond the widths. The default is the paper's D.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StackDOptions {
    /// `joint` (StackGAN: one score) or `split` (StackGAN-v2: also a real/fake head on the image alone).
    pub heads: HeadDesign,
    pub conditioning: StackDConditioning,
    /// Batch norm after D's convs (the paper: true).
    pub batch_norm: bool,
    /// Spectral norm on every conv and linear weight of D (not in the paper).
    pub spectral_norm: bool,
}

impl Default for StackDOptions {
    fn default() -> Self {
        StackDOptions { heads: HeadDesign::Joint, conditioning: StackDConditioning::Concat, batch_norm: true, spectral_norm: false }
    }
}

/// The text side of D's scores.
enum DHead {
    /// The text embedding -> FC to ef_dim + LeakyReLU(0.2), replicated over the b×b grid, concatenated -> 1×1
    /// conv 8df + BN + LeakyReLU -> b×b conv to one logit. Names `context.fc`, `head.conv1`, `head.bn`,
    /// `head.conv2`; with `split`, the real/fake head is a b×b conv on the features alone (`uncond.conv`).
    Concat { context: Box<dyn ModuleT>, mix: ConvBn, logit: Box<dyn ModuleT>, uncond: Option<Box<dyn ModuleT>> },
    /// φ = features summed over the grid (N, 8df); ψ = `proj.psi` (Linear 8df -> 1), V = `proj.embed` (Linear
    /// text_dim -> 8df, no bias). Joint: ψ(φ) + ⟨V t, φ⟩; split: matched ⟨V t, φ⟩, real/fake ψ(φ).
    Projection { psi: Box<dyn ModuleT>, embed: Box<dyn ModuleT>, split: bool },
}

/// StackGAN's discriminator (either stage): image features (N, 8df, b, b) with b = s/16, scored against the
/// text embedding by a [`DHead`]. Names `enc.*` and the head's.
pub struct StackDiscriminator {
    enc: DEncoder,
    head: DHead,
}

impl StackDiscriminator {
    /// Stage-I D (input s × s) when `stage2` is false, Stage-II D (input 4s × 4s) otherwise.
    pub fn new(p: &nn::Path, cfg: &StackGanNetConfig, text_dim: i64, opts: &StackDOptions, stage2: bool) -> Result<Self> {
        cfg.checked(text_dim)?;
        let (df, b) = (cfg.df_dim, cfg.stage1_size / 16);
        let l = Layers { batch_norm: opts.batch_norm, spectral_norm: opts.spectral_norm };
        let sn = l.spectral_norm;
        let split = opts.heads == HeadDesign::Split;
        let head = match opts.conditioning {
            StackDConditioning::Concat => {
                let h = p / "head";
                DHead::Concat {
                    context: spectral::linear(&(p / "context" / "fc"), text_dim, cfg.ef_dim, true, sn),
                    mix: ConvBn::with(&h, "conv1", "bn", df * 8 + cfg.ef_dim, df * 8, 1, 1, l),
                    logit: spectral::conv2d(&(&h / "conv2"), df * 8, 1, b, 1, 0, true, sn),
                    uncond: split.then(|| spectral::conv2d(&(p / "uncond" / "conv"), df * 8, 1, b, 1, 0, true, sn)),
                }
            }
            StackDConditioning::Projection => DHead::Projection {
                psi: spectral::linear(&(p / "proj" / "psi"), df * 8, 1, true, sn),
                embed: spectral::linear(&(p / "proj" / "embed"), text_dim, df * 8, false, sn),
                split,
            },
        };
        Ok(StackDiscriminator { enc: DEncoder::new(&(p / "enc"), df, stage2, l), head })
    }
}

impl CondDiscriminator for StackDiscriminator {
    fn features(&self, x: &Tensor, train: bool) -> Tensor {
        self.enc.forward_t(x, train) // (N, 8df, b, b)
    }

    fn heads(&self, h: &Tensor, c: &Tensor, train: bool) -> Scores {
        let size = h.size();
        let (n, b) = (size[0], size[2]);
        match &self.head {
            DHead::Concat { context, mix, logit, uncond } => {
                let t = leaky_relu(&context.forward_t(c, train), 0.2); // (N, ef)
                let ef = t.size()[1];
                let t = t.view([n, ef, 1, 1]).expand([n, ef, b, b], false); // (N, ef, b, b)
                let j = leaky_relu(&mix.forward_t(&Tensor::cat(&[h.shallow_clone(), t], 1), train), 0.2); // (N, 8df, b, b)
                let matched = logit.forward_t(&j, train).reshape([n]); // (N, 1, 1, 1) -> (N,)
                let uncond = uncond.as_ref().map(|u| u.forward_t(h, train).reshape([n])); // (N,)
                Scores { matched, uncond }
            }
            DHead::Projection { psi, embed, split } => {
                let phi = h.sum_dim_intlist(&[2i64, 3][..], false, h.kind()); // (N, 8df)
                projection_scores(&phi, c, psi.as_ref(), embed.as_ref(), *split, train)
            }
        }
    }
}
