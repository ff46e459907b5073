//! CycleGAN networks (Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
//! Adversarial Networks", §4 and appendix 7.2): the ResNet generator and the 70×70 PatchGAN discriminator,
//! plus [`load_named_tensors`] to import weights saved from the reference PyTorch code.
//!
//! The layout follows the authors' reference implementation (junyanz/pytorch-CycleGAN-and-pix2pix,
//! `models/networks.py`: `ResnetGenerator`, `ResnetBlock`, `NLayerDiscriminator`). Variable names are its
//! state_dict keys: `model.{i}` indexes the `nn.Sequential`, counting padding, normalization, activation
//! and dropout layers, and residual blocks add `conv_block.{j}`. With ngf = ndf = 64 and 3 → 3 channels the
//! parameter counts equal the reference's: G 11,378,179 (9 blocks), 7,837,699 (6 blocks); D 2,764,737
//! (n_layers 3), whose output is 30×30 for a 256×256 input (each output sees a 70×70 patch).
//!
//! Normalization follows the reference's `get_norm_layer` and `use_bias` logic:
//! - `instance`: InstanceNorm2d with affine = False and track_running_stats = False (no variables, the same
//!   in training and evaluation); the convolutions before it have a bias.
//! - `batch`: BatchNorm2d with PyTorch defaults (weight 1, bias 0, eps 1e-5, momentum 0.1, running stats);
//!   the convolutions before it have no bias.
//! - `none`: an identity that still takes its `nn.Sequential` index; like the reference (whose
//!   `use_bias = norm_layer == nn.InstanceNorm2d` is false for it) those convolutions have no bias either.
//!
//! D can be spectrally normalized (Miyato et al. 2018; every convolution, `torch.nn.utils.spectral_norm`'s
//! `weight_orig` / `weight_u` / `weight_v` names), as `loss.spectral_norm` asks in every family.
//!
//! The first and last convolutions of G, and the first and last of D, always have a bias. Weights start
//! from tch's initializers: apply [`crate::init::init_normal`] with std 0.02 (the reference's
//! `init_type=normal`) from a seeded RNG.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{nn, nn::ModuleT, Tensor};

use crate::blur::{Downsample, Upsample};
use crate::error::{ModelError, Result};
use crate::rng::{derived_rng, uniform};
use crate::spectral;

/// Normalization after each hidden convolution (the reference's `--norm`).
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// Instance norm without affine parameters or running statistics (CycleGAN's choice); biased convs.
    #[default]
    Instance,
    /// Batch norm with PyTorch defaults; convs without bias.
    Batch,
    /// No normalization (an identity layer in the reference, which keeps the indices); convs without bias.
    None,
}

impl Norm {
    /// Whether a convolution followed by this norm has a bias (the reference's `use_bias`).
    pub fn conv_bias(self) -> bool {
        self == Norm::Instance
    }
}

/// How the residual blocks pad before their 3×3 convolutions (the reference's `padding_type`). The 7×7
/// convolutions at both ends of G always use reflection padding, as in the reference.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// ReflectionPad2d(1) + conv (CycleGAN's choice).
    #[default]
    Reflect,
    /// ReplicationPad2d(1) + conv.
    Replicate,
    /// Zero padding inside the conv (no separate padding layer, so the block's indices shift down).
    Zero,
}

/// A normalization layer as built from [`Norm`].
#[derive(Debug)]
pub(crate) enum NormLayer {
    Instance,
    Batch(crate::base::BatchNorm),
    Identity,
}

impl NormLayer {
    pub(crate) fn new(p: &nn::Path, norm: Norm, channels: i64) -> Self {
        match norm {
            Norm::Instance => NormLayer::Instance,
            Norm::Batch => {
                // PyTorch defaults (weight 1, bias 0), not tch's uniform(0, 1) weight.
                let cfg = nn::BatchNormConfig {
                    ws_init: nn::Init::Const(1.0),
                    bs_init: nn::Init::Const(0.0),
                    ..Default::default()
                };
                NormLayer::Batch(crate::base::batch_norm2d(p, channels, cfg))
            }
            Norm::None => NormLayer::Identity,
        }
    }

    pub(crate) fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        match self {
            // Always the statistics of the input itself, as PyTorch's InstanceNorm2d without running stats.
            NormLayer::Instance => x.instance_norm(
                None::<Tensor>,
                None::<Tensor>,
                None::<Tensor>,
                None::<Tensor>,
                true,
                0.1,
                1e-5,
                true,
            ), // (N, C, H, W) -> same
            NormLayer::Batch(bn) => bn.forward_t(x, train), // (N, C, H, W) -> same
            NormLayer::Identity => x.shallow_clone(),       // (N, C, H, W) -> same
        }
    }

    /// Batch norm on the statistics of `x` itself, leaving the running averages as they are (pix2pix's test
    /// time: the reference evaluates in training mode, but a sample must not change the model); the other
    /// norms as in [`NormLayer::forward_t`].
    pub(crate) fn forward_untracked(&self, x: &Tensor) -> Tensor {
        match self {
            NormLayer::Batch(bn) => Tensor::batch_norm(x, bn.ws.as_ref(), bn.bs.as_ref(), None::<&Tensor>, None::<&Tensor>, true, 0.1, 1e-5, false), // (N, C, H, W) -> same
            other => other.forward_t(x, false), // (N, C, H, W) -> same
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn conv(
    p: &nn::Path,
    c_in: i64,
    c_out: i64,
    k: i64,
    stride: i64,
    padding: i64,
    mode: nn::PaddingMode,
    bias: bool,
) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        stride,
        padding,
        padding_mode: mode,
        bias,
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, k, cfg)
}

fn relu(x: &Tensor) -> Tensor {
    x.relu()
}

fn leaky_relu(x: &Tensor) -> Tensor {
    crate::nets::leaky_relu(x, 0.2)
}

/// ResNet generator settings (the reference's `--netG resnet_9blocks|resnet_6blocks`, `--ngf`, `--norm`,
/// `--no_dropout`). Defaults are CycleGAN's at 256×256.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ResnetGeneratorConfig {
    /// Width of the first conv; the two downsamplings double it twice (the residual blocks run at 4·ngf).
    pub ngf: i64,
    /// Residual blocks at the bottleneck: 9 for 256×256 images, 6 for 128×128 in the paper.
    pub n_blocks: i64,
    /// `instance` (no affine parameters, as the reference), `batch` or `none`.
    pub norm: Norm,
    /// Dropout(0.5) between the two convs of every residual block (off for CycleGAN, on for pix2pix).
    pub dropout: bool,
    /// Padding of the 3×3 convs of the residual blocks and of the 7×7 convs: `reflect`, `replicate` or `zero`.
    pub padding: Padding,
    /// Anti-aliased downsampling (the CUT code's default): each stride-2 conv becomes a stride-1 conv, norm,
    /// ReLU and a binomial blur with stride 2 ([`crate::blur::Downsample`]), one more `nn.Sequential` index.
    pub antialias: bool,
    /// Anti-aliased upsampling (the CUT code's default): each transposed conv becomes a fixed binomial
    /// upsampling ([`crate::blur::Upsample`]) then a 3×3 conv.
    pub antialias_up: bool,
}

impl Default for ResnetGeneratorConfig {
    fn default() -> Self {
        ResnetGeneratorConfig {
            ngf: 64,
            n_blocks: 9,
            norm: Norm::Instance,
            dropout: false,
            padding: Padding::Reflect,
            antialias: false,
            antialias_up: false,
        }
    }
}

impl ResnetGeneratorConfig {
    /// The reference's `resnet_9blocks` (CycleGAN at 256×256).
    pub fn resnet_9blocks() -> Self {
        Self::default()
    }

    /// The reference's `resnet_6blocks` (CycleGAN at 128×128).
    pub fn resnet_6blocks() -> Self {
        ResnetGeneratorConfig {
            n_blocks: 6,
            ..Self::default()
        }
    }

    /// The CUT code's `resnet_9blocks`: anti-aliased down- and upsampling.
    pub fn cut() -> Self {
        ResnetGeneratorConfig { antialias: true, antialias_up: true, ..Self::default() }
    }

    /// Channels of each `nn.Sequential` output of the encoder and the residual blocks, by index (0: the
    /// reflection-padded input), for G with `in_channels`: where [`ResnetGenerator::features`] can tap.
    pub fn encoder_channels(&self, in_channels: i64) -> Vec<i64> {
        let mut c = vec![in_channels, self.ngf, self.ngf, self.ngf];
        for i in 0..2 {
            let out = self.ngf << (i + 1);
            c.extend(std::iter::repeat_n(out, if self.antialias { 4 } else { 3 }));
        }
        c.extend(std::iter::repeat_n(4 * self.ngf, self.n_blocks.max(0) as usize));
        c
    }

    /// Every problem building G with `in_channels` → `out_channels` would hit (empty when fine).
    pub fn check(&self, in_channels: i64, out_channels: i64) -> Vec<String> {
        let mut p = vec![];
        if self.ngf < 1 {
            p.push(format!(
                "resnet generator ngf must be >= 1, got {}",
                self.ngf
            ));
        }
        if self.n_blocks < 0 {
            p.push(format!(
                "resnet generator n_blocks must be >= 0, got {}",
                self.n_blocks
            ));
        }
        if in_channels < 1 || out_channels < 1 {
            p.push(format!(
                "resnet generator channels must be >= 1, got {in_channels} -> {out_channels}"
            ));
        }
        p
    }

    /// Builds G under `p` (see [`ResnetGenerator::new`]).
    pub fn build(
        &self,
        p: &nn::Path,
        in_channels: i64,
        out_channels: i64,
    ) -> Result<ResnetGenerator> {
        ResnetGenerator::new(p, self, in_channels, out_channels)
    }
}

/// Dropout(0.5) whose masks come from a seeded ChaCha stream (never libtorch's global generator).
#[derive(Debug)]
struct SeededDropout {
    rng: Mutex<ChaCha8Rng>,
}

impl SeededDropout {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        if !train {
            return x.shallow_clone(); // (N, C, H, W) -> same
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let keep = uniform(&mut rng, &x.size(), 0.0, 1.0, x.device())
            .ge(0.5)
            .to_kind(x.kind()); // (N, C, H, W) of 0/1
        x * keep * 2.0 // (N, C, H, W), kept values scaled by 1/(1 - 0.5)
    }
}

/// One residual block: x + [pad, conv3×3, norm, ReLU, (dropout), pad, conv3×3, norm](x).
#[derive(Debug)]
struct ResnetBlock {
    conv1: nn::Conv2D,
    norm1: NormLayer,
    dropout: Option<SeededDropout>,
    conv2: nn::Conv2D,
    norm2: NormLayer,
}

impl ResnetBlock {
    fn new(p: &nn::Path, dim: i64, cfg: &ResnetGeneratorConfig) -> Self {
        let b = p / "conv_block";
        let bias = cfg.norm.conv_bias();
        // A padding layer takes one index in the reference; zero padding lives inside the conv.
        let (mode, pad_layer) = match cfg.padding {
            Padding::Reflect => (nn::PaddingMode::Reflect, 1),
            Padding::Replicate => (nn::PaddingMode::Replicate, 1),
            Padding::Zero => (nn::PaddingMode::Zeros, 0),
        };
        let mut idx = pad_layer;
        let conv1 = conv(&(&b / idx), dim, dim, 3, 1, 1, mode, bias);
        let norm1 = NormLayer::new(&(&b / (idx + 1)), cfg.norm, dim);
        idx += 3; // conv, norm, ReLU
        let dropout = cfg.dropout.then(|| {
            idx += 1;
            SeededDropout {
                rng: Mutex::new(derived_rng(0, &b.path("dropout"), 0)),
            }
        });
        idx += pad_layer;
        let conv2 = conv(&(&b / idx), dim, dim, 3, 1, 1, mode, bias);
        let norm2 = NormLayer::new(&(&b / (idx + 1)), cfg.norm, dim);
        ResnetBlock {
            conv1,
            norm1,
            dropout,
            conv2,
            norm2,
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = self.conv1.forward_t(x, train); // (N, D, H, W), padding 1 then 3×3
        h = relu(&self.norm1.forward_t(&h, train)); // same
        if let Some(d) = &self.dropout {
            h = d.forward_t(&h, train); // same
        }
        h = self.conv2.forward_t(&h, train); // same
        x + self.norm2.forward_t(&h, train) // (N, D, H, W)
    }
}

/// The CycleGAN ResNet generator: (N, C_in, H, W) → (N, C_out, H, W) in [-1, 1], for H and W divisible
/// by 4 (and at least 4, for the reflection padding of the bottleneck).
///
/// c7s1-ngf, d(2·ngf), d(4·ngf), n_blocks × R(4·ngf), u(2·ngf), u(ngf), c7s1-C_out (paper appendix 7.2).
#[derive(Debug)]
pub struct ResnetGenerator {
    stem: nn::Conv2D,
    stem_norm: NormLayer,
    down: Vec<(nn::Conv2D, NormLayer, Option<Downsample>)>,
    blocks: Vec<ResnetBlock>,
    up: Vec<(Up, NormLayer)>,
    head: nn::Conv2D,
}

/// One upsampling of G: a transposed conv (CycleGAN), or the CUT code's blur upsampling and a 3×3 conv.
#[derive(Debug)]
enum Up {
    Transposed(nn::ConvTranspose2D),
    Blurred(Upsample, nn::Conv2D),
}

impl ResnetGenerator {
    /// Builds G under `p`; variables are named like the reference `ResnetGenerator`'s state_dict
    /// (`model.1.weight`, `model.10.conv_block.1.weight`, ...).
    pub fn new(
        p: &nn::Path,
        cfg: &ResnetGeneratorConfig,
        in_channels: i64,
        out_channels: i64,
    ) -> Result<Self> {
        let problems = cfg.check(in_channels, out_channels);
        if !problems.is_empty() {
            return Err(ModelError::Config(problems.join("; ")));
        }
        let m = p / "model";
        let bias = cfg.norm.conv_bias();
        let ngf = cfg.ngf;
        let reflect = nn::PaddingMode::Reflect;
        // 0: ReflectionPad2d(3), 1: conv 7×7, 2: norm, 3: ReLU.
        let stem = conv(&(&m / 1), in_channels, ngf, 7, 1, 3, reflect, bias);
        let stem_norm = NormLayer::new(&(&m / 2), cfg.norm, ngf);
        let mut idx = 4usize;
        let mut down = Vec::with_capacity(2);
        for i in 0..2 {
            let c = ngf << i;
            let zeros = nn::PaddingMode::Zeros;
            let stride = if cfg.antialias { 1 } else { 2 };
            let cv = conv(&(&m / idx), c, 2 * c, 3, stride, 1, zeros, bias);
            let norm = NormLayer::new(&(&m / (idx + 1)), cfg.norm, 2 * c);
            // conv, norm, ReLU (and the blur's stride 2)
            let blur = cfg.antialias.then(|| Downsample::new(&(&m / (idx + 3)), 2 * c));
            down.push((cv, norm, blur));
            idx += if cfg.antialias { 4 } else { 3 };
        }
        let blocks = (0..cfg.n_blocks)
            .map(|_| {
                idx += 1;
                ResnetBlock::new(&(&m / (idx - 1)), 4 * ngf, cfg)
            })
            .collect();
        let mut up = Vec::with_capacity(2);
        for i in 0..2 {
            let c = ngf << (2 - i);
            if cfg.antialias_up {
                // Upsample, conv 3×3, norm, ReLU
                let blur = Upsample::new(&(&m / idx), c);
                let cv = conv(&(&m / (idx + 1)), c, c / 2, 3, 1, 1, nn::PaddingMode::Zeros, bias);
                up.push((Up::Blurred(blur, cv), NormLayer::new(&(&m / (idx + 2)), cfg.norm, c / 2)));
                idx += 4;
            } else {
                let tcfg = nn::ConvTransposeConfig {
                    stride: 2,
                    padding: 1,
                    output_padding: 1,
                    bias,
                    ..Default::default()
                };
                let ct = nn::conv_transpose2d(&m / idx, c, c / 2, 3, tcfg);
                up.push((Up::Transposed(ct), NormLayer::new(&(&m / (idx + 1)), cfg.norm, c / 2)));
                idx += 3; // conv transpose, norm, ReLU
            }
        }
        // idx: ReflectionPad2d(3), idx + 1: conv 7×7 (always biased), idx + 2: Tanh.
        let head = conv(&(&m / (idx + 1)), ngf, out_channels, 7, 1, 3, reflect, true);
        Ok(ResnetGenerator {
            stem,
            stem_norm,
            down,
            blocks,
            up,
            head,
        })
    }

    /// x: (N, C_in, H, W) → (N, C_out, H, W) in [-1, 1]. `train` matters for batch norm and dropout only.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = self.encode(x, train, &[], &mut Vec::new()); // (N, 4ngf, H/4, W/4)
        for (up, norm) in &self.up {
            h = match up {
                Up::Transposed(ct) => ct.forward_t(&h, train), // (N, 2ngf, H/2, W/2), then (N, ngf, H, W)
                Up::Blurred(b, cv) => cv.forward_t(&b.forward(&h), train), // same
            };
            h = relu(&norm.forward_t(&h, train)); // same
        }
        self.head.forward_t(&h, train).tanh() // (N, C_out, H, W) in [-1, 1]
    }

    /// The encoder and the residual blocks, layer by layer in the reference `nn.Sequential`'s order: the output
    /// of each index in `layers` (0: the reflection-padded input) is pushed onto `out`, and the walk stops after
    /// the largest. Returns the last output computed (the blocks' output when `layers` is empty).
    fn encode(&self, x: &Tensor, train: bool, layers: &[usize], out: &mut Vec<Tensor>) -> Tensor {
        let last = layers.iter().max().copied();
        if layers.contains(&0) {
            out.push(x.reflection_pad2d([3, 3, 3, 3])); // 0: (N, C_in, H + 6, W + 6)
        }
        if last == Some(0) {
            return x.shallow_clone();
        }
        let mut idx = 0usize;
        // After each layer: keeps its output when asked for; true once the largest index asked for is reached.
        let mut tap = |h: &Tensor| {
            idx += 1;
            if layers.contains(&idx) {
                out.push(h.shallow_clone());
            }
            Some(idx) == last
        };
        let mut h = self.stem.forward_t(x, train); // 1: (N, ngf, H, W), reflect pad 3 then 7×7
        if tap(&h) {
            return h;
        }
        h = self.stem_norm.forward_t(&h, train); // 2: same
        if tap(&h) {
            return h;
        }
        h = relu(&h); // 3: same
        if tap(&h) {
            return h;
        }
        for (cv, norm, blur) in &self.down {
            h = cv.forward_t(&h, train); // (N, 2c, H', W') = (N, 2ngf, H/2, W/2), then (N, 4ngf, H/4, W/4) (antialias: at the input's side)
            if tap(&h) {
                return h;
            }
            h = norm.forward_t(&h, train); // same
            if tap(&h) {
                return h;
            }
            h = relu(&h); // same
            if tap(&h) {
                return h;
            }
            if let Some(b) = blur {
                h = b.forward(&h); // (N, 2c, side/2, side/2)
                if tap(&h) {
                    return h;
                }
            }
        }
        for block in &self.blocks {
            h = block.forward_t(&h, train); // (N, 4ngf, H/4, W/4)
            if tap(&h) {
                return h;
            }
        }
        h
    }

    /// The outputs of the reference `nn.Sequential` at `layers` (ascending indices into the encoder and the
    /// residual blocks, see [`ResnetGeneratorConfig::encoder_channels`]; 0 is the reflection-padded input), as
    /// the CUT code's `netG(x, nce_layers, encode_only=True)` returns them: the features PatchNCE compares.
    /// Runs only as far as the last index asked for.
    pub fn features(&self, x: &Tensor, layers: &[usize], train: bool) -> Result<Vec<Tensor>> {
        let end = 3 + self.down.iter().map(|d| if d.2.is_some() { 4 } else { 3 }).sum::<usize>() + self.blocks.len();
        if let Some(&l) = layers.iter().find(|&&l| l > end) {
            return Err(ModelError::Config(format!("feature layer {l} is past the residual blocks (the last is {end})")));
        }
        let mut out = Vec::with_capacity(layers.len());
        let _deepest = self.encode(x, train, layers, &mut out); // what was asked for is in `out`
        Ok(out)
    }
}

impl nn::ModuleT for ResnetGenerator {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        ResnetGenerator::forward_t(self, xs, train) // (N, C_in, H, W) -> (N, C_out, H, W)
    }
}

/// PatchGAN discriminator settings (the reference's `--netD basic|n_layers`, `--n_layers_D`, `--ndf`,
/// `--norm`). Defaults are CycleGAN's 70×70 PatchGAN.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PatchDiscriminatorConfig {
    /// Width of the first conv; each later conv doubles it, capped at 8·ndf.
    pub ndf: i64,
    /// Number of stride-2 convs (3 gives 70×70 receptive fields).
    pub n_layers: i64,
    /// `instance` (no affine parameters, as the reference), `batch` or `none`.
    pub norm: Norm,
    /// Anti-aliased downsampling (the CUT code's default): each stride-2 conv becomes a stride-1 conv,
    /// (norm,) LeakyReLU and a binomial blur with stride 2.
    pub antialias: bool,
}

impl Default for PatchDiscriminatorConfig {
    fn default() -> Self {
        PatchDiscriminatorConfig {
            ndf: 64,
            n_layers: 3,
            norm: Norm::Instance,
            antialias: false,
        }
    }
}

impl PatchDiscriminatorConfig {
    /// Every problem building D for `in_channels` would hit (empty when fine).
    pub fn check(&self, in_channels: i64) -> Vec<String> {
        let mut p = vec![];
        if self.ndf < 1 {
            p.push(format!(
                "patch discriminator ndf must be >= 1, got {}",
                self.ndf
            ));
        }
        if !(1..=16).contains(&self.n_layers) {
            p.push(format!(
                "patch discriminator n_layers must be in 1..=16, got {}",
                self.n_layers
            ));
        }
        if in_channels < 1 {
            p.push(format!(
                "patch discriminator channels must be >= 1, got {in_channels}"
            ));
        }
        p
    }

    /// The side of D's output map for an input of side `size` (30 for 256 with n_layers 3), or `None`
    /// when the input is too small for the network.
    pub fn output_size(&self, size: i64) -> Option<i64> {
        let mut s = size;
        for _ in 0..self.n_layers {
            s = if self.antialias {
                (s - 2).div_euclid(2) + 1 // 4×4 stride 1 padding 1 (side − 1), then the blur: reflect pad 1, 3×3, stride 2
            } else {
                (s + 2 - 4) / 2 + 1 // 4×4, stride 2, padding 1
            };
            if s < 1 {
                return None;
            }
        }
        s -= 2; // two 4×4, stride 1, padding 1 convs, each shrinking by 1
        (s >= 1).then_some(s)
    }

    /// Builds D under `p`, spectrally normalized when `spectral_norm` (see [`PatchDiscriminator::new`]).
    pub fn build(
        &self,
        p: &nn::Path,
        in_channels: i64,
        spectral_norm: bool,
    ) -> Result<PatchDiscriminator> {
        PatchDiscriminator::new(p, self, in_channels, spectral_norm)
    }
}

/// One level of the PatchGAN: its conv, the norm after it (none on the first), the anti-aliasing blur (if any).
type DLayer = (Box<dyn ModuleT>, Option<NormLayer>, Option<Downsample>);

/// The PatchGAN discriminator: (N, C, H, W) → (N, 1, H', W') raw scores, one per overlapping patch
/// (Isola et al. 2017; CycleGAN uses it with LSGAN targets on every patch).
#[derive(Debug)]
pub struct PatchDiscriminator {
    layers: Vec<DLayer>,
    last: Box<dyn ModuleT>,
}

impl PatchDiscriminator {
    /// Builds D under `p`; variables are named like the reference `NLayerDiscriminator`'s state_dict
    /// (`model.0.weight`, `model.2.weight`, ...). With `spectral_norm` every convolution, the first and
    /// the last included, is spectrally normalized (Miyato et al. 2018) and named as
    /// `torch.nn.utils.spectral_norm` names it (`model.0.weight_orig`, `model.0.weight_u`,
    /// `model.0.weight_v`, `model.0.bias`).
    pub fn new(
        p: &nn::Path,
        cfg: &PatchDiscriminatorConfig,
        in_channels: i64,
        spectral_norm: bool,
    ) -> Result<Self> {
        let problems = cfg.check(in_channels);
        if !problems.is_empty() {
            return Err(ModelError::Config(problems.join("; ")));
        }
        let m = p / "model";
        let sn = spectral_norm;
        let ndf = cfg.ndf;
        let bias = cfg.norm.conv_bias();
        // 0: conv 4×4 s2 (biased, no norm), 1: LeakyReLU; antialias: conv s1, LeakyReLU, 2: blur s2.
        let aa = cfg.antialias;
        let first = spectral::conv2d(&(&m / 0), in_channels, ndf, 4, if aa { 1 } else { 2 }, 1, true, sn);
        let mut layers = vec![(first, None, aa.then(|| Downsample::new(&(&m / 2), ndf)))];
        let mut idx = if aa { 3 } else { 2 };
        let mut c_in = ndf;
        for n in 1..=cfg.n_layers {
            let c_out = ndf * (1i64 << n.min(3)); // ndf · min(2^n, 8)
            let down = n < cfg.n_layers;
            let stride = if down && !aa { 2 } else { 1 };
            let cv = spectral::conv2d(&(&m / idx), c_in, c_out, 4, stride, 1, bias, sn);
            let norm = NormLayer::new(&(&m / (idx + 1)), cfg.norm, c_out);
            let blur = (down && aa).then(|| Downsample::new(&(&m / (idx + 3)), c_out));
            idx += if blur.is_some() { 4 } else { 3 }; // conv, norm, LeakyReLU (, blur)
            layers.push((cv, Some(norm), blur));
            c_in = c_out;
        }
        let last = spectral::conv2d(&(&m / idx), c_in, 1, 4, 1, 1, true, sn);
        Ok(PatchDiscriminator { layers, last })
    }

    /// x: (N, C, H, W) → (N, 1, H', W') raw patch scores (30×30 for 256×256 with n_layers 3).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = x.shallow_clone(); // (N, C, H, W)
        for (cv, norm, blur) in &self.layers {
            h = cv.forward_t(&h, train); // (N, c, H/2^k, W/2^k) for stride 2, then side - 1 for stride 1
            if let Some(norm) = norm {
                h = norm.forward_t(&h, train); // same
            }
            h = leaky_relu(&h); // same
            if let Some(b) = blur {
                h = b.forward(&h); // (N, c, side/2 + …): the anti-aliased stride 2
            }
        }
        self.last.forward_t(&h, train) // (N, 1, H', W'), side - 1 again
    }
}

impl nn::ModuleT for PatchDiscriminator {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        PatchDiscriminator::forward_t(self, xs, train) // (N, C, H, W) -> (N, 1, H', W')
    }
}

fn shape_str(s: &[i64]) -> String {
    format!("{s:?}")
}

/// Copies named tensors (e.g. a reference PyTorch state_dict read with `Tensor::read_safetensors`) into
/// the variables of `vs` with the same names, converting to each variable's dtype and device.
///
/// All names and shapes are checked before anything is copied: when any variable of the store is missing
/// from `tensors`, any tensor has no variable of that name, or a shape differs, nothing is loaded and the
/// [`ModelError::State`] error lists each such tensor by name and shape. PyTorch's BatchNorm
/// `*.num_batches_tracked` counters have no tch counterpart and are ignored. Covers trainable and
/// non-trainable variables (BatchNorm running statistics).
pub fn load_named_tensors(vs: &nn::VarStore, tensors: &[(String, Tensor)]) -> Result<()> {
    let vars = vs.variables();
    let mut given: HashMap<&str, &Tensor> = HashMap::new();
    let mut problems = vec![];
    for (name, t) in tensors {
        if name.ends_with(".num_batches_tracked") {
            continue;
        }
        if given.insert(name.as_str(), t).is_some() {
            problems.push(format!("duplicate {name}"));
        }
    }
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in &names {
        let want = vars[*name].size();
        match given.get(name.as_str()) {
            None => problems.push(format!("missing {name} {}", shape_str(&want))),
            Some(t) if t.size() != want => problems.push(format!(
                "mis-shaped {name}: store {}, given {}",
                shape_str(&want),
                shape_str(&t.size())
            )),
            Some(_) => {}
        }
    }
    let known: HashSet<&str> = vars.keys().map(String::as_str).collect();
    let mut unexpected: Vec<(&str, &Tensor)> = given
        .iter()
        .filter(|(n, _)| !known.contains(**n))
        .map(|(n, t)| (*n, *t))
        .collect();
    unexpected.sort_by(|a, b| a.0.cmp(b.0));
    for (name, t) in unexpected {
        problems.push(format!("unexpected {name} {}", shape_str(&t.size())));
    }
    if !problems.is_empty() {
        return Err(ModelError::State(format!(
            "cannot load named tensors, nothing was loaded ({} problem(s)): {}",
            problems.len(),
            problems.join("; ")
        )));
    }
    tch::no_grad(|| -> Result<()> {
        for name in names {
            let mut dst = vars[name].shallow_clone();
            let src = given[name.as_str()];
            let src = if src.kind() == dst.kind() {
                src.shallow_clone()
            } else {
                src.to_kind(dst.kind())
            };
            dst.f_copy_(&src).map_err(|e| ModelError::Torch {
                context: format!("copying {name}"),
                source: e,
            })?;
        }
        Ok(())
    })
}
