//! A run directory and the config it trains: loading and checking configs, the config text and hash a
//! checkpoint keeps, the resume check, building a run's family, training it, and its report.
//!
//! A run directory holds `config.resolved.yaml`, `metrics.jsonl`, `checkpoints/`, `samples/` and, at the end,
//! `report.json`; `report.html` (rewritten while it trains) and `status.json` (running, finished, failed).
use crate::checkpoint::{self, CheckpointMeta};
use crate::config::load::{self, Loaded};
use crate::device::{device_name, resolve_device};
use crate::engine::{self, Identity, Outcome, PeriodicEval, Ui};
use crate::metrics::Evaluator;
use crate::error::{PipelineError, Result};
use crate::family::Family;
use crate::families::Config;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Reads and checks a config: strict keys first, then every cross-field problem at once.
pub fn load_config(path: &Path, overrides: &[String]) -> Result<Loaded<Config>> {
    let loaded = load::load::<Config>(path, overrides)?;
    if !loaded.config.stages.is_empty() {
        return Ok(loaded); // each stage is checked when the pipeline is resolved
    }
    let problems = loaded.config.problems();
    if !problems.is_empty() {
        let attributed = problems.into_iter().map(|p| format!("{}: {p}", loaded.origin(p.split(':').next().unwrap_or_default())));
        return Err(PipelineError::Invalid(attributed.collect()));
    }
    Ok(loaded)
}

/// The config of the run in `run_dir` (its `config.resolved.yaml`), with `overrides`.
pub fn run_config(run_dir: &Path, overrides: &[String]) -> Result<Loaded<Config>> {
    let path = run_dir.join("config.resolved.yaml");
    if !path.exists() {
        return Err(PipelineError::Usage(format!("{} is not a run directory (no config.resolved.yaml)", run_dir.display())));
    }
    load_config(&path, overrides)
}

/// The resolved config as YAML without the keys a resume may change (steps and cadences, device, evaluation): what
/// [`config_hash`] hashes and a checkpoint keeps.
pub fn config_text(cfg: &Config) -> Result<String> {
    let mut c = cfg.clone();
    c.train.steps = 0;
    c.train.log_every = 0;
    c.train.sample_every = 0;
    c.train.checkpoint_every = 0;
    c.train.keep_checkpoints = 0;
    c.train.workers = 0;
    c.train.prefetch = 0;
    c.train.tensorboard = false;
    c.device = String::new();
    c.threads = 0;
    c.eval = crate::config::EvalConfig::default();
    load::to_yaml(&c)
}

/// FNV-1a of [`config_text`].
pub fn config_hash(cfg: &Config) -> Result<String> {
    Ok(text_hash(&config_text(cfg)?))
}

pub use crate::hash::text_hash;

/// Fails unless the newest checkpoint in `run_dir` (if any) was made with the same config as `cfg`.
pub fn check_resumable(run_dir: &Path, cfg: &Config) -> Result<()> {
    let ckpt_dir = run_dir.join("checkpoints");
    match checkpoint::latest_meta(&ckpt_dir)? {
        Some(meta) => same_config(&meta, &ckpt_dir, cfg, &config_hash(cfg)?),
        None => Ok(()),
    }
}

/// The same config: the same hash (`hash`, of `cfg`), or the checkpoint's config text, read with today's
/// defaults (keys added since it was written take their defaults), equals `cfg`. A refusal names the keys that
/// differ.
fn same_config(meta: &CheckpointMeta, ckpt_dir: &Path, cfg: &Config, hash: &str) -> Result<()> {
    if meta.config_hash == hash {
        return Ok(());
    }
    let then = meta.config.as_deref().and_then(|text| {
        let value = load::parse_yaml(text).ok()?;
        load::from_value::<Config>(value, &[], &[]).ok()
    });
    let changed = match &then {
        Some(old) if config_hash(old)? == *hash => return Ok(()),
        Some(old) => {
            let (a, b) = (flatten(&config_text(old)?), flatten(&config_text(cfg)?));
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            let none = String::from("(absent)");
            let diffs: Vec<String> = keys
                .into_iter()
                .filter(|k| a.get(*k) != b.get(*k))
                .map(|k| format!("{k}: {} then, {} now", a.get(k).unwrap_or(&none), b.get(k).unwrap_or(&none)))
                .collect();
            format!(": {}", diffs.join("; "))
        }
        None => format!(" (hash {} ≠ {hash})", meta.config_hash),
    };
    Err(PipelineError::Usage(format!(
        "{}: the checkpoint was made with another config{changed}; resume may only change train.steps, the logging, sampling and checkpoint cadence, and the eval section",
        ckpt_dir.display()
    )))
}

/// Dotted key -> scalar (as YAML) of a config text; lists are one value.
fn flatten(text: &str) -> std::collections::BTreeMap<String, String> {
    fn walk(prefix: &str, v: &serde_yaml::Value, out: &mut std::collections::BTreeMap<String, String>) {
        match v {
            serde_yaml::Value::Mapping(m) => {
                for (k, v) in m {
                    let k = k.as_str().map_or_else(|| format!("{k:?}"), str::to_string);
                    walk(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, v, out);
                }
            }
            other => {
                let s = serde_yaml::to_string(other).unwrap_or_default().trim_end().replace('\n', " ");
                out.insert(prefix.to_string(), s);
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    if let Ok(v) = load::parse_yaml(text) {
        walk("", &v, &mut out);
    }
    out
}

/// Builds a run's family on its device (with its libtorch thread count).
pub fn build(cfg: &Config, with_data: bool, run_dir: Option<&Path>) -> Result<Box<dyn Family>> {
    let device = resolve_device(&cfg.device)?;
    if cfg.threads > 0 {
        tch::set_num_threads(cfg.threads as i32);
    }
    cfg.build(device, with_data, run_dir)
}

/// Builds a run's family to train it, refusing (exit 2) a config whose training certainly cannot fit in the
/// machine's memory, before anything is allocated: the activations at the batch, and the parameters with
/// their gradients and optimizer state (extrapolated from narrow copies of wide networks; counted again once
/// the networks exist). On the CPU; CUDA reports its own.
pub fn build_for_training(cfg: &Config, run_dir: &Path) -> Result<Box<dyn Family>> {
    use crate::{config::limits, memory};
    let on_cpu = resolve_device(&cfg.device)? == tch::Device::Cpu;
    let check = |parameters: Option<i64>| match limits::available_memory().filter(|_| on_cpu) {
        Some(available) => match memory::memory_problem(&memory::estimate(cfg, parameters), available) {
            Some(m) => Err(PipelineError::Usage(m)),
            None => Ok(()),
        },
        None => Ok(()),
    };
    check(memory::estimate_parameters(cfg))?;
    let fam = build(cfg, true, Some(run_dir))?;
    check(Some(fam.parameter_counts().iter().map(|(_, n)| n).sum()))?;
    Ok(fam)
}

/// Trains `fam` (built from `cfg`) in `run_dir` from its newest checkpoint, refusing a checkpoint of another
/// config.
pub fn train(fam: &mut dyn Family, cfg: &Config, run_dir: &Path, ui: Ui) -> Result<Outcome> {
    let text = config_text(cfg)?;
    let hash = text_hash(&text);
    let check = |meta: &CheckpointMeta, dir: &Path| same_config(meta, dir, cfg, &hash);
    let s = cfg.settings();
    // The feature network is loaded before the first step, so a missing file stops the run at once.
    let periodic = match s.eval.every {
        0 => None,
        _ => Some(Periodic { evaluator: Evaluator::new(&s.eval, resolve_device(&s.device)?, ui.quiet)?, s: s.clone() }),
    };
    let writes = crate::dist::place()?.writes();
    if writes {
        crate::runs::mark_running(run_dir)?;
    }
    let outcome = engine::train(fam, &s, &Identity { text: &text, hash: &hash, same_config: &check }, run_dir, ui, periodic.as_ref().map(|p| p as &dyn PeriodicEval));
    if writes {
        // A status that cannot be written does not hide the error the run stopped on.
        let marked = crate::runs::mark_ended(run_dir, &outcome);
        if outcome.is_ok() {
            marked?;
        }
    }
    outcome
}

/// `eval.every`: the standard metrics while training.
struct Periodic {
    evaluator: Evaluator,
    s: crate::config::Settings,
}

impl PeriodicEval for Periodic {
    fn every(&self) -> i64 {
        self.s.eval.every
    }

    fn evaluate(&self, family: &dyn Family) -> Result<(serde_json::Value, Option<(String, f64)>)> {
        let Some(e) = self.evaluator.evaluate(family, &self.s)? else { return Ok((serde_json::Value::Null, None)) };
        let score = self.s.eval.best.and_then(|b| e.best_score(b).map(|(set, v)| (format!("{set}/{}", b.key()), v)));
        Ok((e.json, score))
    }
}

/// The final report of a run, also written to `report.json`.
pub fn report(run_dir: &Path, cfg: &Config, fam: &dyn Family, outcome: &Outcome) -> Result<serde_json::Value> {
    let eval = fam.evaluate()?;
    let mut summary = fam.summarize(&eval);
    if let Some(m) = &outcome.last_eval {
        summary = format!("{summary}; {}", crate::metrics::summarize(m));
    }
    let params: serde_json::Map<_, _> = fam.parameter_counts().into_iter().map(|(n, c)| (n.to_string(), json!(c))).collect();
    let device = resolve_device(&cfg.device).map(device_name).unwrap_or_default();
    let r = json!({
        "name": cfg.name,
        "family": cfg.model.family(),
        "run_dir": run_dir.display().to_string(),
        "device": device,
        "steps": outcome.final_step,
        "steps_this_session": outcome.steps_run,
        "train_seconds": outcome.train_seconds,
        "parameters": params,
        "final_losses": outcome.last_losses,
        "eval": eval,
        "metrics": outcome.last_eval,
        "summary": summary,
        "samples": outcome.last_samples.as_ref().map(|p| p.display().to_string()),
        "checkpoint": outcome.last_checkpoint.as_ref().map(|p| p.display().to_string()),
    });
    let text = serde_json::to_string_pretty(&r).map_err(|e| PipelineError::Runtime(e.to_string()))?;
    checkpoint::write_text_atomic(&run_dir.join("report.json"), &text)?;
    crate::report_html::write(run_dir)?;
    Ok(r)
}

/// Picks the run directory: `out` if given (it must not hold a run), else `runs/<name>` (or `-2`, `-3`, …).
pub fn new_run_dir(out: Option<&Path>, name: &str) -> Result<PathBuf> {
    if let Some(out) = out {
        if out.join("config.resolved.yaml").exists() {
            let state = if has_checkpoint(out) { "already holds a run" } else { "already holds a run that stopped before its first checkpoint" };
            return Err(PipelineError::Usage(format!(
                "{} {state}; continue it with `ganzoo train --resume {}` or choose another --out",
                out.display(),
                out.display()
            )));
        }
        if out.exists() && !out.is_dir() {
            return Err(PipelineError::Usage(format!("{}: --out is a file; a run directory must be a folder", out.display())));
        }
        return Ok(out.to_path_buf());
    }
    let base = PathBuf::from("runs").join(name);
    let mut candidate = base.clone();
    let mut n = 2;
    while candidate.exists() {
        candidate = PathBuf::from(format!("{}-{n}", base.display()));
        n += 1;
    }
    Ok(candidate)
}

/// Whether the run in `dir` (or one of its pipeline stages) has a complete checkpoint.
pub fn has_checkpoint(dir: &Path) -> bool {
    let stages = std::fs::read_dir(dir.join("stages")).into_iter().flatten().flatten().map(|e| e.path().join("checkpoints"));
    std::iter::once(dir.join("checkpoints")).chain(stages).any(|c| checkpoint::list(&c).is_ok_and(|l| !l.is_empty()))
}

/// A new run's folder, taken back if the run fails before its first checkpoint (an error, or a panic that
/// unwinds): a folder ganzoo created is removed, and in a folder that was there (an empty `--out`) what the
/// run wrote is removed, so the same `--out` can be used again. A run with a checkpoint is kept for `--resume`.
pub struct FreshRun {
    dir: PathBuf,
    /// The names in the folder before the run, when it existed.
    before: Option<std::collections::HashSet<std::ffi::OsString>>,
    done: bool,
}

impl FreshRun {
    pub fn create(dir: &Path) -> Result<FreshRun> {
        let before = dir.is_dir().then(|| std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.file_name()).collect());
        std::fs::create_dir_all(dir).map_err(PipelineError::io(dir))?;
        Ok(FreshRun { dir: dir.to_path_buf(), before, done: false })
    }

    /// The run succeeded: keep everything.
    pub fn keep(mut self) {
        self.done = true;
    }
}

impl Drop for FreshRun {
    fn drop(&mut self) {
        if self.done || has_checkpoint(&self.dir) {
            return;
        }
        match &self.before {
            None => {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
            Some(before) => {
                for e in std::fs::read_dir(&self.dir).into_iter().flatten().flatten().filter(|e| !before.contains(&e.file_name())) {
                    let p = e.path();
                    let _ = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
                }
            }
        }
    }
}

/// The header of a resolved config: where it came from.
pub fn resolved_header(loaded: &Loaded<Config>, overrides: &[String]) -> String {
    let mut text = String::from("# Resolved by ganzoo: every key with its value, defaults included.\n");
    for s in &loaded.sources {
        text.push_str(&format!("# from: {}\n", s.path.display()));
    }
    for o in overrides {
        text.push_str(&format!("# --set {o}\n"));
    }
    text
}

/// Writes `config.resolved.yaml` of a single-stage run.
pub fn write_resolved(run_dir: &Path, loaded: &Loaded<Config>, overrides: &[String]) -> Result<()> {
    let text = format!("{}{}", resolved_header(loaded, overrides), load::to_yaml(&loaded.config)?);
    checkpoint::write_text_atomic(&run_dir.join("config.resolved.yaml"), &text)
}
