//! The commands behind the CLI: train, resume, inspect, sample, eval, on run directories.
//!
//! A run directory holds `config.resolved.yaml`, `metrics.jsonl`, `checkpoints/`, `samples/` and, at the end,
//! `report.json`.
use crate::checkpoint;
use crate::config::load::{self, Loaded};
use crate::config::Config;
use crate::device::{device_name, resolve_device};
use crate::engine::{self, Ui};
use crate::error::{PipelineError, Result};
use crate::family::Trainable;
use crate::gan::{Gan, Networks};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Reads and checks a config: strict keys first, then every cross-field problem at once.
pub fn load_config(path: &Path, overrides: &[String]) -> Result<Loaded<Config>> {
    let loaded = load::load::<Config>(path, overrides)?;
    let problems = loaded.config.problems();
    if !problems.is_empty() {
        return Err(PipelineError::Invalid(problems.into_iter().map(|p| format!("{}: {p}", path.display())).collect()));
    }
    Ok(loaded)
}

/// FNV-1a of the resolved config without the keys a resume may change (steps and cadences, device).
pub fn config_hash(cfg: &Config) -> Result<String> {
    let mut c = cfg.clone();
    c.train.steps = 0;
    c.train.log_every = 0;
    c.train.sample_every = 0;
    c.train.checkpoint_every = 0;
    c.train.keep_checkpoints = 0;
    c.train.workers = 0;
    c.train.prefetch = 0;
    c.device = String::new();
    let text = load::to_yaml(&c)?;
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    Ok(format!("{h:016x}"))
}

fn build(cfg: &Config, with_data: bool) -> Result<Gan> {
    let device = resolve_device(&cfg.device)?;
    Gan::new(cfg, device, with_data)
}

/// The final report of a run, also written to `report.json`.
fn report(run_dir: &Path, cfg: &Config, gan: &mut Gan, outcome: &engine::Outcome) -> Result<serde_json::Value> {
    let eval = gan.evaluate()?;
    let summary = gan.summarize(&eval);
    let params: serde_json::Map<_, _> =
        gan.networks().parameter_counts().into_iter().map(|(n, c)| (n.to_string(), json!(c))).collect();
    let device = resolve_device(&cfg.device).map(device_name).unwrap_or_default();
    let r = json!({
        "name": cfg.name,
        "family": cfg.model.family,
        "run_dir": run_dir.display().to_string(),
        "device": device,
        "steps": outcome.final_step,
        "steps_this_session": outcome.steps_run,
        "train_seconds": outcome.train_seconds,
        "parameters": params,
        "final_losses": outcome.last_losses,
        "eval": eval,
        "summary": summary,
        "samples": outcome.last_samples.as_ref().map(|p| p.display().to_string()),
        "checkpoint": outcome.last_checkpoint.as_ref().map(|p| p.display().to_string()),
    });
    let text = serde_json::to_string_pretty(&r).map_err(|e| PipelineError::Runtime(e.to_string()))?;
    checkpoint::write_text_atomic(&run_dir.join("report.json"), &text)?;
    Ok(r)
}

/// Picks the run directory: `out` if given (it must not hold a run), else `runs/<name>` (or `-2`, `-3`, …).
pub fn new_run_dir(out: Option<&Path>, name: &str) -> Result<PathBuf> {
    if let Some(out) = out {
        if out.join("config.resolved.yaml").exists() {
            return Err(PipelineError::Usage(format!(
                "{} already holds a run; continue it with `ganzoo train --resume {}` or choose another --out",
                out.display(),
                out.display()
            )));
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

/// `ganzoo train CONFIG`: a new run.
pub fn train(config: &Path, overrides: &[String], out: Option<&Path>, ui: Ui) -> Result<serde_json::Value> {
    let loaded = load_config(config, overrides)?;
    let cfg = &loaded.config;
    let run_dir = new_run_dir(out, &cfg.name)?;
    let mut gan = build(cfg, true)?;
    std::fs::create_dir_all(&run_dir).map_err(PipelineError::io(&run_dir))?;
    write_resolved(&run_dir, &loaded, overrides)?;
    let outcome = engine::train(&mut gan, cfg, &run_dir, &config_hash(cfg)?, ui)?;
    report(&run_dir, cfg, &mut gan, &outcome)
}

/// `ganzoo train --resume RUN_DIR`: continues from the newest checkpoint (or from scratch if there is none).
pub fn resume(run_dir: &Path, overrides: &[String], ui: Ui) -> Result<serde_json::Value> {
    let loaded = run_config(run_dir, overrides)?;
    let cfg = &loaded.config;
    let mut gan = build(cfg, true)?;
    if !overrides.is_empty() {
        write_resolved(run_dir, &loaded, overrides)?;
    }
    let outcome = engine::train(&mut gan, cfg, run_dir, &config_hash(cfg)?, ui)?;
    report(run_dir, cfg, &mut gan, &outcome)
}

fn run_config(run_dir: &Path, overrides: &[String]) -> Result<Loaded<Config>> {
    let path = run_dir.join("config.resolved.yaml");
    if !path.exists() {
        return Err(PipelineError::Usage(format!("{} is not a run directory (no config.resolved.yaml)", run_dir.display())));
    }
    load_config(&path, overrides)
}

fn write_resolved(run_dir: &Path, loaded: &Loaded<Config>, overrides: &[String]) -> Result<()> {
    let mut text = String::from("# Resolved by ganzoo: every key with its value, defaults included.\n");
    for s in &loaded.sources {
        text.push_str(&format!("# from: {}\n", s.path.display()));
    }
    for o in overrides {
        text.push_str(&format!("# --set {o}\n"));
    }
    text.push_str(&load::to_yaml(&loaded.config)?);
    checkpoint::write_text_atomic(&run_dir.join("config.resolved.yaml"), &text)
}

/// `ganzoo inspect CONFIG`: the resolved config and each network's parameter count.
pub fn inspect(config: &Path, overrides: &[String]) -> Result<serde_json::Value> {
    let loaded = load_config(config, overrides)?;
    let nets = Networks::build(&loaded.config, tch::Device::Cpu)?;
    let params: serde_json::Map<_, _> = nets.parameter_counts().into_iter().map(|(n, c)| (n.to_string(), json!(c))).collect();
    Ok(json!({
        "config": serde_json::to_value(&loaded.config).map_err(|e| PipelineError::Runtime(e.to_string()))?,
        "resolved_yaml": load::to_yaml(&loaded.config)?,
        "parameters": params,
        "data_shape": [loaded.config.data.shape().channels, loaded.config.data.shape().height, loaded.config.data.shape().width],
    }))
}

/// A run's config and family with the newest checkpoint's networks loaded.
fn open_run(run_dir: &Path, with_data: bool) -> Result<(Config, Gan, i64)> {
    let cfg = run_config(run_dir, &[])?.config;
    let gan = build(&cfg, with_data)?;
    let ckpt_dir = run_dir.join("checkpoints");
    let Some((meta, tensors)) = checkpoint::load_latest(&ckpt_dir)? else {
        return Err(PipelineError::Usage(format!("{} holds no checkpoint yet", ckpt_dir.display())));
    };
    engine::restore_networks(&gan, &tensors, &ckpt_dir.join(checkpoint::stem(meta.step)).display().to_string())?;
    Ok((cfg, gan, meta.step))
}

/// `ganzoo sample RUN_DIR --n N --out FILE.png [--seed S]`.
pub fn sample(run_dir: &Path, n: usize, out: &Path, seed: u64) -> Result<serde_json::Value> {
    if n == 0 {
        return Err(PipelineError::Usage("--n must be at least 1".into()));
    }
    let (_, gan, step) = open_run(run_dir, false)?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(PipelineError::io(parent))?;
    }
    gan.sample_to(n, seed, out)?;
    Ok(json!({ "out": out.display().to_string(), "n": n, "seed": seed, "checkpoint_step": step }))
}

/// `ganzoo eval RUN_DIR`: the family's metrics on the newest checkpoint.
pub fn eval(run_dir: &Path) -> Result<serde_json::Value> {
    let (_, mut gan, step) = open_run(run_dir, false)?;
    let eval = gan.evaluate()?;
    let summary = gan.summarize(&eval);
    Ok(json!({ "checkpoint_step": step, "eval": eval, "summary": summary }))
}
