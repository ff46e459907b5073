//! Checkpoints: named tensors in safetensors plus JSON metadata, written atomically
//! (temp file, fsync, rename; the JSON last, so a checkpoint without its JSON does not count).
use crate::error::{PipelineError, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// What a checkpoint says about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckpointMeta {
    /// Generator updates done.
    pub step: i64,
    /// Hash of the resolved config (without the keys `--resume` may change).
    pub config_hash: String,
    /// The hashed config text ([`crate::run::config_text`]), so that a later ganzoo, whose configs have keys
    /// this one lacked, can read it with today's defaults and still resume, and a refusal can name the keys
    /// that differ. Absent in checkpoints of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// The safetensors file beside this JSON.
    pub tensors: String,
    /// Seconds of training so far.
    pub train_seconds: f64,
    /// Losses of the last step.
    pub losses: HashMap<String, f64>,
    /// The best checkpoint (`best.json`): the metric it is best by, and its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<Best>,
    /// The data-parallel ranks that trained it (1: one process); each rank's own state (an image pool) is in
    /// the tensors as `rank<r>/<name>` for ranks above 0.
    #[serde(default = "one_rank", skip_serializing_if = "is_one_rank")]
    pub world_size: usize,
}

fn one_rank() -> usize {
    1
}
fn is_one_rank(n: &usize) -> bool {
    *n == 1
}

/// What makes `checkpoints/best.*` the best: the lowest value so far of a metric (`eval.best`), by its
/// comparison's name and metric (`samples/fid`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Best {
    pub metric: String,
    pub value: f64,
}

/// The best checkpoint's metadata file.
pub const BEST_JSON: &str = "best.json";

/// Saves the best checkpoint so far: its tensors as `best.step_<N>.safetensors`, then `best.json` naming
/// them (atomically, last), then removes the previous best's tensors. At every moment `best.json` names a
/// complete file; the rolling checkpoints are untouched.
pub fn save_best(dir: &Path, tensors: &[(String, Tensor)], mut meta: CheckpointMeta) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(PipelineError::io(dir))?;
    let previous = read_best(dir)?.map(|m| dir.join(m.tensors));
    meta.tensors = format!("best.{}.safetensors", stem(meta.step));
    let st = dir.join(&meta.tensors);
    write_atomic(&st, |tmp| {
        Tensor::write_safetensors(tensors, tmp).map_err(PipelineError::torch(format!("writing {}", tmp.display())))
    })?;
    let text = serde_json::to_string_pretty(&meta).map_err(|e| PipelineError::Runtime(e.to_string()))?;
    write_text_atomic(&dir.join(BEST_JSON), &text)?;
    if let Some(old) = previous.filter(|p| *p != st) {
        let _ = std::fs::remove_file(old);
    }
    Ok(st)
}

/// The best checkpoint's metadata, if the run has one.
pub fn read_best(dir: &Path) -> Result<Option<CheckpointMeta>> {
    let json = dir.join(BEST_JSON);
    if !json.exists() {
        return Ok(None);
    }
    read_meta(&json).map(Some)
}

/// The best checkpoint: its metadata and tensors.
pub fn load_best(dir: &Path) -> Result<Option<(CheckpointMeta, HashMap<String, Tensor>)>> {
    let Some(meta) = read_best(dir)? else { return Ok(None) };
    let st = dir.join(&meta.tensors);
    let tensors = Tensor::read_safetensors(&st).map_err(PipelineError::torch(format!("reading {}", st.display())))?.into_iter().collect();
    Ok(Some((meta, tensors)))
}

/// File stem of the checkpoint at `step`.
pub fn stem(step: i64) -> String {
    format!("step_{step:08}")
}

/// Writes `bytes` to `path` atomically: a temp file beside it, fsync, rename, fsync of the folder. On any
/// failure (a full disk, a killed writer's leftovers being in the way) the temp file is removed, so a failed
/// write leaves the folder as it was.
pub fn write_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let attempt = || -> Result<()> {
        write(&tmp)?;
        pause_for_tests(path);
        let f = std::fs::File::open(&tmp).map_err(PipelineError::io(&tmp))?;
        f.sync_all().map_err(PipelineError::io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(PipelineError::io(path))
    };
    if let Err(e) = attempt() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// `GANZOO_TEST_PAUSE_WRITE_MS`: sleeps between writing a checkpoint's temp file (in `checkpoints/`) and renaming it, so the
/// reliability tests can kill a run inside a checkpoint write. Not for users; absent, it costs nothing.
fn pause_for_tests(path: &Path) {
    let in_checkpoints = path.parent().and_then(|d| d.file_name()).is_some_and(|d| d == "checkpoints");
    if in_checkpoints && path.extension().is_some_and(|e| e == "safetensors" || e == "json") {
        if let Some(ms) = std::env::var("GANZOO_TEST_PAUSE_WRITE_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    }
}

/// Whether `name` is a temp file of an atomic write (ours: `X.tmp`; the data layer's: `.X.tmp-PID[-N]`).
pub fn is_temp_name(name: &str) -> bool {
    name.ends_with(".tmp") || (name.starts_with('.') && name.contains(".tmp-"))
}

/// Removes the temp files a killed writer left in `dir` (not recursive); returns how many. A run calls this
/// on its folders when it starts, before it writes anything.
pub fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()) && is_temp_name(&e.file_name().to_string_lossy()))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

/// Writes text atomically.
pub fn write_text_atomic(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, |tmp| {
        let mut f = std::fs::File::create(tmp).map_err(PipelineError::io(tmp))?;
        f.write_all(text.as_bytes()).map_err(PipelineError::io(tmp))
    })
}

/// Saves a checkpoint into `dir` and removes all but the newest `keep`.
pub fn save(dir: &Path, tensors: &[(String, Tensor)], meta: &CheckpointMeta, keep: usize) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(PipelineError::io(dir))?;
    let base = stem(meta.step);
    let st = dir.join(format!("{base}.safetensors"));
    write_atomic(&st, |tmp| {
        Tensor::write_safetensors(tensors, tmp).map_err(PipelineError::torch(format!("writing {}", tmp.display())))
    })?;
    let json = dir.join(format!("{base}.json"));
    let text = serde_json::to_string_pretty(meta).map_err(|e| PipelineError::Runtime(e.to_string()))?;
    write_text_atomic(&json, &text)?;
    let all = list(dir)?;
    for (_, old) in all.iter().rev().skip(keep.max(1)) {
        let _ = std::fs::remove_file(old.with_extension("json"));
        let _ = std::fs::remove_file(old.with_extension("safetensors"));
    }
    Ok(st)
}

/// Complete checkpoints in `dir` (JSON and safetensors both present), oldest first, as (step, json path).
pub fn list(dir: &Path) -> Result<Vec<(i64, PathBuf)>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(out) };
    for e in entries.flatten() {
        let p = e.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(step) = name.strip_prefix("step_").and_then(|s| s.strip_suffix(".json")).and_then(|s| s.parse().ok()) {
            if p.with_extension("safetensors").exists() {
                out.push((step, p));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A loaded checkpoint: its metadata and tensors by name.
pub type Loaded = (CheckpointMeta, HashMap<String, Tensor>);

/// The newest complete checkpoint: its metadata and tensors. A damaged one is an error naming its file and
/// the newest older checkpoint that loads.
pub fn load_latest(dir: &Path) -> Result<Option<Loaded>> {
    // `load_latest_intact` fails itself when checkpoints exist and none loads.
    match load_latest_intact(dir)? {
        (Some((meta, _)), damaged) if !damaged.is_empty() => Err(PipelineError::Runtime(format!(
            "{}; the newest intact checkpoint is step {}: `ganzoo train --resume` continues from it (and then replaces the damaged one)",
            damaged[0], meta.step
        ))),
        (intact, _) => Ok(intact),
    }
}

/// The newest checkpoint that loads, and what was wrong with each newer (damaged) one, for `--resume`.
pub fn load_latest_intact(dir: &Path) -> Result<(Option<Loaded>, Vec<String>)> {
    let mut damaged = Vec::new();
    for (_, json) in list(dir)?.iter().rev() {
        match load(json) {
            Ok(c) => return Ok((Some(c), damaged)),
            Err(e) => damaged.push(e.to_string()),
        }
    }
    if damaged.is_empty() {
        Ok((None, damaged))
    } else {
        Err(PipelineError::Runtime(format!("{}: no checkpoint of this run loads: {}", dir.display(), damaged.join("; "))))
    }
}

/// The newest complete checkpoint's metadata (its tensors not read).
pub fn latest_meta(dir: &Path) -> Result<Option<CheckpointMeta>> {
    let all = list(dir)?;
    // A damaged newest description is skipped here as `--resume` skips it; when none reads, the newest's error.
    match all.iter().rev().find_map(|(_, json)| read_meta(json).ok()) {
        Some(meta) => Ok(Some(meta)),
        None => all.last().map(|(_, json)| read_meta(json)).transpose(),
    }
}

fn read_meta(json: &Path) -> Result<CheckpointMeta> {
    let text = std::fs::read_to_string(json).map_err(PipelineError::io(json))?;
    serde_json::from_str(&text).map_err(|e| PipelineError::Runtime(format!("{}: the checkpoint is damaged (not a checkpoint description: {e})", json.display())))
}

/// Loads the checkpoint whose JSON is at `json`.
pub fn load(json: &Path) -> Result<(CheckpointMeta, HashMap<String, Tensor>)> {
    let meta = read_meta(json)?;
    let st = json.with_extension("safetensors");
    let tensors = Tensor::read_safetensors(&st)
        .map_err(PipelineError::torch(format!("{}: the checkpoint is damaged (cut short or overwritten)", st.display())))?
        .into_iter()
        .collect();
    Ok((meta, tensors))
}

/// Copies `prefix.<name>` tensors into the store's variables; every missing or mis-shaped tensor is named.
pub fn restore_vars(vs: &tch::nn::VarStore, tensors: &HashMap<String, Tensor>, prefix: &str, origin: &str) -> Result<()> {
    let mut problems = Vec::new();
    let mut vars: Vec<_> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var) in &vars {
        let key = format!("{prefix}.{name}");
        match tensors.get(&key) {
            None => problems.push(format!("{key}: missing (expected shape {:?})", var.size())),
            Some(t) if t.size() != var.size() => {
                problems.push(format!("{key}: shape {:?} in the checkpoint, {:?} in the network", t.size(), var.size()))
            }
            Some(t) => tch::no_grad(|| {
                let mut v = var.shallow_clone();
                v.copy_(t);
            }),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PipelineError::Runtime(format!(
            "{origin} does not fit network `{prefix}`:\n  {}",
            problems.join("\n  ")
        )))
    }
}

/// The store's variables as `prefix.<name>` pairs, sorted by name.
pub fn named_vars(vs: &tch::nn::VarStore, prefix: &str) -> Vec<(String, Tensor)> {
    let mut v: Vec<_> = vs.variables().into_iter().map(|(n, t)| (format!("{prefix}.{n}"), t)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}
