//! The crate's error type: every fallible model, loss or optimizer operation returns [`ModelError`].

/// Errors from building networks, computing losses and running optimizers.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A configuration value that cannot be built (bad size, unsupported combination, ...).
    #[error("invalid model configuration: {0}")]
    Config(String),
    /// libtorch reported an error; `context` says what we were doing.
    #[error("libtorch error while {context}: {source}")]
    Torch {
        context: String,
        #[source]
        source: tch::TchError,
    },
    /// A tensor had a shape (or dtype) we cannot work with.
    #[error("shape error: {0}")]
    Shape(String),
    /// Saved state (optimizer moments, ...) is missing or does not fit.
    #[error("state error: {0}")]
    State(String),
    /// A network file (e.g. a TorchScript module) is missing, unreadable or not what it should be; the
    /// reason says what to run or fix.
    #[error("{}: {reason}", path.display())]
    File { path: std::path::PathBuf, reason: String },
}

/// Result alias used across the crate.
pub type Result<T> = std::result::Result<T, ModelError>;

/// Attaches a context string to a fallible `tch` call.
pub(crate) trait TorchContext<T> {
    fn ctx(self, context: impl Into<String>) -> Result<T>;
}

impl<T> TorchContext<T> for std::result::Result<T, tch::TchError> {
    fn ctx(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|source| ModelError::Torch {
            context: context.into(),
            source,
        })
    }
}
