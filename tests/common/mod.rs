//! Helpers shared by the end-to-end tests: run the `ganzoo` binary, write small configs.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `ganzoo ARGS` in `dir`; returns (exit code, stdout, stderr).
pub fn ganzoo(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ganzoo"));
    if std::env::var_os("GANZOO_CACHE").is_none() {
        // The repo's cache (MNIST, MiniLM, the judges), whatever the test's working directory.
        cmd.env("GANZOO_CACHE", repo().join(".ganzoo-cache"));
    }
    let out: Output = cmd
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the ganzoo binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Parses a command's JSON output, showing the text when it is not JSON.
pub fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The repository root (configs/ lives there).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write fixture");
    p
}

/// A ring-of-8 config small enough to train in about a second.
pub const TINY_RING: &str = "name: tiny\nseed: 3\nthreads: 1\ndata: {kind: ring8}\nmodel:\n  family: gan\n  z_dim: 8\n  init: pytorch\n  generator: {arch: mlp, hidden: 32, layers: 2}\n  discriminator: {arch: mlp, hidden: 32, layers: 2}\ntrain:\n  steps: 40\n  batch_size: 64\n  log_every: 10\n  sample_every: 20\n  checkpoint_every: 10\n  keep_checkpoints: 2\neval:\n  samples: 500\n";

/// The facades photos (../shared/datasets), used as a small real image folder.
pub fn facades() -> Option<PathBuf> {
    let p = repo().join("../shared/datasets/facades/train");
    p.is_dir().then_some(p)
}

/// A folder of JPEG photos: the facades when ../shared/datasets has them, else `n` 48×48 JPEGs written into
/// `dir/photos` (smooth colour gradients with a few noisy blocks, so they decode through the same JPEG path).
/// The fallback is said on stderr, which the test output shows when the test fails.
pub fn photos(dir: &Path, n: u32) -> PathBuf {
    if let Some(p) = facades() {
        return p;
    }
    eprintln!("../shared/datasets/facades not found: using {n} generated JPEGs instead");
    let out = dir.join("photos");
    std::fs::create_dir_all(&out).expect("photo folder");
    for k in 0..n {
        let img = image::RgbImage::from_fn(48, 48, |x, y| {
            let noise = ((x / 8 + y / 8 + k).wrapping_mul(2654435761) >> 24) as u8 / 4;
            image::Rgb([(x * 5 + k * 7) as u8 ^ noise, (y * 5 + k * 3) as u8, ((x + y) * 2 + k * 11) as u8 ^ noise])
        });
        img.save(out.join(format!("{k}.jpg"))).expect("write a fixture JPEG");
    }
    out
}

/// The bytes of `p`; panics naming the file.
pub fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Resumes run `run` (in `dir`) to `steps` with `--set train.steps=…` and trains `config` from scratch into
/// `one`; asserts both final checkpoints are byte-identical.
pub fn assert_extension_is_exact(dir: &Path, run: &str, config: &str, steps: i64) {
    let (code, _, err) = ganzoo(dir, &["train", "--resume", run, "--set", &format!("train.steps={steps}"), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = ganzoo(dir, &["train", config, "--out", "one", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let ck = format!("checkpoints/step_{steps:08}.safetensors");
    assert_eq!(read(&dir.join(run).join(&ck)), read(&dir.join("one").join(&ck)));
}

/// Trains `dir/c.yaml` (`steps` steps, checkpoints every few) uninterrupted into `full`, and into `killed`
/// with a SIGKILL once two checkpoints exist and a `--resume` after; asserts the final checkpoints are
/// byte-identical and that the kill came mid-run.
pub fn assert_sigkill_resume_is_exact(dir: &Path, steps: i64) {
    let (code, _, err) = ganzoo(dir, &["train", "c.yaml", "--out", "full", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ganzoo"));
    if std::env::var_os("GANZOO_CACHE").is_none() {
        cmd.env("GANZOO_CACHE", repo().join(".ganzoo-cache"));
    }
    let mut child = cmd.args(["train", "c.yaml", "--out", "killed", "--quiet"]).current_dir(dir).spawn().unwrap();
    let ckpts = dir.join("killed/checkpoints");
    let start = std::time::Instant::now();
    let count = || std::fs::read_dir(&ckpts).map(|d| d.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "json")).count()).unwrap_or(0);
    while count() < 2 && start.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    assert!(!child.wait().unwrap().success(), "the run was killed before it finished");
    assert!(count() >= 1, "a checkpoint existed when the run was killed, so the resume starts mid-run");
    assert!(!ckpts.join(format!("step_{steps:08}.json")).exists(), "killed before the last step");
    let (code, _, err) = ganzoo(dir, &["train", "--resume", "killed", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let ck = format!("checkpoints/step_{steps:08}.safetensors");
    assert_eq!(read(&dir.join("full").join(&ck)), read(&dir.join("killed").join(&ck)));
}

/// `ganzoo eval RUN --set eval.samples=N`: its standard metrics, checked set by set — `(name, generated,
/// reference)` images, a finite FID and KID, and a protocol naming the network's hash and the resize.
pub fn eval_metrics(dir: &Path, run: &str, n: usize, sets: &[(&str, u64, u64)]) -> serde_json::Value {
    let (code, out, err) = ganzoo(dir, &["eval", run, "--json", "--quiet", "--set", &format!("eval.samples={n}")]);
    assert_eq!(code, 0, "{err}");
    let m = json(&out)["metrics"].clone();
    assert_eq!(m.as_object().map(|o| o.len()), Some(sets.len()), "{m}");
    for (name, generated, reference) in sets {
        let s = &m[*name];
        assert_eq!((s["generated"].as_u64(), s["reference"].as_u64()), (Some(*generated), Some(*reference)), "{name}: {s}");
        let fid = s["fid"].as_f64().unwrap_or(f64::NAN);
        assert!(fid.is_finite() && fid >= 0.0, "{name}: FID {fid}");
        assert!(s["kid"].as_f64().is_some_and(f64::is_finite), "{name}: {s}");
        let p = s["protocol"].as_str().unwrap_or("");
        assert!(p.contains("a16e4d89c0ecbc17a915dd76ea9e41211aa82562") && p.contains("clean"), "{name}: {p}");
    }
    m
}

/// Every file and folder under `dir` (links not followed).
pub fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
            out.push(e.path());
        }
    }
    out
}

/// Whether `p` is the temp file of an atomic write (`X.tmp`, or the data layer's `.X.tmp-PID`).
pub fn is_temp(p: &Path) -> bool {
    let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    n.ends_with(".tmp") || n.contains(".tmp-")
}
