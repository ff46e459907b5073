//! `ganzoo export`: a trained network given back in the forms PyTorch users load, with no ganzoo at run time.
//!
//! - TorchScript (`--format torchscript`, `FILE.pt`): the network traced with libtorch's tracer
//!   (`CModule::create_by_tracing`) in evaluation mode, its weights held as constants of the graph; loads with
//!   `torch.jit.load` in Python and C++.
//! - Reference (`--format reference`, `FILE.safetensors`): the network's state_dict under the reference code's key
//!   names, the inverse of `ganzoo import`.
//!
//! Beside either, `FILE.json` records the family, the network, its inputs (names, shapes, value ranges), the
//! config's name and the checkpoint step. Both files are written atomically; nothing is written when anything
//! is refused.
use crate::checkpoint;
use crate::error::{PipelineError, Result};
use crate::families::Config;
use crate::family::{Family, Translate};
use serde_json::json;
use std::path::PathBuf;
use tch::{CModule, Kind, Tensor};

/// What `ganzoo export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A traced TorchScript module (`.pt`).
    TorchScript,
    /// The state_dict under the reference code's key names (`.safetensors`).
    Reference,
}

impl Format {
    /// The format named by `--format` (`torchscript`, `reference`).
    pub fn parse(s: &str) -> Result<Format> {
        match s {
            "torchscript" => Ok(Format::TorchScript),
            "reference" => Ok(Format::Reference),
            other => Err(PipelineError::Usage(format!("--format {other}: expected torchscript or reference"))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::TorchScript => "torchscript",
            Format::Reference => "reference",
        }
    }

    /// The extension `--out` must have.
    fn extension(self) -> &'static str {
        match self {
            Format::TorchScript => "pt",
            Format::Reference => "safetensors",
        }
    }
}

/// What to export and where.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The network's name in the run (`G_A`, `G_B`, …).
    pub net: String,
    pub out: PathBuf,
    pub format: Format,
    /// The side of the traced example image (default: the run's `data.size`).
    pub size: Option<i64>,
    /// Replace existing output files.
    pub force: bool,
}

/// The families and networks with a TorchScript export, in words (for errors).
const TORCHSCRIPT_SUPPORTED: &str = "cyclegan G_A and G_B";
/// The families with a reference layout, in words.
const REFERENCE_SUPPORTED: &str = "cyclegan (its networks already carry the reference's key names)";

/// The largest difference allowed between the traced module and ganzoo's own network on the same input.
const TOLERANCE: f64 = 1e-5;

/// The output files (`FILE.ext`, `FILE.json`), refused when `out` has the wrong extension or, without `force`,
/// when either exists. Checked before the run is opened.
pub fn check_outputs(opts: &ExportOptions) -> Result<(PathBuf, PathBuf)> {
    let ext = opts.format.extension();
    if opts.out.extension().and_then(|e| e.to_str()) != Some(ext) {
        return Err(PipelineError::Usage(format!("--out {}: a {} export must end in .{ext}", opts.out.display(), opts.format.name())));
    }
    let meta = opts.out.with_extension("json");
    if !opts.force {
        if let Some(p) = [&opts.out, &meta].into_iter().find(|p| p.exists()) {
            return Err(PipelineError::Usage(format!("{}: already exists; choose another --out or pass --force to replace it", p.display())));
        }
    }
    Ok((opts.out.clone(), meta))
}

/// Exports network `opts.net` of a run whose family `fam` (config `cfg`) holds the weights of checkpoint `step`
/// (its EMA weights where it has them). Returns what `FILE.json` records, with the written paths.
pub fn export(cfg: &Config, fam: &dyn Family, step: i64, opts: &ExportOptions) -> Result<serde_json::Value> {
    let (out, meta_path) = check_outputs(opts)?;
    let family = cfg.model.family();
    let nets = fam.networks();
    let Some(net) = nets.iter().find(|n| n.name == opts.net) else {
        let names: Vec<_> = nets.iter().map(|n| n.name).collect();
        return Err(PipelineError::Usage(format!("--net {}: this {family} run has no such network; it has {}", opts.net, names.join(", "))));
    };
    let ema = cfg.settings().train.ema.is_some();
    let mut meta = json!({
        "format": opts.format.name(),
        "family": family,
        "net": net.name,
        "config": cfg.name,
        "checkpoint_step": step,
        "ema_weights": ema,
    });
    let make_parent = || match out.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => std::fs::create_dir_all(parent).map_err(PipelineError::io(parent)),
        None => Ok(()),
    };
    match opts.format {
        Format::Reference => {
            if family != "cyclegan" {
                return Err(PipelineError::Usage(format!(
                    "--format reference: a {family} run has no reference layout yet; supported: {REFERENCE_SUPPORTED}"
                )));
            }
            let tensors = reference_state_dict(net.vs);
            meta["tensors"] = json!(tensors.len());
            make_parent()?;
            checkpoint::write_atomic(&out, |tmp| {
                Tensor::write_safetensors(&tensors, tmp).map_err(PipelineError::torch(format!("writing {}", tmp.display())))
            })?;
        }
        Format::TorchScript => {
            let direction = match (family, net.name) {
                ("cyclegan", "G_A") => true,
                ("cyclegan", "G_B") => false,
                _ => {
                    return Err(PipelineError::Usage(format!(
                        "--net {}: a {family} run's {} has no TorchScript export yet; supported: {TORCHSCRIPT_SUPPORTED}",
                        opts.net, net.name
                    )))
                }
            };
            let t = fam.translator().ok_or_else(|| PipelineError::Runtime(format!("this {family} run has no translator")))?;
            let (module, info) = trace_translator(t, direction, fam, cfg, opts.size)?;
            for (k, v) in info {
                meta[k] = v;
            }
            make_parent()?;
            checkpoint::write_atomic(&out, |tmp| module.save(tmp).map_err(PipelineError::torch(format!("writing {}", tmp.display()))))?;
        }
    }
    let text = serde_json::to_string_pretty(&meta).map_err(|e| PipelineError::Runtime(e.to_string()))?;
    checkpoint::write_text_atomic(&meta_path, &format!("{text}\n"))?;
    meta["out"] = json!(out.display().to_string());
    meta["metadata"] = json!(meta_path.display().to_string());
    Ok(meta)
}

/// A network's variables under their own names (the reference's, for the families that share its layout),
/// sorted, on the CPU; each BatchNorm also gets PyTorch's `num_batches_tracked` counter (0: unknown here, unused
/// in evaluation mode), so `load_state_dict(strict=True)` accepts the file.
fn reference_state_dict(vs: &tch::nn::VarStore) -> Vec<(String, Tensor)> {
    let mut tensors: Vec<(String, Tensor)> = vs.variables().into_iter().map(|(n, t)| (n, t.detach().to_device(tch::Device::Cpu).contiguous())).collect();
    let counters: Vec<(String, Tensor)> = tensors
        .iter()
        .filter_map(|(n, _)| n.strip_suffix(".running_mean"))
        .map(|p| (format!("{p}.num_batches_tracked"), Tensor::scalar_tensor(0, (Kind::Int64, tch::Device::Cpu))))
        .collect();
    tensors.extend(counters);
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    tensors
}

/// Traces `t`'s A → B (`a2b`) or B → A translation on a fixed (1, C, size, size) example in [-1, 1]; checks that
/// the traced module gives the network's own output on it and on a batch of two at twice the size (refusing a
/// module whose traced shape is fixed). Returns the module and what the metadata says of its input and output.
fn trace_translator(t: &dyn Translate, a2b: bool, fam: &dyn Family, cfg: &Config, size: Option<i64>) -> Result<(CModule, Vec<(&'static str, serde_json::Value)>)> {
    let shape = cfg.shape();
    let side = size.unwrap_or(shape.height);
    let m = t.side_multiple();
    if side <= 0 || side % m != 0 {
        return Err(PipelineError::Usage(format!("--size {side}: this {} run's generator takes sides that are multiples of {m}", cfg.model.family())));
    }
    let device = crate::family::device_of(fam);
    // Weights held as constants of the traced graph must not require gradients.
    for n in fam.networks() {
        for v in n.vs.variables().values() {
            let _ = v.set_requires_grad(false);
        }
    }
    let example = |n: i64, side: i64, seed: i64| {
        tch::manual_seed(seed);
        (Tensor::rand([n, shape.channels, side, side], (Kind::Float, device)) * 2.0 - 1.0).clamp(-1.0, 1.0)
    };
    let x = example(1, side, 0);
    let module = CModule::create_by_tracing("ganzoo_export", "forward", std::slice::from_ref(&x), &mut |xs| vec![t.translate(&xs[0], a2b)])
        .map_err(PipelineError::torch("tracing the translator"))?;
    for (n, s) in [(1, side), (2, 2 * side)] {
        let x = example(n, s, 1);
        let own = t.translate(&x, a2b);
        let traced = tch::no_grad(|| module.forward_ts(&[&x])).map_err(|e| {
            PipelineError::Usage(format!("the traced module does not run on a ({n}, {}, {s}, {s}) input, so its shape is fixed: {e}", shape.channels))
        })?;
        let diff = if traced.size() == own.size() { (traced - &own).abs().max().double_value(&[]) } else { f64::INFINITY };
        if diff.is_nan() || diff > TOLERANCE {
            return Err(PipelineError::Usage(format!(
                "the traced module differs from the network on a ({n}, {}, {s}, {s}) input (largest difference {diff:e}): its traced shape is fixed, so it cannot be exported",
                shape.channels
            )));
        }
    }
    let c = shape.channels;
    Ok((
        module,
        vec![
            ("direction", json!(if a2b { "a2b" } else { "b2a" })),
            ("device", json!(format!("{device:?}"))),
            ("inputs", json!([{ "name": "x", "shape": ["N", c, "H", "W"], "dtype": "float32", "range": [-1.0, 1.0], "traced_shape": [1, c, side, side] }])),
            ("outputs", json!([{ "name": "y", "shape": ["N", c, "H", "W"], "dtype": "float32", "range": [-1.0, 1.0] }])),
            ("sizes", json!(format!("H and W multiples of {m} (checked at {side} and {})", 2 * side))),
        ],
    ))
}
