//! Errors of the pipelines crate: config problems (exit code 2) apart from runtime failures (exit code 1).
use std::path::PathBuf;

/// Everything that can go wrong in a pipeline, with the file, key or step it concerns.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A config file or override is wrong; the message is complete and user-facing.
    #[error("{0}")]
    Config(String),
    /// Several cross-field problems, all reported at once.
    #[error("{} problem(s) in the config:\n{}", .0.len(), .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<String>),
    /// A wrong command-line argument value that is not about a config (e.g. a run directory that holds no run).
    #[error("{0}")]
    Usage(String),
    #[error("{}: {source}{}", path.display(), ganzoo_data::error::io_hint(source.kind()))]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Model(#[from] ganzoo_models::ModelError),
    #[error(transparent)]
    Data(#[from] ganzoo_data::DataError),
    #[error("{context}: {source}")]
    Torch { context: String, source: tch::TchError },
    /// Training diverged: the step and the loss that was not finite.
    #[error("step {step}: {loss} is {value}; training stopped. The last good checkpoint is {last_checkpoint}")]
    NonFinite { step: i64, loss: String, value: f64, last_checkpoint: String },
    #[error("{0}")]
    Runtime(String),
}

impl PipelineError {
    /// Whether the CLI should exit with 2 (usage or config) rather than 1 (runtime failure).
    pub fn is_usage(&self) -> bool {
        match self {
            PipelineError::Config(_) | PipelineError::Invalid(_) | PipelineError::Usage(_) => true,
            PipelineError::Data(d) => d.is_usage(),
            PipelineError::Io { source, .. } => ganzoo_data::error::io_is_usage(source.kind()),
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> PipelineError {
        let path = path.into();
        move |source| PipelineError::Io { path, source }
    }

    pub(crate) fn torch(context: impl Into<String>) -> impl FnOnce(tch::TchError) -> PipelineError {
        let context = context.into();
        move |source| PipelineError::Torch { context, source }
    }
}

pub type Result<T> = std::result::Result<T, PipelineError>;
