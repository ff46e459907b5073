//! Multi-stage pipelines: one config lists ordered `stages`, each the config with its own `set` overrides,
//! taking networks from earlier stages (`init_from`) and freezing some (`freeze`). E.g. StackGAN:
//!
//! ```yaml
//! stages:
//!   - name: stage1
//!     set: {model.stage: 1, train.steps: 2000}
//!   - name: stage2
//!     set: {model.stage: 2, train.steps: 1000}
//!     init_from: {G1: stage1}
//!     freeze: [G1]
//! ```
//!
//! Every stage is resolved and checked before anything trains: its config (strict keys, cross-field
//! problems), the stages and checkpoints `init_from` names, and the shapes of the networks it takes, so a
//! mismatch lists every tensor by name and shape up front. A stage runs as an ordinary run in
//! `RUN_DIR/stages/<name>/` (its resolved config, checkpoints, metrics, samples, report); the pipeline's own
//! `config.resolved.yaml` and `report.json` sit in `RUN_DIR`. `--resume` skips finished stages and continues
//! the first unfinished one from its newest checkpoint; `--stage NAME` runs one stage.
use crate::checkpoint;
pub use crate::config::StageConfig;
use crate::config::load::{self, Loaded};
use crate::engine::Ui;
use crate::error::{PipelineError, Result};
use crate::family::Family;
use crate::families::Config;
use crate::rundir;
use serde_json::json;
use serde_yaml::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tch::Tensor;

/// A stage with its resolved config.
#[derive(Debug, Clone)]
pub struct Stage {
    pub spec: StageConfig,
    pub cfg: Config,
}

/// Resolves every stage of `loaded` (the file and `--set` overrides, then the stage's `set`), reporting
/// every problem of every stage at once.
pub fn resolve(loaded: &Loaded<Config>, overrides: &[String]) -> Result<Vec<Stage>> {
    let mut base = loaded.value.clone();
    if let Value::Mapping(m) = &mut base {
        m.remove("stages");
    }
    let mut stages = Vec::new();
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for (i, spec) in loaded.config.stages.iter().enumerate() {
        let at = format!("stages[{i}] ({})", spec.name);
        if spec.name.is_empty() || !spec.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            problems.push(format!("stages[{i}].name: `{}` must be letters, digits, `-` or `_`", spec.name));
        }
        if seen.contains(&spec.name) {
            problems.push(format!("{at}: the name is used by an earlier stage"));
        }
        for (net, src) in &spec.init_from {
            if is_path(src) {
                if !Path::new(src).exists() {
                    problems.push(format!("{at}.init_from.{net}: {src} does not exist"));
                }
            } else if !seen.contains(src) {
                let names = loaded.config.stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
                let why = if loaded.config.stages.iter().any(|s| &s.name == src) { "a later (or the same) stage" } else { "no stage" };
                problems.push(format!("{at}.init_from.{net}: `{src}` is {why}; networks come from an earlier stage ({names}) or a checkpoint path"));
            }
        }
        for f in &spec.freeze {
            if !spec.init_from.contains_key(f) {
                problems.push(format!("{at}.freeze: `{f}` is not taken from an earlier stage (init_from), so it would stay at its random initialization"));
            }
        }
        seen.push(spec.name.clone());
        let mut v = base.clone();
        let mut keys = Vec::new();
        for (key, value) in &spec.set {
            if key.split('.').next() == Some("stages") || key.is_empty() || key.split('.').any(str::is_empty) {
                problems.push(format!("{at}.set: `{key}` is not a dotted config key such as train.steps"));
                continue;
            }
            set_dotted(&mut v, key, value.clone());
            keys.push((key.clone(), format!("stages[{i}].set {key}")));
        }
        match load::from_value::<Config>(v, &loaded.sources, &keys) {
            Err(e) => problems.push(format!("{at}: {e}")),
            Ok(cfg) => {
                problems.extend(cfg.problems().into_iter().map(|p| format!("{at}: {p}")));
                stages.push(Stage { spec: spec.clone(), cfg });
            }
        }
    }
    let _ = overrides; // already applied to `loaded.value`
    if !problems.is_empty() {
        return Err(PipelineError::Invalid(problems));
    }
    Ok(stages)
}

fn is_path(s: &str) -> bool {
    s.contains('/') || s.ends_with(".safetensors")
}

/// Sets `key` (dotted) in a YAML tree, creating sections on the way.
fn set_dotted(root: &mut Value, key: &str, value: Value) {
    let mut node = root;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !matches!(node, Value::Mapping(_)) {
            *node = Value::Mapping(Default::default());
        }
        let Value::Mapping(map) = node else { return };
        let k = Value::String(part.to_string());
        if i + 1 == parts.len() {
            map.insert(k, value);
            return;
        }
        node = map.entry(k).or_insert_with(|| Value::Mapping(Default::default()));
    }
}

/// The stage folder.
pub fn stage_dir(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join("stages").join(name)
}

/// Where `init_from` finds a network: the newest checkpoint of an earlier stage of this run, of a folder
/// (a stage folder or a run), or a checkpoint file.
fn source_checkpoint(run_dir: &Path, stages: &[Stage], src: &str) -> Result<(PathBuf, HashMap<String, Tensor>)> {
    if let Some(st) = stages.iter().find(|s| s.spec.name == src) {
        let dir = stage_dir(run_dir, src);
        let ckpts = dir.join("checkpoints");
        let Some((meta, tensors)) = checkpoint::load_latest(&ckpts)? else {
            return Err(PipelineError::Usage(format!("stage `{src}` has not run yet ({} holds no checkpoint); run it first", ckpts.display())));
        };
        if meta.step < st.cfg.train.steps {
            return Err(PipelineError::Usage(format!(
                "stage `{src}` stopped at step {} of {}; finish it first (ganzoo train --resume {})",
                meta.step, st.cfg.train.steps, run_dir.display()
            )));
        }
        return Ok((ckpts.join(checkpoint::stem(meta.step)), tensors));
    }
    let p = Path::new(src);
    if p.is_dir() {
        let ckpts = if p.join("checkpoints").is_dir() { p.join("checkpoints") } else { p.to_path_buf() };
        let Some((meta, tensors)) = checkpoint::load_latest(&ckpts)? else {
            return Err(PipelineError::Usage(format!("init_from: {} holds no checkpoint", p.display())));
        };
        return Ok((ckpts.join(checkpoint::stem(meta.step)), tensors));
    }
    let tensors = Tensor::read_safetensors(p).map_err(|e| PipelineError::Usage(format!("init_from: cannot read {} as safetensors: {e}", p.display())))?;
    Ok((p.to_path_buf(), tensors.into_iter().collect()))
}

/// Every variable of network `net` as `net.<name>` → shape.
fn shapes_of(fam: &dyn Family, net: &str) -> Option<BTreeMap<String, Vec<i64>>> {
    let nets = fam.networks();
    let n = nets.into_iter().find(|n| n.name == net)?;
    Some(n.vs.variables().into_iter().map(|(k, t)| (format!("{net}.{k}"), t.size())).collect())
}

/// The names of a family's networks, for messages.
fn net_names(fam: &dyn Family) -> String {
    fam.networks().iter().map(|n| n.name).collect::<Vec<_>>().join(", ")
}

/// The differences between what a stage expects and what it is given, one line per tensor.
fn mismatches(want: &BTreeMap<String, Vec<i64>>, have: &BTreeMap<String, Vec<i64>>, there: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (k, w) in want {
        match have.get(k) {
            None => out.push(format!("{k}: missing in {there} (this stage needs {w:?})")),
            Some(h) if h != w => out.push(format!("{k}: {h:?} in {there}, {w:?} in this stage")),
            _ => {}
        }
    }
    for (k, h) in have {
        if !want.contains_key(k) {
            out.push(format!("{k}: {h:?} in {there}, not in this stage's network"));
        }
    }
    out
}

/// Builds each stage's networks (CPU, no data) and checks that every `init_from` network exists in its source
/// with the same tensor names and shapes, and that `freeze` names networks the family can freeze.
pub fn preflight(run_dir: Option<&Path>, stages: &[Stage]) -> Result<Vec<Box<dyn Family>>> {
    let mut fams: Vec<Box<dyn Family>> = Vec::new();
    let mut problems = Vec::new();
    for st in stages {
        let mut fam = st.cfg.build(tch::Device::Cpu, false, None)?;
        let at = format!("stage `{}`", st.spec.name);
        for (net, src) in &st.spec.init_from {
            let Some(want) = shapes_of(fam.as_ref(), net) else {
                problems.push(format!("{at}: init_from names `{net}`, which family {} does not have here (it has {})", st.cfg.model.family(), net_names(fam.as_ref())));
                continue;
            };
            let (have, there) = match stages.iter().position(|s| &s.spec.name == src) {
                Some(j) => match shapes_of(fams[j].as_ref(), net) {
                    Some(h) => (h, format!("stage `{src}`")),
                    None => {
                        problems.push(format!("{at}: init_from takes `{net}` from stage `{src}`, which has no such network (it has {})", net_names(fams[j].as_ref())));
                        continue;
                    }
                },
                None => {
                    let (path, tensors) = source_checkpoint(run_dir.unwrap_or(Path::new(".")), stages, src)?;
                    let prefix = format!("{net}.");
                    let h = tensors.iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(k, t)| (k.clone(), t.size())).collect();
                    (h, path.display().to_string())
                }
            };
            let diff = mismatches(&want, &have, &there);
            if !diff.is_empty() {
                problems.push(format!("{at}: `{net}` from {there} is another architecture ({} tensor(s) differ):\n      {}", diff.len(), diff.join("\n      ")));
            }
        }
        if let Err(e) = fam.freeze(&st.spec.freeze) {
            problems.push(format!("{at}: {e}"));
        }
        fams.push(fam);
    }
    if !problems.is_empty() {
        return Err(PipelineError::Invalid(problems));
    }
    Ok(fams)
}

/// Writes the pipeline's resolved config (stages included) and each stage's.
fn write_resolved(run_dir: &Path, loaded: &Loaded<Config>, overrides: &[String], stages: &[Stage]) -> Result<()> {
    let head = rundir::resolved_header(loaded, overrides);
    checkpoint::write_text_atomic(&run_dir.join("config.resolved.yaml"), &format!("{head}{}", load::to_yaml(&loaded.config)?))?;
    for st in stages {
        let dir = stage_dir(run_dir, &st.spec.name);
        std::fs::create_dir_all(&dir).map_err(PipelineError::io(&dir))?;
        let text = format!("{head}# stage `{}` of the pipeline in {}\n{}", st.spec.name, run_dir.display(), load::to_yaml(&st.cfg)?);
        checkpoint::write_text_atomic(&dir.join("config.resolved.yaml"), &text)?;
    }
    Ok(())
}

/// Whether a stage has finished: its report is written and its newest checkpoint is at its last step.
fn finished(run_dir: &Path, st: &Stage) -> Result<Option<serde_json::Value>> {
    let dir = stage_dir(run_dir, &st.spec.name);
    let done = checkpoint::list(&dir.join("checkpoints"))?.last().is_some_and(|(step, _)| *step >= st.cfg.train.steps);
    let report = std::fs::read_to_string(dir.join("report.json")).ok().and_then(|t| serde_json::from_str(&t).ok());
    Ok(if done { report } else { None })
}

/// Runs one stage: takes its `init_from` networks when it starts fresh, freezes, trains (or continues), reports.
fn run_stage(run_dir: &Path, stages: &[Stage], i: usize, ui: Ui) -> Result<serde_json::Value> {
    let st = &stages[i];
    let dir = stage_dir(run_dir, &st.spec.name);
    let cfg = &st.cfg;
    if !ui.quiet {
        eprintln!("stage {}/{}: {}", i + 1, stages.len(), st.spec.name);
    }
    // A text encoder taken from an earlier stage comes with that stage's tokenizer.
    if let Some(src) = st.spec.init_from.get("T").filter(|s| !is_path(s)) {
        let (from, to) = (stage_dir(run_dir, src).join(crate::text::TOKENIZER_FILE), dir.join(crate::text::TOKENIZER_FILE));
        if from.exists() && !to.exists() {
            std::fs::create_dir_all(&dir).map_err(PipelineError::io(&dir))?;
            std::fs::copy(&from, &to).map_err(PipelineError::io(&to))?;
        }
    }
    let mut fam = rundir::build_for_training(cfg, &dir)?;
    if checkpoint::list(&dir.join("checkpoints"))?.is_empty() {
        for (net, src) in &st.spec.init_from {
            let (origin, tensors) = source_checkpoint(run_dir, stages, src)?;
            let nets = fam.networks();
            let n = nets
                .iter()
                .find(|n| n.name == net)
                .ok_or_else(|| PipelineError::Usage(format!("stage `{}`: no network `{net}`", st.spec.name)))?;
            checkpoint::restore_vars(n.vs, &tensors, net, &origin.display().to_string())?;
        }
    }
    fam.freeze(&st.spec.freeze)?;
    let outcome = rundir::train(fam.as_mut(), cfg, &dir, ui)?;
    rundir::report(&dir, cfg, fam.as_ref(), &outcome)
}

/// Runs the stages in order (or only `only`), skipping finished ones, and writes `RUN_DIR/report.json`.
fn run_all(run_dir: &Path, loaded: &Loaded<Config>, stages: &[Stage], only: Option<&str>, ui: Ui) -> Result<serde_json::Value> {
    if let Some(name) = only {
        if !stages.iter().any(|s| s.spec.name == name) {
            let names: Vec<_> = stages.iter().map(|s| s.spec.name.as_str()).collect();
            return Err(PipelineError::Usage(format!("--stage {name}: the pipeline has stages {}", names.join(", "))));
        }
    }
    let mut reports = Vec::new();
    for (i, st) in stages.iter().enumerate() {
        let selected = only.is_none_or(|n| n == st.spec.name);
        let report = match finished(run_dir, st)? {
            Some(r) if !selected || only.is_none() => r,
            _ if !selected => continue,
            _ => run_stage(run_dir, stages, i, ui)?,
        };
        reports.push(json!({ "stage": st.spec.name, "report": report }));
    }
    let summary = reports
        .iter()
        .map(|r| format!("{}: {}", r["stage"].as_str().unwrap_or(""), r["report"]["summary"].as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join("\n  ");
    let last = reports.last().map(|r| r["report"].clone()).unwrap_or_default();
    let r = json!({
        "name": loaded.config.name,
        "family": loaded.config.model.family(),
        "run_dir": run_dir.display().to_string(),
        "stages": reports,
        "steps": last["steps"],
        "train_seconds": reports.iter().filter_map(|r| r["report"]["train_seconds"].as_f64()).sum::<f64>(),
        "summary": summary,
        "samples": last["samples"],
    });
    let text = serde_json::to_string_pretty(&r).map_err(|e| PipelineError::Runtime(e.to_string()))?;
    checkpoint::write_text_atomic(&run_dir.join("report.json"), &text)?;
    Ok(r)
}

/// `ganzoo train CONFIG` of a config with `stages`: checks everything, then runs the stages into a new run.
pub fn train(loaded: &Loaded<Config>, overrides: &[String], out: Option<&Path>, only: Option<&str>, ui: Ui) -> Result<serde_json::Value> {
    let stages = resolve(loaded, overrides)?;
    let run_dir = rundir::new_run_dir(out, &loaded.config.name)?;
    preflight(Some(&run_dir), &stages)?;
    let fresh = rundir::FreshRun::create(&run_dir)?;
    // A run of one stage (`--stage`) is kept even when that stage cannot run yet: it is resumed stage by stage.
    let fresh = match only {
        Some(_) => {
            fresh.keep();
            None
        }
        None => Some(fresh),
    };
    write_resolved(&run_dir, loaded, overrides, &stages)?;
    let r = run_all(&run_dir, loaded, &stages, only, ui)?;
    if let Some(fresh) = fresh {
        fresh.keep();
    }
    Ok(r)
}

/// `ganzoo train --resume RUN_DIR` of a pipeline run: finished stages are kept, the first unfinished one
/// continues from its newest checkpoint, the rest follow.
pub fn resume(run_dir: &Path, loaded: &Loaded<Config>, overrides: &[String], only: Option<&str>, ui: Ui) -> Result<serde_json::Value> {
    let stages = resolve(loaded, overrides)?;
    preflight(Some(run_dir), &stages)?;
    // Refuse a changed model before anything in the run is rewritten.
    for st in &stages {
        rundir::check_resumable(&stage_dir(run_dir, &st.spec.name), &st.cfg)?;
    }
    if !overrides.is_empty() {
        write_resolved(run_dir, loaded, overrides, &stages)?;
    }
    run_all(run_dir, loaded, &stages, only, ui)
}

/// `ganzoo inspect` of a pipeline: each stage's resolved config and parameter counts per network.
pub fn inspect(loaded: &Loaded<Config>, overrides: &[String]) -> Result<serde_json::Value> {
    let stages = resolve(loaded, overrides)?;
    let fams = preflight(None, &stages)?;
    let mut params = serde_json::Map::new();
    let mut per_stage = Vec::new();
    for (st, fam) in stages.iter().zip(&fams) {
        let counts: serde_json::Map<_, _> = fam.parameter_counts().into_iter().map(|(n, c)| (n.to_string(), json!(c))).collect();
        for (n, c) in &counts {
            params.insert(format!("{}.{n}", st.spec.name), c.clone());
        }
        per_stage.push(json!({ "stage": st.spec.name, "parameters": counts, "frozen": st.spec.freeze, "resolved_yaml": load::to_yaml(&st.cfg)? }));
    }
    Ok(json!({
        "config": serde_json::to_value(&loaded.config).map_err(|e| PipelineError::Runtime(e.to_string()))?,
        "resolved_yaml": load::to_yaml(&loaded.config)?,
        "parameters": params,
        "stages": per_stage,
    }))
}

/// The folder `sample` and `eval` open: for a pipeline run, the last stage that has a checkpoint.
pub fn newest_stage_dir(run_dir: &Path, cfg: &Config) -> Result<PathBuf> {
    for spec in cfg.stages.iter().rev() {
        let dir = stage_dir(run_dir, &spec.name);
        if !checkpoint::list(&dir.join("checkpoints"))?.is_empty() {
            return Ok(dir);
        }
    }
    Ok(run_dir.to_path_buf())
}

/// `ganzoo train CONFIG --stage NAME` / `ganzoo train --resume RUN_DIR --stage NAME`: one stage of a pipeline
/// (the stages it takes networks from must have finished in that run).
pub fn train_one_stage(config: Option<&Path>, resume_dir: Option<&Path>, overrides: &[String], out: Option<&Path>, stage: &str, ui: Ui) -> Result<serde_json::Value> {
    let not_pipeline = |p: &Path| PipelineError::Usage(format!("--stage {stage}: {} has no `stages` list; it is a single-stage config", p.display()));
    crate::dist::refuse_stages_in_a_job()?;
    match (config, resume_dir) {
        (_, Some(dir)) => {
            let loaded = rundir::run_config(dir, overrides)?;
            if loaded.config.stages.is_empty() {
                return Err(not_pipeline(&dir.join("config.resolved.yaml")));
            }
            resume(dir, &loaded, overrides, Some(stage), ui)
        }
        (Some(path), None) => {
            let loaded = rundir::load_config(path, overrides)?;
            if loaded.config.stages.is_empty() {
                return Err(not_pipeline(path));
            }
            train(&loaded, overrides, out, Some(stage), ui)
        }
        (None, None) => Err(PipelineError::Usage("give a CONFIG or --resume RUN_DIR".into())),
    }
}
