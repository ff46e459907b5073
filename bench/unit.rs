//! `unit`: one UNIT training step (Liu et al. 2017, the authors' trainer) at the quickstart's sizes
//! (configs/quickstart/unit_shapes.yaml: 32×32, gen dim 16, 3 residual blocks each way with one shared, 2-scale
//! D), ours (the product's step: the family built from that config, `Trainer::step`) against bench/unit_step.py
//! (the same networks, imported from models/golden/unit_golden.py, and the same step in PyTorch; parameter
//! counts asserted equal), alternating rounds. Ours trains on one fixed batch of random A and B images in
//! [-1, 1] (the family's (N, 2, 3, 32, 32) pairs); the script slices a CPU pool of 4 such batches. `--gc-batch`
//! sets the batch (the quickstart: 4).
use crate::step::{self, Input, Step, Variant};
use crate::{machine, python, script_args, thread_rows, Opts};
use anyhow::Result;
use ganzoo_pipelines::families::Config;
use tch::{Device, Kind, Tensor};

const SIZE: i64 = 32;

fn config(batch: i64) -> Result<Config> {
    let path = crate::root().join("configs/quickstart/unit_shapes.yaml");
    Ok(ganzoo_pipelines::run::load_config(&path, &[format!("train.batch_size={batch}")])?.config)
}

/// `unit`: step time, ours vs PyTorch, alternating rounds per thread count.
pub fn run(o: &Opts) -> Result<()> {
    crate::check_python()?;
    o.fp32_only("unit")?;
    println!(
        "== unit: UNIT step at 32×32×3, batch {}, configs/quickstart/unit_shapes.yaml's family (one shared block in the encoders and one in \
         the decoders), D update then generator update with cycle terms, LSGAN, Adam 1e-4 (0.5, 0.999) wd 1e-4; {} warm-up + {} timed steps per \
         measurement, {} alternating rounds; medians",
        o.gc_batch, o.warmup, o.steps, o.rounds
    );
    println!("   machine: {}; PyTorch side: {}", machine(), python().display());
    println!("   {}", crate::device::setup(o.device));
    let cfg = config(o.gc_batch)?;
    let counts = step::parameter_counts(&cfg)?;
    let (g, d) = (step::count(&counts, "G_total")?, step::count(&counts, "D_A")?);
    let shown: Vec<String> = counts.iter().map(|(n, c)| format!("{n} {c}")).collect();
    println!("   parameters: {} (G_total and D_A asserted equal by the PyTorch script)", shown.join(", "));
    thread_rows(
        o,
        0,
        |t| {
            tch::set_num_threads(t);
            tch::manual_seed(0);
            let pairs = Tensor::rand([o.gc_batch, 2, 3, SIZE, SIZE], (Kind::Float, Device::Cpu)) * 2.0 - 1.0; // (N, 2, 3, 32, 32)
            Step::new(&cfg, Variant::of(o), Input::Batch(pairs, None), &[])?.time(o.warmup, o.steps)
        },
        |t| crate::run_step_script("bench/unit_step.py", &script_args(t, o.gc_batch, o.warmup, o.steps, Some((g, d))), &o.torch_args()),
    )
}
