//! `ganzoo export`: a trained network given back in the forms PyTorch users load, with no ganzoo at run time.
//!
//! - TorchScript (`--format torchscript`, `FILE.pt`): the network traced with libtorch's tracer
//!   (`CModule::create_by_tracing`) in evaluation mode, its weights held as constants of the graph; loads with
//!   `torch.jit.load` in Python and C++. So far: CycleGAN's G_A / G_B, CUT's G and pix2pix's G in evaluation mode
//!   (image → image, any batch, any sides that are multiples of the generator's) and the G(z, c) of `cgan` and `gan_cls` (any batch). Each trace is checked against the
//!   network before anything is written, so a trace that fixed a shape is refused rather than exported.
//! - Reference (`--format reference`, `FILE.safetensors`): the network's state_dict under the reference code's key
//!   names, the inverse of `ganzoo import`.
//!
//! Beside either, `FILE.json` records the family, the network, its inputs (names, shapes, value ranges), the
//! config's name and the checkpoint step. Both files are written atomically; nothing is written when anything
//! is refused.
use crate::checkpoint;
use crate::error::{PipelineError, Result};
use crate::families::Config;
use crate::family::{Family, Generate, Translate};
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
const TORCHSCRIPT_SUPPORTED: &str = "cyclegan G_A and G_B; pix2pix (model.inference: eval) and cut G; cgan and gan_cls G";
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
            let missing = |what: &str| PipelineError::Runtime(format!("this {family} run has no {what}"));
            let (module, info) = match (family, net.name) {
                ("cyclegan", "G_A" | "G_B") | ("pix2pix" | "cut", "G") => {
                    if let crate::families::ModelConfig::Pix2pix(m) = &cfg.model {
                        if m.inference != crate::families::pix2pix::Inference::Eval {
                            return Err(PipelineError::Usage(
                                "--net G: this pix2pix run translates as the paper does (model.inference: paper: dropout on, batch norm on each image's own statistics), which a traced module cannot reproduce; export supports runs with model.inference: eval".into(),
                            ));
                        }
                    }
                    let t = fam.translator().ok_or_else(|| missing("translator"))?;
                    trace_translator(t, net.name != "G_B", fam, cfg, opts.size)?
                }
                ("cgan" | "gan_cls", "G") => trace_generator(fam.generator().ok_or_else(|| missing("conditional generator"))?, fam, cfg, opts.size)?,
                _ => {
                    return Err(PipelineError::Usage(format!(
                        "--net {}: a {family} run's {} has no TorchScript export yet; supported: {TORCHSCRIPT_SUPPORTED}",
                        opts.net, net.name
                    )))
                }
            };
            for (k, v) in info {
                meta[k] = v;
            }
            make_parent()?;
            checkpoint::write_atomic(&out, |tmp| module.save(tmp).map_err(PipelineError::torch(format!("writing {}", tmp.display()))))?;
        }
    }
    let text = serde_json::to_string_pretty(&meta).map_err(|e| PipelineError::Runtime(e.to_string()))?;
    if let Err(e) = checkpoint::write_text_atomic(&meta_path, &format!("{text}\n")) {
        let _ = std::fs::remove_file(&out); // no module without its description
        return Err(e);
    }
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

/// What a traced module's metadata says of it (its inputs, outputs, the sizes it takes).
type Described = Vec<(&'static str, serde_json::Value)>;

/// Traces `f` on `example` with libtorch's tracer (the weights held as constants: they must not require
/// gradients, so every network of `fam` is frozen first), then checks the module against `f` itself on each
/// set of `checks`: a difference above [`TOLERANCE`], or a module that does not run on a set, means a shape was
/// fixed by the trace, and the export is refused naming the input.
fn trace(fam: &dyn Family, example: &[Tensor], f: &dyn Fn(&[Tensor]) -> Tensor, checks: &[Vec<Tensor>]) -> Result<CModule> {
    for n in fam.networks() {
        for v in n.vs.variables().values() {
            let _ = v.set_requires_grad(false);
        }
    }
    let module = CModule::create_by_tracing("ganzoo_export", "forward", example, &mut |xs| vec![f(xs)]).map_err(PipelineError::torch("tracing the network"))?;
    for inputs in checks {
        let shapes = inputs.iter().map(|x| format!("{:?}", x.size())).collect::<Vec<_>>().join(", ");
        let own = f(inputs);
        let traced = tch::no_grad(|| module.forward_ts(inputs)).map_err(|e| {
            PipelineError::Usage(format!("the traced module does not run on inputs of shapes {shapes}, so its traced shape is fixed: {e}"))
        })?;
        let diff = if traced.size() == own.size() { (traced - &own).abs().max().double_value(&[]) } else { f64::INFINITY };
        if diff.is_nan() || diff > TOLERANCE {
            return Err(PipelineError::Usage(format!(
                "the traced module differs from the network on inputs of shapes {shapes} (largest difference {diff:e}): its traced shape is fixed, so it cannot be exported"
            )));
        }
    }
    Ok(module)
}

/// Uniform values in [-1, 1] of `shape` on `device`, drawn with `seed`.
fn example(shape: &[i64], device: tch::Device, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    Tensor::rand(shape, (Kind::Float, device)) * 2.0 - 1.0
}

/// Traces `t`'s A → B (`a2b`) or B → A translation on a (1, C, size, size) example in [-1, 1], checked on it and
/// on a batch of two at twice the size (a convolutional translator takes any size).
fn trace_translator(t: &dyn Translate, a2b: bool, fam: &dyn Family, cfg: &Config, size: Option<i64>) -> Result<(CModule, Described)> {
    let shape = cfg.shape();
    let side = size.unwrap_or(shape.height);
    let m = t.side_multiple();
    if side <= 0 || side % m != 0 {
        return Err(PipelineError::Usage(format!("--size {side}: this {} run's generator takes sides that are multiples of {m}", cfg.model.family())));
    }
    let (c, device) = (shape.channels, crate::family::device_of(fam));
    let x = example(&[1, c, side, side], device, 0);
    let checks = [vec![x.shallow_clone()], vec![example(&[2, c, 2 * side, 2 * side], device, 1)]];
    let module = trace(fam, std::slice::from_ref(&x), &|xs| t.translate(&xs[0], a2b), &checks)?;
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

/// Traces a conditional generator G(z, c) on a batch of two, checked on it and on a batch of three. The image
/// size is the run's (`--size` does not apply).
fn trace_generator(g: &dyn Generate, fam: &dyn Family, cfg: &Config, size: Option<i64>) -> Result<(CModule, Described)> {
    if let Some(s) = size {
        return Err(PipelineError::Usage(format!("--size {s}: a {} generator makes images of the run's size only; leave --size out", cfg.model.family())));
    }
    let ((z_dim, noise), (c_dim, cond)) = (g.noise(), g.condition());
    let shape = cfg.shape();
    let device = crate::family::device_of(fam);
    let inputs = |n: i64, seed: i64| vec![example(&[n, z_dim], device, seed), example(&[n, c_dim], device, seed + 100)];
    let x = inputs(2, 0);
    let module = trace(fam, &x, &|xs| g.generate(&xs[0], &xs[1]), &[inputs(2, 0), inputs(3, 1)])?;
    let (c, h, w) = (shape.channels, shape.height, shape.width);
    Ok((
        module,
        vec![
            ("device", json!(format!("{device:?}"))),
            ("inputs", json!([
                { "name": "z", "shape": ["N", z_dim], "dtype": "float32", "distribution": noise, "traced_shape": [2, z_dim] },
                { "name": "c", "shape": ["N", c_dim], "dtype": "float32", "what": cond, "traced_shape": [2, c_dim] },
            ])),
            ("outputs", json!([{ "name": "y", "shape": ["N", c, h, w], "dtype": "float32", "range": [-1.0, 1.0] }])),
            ("sizes", json!("any batch N (checked at 2 and 3)")),
        ],
    ))
}
