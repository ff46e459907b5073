//! ganzoo-models: GAN networks, losses, regularizers and optimizers with owned state, on libtorch via `tch`.
//!
//! Pure tensor code; the only file I/O is loading pretrained networks (MiniLM's safetensors in [`bert`], the FID
//! Inception-v3 TorchScript in [`inception`]). All randomness comes from explicit seeded RNGs ([`rng`]), never from
//! libtorch's process-wide generator.

pub mod augment;
pub mod autocast;
pub mod base;
pub mod bert;
pub mod blur;
pub mod classifier;
pub mod cond;
pub mod cut;
pub mod cyclegan;
pub mod dcgan;
pub mod error;
pub mod inception;
pub mod init;
pub mod losses;
pub mod metrics;
pub mod mlp;
pub mod nets;
pub mod optim;
pub mod pix2pix;
pub mod rng;
pub mod spectral;
pub mod stackgan;
pub mod text;
pub mod unit;
pub mod vaegan;

pub use bert::{BertConfig, MiniLm};
pub use classifier::{Classifier, ClassifierConfig};
pub use cond::{
    CondDiscriminator, CondDiscriminatorConfig, CondGenerator, CondGeneratorConfig, HeadDesign,
    Scores,
};
pub use error::{ModelError, Result};
pub use inception::FeatureNet;
pub use nets::{DataShape, Discriminator, DiscriminatorConfig, Generator, GeneratorConfig};
pub use text::{TextEncoder, TextEncoderConfig};
