//! DCGAN generator and discriminator (Radford et al. 2016) for 28×28, 32×32 and 64×64 images.
//!
//! The layout follows the PyTorch DCGAN example (`pytorch/examples/dcgan/main.py`): variable names are its
//! `nn.Sequential` state_dict keys (`main.{index}.weight`, BN `main.{index}.running_mean`, ...), counting
//! activations in the index, and with the defaults at 64×64 (ngf = ndf = 64, nz = 100, 3 channels) the
//! parameter counts equal the example's: G 3,576,704, D 2,765,568.
//!
//! G: z (N, nz, 1, 1) -> ConvTranspose2d(nz, ngf·2^(n-1), base, 1, 0) to base×base -> n-1 stages of
//! ConvTranspose2d(4, 2, 1) halving channels, each followed by BN + ReLU -> ConvTranspose2d(4, 2, 1) to C
//! channels -> tanh. base = 4, n = 4 (64) or 3 (32); base = 7, n = 2 (28).
//! D mirrors it: Conv2d(4, 2, 1) + LeakyReLU(0.2) stages (BN from the 2nd), then Conv2d(base, 1, 0) to one
//! score. Convolutions have no bias when batch norm is on (as the example); with `batch_norm: false` every
//! conv except the last D conv gets a bias.

use serde::{Deserialize, Serialize};
use tch::{nn, nn::ModuleT, Tensor};

use crate::error::{ModelError, Result};
use crate::base::{leaky_relu, DataShape, Discriminator, Generator};
use crate::spectral;

/// Image sizes the DCGAN layout supports.
pub const DCGAN_SIZES: [i64; 3] = [28, 32, 64];

/// (base spatial size, number of stride-2 stages) for a supported image size.
pub(crate) fn layout(size: i64) -> Option<(i64, usize)> {
    match size {
        28 => Some((7, 2)),
        32 => Some((4, 3)),
        64 => Some((4, 4)),
        _ => None,
    }
}

fn check_image(shape: &DataShape, width_name: &str, width: i64) -> Vec<String> {
    let mut p = vec![];
    if shape.height != shape.width {
        p.push(format!(
            "dcgan needs square images, got {}x{}",
            shape.height, shape.width
        ));
    } else if layout(shape.height).is_none() {
        p.push(format!(
            "dcgan image size must be one of {:?}, got {}",
            DCGAN_SIZES, shape.height
        ));
    }
    if width < 1 {
        p.push(format!("dcgan {width_name} must be >= 1, got {width}"));
    }
    p
}

/// Batch-norm settings with PyTorch's defaults (weight 1, bias 0), not tch's uniform(0, 1) weight.
pub(crate) fn pytorch_bn() -> nn::BatchNormConfig {
    nn::BatchNormConfig { ws_init: nn::Init::Const(1.0), bs_init: nn::Init::Const(0.0), ..Default::default() }
}

pub(crate) fn bn(p: &nn::Path, c: i64) -> crate::base::BatchNorm {
    crate::base::batch_norm2d(p, c, pytorch_bn())
}

/// DCGAN generator settings.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DcganGConfig {
    /// Width of the last hidden stage (the example's `ngf`); earlier stages double it.
    pub ngf: i64,
    /// Batch norm after every hidden transposed conv.
    pub batch_norm: bool,
}

impl Default for DcganGConfig {
    fn default() -> Self {
        DcganGConfig {
            ngf: 64,
            batch_norm: true,
        }
    }
}

impl DcganGConfig {
    /// Every problem building G for `out` would hit.
    pub fn check(&self, out: &DataShape) -> Vec<String> {
        let mut p = out.check();
        p.extend(check_image(out, "ngf", self.ngf));
        p
    }
}

/// DCGAN discriminator settings.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DcganDConfig {
    /// Width of the first stage (the example's `ndf`); later stages double it.
    pub ndf: i64,
    /// Batch norm after every conv but the first (off for a WGAN-GP critic).
    pub batch_norm: bool,
}

impl Default for DcganDConfig {
    fn default() -> Self {
        DcganDConfig {
            ndf: 64,
            batch_norm: true,
        }
    }
}

impl DcganDConfig {
    /// Every problem building D for `input` would hit.
    pub fn check(&self, input: &DataShape) -> Vec<String> {
        let mut p = input.check();
        p.extend(check_image(input, "ndf", self.ndf));
        p
    }
}

struct GStage {
    conv: nn::ConvTranspose2D,
    bn: Option<crate::base::BatchNorm>,
}

/// The DCGAN generator: z (N, nz) -> (N, C, S, S) in [-1, 1].
pub struct DcganGenerator {
    stages: Vec<GStage>,
    last: nn::ConvTranspose2D,
    z_dim: i64,
}

impl DcganGenerator {
    pub fn new(p: &nn::Path, cfg: &DcganGConfig, z_dim: i64, out: &DataShape) -> Result<Self> {
        let mut problems = cfg.check(out);
        if z_dim < 1 {
            problems.push(format!("z_dim must be >= 1, got {z_dim}"));
        }
        let (base, n) = match (problems.is_empty(), layout(out.height)) {
            (true, Some(l)) => l,
            _ => return Err(ModelError::Config(problems.join("; "))),
        };
        let main = p / "main";
        let mut idx = 0usize;
        let mut stages = Vec::with_capacity(n);
        let mut c_in = z_dim;
        for s in 0..n {
            let c_out = cfg.ngf << (n - 1 - s);
            let (k, stride, pad) = if s == 0 { (base, 1, 0) } else { (4, 2, 1) };
            let conv_cfg = nn::ConvTransposeConfig {
                stride,
                padding: pad,
                bias: !cfg.batch_norm,
                ..Default::default()
            };
            let conv = nn::conv_transpose2d(&main / idx, c_in, c_out, k, conv_cfg);
            idx += 1;
            let bn = cfg.batch_norm.then(|| {
                idx += 1;
                bn(&(&main / (idx - 1)), c_out)
            });
            idx += 1; // ReLU
            stages.push(GStage { conv, bn });
            c_in = c_out;
        }
        let last_cfg = nn::ConvTransposeConfig {
            stride: 2,
            padding: 1,
            bias: !cfg.batch_norm,
            ..Default::default()
        };
        let last = nn::conv_transpose2d(&main / idx, c_in, out.channels, 4, last_cfg);
        Ok(DcganGenerator {
            stages,
            last,
            z_dim,
        })
    }
}

impl Generator for DcganGenerator {
    fn forward_t(&self, z: &Tensor, train: bool) -> Tensor {
        let n = z.size()[0];
        let mut h = z.reshape([n, self.z_dim, 1, 1]); // (N, nz, 1, 1)
        for st in &self.stages {
            h = st.conv.forward_t(&h, train); // (N, ngf·2^k, s, s): base, then doubling
            if let Some(bn) = &st.bn {
                h = bn.forward_t(&h, train); // same shape
            }
            h = h.relu(); // same shape
        }
        self.last.forward_t(&h, train).tanh() // (N, C, S, S) in [-1, 1]
    }

    fn z_dim(&self) -> i64 {
        self.z_dim
    }
}

struct DStage {
    conv: Box<dyn ModuleT>,
    bn: Option<crate::base::BatchNorm>,
}

/// The DCGAN discriminator: (N, C, S, S) -> (N,) logits.
pub struct DcganDiscriminator {
    stages: Vec<DStage>,
    last: Box<dyn ModuleT>,
}

impl DcganDiscriminator {
    pub fn new(
        p: &nn::Path,
        cfg: &DcganDConfig,
        input: &DataShape,
        spectral_norm: bool,
    ) -> Result<Self> {
        let problems = cfg.check(input);
        let (base, n) = match (problems.is_empty(), layout(input.height)) {
            (true, Some(l)) => l,
            _ => return Err(ModelError::Config(problems.join("; "))),
        };
        let main = p / "main";
        let mut idx = 0usize;
        let mut stages = Vec::with_capacity(n);
        let mut c_in = input.channels;
        for s in 0..n {
            let c_out = cfg.ndf << s;
            let use_bn = cfg.batch_norm && s > 0;
            let conv = spectral::conv2d(
                &(&main / idx),
                c_in,
                c_out,
                4,
                2,
                1,
                !cfg.batch_norm,
                spectral_norm,
            );
            idx += 1;
            let bn = use_bn.then(|| {
                idx += 1;
                bn(&(&main / (idx - 1)), c_out)
            });
            idx += 1; // LeakyReLU
            stages.push(DStage { conv, bn });
            c_in = c_out;
        }
        let last = spectral::conv2d(&(&main / idx), c_in, 1, base, 1, 0, false, spectral_norm);
        Ok(DcganDiscriminator { stages, last })
    }
}

impl Discriminator for DcganDiscriminator {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let n = x.size()[0];
        let mut h = x.shallow_clone(); // (N, C, S, S)
        for st in &self.stages {
            h = st.conv.forward_t(&h, train); // (N, ndf·2^k, S/2^(k+1), S/2^(k+1))
            if let Some(bn) = &st.bn {
                h = bn.forward_t(&h, train); // same shape
            }
            h = leaky_relu(&h, 0.2); // same shape
        }
        self.last.forward_t(&h, train).reshape([n]) // (N, 1, 1, 1) -> (N,)
    }
}
