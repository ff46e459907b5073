//! The training loop: LR schedule, steps, NaN/Inf guard, metrics, sample grids, checkpoints, resume. The
//! update itself, with every regularizer, is [`update::Trainer`].
pub mod update;

use crate::checkpoint::{self, CheckpointMeta};
use crate::config::Settings;
use crate::error::{PipelineError, Result};
use crate::family::{Family, Losses};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
pub use update::Trainer;

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
    /// The last periodic evaluation (`eval.every`), if one ran this session.
    pub last_eval: Option<serde_json::Value>,
}

/// Evaluation while training (`eval.every`): the standard metrics of the family as it is (with its EMA
/// weights), and the score `eval.best` keeps the best checkpoint by (lower is better), with its name.
pub trait PeriodicEval {
    /// Evaluate every this many steps (and at the last step).
    fn every(&self) -> i64;
    fn evaluate(&self, family: &dyn Family) -> Result<(serde_json::Value, Option<(String, f64)>)>;
}

/// Which config a run trains, as its checkpoints record it.
pub struct Identity<'a> {
    /// The config text a checkpoint keeps (without the keys a resume may change).
    pub text: &'a str,
    /// Its hash.
    pub hash: &'a str,
    /// Fails unless a checkpoint (its metadata, in its folder) was made with this config.
    pub same_config: &'a dyn Fn(&CheckpointMeta, &Path) -> Result<()>,
}

/// Trains `family` from its newest checkpoint in `run_dir` (or from scratch) up to `s.train.steps`. With EMA,
/// the family ends holding the averaged weights (what its report evaluates).
pub fn train(family: &mut dyn Family, s: &Settings, id: &Identity, run_dir: &Path, ui: Ui, periodic: Option<&dyn PeriodicEval>) -> Result<Outcome> {
    let device = crate::device::resolve_device(&s.device)?;
    let mut trainer = Trainer::new(family, s, device)?;
    // In a data-parallel job rank 0 alone writes the run; the others read its checkpoints (to resume).
    let writes = trainer.place().writes();
    let ckpt_dir = run_dir.join("checkpoints");
    let samples_dir = run_dir.join("samples");
    if writes {
        std::fs::create_dir_all(&samples_dir).map_err(PipelineError::io(&samples_dir))?;
        // A killed run's half-written files (its temp files) go before anything is written.
        for dir in [run_dir, &ckpt_dir, &samples_dir] {
            checkpoint::remove_stale_temps(dir);
        }
    }
    let (latest, damaged) = checkpoint::load_latest_intact(&ckpt_dir)?;
    for d in damaged.iter().filter(|_| writes) {
        eprintln!("note: skipping a damaged checkpoint: {d}");
    }
    let (start, mut train_seconds, mut last_checkpoint) = match latest {
        Some((meta, tensors)) => {
            (id.same_config)(&meta, &ckpt_dir)?;
            let origin = ckpt_dir.join(checkpoint::stem(meta.step)).display().to_string();
            let world = trainer.place().world;
            if meta.world_size != world && writes {
                eprintln!(
                    "note: {origin} was written by {} data-parallel rank(s), this job has {world}: it resumes, but not \
                     bitwise as the same job uninterrupted would (each rank's image pool and share of the batch differ)",
                    meta.world_size
                );
            }
            trainer.restore(family, &tensors, &origin)?;
            (meta.step, meta.train_seconds, Some(PathBuf::from(origin + ".safetensors")))
        }
        None => (0, 0.0, None),
    };
    trainer.join(family)?;
    let metrics_path = run_dir.join("metrics.jsonl");
    let mut metrics: Box<dyn Write> = if writes {
        truncate_metrics(&metrics_path, start)?;
        let f = std::fs::OpenOptions::new().create(true).append(true).open(&metrics_path).map_err(PipelineError::io(&metrics_path))?;
        Box::new(MetricsFile(f))
    } else {
        Box::new(std::io::sink())
    };
    let t = &s.train;
    let mut tb = (t.tensorboard && writes).then(|| crate::tensorboard::Writer::create(&run_dir.join("tb"), start)).transpose()?;
    let mut progress = crate::progress::Progress::new(start, t.steps, ui.quiet || !writes);
    let started = Instant::now();
    let mut last_losses = Losses::new();
    let mut last_samples = None;
    let mut last_eval = None;
    let mut best = checkpoint::read_best(&ckpt_dir)?.and_then(|m| m.best);
    let mut page = writes.then(|| crate::report_html::Live::new(run_dir));
    for step in start..t.steps {
        trainer.scale_lr(t.lr_schedule.factor(step, t.steps));
        let mut losses = trainer.step(family, step)?;
        trainer.mean_losses(&mut losses)?;
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
        let log_now = done % t.log_every == 0 || last;
        if log_now {
            let mut line = serde_json::Map::new();
            line.insert("step".into(), done.into());
            for (k, v) in &losses {
                line.insert(k.clone(), serde_json::json!(v));
            }
            for (name, opt) in trainer.optimizers() {
                line.insert(format!("lr_{}", name.trim_start_matches("opt_")), serde_json::json!(opt.lr()));
            }
            line.insert("time".into(), serde_json::json!(elapsed));
            let line = serde_json::Value::Object(line);
            writeln!(metrics, "{line}").map_err(PipelineError::io(&metrics_path))?;
            if let Some(tb) = &mut tb { tb.scalars(done, &line)?; }
            progress.log(done, &losses);
        }
        let (sample_now, checkpoint_now) = (done % t.sample_every == 0 || last, done % t.checkpoint_every == 0 || last);
        let eval_now = periodic.filter(|p| done % p.every() == 0 || last);
        let writes_now = sample_now || checkpoint_now || eval_now.is_some();
        // Each rank's own state (image pools) goes into rank 0's checkpoint: every rank takes part.
        let ranks_state = if checkpoint_now { trainer.gather_rank_state(family)? } else { Vec::new() };
        if !writes {
            if writes_now {
                trainer.rank0_writes(done)?; // rank 0 writes samples, checkpoints and evaluations
            }
            continue;
        }
        if sample_now {
            let p = samples_dir.join(format!("{}.png", checkpoint::stem(done)));
            trainer.with_ema(|| family.write_samples(&p))?;
            if let Some(tb) = &mut tb { tb.image(done, &p)?; }
            last_samples = Some(p);
        }
        if checkpoint_now {
            metrics.flush().map_err(PipelineError::io(&metrics_path))?;
            let meta = CheckpointMeta {
                step: done,
                config_hash: id.hash.to_string(),
                config: Some(id.text.to_string()),
                tensors: format!("{}.safetensors", checkpoint::stem(done)),
                train_seconds: elapsed,
                losses: losses.clone().into_iter().collect(),
                best: None,
                world_size: trainer.place().world,
            };
            let mut state = trainer.state(family);
            state.extend(ranks_state);
            last_checkpoint = Some(checkpoint::save(&ckpt_dir, &state, &meta, t.keep_checkpoints)?);
        }
        if let Some(pe) = eval_now {
            let (eval, score) = progress.suspend(|| trainer.with_ema(|| pe.evaluate(family)))?;
            let line = serde_json::json!({ "step": done, "eval": eval, "time": train_seconds + started.elapsed().as_secs_f64() });
            writeln!(metrics, "{line}").map_err(PipelineError::io(&metrics_path))?;
            if let Some(tb) = &mut tb { tb.scalars(done, &line)?; }
            if let Some((name, value)) = score.filter(|(_, v)| v.is_finite()) {
                if best.as_ref().is_none_or(|b: &checkpoint::Best| value < b.value) {
                    let b = checkpoint::Best { metric: name, value };
                    let meta = CheckpointMeta {
                        step: done,
                        config_hash: id.hash.to_string(),
                        config: Some(id.text.to_string()),
                        tensors: String::new(),
                        train_seconds: train_seconds + started.elapsed().as_secs_f64(),
                        losses: losses.clone().into_iter().collect(),
                        best: Some(b.clone()),
                        world_size: trainer.place().world,
                    };
                    checkpoint::save_best(&ckpt_dir, &trainer.state(family), meta)?;
                    best = Some(b);
                }
            }
            last_eval = Some(eval);
        }
        if writes_now {
            trainer.rank0_writes(done)?;
        }
        if let Some(page) = page.as_mut().filter(|_| log_now || writes_now) {
            page.update(false)?;
        }
        progress.tick(done, &losses);
        last_losses = losses;
    }
    progress.finish();
    trainer.keep_ema();
    train_seconds += started.elapsed().as_secs_f64();
    Ok(Outcome { steps_run: t.steps - start.min(t.steps), final_step: t.steps.max(start), train_seconds, last_losses, last_checkpoint, last_samples, last_eval })
}

/// Loads only the networks (for sampling, evaluation and translation): the EMA weights of a network when the
/// checkpoint has them (`<net>_ema.*`), else its trained weights.
pub fn restore_networks(family: &dyn Family, tensors: &std::collections::HashMap<String, tch::Tensor>, origin: &str) -> Result<()> {
    for n in family.networks() {
        let ema = format!("{}_ema", n.name);
        let prefix = if tensors.keys().any(|k| k.starts_with(&format!("{ema}."))) { ema.as_str() } else { n.name };
        checkpoint::restore_vars(n.vs, tensors, prefix, origin)?;
    }
    Ok(())
}

/// `metrics.jsonl`, whose `flush` also syncs it to the disk (before each checkpoint).
struct MetricsFile(std::fs::File);

impl Write for MetricsFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.sync_data()
    }
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
