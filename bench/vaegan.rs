//! `vaegan`: one VAE-GAN training step (Larsen et al. 2016) with the authors' 64×64 layout
//! (configs/papers/vaegan_celeba.yaml: E 18.1 M, Dec 4.7 M, Dis 11.0 M parameters), ours (`VaeGan::vaegan_step`,
//! the family's own step) against bench/vaegan_step.py (the same networks and step in PyTorch), alternating
//! rounds. The equilibrium band is switched off on both sides (`model.equilibrium=null`) so every step updates
//! all three networks. Inputs: a CPU pool of 4 batches of random images in [-1, 1], one batch copied to the
//! device each step. `--gc-batch` sets the batch (the paper: 64).
use crate::device;
use crate::{header_columns, legend, loadavg, machine, print_setup, python, row_columns, Opts, Samples};
use anyhow::Result;
use ganzoo_pipelines::family::Trainable;
use ganzoo_pipelines::vaegan::VaeGan;
use tch::{Device, Kind, Tensor};

const POOL: i64 = 4;

fn build(device: Device) -> Result<VaeGan> {
    let path = crate::root().join("configs/papers/vaegan_celeba.yaml");
    let cfg = ganzoo_pipelines::run::load_config(&path, &["model.equilibrium=null".to_string()])?.config;
    Ok(VaeGan::new(&cfg, device, false)?)
}

fn ours_ms(o: &Opts, threads: i32) -> Result<(f64, f64)> {
    tch::set_num_threads(threads);
    let mut m = build(o.device)?;
    let n = o.gc_batch;
    tch::manual_seed(0);
    let images = Tensor::rand([POOL * n, 3, 64, 64], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    device::time_steps(o.device, false, o.warmup, o.steps, |s| {
        let x = images.narrow(0, (s % POOL) * n, n).to_device(o.device); // (N, 3, 64, 64)
        m.vaegan_step(&x, s)?;
        Ok(())
    })
}

/// `vaegan`: step time, ours vs PyTorch, alternating rounds per thread count.
pub fn run(o: &Opts) -> Result<()> {
    crate::check_python()?;
    println!(
        "== vaegan: VAE-GAN step at 64×64×3, batch {}, the authors' img64x64 layout, z 128, similarity at D's 4th conv, \
         D on real + reconstructed + prior images, RMSProp 3.125e-4 (wd 1e-5), γ 1e-5, minimax; {} warm-up + {} timed steps per measurement, {} alternating rounds; medians",
        o.gc_batch, o.warmup, o.steps, o.rounds
    );
    println!("   machine: {}; PyTorch side: {}", machine(), python().display());
    println!("   {}", device::setup(o.device));
    let counts: Vec<String> = build(Device::Cpu)?.parameter_counts().into_iter().map(|(n, c)| format!("{n} {c}")).collect();
    println!("   parameters: {} (asserted equal by the PyTorch script)", counts.join(", "));
    println!("{:>7} | {}", "threads", header_columns(o));
    for &t in &o.threads {
        let mut s = Samples::default();
        let la0 = loadavg();
        for r in 0..o.rounds {
            s.ours.push(ours_ms(o, t)?);
            let mut args: Vec<String> = vec!["--threads".into(), t.to_string(), "--batch".into(), o.gc_batch.to_string()];
            args.extend(["--warmup".into(), o.warmup.to_string(), "--steps".into(), o.steps.to_string()]);
            let (pms, out) = crate::run_step_script("bench/vaegan_step.py", &args, &o.torch_args(None))?;
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
