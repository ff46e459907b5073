//! `gan_cls`: one GAN-CLS training step (Reed et al. 2016) at 64×64, ours (the product's step: family `gan_cls`,
//! `Trainer::step`) against bench/gan_cls_step.py (the same networks and step in PyTorch), alternating rounds.
//!
//! Ours: the family at the widths of `main_cls_int.lua` (G ngf 128, 4×4×1024, extra layers at 4×4 and 8×8; D
//! ndf 64, text 1024 → 128 + BN + LeakyReLU replicated at 4×4; joint head; z 100; mismatch weight 0.5; Adam 2e-4
//! (0.5, 0.999)) on `batch` procedural shapes at 64×64 with a `precomputed` text encoder over random 1024-d rows
//! (standing in for CUB's char-CNN-RNN embeddings), one caption per image; timed on one fixed batch (those
//! images with their dataset indices, so the family looks their embeddings up as in a run). The family's step:
//! fake = G(z, e); D on (real, right text) → real, (real, wrong text = e rolled by one) → fake, (fake, right
//! text) → fake, D loss = real + 0.5·(wrong + fake), BCE with logits, real image features computed once for
//! both texts; G loss BCE(D(fake, e), 1) with D frozen by the engine.
use crate::step::{self, Input, Step, Variant};
use crate::{machine, python, script_args, thread_rows, Opts};
use anyhow::Result;
use ganzoo_pipelines::families::Config;
use std::path::Path;

/// Family `gan_cls` at the GAN-CLS widths on `batch` 64-px shapes, text from the embeddings at `emb` (one
/// row per image).
fn config(batch: i64, emb: &Path) -> Result<Config> {
    let model = "  family: gan_cls
  z_dim: 100
  generator: {arch: dcgan, ngf: 128, cond_proj: 128}
  discriminator: {arch: dcgan, ndf: 64, cond_proj: 128}
  heads: joint
  mismatch_weight: 0.5";
    step::shapes_text_config(model, 64, batch, emb)
}

/// `gan_cls`: step time, ours vs PyTorch, alternating rounds per thread count.
pub fn run(o: &Opts) -> Result<()> {
    crate::check_python()?;
    println!(
        "== gan_cls: GAN-CLS (Reed et al. 2016) step at 64×64×3, batch {}, family gan_cls: G ngf 128 (4×4×1024, extra layers), D ndf 64, text 1024 → 128, z 100, \
         3 D pairs (right / wrong text / fake), Adam 2e-4 (0.5, 0.999); one fixed batch of procedural shapes with random precomputed text; \
         {} warm-up + {} timed steps per measurement, {} alternating rounds; medians",
        o.gc_batch, o.warmup, o.steps, o.rounds
    );
    println!("   machine: {}; PyTorch side: {}", machine(), python().display());
    println!("   {}", crate::device::setup(o.device));
    let tmp = tempfile::tempdir()?;
    let cfg = config(o.gc_batch, &step::random_embeddings(tmp.path(), o.gc_batch as usize)?)?;
    let counts = step::parameter_counts(&cfg)?;
    let (g, d) = (step::count(&counts, "G")?, step::count(&counts, "D")?);
    println!("   parameters: G {g}, D {d} (asserted equal by the PyTorch script)");
    thread_rows(
        o,
        1,
        |t| {
            tch::set_num_threads(t);
            Step::new(&cfg, Variant::of(o), Input::FirstBatch, &[])?.time(o.warmup, o.steps)
        },
        |t| crate::run_step_script("bench/gan_cls_step.py", &script_args(t, o.gc_batch, o.warmup, o.steps, Some((g, d))), &o.torch_args()),
    )
}
