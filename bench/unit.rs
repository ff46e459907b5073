//! `unit`: one UNIT training step (Liu et al. 2017, the authors' trainer) at the quickstart's sizes
//! (configs/quickstart/unit_shapes.yaml: 32×32, batch 4, gen dim 16, 3 residual blocks each way with one shared,
//! 2-scale D), ours (`Unit::unit_step`, the family's own step) against bench/unit_step.py (the same networks,
//! imported from models/golden/unit_golden.py, and the same step in PyTorch; parameter counts asserted equal),
//! alternating rounds. Inputs: a CPU pool of 4 batches of random A and B images in [-1, 1], copied to the device
//! each step. `--gc-batch` sets the batch (the quickstart: 4).
use crate::device;
use crate::{header_columns, legend, loadavg, machine, print_setup, python, row_columns, Opts, Samples};
use anyhow::Result;
use ganzoo_pipelines::family::Trainable;
use ganzoo_pipelines::unit::Unit;
use tch::{Device, Kind, Tensor};

const POOL: i64 = 4;
const SIZE: i64 = 32;

fn build(device: Device) -> Result<Unit> {
    let path = crate::root().join("configs/quickstart/unit_shapes.yaml");
    let cfg = ganzoo_pipelines::run::load_config(&path, &[])?.config;
    Ok(Unit::new(&cfg, device, false)?)
}

fn ours_ms(o: &Opts, threads: i32) -> Result<(f64, f64)> {
    tch::set_num_threads(threads);
    let mut m = build(o.device)?;
    let n = o.gc_batch;
    tch::manual_seed(0);
    let images = Tensor::rand([2 * POOL * n, 3, SIZE, SIZE], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    device::time_steps(o.device, false, o.warmup, o.steps, |s| {
        let k = s % POOL;
        let a = images.narrow(0, 2 * k * n, n).to_device(o.device); // (N, 3, 32, 32)
        let b = images.narrow(0, (2 * k + 1) * n, n).to_device(o.device);
        m.unit_step(&a, &b, s)?;
        Ok(())
    })
}

/// `unit`: step time, ours vs PyTorch, alternating rounds per thread count.
pub fn run(o: &Opts) -> Result<()> {
    crate::check_python()?;
    println!(
        "== unit: UNIT step at 32×32×3, batch {}, configs/quickstart/unit_shapes.yaml's networks (one shared block in the encoders and one in \
         the decoders), D update then generator update with cycle terms, LSGAN, Adam 1e-4 (0.5, 0.999) wd 1e-4; {} warm-up + {} timed steps per \
         measurement, {} alternating rounds; medians",
        o.gc_batch, o.warmup, o.steps, o.rounds
    );
    println!("   machine: {}; PyTorch side: {}", machine(), python().display());
    println!("   {}", device::setup(o.device));
    let counts = build(Device::Cpu)?.parameter_counts();
    let get = |k: &str| counts.iter().find(|(n, _)| *n == k).map(|(_, c)| *c).unwrap_or(0);
    let shown: Vec<String> = counts.iter().map(|(n, c)| format!("{n} {c}")).collect();
    println!("   parameters: {} (G_total and D_A asserted equal by the PyTorch script)", shown.join(", "));
    println!("{:>7} | {}", "threads", header_columns(o));
    for &t in &o.threads {
        let mut s = Samples::default();
        let la0 = loadavg();
        for r in 0..o.rounds {
            s.ours.push(ours_ms(o, t)?);
            let mut args: Vec<String> = vec!["--threads".into(), t.to_string(), "--batch".into(), o.gc_batch.to_string()];
            args.extend(["--warmup".into(), o.warmup.to_string(), "--steps".into(), o.steps.to_string()]);
            args.extend(["--expect-g-params".into(), get("G_total").to_string(), "--expect-d-params".into(), get("D_A").to_string()]);
            let (pms, out) = crate::run_step_script("bench/unit_step.py", &args, &o.torch_args(None))?;
            if r == 0 && t == o.threads[0] {
                print_setup(&out);
            }
            s.theirs.push(pms);
        }
        println!("{:>7} | {}; load {} -> {}", t, row_columns(o, &s, 0), la0, loadavg());
    }
    legend(o);
    Ok(())
}
