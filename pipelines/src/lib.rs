//! ganzoo pipelines: strict YAML configs, the training engine, checkpoints, sampling and evaluation.
//!
//! Layout (no module imports one that imports it back): `config` (what every family shares) and `family`
//! (what a family describes) at the bottom; `families/<family>/` on top of them, listed once in `families`;
//! `engine` trains any family; `rundir` and `pipeline` run configs and stages; `run` holds the commands.
pub mod alloc;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod dist;
pub mod engine;
pub mod export;
pub mod error;
pub mod families;
pub mod family;
pub mod feed;
pub mod hash;
pub mod imagemap;
pub mod judge;
pub mod memory;
pub mod metrics;
pub mod pipeline;
pub mod plot;
pub mod progress;
pub mod report_html;
pub mod run;
pub mod rundir;
pub mod runs;
pub mod tensorboard;
pub mod text;
pub mod translation;

pub use error::{PipelineError, Result};
