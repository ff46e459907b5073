//! CycleGAN benchmarks: `cyclegan` (training-step time, ours vs bench/cyclegan_step.py), `translate`
//! (`ganzoo translate` throughput on the facades test photos) and `facades` (a fixed-budget unpaired
//! training run on real facades at 128×128, evaluated against the true test pairs).
use crate::step::{self, Input, Step, Variant};
use crate::{alternate, device, header_columns, legend, loadavg, machine, python, root, row_columns, Opts};
use anyhow::{bail, Context, Result};
use ganzoo_pipelines::engine::Ui;
use ganzoo_pipelines::families::Config;
use ganzoo_pipelines::translation::open_domains;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// CycleGAN's load size for a crop of `size` (286 for 256, 143 for 128).
pub(crate) fn load_size(size: i64) -> i64 {
    size * 286 / 256
}

pub(crate) fn check_facades(o: &Opts) -> Result<()> {
    let test = o.facades.join("test");
    if !o.facades.join("train").is_dir() || !test.is_dir() {
        bail!(
            "{} does not hold the pix2pix facades (train/ and test/ of photo|labels JPEGs): pass --facades DIR or set GANZOO_FACADES",
            o.facades.display()
        );
    }
    crate::check_python()
}

/// configs/papers/cyclegan_facades.yaml at `size`² with `blocks` residual blocks, on the facades at `o.facades`,
/// 1 libtorch thread, 1 decoding worker; plus `extra` overrides.
fn overrides(o: &Opts, size: i64, blocks: i64, extra: &[&str]) -> Vec<String> {
    let mut ov = vec![
        format!("data.root={}", o.facades.display()),
        format!("data.size={size}"),
        format!("data.load_size={}", load_size(size)),
        format!("model.generator.n_blocks={blocks}"),
        "threads=1".to_string(),
        "train.workers=1".to_string(),
    ];
    ov.extend(extra.iter().map(|s| s.to_string()));
    ov
}

fn facades_config() -> PathBuf {
    root().join("configs/papers/cyclegan_facades.yaml")
}

/// The step bench's config at `size`/`blocks` on `o.device`.
pub fn cg_config(o: &Opts, size: i64, blocks: i64) -> Result<Config> {
    let dev = format!("device={}", device::device_name(o.device));
    Ok(ganzoo_pipelines::run::load_config(&facades_config(), &overrides(o, size, blocks, &[dev.as_str()]))?.config)
}

/// Writes `k` preprocessed (A, B) training pairs (resize to load_size, random crop, flip; unpaired draw) as raw
/// little-endian f32 (k, 2, 3, size, size), the input file of cyclegan_step.py.
pub(crate) fn dump_pairs(cfg: &Config, k: usize, path: &Path) -> Result<()> {
    let ds = open_domains(&cfg.settings(), ganzoo_data::unpaired::Split::Train, false)?;
    let mut buf = Vec::new();
    for i in 0..k {
        let ex = ds.get(i % ds.len(), &mut ganzoo_models::rng::derived_rng(cfg.seed, "bench_pairs", i as u64))?;
        for v in ex.x {
            buf.extend_from_slice(&v.to_le_bytes());
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, buf).with_context(|| format!("writing {}", path.display()))
}

/// (wall ms, CPU ms) per step of the product's step (`Trainer::step`) over `steps` timed steps after
/// `warmup`, real facades through the engine's feed, on `o.device` with channels-last and bf16 as `o` says.
fn ours_ms(o: &Opts, cfg: &Config, warmup: usize, steps: usize) -> Result<(f64, f64)> {
    tch::set_num_threads(1);
    Step::new(cfg, Variant::of(o), Input::Data, &[])?.time(warmup, steps)
}

/// G's and D's parameter counts (a family without data, on the CPU).
fn counts(cfg: &Config) -> Result<(i64, i64)> {
    let counts = step::parameter_counts(cfg)?;
    Ok((step::count(&counts, "G_A")?, step::count(&counts, "D_A")?))
}

/// Runs bench/cyclegan_step.py; its (wall ms, CPU ms) per step and its stdout.
#[allow(clippy::too_many_arguments)]
fn pytorch_ms(size: i64, blocks: i64, warmup: usize, steps: usize, g: i64, d: i64, data: &Path, extra: &[String]) -> Result<((f64, f64), String)> {
    let args: Vec<String> = [
        "--data", &data.display().to_string(), "--threads", "1", "--size", &size.to_string(), "--n-blocks", &blocks.to_string(),
        "--warmup", &warmup.to_string(), "--steps", &steps.to_string(), "--expect-g-params", &g.to_string(), "--expect-d-params", &d.to_string(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    crate::run_step_script("bench/cyclegan_step.py", &args, extra)
}

/// `cyclegan`: training-step time, ours vs PyTorch, alternating rounds per (size, blocks) setting, 1 thread.
pub fn step_time(o: &Opts) -> Result<()> {
    check_facades(o)?;
    println!(
        "== cyclegan: configs/papers/cyclegan_facades.yaml (ngf = ndf = 64, instance norm, reflection padding, LSGAN, λ 10 / idt 0.5, pool 50), batch 1, real facades, 1 libtorch thread; {} warm-up + {} timed steps per measurement, alternating rounds (ours, PyTorch, ...); medians",
        o.cg_warmup, o.cg_steps
    );
    println!("   machine: {}; PyTorch side: {}", machine(), python().display());
    println!("   {}", device::setup(o.device));
    println!("{:>5} {:>6} {:>6} | {}", "size", "blocks", "rounds", header_columns(o));
    for (i, &(size, blocks, rounds)) in o.cg_settings.iter().enumerate() {
        let cfg = cg_config(o, size, blocks)?;
        let data = root().join(format!("target/ganzoo-bench/cyclegan/facades_pairs_{size}.f32"));
        dump_pairs(&cfg, 8, &data)?;
        let (g, d) = counts(&cfg)?;
        let la0 = loadavg();
        let s = alternate(
            rounds,
            i == 0,
            || ours_ms(o, &cfg, o.cg_warmup, o.cg_steps),
            || pytorch_ms(size, blocks, o.cg_warmup, o.cg_steps, g, d, &data, &o.torch_args()),
        )?;
        println!("{:>5} {:>6} {:>6} | {}; load {} -> {}", size, blocks, rounds, row_columns(o, &s, 0), la0, loadavg());
    }
    legend(o);
    println!("   (on CPU, ours' CPU ms include its one JPEG-decoding worker)");
    if o.profile {
        let (size, blocks, _) = o.cg_settings[0];
        let cfg = cg_config(o, size, blocks)?;
        let (g, d) = counts(&cfg)?;
        let data = root().join(format!("target/ganzoo-bench/cyclegan/facades_pairs_{size}.f32"));
        for extra in [&[][..], &["--leaky", "factor", "--adam", "ours"][..]] {
            println!("-- PyTorch profile at {size}×{size}, {blocks} blocks, 1 thread, 1 warm-up + 2 steps, variant {extra:?}:");
            let mut args: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
            args.push("--profile".into());
            args.extend(o.torch_args());
            let (ms, out) = pytorch_ms(size, blocks, 1, 2, g, d, &data, &args)?;
            println!("{out}(profiled: {:.1} ms/step wall, {:.1} CPU ms/step)", ms.0, ms.1);
        }
    }
    Ok(())
}

/// Writes the left halves (photos) of the facades test images as PNGs into `dir` (at most `n`, 0: all).
fn write_photos(o: &Opts, dir: &Path, n: usize) -> Result<usize> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(o.facades.join("test"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg" || e == "png"))
        .collect();
    files.sort();
    if n > 0 {
        files.truncate(n);
    }
    for f in &files {
        let img = image::open(f).with_context(|| format!("reading {}", f.display()))?.to_rgb8();
        let (w, h) = (img.width() / 2, img.height());
        let left = image::imageops::crop_imm(&img, 0, 0, w, h).to_image();
        let stem = f.file_stem().unwrap_or_default().to_string_lossy();
        left.save(dir.join(format!("{stem}.png")))?;
    }
    Ok(files.len())
}

/// `translate`: a 1-step run per setting, then `run::translate` of the facades test photos (B → A, G_B).
pub fn translate(o: &Opts) -> Result<()> {
    check_facades(o)?;
    let base = root().join("target/ganzoo-bench/translate");
    let photos = base.join("photos");
    let n = write_photos(o, &photos, o.translate_images)?;
    println!(
        "== translate: ganzoo_pipelines::run::translate of {n} facades test photos (left halves, PNG) through G_B (photo → labels; swap: true makes B the photos), 1 libtorch thread"
    );
    println!("   each from a 1-step run of configs/papers/cyclegan_facades.yaml at the size below; time includes PNG decode, resize, G_B and PNG encode");
    println!("   machine: {}", machine());
    println!("{:>5} {:>6} | {:>6} {:>9} {:>10} | load average", "size", "blocks", "images", "seconds", "images/s");
    for &(size, blocks, _) in &o.translate_settings {
        let run_dir = base.join(format!("run-{size}-{blocks}"));
        let out_dir = base.join(format!("out-{size}-{blocks}"));
        for d in [&run_dir, &out_dir] {
            if d.exists() {
                std::fs::remove_dir_all(d)?;
            }
        }
        let ov = overrides(
            o,
            size,
            blocks,
            &["train.steps=1", "train.log_every=1", "train.sample_every=1", "train.checkpoint_every=1", "train.keep_checkpoints=1", "eval.samples=1"],
        );
        ganzoo_pipelines::run::train(&facades_config(), &ov, Some(&run_dir), Ui { quiet: true }).with_context(|| format!("1-step run at {size}"))?;
        tch::set_num_threads(1);
        let la0 = loadavg();
        let r = ganzoo_pipelines::run::translate(&run_dir, false, &photos, &out_dir, Some(size), false, true)?;
        println!(
            "{:>5} {:>6} | {:>6} {:>9.2} {:>10.2} | {} -> {}",
            size,
            blocks,
            r["translated"],
            r["seconds"].as_f64().unwrap_or(f64::NAN),
            r["images_per_second"].as_f64().unwrap_or(f64::NAN),
            la0,
            loadavg()
        );
    }
    println!("   outputs under {}", base.display());
    Ok(())
}

/// `facades`: bench/facades_128.yaml trained for its step budget (or --facades-steps), eval on the 106 test pairs.
pub fn quality(o: &Opts) -> Result<()> {
    check_facades(o)?;
    let config = root().join("bench/facades_128.yaml");
    let mut ov = vec![format!("data.root={}", o.facades.display())];
    if let Some(s) = o.facades_steps {
        ov.extend([format!("train.steps={s}"), format!("train.sample_every={s}"), format!("train.checkpoint_every={s}")]);
    }
    let cfg = ganzoo_pipelines::run::load_config(&config, &ov)?.config;
    let steps = cfg.train.steps;
    let out = root().join(format!("target/ganzoo-bench/facades/run-{steps}"));
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    println!(
        "== facades: {} (unpaired CycleGAN, labels ↔ photos, 128×128, 6 blocks, load 143 → crop 128 + flip), {steps} steps, {} libtorch thread(s)",
        config.display(),
        cfg.threads
    );
    println!("   machine: {}; load average at start {}", machine(), loadavg());
    let t0 = Instant::now();
    let r = ganzoo_pipelines::run::train(&config, &ov, Some(&out), Ui { quiet: true })?;
    let total = t0.elapsed().as_secs_f64();
    let e = &r["eval"];
    let f = |k: &str| e[k].as_f64().unwrap_or(f64::NAN);
    println!("{:<28} {:>9} {:>10}", "direction (vs true test pair)", "L1 [-1,1]", "PSNR dB");
    println!("{:<28} {:>9.4} {:>10.2}", "labels → photo (a2b, G_A)", f("a2b_l1"), f("a2b_psnr"));
    println!("{:<28} {:>9.4} {:>10.2}", "photo → labels (b2a, G_B)", f("b2a_l1"), f("b2a_psnr"));
    println!("{:<28} {:>9.4} {:>10.2}", "identity baseline (A vs B)", f("identity_baseline_l1"), f("identity_baseline_psnr"));
    println!("   cycle L1 A {:.4}, B {:.4}; {} test images", f("cycle_l1_A"), f("cycle_l1_B"), e["test_images"]);
    let train_s = r["train_seconds"].as_f64().unwrap_or(f64::NAN);
    println!(
        "   train {:.1} s ({:.3} s/step), total with eval {:.1} s; final losses {}; samples {}; load average at end {}",
        train_s,
        train_s / steps as f64,
        total,
        r["final_losses"],
        r["samples"],
        loadavg()
    );
    println!("   run in {}", out.display());
    Ok(())
}
