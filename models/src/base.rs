//! What every network module shares and none of them builds: the generator / discriminator traits, the data
//! shape, and the fused LeakyReLU. Kept apart from [`crate::nets`] (which builds the architectures) so the
//! architecture modules import it without importing `nets` back.

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// A generator network G: z (N, z_dim) -> samples.
pub trait Generator: Send {
    /// z: (N, z_dim) -> (N, C) for flat data (height = width = 1), else (N, C, H, W).
    fn forward_t(&self, z: &Tensor, train: bool) -> Tensor;
    /// The latent size G expects.
    fn z_dim(&self) -> i64;
}

/// A discriminator / critic D: samples -> (N,) raw scores (logits for the BCE losses).
pub trait Discriminator: Send {
    /// x: (N, C) or (N, C, H, W) -> (N,).
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor;
}

/// The shape of one data sample. Flat vectors (2-D points, 1-D data) have `height = width = 1`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DataShape {
    pub channels: i64,
    pub height: i64,
    pub width: i64,
}

impl DataShape {
    /// A flat vector of `n` values (e.g. 2 for 2-D points).
    pub fn flat(n: i64) -> Self {
        DataShape {
            channels: n,
            height: 1,
            width: 1,
        }
    }

    /// A `channels` x `size` x `size` image.
    pub fn image(channels: i64, size: i64) -> Self {
        DataShape {
            channels,
            height: size,
            width: size,
        }
    }

    /// True for vector data (height = width = 1).
    pub fn is_flat(&self) -> bool {
        self.height == 1 && self.width == 1
    }

    /// Values per sample.
    pub fn numel(&self) -> i64 {
        self.channels * self.height * self.width
    }

    /// The batch shape for `n` samples: (N, C) when flat, else (N, C, H, W).
    pub fn batch_shape(&self, n: i64) -> Vec<i64> {
        if self.is_flat() {
            vec![n, self.channels]
        } else {
            vec![n, self.channels, self.height, self.width]
        }
    }

    /// Problems with the shape itself (non-positive dimensions).
    pub fn check(&self) -> Vec<String> {
        if self.channels < 1 || self.height < 1 || self.width < 1 {
            vec![format!(
                "data shape {}x{}x{} must be positive in every dimension",
                self.channels, self.height, self.width
            )]
        } else {
            vec![]
        }
    }
}

/// LeakyReLU with `slope`: libtorch's own kernel (`torch.nn.functional.leaky_relu`), forward, backward and
/// double backward, through the shim (tch 0.24 binds it only with slope 0.01). It replaced a sign-mask product
/// (and before that `prelu` with a fixed weight, whose scalar backward took 7.8 % of a DCGAN step); bench/README.md.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Tensor {
    ganzoo_torch_ext::leaky_relu(x, slope)
}

/// Batch norm: tch's, or, in training inside a data-parallel step with `train.sync_batch_norm`, synchronized
/// over the ranks (the statistics of the whole global batch, as torch.nn.SyncBatchNorm). Its variables are
/// tch's (`weight`, `bias`, `running_mean`, `running_var`), so checkpoints and state_dicts are unchanged.
#[derive(Debug)]
pub struct BatchNorm {
    bn: nn::BatchNorm,
    momentum: f64,
    eps: f64,
}

impl std::ops::Deref for BatchNorm {
    type Target = nn::BatchNorm;
    fn deref(&self) -> &nn::BatchNorm {
        &self.bn
    }
}

impl nn::ModuleT for BatchNorm {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        if train && ganzoo_torch_ext::sync_batch_norm_active() {
            if let (Some(w), Some(b)) = (&self.bn.ws, &self.bn.bs) {
                return ganzoo_torch_ext::sync_batch_norm(xs, w, b, &self.bn.running_mean, &self.bn.running_var, self.momentum, self.eps)
                    .unwrap_or_else(|e| panic!("synchronized batch norm: {e}"));
            }
        }
        self.bn.forward_t(xs, train)
    }
}

/// [`BatchNorm`] over (N, C).
pub fn batch_norm1d<'a, T: std::borrow::Borrow<nn::Path<'a>>>(p: T, c: i64, cfg: nn::BatchNormConfig) -> BatchNorm {
    let (momentum, eps) = (cfg.momentum, cfg.eps);
    BatchNorm { bn: nn::batch_norm1d(p, c, cfg), momentum, eps }
}

/// [`BatchNorm`] over (N, C, H, W).
pub fn batch_norm2d<'a, T: std::borrow::Borrow<nn::Path<'a>>>(p: T, c: i64, cfg: nn::BatchNormConfig) -> BatchNorm {
    let (momentum, eps) = (cfg.momentum, cfg.eps);
    BatchNorm { bn: nn::batch_norm2d(p, c, cfg), momentum, eps }
}
