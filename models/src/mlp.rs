//! Fully connected G and D (Goodfellow et al. 2014) for flat data such as 2-D points or 1-D samples.
//!
//! Variable names: `hidden.{i}.weight|bias` for hidden layer i, `out.weight|bias` for the output layer
//! (`weight_orig`, `weight_u`, `weight_v` instead of `weight` when spectrally normalized).

use serde::{Deserialize, Serialize};
use tch::{nn, nn::ModuleT, Tensor};

use crate::error::{ModelError, Result};
use crate::base::{leaky_relu, DataShape, Discriminator, Generator};
use crate::spectral;

/// Hidden-layer nonlinearity.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Relu,
    /// Slope 0.2 (Radford et al. 2016).
    LeakyRelu,
    Tanh,
}

impl Activation {
    /// Applies the nonlinearity elementwise.
    pub fn apply(&self, x: &Tensor) -> Tensor {
        match self {
            Activation::Relu => x.relu(),
            Activation::LeakyRelu => leaky_relu(x, 0.2),
            Activation::Tanh => x.tanh(),
        }
    }
}

/// An MLP: `layers` hidden layers of width `hidden` with `activation`, then a linear output.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MlpConfig {
    /// Width of every hidden layer.
    pub hidden: i64,
    /// Number of hidden layers.
    pub layers: usize,
    /// Activation of the hidden layers: `relu`, `leaky_relu` or `tanh`.
    pub activation: Activation,
}

impl Default for MlpConfig {
    fn default() -> Self {
        MlpConfig {
            hidden: 128,
            layers: 3,
            activation: Activation::Relu,
        }
    }
}

impl MlpConfig {
    /// Every problem with the configuration (empty when fine).
    pub fn check(&self) -> Vec<String> {
        let mut p = vec![];
        if self.hidden < 1 {
            p.push(format!(
                "mlp hidden width must be >= 1, got {}",
                self.hidden
            ));
        }
        if self.layers > 64 {
            p.push(format!("mlp layers must be <= 64, got {}", self.layers));
        }
        p
    }
}

struct Stack {
    hidden: Vec<Box<dyn ModuleT>>,
    out: Box<dyn ModuleT>,
    activation: Activation,
}

impl Stack {
    fn new(p: &nn::Path, cfg: &MlpConfig, in_dim: i64, out_dim: i64, sn: bool) -> Self {
        let mut hidden = Vec::with_capacity(cfg.layers);
        let mut d = in_dim;
        let hp = p / "hidden";
        for i in 0..cfg.layers {
            hidden.push(spectral::linear(&(&hp / i), d, cfg.hidden, true, sn));
            d = cfg.hidden;
        }
        let out = spectral::linear(&(p / "out"), d, out_dim, true, sn);
        Stack {
            hidden,
            out,
            activation: cfg.activation,
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = x.shallow_clone(); // (N, in)
        for l in &self.hidden {
            h = self.activation.apply(&l.forward_t(&h, train)); // (N, hidden)
        }
        self.out.forward_t(&h, train) // (N, out)
    }
}

/// MLP generator: z (N, z_dim) -> (N, C) for flat data (no output nonlinearity: data are unbounded),
/// or (N, C, H, W) through tanh for images (range [-1, 1]).
pub struct MlpGenerator {
    net: Stack,
    z_dim: i64,
    out: DataShape,
}

impl MlpGenerator {
    pub fn new(p: &nn::Path, cfg: &MlpConfig, z_dim: i64, out: &DataShape) -> Result<Self> {
        let mut problems = cfg.check();
        problems.extend(out.check());
        if z_dim < 1 {
            problems.push(format!("z_dim must be >= 1, got {z_dim}"));
        }
        if !problems.is_empty() {
            return Err(ModelError::Config(problems.join("; ")));
        }
        Ok(MlpGenerator {
            net: Stack::new(p, cfg, z_dim, out.numel(), false),
            z_dim,
            out: *out,
        })
    }
}

impl Generator for MlpGenerator {
    fn forward_t(&self, z: &Tensor, train: bool) -> Tensor {
        let n = z.size()[0];
        let y = self.net.forward_t(&z.reshape([n, -1]), train); // (N, C*H*W)
        if self.out.is_flat() {
            y // (N, C)
        } else {
            y.tanh().reshape(self.out.batch_shape(n).as_slice()) // (N, C, H, W)
        }
    }

    fn z_dim(&self) -> i64 {
        self.z_dim
    }
}

/// MLP discriminator: (N, ...) flattened to (N, C*H*W) -> (N,) logits.
pub struct MlpDiscriminator {
    net: Stack,
}

impl MlpDiscriminator {
    pub fn new(
        p: &nn::Path,
        cfg: &MlpConfig,
        input: &DataShape,
        spectral_norm: bool,
    ) -> Result<Self> {
        let mut problems = cfg.check();
        problems.extend(input.check());
        if !problems.is_empty() {
            return Err(ModelError::Config(problems.join("; ")));
        }
        Ok(MlpDiscriminator {
            net: Stack::new(p, cfg, input.numel(), 1, spectral_norm),
        })
    }
}

impl Discriminator for MlpDiscriminator {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let n = x.size()[0];
        self.net.forward_t(&x.reshape([n, -1]), train).reshape([n]) // (N, C*H*W) -> (N,)
    }
}
