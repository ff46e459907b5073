//! The commands behind the CLI: train, resume, inspect, sample, eval, on run directories.
//!
//! A run directory holds `config.resolved.yaml`, `metrics.jsonl`, `checkpoints/`, `samples/` and, at the end,
//! `report.json`.
use crate::checkpoint;
use crate::config::load;
use crate::device::resolve_device;
use crate::engine::{self, Ui};
use crate::error::{PipelineError, Result};
use crate::family::{Condition, Family};
use crate::families::Config;
pub use crate::rundir::{build, config_hash, config_text, load_config, new_run_dir, report, run_config, text_hash};
use crate::rundir::{check_resumable, write_resolved};
use serde_json::json;
use std::path::Path;

/// `ganzoo train CONFIG`: a new run.
pub fn train(config: &Path, overrides: &[String], out: Option<&Path>, ui: Ui) -> Result<serde_json::Value> {
    let loaded = load_config(config, overrides)?;
    if !loaded.config.stages.is_empty() {
        return crate::pipeline::train(&loaded, overrides, out, None, ui);
    }
    let cfg = &loaded.config;
    let run_dir = new_run_dir(out, &cfg.name)?;
    let existed = run_dir.exists();
    std::fs::create_dir_all(&run_dir).map_err(PipelineError::io(&run_dir))?;
    let mut fam = match build(cfg, true, Some(&run_dir)) {
        Ok(f) => f,
        Err(e) => {
            if !existed {
                let _ = std::fs::remove_dir_all(&run_dir); // nothing of the run was written yet
            }
            return Err(e);
        }
    };
    write_resolved(&run_dir, &loaded, overrides)?;
    let outcome = crate::rundir::train(fam.as_mut(), cfg, &run_dir, ui)?;
    report(&run_dir, cfg, fam.as_ref(), &outcome)
}

/// `ganzoo train --resume RUN_DIR`: continues from the newest checkpoint (or from scratch if there is none).
pub fn resume(run_dir: &Path, overrides: &[String], ui: Ui) -> Result<serde_json::Value> {
    let loaded = run_config(run_dir, overrides)?;
    if !loaded.config.stages.is_empty() {
        return crate::pipeline::resume(run_dir, &loaded, overrides, None, ui);
    }
    let cfg = &loaded.config;
    // Refuse a changed model before anything in the run is rewritten.
    check_resumable(run_dir, cfg)?;
    let mut fam = build(cfg, true, Some(run_dir))?;
    if !overrides.is_empty() {
        write_resolved(run_dir, &loaded, overrides)?;
    }
    let outcome = crate::rundir::train(fam.as_mut(), cfg, run_dir, ui)?;
    report(run_dir, cfg, fam.as_ref(), &outcome)
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
    let cfg = run_config(run_dir, &[])?.config;
    let stage_dir = crate::pipeline::newest_stage_dir(run_dir, &cfg)?; // a pipeline: its newest stage
    let (cfg, run_dir) = if stage_dir == run_dir { (cfg, run_dir) } else { (run_config(&stage_dir, &[])?.config, stage_dir.as_path()) };
    let fam = build(&cfg, with_data, Some(run_dir))?;
    let step = restore_latest(run_dir, fam.as_ref())?;
    Ok((cfg, fam, step))
}

/// `ganzoo sample RUN_DIR --n N --out FILE.png [--seed S] [--class K | --prompt TEXT]`.
pub fn sample(run_dir: &Path, n: usize, out: &Path, seed: u64, cond: Option<&Condition>) -> Result<serde_json::Value> {
    if n == 0 {
        return Err(PipelineError::Usage("--n must be at least 1".into()));
    }
    let (_, fam, step) = open_run(run_dir, false)?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(PipelineError::io(parent))?;
    }
    match cond {
        Some(c) => fam.sample_with(n, seed, c, out)?,
        None => fam.sample_to(n, seed, out)?,
    }
    let asked = match cond {
        Some(Condition::Class(k)) => json!({ "class": k }),
        Some(Condition::Prompt(p)) => json!({ "prompt": p }),
        None => serde_json::Value::Null,
    };
    Ok(json!({ "out": out.display().to_string(), "n": n, "seed": seed, "checkpoint_step": step, "condition": asked }))
}

/// `ganzoo eval RUN_DIR`: the family's metrics on the newest checkpoint.
pub fn eval(run_dir: &Path) -> Result<serde_json::Value> {
    let (_, fam, step) = open_run(run_dir, false)?;
    let eval = fam.evaluate()?;
    let summary = fam.summarize(&eval);
    Ok(json!({ "checkpoint_step": step, "eval": eval, "summary": summary }))
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
    };
    let trainer = engine::Trainer::new(fam.as_ref(), &cfg.settings(), resolve_device(&cfg.device)?)?;
    let path = checkpoint::save(&run_dir.join("checkpoints"), &trainer.state(fam.as_ref()), &meta, 1)?;
    Ok(json!({ "run_dir": run_dir.display().to_string(), "imported": imported, "checkpoint": path.display().to_string() }))
}

/// `ganzoo translate RUN_DIR --direction a2b|b2a IN_DIR OUT_DIR`: every image of IN_DIR through the run's
/// A → B or B → A translator (cyclegan: G_A or G_B; unit: EN_A → DE_B or EN_B → DE_A), written under the same
/// file name. Files that are not images are skipped and listed; an unreadable image stops the command (naming
/// it) unless `skip_bad`, when it is skipped and listed. Each output file is written atomically, so none is
/// ever half-written; nothing is written when the run's checkpoint does not fit its networks.
pub fn translate(run_dir: &Path, a2b: bool, input: &Path, output: &Path, size: Option<i64>, skip_bad: bool, quiet: bool) -> Result<serde_json::Value> {
    let cfg = run_config(run_dir, &[])?.config;
    let not_translation = || PipelineError::Usage(format!("{}: translate needs a two-domain translation run (cyclegan, unit), this one is {}", run_dir.display(), cfg.model.family()));
    if !cfg.data.is_two_domain() {
        return Err(not_translation());
    }
    let device = resolve_device(&cfg.device)?;
    let fam = cfg.build(device, false, Some(run_dir))?;
    let Some(t) = fam.translator() else {
        return Err(not_translation());
    };
    restore_latest(run_dir, fam.as_ref())?;
    let size = size.or(Some(cfg.shape().height)).filter(|s| *s > 0);
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
