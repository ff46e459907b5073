//! ganzoo pipelines: strict YAML configs, the training engine, checkpoints, sampling and evaluation.
pub mod alloc;
pub mod checkpoint;
pub mod cond;
pub mod config;
pub mod cyclegan;
pub mod device;
pub mod engine;
pub mod error;
pub mod family;
pub mod feed;
pub mod gan;
pub mod imagemap;
pub mod judge;
pub mod plot;
pub mod pipeline;
pub mod progress;
pub mod run;
pub mod stackgan;
pub mod text;
pub mod translation;
pub mod unit;
pub mod vaegan;

pub use error::{PipelineError, Result};
