//! What every network module shares and none of them builds: the generator / discriminator traits, the data
//! shape, and the fused LeakyReLU. Kept apart from [`crate::nets`] (which builds the architectures) so the
//! architecture modules import it without importing `nets` back.

use serde::{Deserialize, Serialize};
use tch::Tensor;

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
