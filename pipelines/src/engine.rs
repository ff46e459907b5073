//! The training loop: LR schedule, steps, NaN/Inf guard, metrics, sample grids, checkpoints, resume.
use crate::checkpoint::{self, CheckpointMeta};
use crate::config::{load, Config};
use crate::error::{PipelineError, Result};
use crate::family::{Losses, Trainable};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How much the engine prints.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ui {
    /// Print nothing while training.
    pub quiet: bool,
}

/// What a finished (or resumed-and-finished) training run reports.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub steps_run: i64,
    pub final_step: i64,
    pub train_seconds: f64,
    pub last_losses: Losses,
    pub last_checkpoint: Option<PathBuf>,
    pub last_samples: Option<PathBuf>,
}

/// Fails unless the newest checkpoint in `run_dir` (if any) was made with the same config as `cfg`.
pub fn check_resumable(run_dir: &Path, cfg: &Config) -> Result<()> {
    let ckpt_dir = run_dir.join("checkpoints");
    match checkpoint::latest_meta(&ckpt_dir)? {
        Some(meta) => check_same_config(&meta, &ckpt_dir, cfg, &crate::run::config_hash(cfg)?),
        None => Ok(()),
    }
}

/// The same config: the same hash (`hash`, of `cfg`), or the checkpoint's config text, read with today's
/// defaults (keys added since it was written take their defaults), equals `cfg`. A refusal names the keys that
/// differ.
fn check_same_config(meta: &checkpoint::CheckpointMeta, ckpt_dir: &Path, cfg: &Config, hash: &str) -> Result<()> {
    if meta.config_hash == hash {
        return Ok(());
    }
    let then = meta.config.as_deref().and_then(|text| {
        let value = load::parse_yaml(text).ok()?;
        load::from_value::<Config>(value, &[], &[]).ok()
    });
    let changed = match &then {
        Some(old) if crate::run::config_hash(old)? == *hash => return Ok(()),
        Some(old) => {
            let (a, b) = (flatten(&crate::run::config_text(old)?), flatten(&crate::run::config_text(cfg)?));
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
        "{}: the checkpoint was made with another config{changed}; resume may only change train.steps and the logging, sampling and checkpoint cadence",
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

/// Trains `family` from its newest checkpoint in `run_dir` (or from scratch) up to `cfg.train.steps`.
pub fn train(family: &mut dyn Trainable, cfg: &Config, run_dir: &Path, ui: Ui) -> Result<Outcome> {
    let config_text = crate::run::config_text(cfg)?;
    let config_hash = crate::run::text_hash(&config_text);
    let ckpt_dir = run_dir.join("checkpoints");
    let samples_dir = run_dir.join("samples");
    std::fs::create_dir_all(&samples_dir).map_err(PipelineError::io(&samples_dir))?;
    remove_temp_files(&ckpt_dir);
    remove_temp_files(&samples_dir);
    let (start, mut train_seconds, mut last_checkpoint) = match checkpoint::load_latest(&ckpt_dir)? {
        Some((meta, tensors)) => {
            check_same_config(&meta, &ckpt_dir, cfg, &config_hash)?;
            let origin = ckpt_dir.join(checkpoint::stem(meta.step)).display().to_string();
            restore(family, &tensors, &origin)?;
            (meta.step, meta.train_seconds, Some(PathBuf::from(origin + ".safetensors")))
        }
        None => (0, 0.0, None),
    };
    let metrics_path = run_dir.join("metrics.jsonl");
    truncate_metrics(&metrics_path, start)?;
    let mut metrics = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .map_err(PipelineError::io(&metrics_path))?;
    let t = &cfg.train;
    let mut progress = crate::progress::Progress::new(start, t.steps, ui.quiet);
    let started = Instant::now();
    let mut last_losses = Losses::new();
    let mut last_samples = None;
    for step in start..t.steps {
        let factor = t.lr_schedule.factor(step, t.steps);
        for (_, opt) in family.optimizers_mut() {
            let base = opt.base_lr();
            opt.set_lr(base * factor);
        }
        let losses = family.train_step(step)?;
        if let Some((name, value)) = losses.iter().find(|(_, v)| !v.is_finite()) {
            return Err(PipelineError::NonFinite {
                step: step + 1,
                loss: name.clone(),
                value: *value,
                last_checkpoint: last_checkpoint
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "none (no checkpoint was written yet)".into()),
            });
        }
        let done = step + 1;
        let elapsed = train_seconds + started.elapsed().as_secs_f64();
        let last = done == t.steps;
        if done % t.log_every == 0 || last {
            let mut line = serde_json::Map::new();
            line.insert("step".into(), done.into());
            for (k, v) in &losses {
                line.insert(k.clone(), serde_json::json!(v));
            }
            for (name, opt) in family.optimizers() {
                line.insert(format!("lr_{}", name.trim_start_matches("opt_")), serde_json::json!(opt.lr()));
            }
            line.insert("time".into(), serde_json::json!(elapsed));
            writeln!(metrics, "{}", serde_json::Value::Object(line)).map_err(PipelineError::io(&metrics_path))?;
            progress.log(done, &losses);
        }
        if done % t.sample_every == 0 || last {
            let p = samples_dir.join(format!("{}.png", checkpoint::stem(done)));
            family.write_samples(&p)?;
            last_samples = Some(p);
        }
        if done % t.checkpoint_every == 0 || last {
            metrics.sync_data().map_err(PipelineError::io(&metrics_path))?;
            let meta = CheckpointMeta {
                step: done,
                config_hash: config_hash.clone(),
                config: Some(config_text.clone()),
                tensors: format!("{}.safetensors", checkpoint::stem(done)),
                train_seconds: elapsed,
                losses: losses.clone().into_iter().collect(),
            };
            last_checkpoint = Some(checkpoint::save(&ckpt_dir, &state(family), &meta, t.keep_checkpoints)?);
        }
        progress.tick(done, &losses);
        last_losses = losses;
    }
    progress.finish();
    train_seconds += started.elapsed().as_secs_f64();
    Ok(Outcome { steps_run: t.steps - start.min(t.steps), final_step: t.steps.max(start), train_seconds, last_losses, last_checkpoint, last_samples })
}

/// Every tensor a checkpoint holds: networks (buffers included) and optimizer state.
pub fn state(family: &dyn Trainable) -> Vec<(String, tch::Tensor)> {
    let mut out = Vec::new();
    for (prefix, vs) in family.stores() {
        out.extend(checkpoint::named_vars(vs, prefix));
    }
    for (prefix, opt) in family.optimizers() {
        out.extend(opt.state_tensors(prefix));
    }
    out.extend(family.extra_state());
    out
}

/// Loads networks and optimizer state from checkpoint tensors.
pub fn restore(family: &mut dyn Trainable, tensors: &std::collections::HashMap<String, tch::Tensor>, origin: &str) -> Result<()> {
    for (prefix, vs) in family.stores() {
        checkpoint::restore_vars(vs, tensors, prefix, origin)?;
    }
    for (prefix, opt) in family.optimizers_mut() {
        opt.load_state(tensors, prefix)?;
    }
    family.load_extra_state(tensors)
}

/// Loads only the networks (for sampling and evaluation).
pub fn restore_networks(family: &dyn Trainable, tensors: &std::collections::HashMap<String, tch::Tensor>, origin: &str) -> Result<()> {
    for (prefix, vs) in family.stores() {
        checkpoint::restore_vars(vs, tensors, prefix, origin)?;
    }
    Ok(())
}

/// Keeps only the metrics lines of steps up to `step` (what a resumed run must not repeat).
fn truncate_metrics(path: &Path, step: i64) -> Result<()> {
    let Ok(f) = std::fs::File::open(path) else { return Ok(()) };
    let mut kept = String::new();
    for line in std::io::BufReader::new(f).lines() {
        let line = line.map_err(PipelineError::io(path))?;
        let s = serde_json::from_str::<serde_json::Value>(&line).ok().and_then(|v| v["step"].as_i64());
        if matches!(s, Some(s) if s <= step) {
            kept.push_str(&line);
            kept.push('\n');
        }
    }
    checkpoint::write_text_atomic(path, &kept)
}

fn remove_temp_files(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
