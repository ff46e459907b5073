//! Reliability under SIGKILL and a full disk (issue #16): a run killed at 30 points over its life — while
//! starting, between steps, inside checkpoint writes (slowed by a test-only pause so the kill lands there) and
//! inside a pipeline's switch from one stage to the next — resumes each time and ends bitwise equal to the
//! uninterrupted run; a write that fails on a full disk says so, leaves no temp file, keeps the previous
//! checkpoint loadable, and a resume after space is freed finishes bitwise.
mod common;
use common::{ganzoo, is_temp, read, repo, tree, TINY_RING};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A two-stage pipeline of the tiny ring GAN: the second stage starts from the first's networks.
fn pipeline() -> String {
    let base = TINY_RING.replace("  steps: 40\n", "  steps: 60\n");
    format!("{base}stages:\n  - name: s1\n    set: {{train.steps: 60}}\n  - name: s2\n    set: {{train.steps: 60, train.lr_schedule: {{kind: linear, start: 0.5}}}}\n    init_from: {{G: s1, D: s1}}\n")
}

fn spawn(dir: &Path, args: &[&str], pause_ms: u64) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ganzoo"));
    cmd.env("GANZOO_CACHE", repo().join(".ganzoo-cache")).env("GANZOO_TEST_PAUSE_WRITE_MS", pause_ms.to_string());
    cmd.args(args).current_dir(dir).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().expect("ganzoo runs")
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    tree(dir).into_iter().filter(|p| is_temp(p)).collect()
}

/// Kills `run` (started by `args`, resumed by `--resume run`) after each of `delays`, resuming in between;
/// then resumes it to the end. Returns how many kills found a half-written file (inside a write).
fn kill_repeatedly(dir: &Path, first: &[&str], run: &str, delays: &[u64]) -> usize {
    let mut inside_writes = 0;
    for (i, ms) in delays.iter().enumerate() {
        let resume = ["train", "--resume", run, "--quiet"];
        let args: &[&str] = if i == 0 || !dir.join(run).join("config.resolved.yaml").exists() { first } else { &resume };
        let mut child = spawn(dir, args, 40);
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(*ms) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.kill(); // SIGKILL (or the run had finished already)
        child.wait().unwrap();
        if !temp_files(&dir.join(run)).is_empty() {
            inside_writes += 1;
        }
    }
    let (code, _, err) = ganzoo(dir, &["train", "--resume", run, "--quiet"]);
    assert_eq!(code, 0, "the final resume: {err}");
    assert!(temp_files(&dir.join(run)).is_empty(), "the resume removed the killed writes' temp files");
    inside_writes
}

#[test]
fn killed_at_30_points_resumes_bitwise() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("ring.yaml"), TINY_RING.replace("  steps: 40\n", "  steps: 120\n")).unwrap();
    std::fs::write(d.join("pipe.yaml"), pipeline()).unwrap();
    for (cfg, out) in [("ring.yaml", "full"), ("pipe.yaml", "pfull")] {
        let (code, _, err) = ganzoo(d, &["train", cfg, "--out", out, "--quiet"]);
        assert_eq!(code, 0, "{err}");
    }
    // 18 kills over a single-stage run and 12 over a pipeline, at delays that cycle from process start-up to
    // the middle of training (each checkpoint write pauses 40 ms between its temp file and its rename).
    let delays = |n: usize| (0..n).map(|i| [60u64, 250, 330, 420, 520, 700][i % 6]).collect::<Vec<_>>();
    let single = kill_repeatedly(d, &["train", "ring.yaml", "--out", "killed", "--quiet"], "killed", &delays(18));
    let piped = kill_repeatedly(d, &["train", "pipe.yaml", "--out", "pkilled", "--quiet"], "pkilled", &delays(12));
    println!("30 kills: {single} of 18 and {piped} of 12 landed inside a write");
    assert!(single + piped >= 3, "some kills landed inside a checkpoint write ({single} + {piped})");
    let ck = "checkpoints/step_00000120.safetensors";
    assert_eq!(read(&d.join("full").join(ck)), read(&d.join("killed").join(ck)), "single-stage run");
    for stage in ["s1", "s2"] {
        let ck = format!("stages/{stage}/checkpoints/step_00000060.safetensors");
        assert_eq!(read(&d.join("pfull").join(&ck)), read(&d.join("pkilled").join(&ck)), "pipeline stage {stage}");
    }
}

/// Mounts a tmpfs of `kib` KiB at `at` (root only); None with the reason otherwise.
fn mount_tmpfs(at: &Path, kib: u64) -> Result<(), String> {
    std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
        .arg(at)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

struct Unmount(PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_cleanly_and_resumes_bitwise() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let disk = d.join("disk");
    if let Err(why) = mount_tmpfs(&disk, 1024) {
        println!("skipped: a small tmpfs is needed to fill a disk ({why})");
        return;
    }
    let _unmount = Unmount(disk.clone());
    let cfg = TINY_RING.replace("  steps: 40\n", "  steps: 80\n");
    std::fs::write(d.join("ring.yaml"), &cfg).unwrap();
    let (code, _, err) = ganzoo(d, &["train", "ring.yaml", "--out", "full", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = ganzoo(d, &["train", "ring.yaml", "--out", "disk/run", "--quiet", "--set", "train.steps=40"]);
    assert_eq!(code, 0, "{err}");
    // Fill the disk but a few KiB: the next checkpoint (tens of KiB) cannot be written.
    let mut filler = std::fs::File::create(disk.join("filler")).unwrap();
    let block = vec![7u8; 4096];
    while std::io::Write::write_all(&mut filler, &block).is_ok() {}
    drop(filler);
    let (code, _, err) = ganzoo(d, &["train", "--resume", "disk/run", "--set", "train.steps=80", "--quiet"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the disk is full"), "{err}");
    assert!(temp_files(&disk).is_empty(), "no temp file stays on the full disk: {:?}", temp_files(&disk));
    let (code, _, err) = ganzoo(d, &["sample", "disk/run", "--out", "s.png"]);
    assert_eq!(code, 0, "the previous checkpoint still loads: {err}");
    std::fs::remove_file(disk.join("filler")).unwrap();
    let (code, _, err) = ganzoo(d, &["train", "--resume", "disk/run", "--set", "train.steps=80", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let ck = "checkpoints/step_00000080.safetensors";
    assert_eq!(read(&d.join("full").join(ck)), read(&disk.join("run").join(ck)));
}
