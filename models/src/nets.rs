//! The serde-tagged configs that choose and build an unconditional G / D architecture (MLP or DCGAN); the
//! traits and [`DataShape`] they build for live in [`crate::base`] and are re-exported here.

use serde::{Deserialize, Serialize};
use tch::nn;

pub use crate::base::{leaky_relu, DataShape, Discriminator, Generator};
use crate::dcgan::{DcganDConfig, DcganDiscriminator, DcganGConfig, DcganGenerator};
use crate::error::{ModelError, Result};
use crate::mlp::{MlpConfig, MlpDiscriminator, MlpGenerator};

/// Which generator to build (`arch: mlp | dcgan` plus the architecture's own keys).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
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
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
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
