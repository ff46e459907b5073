//! UNIT networks (Liu, Breuel & Kautz 2017, "Unsupervised Image-to-Image Translation Networks", §2 and
//! Fig. 1): an encoder and a decoder per domain (E_1, G_1 for A; E_2, G_2 for B) around one shared latent
//! space, and a multi-scale PatchGAN discriminator per domain.
//!
//! Layout after the authors' PyTorch code (mingyuliutw/UNIT, `networks.py`: `VAEGen`, `ContentEncoder`,
//! `Decoder`, `ResBlocks`, `Conv2dBlock`, `LayerNorm`, `MsImageDis`):
//! - encoder: 7×7 conv (dim) → `n_downsample` × [4×4 stride-2 conv, doubling] → `n_res` residual blocks;
//!   every conv biased, followed by instance norm (no affine) and ReLU, padded as `pad` says.
//! - decoder: `n_res` residual blocks → `n_downsample` × [nearest ×2 upsampling, 5×5 conv halving, layer
//!   norm (the code's own: per sample over C·H·W, unbiased std, ε added to the std, per-channel γ ~ U(0,1)
//!   and β = 0), ReLU] → 7×7 conv → tanh.
//! - residual block: x + [3×3 conv, IN, ReLU, 3×3 conv, IN](x).
//! - latent: the encoder output is the mean μ of q(z|x) = N(μ, I); training decodes z = μ + ε, ε ~ N(0, I)
//!   (the code's form: unit variance, so the KL term reduces to mean(μ²)); evaluation decodes μ.
//! - D: per scale, [4×4 stride-2 conv (dim), LeakyReLU 0.2] → (n_layer − 1) × [4×4 stride-2 conv doubling,
//!   norm, LeakyReLU] → 1×1 conv to one score map; the next scale sees the input average-pooled (3×3,
//!   stride 2, padding 1, padding not counted).
//!
//! Weight sharing (the paper's §2 and its NIPS code, branch version_02): the last `shared_enc_blocks`
//! residual blocks of both encoders and the first `shared_dec_blocks` residual blocks of both decoders are
//! one set of weights, so both domains map into one latent space. The authors' later code (the default
//! branch, in MUNIT's layout) shares nothing (`0` here) and relies on the cycle terms; this is a config choice.
//!
//! Variable names follow the reference state_dict (`gen_a.enc.model.0.conv.weight`, `gen_b.dec.model.2.norm.gamma`,
//! `dis_a.cnns.0.4.weight`, ...); a residual block keeps its index in its `ResBlocks` list; shared blocks live
//! under `shared.enc.{i}` and `shared.dec.{i}` with the same inner names, so with no sharing a reference
//! state_dict loads by name.

use serde::{Deserialize, Serialize};
use tch::{nn, nn::ModuleT, Kind, Tensor};

use rand_chacha::ChaCha8Rng;

use crate::error::{ModelError, Result};
use crate::optim::named_trainable;
use crate::rng::{fill_const, fill_normal, fill_uniform};
use crate::spectral;

/// Which of the two domains a network belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    A,
    B,
}

/// How convolutions pad (the reference's `pad_type`).
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UnitPadding {
    /// ReflectionPad2d before each conv (the authors' configs).
    #[default]
    Reflect,
    /// Zero padding.
    Zero,
}

impl UnitPadding {
    fn mode(self) -> nn::PaddingMode {
        match self {
            UnitPadding::Reflect => nn::PaddingMode::Reflect,
            UnitPadding::Zero => nn::PaddingMode::Zeros,
        }
    }
}

/// Normalization of D's hidden convolutions (the reference's `dis.norm`).
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DisNorm {
    /// None (the authors' configs).
    #[default]
    None,
    /// Instance norm without affine parameters.
    Instance,
}

/// The encoders and decoders (the reference's `gen` section). Defaults are the authors' configs.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UnitGeneratorConfig {
    /// Channels of the first conv; each downsampling doubles them (the latent has dim·2^n_downsample).
    pub dim: i64,
    /// Stride-2 convs in each encoder (and ×2 upsamplings in each decoder).
    pub n_downsample: i64,
    /// Residual blocks at the end of each encoder and at the start of each decoder.
    pub n_res: i64,
    /// How many of the encoder's last residual blocks EN_A and EN_B share (≤ n_res).
    pub shared_enc_blocks: i64,
    /// How many of the decoder's first residual blocks DE_A and DE_B share (≤ n_res).
    pub shared_dec_blocks: i64,
    /// Padding of the convs: `reflect` or `zero`.
    pub pad: UnitPadding,
}

impl Default for UnitGeneratorConfig {
    fn default() -> Self {
        UnitGeneratorConfig { dim: 64, n_downsample: 2, n_res: 4, shared_enc_blocks: 1, shared_dec_blocks: 1, pad: UnitPadding::Reflect }
    }
}

impl UnitGeneratorConfig {
    /// Every problem building the generators for `channels` at image side `size` would hit.
    pub fn check(&self, channels: i64, size: i64) -> Vec<String> {
        let mut p = vec![];
        if self.dim < 2 {
            p.push(format!("dim must be >= 2, got {}", self.dim));
        }
        if !(0..=6).contains(&self.n_downsample) {
            p.push(format!("n_downsample must be in 0..=6, got {}", self.n_downsample));
        }
        if self.n_res < 0 {
            p.push(format!("n_res must be >= 0, got {}", self.n_res));
        }
        for (key, v) in [("shared_enc_blocks", self.shared_enc_blocks), ("shared_dec_blocks", self.shared_dec_blocks)] {
            if v < 0 || v > self.n_res {
                p.push(format!("{key} must be in 0..=n_res ({}), got {v}", self.n_res));
            }
        }
        if channels < 1 {
            p.push(format!("channels must be >= 1, got {channels}"));
        }
        if (0..=6).contains(&self.n_downsample) {
            let f = 1i64 << self.n_downsample;
            if size % f != 0 || size / f < 2 {
                p.push(format!(
                    "the image side {size} must be a multiple of 2^n_downsample = {f} with a latent side of at least 2"
                ));
            }
        }
        p
    }

    /// Channels of the latent code.
    pub fn latent_channels(&self) -> i64 {
        self.dim << self.n_downsample.clamp(0, 6)
    }
}

/// The per-domain multi-scale discriminators (the reference's `dis` section). Defaults are the authors'.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UnitDiscriminatorConfig {
    /// Channels of the first conv; each later conv doubles them.
    pub dim: i64,
    /// Stride-2 convs per scale.
    pub n_layer: i64,
    /// Scales (the input, then average-pooled by 2 each time).
    pub num_scales: i64,
    /// Normalization of D's convs: `none` or `instance`.
    pub norm: DisNorm,
    /// Padding of the convs: `reflect` or `zero`.
    pub pad: UnitPadding,
}

impl Default for UnitDiscriminatorConfig {
    fn default() -> Self {
        UnitDiscriminatorConfig { dim: 64, n_layer: 4, num_scales: 3, norm: DisNorm::None, pad: UnitPadding::Reflect }
    }
}

impl UnitDiscriminatorConfig {
    /// Every problem building D for `channels` at image side `size` would hit.
    pub fn check(&self, channels: i64, size: i64) -> Vec<String> {
        let mut p = vec![];
        if self.dim < 1 {
            p.push(format!("dim must be >= 1, got {}", self.dim));
        }
        if !(1..=8).contains(&self.n_layer) {
            p.push(format!("n_layer must be in 1..=8, got {}", self.n_layer));
        }
        if !(1..=6).contains(&self.num_scales) {
            p.push(format!("num_scales must be in 1..=6, got {}", self.num_scales));
        }
        if channels < 1 {
            p.push(format!("channels must be >= 1, got {channels}"));
        }
        if p.is_empty() {
            // Every scale's input must survive n_layer halvings with a reflection pad of 1 (side ≥ 2).
            let mut s = size;
            for scale in 0..self.num_scales {
                let mut t = s;
                for _ in 0..self.n_layer {
                    if t < 2 {
                        p.push(format!("the image side {size} is too small for scale {scale} (side {s}) with n_layer {}", self.n_layer));
                        return p;
                    }
                    t = (t + 2 - 4) / 2 + 1;
                }
                if t < 1 {
                    p.push(format!("the image side {size} is too small for scale {scale} (side {s}) with n_layer {}", self.n_layer));
                    return p;
                }
                s = (s + 2 - 3) / 2 + 1;
            }
        }
        p
    }
}

/// The reference's `Conv2dBlock` convolution: `pad` (reflection or zeros) of `padding`, then a biased conv.
fn conv_config(stride: i64, padding: i64, pad: UnitPadding) -> nn::ConvConfig {
    nn::ConvConfig { stride, padding, padding_mode: pad.mode(), bias: true, ..Default::default() }
}

fn conv(p: &nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64, pad: UnitPadding) -> nn::Conv2D {
    nn::conv2d(p, c_in, c_out, k, conv_config(stride, padding, pad))
}

fn instance_norm(x: &Tensor) -> Tensor {
    x.instance_norm(None::<Tensor>, None::<Tensor>, None::<Tensor>, None::<Tensor>, true, 0.1, 1e-5, true) // (N, C, H, W) -> same
}

/// The reference's `LayerNorm`: per sample over C·H·W, (x − mean) / (std + ε) with the unbiased std, then
/// a per-channel scale γ and shift β.
#[derive(Debug)]
struct LayerNorm {
    gamma: Tensor,
    beta: Tensor,
}

impl LayerNorm {
    fn new(p: &nn::Path, c: i64) -> Self {
        // Filled from a seeded RNG by `init_generators` (the reference: γ ~ U(0, 1), β = 0).
        LayerNorm { gamma: p.var("gamma", &[c], nn::Init::Const(1.0)), beta: p.var("beta", &[c], nn::Init::Const(0.0)) }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let n = x.size()[0];
        let flat = x.view([n, -1]); // (N, C·H·W)
        let mean = flat.mean_dim(1, true, Kind::Float).view([n, 1, 1, 1]); // (N, 1, 1, 1)
        let std = flat.std_dim(1, true, true).view([n, 1, 1, 1]); // (N, 1, 1, 1), unbiased
        let y = (x - mean) / (std + 1e-5); // (N, C, H, W)
        y * self.gamma.view([1, -1, 1, 1]) + self.beta.view([1, -1, 1, 1]) // (N, C, H, W)
    }
}

/// A 3×3 residual block: x + [conv, IN, ReLU, conv, IN](x).
#[derive(Debug)]
struct ResBlock {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
}

impl ResBlock {
    fn new(p: &nn::Path, dim: i64, pad: UnitPadding) -> Self {
        let m = p / "model";
        ResBlock { conv1: conv(&(&m / 0 / "conv"), dim, dim, 3, 1, 1, pad), conv2: conv(&(&m / 1 / "conv"), dim, dim, 3, 1, 1, pad) }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let h = instance_norm(&self.conv1.forward_t(x, true)).relu(); // (N, D, h, w)
        let h = instance_norm(&self.conv2.forward_t(&h, true)); // (N, D, h, w)
        x + h // (N, D, h, w)
    }
}

/// One domain's private encoder layers: stem, downsamplings and the unshared residual blocks.
#[derive(Debug)]
struct EncoderPart {
    stem: nn::Conv2D,
    down: Vec<nn::Conv2D>,
    blocks: Vec<ResBlock>,
}

/// One domain's private decoder layers: the unshared residual blocks, upsamplings and the head.
#[derive(Debug)]
struct DecoderPart {
    blocks: Vec<ResBlock>,
    up: Vec<(nn::Conv2D, LayerNorm)>,
    head: nn::Conv2D,
}

/// EN_A, DE_A, EN_B, DE_B with the shared blocks between them.
#[derive(Debug)]
pub struct UnitGenerators {
    enc: [EncoderPart; 2],
    dec: [DecoderPart; 2],
    shared_enc: Vec<ResBlock>,
    shared_dec: Vec<ResBlock>,
}

fn idx(d: Domain) -> usize {
    match d {
        Domain::A => 0,
        Domain::B => 1,
    }
}

impl UnitGenerators {
    /// Builds the four networks under `p` (`gen_a.*`, `gen_b.*`, `shared.*`) for `channels`-channel images of
    /// side `size` (checked against the depth).
    pub fn new(p: &nn::Path, cfg: &UnitGeneratorConfig, channels: i64, size: i64) -> Result<Self> {
        let problems = cfg.check(channels, size);
        if !problems.is_empty() {
            return Err(ModelError::Config(format!("unit generator: {}", problems.join("; "))));
        }
        let latent = cfg.latent_channels();
        let (nd, pad) = (cfg.n_downsample, cfg.pad);
        let enc_part = |g: nn::Path| {
            let m = &g / "enc" / "model";
            let stem = conv(&(&m / 0 / "conv"), channels, cfg.dim, 7, 1, 3, pad);
            let down = (0..nd).map(|i| conv(&(&m / (1 + i) / "conv"), cfg.dim << i, cfg.dim << (i + 1), 4, 2, 1, pad)).collect();
            let rb = &m / (1 + nd) / "model";
            let blocks = (0..cfg.n_res - cfg.shared_enc_blocks).map(|i| ResBlock::new(&(&rb / i), latent, pad)).collect();
            EncoderPart { stem, down, blocks }
        };
        let dec_part = |g: nn::Path| {
            let m = &g / "dec" / "model";
            let rb = &m / 0 / "model";
            let blocks = (cfg.shared_dec_blocks..cfg.n_res).map(|i| ResBlock::new(&(&rb / i), latent, pad)).collect();
            let up = (0..nd)
                .map(|i| {
                    let c = latent >> i;
                    let b = &m / (2 + 2 * i);
                    (conv(&(&b / "conv"), c, c / 2, 5, 1, 2, pad), LayerNorm::new(&(&b / "norm"), c / 2))
                })
                .collect();
            let head = conv(&(&m / (1 + 2 * nd) / "conv"), cfg.dim, channels, 7, 1, 3, pad);
            DecoderPart { blocks, up, head }
        };
        let s = p / "shared";
        let shared_enc = (0..cfg.shared_enc_blocks).map(|i| ResBlock::new(&(&s / "enc" / i), latent, pad)).collect();
        let shared_dec = (0..cfg.shared_dec_blocks).map(|i| ResBlock::new(&(&s / "dec" / i), latent, pad)).collect();
        Ok(UnitGenerators {
            enc: [enc_part(p / "gen_a"), enc_part(p / "gen_b")],
            dec: [dec_part(p / "gen_a"), dec_part(p / "gen_b")],
            shared_enc,
            shared_dec,
        })
    }

    /// EN_d: (N, C, H, W) → μ, (N, dim·2^k, H/2^k, W/2^k), the mean of q(z|x) in the shared latent space.
    pub fn encode(&self, x: &Tensor, d: Domain) -> Tensor {
        let e = &self.enc[idx(d)];
        let mut h = instance_norm(&e.stem.forward_t(x, true)).relu(); // (N, dim, H, W)
        for cv in &e.down {
            h = instance_norm(&cv.forward_t(&h, true)).relu(); // (N, 2c, h/2, w/2)
        }
        for b in e.blocks.iter().chain(&self.shared_enc) {
            h = b.forward(&h); // (N, L, H/2^k, W/2^k)
        }
        h
    }

    /// DE_d: a latent (N, L, H/2^k, W/2^k) → image (N, C, H, W) in [-1, 1].
    pub fn decode(&self, z: &Tensor, d: Domain) -> Tensor {
        let g = &self.dec[idx(d)];
        let mut h = z.shallow_clone(); // (N, L, h, w)
        for b in self.shared_dec.iter().chain(&g.blocks) {
            h = b.forward(&h); // (N, L, h, w)
        }
        for (cv, ln) in &g.up {
            let s = h.size();
            h = h.upsample_nearest2d([s[2] * 2, s[3] * 2], Some(2.0), Some(2.0)); // (N, c, 2h, 2w)
            h = ln.forward(&cv.forward_t(&h, true)).relu(); // (N, c/2, 2h, 2w)
        }
        g.head.forward_t(&h, true).tanh() // (N, C, H, W) in [-1, 1]
    }

    /// x → EN_from → μ → DE_to (evaluation: the mean, no noise), as the reference translates.
    pub fn translate(&self, x: &Tensor, from: Domain, to: Domain) -> Tensor {
        self.decode(&self.encode(x, from), to) // (N, C, H, W)
    }
}

/// One scale of [`MsImageDis`]: the stride-2 convs (with their instance-norm flag) and the final 1×1 conv.
type Scale = (Vec<(Box<dyn ModuleT>, bool)>, Box<dyn ModuleT>);

/// The multi-scale PatchGAN discriminator of one domain.
#[derive(Debug)]
pub struct MsImageDis {
    scales: Vec<Scale>,
}

impl MsImageDis {
    /// Builds D under `p` (`cnns.{scale}.{layer}.conv.weight`, `cnns.{scale}.{n_layer}.weight`). With
    /// `spectral_norm` every convolution, the final 1×1 ones included, is spectrally normalized (Miyato et
    /// al. 2018) under `torch.nn.utils.spectral_norm`'s names (`….conv.weight_orig`, `weight_u`, `weight_v`,
    /// `bias`); reflection padding still pads the input before the normalized convolution.
    pub fn new(
        p: &nn::Path,
        cfg: &UnitDiscriminatorConfig,
        channels: i64,
        size: i64,
        spectral_norm: bool,
    ) -> Result<Self> {
        let problems = cfg.check(channels, size);
        if !problems.is_empty() {
            return Err(ModelError::Config(format!("unit discriminator: {}", problems.join("; "))));
        }
        let sn = spectral_norm;
        let down = conv_config(2, 1, cfg.pad); // 4×4, stride 2, padding 1
        let scales = (0..cfg.num_scales)
            .map(|s| {
                let c = p / "cnns" / s;
                let first = spectral::conv2d_config(&(&c / 0 / "conv"), channels, cfg.dim, 4, down, sn);
                let mut layers = vec![(first, false)];
                let mut dim = cfg.dim;
                for i in 1..cfg.n_layer {
                    let cv = spectral::conv2d_config(&(&c / i / "conv"), dim, dim * 2, 4, down, sn);
                    layers.push((cv, cfg.norm == DisNorm::Instance));
                    dim *= 2;
                }
                let last = spectral::conv2d_config(&(&c / cfg.n_layer), dim, 1, 1, Default::default(), sn);
                (layers, last)
            })
            .collect();
        Ok(MsImageDis { scales })
    }

    /// x: (N, C, H, W) → one raw score map per scale, (N, 1, H/2^(n_layer+s), …) for scale s. `train` matters
    /// for spectral norm only: one power iteration per weight in training mode.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Vec<Tensor> {
        let mut x = x.shallow_clone(); // (N, C, H, W)
        let mut out = Vec::with_capacity(self.scales.len());
        for (layers, last) in &self.scales {
            let mut h = x.shallow_clone(); // (N, C, H_s, W_s)
            for (cv, norm) in layers {
                h = cv.forward_t(&h, train); // (N, c, h/2, w/2)
                if *norm {
                    h = instance_norm(&h); // same
                }
                h = crate::nets::leaky_relu(&h, 0.2); // same
            }
            out.push(last.forward_t(&h, train)); // (N, 1, h', w')
            x = x.avg_pool2d([3, 3], [2, 2], [1, 1], false, false, None::<i64>); // (N, C, H_s/2, W_s/2)
        }
        out
    }

    /// [`Self::forward_t`] in training mode, as the reference's D always runs while training.
    pub fn forward(&self, x: &Tensor) -> Vec<Tensor> {
        self.forward_t(x, true) // (N, C, H, W) -> per scale (N, 1, h', w')
    }
}

/// The reference's generator initialization (`init: kaiming`): conv weights N(0, 2/fan_in) (He et al.,
/// fan_in mode, a = 0), biases 0; layer-norm γ ~ U(0, 1), β = 0. All from `rng`, in sorted name order.
pub fn init_generators(vs: &nn::VarStore, rng: &mut ChaCha8Rng) {
    for (name, t) in named_trainable(vs) {
        let last = name.rsplit('.').next().unwrap_or("");
        match (last, t.dim()) {
            ("weight", d) if d >= 2 => {
                let fan_in: i64 = t.size()[1..].iter().product();
                fill_normal(&t, rng, 0.0, (2.0 / fan_in.max(1) as f64).sqrt());
            }
            ("gamma", _) => fill_uniform(&t, rng, 0.0, 1.0),
            ("bias" | "beta", _) => fill_const(&t, 0.0),
            _ => {}
        }
    }
}

/// The KL term of the reference for q(z|x) = N(μ, I) against N(0, I), up to constants: mean(μ²).
pub fn kl_unit_variance(mu: &Tensor) -> Tensor {
    mu.square().mean(Kind::Float) // scalar
}
