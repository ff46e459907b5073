//! `stackgan`: one StackGAN training step of Stage-I (64×64) and of Stage-II (256×256 on a frozen Stage-I G) at
//! the authors' birds widths, ours (the product's step: family `stackgan`, `Trainer::step`) against
//! bench/stackgan_step.py (the same networks, imported from models/golden/stackgan_golden.py, and the same step
//! in PyTorch), alternating rounds.
//!
//! Ours: the family with `StackGanNetConfig::default()` (z 100, text 1024 → CA 128, GF_DIM 128, DF_DIM 64, 4
//! residual blocks), joint D, KL weight 2, mismatch weight 0.5, Adam 2e-4 (0.5, 0.999), on `batch` procedural
//! shapes at the Stage-II resolution (256 px: both stages read it, Stage-I downscales it by 4 as the family
//! does in a run) with a `precomputed` text encoder over random 1024-d rows, one caption per image; timed on
//! one fixed batch (those images with their dataset indices). Stage-II freezes G1 (`Family::freeze`, as the
//! pipeline's `freeze: [G1]`); its G1 is freshly initialized, not trained, which changes no cost.
//! Peak memory: the PyTorch script's peak RSS, and ours as this process's peak RSS (VmHWM) after the stage's
//! rounds (stage 1 runs first, so stage 2's figure is the larger of the two).
use crate::step::{self, Input, Step, Variant};
use crate::{alternate, header_columns, legend, loadavg, machine, python, row_columns, script_args, Opts};
use anyhow::Result;
use ganzoo_pipelines::families::Config;
use std::path::Path;

/// Family `stackgan`, stage `stage`, at the birds widths (the family's default `net`) on `batch` 256-px shapes,
/// text from the embeddings at `emb` (one row per image).
fn config(stage: u8, batch: i64, emb: &Path) -> Result<Config> {
    let model = format!(
        "  family: stackgan
  stage: {stage}
  heads: joint
  kl_weight: 2.0
  mismatch_weight: 0.5"
    );
    step::shapes_text_config(&model, 256, batch, emb)
}

/// This process's peak resident memory in MB (Linux VmHWM).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())))
        .flatten()
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// `stackgan`: step time of Stage-I and Stage-II, ours vs PyTorch, alternating rounds per thread count.
pub fn run(o: &Opts) -> Result<()> {
    crate::check_python()?;
    o.fp32_only("stackgan")?;
    println!(
        "== stackgan: StackGAN (Zhang et al. 2017) steps at the birds widths (z 100, text 1024 → CA 128, GF_DIM 128, DF_DIM 64, 4 residual blocks), \
         batch {}, family stackgan, joint D, KL weight 2, Adam 2e-4 (0.5, 0.999); one fixed batch of 256-px procedural shapes with random \
         precomputed text; {} warm-up + {} timed steps per measurement, {} alternating rounds; medians",
        o.sg_batch, o.warmup, o.steps, o.rounds
    );
    println!("   machine: {}; PyTorch side: {}", machine(), python().display());
    println!("   {}", crate::device::setup(o.device));
    let tmp = tempfile::tempdir()?;
    let emb = step::random_embeddings(tmp.path(), o.sg_batch as usize)?;
    for &stage in &o.sg_stages {
        let cfg = config(stage, o.sg_batch, &emb)?;
        let counts = step::parameter_counts(&cfg)?;
        let (g_name, d_name, freeze): (_, _, &[&str]) = if stage == 1 { ("G1", "D1", &[]) } else { ("G2", "D2", &["G1"]) };
        let (g, d) = (step::count(&counts, g_name)?, step::count(&counts, d_name)?);
        println!(
            "   stage {stage} ({} px): trained {g_name} {g}, {d_name} {d} parameters (asserted equal by the PyTorch script)",
            if stage == 1 { 64 } else { 256 }
        );
        println!("{:>7} | {} | peak RSS MB ours / torch", "threads", header_columns(o));
        for (i, &t) in o.threads.iter().enumerate() {
            let la0 = loadavg();
            let mut torch_rss = 0.0f64;
            let s = alternate(
                o.rounds,
                i == 0,
                || {
                    tch::set_num_threads(t);
                    Step::new(&cfg, Variant::of(o), Input::FirstBatch, freeze)?.time(o.warmup, o.steps)
                },
                || {
                    let mut args = vec!["--stage".to_string(), stage.to_string()];
                    args.extend(script_args(t, o.sg_batch, o.warmup, o.steps, Some((g, d))));
                    let (ms, out) = crate::run_step_script("bench/stackgan_step.py", &args, &o.torch_args())?;
                    let rss = out.lines().find_map(|l| l.strip_prefix("peak_rss_mb:")).and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or(f64::NAN);
                    torch_rss = torch_rss.max(rss);
                    Ok((ms, out))
                },
            )?;
            println!("{:>7} | {}; load {} -> {} | {:.0} / {:.0}", t, row_columns(o, &s, 0), la0, loadavg(), peak_rss_mb(), torch_rss);
        }
    }
    legend(o);
    Ok(())
}
