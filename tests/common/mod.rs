//! Helpers shared by the end-to-end tests: run the `ganzoo` binary, write small configs.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `ganzoo ARGS` in `dir`; returns (exit code, stdout, stderr).
pub fn ganzoo(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ganzoo"));
    if std::env::var_os("GANZOO_CACHE").is_none() {
        // The repo's cache (MNIST, MiniLM, the judges), whatever the test's working directory.
        cmd.env("GANZOO_CACHE", repo().join(".ganzoo-cache"));
    }
    let out: Output = cmd
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the ganzoo binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The repository root (configs/ lives there).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write fixture");
    p
}

/// A ring-of-8 config small enough to train in about a second.
pub const TINY_RING: &str = "name: tiny\nseed: 3\nthreads: 1\ndata: {kind: ring8}\nmodel:\n  family: gan\n  z_dim: 8\n  init: pytorch\n  generator: {arch: mlp, hidden: 32, layers: 2}\n  discriminator: {arch: mlp, hidden: 32, layers: 2}\ntrain:\n  steps: 40\n  batch_size: 64\n  log_every: 10\n  sample_every: 20\n  checkpoint_every: 10\n  keep_checkpoints: 2\neval:\n  samples: 500\n";

/// The facades photos (../shared/datasets), used as a small real image folder.
pub fn facades() -> Option<PathBuf> {
    let p = repo().join("../shared/datasets/facades/train");
    p.is_dir().then_some(p)
}
