//! `train.tensorboard`: the event files under `RUN/tb/`, read back by TensorBoard itself (`tests/tb_read.py`,
//! with the `tensorboard` package of the project's `.venv`): every value of `metrics.jsonl` at its step, the
//! sample grids at their steps with their size, a resume that logs steps again showing each step once with
//! its final value, and an unwritable `RUN/tb` as an error naming it.

mod common;
use common::{ganzoo, repo, write, TINY_RING};

use std::collections::BTreeMap;
use std::path::Path;

/// What TensorBoard reads from `logdir`: scalars tag → [(step, value)], images tag → [(step, width, height)].
struct Board {
    scalars: BTreeMap<String, Vec<(i64, f64)>>,
    images: BTreeMap<String, Vec<(i64, u32, u32)>>,
}

fn read_board(logdir: &Path) -> Board {
    let python = repo().join(".venv/bin/python");
    let out = std::process::Command::new(&python)
        .arg(repo().join("tests/tb_read.py"))
        .arg(logdir)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (bash .ci/dev sets up the .venv)", python.display()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tb_read.py failed (is tensorboard in .ci/requirements.txt installed?): {err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {err}"));
    let series = |key: &str| v[key].as_object().cloned().unwrap_or_default().into_iter().map(|(tag, points)| (tag, points.as_array().cloned().unwrap_or_default()));
    Board {
        scalars: series("scalars").map(|(t, p)| (t, p.iter().map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap())).collect())).collect(),
        images: series("images")
            .map(|(t, p)| (t, p.iter().map(|p| (p[0].as_i64().unwrap(), p[1].as_u64().unwrap() as u32, p[2].as_u64().unwrap() as u32)).collect()))
            .collect(),
    }
}

/// The numeric leaves of each `metrics.jsonl` line but `step` and `time`, tagged by their `/`-joined path:
/// tag → [(step, value)] in file order.
fn metrics(run: &Path) -> BTreeMap<String, Vec<(i64, f64)>> {
    fn leaves(tag: &str, v: &serde_json::Value, step: i64, out: &mut BTreeMap<String, Vec<(i64, f64)>>) {
        match v {
            serde_json::Value::Number(n) => out.entry(tag.to_string()).or_default().push((step, n.as_f64().unwrap())),
            serde_json::Value::Object(m) => m.iter().for_each(|(k, v)| leaves(&format!("{tag}/{k}"), v, step, out)),
            serde_json::Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| leaves(&format!("{tag}/{i}"), v, step, out)),
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    for line in std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let step = v["step"].as_i64().unwrap();
        for (k, v) in v.as_object().unwrap().iter().filter(|(k, _)| !matches!(k.as_str(), "step" | "time")) {
            leaves(k, v, step, &mut out);
        }
    }
    out
}

/// TensorBoard holds exactly what `metrics.jsonl` holds (float32: to 1e-6 relative), each step once, and the
/// sample grids of `samples/` at their steps with their size.
fn assert_board_matches_run(run: &Path) {
    let board = read_board(&run.join("tb"));
    let want = metrics(run);
    assert!(want.contains_key("loss_G") && want.keys().any(|k| k.starts_with("lr_G")), "{want:?}");
    assert_eq!(board.scalars.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (tag, points) in &want {
        let got = &board.scalars[tag];
        assert_eq!(got.iter().map(|p| p.0).collect::<Vec<_>>(), points.iter().map(|p| p.0).collect::<Vec<_>>(), "steps of {tag}");
        for ((step, g), (_, w)) in got.iter().zip(points) {
            assert!((g - w).abs() <= 1e-6 * w.abs(), "{tag} at step {step}: TensorBoard {g}, metrics.jsonl {w}");
        }
    }
    let mut grids: Vec<(i64, u32, u32)> = std::fs::read_dir(run.join("samples"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("step_")?.strip_suffix(".png")?.parse().ok()?;
            let (w, h) = image::image_dimensions(e.path()).unwrap();
            Some((step, w, h))
        })
        .collect();
    grids.sort();
    assert_eq!(board.images.keys().collect::<Vec<_>>(), ["samples"]);
    assert_eq!(board.images["samples"], grids);
}

/// A tiny CycleGAN (images, so `eval.every` may evaluate; several losses and learning rates).
const TINY_CYCLEGAN: &str = "name: cg\nseed: 2\nthreads: 1\ndata: {kind: shapes2, size: 16, train: 40, test: 6}\nmodel:\n  family: cyclegan\n  generator: {ngf: 4, n_blocks: 1}\n  discriminator: {ndf: 4, n_layers: 2}\n  pool_size: 3\nloss: {adversarial: lsgan}\ntrain:\n  steps: 4\n  batch_size: 2\n  log_every: 1\n  sample_every: 2\n  checkpoint_every: 4\neval: {samples: 4, every: 4, metrics: [fid]}\n";

/// Shorter cadences for TINY_RING, and TensorBoard on.
const SHORT: [&str; 10] =
    ["--set", "train.log_every=5", "--set", "train.sample_every=10", "--set", "train.checkpoint_every=10", "--set", "train.keep_checkpoints=5", "--set", "train.tensorboard=true"];

#[test]
fn tensorboard_reads_every_logged_value_and_sample_grid() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", TINY_CYCLEGAN);
    let (code, _, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "r", "--quiet", "--set", "train.tensorboard=true"]);
    assert_eq!(code, 0, "{err}");
    let run = dir.path().join("r");
    assert_board_matches_run(&run);
    let want = metrics(&run);
    assert_eq!(want["loss_G"].iter().map(|p| p.0).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(want["eval/A→B/fid"].iter().map(|p| p.0).collect::<Vec<_>>(), [4], "the evaluation's numbers, by their path");
    let files: Vec<String> = std::fs::read_dir(run.join("tb")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(files.len() == 1 && files[0].starts_with("events.out.tfevents.") && files[0].ends_with(".ganzoo"), "{files:?}");
}

#[test]
fn a_resume_that_logs_steps_again_shows_each_step_once_with_its_new_value() {
    let dir = tempfile::tempdir().unwrap();
    // A linear LR decay from half the run: lengthening the run changes lr_G at steps 15 and 20, which this
    // session logs first and the resumed one logs again.
    write(dir.path(), "c.yaml", &TINY_RING.replace("train:\n", "train:\n  lr_schedule: {kind: linear, start: 0.5}\n"));
    let (code, _, err) = ganzoo(dir.path(), &[&["train", "c.yaml", "--out", "r", "--quiet", "--set", "train.steps=20"], &SHORT[..]].concat());
    assert_eq!(code, 0, "{err}");
    let run = dir.path().join("r");
    let before = metrics(&run)["lr_G"].clone();
    // As if killed just before the checkpoint of step 20: step 10 is the newest.
    for ext in ["json", "safetensors"] {
        std::fs::remove_file(run.join(format!("checkpoints/step_00000020.{ext}"))).unwrap();
    }
    let (code, _, err) = ganzoo(dir.path(), &["train", "--resume", "r", "--set", "train.steps=30", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_dir(run.join("tb")).unwrap().count(), 2, "one events file per session");
    let after = metrics(&run)["lr_G"].clone();
    assert_eq!(after.iter().map(|p| p.0).collect::<Vec<_>>(), [5, 10, 15, 20, 25, 30]);
    assert_ne!(before[2], after[2], "step 15 was logged with another value before the resume");
    assert_board_matches_run(&run);
    assert_eq!(read_board(&run.join("tb")).images["samples"].iter().map(|p| p.0).collect::<Vec<_>>(), [10, 20, 30]);
}

#[test]
fn tensorboard_may_be_turned_on_by_a_resume_and_an_unwritable_tb_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", TINY_RING);
    assert_eq!(ganzoo(dir.path(), &["train", "c.yaml", "--out", "r", "--quiet", "--set", "train.steps=20"]).0, 0);
    assert!(!dir.path().join("r/tb").exists(), "off by default");
    std::fs::write(dir.path().join("r/tb"), "in the way").unwrap();
    let (code, _, err) = ganzoo(dir.path(), &["train", "--resume", "r", "--set", "train.steps=30", "--set", "train.tensorboard=true", "--quiet"]);
    assert_ne!(code, 0);
    assert!(err.contains("r/tb") && !err.contains("panicked"), "{err}");
    std::fs::remove_file(dir.path().join("r/tb")).unwrap();
    let (code, _, err) = ganzoo(dir.path(), &["train", "--resume", "r", "--set", "train.steps=30", "--set", "train.tensorboard=true", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let board = read_board(&dir.path().join("r/tb"));
    assert_eq!(board.scalars["loss_D"].iter().map(|p| p.0).collect::<Vec<_>>(), [30], "this session's steps only");
}
