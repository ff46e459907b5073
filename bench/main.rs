//! ganzoo benchmarks (figures, not tests): `cargo bench --bench ganzoo_bench -- [ring] [dcgan] [OPTIONS]`.
//!
//! * `ring`: the MLP GAN of configs/papers/gan_ring8.yaml trained with three losses at equal generator steps
//!   (minimax, non-saturating, WGAN-GP), driven through `ganzoo_pipelines::run::train`; prints modes covered,
//!   high-quality fraction and seconds per seed.
//! * `dcgan`: DCGAN training-step time at 28×28 / batch 128 (configs/papers/dcgan_mnist.yaml), ours against
//!   bench/dcgan_step.py (the same architecture and procedure in PyTorch), run alternately in rounds with the
//!   same libtorch thread count; prints the medians and the ratio ours/PyTorch.
//! * `cyclegan`: CycleGAN training-step time (configs/papers/cyclegan_facades.yaml at 128/6 blocks and 256/9
//!   blocks, real facades, batch 1, 1 thread), ours against bench/cyclegan_step.py.
//! * `cut`: CUT and FastCUT training-step time at the same settings, ours against bench/cut_step.py and against
//!   our CycleGAN step.
//! * `translate`: `run::translate` throughput (images/s) on the facades test photos, from 1-step runs.
//! * `facades`: unpaired CycleGAN on real facades at 128×128 for a fixed step budget (bench/facades_128.yaml),
//!   L1 / PSNR against the true test pairs next to the identity baseline.
//! * `gan_cls`, `stackgan`, `vaegan`, `unit`: step times of those families, ours against bench/*_step.py.
//! * `check`: verifies on `--device` what the step benches rely on (channels-last conversion, bf16 autocast).
//! * `inception`: FID feature extraction images/s, ours (`FeatureNet::features_batched`) against
//!   bench/inception_step.py (PyTorch running the same TorchScript), alternating rounds.
//!
//! "Ours" is always the product's step: the family built from its config and the engine's `Trainer::step`
//! (bench/step.rs). The step benches take `--device cpu|cuda` and `--channels-last`; `dcgan`, `cyclegan` and
//! `gan_cls` also `--bf16` (bench/device.rs).
//!
//! See bench/README.md for the options and measured figures.
mod cut;
mod cyclegan;
mod device;
mod gan_cls;
mod inception;
mod stackgan;
mod step;
mod unit;
mod vaegan;

use anyhow::{anyhow, bail, Context, Result};
use ganzoo_pipelines::engine::Ui;
use ganzoo_pipelines::families::Config;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

const USAGE: &str = "\
usage: cargo bench --bench ganzoo_bench -- [ring] [dcgan] [cyclegan] [cut] [translate] [facades] [gan_cls] [stackgan] [vaegan] [unit] [check] [inception] [OPTIONS]
                                                                           (default: ring dcgan)
  Every step bench times the product's step: the family built from its config and the engine's Trainer::step.
  device options (dcgan, cyclegan, gan_cls, stackgan, vaegan, unit, check):
                  --device cpu|cuda  where both sides train (default cpu); on CUDA: cuDNN benchmark mode on both
                                     sides, the clock read after a device synchronize, wall ms only
                  --channels-last    4-D parameters (and their optimizer moments) in channels-last strides; the
                                     PyTorch side: model.to(memory_format=torch.channels_last) and inputs likewise
                  --bf16             (dcgan, cyclegan, gan_cls) ours with train.precision: bf16 (the product's
                                     autocast around the forward passes and losses), PyTorch with torch.autocast
                                     around the same region (--amp bf16 --amp-scope forward, its documented usage)
                  --no-ours-bf16     with --bf16: our side stays fp32 (PyTorch's bf16 next to our fp32)
                  --python PATH      interpreter of the PyTorch scripts (default $GANZOO_PYTHON, else .venv/bin/python)
  gan_cls:        GAN-CLS step (family gan_cls, 64×64 procedural shapes, precomputed random 1024-d text, 3 D
                  pairs), ours vs bench/gan_cls_step.py; uses --threads, --rounds, --warmup, --steps and
                  --gc-batch N       batch size (default 64)
  stackgan:       StackGAN Stage-I (64 px) and Stage-II (256 px) steps at the birds widths (family stackgan,
                  256-px procedural shapes, precomputed random 1024-d text), ours vs bench/stackgan_step.py, with
                  peak memory; uses --threads, --rounds, --warmup, --steps and
                  --sg-batch N       batch size (default 64, the paper's)
                  --sg-stage 1|2     only that stage (default both; Stage-II at batch 64 needs far more than 24 GB)
  vaegan:         VAE-GAN step (the authors' 64×64 layout, configs/papers/vaegan_celeba.yaml without the equilibrium
                  band), ours vs bench/vaegan_step.py; the same options as gan_cls (--gc-batch sets its batch)
  unit:           UNIT step at the quickstart's sizes (configs/quickstart/unit_shapes.yaml, 32×32), ours vs
                  bench/unit_step.py; the same options as gan_cls (--gc-batch sets its batch; the quickstart's is 4)
  check:          channels-last strides and same losses, the bf16 binding and train.precision bf16 steps (uses
                  --device, MNIST, facades)
  inception:      FID Inception-v3 feature extraction (images/s), ours (FeatureNet::features_batched) vs
                  bench/inception_step.py on the same TorchScript (needs `ganzoo data get inception`); uses
                  --threads, --rounds, --warmup, --steps (batches), --device and
                  --inc-batch N      batch size (default 16)
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
  ring threads:   --ring-threads N   libtorch threads for ring (default 1)
  cyclegan, cut, translate, facades (always 1 libtorch thread):
                  --facades DIR      pix2pix facades (train/, test/ of photo|labels JPEGs); default $GANZOO_FACADES,
                                     else datasets/facades under the repo
  cyclegan, cut:  --cg-settings 128:6:3,256:9:2   size:n_blocks:rounds per setting (default as shown)
                  --cg-warmup N      warm-up steps per measurement (default 2)
                  --cg-steps N       timed steps per measurement (default 5)
                  --profile          also print PyTorch's profiler table at the first setting (reference, and our
                                     procedure re-created: LeakyReLU as models/src/base.rs writes it, Adam op by op as optim.rs)
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
    pub gc_batch: i64,
    pub sg_batch: i64,
    pub sg_stages: Vec<u8>,
    pub inc_batch: i64,
    pub device: tch::Device,
    pub channels_last: bool,
    pub bf16: bool,
    pub ours_bf16: bool,
}

impl Opts {
    /// Whether our side runs under bf16 autocast.
    pub fn ours_in_bf16(&self) -> bool {
        self.bf16 && self.ours_bf16
    }

    /// What a side runs, for the legend: ours (`train.precision`) or PyTorch's script.
    pub fn variant(&self, bf16: bool) -> String {
        let mut v = vec![if bf16 { "bf16 autocast around the forward passes and losses" } else { "fp32" }];
        if self.channels_last {
            v.push("channels-last");
        }
        v.join(", ")
    }

    /// The PyTorch scripts' variant options: device, channels-last and, with --bf16, bf16 autocast around the
    /// forward passes and losses (the region of our `train.precision: bf16`).
    pub fn torch_args(&self) -> Vec<String> {
        let mut a = vec!["--device".to_string(), device::device_name(self.device)];
        if self.channels_last {
            a.push("--channels-last".into());
        }
        if self.bf16 {
            a.extend(["--amp", "bf16", "--amp-scope", "forward"].map(String::from));
        }
        a
    }

    /// Refuses --bf16 for a bench whose PyTorch script has no autocast regions around its forward passes.
    pub fn fp32_only(&self, bench: &str) -> Result<()> {
        if self.bf16 {
            bail!("{bench}: --bf16 is not supported (bench/{bench}_step.py has no autocast regions); run it without --bf16");
        }
        Ok(())
    }

    pub fn cuda(&self) -> bool {
        self.device != tch::Device::Cpu
    }
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
        gc_batch: 64,
        sg_batch: 64,
        sg_stages: vec![1, 2],
        inc_batch: 16,
        device: tch::Device::Cpu,
        channels_last: false,
        bf16: false,
        ours_bf16: true,
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
            "ring" | "dcgan" | "cyclegan" | "cut" | "translate" | "facades" | "gan_cls" | "stackgan" | "vaegan" | "unit" | "check" | "inception" => {
                o.benches.push(a.clone())
            }
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
            "--gc-batch" => o.gc_batch = val("--gc-batch")?.parse()?,
            "--sg-batch" => o.sg_batch = val("--sg-batch")?.parse()?,
            "--inc-batch" => o.inc_batch = val("--inc-batch")?.parse()?,
            "--sg-stage" => {
                o.sg_stages = match val("--sg-stage")?.as_str() {
                    "1" => vec![1],
                    "2" => vec![2],
                    other => bail!("--sg-stage: 1 or 2, got {other}"),
                }
            }
            "--device" => o.device = device::parse_device(&val("--device")?)?,
            "--channels-last" => o.channels_last = true,
            "--bf16" => o.bf16 = true,
            "--no-ours-bf16" => o.ours_bf16 = false,
            // Read by python(); set before any thread starts.
            "--python" => std::env::set_var("GANZOO_PYTHON", val("--python")?),
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    if o.benches.is_empty() {
        o.benches = vec!["ring".into(), "dcgan".into()];
    }
    if o.rounds == 0 || o.steps == 0 || o.cg_steps == 0 || o.inc_batch < 1 {
        bail!("--rounds, --steps, --cg-steps and --inc-batch must be >= 1");
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

/// The repository root: `$GANZOO_ROOT`, else the current directory when it holds bench/ and configs/ (a
/// prebuilt binary run from a copy of the repository elsewhere), else where the bench was compiled.
pub fn root() -> PathBuf {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        if let Some(r) = std::env::var_os("GANZOO_ROOT").filter(|r| !r.is_empty()) {
            return PathBuf::from(r);
        }
        if let Ok(cwd) = std::env::current_dir() {
            if cwd.join("bench/dcgan_step.py").is_file() && cwd.join("configs/papers").is_dir() {
                return cwd;
            }
        }
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    })
    .clone()
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

pub fn dcgan_config(threads: i32, batch: i64, device: tch::Device) -> Result<Config> {
    let config = root().join("configs/papers/dcgan_mnist.yaml");
    let ov = vec![
        format!("threads={threads}"),
        format!("train.batch_size={batch}"),
        format!("data.root={}", cache_dir().join("mnist").display()),
        format!("device={}", device::device_name(device)),
    ];
    Ok(ganzoo_pipelines::run::load_config(&config, &ov)?.config)
}

/// The interpreter of the PyTorch scripts: `$GANZOO_PYTHON` (what `--python` sets), else the repo's .venv.
pub fn python() -> PathBuf {
    std::env::var_os("GANZOO_PYTHON").filter(|p| !p.is_empty()).map(PathBuf::from).unwrap_or_else(|| root().join(".venv/bin/python"))
}

/// Runs bench/dcgan_step.py and returns its (wall ms, CPU ms) per step (and its stdout, for --profile).
pub fn pytorch_ms(threads: i32, batch: i64, warmup: usize, steps: usize, g: i64, d: i64, extra: &[String]) -> Result<((f64, f64), String)> {
    let images = cache_dir().join("mnist/images-idx3-ubyte");
    let mut args: Vec<String> = vec!["--mnist".into(), images.display().to_string()];
    args.extend(script_args(threads, batch, warmup, steps, Some((g, d))));
    run_step_script("bench/dcgan_step.py", &args, extra)
}

/// The arguments every step script takes: threads, batch, warm-up and timed steps, and (G, D) parameter counts
/// the script asserts its networks have.
pub fn script_args(threads: i32, batch: i64, warmup: usize, steps: usize, expect: Option<(i64, i64)>) -> Vec<String> {
    let mut a: Vec<String> = vec!["--threads".into(), threads.to_string(), "--batch".into(), batch.to_string()];
    a.extend(["--warmup".into(), warmup.to_string(), "--steps".into(), steps.to_string()]);
    if let Some((g, d)) = expect {
        a.extend(["--expect-g-params".into(), g.to_string(), "--expect-d-params".into(), d.to_string()]);
    }
    a
}

fn rounds(v: &[(f64, f64)], decimals: usize) -> String {
    v.iter().map(|x| format!("{:.*}", decimals, x.0)).collect::<Vec<_>>().join(" ")
}

/// One side-by-side row's measurements, (wall ms, CPU ms) per round: ours and PyTorch's.
#[derive(Default)]
pub struct Samples {
    pub ours: Vec<(f64, f64)>,
    pub theirs: Vec<(f64, f64)>,
}

/// `rounds` alternating rounds, ours then PyTorch's script (which returns its timings and stdout); prints the
/// script's `setup:` line after the first round when `show_setup`.
pub fn alternate(
    rounds: usize,
    show_setup: bool,
    mut ours: impl FnMut() -> Result<(f64, f64)>,
    mut theirs: impl FnMut() -> Result<((f64, f64), String)>,
) -> Result<Samples> {
    let mut s = Samples::default();
    for r in 0..rounds {
        s.ours.push(ours()?);
        let (ms, out) = theirs()?;
        if r == 0 && show_setup {
            print_setup(&out);
        }
        s.theirs.push(ms);
    }
    Ok(s)
}

/// A table with one row per `--threads` count: `o.rounds` alternating rounds of `ours(threads)` and
/// `theirs(threads)` each (ms shown with `decimals`), then the legend.
pub fn thread_rows(
    o: &Opts,
    decimals: usize,
    mut ours: impl FnMut(i32) -> Result<(f64, f64)>,
    mut theirs: impl FnMut(i32) -> Result<((f64, f64), String)>,
) -> Result<()> {
    println!("{:>7} | {}", "threads", header_columns(o));
    for (i, &t) in o.threads.iter().enumerate() {
        let la0 = loadavg();
        let s = alternate(o.rounds, i == 0, || ours(t), || theirs(t))?;
        println!("{:>7} | {}; load {} -> {}", t, row_columns(o, &s, decimals), la0, loadavg());
    }
    legend(o);
    Ok(())
}

/// The table header matching [`row_columns`] (after the row's own leading columns).
pub fn header_columns(o: &Opts) -> String {
    let h = if o.cuda() {
        format!("{:>9} {:>9} {:>7}", "ours ms", "torch ms", "ratio")
    } else {
        format!("{:>9} {:>9} {:>7} | {:>9} {:>9} {:>7}", "ours ms", "torch ms", "ratio", "ours CPU", "torch CPU", "ratio")
    };
    h + " | wall ms per round (ours | torch); load average"
}

/// The measured columns of a row (medians over rounds, then each round's wall ms): on CPU wall and CPU ms with
/// their ratios ours/PyTorch, on CUDA wall ms only (CPU time there is the host thread waiting).
pub fn row_columns(o: &Opts, s: &Samples, decimals: usize) -> String {
    let wall = |v: &[(f64, f64)]| median(&v.iter().map(|x| x.0).collect::<Vec<_>>());
    let cpu = |v: &[(f64, f64)]| median(&v.iter().map(|x| x.1).collect::<Vec<_>>());
    let (ow, tw) = (wall(&s.ours), wall(&s.theirs));
    let decimals = if o.cuda() { 3 } else { decimals };
    let mut groups = vec![format!("{:>9.*} {:>9.*} {:>7.3}", decimals.max(1), ow, decimals.max(1), tw, ow / tw)];
    if !o.cuda() {
        let (oc, tc) = (cpu(&s.ours), cpu(&s.theirs));
        groups.push(format!("{:>9.1} {:>9.1} {:>7.3}", oc, tc, oc / tc));
    }
    groups.push(rounds(&s.ours, decimals));
    groups.push(rounds(&s.theirs, decimals));
    groups.join(" | ")
}

/// The lines every side-by-side table ends with: what the columns mean for these options.
pub fn legend(o: &Opts) {
    if o.cuda() {
        println!("   ms = wall-clock ms per training step after a device synchronize (median over rounds); CPU time is not reported on CUDA");
    } else {
        println!("   ms = wall-clock ms per training step (median over rounds); CPU = CPU ms per step of the whole process, all threads");
    }
    println!("   ours: the product's step (Trainer::step), {}; torch: {}", o.variant(o.ours_in_bf16()), o.variant(o.bf16));
    if o.bf16 && !o.ours_bf16 {
        println!("   --no-ours-bf16: ours is fp32 here, so these ratios are the gap our fp32 step leaves against PyTorch's bf16");
    }
}

/// Prints the `setup:` line(s) of a PyTorch script's stdout (device, cuDNN, TF32, memory format, autocast).
pub fn print_setup(stdout: &str) {
    for l in stdout.lines().filter(|l| l.starts_with("setup:")) {
        println!("   torch {l}");
    }
}

/// Runs a PyTorch step script of bench/ and reads its `ms_per_step:` and `cpu_ms_per_step:` lines.
pub fn run_step_script(script: &str, args: &[String], extra: &[String]) -> Result<((f64, f64), String)> {
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
    check_python()
}

/// Fails unless the PyTorch scripts' interpreter exists (a bare name like `python3` is looked up in PATH).
pub fn check_python() -> Result<()> {
    let p = python();
    let found = if p.components().count() > 1 {
        p.exists()
    } else {
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(&p).is_file()))
    };
    if !found {
        bail!("{} is missing: run `bash .ci/dev test` (or quickstart) once to set up the virtualenv, or pass --python PATH", p.display());
    }
    Ok(())
}

/// `dcgan`: the product's step on the family of configs/papers/dcgan_mnist.yaml, real MNIST through its
/// feed, against bench/dcgan_step.py, alternating rounds per thread count.
fn dcgan(o: &Opts) -> Result<()> {
    check_mnist()?;
    println!(
        "== dcgan: configs/papers/dcgan_mnist.yaml (28×28×1, nz 100, ngf = ndf = 64), batch {}, real MNIST through the engine's feed, {} warm-up + {} timed steps per measurement, {} alternating rounds (ours, PyTorch, ours, ...); medians",
        o.batch, o.warmup, o.steps, o.rounds
    );
    println!("   machine: {}; PyTorch side: {}", machine(), python().display());
    println!("   {}", device::setup(o.device));
    // Parameter counts for the script's assertions (the thread count does not change them).
    let counts = step::parameter_counts(&dcgan_config(o.threads[0], o.batch, tch::Device::Cpu)?)?;
    let (g, d) = (step::count(&counts, "G")?, step::count(&counts, "D")?);
    thread_rows(
        o,
        1,
        |t| {
            tch::set_num_threads(t);
            step::Step::new(&dcgan_config(t, o.batch, o.device)?, step::Variant::of(o), step::Input::Data, &[])?.time(o.warmup, o.steps)
        },
        |t| pytorch_ms(t, o.batch, o.warmup, o.steps, g, d, &o.torch_args()),
    )?;
    if o.profile {
        let t = o.threads[0];
        println!("-- PyTorch profile of our procedure re-created in PyTorch (--leaky factor --adam ours), {t} thread(s):");
        let mut extra: Vec<String> = ["--leaky", "factor", "--adam", "ours", "--profile"].map(String::from).to_vec();
        extra.extend(o.torch_args());
        let (_, out) = pytorch_ms(t, o.batch, o.warmup, o.steps, g, d, &extra)?;
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
            "cut" => cut::step_time(&o)?,
            "translate" => cyclegan::translate(&o)?,
            "facades" => cyclegan::quality(&o)?,
            "check" => device::check(&o)?,
            "gan_cls" => gan_cls::run(&o)?,
            "stackgan" => stackgan::run(&o)?,
            "vaegan" => vaegan::run(&o)?,
            "unit" => unit::run(&o)?,
            "inception" => inception::run(&o)?,
            _ => unreachable!(),
        }
    }
    Ok(())
}

