//! pix2pix networks (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks",
//! §3.2 and §6.1.1): the U-Net generator; the discriminator is CycleGAN's PatchGAN
//! ([`crate::cyclegan::PatchDiscriminator`]) on the (input, output) pair stacked along the channels.
//!
//! The layout follows the authors' reference implementation (junyanz/pytorch-CycleGAN-and-pix2pix,
//! `models/networks.py`: `UnetGenerator`, `UnetSkipConnectionBlock`). Variable names are its state_dict keys:
//! each level is a `UnetSkipConnectionBlock` whose `model` is an `nn.Sequential` — outermost
//! `[downconv, submodule, ReLU, upconv, Tanh]`, innermost `[LeakyReLU, downconv, ReLU, upconv, upnorm]`, the
//! others `[LeakyReLU, downconv, downnorm, submodule, ReLU, upconv, upnorm, (Dropout)]` — so the innermost
//! convolution of `unet_256` is `model.model.1.model.3.model.3.model.3.model.3.model.3.model.3.model.1`. With
//! ngf = 64, 3 → 3 channels and batch norm the parameter counts equal the reference's: 54,413,955 (`unet_256`,
//! 8 levels), 41,828,995 (`unet_128`, 7 levels); pix2pix's D on 6 channels 2,768,705.
//!
//! Dropout(0.5) follows the up-convolution of the `num_downs − 5` levels just above the innermost one (the
//! paper's "noise in the form of dropout", §3.1). Its masks come from an RNG the caller passes in, so a run
//! draws the same noise when resumed. The reference applies its downward LeakyReLU in place, so its skip
//! connection carries LeakyReLU(x) rather than x; both are read only through the next level's ReLU, where they
//! are equal (values and gradients), and x is used here.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::nn::Module;
use tch::{nn, Tensor};

use crate::cyclegan::{conv, Norm, NormLayer};
use crate::error::{ModelError, Result};
use crate::rng::uniform;

/// U-Net generator settings (the reference's `--netG unet_256|unet_128`, `--ngf`, `--norm`, `--no_dropout`).
/// Defaults are pix2pix's at 256×256.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UnetGeneratorConfig {
    /// Width of the outermost level; each level below doubles it, capped at 8·ngf.
    pub ngf: i64,
    /// Down-samplings from the image to the 1×1 bottleneck: 8 for 256×256 (`unet_256`), 7 for 128×128
    /// (`unet_128`); at least 5. The image side must be a multiple of 2^num_downs.
    pub num_downs: i64,
    /// Batch norm in pix2pix (its convolutions then have no bias, as in the reference).
    pub norm: Norm,
    /// Dropout(0.5) in the `num_downs − 5` decoder levels above the innermost one.
    pub dropout: bool,
}

impl Default for UnetGeneratorConfig {
    fn default() -> Self {
        UnetGeneratorConfig { ngf: 64, num_downs: 8, norm: Norm::Batch, dropout: true }
    }
}

impl UnetGeneratorConfig {
    /// The reference's `unet_256`.
    pub fn unet_256() -> Self {
        Self::default()
    }

    /// The reference's `unet_128`.
    pub fn unet_128() -> Self {
        UnetGeneratorConfig { num_downs: 7, ..Self::default() }
    }

    /// Every problem building G with `in_channels` → `out_channels` would hit (empty when fine).
    pub fn check(&self, in_channels: i64, out_channels: i64) -> Vec<String> {
        let mut p = vec![];
        if self.ngf < 1 {
            p.push(format!("unet generator ngf must be >= 1, got {}", self.ngf));
        }
        if !(5..=12).contains(&self.num_downs) {
            p.push(format!("unet generator num_downs must be in 5..=12, got {}", self.num_downs));
        }
        if in_channels < 1 || out_channels < 1 {
            p.push(format!("unet generator channels must be >= 1, got {in_channels} -> {out_channels}"));
        }
        p
    }

    /// The image sides G accepts are the multiples of this (2^num_downs: the bottleneck is 1×1 at the least).
    pub fn side_multiple(&self) -> i64 {
        1 << self.num_downs.clamp(0, 30)
    }

    /// Builds G under `p` (see [`UnetGenerator::new`]).
    pub fn build(&self, p: &nn::Path, in_channels: i64, out_channels: i64) -> Result<UnetGenerator> {
        UnetGenerator::new(p, self, in_channels, out_channels)
    }
}

/// How G runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// Training: batch statistics (the running averages updated), dropout with the given noise.
    Train,
    /// The paper's test time (§6.1.1, the reference's `test.py` without `--eval`): batch statistics of the
    /// test batch, dropout with the given noise; the running averages are left as they are.
    Test,
    /// Evaluation mode: running averages, no dropout.
    Eval,
}

impl Run {
    fn norm(self, n: &NormLayer, x: &Tensor) -> Tensor {
        match self {
            Run::Train => n.forward_t(x, true),
            Run::Test => n.forward_untracked(x),
            Run::Eval => n.forward_t(x, false),
        }
    }
}

/// Where a level sits: the outermost has no norm and ends in tanh; the innermost has no submodule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Outermost,
    Middle,
    Innermost,
}

/// One `UnetSkipConnectionBlock`: down-convolution, the levels below, up-convolution, and (but for the
/// outermost) the skip connection.
#[derive(Debug)]
struct UnetBlock {
    level: Level,
    down: nn::Conv2D,
    down_norm: Option<NormLayer>,
    inner: Option<Box<UnetBlock>>,
    up: nn::ConvTranspose2D,
    up_norm: Option<NormLayer>,
    dropout: bool,
}

impl UnetBlock {
    #[allow(clippy::too_many_arguments)]
    fn new(p: &nn::Path, level: Level, outer_nc: i64, inner_nc: i64, input_nc: i64, inner: Option<UnetBlock>, norm: Norm, dropout: bool) -> Self {
        let m = p / "model";
        let bias = norm.conv_bias();
        let zeros = nn::PaddingMode::Zeros;
        let tcfg = |bias| nn::ConvTransposeConfig { stride: 2, padding: 1, bias, ..Default::default() };
        match level {
            // [downconv, submodule, ReLU, upconv, Tanh]
            Level::Outermost => UnetBlock {
                level,
                down: conv(&(&m / 0), input_nc, inner_nc, 4, 2, 1, zeros, bias),
                down_norm: None,
                inner: inner.map(Box::new),
                up: nn::conv_transpose2d(&m / 3, inner_nc * 2, outer_nc, 4, tcfg(true)),
                up_norm: None,
                dropout: false,
            },
            // [LeakyReLU, downconv, ReLU, upconv, upnorm]
            Level::Innermost => UnetBlock {
                level,
                down: conv(&(&m / 1), input_nc, inner_nc, 4, 2, 1, zeros, bias),
                down_norm: None,
                inner: None,
                up: nn::conv_transpose2d(&m / 3, inner_nc, outer_nc, 4, tcfg(bias)),
                up_norm: Some(NormLayer::new(&(&m / 4), norm, outer_nc)),
                dropout: false,
            },
            // [LeakyReLU, downconv, downnorm, submodule, ReLU, upconv, upnorm, (Dropout)]
            Level::Middle => UnetBlock {
                level,
                down: conv(&(&m / 1), input_nc, inner_nc, 4, 2, 1, zeros, bias),
                down_norm: Some(NormLayer::new(&(&m / 2), norm, inner_nc)),
                inner: inner.map(Box::new),
                up: nn::conv_transpose2d(&m / 5, inner_nc * 2, outer_nc, 4, tcfg(bias)),
                up_norm: Some(NormLayer::new(&(&m / 6), norm, outer_nc)),
                dropout,
            },
        }
    }

    /// x: (N, C_in, S, S) → (N, C_in + outer_nc, S, S) (outermost: (N, outer_nc, S, S) in [-1, 1]).
    fn forward(&self, x: &Tensor, run: Run, noise: &mut Option<&mut ChaCha8Rng>) -> Tensor {
        let h = match self.level {
            Level::Outermost => x.shallow_clone(),
            _ => crate::nets::leaky_relu(x, 0.2), // (N, C_in, S, S)
        };
        let mut h = self.down.forward(&h); // (N, inner_nc, S/2, S/2)
        if let Some(n) = &self.down_norm {
            h = run.norm(n, &h); // same
        }
        if let Some(inner) = &self.inner {
            h = inner.forward(&h, run, noise); // (N, 2·inner_nc, S/2, S/2)
        }
        h = self.up.forward(&h.relu()); // (N, outer_nc, S, S)
        if let Some(n) = &self.up_norm {
            h = run.norm(n, &h); // same
        }
        if self.dropout && run != Run::Eval {
            if let Some(rng) = noise.as_deref_mut() {
                let keep = uniform(rng, &h.size(), 0.0, 1.0, h.device()).ge(0.5).to_kind(h.kind()); // (N, outer_nc, S, S) of 0/1
                h = h * keep * 2.0; // kept values scaled by 1/(1 − 0.5)
            }
        }
        match self.level {
            Level::Outermost => h.tanh(),           // (N, outer_nc, S, S) in [-1, 1]
            _ => Tensor::cat(&[x, &h], 1), // (N, C_in + outer_nc, S, S)
        }
    }
}

/// The pix2pix U-Net generator: (N, C_in, H, W) → (N, C_out, H, W) in [-1, 1], for H and W multiples of
/// 2^num_downs. Encoder C64-C128-C256-C512-C512-C512-C512-C512, decoder CD512-CD512-CD512-C512-C256-C128-C64
/// with skip connections between mirrored levels (paper §6.1.1, for 256×256 and ngf 64).
#[derive(Debug)]
pub struct UnetGenerator {
    top: UnetBlock,
}

impl UnetGenerator {
    /// Builds G under `p`; variables are named like the reference `UnetGenerator`'s state_dict
    /// (`model.model.0.weight`, `model.model.1.model.1.weight`, …).
    pub fn new(p: &nn::Path, cfg: &UnetGeneratorConfig, in_channels: i64, out_channels: i64) -> Result<Self> {
        let problems = cfg.check(in_channels, out_channels);
        if !problems.is_empty() {
            return Err(ModelError::Config(problems.join("; ")));
        }
        let ngf = cfg.ngf;
        // The reference builds from the innermost level outwards; here the paths are known top-down, so the
        // levels' paths are made first: the submodule is item 1 of the outermost level's `model`, item 3 of
        // a middle level's.
        let mut paths = vec![p / "model"];
        for k in 1..cfg.num_downs {
            let next = &(paths.last().expect("one path at least") / "model") / if k == 1 { 1 } else { 3 };
            paths.push(next);
        }
        let n = cfg.num_downs as usize;
        // (outer_nc, inner_nc) of each level from the top: ngf→…, then 8·ngf all the way down.
        let widths: Vec<(i64, i64)> = (0..n)
            .map(|k| match k {
                0 => (out_channels, ngf),
                1 => (ngf, 2 * ngf),
                2 => (2 * ngf, 4 * ngf),
                3 => (4 * ngf, 8 * ngf),
                _ => (8 * ngf, 8 * ngf),
            })
            .collect();
        let mut block: Option<UnetBlock> = None;
        for k in (0..n).rev() {
            let (outer, inner) = widths[k];
            let level = if k == 0 {
                Level::Outermost
            } else if k == n - 1 {
                Level::Innermost
            } else {
                Level::Middle
            };
            // Dropout in the num_downs − 5 levels just above the innermost (the reference's middle loop).
            let dropout = cfg.dropout && k >= 4 && k < n - 1;
            let input_nc = if k == 0 { in_channels } else { outer };
            block = Some(UnetBlock::new(&paths[k], level, outer, inner, input_nc, block.take(), cfg.norm, dropout));
        }
        Ok(UnetGenerator { top: block.expect("num_downs >= 5 levels") })
    }

    /// x: (N, C_in, H, W) → (N, C_out, H, W) in [-1, 1]. Dropout (where configured) draws its masks from
    /// `noise` in [`Run::Train`] and [`Run::Test`]; without `noise` there is no dropout.
    pub fn forward(&self, x: &Tensor, run: Run, noise: Option<&mut ChaCha8Rng>) -> Tensor {
        let mut noise = noise;
        self.top.forward(x, run, &mut noise) // (N, C_out, H, W)
    }
}
