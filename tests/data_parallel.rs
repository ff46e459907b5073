//! Data-parallel training on c10d's Gloo process group (issue #15): two ranks started as torchrun starts
//! them (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), each with half of the global batch, end where one
//! process with the whole batch ends, and rank 0 alone writes the run.
#[path = "common/mod.rs"]
mod common;
use common::{ganzoo, TINY_RING};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use tch::Tensor;

/// A small CycleGAN (instance norm; no image pool, which each rank keeps for itself), SGD, 3 steps. Why so few:
/// tiny CycleGANs are chaotic in floating point. The same one-process run with libtorch's portable kernels
/// (`ATEN_CPU_CAPABILITY=default`) parts from the vectorized one by 8e-9, 1.5e-8, 8e-7, 9e-5 after steps 1..4
/// (an instance norm of a near-flat channel divides by almost nothing; with Adam, gradients that are zero up
/// to rounding, as a bias before an instance norm has, become full steps of random sign). Two ranks part from
/// one process by the same rounding (bench/README.md, "Data parallel").
const CG: &str = "name: cg\nseed: 1\nthreads: 1\ndata: {kind: shapes2, train: 12, test: 4, size: 32}\nmodel:\n  family: cyclegan\n  generator: {ngf: 8, n_blocks: 1}\n  discriminator: {ndf: 8, n_layers: 2}\n  pool_size: 0\ntrain: {steps: 3, batch_size: 4, log_every: 1, sample_every: 3, checkpoint_every: 1, keep_checkpoints: 3, g_optimizer: {kind: sgd, lr: 0.001}, d_optimizer: {kind: sgd, lr: 0.001}}\neval: {samples: 4, metrics: []}\n";

/// The cache the tests use (MNIST): `GANZOO_CACHE`, else the repo's.
fn cache() -> std::path::PathBuf {
    std::env::var_os("GANZOO_CACHE").map(Into::into).unwrap_or_else(|| common::repo().join(".ganzoo-cache"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `ganzoo ARGS` as rank `rank` of `world` meeting on loopback at `port`, as torchrun would start it.
fn rank_command(dir: &Path, rank: usize, world: usize, port: u16, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ganzoo"));
    cmd.env("GANZOO_CACHE", cache())
        .args(args)
        .current_dir(dir)
        .env("RANK", rank.to_string())
        .env("WORLD_SIZE", world.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env("GLOO_SOCKET_IFNAME", "lo")
        .stdout(Stdio::null());
    cmd
}

/// Runs `args` as `world` ranks on loopback; returns each rank's (exit code, stderr).
fn ranks(dir: &Path, world: usize, args: &[&str]) -> Vec<(i32, String)> {
    let port = free_port();
    let children: Vec<_> = (0..world).map(|r| rank_command(dir, r, world, port, args).stderr(Stdio::piped()).spawn().unwrap()).collect();
    children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned())
        })
        .collect()
}

fn tensors(p: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).into_iter().collect()
}

/// Every network tensor (weights and batch-norm statistics) of the two checkpoints within `tol` relative to
/// that tensor's largest magnitude (at least 1e-3: zero-initialized biases).
fn assert_close(a: &Path, b: &Path, tol: f64) {
    let (ta, tb) = (tensors(a), tensors(b));
    let mut compared = 0;
    for (k, x) in ta.iter().filter(|(k, x)| !k.starts_with("opt_") && !k.contains("_ema.") && x.is_floating_point()) {
        let y = &tb[k];
        let scale = y.abs().max().double_value(&[]).max(1e-3);
        let diff = (x - y).abs().max().double_value(&[]);
        assert!(diff <= tol * scale, "{k}: max |Δ| {diff:e} against max |w| {scale:e}");
        compared += 1;
    }
    assert!(compared > 4, "{compared} tensors compared");
}

/// Whether this build has c10d's Gloo (gloo's headers were found at build time); says so when not.
fn gloo() -> bool {
    let has = ganzoo_torch_ext::has_gloo();
    if !has {
        eprintln!("skipped: built without gloo's headers (bash .ci/dev unpacks them into .venv/gloo)");
    }
    has
}

fn one_and_two(config: &str, name: &str, checkpoints: &[&str]) {
    if !gloo() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("c.yaml"), config).unwrap();
    let (code, _, err) = ganzoo(d, &["train", "c.yaml", "--out", "one", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let out = ranks(d, 2, &["train", "c.yaml", "--out", "two", "--quiet"]);
    for (r, (code, err)) in out.iter().enumerate() {
        assert_eq!(*code, 0, "{name}, rank {r}: {err}");
    }
    for c in checkpoints {
        assert_close(&d.join("two/checkpoints").join(c), &d.join("one/checkpoints").join(c), 1e-5);
    }
    // Rank 0 alone wrote: one run folder, no other file anywhere in the test's folder.
    let entries: Vec<String> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let mut entries = entries;
    entries.sort();
    assert_eq!(entries, ["c.yaml", "one", "two"], "{name}");
    assert!(d.join("two/report.json").is_file() && d.join("two/metrics.jsonl").is_file());
}

#[test]
fn two_ranks_of_half_the_batch_train_as_one_process_gan_ring() {
    one_and_two(&TINY_RING.replace("steps: 40", "steps: 20"), "gan ring8", &["step_00000020.safetensors"]);
}

/// DCGAN on MNIST (the paper config's networks, batch 128) with synchronized batch norm, SGD, 3 steps: as the
/// CycleGAN below, DCGAN parts from itself under rounding (a LeakyReLU input near 0 changes sides, Adam turns
/// gradients that are zero up to rounding into full steps), so the comparison is of the first steps.
fn dcgan_mnist() -> String {
    let paper = std::fs::read_to_string(common::repo().join("configs/papers/dcgan_mnist.yaml")).unwrap();
    paper
        .replace("seed: 0\n", "seed: 0\nthreads: 1\n")
        .replace("steps: 2000", "steps: 3")
        .replace("kind: adam, lr: 2.0e-4, betas: [0.5, 0.999]", "kind: sgd, lr: 0.002")
        .replace("sample_every: 250", "sample_every: 3")
        .replace("checkpoint_every: 250", "checkpoint_every: 1\n  keep_checkpoints: 3\n  sync_batch_norm: true")
        + "eval: {samples: 64, metrics: []}\n"
}

#[test]
fn two_ranks_of_half_the_batch_train_as_one_process_dcgan_mnist() {
    let cfg = dcgan_mnist();
    assert!(cfg.contains("sync_batch_norm: true") && cfg.contains("kind: sgd") && cfg.contains("steps: 3"), "{cfg}");
    one_and_two(&cfg, "dcgan mnist", &["step_00000001.safetensors", "step_00000002.safetensors", "step_00000003.safetensors"]);
}

#[test]
fn two_ranks_of_half_the_batch_train_as_one_process_cyclegan() {
    one_and_two(CG, "cyclegan shapes", &["step_00000001.safetensors", "step_00000002.safetensors", "step_00000003.safetensors"]);
}

#[test]
fn a_batch_that_does_not_divide_among_the_ranks_is_refused_by_name() {
    if !gloo() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.yaml"), CG.replace("batch_size: 4", "batch_size: 3")).unwrap();
    for (code, err) in ranks(dir.path(), 2, &["train", "c.yaml", "--out", "r", "--quiet"]) {
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("train.batch_size: 3 does not divide among WORLD_SIZE=2"), "{err}");
    }
}

/// Starts `args` as `world` ranks on loopback (each with `env`), stderr to `rank<r>.err` in `dir`.
fn spawn_ranks(dir: &Path, world: usize, args: &[&str], env: &[(&str, &str)]) -> Vec<std::process::Child> {
    let port = free_port();
    (0..world)
        .map(|r| {
            let mut cmd = rank_command(dir, r, world, port, args);
            cmd.envs(env.iter().copied()).stderr(std::fs::File::create(dir.join(format!("rank{r}.err"))).unwrap());
            cmd.spawn().unwrap()
        })
        .collect()
}

/// Waits until `path` exists (at most 60 s).
fn wait_for(path: &Path) {
    let t0 = std::time::Instant::now();
    while !path.exists() {
        assert!(t0.elapsed() < std::time::Duration::from_secs(60), "{} never came", path.display());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Runs `config` as an uninterrupted 2-rank job and as one SIGKILLed whole (both ranks) once `cut_at` exists
/// (checkpoint writes paused 300 ms so the kill lands before the end), then resumed with 2 ranks; the final
/// checkpoints must be bitwise equal.
fn killed_whole_resumes_bitwise(config: &str, cut_at: &str, last: &str) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("c.yaml"), config).unwrap();
    for (code, err) in ranks(d, 2, &["train", "c.yaml", "--out", "whole", "--quiet"]) {
        assert_eq!(code, 0, "{err}");
    }
    let mut job = spawn_ranks(d, 2, &["train", "c.yaml", "--out", "cut", "--quiet"], &[("GANZOO_TEST_PAUSE_WRITE_MS", "300")]);
    wait_for(&d.join("cut/checkpoints").join(cut_at));
    for c in &mut job {
        let _ = c.kill();
        c.wait().unwrap();
    }
    assert!(!d.join("cut/checkpoints").join(last).exists(), "killed before the end");
    for (code, err) in ranks(d, 2, &["train", "--resume", "cut", "--quiet"]) {
        assert_eq!(code, 0, "{err}");
    }
    let last = format!("checkpoints/{}", last.replace(".json", ".safetensors"));
    assert!(std::fs::read(d.join("cut").join(&last)).unwrap() == std::fs::read(d.join("whole").join(&last)).unwrap(), "bitwise: {last}");
}

#[test]
fn a_two_rank_job_killed_whole_resumes_bitwise() {
    if !gloo() {
        return;
    }
    killed_whole_resumes_bitwise(TINY_RING, "step_00000020.json", "step_00000040.json");
    // CycleGAN with image pools: each rank's pool is saved by rank 0 (`rank1/pool_A`) and taken back by its rank.
    let cg = CG.replace("pool_size: 0", "pool_size: 3").replace("steps: 3", "steps: 8").replace("checkpoint_every: 1", "checkpoint_every: 2").replace("sample_every: 3", "sample_every: 8");
    killed_whole_resumes_bitwise(&cg, "step_00000004.json", "step_00000008.json");
}

#[test]
fn a_rank_killed_mid_run_stops_the_other_with_an_error_naming_it() {
    if !gloo() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("c.yaml"), TINY_RING.replace("steps: 40", "steps: 100000")).unwrap();
    let mut job = spawn_ranks(d, 2, &["train", "c.yaml", "--out", "r", "--quiet", "--set", "train.collective_timeout_s=20"], &[]);
    wait_for(&d.join("r/checkpoints/step_00000010.json"));
    let t0 = std::time::Instant::now();
    let _ = job[1].kill();
    job[1].wait().unwrap();
    let status = job[0].wait().unwrap();
    let err = std::fs::read_to_string(d.join("rank0.err")).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(25), "within the timeout: {:?}", t0.elapsed());
    assert!(err.contains("rank 0 of 2") && err.contains("rank 1 stopped or hangs") && err.contains("--resume"), "{err}");
    // The newest checkpoint loads.
    let (code, _, e) = ganzoo(d, &["sample", "r", "--out", "s.png"]);
    assert_eq!(code, 0, "{e}");
}

#[test]
fn a_two_rank_run_resumes_in_one_process_and_says_it_is_not_bitwise() {
    if !gloo() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("c.yaml"), TINY_RING.replace("steps: 40", "steps: 20")).unwrap();
    for (code, err) in ranks(d, 2, &["train", "c.yaml", "--out", "r", "--quiet"]) {
        assert_eq!(code, 0, "{err}");
    }
    let meta = std::fs::read_to_string(d.join("r/checkpoints/step_00000020.json")).unwrap();
    assert!(meta.contains("\"world_size\": 2") || meta.contains("\"world_size\":2"), "{meta}");
    let (code, _, err) = ganzoo(d, &["train", "--resume", "r", "--set", "train.steps=30", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("was written by 2 data-parallel rank(s), this job has 1") && err.contains("not bitwise"), "{err}");
    assert!(d.join("r/checkpoints/step_00000030.json").exists());
}

#[test]
fn nproc_starts_the_ranks_itself_and_refuses_bad_counts_and_pipelines() {
    if !gloo() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("c.yaml"), TINY_RING.replace("steps: 40", "steps: 20")).unwrap();
    let (code, out, err) = ganzoo(d, &["train", "c.yaml", "--out", "n", "--nproc", "2", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"run_dir\""), "rank 0's report on stdout: {out}");
    for (code, err) in ranks(d, 2, &["train", "c.yaml", "--out", "t", "--quiet"]) {
        assert_eq!(code, 0, "{err}");
    }
    let last = "checkpoints/step_00000020.safetensors";
    assert!(std::fs::read(d.join("n").join(last)).unwrap() == std::fs::read(d.join("t").join(last)).unwrap(), "--nproc 2 = two ranks");
    let (code, _, err) = ganzoo(d, &["train", "c.yaml", "--out", "z", "--nproc", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--nproc 0: give 1 to 1024 processes") && !d.join("z").exists(), "{err}");
    // Multi-stage pipelines are refused in a job, by name, before anything is written.
    let pipe = format!("{}stages:\n  - name: s1\n    set: {{train.steps: 4}}\n", TINY_RING);
    std::fs::write(d.join("p.yaml"), pipe).unwrap();
    let (code, _, err) = ganzoo(d, &["train", "p.yaml", "--out", "p", "--nproc", "2"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("multi-stage pipelines are not trained data-parallel yet") && !d.join("p").exists(), "{err}");
}

#[test]
fn rank_zeros_slow_writes_do_not_count_against_the_collective_timeout() {
    if !gloo() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("c.yaml"), TINY_RING.replace("steps: 40", "steps: 20")).unwrap();
    // Each checkpoint write of rank 0 takes 2.5 s; the collectives time out after 1 s.
    let mut job = spawn_ranks(d, 2, &["train", "c.yaml", "--out", "r", "--quiet", "--set", "train.collective_timeout_s=1"], &[("GANZOO_TEST_PAUSE_WRITE_MS", "2500")]);
    for (r, c) in job.iter_mut().enumerate() {
        let status = c.wait().unwrap();
        let err = std::fs::read_to_string(d.join(format!("rank{r}.err"))).unwrap();
        assert_eq!(status.code(), Some(0), "rank {r}: {err}");
    }
    assert!(d.join("r/checkpoints/step_00000020.json").exists());
}
