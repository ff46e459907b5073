//! ganzoo pipelines: strict YAML configs, the training engine, checkpoints, sampling and evaluation.
pub mod alloc;
pub mod checkpoint;
pub mod config;
pub mod cyclegan;
pub mod device;
pub mod engine;
pub mod error;
pub mod family;
pub mod feed;
pub mod gan;
pub mod plot;
pub mod progress;
pub mod run;

pub use error::{PipelineError, Result};
