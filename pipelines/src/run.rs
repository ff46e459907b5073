//! The commands behind the CLI: train, resume, inspect, sample, eval, on run directories.
//!
//! A run directory holds `config.resolved.yaml`, `metrics.jsonl`, `checkpoints/`, `samples/` and, at the end,
//! `report.json`.
use crate::checkpoint;
use crate::config::load;
use crate::device::resolve_device;
use crate::engine::{self, Ui};
use crate::error::{PipelineError, Result};
use crate::family::{Compared, Condition, Family};
use crate::families::Config;
pub use crate::rundir::{build, config_hash, config_text, load_config, new_run_dir, report, run_config, text_hash};
use crate::rundir::{build_for_training, check_resumable, write_resolved};
use serde_json::json;
use crate::metrics::Evaluator;
use std::path::{Path, PathBuf};

/// `ganzoo train CONFIG`: a new run.
pub fn train(config: &Path, overrides: &[String], out: Option<&Path>, ui: Ui) -> Result<serde_json::Value> {
    let loaded = load_config(config, overrides)?;
    if !loaded.config.stages.is_empty() {
        crate::dist::refuse_stages_in_a_job()?;
        return crate::pipeline::train(&loaded, overrides, out, None, ui);
    }
    let cfg = &loaded.config;
    let place = crate::dist::place()?;
    if !place.writes() {
        // Another rank of a data-parallel job: it trains with rank 0 and writes nothing (rank 0 writes the run).
        let scratch = scratch_dir(place)?;
        let r = build_for_training(cfg, &scratch).and_then(|mut fam| crate::rundir::train(fam.as_mut(), cfg, &scratch, ui));
        let _ = std::fs::remove_dir_all(&scratch);
        r?;
        return Ok(serde_json::json!({ "rank": place.rank, "world_size": place.world }));
    }
    let run_dir = new_run_dir(out, &cfg.name)?;
    let fresh = crate::rundir::FreshRun::create(&run_dir)?;
    let mut fam = build_for_training(cfg, &run_dir)?;
    write_resolved(&run_dir, &loaded, overrides)?;
    let outcome = crate::rundir::train(fam.as_mut(), cfg, &run_dir, ui)?;
    let r = report(&run_dir, cfg, fam.as_ref(), &outcome)?;
    fresh.keep();
    Ok(r)
}

/// The most samples `ganzoo sample` draws into one grid (a 100 × 100 grid).
pub const MAX_GRID: usize = 10_000;

/// `ganzoo train --resume RUN_DIR`: continues from the newest checkpoint (or from scratch if there is none).
pub fn resume(run_dir: &Path, overrides: &[String], ui: Ui) -> Result<serde_json::Value> {
    let loaded = run_config(run_dir, overrides)?;
    if !loaded.config.stages.is_empty() {
        crate::dist::refuse_stages_in_a_job()?;
        return crate::pipeline::resume(run_dir, &loaded, overrides, None, ui);
    }
    let cfg = &loaded.config;
    // Refuse a changed model before anything in the run is rewritten.
    check_resumable(run_dir, cfg)?;
    let mut fam = build_for_training(cfg, run_dir)?;
    let place = crate::dist::place()?;
    if !place.writes() {
        // Another rank of a data-parallel job: resumes from the run's checkpoints, writes nothing.
        crate::rundir::train(fam.as_mut(), cfg, run_dir, ui)?;
        return Ok(serde_json::json!({ "rank": place.rank, "world_size": place.world }));
    }
    if !overrides.is_empty() {
        write_resolved(run_dir, &loaded, overrides)?;
    }
    let outcome = crate::rundir::train(fam.as_mut(), cfg, run_dir, ui)?;
    report(run_dir, cfg, fam.as_ref(), &outcome)
}

/// The folder of a rank other than 0 in a new run: empty (no checkpoint to resume), for what a family derives
/// at build (a tokenizer trained on the captions), removed when the rank stops.
fn scratch_dir(place: crate::dist::Place) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("ganzoo-rank{}-of-{}-{}", place.rank, place.world, std::process::id()));
    std::fs::create_dir_all(&dir).map_err(PipelineError::io(&dir))?;
    Ok(dir)
}

/// `ganzoo inspect CONFIG`: the resolved config and each network's parameter count.
pub fn inspect(config: &Path, overrides: &[String]) -> Result<serde_json::Value> {
    let loaded = load_config(config, overrides)?;
    if !loaded.config.stages.is_empty() {
        return crate::pipeline::inspect(&loaded, overrides);
    }
    let fam = loaded.config.build(tch::Device::Cpu, false, None)?;
    let params: serde_json::Map<_, _> = fam.parameter_counts().into_iter().map(|(n, c)| (n.to_string(), json!(c))).collect();
    Ok(json!({
        "config": serde_json::to_value(&loaded.config).map_err(|e| PipelineError::Runtime(e.to_string()))?,
        "resolved_yaml": load::to_yaml(&loaded.config)?,
        "parameters": params,
        "data_shape": [loaded.config.shape().channels, loaded.config.shape().height, loaded.config.shape().width],
    }))
}

/// A run's config and family with the newest checkpoint's networks loaded.
fn open_run(run_dir: &Path, with_data: bool) -> Result<(Config, Box<dyn Family>, i64)> {
    open_run_with(run_dir, with_data, &[], false)
}

/// [`open_run`] with `overrides` of the config (the eval section) and, with `best`, the best checkpoint
/// (`eval.best`) instead of the newest.
fn open_run_with(run_dir: &Path, with_data: bool, overrides: &[String], best: bool) -> Result<(Config, Box<dyn Family>, i64)> {
    if let Some(o) = overrides.iter().find(|o| !o.starts_with("eval.")) {
        return Err(PipelineError::Usage(format!("--set {o}: only eval.* keys can be changed for a trained run")));
    }
    let cfg = run_config(run_dir, overrides)?.config;
    let stage_dir = crate::pipeline::newest_stage_dir(run_dir, &cfg)?; // a pipeline: its newest stage
    let (cfg, run_dir) = if stage_dir == run_dir { (cfg, run_dir) } else { (run_config(&stage_dir, overrides)?.config, stage_dir.as_path()) };
    let fam = build(&cfg, with_data, Some(run_dir))?;
    let step = match best {
        false => restore_latest(run_dir, fam.as_ref())?,
        true => {
            let ckpt_dir = run_dir.join("checkpoints");
            let Some((meta, tensors)) = checkpoint::load_best(&ckpt_dir)? else {
                return Err(PipelineError::Usage(format!("{} holds no best checkpoint; train with eval.every and eval.best to keep one", ckpt_dir.display())));
            };
            engine::restore_networks(fam.as_ref(), &tensors, &ckpt_dir.join(&meta.tensors).display().to_string())?;
            meta.step
        }
    };
    Ok((cfg, fam, step))
}

/// `ganzoo sample RUN_DIR --n N --out FILE.png [--seed S] [--class K | --prompt TEXT]...`: with several
/// conditions, one row of `n` each.
pub fn sample(run_dir: &Path, n: usize, out: &Path, seed: u64, conds: &[Condition]) -> Result<serde_json::Value> {
    if n == 0 {
        return Err(PipelineError::Usage("--n must be at least 1".into()));
    }
    if n.saturating_mul(conds.len().max(1)) > MAX_GRID {
        return Err(PipelineError::Usage(format!("--n {n} for {} condition(s) is above the maximum of {MAX_GRID} samples in one grid", conds.len().max(1))));
    }
    let (_, fam, step) = open_run(run_dir, false)?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(PipelineError::io(parent))?;
    }
    match conds.is_empty() {
        false => fam.sample_with(n, seed, conds, out)?,
        true => fam.sample_to(n, seed, out)?,
    }
    let asked: Vec<_> = conds
        .iter()
        .map(|c| match c {
            Condition::Class(k) => json!({ "class": k }),
            Condition::Prompt(p) => json!({ "prompt": p }),
        })
        .collect();
    Ok(json!({ "out": out.display().to_string(), "n": n, "seed": seed, "checkpoint_step": step, "conditions": asked }))
}

/// `ganzoo eval RUN_DIR [--set eval.KEY=VALUE]… [--best]`: the family's own measures and the standard metrics
/// (`eval.metrics`, each comparison with its protocol) of the newest (or best) checkpoint.
pub fn eval(run_dir: &Path, overrides: &[String], best: bool, quiet: bool) -> Result<serde_json::Value> {
    let (cfg, fam, step) = open_run_with(run_dir, false, overrides, best)?;
    let eval = fam.evaluate()?;
    let mut summary = fam.summarize(&eval);
    let s = cfg.settings();
    let wanted = !s.data.is_points() && (!s.eval.metrics.is_empty() || s.eval.inception.is_some());
    let metrics = match wanted {
        true => Evaluator::new(&s.eval, resolve_device(&s.device)?, quiet)?.evaluate(fam.as_ref(), &s)?.map(|e| e.json),
        false => None,
    };
    if let Some(m) = &metrics {
        summary = format!("{summary}; {}", crate::metrics::summarize(m));
    }
    Ok(json!({ "checkpoint_step": step, "eval": eval, "metrics": metrics, "summary": summary }))
}

/// One side of `ganzoo fid` / `metrics` / `stats`: an image folder, FID statistics (`.npz`) or a run.
pub enum Side {
    Folder(PathBuf),
    Stats(PathBuf),
    Run(PathBuf),
}

impl Side {
    /// What `path` is: a run directory (it has `config.resolved.yaml`), a folder, or a `.npz` file.
    pub fn of(path: &Path) -> Result<Side> {
        if path.is_dir() {
            return Ok(if path.join("config.resolved.yaml").exists() { Side::Run(path.into()) } else { Side::Folder(path.into()) });
        }
        if !path.exists() {
            return Err(PipelineError::Usage(format!("{}: no such folder or file", path.display())));
        }
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("npz") => Ok(Side::Stats(path.into())),
            _ => Err(PipelineError::Usage(format!("{}: give an image folder, a run directory or a .npz of FID statistics (mu, sigma)", path.display()))),
        }
    }
}

/// How `ganzoo fid` / `metrics` / `stats` measure.
#[derive(Debug, Clone)]
pub struct MeasureOptions {
    /// Images drawn from a run (default: its eval.samples).
    pub n: Option<usize>,
    pub resize: crate::config::ResizeProtocol,
    /// The feature network (default `<cache>/inception/default_1.pt`).
    pub network: Option<PathBuf>,
    /// A TorchScript classifier returning logits: the Inception Score of A (`metrics` only).
    pub inception: Option<PathBuf>,
    pub batch_size: usize,
    /// `auto`, `cpu`, `cuda`, `cuda:N`.
    pub device: String,
    pub seed: u64,
    pub quiet: bool,
}

impl MeasureOptions {
    fn evaluator(&self, metrics: Vec<crate::config::StandardMetric>, inception: Option<PathBuf>) -> Result<Evaluator> {
        let e = crate::config::EvalConfig { metrics, resize: self.resize, network: self.network.clone(), inception, batch_size: self.batch_size, ..Default::default() };
        Evaluator::new(&e, resolve_device(&self.device)?, self.quiet)
    }
}

/// Features of a folder or of a run's generated images (the first comparison of its family: samples, A→B,
/// Stage-II, prior samples), `opts.n` of them drawn with `opts.seed`'s run seed.
fn features_of(side: &Side, ev: &Evaluator, opts: &MeasureOptions) -> Result<crate::metrics::Features> {
    match side {
        Side::Folder(dir) => ev.folder(dir),
        Side::Run(dir) => {
            let (cfg, fam, step) = open_run(dir, false)?;
            let n = opts.n.unwrap_or(cfg.eval.samples);
            let (max, what) = crate::config::limits::maximum("samples");
            if n as i64 > max {
                return Err(PipelineError::Usage(format!("--n {n} is above the maximum of {max} {what}")));
            }
            let sets = fam.metric_sets(n)?;
            let Some(set) = sets.first() else {
                return Err(PipelineError::Usage(format!("{}: this run ({}) makes no images to measure", dir.display(), cfg.data.kind())));
            };
            let mut f = match &set.generated {
                Compared::Made(images) => ev.generated(images, &format!("{}: {}", set.name, set.how))?,
                Compared::Real(r) => ev.reference(&cfg.settings(), r, n)?,
            };
            f.what = format!("{} ({}, step {step})", f.what, dir.display());
            Ok(f)
        }
        Side::Stats(p) => Err(stats_are_not_features(p)),
    }
}

fn stats_are_not_features(p: &Path) -> PipelineError {
    PipelineError::Usage(format!(
        "{}: a .npz holds only mu and sigma; KID, precision/recall and density/coverage need the images (give the folder or the run), and `ganzoo fid` takes it",
        p.display()
    ))
}

/// FID statistics of one side, and what it is.
fn stats_of_side(side: &Side, ev: &Evaluator, opts: &MeasureOptions) -> Result<(ganzoo_data::fid_stats::GaussianStats, String)> {
    match side {
        Side::Stats(p) => Ok((crate::metrics::read_stats(p)?, format!("the statistics in {}", p.display()))),
        _ => {
            let f = features_of(side, ev, opts)?;
            Ok((crate::metrics::stats_of(&f)?, f.what))
        }
    }
}

/// `ganzoo fid A B`: the FID between two sides (folders, `.npz` statistics, runs), with its protocol.
pub fn fid(a: &Path, b: &Path, opts: &MeasureOptions) -> Result<serde_json::Value> {
    let (sa, sb) = (Side::of(a)?, Side::of(b)?);
    let ev = opts.evaluator(vec![crate::config::StandardMetric::Fid], None)?;
    let (ga, wa) = stats_of_side(&sa, &ev, opts)?;
    let (gb, wb) = stats_of_side(&sb, &ev, opts)?;
    let v = crate::metrics::fid_of_stats(&ga, &gb)?;
    Ok(json!({ "fid": v, "a": wa, "b": wb, "protocol": format!("FID (float64); {}; {wa} against {wb}; seed {}", ev.describe(), opts.seed) }))
}

/// `ganzoo metrics A B`: FID, KID, precision/recall and density/coverage of A (generated) against B
/// (reference), with their protocol.
pub fn metrics(a: &Path, b: &Path, opts: &MeasureOptions) -> Result<serde_json::Value> {
    let (sa, sb) = (Side::of(a)?, Side::of(b)?);
    for s in [&sa, &sb] {
        if let Side::Stats(p) = s {
            return Err(stats_are_not_features(p));
        }
    }
    let ev = opts.evaluator(crate::config::EvalConfig::default().metrics, opts.inception.clone())?;
    let fa = features_of(&sa, &ev, opts)?;
    let fb = features_of(&sb, &ev, opts)?;
    let mut r = ev.compare(&fa, &fb, opts.seed)?;
    r.insert("a".into(), json!(fa.what));
    r.insert("b".into(), json!(fb.what));
    r.insert("protocol".into(), json!(ev.protocol(&fa, &fb, opts.seed)));
    Ok(serde_json::Value::Object(r))
}

/// `ganzoo stats DIR|RUN --out FILE.npz`: the FID statistics (mu, sigma) of a folder or of a run's generated
/// images, in pytorch-fid's `.npz` layout. An existing file is replaced only with `force`; it is written
/// atomically.
pub fn stats(input: &Path, out: &Path, force: bool, opts: &MeasureOptions) -> Result<serde_json::Value> {
    if out.exists() && !force {
        return Err(PipelineError::Usage(format!("{}: already exists; choose another --out or pass --force to replace it", out.display())));
    }
    if out.extension().and_then(|e| e.to_str()) != Some("npz") {
        return Err(PipelineError::Usage(format!("--out {}: the statistics file must end in .npz", out.display())));
    }
    let side = Side::of(input)?;
    if let Side::Stats(_) = side {
        return Err(PipelineError::Usage(format!("{}: already statistics; give an image folder or a run", input.display())));
    }
    let ev = opts.evaluator(vec![crate::config::StandardMetric::Fid], None)?;
    let (g, what) = stats_of_side(&side, &ev, opts)?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(PipelineError::io(parent))?;
    }
    checkpoint::write_atomic(out, |tmp| ganzoo_data::fid_stats::write_fid_stats(tmp, &g).map_err(PipelineError::Data))?;
    Ok(json!({ "out": out.display().to_string(), "of": what, "dim": g.dim, "protocol": format!("{}; {what}", ev.describe()) }))
}

/// `ganzoo import CONFIG --weights NET=FILE... --out RUN_DIR`: a run directory whose step-0 checkpoint holds
/// networks loaded from safetensors state_dicts saved by the reference PyTorch code (e.g. CycleGAN's
/// `latest_net_G_A.pth` converted with `safetensors.torch.save_file`), so `translate`, `sample` and `eval` use them.
pub fn import(config: &Path, overrides: &[String], weights: &[String], out: &Path) -> Result<serde_json::Value> {
    let loaded = load_config(config, overrides)?;
    let cfg = &loaded.config;
    let run_dir = new_run_dir(Some(out), &cfg.name)?;
    let fam = build(cfg, false, Some(&run_dir))?;
    let mut imported = Vec::new();
    for w in weights {
        let Some((net, file)) = w.split_once('=') else {
            return Err(PipelineError::Usage(format!("--weights {w}: expected NET=FILE, e.g. G_A=latest_net_G_A.safetensors")));
        };
        let nets = fam.networks();
        let Some(vs) = nets.iter().find(|n| n.name == net).map(|n| n.vs) else {
            let names: Vec<_> = nets.iter().map(|n| n.name).collect();
            return Err(PipelineError::Usage(format!("--weights {w}: no network `{net}` in family {}; it has {}", cfg.model.family(), names.join(", "))));
        };
        let tensors = tch::Tensor::read_safetensors(file).map_err(|e| PipelineError::Usage(format!("--weights {w}: cannot read {file} as safetensors: {e}")))?;
        ganzoo_models::cyclegan::load_named_tensors(vs, &tensors)
            .map_err(|e| PipelineError::Usage(format!("--weights {w}: {file} does not fit {net}: {e}")))?;
        imported.push(net.to_string());
    }
    std::fs::create_dir_all(&run_dir).map_err(PipelineError::io(&run_dir))?;
    write_resolved(&run_dir, &loaded, overrides)?;
    let meta = checkpoint::CheckpointMeta {
        step: 0,
        config_hash: config_hash(cfg)?,
        config: Some(config_text(cfg)?),
        tensors: format!("{}.safetensors", checkpoint::stem(0)),
        train_seconds: 0.0,
        losses: Default::default(),
        best: None,
        world_size: 1,
    };
    let trainer = engine::Trainer::new(fam.as_ref(), &cfg.settings(), resolve_device(&cfg.device)?)?;
    let path = checkpoint::save(&run_dir.join("checkpoints"), &trainer.state(fam.as_ref()), &meta, 1)?;
    Ok(json!({ "run_dir": run_dir.display().to_string(), "imported": imported, "checkpoint": path.display().to_string() }))
}

/// `ganzoo export RUN_DIR --net NAME --out FILE [--format torchscript|reference] [--size N] [--force]`: one
/// network of the newest checkpoint (its EMA weights where the run has them) as TorchScript or as a
/// reference-named state_dict, with `FILE.json` beside it ([`crate::export`]). The output files are checked
/// before the run is opened; nothing is written when anything is refused.
pub fn export(run_dir: &Path, opts: &crate::export::ExportOptions) -> Result<serde_json::Value> {
    crate::export::check_outputs(opts)?;
    let (cfg, fam, step) = open_run(run_dir, false)?;
    crate::export::export(&cfg, fam.as_ref(), step, opts)
}

/// `ganzoo translate RUN_DIR --direction a2b|b2a IN_DIR OUT_DIR`: every image of IN_DIR through the run's
/// A → B or B → A translator (cyclegan: G_A or G_B; unit: EN_A → DE_B or EN_B → DE_A; pix2pix, cut: G, A → B only), written under the same
/// file name. Files that are not images are skipped and listed; an unreadable image stops the command (naming
/// it) unless `skip_bad`, when it is skipped and listed. Each output file is written atomically, so none is
/// ever half-written; nothing is written when the run's checkpoint does not fit its networks.
pub fn translate(run_dir: &Path, a2b: bool, input: &Path, output: &Path, size: Option<i64>, skip_bad: bool, quiet: bool) -> Result<serde_json::Value> {
    let cfg = run_config(run_dir, &[])?.config;
    let not_translation = || PipelineError::Usage(format!("{}: translate needs a translation run (cyclegan, unit, pix2pix, cut), this one is {}", run_dir.display(), cfg.model.family()));
    if !cfg.data.is_two_domain() {
        return Err(not_translation());
    }
    let device = resolve_device(&cfg.device)?;
    let fam = cfg.build(device, false, Some(run_dir))?;
    let Some(t) = fam.translator() else {
        return Err(not_translation());
    };
    if !a2b && !t.both_ways() {
        return Err(PipelineError::Usage(format!(
            "--direction b2a: a {} run translates A → B only (its one generator); use --direction a2b",
            cfg.model.family()
        )));
    }
    let size = size.or(Some(cfg.shape().height)).filter(|s| *s > 0);
    let m = t.side_multiple();
    match size {
        Some(s) if s % m != 0 => {
            return Err(PipelineError::Usage(format!("--size {s}: this {} run's generator takes sides that are multiples of {m}", cfg.model.family())));
        }
        None if m > 4 => {
            return Err(PipelineError::Usage(format!(
                "--size 0: keeping each image's own size needs sides that are multiples of 4, but this {} run's generator takes multiples of {m}; give --size N (e.g. {})",
                cfg.model.family(),
                cfg.shape().height
            )));
        }
        _ => {}
    }
    restore_latest(run_dir, fam.as_ref())?;
    let r = crate::imagemap::map_folder(input, output, size, cfg.shape().channels, skip_bad, quiet, "translating", &[], |x| {
        Ok(t.translate(&x.to_device(device), a2b).squeeze_dim(0)) // (C, H, W)
    })?;
    let mut out = r.json(output);
    out.insert("translated".into(), json!(r.done));
    out.insert("direction".into(), json!(if a2b { "a2b" } else { "b2a" }));
    Ok(serde_json::Value::Object(out))
}

/// `ganzoo reconstruct RUN_DIR IN_DIR OUT_DIR`: every image of IN_DIR encoded and decoded by a vaegan run
/// (Dec(μ(x)), evaluation mode), written under the same file name, plus `reconstructions.png`, a grid of
/// input | reconstruction pairs. Bad files are handled as in `translate`.
pub fn reconstruct(run_dir: &Path, input: &Path, output: &Path, skip_bad: bool, quiet: bool) -> Result<serde_json::Value> {
    let cfg = run_config(run_dir, &[])?.config;
    let crate::families::ModelConfig::Vaegan(m) = &cfg.model else {
        return Err(PipelineError::Usage(format!("{}: reconstruct needs a vaegan run, this one is {}", run_dir.display(), cfg.model.family())));
    };
    let fam = crate::families::vaegan::VaeGan::new(&cfg.settings(), m, resolve_device(&cfg.device)?, false)?;
    restore_latest(run_dir, &fam)?;
    crate::families::vaegan::reconstruct_folder(&fam, input, output, skip_bad, quiet)
}

/// Loads the newest checkpoint's networks into `fam`; returns its step.
fn restore_latest(run_dir: &Path, fam: &dyn Family) -> Result<i64> {
    let ckpt_dir = run_dir.join("checkpoints");
    let Some((meta, tensors)) = checkpoint::load_latest(&ckpt_dir)? else {
        return Err(PipelineError::Usage(format!("{} holds no checkpoint yet", ckpt_dir.display())));
    };
    engine::restore_networks(fam, &tensors, &ckpt_dir.join(checkpoint::stem(meta.step)).display().to_string())?;
    Ok(meta.step)
}

/// `ganzoo data check captioned ROOT`: counts and every problem of a CUB / Oxford-102 style folder.
pub fn check_captioned(root: &Path, images: &str, text: &str) -> Result<serde_json::Value> {
    let cfg = ganzoo_data::captions::CaptionedConfig {
        images: images.to_string(),
        text: text.to_string(),
        ..ganzoo_data::captions::CaptionedConfig::new(root)
    };
    serde_json::to_value(ganzoo_data::captions::check_layout(&cfg)).map_err(|e| PipelineError::Runtime(e.to_string()))
}
