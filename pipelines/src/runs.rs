//! What state a run is in (`RUN/status.json`, written by the training process) and `ganzoo runs`: one line per
//! run directory with its family, progress, state, last losses and best metric.
//!
//! A run is `running` while the process that wrote `status.json` is alive on this host, `stopped` when that
//! process is gone without finishing (killed, interrupted, the machine went down), `failed` with the error it
//! stopped on, or `finished`.
use crate::checkpoint::write_text_atomic;
use crate::error::{PipelineError, Result};
use crate::tensorboard::hostname as host;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

pub const STATUS_FILE: &str = "status.json";

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Records that this process trains the run in `run_dir` now.
pub fn mark_running(run_dir: &Path) -> Result<()> {
    let s = json!({ "state": "running", "pid": std::process::id(), "host": host(), "since": now() });
    write_text_atomic(&run_dir.join(STATUS_FILE), &s.to_string())
}

/// Records how the training of the run ended: finished, or failed with `error`.
pub fn mark_ended<T>(run_dir: &Path, outcome: &Result<T>) -> Result<()> {
    let s = match outcome {
        Ok(_) => json!({ "state": "finished", "since": now() }),
        Err(e) => json!({ "state": "failed", "error": e.to_string(), "since": now() }),
    };
    write_text_atomic(&run_dir.join(STATUS_FILE), &s.to_string())
}

/// The state of one run (or pipeline stage) directory: `running`, `stopped`, `failed`, `finished`, or
/// `unknown` for a run written before ganzoo kept `status.json`.
fn state(dir: &Path) -> (String, Option<String>) {
    let s: Value = std::fs::read_to_string(dir.join(STATUS_FILE)).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
    match s["state"].as_str() {
        Some("running") => {
            let pid = s["pid"].as_u64().unwrap_or(0);
            let here = s["host"].as_str() == Some(host().as_str());
            match here {
                true if pid > 0 && Path::new(&format!("/proc/{pid}")).exists() => ("running".into(), None),
                true => ("stopped".into(), Some("its process is gone; continue with `ganzoo train --resume`".into())),
                false => ("running".into(), Some(format!("on {}", s["host"].as_str().unwrap_or("another host")))),
            }
        }
        Some("failed") => ("failed".into(), s["error"].as_str().map(str::to_string)),
        Some(st) => (st.to_string(), None),
        None => ("unknown".into(), None),
    }
}

/// Steps done, the last training losses and D's scores, and the last evaluation of `metrics.jsonl`.
fn progress(dir: &Path) -> (i64, serde_json::Map<String, Value>, Option<Value>) {
    let logged = crate::report_html::read_metrics(&dir.join("metrics.jsonl")).unwrap_or_default();
    let steps = logged.train.iter().map(|(s, _)| *s).chain(logged.eval.iter().map(|(s, _)| *s));
    let step = steps.fold(0.0, f64::max) as i64;
    let losses = match logged.train.last() {
        Some((_, m)) => m.iter().filter(|(k, _)| k.starts_with("loss") || k.starts_with("D_")).map(|(k, v)| (k.clone(), v.clone())).collect(),
        None => serde_json::Map::new(),
    };
    (step, losses, logged.eval.last().map(|(_, e)| e.clone()))
}

/// The best metric of a run: `checkpoints/best.json` (`eval.best`), else the summary of its newest evaluation.
fn best(dir: &Path, last_eval: Option<&Value>) -> Option<String> {
    let b: Option<Value> = std::fs::read_to_string(dir.join("checkpoints").join("best.json")).ok().and_then(|t| serde_json::from_str(&t).ok());
    if let Some(b) = b.filter(|b| !b["best"].is_null()) {
        return Some(format!("{} {:.4} @ step {}", b["best"]["metric"].as_str().unwrap_or("?"), b["best"]["value"].as_f64().unwrap_or(f64::NAN), b["step"]));
    }
    let s = crate::metrics::summarize(last_eval?);
    (!s.is_empty()).then_some(s)
}

/// One run directory as `ganzoo runs` shows it (a pipeline: its first unfinished stage, else its last).
fn describe(dir: &Path) -> Option<Value> {
    let cfg: Value = serde_yaml::from_str(&std::fs::read_to_string(dir.join("config.resolved.yaml")).ok()?).ok()?;
    let name = dir.file_name()?.to_string_lossy().into_owned();
    let stages: Vec<&str> = cfg["stages"].as_array().map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect()).unwrap_or_default();
    let (family, at, planned) = match stages.is_empty() {
        true => (cfg["model"]["family"].as_str().unwrap_or("?").to_string(), dir.to_path_buf(), cfg["train"]["steps"].as_i64()),
        false => {
            let dirs: Vec<PathBuf> = stages.iter().map(|s| dir.join("stages").join(s)).collect();
            let current = dirs.iter().position(|d| state(d).0 != "finished").unwrap_or(dirs.len() - 1);
            let d = &dirs[current];
            let stage_cfg: Value = std::fs::read_to_string(d.join("config.resolved.yaml")).ok().and_then(|t| serde_yaml::from_str(&t).ok()).unwrap_or(Value::Null);
            let family = stage_cfg["model"]["family"].as_str().unwrap_or("?");
            (format!("pipeline, stage {} of {}: {} ({family})", current + 1, dirs.len(), stages[current]), d.clone(), stage_cfg["train"]["steps"].as_i64())
        }
    };
    let (mut state, detail) = state(&at);
    let (step, losses, eval) = progress(&at);
    if state == "unknown" && planned.is_some_and(|p| step >= p) && at.join("report.json").is_file() {
        state = "finished".into(); // a run from before status.json
    }
    Some(json!({
        "run": name,
        "path": dir.display().to_string(),
        "family": family,
        "step": step,
        "steps": planned,
        "state": state,
        "detail": detail,
        "losses": losses,
        "best": best(&at, eval.as_ref()),
    }))
}

/// `ganzoo runs [DIR]`: every run directory in `dir` (default `runs`), by name.
pub fn list(dir: &Path) -> Result<Vec<Value>> {
    let entries = std::fs::read_dir(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => PipelineError::Usage(format!("{}: no such folder (runs are written to runs/ by default)", dir.display())),
        _ => PipelineError::io(dir)(e),
    })?;
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.join("config.resolved.yaml").is_file()).collect();
    // DIR may itself be a run.
    if dir.join("config.resolved.yaml").is_file() {
        dirs = vec![dir.to_path_buf()];
    }
    dirs.sort();
    Ok(dirs.iter().filter_map(|d| describe(d)).collect())
}

/// The table `ganzoo runs` prints.
pub fn table(runs: &[Value]) -> String {
    if runs.is_empty() {
        return "no runs".into();
    }
    let rows: Vec<[String; 6]> = runs
        .iter()
        .map(|r| {
            let steps = match r["steps"].as_i64() {
                Some(p) => format!("{}/{p}", r["step"]),
                None => r["step"].to_string(),
            };
            let state = match r["detail"].as_str() {
                Some(d) if r["state"] == "failed" => format!("failed: {}", d.lines().next().unwrap_or(d)),
                _ => r["state"].as_str().unwrap_or("?").to_string(),
            };
            // The losses first (`loss_D`, `loss_G`, …), then D's scores, four at most.
            let mut terms: Vec<_> = r["losses"].as_object().map(|m| m.iter().collect()).unwrap_or_default();
            terms.sort_by_key(|(k, _)| (!k.starts_with("loss"), k.as_str()));
            let losses = terms.iter().take(4).map(|(k, v)| format!("{k} {:.3}", v.as_f64().unwrap_or(f64::NAN))).collect::<Vec<_>>().join(", ");
            [r["run"].as_str().unwrap_or("").into(), r["family"].as_str().unwrap_or("").into(), steps, state, losses, r["best"].as_str().unwrap_or("").into()]
        })
        .collect();
    let head = ["RUN", "FAMILY", "STEPS", "STATE", "LAST LOSSES", "BEST"].map(String::from);
    let widths: Vec<usize> = (0..6).map(|i| std::iter::once(&head).chain(&rows).map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    std::iter::once(&head)
        .chain(&rows)
        .map(|r| r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}
