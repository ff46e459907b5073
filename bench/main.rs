//! ganzoo benchmarks (figures, not tests): `cargo bench --bench ganzoo_bench -- [ring] [dcgan] [OPTIONS]`.
//!
//! * `ring`: the MLP GAN of configs/papers/gan_ring8.yaml trained with three losses at equal generator steps
//!   (minimax, non-saturating, WGAN-GP), driven through `ganzoo_pipelines::run::train`; prints modes covered,
//!   high-quality fraction and seconds per seed.
//! * `dcgan`: DCGAN training-step time at 28×28 / batch 128 (configs/papers/dcgan_mnist.yaml), ours
//!   (`Gan::train_step`) against bench/dcgan_step.py (the same architecture and procedure in PyTorch), run
//!   alternately in rounds with the same libtorch thread count; prints the medians and the ratio ours/PyTorch.
//! * `cyclegan`: CycleGAN training-step time (configs/papers/cyclegan_facades.yaml at 128/6 blocks and 256/9
//!   blocks, real facades, batch 1, 1 thread), ours (`CycleGan::train_step`) against bench/cyclegan_step.py.
//! * `translate`: `run::translate` throughput (images/s) on the facades test photos, from 1-step runs.
//! * `facades`: unpaired CycleGAN on real facades at 128×128 for a fixed step budget (bench/facades_128.yaml),
//!   L1 / PSNR against the true test pairs next to the identity baseline.
//!
//! See bench/README.md for the options and measured figures.
mod cyclegan;
mod proto;

use anyhow::{anyhow, bail, Context, Result};
use ganzoo_pipelines::engine::Ui;
use ganzoo_pipelines::family::Trainable;
use ganzoo_pipelines::gan::Gan;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

const USAGE: &str = "\
usage: cargo bench --bench ganzoo_bench -- [ring] [dcgan] [proto] [cyclegan] [translate] [facades] [OPTIONS]
                                                                           (default: ring dcgan)
  ring options:   --seeds 0,1,2      seeds to train (each seed: minimax, non_saturating, wgan_gp)
                  --ring-steps N     generator steps per run (default: the config's, 3000)
                  --losses a,b,c     subset of minimax,non_saturating,wgan_gp
  dcgan options:  --threads 1,2      libtorch intra-op thread counts to measure (both sides use the same)
                  --rounds N         alternating rounds ours/PyTorch per thread count (default 3; median reported)
                  --warmup N         warm-up steps per measurement (default 3)
                  --steps N          timed steps per measurement (default 10)
                  --batch N          batch size (default 128)
                  --profile          also print PyTorch's profiler table for our procedure re-created in PyTorch
                                     (LeakyReLU as maximum, Adam op by op as optim.rs)
  proto:          our train step re-built inside bench/ with each candidate fix (LeakyReLU fused, Adam fused ops),
                  timed alternately against the unchanged Gan::train_step (uses --threads/--rounds/--warmup/--steps)
  ring threads:   --ring-threads N   libtorch threads for ring (default 1)
  cyclegan, translate, facades (always 1 libtorch thread):
                  --facades DIR      pix2pix facades (train/, test/ of photo|labels JPEGs); default $GANZOO_FACADES,
                                     else datasets/facades under the repo
  cyclegan:       --cg-settings 128:6:3,256:9:2   size:n_blocks:rounds per setting (default as shown)
                  --cg-warmup N      warm-up steps per measurement (default 2)
                  --cg-steps N       timed steps per measurement (default 5)
                  --profile          also print PyTorch's profiler table at the first setting (reference, and our
                                     procedure re-created: LeakyReLU as prelu, Adam op by op as optim.rs)
  translate:      --translate-settings 128:6,256:9   size:n_blocks per setting
                  --translate-images N   translate only the first N test photos (default 0: all 106)
  facades:        --facades-steps N  override bench/facades_128.yaml's train.steps";

pub struct Opts {
    pub benches: Vec<String>,
    pub seeds: Vec<u64>,
    pub ring_steps: Option<i64>,
    pub losses: Vec<String>,
    pub threads: Vec<i32>,
    pub ring_threads: i32,
    pub rounds: usize,
    pub warmup: usize,
    pub steps: usize,
    pub batch: i64,
    pub profile: bool,
    pub facades: PathBuf,
    pub cg_settings: Vec<(i64, i64, usize)>,
    pub cg_warmup: usize,
    pub cg_steps: usize,
    pub translate_settings: Vec<(i64, i64, usize)>,
    pub translate_images: usize,
    pub facades_steps: Option<i64>,
}

/// `128:6:3,256:9:2` -> [(128, 6, 3), (256, 9, 2)]; a missing third field is 0.
fn settings(s: &str, what: &str) -> Result<Vec<(i64, i64, usize)>> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| {
            let f: Vec<&str> = x.trim().split(':').collect();
            let bad = || anyhow!("{what}: cannot parse `{x}` (size:blocks[:rounds])");
            if f.len() < 2 || f.len() > 3 {
                return Err(bad());
            }
            Ok((
                f[0].parse().map_err(|_| bad())?,
                f[1].parse().map_err(|_| bad())?,
                f.get(2).map(|r| r.parse()).transpose().map_err(|_| bad())?.unwrap_or(0),
            ))
        })
        .collect()
}

fn list<T: std::str::FromStr>(s: &str, what: &str) -> Result<Vec<T>> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| x.trim().parse::<T>().map_err(|_| anyhow!("{what}: cannot parse `{x}`")))
        .collect()
}

fn parse_args() -> Result<Opts> {
    let mut o = Opts {
        benches: vec![],
        seeds: vec![0, 1, 2],
        ring_steps: None,
        losses: vec!["minimax".into(), "non_saturating".into(), "wgan_gp".into()],
        threads: vec![1, 2],
        ring_threads: 1,
        rounds: 3,
        warmup: 3,
        steps: 10,
        batch: 128,
        profile: false,
        facades: std::env::var_os("GANZOO_FACADES").map(PathBuf::from).unwrap_or_else(|| root().join("datasets/facades")),
        cg_settings: vec![(128, 6, 3), (256, 9, 2)],
        cg_warmup: 2,
        cg_steps: 5,
        translate_settings: vec![(128, 6, 0), (256, 9, 0)],
        translate_images: 0,
        facades_steps: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or_else(|| anyhow!("{name} needs a value\n{USAGE}"));
        match a.as_str() {
            "--bench" => {} // passed by `cargo bench`
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "ring" | "dcgan" | "proto" | "cyclegan" | "translate" | "facades" => o.benches.push(a.clone()),
            "all" => o.benches.extend(["ring".to_string(), "dcgan".to_string()]),
            "--seeds" => o.seeds = list(&val("--seeds")?, "--seeds")?,
            "--ring-steps" => o.ring_steps = Some(val("--ring-steps")?.parse()?),
            "--losses" => o.losses = list(&val("--losses")?, "--losses")?,
            "--threads" => o.threads = list(&val("--threads")?, "--threads")?,
            "--ring-threads" => o.ring_threads = val("--ring-threads")?.parse()?,
            "--rounds" => o.rounds = val("--rounds")?.parse()?,
            "--warmup" => o.warmup = val("--warmup")?.parse()?,
            "--steps" => o.steps = val("--steps")?.parse()?,
            "--batch" => o.batch = val("--batch")?.parse()?,
            "--profile" => o.profile = true,
            "--facades" => o.facades = PathBuf::from(val("--facades")?),
            "--cg-settings" => o.cg_settings = settings(&val("--cg-settings")?, "--cg-settings")?,
            "--cg-warmup" => o.cg_warmup = val("--cg-warmup")?.parse()?,
            "--cg-steps" => o.cg_steps = val("--cg-steps")?.parse()?,
            "--translate-settings" => o.translate_settings = settings(&val("--translate-settings")?, "--translate-settings")?,
            "--translate-images" => o.translate_images = val("--translate-images")?.parse()?,
            "--facades-steps" => o.facades_steps = Some(val("--facades-steps")?.parse()?),
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    if o.benches.is_empty() {
        o.benches = vec!["ring".into(), "dcgan".into()];
    }
    if o.rounds == 0 || o.steps == 0 || o.cg_steps == 0 {
        bail!("--rounds, --steps and --cg-steps must be >= 1");
    }
    if o.cg_settings.is_empty() || o.cg_settings.iter().any(|s| s.2 == 0) {
        bail!("--cg-settings: give size:blocks:rounds with rounds >= 1");
    }
    for l in &o.losses {
        if !["minimax", "non_saturating", "wgan_gp"].contains(&l.as_str()) {
            bail!("--losses: unknown loss `{l}` (minimax, non_saturating, wgan_gp)");
        }
    }
    Ok(o)
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn cache_dir() -> PathBuf {
    std::env::var_os("GANZOO_CACHE").map(PathBuf::from).unwrap_or_else(|| root().join(".ganzoo-cache"))
}

fn machine() -> String {
    let nproc = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{nproc} CPUs available, {cpu}")
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// CPU seconds used so far by this process, all threads (user + system, from /proc/self/stat; 10 ms ticks).
pub fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (tick(11) + tick(12)) / 100.0
}

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

// ---------------------------------------------------------------------------------------------- ring

fn ring(o: &Opts) -> Result<()> {
    let config = root().join("configs/papers/gan_ring8.yaml");
    let base = ganzoo_pipelines::run::load_config(&config, &[])?.config;
    let steps = o.ring_steps.unwrap_or(base.train.steps);
    println!("== ring: {} (MLP GAN, ring of 8 Gaussians), {steps} generator steps per run, {} libtorch thread(s)", config.display(), o.ring_threads);
    println!("   machine: {}; load average at start {}", machine(), loadavg());
    tch::set_num_threads(o.ring_threads);
    let out_root = root().join("target/ganzoo-bench/ring");
    let mut rows = vec![];
    println!("{:<16} {:>5} {:>6} {:>10} {:>10} {:>9}", "loss", "seed", "steps", "modes", "HQ %", "seconds");
    for &seed in &o.seeds {
        for loss in &o.losses {
            let mut ov: Vec<String> = vec![
                format!("seed={seed}"),
                format!("threads={}", o.ring_threads),
                format!("train.steps={steps}"),
                format!("train.sample_every={steps}"),
                format!("train.checkpoint_every={steps}"),
                format!("train.log_every={}", (steps / 10).max(1)),
                "train.keep_checkpoints=1".into(),
            ];
            match loss.as_str() {
                "minimax" => ov.push("loss.adversarial=minimax".into()),
                "non_saturating" => ov.push("loss.adversarial=non_saturating".into()),
                _ => ov.extend(
                    [
                        "loss.adversarial=wasserstein",
                        "loss.gradient_penalty=10",
                        "train.n_critic=5",
                        "train.g_optimizer.lr=1.0e-4",
                        "train.g_optimizer.betas=[0.5, 0.9]",
                        "train.d_optimizer.lr=1.0e-4",
                        "train.d_optimizer.betas=[0.5, 0.9]",
                    ]
                    .map(String::from),
                ),
            }
            let out = out_root.join(format!("{loss}-seed{seed}"));
            if out.exists() {
                std::fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
            }
            let t0 = Instant::now();
            let r = ganzoo_pipelines::run::train(&config, &ov, Some(&out), Ui { quiet: true })
                .with_context(|| format!("ring {loss} seed {seed}"))?;
            let secs = t0.elapsed().as_secs_f64();
            let e = &r["eval"];
            let covered = e["modes_covered"].as_u64().unwrap_or(0);
            let modes = e["modes"].as_u64().unwrap_or(0);
            let hq = e["high_quality_fraction"].as_f64().unwrap_or(f64::NAN) * 100.0;
            let train_s = r["train_seconds"].as_f64().unwrap_or(secs);
            println!("{:<16} {:>5} {:>6} {:>10} {:>10.1} {:>9.1}", loss, seed, r["steps"], format!("{covered}/{modes}"), hq, train_s);
            rows.push((loss.clone(), covered, hq, train_s));
        }
    }
    if o.seeds.len() > 1 {
        println!("-- per loss over {} seeds (median modes, median HQ %, median seconds):", o.seeds.len());
        for loss in &o.losses {
            let sel: Vec<_> = rows.iter().filter(|r| &r.0 == loss).collect();
            let m = median(&sel.iter().map(|r| r.1 as f64).collect::<Vec<_>>());
            let hq = median(&sel.iter().map(|r| r.2).collect::<Vec<_>>());
            let s = median(&sel.iter().map(|r| r.3).collect::<Vec<_>>());
            println!("{:<16} {:>5} {:>6} {:>10} {:>10.1} {:>9.1}", loss, "med", steps, format!("{m}/8"), hq, s);
        }
    }
    println!("   runs in {}; load average at end {}", out_root.display(), loadavg());
    Ok(())
}

// --------------------------------------------------------------------------------------------- dcgan

pub fn dcgan_config(threads: i32, batch: i64) -> Result<ganzoo_pipelines::config::Config> {
    let config = root().join("configs/papers/dcgan_mnist.yaml");
    let ov = vec![
        format!("threads={threads}"),
        format!("train.batch_size={batch}"),
        format!("data.root={}", cache_dir().join("mnist").display()),
    ];
    Ok(ganzoo_pipelines::run::load_config(&config, &ov)?.config)
}

/// (wall ms, CPU ms) per `Gan::train_step` over `steps` timed steps after `warmup`, on a freshly built family;
/// and G's, D's parameter counts.
fn ours_ms(threads: i32, batch: i64, warmup: usize, steps: usize) -> Result<((f64, f64), i64, i64)> {
    tch::set_num_threads(threads);
    let cfg = dcgan_config(threads, batch)?;
    let mut gan = Gan::new(&cfg, tch::Device::Cpu, true)?;
    let counts = gan.parameter_counts();
    let (g, d) = (counts[0].1, counts[1].1);
    for s in 0..warmup {
        gan.train_step(s as i64)?;
    }
    let (t0, c0) = (Instant::now(), cpu_seconds());
    for s in 0..steps {
        gan.train_step((warmup + s) as i64)?;
    }
    let n = steps as f64;
    Ok(((t0.elapsed().as_secs_f64() * 1000.0 / n, (cpu_seconds() - c0) * 1000.0 / n), g, d))
}

pub fn python() -> PathBuf {
    root().join(".venv/bin/python")
}

/// Runs bench/dcgan_step.py and returns its (wall ms, CPU ms) per step (and its stdout, for --profile).
pub fn pytorch_ms(threads: i32, batch: i64, warmup: usize, steps: usize, g: i64, d: i64, extra: &[&str]) -> Result<((f64, f64), String)> {
    let images = cache_dir().join("mnist/images-idx3-ubyte");
    let mut args: Vec<String> = vec!["--mnist".into(), images.display().to_string(), "--threads".into(), threads.to_string(), "--batch".into(), batch.to_string()];
    args.extend(["--warmup".into(), warmup.to_string(), "--steps".into(), steps.to_string()]);
    args.extend(["--expect-g-params".into(), g.to_string(), "--expect-d-params".into(), d.to_string()]);
    run_step_script("bench/dcgan_step.py", &args, extra)
}

/// Median wall and CPU ms of ours and theirs with their ratios, then each round's wall ms (`decimals` places):
/// the columns every side-by-side table prints. Samples are (wall ms, CPU ms).
pub fn ratio_columns(ours: &[(f64, f64)], theirs: &[(f64, f64)], decimals: usize) -> String {
    let wall = |v: &[(f64, f64)]| median(&v.iter().map(|x| x.0).collect::<Vec<_>>());
    let cpu = |v: &[(f64, f64)]| median(&v.iter().map(|x| x.1).collect::<Vec<_>>());
    let rounds = |v: &[(f64, f64)]| v.iter().map(|x| format!("{:.*}", decimals, x.0)).collect::<Vec<_>>().join(" ");
    format!(
        "{:>9.1} {:>9.1} {:>7.3} | {:>9.1} {:>9.1} {:>7.3} | {} | {}",
        wall(ours),
        wall(theirs),
        wall(ours) / wall(theirs),
        cpu(ours),
        cpu(theirs),
        cpu(ours) / cpu(theirs),
        rounds(ours),
        rounds(theirs)
    )
}

/// Runs a PyTorch step script of bench/ and reads its `ms_per_step:` and `cpu_ms_per_step:` lines.
pub fn run_step_script(script: &str, args: &[String], extra: &[&str]) -> Result<((f64, f64), String)> {
    let script = root().join(script);
    let out = Command::new(python())
        .arg(&script)
        .args(args)
        .args(extra)
        .output()
        .with_context(|| format!("running {} {}", python().display(), script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!("{} failed ({}):\n{}{}", script.display(), out.status, stdout, String::from_utf8_lossy(&out.stderr));
    }
    let field = |key: &str| -> Result<f64> {
        Ok(stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .ok_or_else(|| anyhow!("no `{key}` line in the output of {}:\n{stdout}", script.display()))?
            .trim()
            .parse::<f64>()?)
    };
    Ok(((field("ms_per_step:")?, field("cpu_ms_per_step:")?), stdout))
}

fn check_mnist() -> Result<()> {
    let images = cache_dir().join("mnist/images-idx3-ubyte");
    if !images.exists() {
        bail!("{} is missing: run `./target/debug/ganzoo data get mnist --cache {}` first (bash .ci/dev bench does)", images.display(), cache_dir().display());
    }
    if !python().exists() {
        bail!("{} is missing: run `bash .ci/dev test` (or quickstart) once to set up the virtualenv", python().display());
    }
    Ok(())
}

fn dcgan(o: &Opts) -> Result<()> {
    check_mnist()?;
    println!(
        "== dcgan: configs/papers/dcgan_mnist.yaml (28×28×1, nz 100, ngf = ndf = 64), batch {}, {} warm-up + {} timed steps per measurement, {} alternating rounds (ours, PyTorch, ours, ...); medians",
        o.batch, o.warmup, o.steps, o.rounds
    );
    println!("   machine: {}; both sides on the venv's libtorch ({})", machine(), python().display());
    println!(
        "{:>7} | {:>9} {:>9} {:>7} | {:>9} {:>9} {:>7} | wall ms per round (ours | torch); load average",
        "threads", "ours ms", "torch ms", "ratio", "ours CPU", "torch CPU", "ratio"
    );
    for &t in &o.threads {
        let (mut ours, mut theirs) = (vec![], vec![]);
        let la0 = loadavg();
        for _ in 0..o.rounds {
            let (ms, g, d) = ours_ms(t, o.batch, o.warmup, o.steps)?;
            ours.push(ms);
            let (pms, _) = pytorch_ms(t, o.batch, o.warmup, o.steps, g, d, &[])?;
            theirs.push(pms);
        }
        println!("{:>7} | {}; load {} -> {}", t, ratio_columns(&ours, &theirs, 1), la0, loadavg());
    }
    println!("   ms = wall-clock ms per training step (median over rounds); CPU = CPU ms per step of the whole process, all threads");
    if o.profile {
        let t = o.threads[0];
        let cfg = dcgan_config(t, o.batch)?;
        let c = Gan::new(&cfg, tch::Device::Cpu, false)?.parameter_counts();
        println!("-- PyTorch profile of our procedure re-created in PyTorch (--leaky max --adam ours), {t} thread(s):");
        let (_, out) = pytorch_ms(t, o.batch, o.warmup, o.steps, c[0].1, c[1].1, &["--leaky", "max", "--adam", "ours", "--profile"])?;
        println!("{out}");
    }
    Ok(())
}

fn main() -> Result<()> {
    // What the `ganzoo` binary does first, so our side runs as the product does.
    ganzoo_pipelines::alloc::keep_freed_memory();
    let o = parse_args()?;
    for b in o.benches.clone() {
        match b.as_str() {
            "ring" => ring(&o)?,
            "dcgan" => dcgan(&o)?,
            "cyclegan" => cyclegan::step_time(&o)?,
            "translate" => cyclegan::translate(&o)?,
            "facades" => cyclegan::quality(&o)?,
            "proto" => {
                check_mnist()?;
                proto::run(&o)?
            }
            _ => unreachable!(),
        }
    }
    Ok(())
}

