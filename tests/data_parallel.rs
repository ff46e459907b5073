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

/// A tiny CycleGAN (the batch-size check). Its two-rank run is not yet equal to one process's (issue #15).
const CG: &str = "name: cg\nseed: 1\nthreads: 1\ndata: {kind: shapes2, train: 8, test: 4, size: 16}\nmodel:\n  family: cyclegan\n  generator: {ngf: 4, n_blocks: 1}\n  discriminator: {ndf: 4, n_layers: 1}\n  pool_size: 0\ntrain: {steps: 20, batch_size: 4, log_every: 5, sample_every: 20, checkpoint_every: 10, g_optimizer: {kind: sgd, lr: 0.01, momentum: 0.5}, d_optimizer: {kind: sgd, lr: 0.01, momentum: 0.5}}\neval: {samples: 4, metrics: []}\n";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs `args` as `world` ranks on loopback; returns each rank's (exit code, stderr).
fn ranks(dir: &Path, world: usize, args: &[&str]) -> Vec<(i32, String)> {
    let port = free_port().to_string();
    let children: Vec<_> = (0..world)
        .map(|r| {
            Command::new(env!("CARGO_BIN_EXE_ganzoo"))
                .args(args)
                .current_dir(dir)
                .env("RANK", r.to_string())
                .env("WORLD_SIZE", world.to_string())
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", &port)
                .env("GLOO_SOCKET_IFNAME", "lo")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
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

/// Every network weight of the two checkpoints within `tol` relative to its network's largest weight.
fn assert_close(a: &Path, b: &Path, tol: f64) {
    let (ta, tb) = (tensors(a), tensors(b));
    let weights = |t: &HashMap<String, Tensor>| t.iter().filter(|(k, x)| !k.starts_with("opt_") && !k.contains("_ema.") && x.is_floating_point()).map(|(k, x)| (k.clone(), x.shallow_clone())).collect::<Vec<_>>();
    let net = |k: &str| k.split('.').next().unwrap_or("").to_string();
    let mut scales: HashMap<String, f64> = HashMap::new();
    for (k, y) in weights(&tb) {
        let m = y.abs().max().double_value(&[]);
        let s = scales.entry(net(&k)).or_insert(0.0);
        *s = s.max(m);
    }
    let mut compared = 0;
    for (k, x) in weights(&ta) {
        let y = &tb[&k];
        let scale = scales[&net(&k)];
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

fn one_and_two(config: &str, name: &str, last: &str) {
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
    assert_close(&d.join("two/checkpoints").join(last), &d.join("one/checkpoints").join(last), 1e-5);
    // Rank 0 alone wrote: one run folder, no other file anywhere in the test's folder.
    let entries: Vec<String> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let mut entries = entries;
    entries.sort();
    assert_eq!(entries, ["c.yaml", "one", "two"], "{name}");
    assert!(d.join("two/report.json").is_file() && d.join("two/metrics.jsonl").is_file());
}

#[test]
fn two_ranks_of_half_the_batch_train_as_one_process_gan_ring() {
    one_and_two(&TINY_RING.replace("steps: 40", "steps: 20"), "gan ring8", "step_00000020.safetensors");
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
