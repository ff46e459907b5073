//! `vaegan`: one VAE-GAN training step (Larsen et al. 2016) with the authors' 64×64 layout
//! (configs/papers/vaegan_celeba.yaml: E 18.1 M, Dec 4.7 M, Dis 11.0 M parameters), ours (the product's step:
//! the family built from that config, `Trainer::step`) against bench/vaegan_step.py (the same networks and step
//! in PyTorch, which asserts those counts), alternating rounds. The equilibrium band is switched off on both
//! sides (`model.equilibrium=null`) so every step updates all three networks. Ours trains on one fixed batch of
//! random images in [-1, 1] (CelebA is not needed); the script slices a CPU pool of 4 such batches.
//! `--gc-batch` sets the batch (the paper: 64).
use crate::step::{self, Input, Step, Variant};
use crate::{machine, python, script_args, thread_rows, Opts};
use anyhow::Result;
use ganzoo_pipelines::families::Config;
use tch::{Device, Kind, Tensor};

fn config(batch: i64) -> Result<Config> {
    let path = crate::root().join("configs/papers/vaegan_celeba.yaml");
    let ov = ["model.equilibrium=null".to_string(), format!("train.batch_size={batch}")];
    Ok(ganzoo_pipelines::run::load_config(&path, &ov)?.config)
}

/// `vaegan`: step time, ours vs PyTorch, alternating rounds per thread count.
pub fn run(o: &Opts) -> Result<()> {
    crate::check_python()?;
    o.fp32_only("vaegan")?;
    println!(
        "== vaegan: VAE-GAN step at 64×64×3, batch {}, the authors' img64x64 layout, z 128, similarity at D's 4th conv, \
         D on real + reconstructed + prior images, RMSProp 3.125e-4 (wd 1e-5), γ 1e-5, minimax; {} warm-up + {} timed steps per measurement, {} alternating rounds; medians",
        o.gc_batch, o.warmup, o.steps, o.rounds
    );
    println!("   machine: {}; PyTorch side: {}", machine(), python().display());
    println!("   {}", crate::device::setup(o.device));
    let cfg = config(o.gc_batch)?;
    let counts: Vec<String> = step::parameter_counts(&cfg)?.into_iter().map(|(n, c)| format!("{n} {c}")).collect();
    println!("   parameters: {} (the PyTorch script asserts E 18071360, Dec 4693155, Dis 10953857)", counts.join(", "));
    thread_rows(
        o,
        0,
        |t| {
            tch::set_num_threads(t);
            tch::manual_seed(0);
            let x = Tensor::rand([o.gc_batch, 3, 64, 64], (Kind::Float, Device::Cpu)) * 2.0 - 1.0; // (N, 3, 64, 64)
            Step::new(&cfg, Variant::of(o), Input::Batch(x, None), &[])?.time(o.warmup, o.steps)
        },
        |t| crate::run_step_script("bench/vaegan_step.py", &script_args(t, o.gc_batch, o.warmup, o.steps, None), &o.torch_args()),
    )
}
