//! End-to-end runs of `ganzoo train / eval / sample / inspect` on tiny configs: the run directory's contents,
//! seeded determinism, exact resume after SIGKILL, and the NaN guard.
mod common;
use common::{ganzoo, read, repo, write, TINY_RING};
use std::path::Path;


#[test]
fn train_writes_a_complete_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", TINY_RING);
    let (code, out, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "run", "--json"]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let run = dir.path().join("run");
    for f in ["config.resolved.yaml", "metrics.jsonl", "report.json", "samples/step_00000040.png", "checkpoints/step_00000040.safetensors", "checkpoints/step_00000040.json"] {
        assert!(run.join(f).exists(), "missing {f}");
    }
    // keep_checkpoints: 2 → only the newest two remain.
    assert!(!run.join("checkpoints/step_00000020.json").exists());
    assert!(run.join("checkpoints/step_00000030.json").exists());
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let steps: Vec<i64> = metrics.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_i64().unwrap()).collect();
    assert_eq!(steps, vec![10, 20, 30, 40]);
    let first: serde_json::Value = serde_json::from_str(metrics.lines().next().unwrap()).unwrap();
    for k in ["loss_D", "loss_G", "lr_G", "lr_D", "time"] {
        assert!(first[k].is_number(), "metrics line lacks {k}: {first}");
    }
    assert_eq!(report["steps"], 40);
    assert_eq!(report["eval"]["modes"], 8);
    assert!(report["parameters"]["G"].as_i64().unwrap() > 0);
    // eval and sample work on the finished run.
    let (code, out, err) = ganzoo(dir.path(), &["eval", "run", "--json"]);
    assert_eq!(code, 0, "{err}");
    let ev: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(ev["eval"], report["eval"], "eval of the last checkpoint equals the report's");
    let (code, _, err) = ganzoo(dir.path(), &["sample", "run", "--n", "16", "--out", "s/grid.png", "--seed", "4"]);
    assert_eq!(code, 0, "{err}");
    assert!(image::open(dir.path().join("s/grid.png")).is_ok());
    // A second train into the same --out is refused.
    let (code, _, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "run"]);
    assert_eq!(code, 2);
    assert!(err.contains("already holds a run"), "{err}");
}

#[test]
fn same_config_and_seed_give_identical_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", TINY_RING);
    for out in ["a", "b"] {
        let (code, _, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", out, "--quiet"]);
        assert_eq!(code, 0, "{err}");
    }
    let ck = "checkpoints/step_00000040.safetensors";
    assert_eq!(read(&dir.path().join("a").join(ck)), read(&dir.path().join("b").join(ck)));
    let (code, _, _) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "c", "--quiet", "--set", "seed=4"]);
    assert_eq!(code, 0);
    assert_ne!(read(&dir.path().join("a").join(ck)), read(&dir.path().join("c").join(ck)), "the seed matters");
}

/// A DCGAN on photos (batch norm, Adam, the parallel loader): the strictest exact-resume case.
fn dcgan_photos_config(root: &Path, steps: i64) -> String {
    format!(
        "name: resume\nseed: 1\nthreads: 1\ndata: {{kind: image_folder, root: '{}', size: 32, channels: 3}}\nmodel:\n  family: gan\n  z_dim: 16\n  generator: {{arch: dcgan, ngf: 8}}\n  discriminator: {{arch: dcgan, ndf: 8}}\ntrain:\n  steps: {steps}\n  batch_size: 8\n  log_every: 5\n  sample_every: 100\n  checkpoint_every: 5\n  keep_checkpoints: 2\n  workers: 2\neval: {{samples: 8}}\n",
        root.display()
    )
}

#[test]
fn resume_after_sigkill_reproduces_the_uninterrupted_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let photos = common::photos(dir.path(), 40);
    let steps = 60;
    write(dir.path(), "c.yaml", &dcgan_photos_config(&photos, steps));
    common::assert_sigkill_resume_is_exact(dir.path(), steps);
    // metrics.jsonl has each logged step once, as in the uninterrupted run.
    let steps_of = |run: &str| -> Vec<i64> {
        std::fs::read_to_string(dir.path().join(run).join("metrics.jsonl")).unwrap().lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_i64().unwrap()).collect()
    };
    assert_eq!(steps_of("full"), steps_of("killed"));
}

#[test]
fn resume_extends_a_finished_run() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", TINY_RING);
    write(dir.path(), "c60.yaml", &TINY_RING.replace("steps: 40", "steps: 60"));
    assert_eq!(ganzoo(dir.path(), &["train", "c.yaml", "--out", "r", "--quiet"]).0, 0);
    let (code, out, err) = ganzoo(dir.path(), &["train", "--resume", "r", "--set", "train.steps=60", "--json", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((report["steps"].as_i64(), report["steps_this_session"].as_i64()), (Some(60), Some(20)));
    // The same as 60 steps in one go (constant LR schedule, so the total does not change the path).
    assert_eq!(ganzoo(dir.path(), &["train", "c60.yaml", "--out", "one", "--quiet"]).0, 0);
    let ck = "checkpoints/step_00000060.safetensors";
    assert_eq!(read(&dir.path().join("r").join(ck)), read(&dir.path().join("one").join(ck)));
    // A resume may not change the model, and a refused one leaves the run as it was.
    let resolved = read(&dir.path().join("r/config.resolved.yaml"));
    let (code, _, err) = ganzoo(dir.path(), &["train", "--resume", "r", "--set", "model.z_dim=9"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("another config") && err.contains("model.z_dim: 8 then, 9 now"), "{err}");
    assert_eq!(read(&dir.path().join("r/config.resolved.yaml")), resolved, "config.resolved.yaml untouched");

    // A checkpoint of an older ganzoo, whose configs lacked a key that now has a default (here: its config
    // text without `loss.spectral_norm`, and so another hash), still resumes: its config is read with today's
    // defaults. A key that really differs is still refused, by name.
    let meta_path = dir.path().join("r/checkpoints/step_00000060.json");
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
    let text = meta["config"].as_str().expect("the checkpoint keeps its config text");
    assert!(text.contains("spectral_norm: false"), "{text}");
    let older = |text: String| {
        let mut m = meta.clone();
        m["config"] = serde_json::Value::String(text);
        m["config_hash"] = serde_json::Value::String("0123456789abcdef".into());
        std::fs::write(&meta_path, serde_json::to_string(&m).unwrap()).unwrap();
    };
    older(text.lines().filter(|l| !l.contains("spectral_norm")).collect::<Vec<_>>().join("\n"));
    let (code, _, err) = ganzoo(dir.path(), &["train", "--resume", "r", "--set", "train.steps=61", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    older(text.replace("seed: 3", "seed: 4"));
    std::fs::remove_file(dir.path().join("r/checkpoints/step_00000061.json")).unwrap();
    let (code, _, err) = ganzoo(dir.path(), &["train", "--resume", "r", "--set", "train.steps=62", "--quiet"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("seed: 4 then, 3 now"), "{err}");
}

#[test]
fn a_diverging_run_stops_with_the_step_and_loss_and_keeps_a_loadable_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = TINY_RING
        .replace("checkpoint_every: 10", "checkpoint_every: 1")
        .replace("train:\n", "train:\n  g_optimizer: {kind: sgd, lr: 1.0e+30}\n  d_optimizer: {kind: sgd, lr: 0.01}\n");
    write(dir.path(), "c.yaml", &cfg);
    let (code, _, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "r", "--quiet"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("training stopped. The last good checkpoint is"), "{err}");
    assert!(err.contains(" is NaN") || err.contains(" is inf") || err.contains(" is -inf"), "{err}");
    // G's first update explodes its weights; step 2 cannot be computed, step 1's checkpoint is intact.
    assert!(err.starts_with("error: step 2: "), "{err}");
    assert!(err.contains("r/checkpoints/step_00000001.safetensors"), "{err}");
    assert!(!dir.path().join("r/checkpoints/step_00000002.json").exists());
    let (code, _, err) = ganzoo(dir.path(), &["sample", "r", "--n", "4", "--out", "s.png"]);
    assert_eq!(code, 0, "the last good checkpoint loads: {err}");
}

#[test]
fn inspect_reports_parameter_counts_of_the_paper_configs() {
    for cfg in ["configs/papers/gan_ring8.yaml", "configs/papers/dcgan_mnist.yaml", "configs/papers/wgan_gp_mnist.yaml", "configs/quickstart/ring8.yaml"] {
        let (code, out, err) = ganzoo(&repo(), &["inspect", cfg, "--json"]);
        assert_eq!(code, 0, "{cfg}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(v["parameters"]["G"].as_i64().unwrap() > 0 && v["parameters"]["D"].as_i64().unwrap() > 0, "{cfg}");
    }
}

#[test]
fn fid_during_training_keeps_the_best_checkpoint_apart() {
    let dir = tempfile::tempdir().unwrap();
    let photos = common::photos(dir.path(), 40);
    write(dir.path(), "c.yaml", &dcgan_photos_config(&photos, 12));
    let set = ["--set", "eval.every=4", "--set", "eval.best=fid", "--set", "eval.samples=6"];
    let mut args = vec!["train", "c.yaml", "--out", "r", "--json", "--quiet"];
    args.extend(set);
    let (code, out, err) = ganzoo(dir.path(), &args);
    assert_eq!(code, 0, "{err}");
    let report = common::json(&out);
    // Evaluations at steps 4, 8 and 12 in metrics.jsonl; the report carries the last.
    let evals: Vec<(i64, f64)> = std::fs::read_to_string(dir.path().join("r/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("eval").is_some())
        .map(|v| (v["step"].as_i64().unwrap(), v["eval"]["samples"]["fid"].as_f64().unwrap()))
        .collect();
    assert_eq!(evals.iter().map(|e| e.0).collect::<Vec<_>>(), [4, 8, 12], "{evals:?}");
    assert_eq!(report["metrics"]["samples"]["fid"].as_f64(), Some(evals[2].1));
    assert!(report["summary"].as_str().unwrap().contains("FID"), "{}", report["summary"]);
    // checkpoints/best.json names the lowest FID's step; its tensors sit beside the rolling two (5 and 10 were
    // pruned to 10 and 12).
    let (best_step, best_fid) = evals.iter().copied().fold((0, f64::INFINITY), |b, e| if e.1 < b.1 { e } else { b });
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("r/checkpoints/best.json")).unwrap()).unwrap();
    assert_eq!(meta["step"].as_i64(), Some(best_step), "{meta}");
    assert_eq!(meta["best"]["value"].as_f64(), Some(best_fid), "{meta}");
    assert_eq!(meta["best"]["metric"], "samples/fid");
    let ckpts: Vec<String> = std::fs::read_dir(dir.path().join("r/checkpoints")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(ckpts.contains(&format!("best.step_{best_step:08}.safetensors")), "{ckpts:?}");
    assert_eq!(ckpts.iter().filter(|n| n.starts_with("best.step_")).count(), 1, "{ckpts:?}");
    assert!(ckpts.contains(&"step_00000012.safetensors".to_string()) && ckpts.contains(&"step_00000010.safetensors".to_string()), "{ckpts:?}");
    // `eval --best` evaluates that checkpoint again: the same images, the same FID.
    let (code, out, err) = ganzoo(dir.path(), &["eval", "r", "--best", "--json", "--quiet", "--set", "eval.samples=6"]);
    assert_eq!(code, 0, "{err}");
    let again = common::json(&out);
    assert_eq!(again["checkpoint_step"].as_i64(), Some(best_step));
    let fid = again["metrics"]["samples"]["fid"].as_f64().unwrap();
    assert!((fid - best_fid).abs() <= 1e-6 * best_fid, "eval --best {fid}, during training {best_fid}");
    // Evaluation keys may change on resume (here the count); the last step is evaluated and best.json only
    // moves to a lower FID. An unknown best metric is a config error naming the key.
    let (code, _, err) = ganzoo(dir.path(), &["train", "--resume", "r", "--set", "train.steps=14", "--set", "eval.samples=5", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let last: serde_json::Value = serde_json::from_str(std::fs::read_to_string(dir.path().join("r/metrics.jsonl")).unwrap().lines().last().unwrap()).unwrap();
    assert_eq!((last["step"].as_i64(), last["eval"]["samples"]["generated"].as_i64()), (Some(14), Some(5)), "{last}");
    let now: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("r/checkpoints/best.json")).unwrap()).unwrap();
    assert!(now["best"]["value"].as_f64().unwrap() <= best_fid, "{now}");
    let (code, _, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "x", "--set", "eval.best=psnr"]);
    assert_eq!(code, 2);
    assert!(err.contains("eval.best") || err.contains("psnr"), "{err}");
}

/// `ganzoo completions bash` prints a script bash loads and that completes subcommands and a command's options;
/// an unknown shell is a usage error.
#[test]
fn bash_completion_script_completes_commands_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = ganzoo(dir.path(), &["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    write(dir.path(), "ganzoo.bash", &out);
    let complete = |words: &str, cword: usize, cur: &str, prev: &str| {
        let script = format!("source ./ganzoo.bash; COMP_WORDS=({words}); COMP_CWORD={cword}; _ganzoo ganzoo {cur} {prev}; echo \"${{COMPREPLY[*]}}\"");
        let o = std::process::Command::new("bash").arg("-c").arg(&script).current_dir(dir.path()).output().expect("bash");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).split_whitespace().map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(complete("ganzoo tr", 1, "tr", "ganzoo"), ["train", "translate"]);
    let eval_options = complete("ganzoo eval runs/x --", 3, "--", "runs/x");
    for o in ["--set", "--best", "--json"] {
        assert!(eval_options.iter().any(|w| w == o), "{o} not in {eval_options:?}");
    }
    let (code, _, err) = ganzoo(dir.path(), &["completions", "nosh"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nosh") && err.contains("zsh"), "{err}");
}
