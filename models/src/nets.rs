//! The generator / discriminator traits and the serde-tagged configs that choose and build an architecture.

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::dcgan::{DcganDConfig, DcganDiscriminator, DcganGConfig, DcganGenerator};
use crate::error::{ModelError, Result};
use crate::mlp::{MlpConfig, MlpDiscriminator, MlpGenerator};

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

/// Which generator to build (`arch: mlp | dcgan` plus the architecture's own keys).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "arch", rename_all = "snake_case")]
pub enum GeneratorConfig {
    Mlp(MlpConfig),
    Dcgan(DcganGConfig),
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig::Mlp(MlpConfig::default())
    }
}

/// Which discriminator to build (`arch: mlp | dcgan` plus the architecture's own keys).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "arch", rename_all = "snake_case")]
pub enum DiscriminatorConfig {
    Mlp(MlpConfig),
    Dcgan(DcganDConfig),
}

impl Default for DiscriminatorConfig {
    fn default() -> Self {
        DiscriminatorConfig::Mlp(MlpConfig::default())
    }
}

fn fail_on(problems: Vec<String>, what: &str) -> Result<()> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ModelError::Config(format!(
            "{what}: {}",
            problems.join("; ")
        )))
    }
}

impl GeneratorConfig {
    /// Builds G under `p` for latent size `z_dim` and samples of shape `out`. Weights start from tch's
    /// default initializers: apply [`crate::init`] with a seeded RNG for reproducible weights.
    pub fn build(&self, p: &nn::Path, z_dim: i64, out: &DataShape) -> Result<Box<dyn Generator>> {
        let mut problems = self.check(out);
        if z_dim < 1 {
            problems.push(format!("z_dim must be >= 1, got {z_dim}"));
        }
        fail_on(problems, "generator")?;
        Ok(match self {
            GeneratorConfig::Mlp(c) => Box::new(MlpGenerator::new(p, c, z_dim, out)?),
            GeneratorConfig::Dcgan(c) => Box::new(DcganGenerator::new(p, c, z_dim, out)?),
        })
    }

    /// Every problem building this generator for `out` would hit (empty when fine).
    pub fn check(&self, out: &DataShape) -> Vec<String> {
        match self {
            GeneratorConfig::Mlp(c) => {
                let mut p = out.check();
                p.extend(c.check());
                p
            }
            GeneratorConfig::Dcgan(c) => c.check(out),
        }
    }
}

impl DiscriminatorConfig {
    /// Builds D under `p` for samples of shape `input`; `spectral_norm` wraps every conv/linear layer
    /// in [`crate::spectral`] (Miyato et al. 2018).
    pub fn build(
        &self,
        p: &nn::Path,
        input: &DataShape,
        spectral_norm: bool,
    ) -> Result<Box<dyn Discriminator>> {
        fail_on(self.check(input), "discriminator")?;
        Ok(match self {
            DiscriminatorConfig::Mlp(c) => {
                Box::new(MlpDiscriminator::new(p, c, input, spectral_norm)?)
            }
            DiscriminatorConfig::Dcgan(c) => {
                Box::new(DcganDiscriminator::new(p, c, input, spectral_norm)?)
            }
        })
    }

    /// Every problem building this discriminator for `input` would hit (empty when fine).
    pub fn check(&self, input: &DataShape) -> Vec<String> {
        match self {
            DiscriminatorConfig::Mlp(c) => {
                let mut p = input.check();
                p.extend(c.check());
                p
            }
            DiscriminatorConfig::Dcgan(c) => c.check(input),
        }
    }
}

/// Number of scalar parameters in the trainable variables of `vs`.
pub fn count_parameters(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

/// LeakyReLU with `slope` as one fused op (`prelu` with a fixed weight): a max(x, slope·x) form costs about
/// six full-size passes in its backward and made the DCGAN step 10 % slower (bench/README.md). Twice
/// differentiable, so the WGAN-GP penalty goes through it.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Tensor {
    x.prelu(&Tensor::full([1], slope, (x.kind(), x.device())))
}
