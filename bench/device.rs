//! Device support for the side-by-side step benchmarks: CUDA synchronization around the clock, cuDNN benchmark
//! mode, channels-last parameters, and the `check` bench that verifies channels-last and bf16 on a device.
//!
//! * Channels-last: tch has no memory-format API. `t.permute([0,2,3,1]).contiguous().permute([0,3,1,2])` has
//!   the same shape with NHWC strides; every 4-D variable of a VarStore gets it through `set_data` (under
//!   no_grad), so the variable keeps its identity (optimizers, freeze/unfreeze and names still see it).
//!   `crate::step` converts a family this way before the engine's `Trainer` makes its optimizers, so their
//!   moment buffers (`zeros_like`, preserve format) get the same strides.
//! * bf16: the product's `train.precision: bf16` (the engine's autocast around forward passes and losses,
//!   `ganzoo_models::autocast::with_bf16`; tch 0.24's `autocast(enabled, f)` only switches autocast on for
//!   CUDA, in fp16). `check` verifies the binding on the device: the defaults read back as (CPU: BFloat16,
//!   CUDA: Half), and a conv under our autocast returns BFloat16.
use crate::step::{Input, Step, Variant};
use crate::{cache_dir, dcgan_config, Opts};
use anyhow::{anyhow, bail, Result};
use ganzoo_models::autocast::{autocast_dtype, autocast_enabled, with_bf16};
use ganzoo_pipelines::family::{Family, Losses};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Waits for the device's queued kernels (CUDA); nothing on the CPU.
pub fn sync(d: Device) {
    if let Device::Cuda(i) = d {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Per-process device setup: cuDNN benchmark mode on CUDA. Returns a line saying what our side uses.
pub fn setup(d: Device) -> String {
    match d {
        Device::Cuda(i) => {
            tch::Cuda::cudnn_set_benchmark(true);
            format!(
                "ours: device cuda:{i} ({} CUDA device(s), cuDNN {}), cuDNN benchmark on (tch::Cuda::cudnn_set_benchmark(true)); TF32: libtorch's defaults, \
                 not changed (the same library as PyTorch: cudnn.allow_tf32 True for convolutions, matmul TF32 off)",
                tch::Cuda::device_count(),
                if tch::Cuda::cudnn_is_available() { "available" } else { "NOT available" }
            )
        }
        _ => "ours: device cpu".to_string(),
    }
}

/// Parses `--device`: cpu, cuda, cuda:N (CUDA must be available).
pub fn parse_device(s: &str) -> Result<Device> {
    match s.trim() {
        "cpu" => Ok(Device::Cpu),
        other => ganzoo_pipelines::device::resolve_device(other).map_err(|e| anyhow!("--device {other}: {e}")),
    }
}

pub fn device_name(d: Device) -> String {
    ganzoo_pipelines::device::device_name(d)
}

/// True when a 4-D tensor has NHWC (channels-last) strides (H·W·C, 1, W·C, C); as in PyTorch, the stride of a
/// dimension of size 1 does not matter (a (64, 1, 4, 4) weight is both contiguous and channels-last).
pub fn is_channels_last(t: &Tensor) -> bool {
    let (s, st) = (t.size(), t.stride());
    if s.len() != 4 {
        return false;
    }
    let want = [s[1] * s[2] * s[3], 1, s[3] * s[1], s[1]];
    (0..4).all(|i| s[i] == 1 || st[i] == want[i])
}

/// The same tensor with channels-last strides (a copy unless it has them already).
pub fn to_channels_last(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Gives every 4-D variable of `vs` channels-last strides, in place (`set_data`); returns how many.
pub fn vs_channels_last(vs: &tch::nn::VarStore) -> usize {
    let mut n = 0;
    tch::no_grad(|| {
        for (_, mut t) in vs.variables() {
            if t.dim() == 4 {
                let before = t.stride();
                let cl = to_channels_last(&t);
                t.set_data(&cl);
                n += usize::from(t.stride() != before);
            }
        }
    });
    n
}

/// Times `steps` calls of `step` after `warmup`, synchronizing the device before each clock read. Returns
/// (wall ms, CPU ms) per step.
pub fn time_steps(d: Device, warmup: usize, steps: usize, mut step: impl FnMut(i64) -> Result<()>) -> Result<(f64, f64)> {
    for s in 0..warmup {
        step(s as i64)?;
    }
    sync(d);
    let (t0, c0) = (Instant::now(), crate::cpu_seconds());
    for s in 0..steps {
        step((warmup + s) as i64)?;
    }
    sync(d);
    let n = steps as f64;
    Ok((t0.elapsed().as_secs_f64() * 1000.0 / n, (crate::cpu_seconds() - c0) * 1000.0 / n))
}

fn max_rel_diff(a: &Losses, b: &Losses) -> (f64, String) {
    let mut worst = (0.0, String::new());
    for (k, x) in a {
        let y = b.get(k).copied().unwrap_or(f64::NAN);
        let d = (x - y).abs() / x.abs().max(1.0);
        if !(d <= worst.0) {
            worst = (d, k.clone());
        }
    }
    worst
}

/// Trains `plain` and `cl` (the same config built twice, `cl` with channels-last variables) for `steps` steps
/// of the product's step; prints the strides and each step's largest loss difference; checks step 1 to `tol`.
fn check_cl(what: &str, mut plain: Step, mut cl: Step, steps: i64, tol: f64) -> Result<bool> {
    let vars = |f: &dyn Family| -> Vec<(String, Tensor)> {
        let mut v: Vec<_> = f.networks().into_iter().flat_map(|n| n.vs.variables().into_iter().map(move |(k, t)| (format!("{}.{k}", n.name), t))).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let all_cl = |f: &dyn Family| vars(f).iter().filter(|(_, t)| t.dim() == 4).all(|(_, t)| is_channels_last(t));
    // Shown: the first 4-D variable with more than one channel and a spatial extent (its strides change), in
    // the plain family (the strides before the conversion) and in the converted one.
    let shown = |f: &dyn Family| vars(f).into_iter().find(|(_, t)| t.dim() == 4 && t.size()[1] > 1 && t.size()[2] * t.size()[3] > 1);
    let (name, before) = shown(plain.family()).ok_or_else(|| anyhow!("{what}: no 4-D variable"))?;
    let (_, after) = shown(cl.family()).ok_or_else(|| anyhow!("{what}: no 4-D variable"))?;
    let converted = all_cl(cl.family());
    println!(
        "   {what}: {} 4-D variables changed strides; {name} {:?}: strides {:?} -> {:?}; all 4-D variables channels-last: {converted}",
        cl.converted,
        after.size(),
        before.stride(),
        after.stride()
    );
    let mut ok = converted;
    for s in 0..steps {
        let a = plain.step(s)?;
        let b = cl.step(s)?;
        let (diff, key) = max_rel_diff(&a, &b);
        let pass = s > 0 || diff <= tol;
        ok &= pass && b.values().all(|v| v.is_finite());
        println!(
            "   {what} step {}: largest loss difference {diff:.2e} ({key}; plain {:.6} vs channels-last {:.6}){}",
            s + 1,
            a.get(&key).copied().unwrap_or(f64::NAN),
            b.get(&key).copied().unwrap_or(f64::NAN),
            if s == 0 { format!(" — {} (tolerance {tol:.0e})", if pass { "PASS" } else { "FAIL" }) } else { String::new() }
        );
        if s == 0 {
            // After one update: Adam's first step moves each weight by about lr·sign(grad), so a weight whose
            // gradient is ~0 may move the other way under another summation order (a few in 10^4 do); a large
            // fraction means the gradients themselves differ (a wrong kernel), which fails the check.
            let (pa, pb) = (vars(plain.family()), vars(cl.family()));
            let (mut max, mut far, mut total, mut worst) = (0f64, 0i64, 0i64, Vec::new());
            for ((na, ta), (nb, tb)) in pa.iter().zip(&pb) {
                if na != nb || !ta.is_floating_point() {
                    continue;
                }
                let d = (ta - tb).abs();
                max = max.max(d.max().double_value(&[]));
                let f = d.gt(1e-4).sum(Kind::Int64).int64_value(&[]);
                far += f;
                total += ta.numel() as i64;
                if ta.dim() > 1 {
                    worst.push((f as f64 / ta.numel().max(1) as f64, na.clone(), ta.size()));
                }
            }
            let frac = far as f64 / total.max(1) as f64;
            // On CUDA TF32 convolutions make more near-zero gradients flip sign: a wider margin there.
            let limit = if tol > 1e-5 { 0.05 } else { 0.01 };
            let pass = frac <= limit;
            ok &= pass;
            println!(
                "   {what} after step 1: parameters differ by at most {max:.2e}; {far} of {total} ({:.3} %) by more than 1e-4 (half of Adam's first move) — {} (at most {} %)",
                frac * 100.0,
                if pass { "PASS" } else { "FAIL: the gradients differ, not just their rounding (bench/cl_grad_check.py finds the op)" },
                limit * 100.0
            );
            if !pass {
                worst.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
                for (f, n, size) in worst.iter().take(3) {
                    println!("      {n} {size:?}: {:.1} % of its elements", f * 100.0);
                }
            }
        }
    }
    // Parameters stay channels-last through training (Adam's in-place updates keep strides).
    let still = all_cl(cl.family());
    println!("   {what}: still channels-last after {steps} steps: {still}; later steps drift apart as GAN training amplifies rounding differences (information only)");
    Ok(ok && still)
}

/// `check`: verifies on `--device` what the step benches rely on (channels-last conversion, bf16 autocast).
pub fn check(o: &Opts) -> Result<()> {
    let d = o.device;
    println!("== check: device {} (CUDA available: {}, devices: {}, cuDNN: {})", device_name(d), tch::Cuda::is_available(), tch::Cuda::device_count(), tch::Cuda::cudnn_is_available());
    println!("   {}", setup(d));
    tch::set_num_threads(o.threads[0]);
    let mut failures = Vec::new();

    // 1. Autocast binding: defaults, then a conv under our bf16 region.
    let (cpu0, cuda0) = (autocast_dtype(Device::Cpu), autocast_dtype(Device::Cuda(0)));
    let defaults_ok = cpu0 == Some(Kind::BFloat16) && cuda0 == Some(Kind::Half);
    println!("   autocast dtype defaults read through the C++ binding: CPU {cpu0:?}, CUDA {cuda0:?} (expect BFloat16, Half): {}", if defaults_ok { "PASS" } else { "FAIL" });
    if !defaults_ok {
        failures.push("autocast defaults");
    }
    let x = Tensor::randn([2, 3, 8, 8], (Kind::Float, d));
    let w = Tensor::randn([4, 3, 3, 3], (Kind::Float, d)).set_requires_grad(true);
    let (inside, enabled_inside, dtype_inside) = with_bf16(d, || (x.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1).kind(), autocast_enabled(d), autocast_dtype(d)));
    let outside = x.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1).kind();
    let restored = !autocast_enabled(d) && autocast_dtype(d) == if d == Device::Cpu { cpu0 } else { cuda0 };
    let ac_ok = inside == Kind::BFloat16 && enabled_inside && dtype_inside == Some(Kind::BFloat16) && outside == Kind::Float && restored;
    println!(
        "   bf16 autocast on {}: conv2d output {inside:?} inside (enabled {enabled_inside}, dtype {dtype_inside:?}), {outside:?} outside, state restored {restored}: {}",
        device_name(d),
        if ac_ok { "PASS" } else { "FAIL" }
    );
    if !ac_ok {
        failures.push("bf16 autocast");
    }

    // 2. Channels-last on the DCGAN (MNIST) and, when the facades are there, a small CycleGAN.
    let tol = if d == Device::Cpu { 1e-5 } else { 5e-3 };
    if d != Device::Cpu {
        println!("   (on CUDA, cuDNN may use TF32 for convolutions and picks other algorithms for NHWC: tolerance {tol:.0e})");
    }
    let plain = Variant { device: d, channels_last: false, bf16: false };
    let cl = Variant { channels_last: true, ..plain };
    if cache_dir().join("mnist/images-idx3-ubyte").exists() {
        let cfg = dcgan_config(o.threads[0], 64, d)?;
        if !check_cl("dcgan batch 64", Step::new(&cfg, plain, Input::Data, &[])?, Step::new(&cfg, cl, Input::Data, &[])?, 3, tol)? {
            failures.push("dcgan channels-last");
        }
        // bf16: a few steps of the product's step with `train.precision: bf16`, finite losses.
        let mut g = Step::new(&cfg, Variant { bf16: true, ..plain }, Input::Data, &[])?;
        let mut last = Losses::new();
        for s in 0..3 {
            last = g.step(s)?;
        }
        let fin = last.values().all(|v| v.is_finite());
        println!("   dcgan batch 64, 3 steps with train.precision bf16: losses {last:?}: {}", if fin { "PASS" } else { "FAIL" });
        if !fin {
            failures.push("dcgan bf16 step");
        }
    } else {
        println!("   dcgan: skipped ({} missing)", cache_dir().join("mnist").display());
    }
    if o.facades.join("train").is_dir() {
        let cfg = crate::cyclegan::cg_config(o, 64, 2)?;
        if !check_cl("cyclegan 64/2 blocks", Step::new(&cfg, plain, Input::Data, &[])?, Step::new(&cfg, cl, Input::Data, &[])?, 2, tol)? {
            failures.push("cyclegan channels-last");
        }
    } else {
        println!("   cyclegan: skipped ({} has no train/)", o.facades.display());
    }
    if failures.is_empty() {
        println!("   check: all PASS");
        Ok(())
    } else {
        bail!("check FAILED: {}", failures.join(", "))
    }
}
