//! Fuzzing of the config loader (issue #16): mutated copies of the real configs under `configs/` (YAML text,
//! `extends:` chains included) and mutated `--set key=value` strings go through `load_config`, which must
//! answer each with a config or an error: no panic, no single allocation past the bound of
//! `data/tests/fuzz_support` (the mutator and the loop shared with the data readers' fuzz test).
//!
//! Long run: `GANZOO_FUZZ_CASES=200000 cargo test -p ganzoo-pipelines --test fuzz_config -- --nocapture` (see
//! bench/README.md).

#[path = "../../data/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use std::path::{Path, PathBuf};

use fuzz_support::{cases, fuzz};
use ganzoo_pipelines::config::load::parse_yaml;
use ganzoo_pipelines::run::load_config;
use rand::Rng;

/// Cases per target in CI (see data/tests/fuzz.rs: both binaries together about a minute).
const CI_CASES: usize = 40_000;

/// Copies the repository's `configs/` into `dst`, returning the YAML files' paths relative to `dst`.
fn copy_configs(src: &Path, dst: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let (from, name) = (entry.path(), entry.file_name());
        if from.is_dir() {
            std::fs::create_dir_all(dst.join(rel).join(&name)).unwrap();
            copy_configs(&from, dst, &rel.join(&name), out);
        } else if from.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&from, dst.join(rel).join(&name)).unwrap();
            out.push(rel.join(&name));
        }
    }
}

fn configs(dst: &Path) -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut files = Vec::new();
    copy_configs(&src, dst, Path::new(""), &mut files);
    files.sort();
    assert!(files.len() >= 10, "expected the repository's configs under {}", src.display());
    files
}

/// YAML structure and keys the configs use.
const YAML_DICT: &[&[u8]] = &[
    b"extends: ", b"extends: [", b"stages:\n  - ", b"name: ", b"set: {", b"train:\n  ", b"steps: ", b"batch_size: ",
    b"model:\n  ", b"data:\n  ", b"kind: ", b"size: ", b"z_dim: ", b"eval:\n  ", b"every: ", b"device: ", b"lr: ",
    b": ", b"- ", b"{", b"}", b"[", b"]", b", ", b"\n", b"\n  ", b"  ", b"\t", b"#", b"&a ", b"*a", b"<<: ", b"<<: *a",
    b"!!binary ", b"!!str ", b"!tag ", b"~", b"null", b"true", b"'", b"\"", b"|\n  ", b">-\n  ", b"---\n", b"...\n",
    b"? ", b"%YAML 1.2\n", b"gan_ring8.yaml", b"fuzz-case.yaml",
];

/// Overrides a user might type, as the seeds of the `--set` target.
const OVERRIDES: &[&str] = &[
    "train.steps=5",
    "train.batch_size=64",
    "train.log_every=1",
    "seed=3",
    "device=cpu",
    "eval.every=10",
    "model.z_dim=128",
    "data.size=32",
    "name=x",
    "train.opt.lr=0.0002",
    "stages.stage2.train.steps=1200",
    "stages.stage1.model.stage=2",
    "data={kind: toy2d}",
    "train=[1, 2]",
    "train.steps=",
];

/// `dotted.key=value` for every scalar or list leaf of `value` (lists in YAML flow style).
fn leaf_overrides(value: &serde_yaml::Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        serde_yaml::Value::Mapping(map) => {
            for (k, v) in map {
                if let Some(k) = k.as_str() {
                    let key = if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
                    leaf_overrides(v, &key, out);
                }
            }
        }
        leaf if !prefix.is_empty() => {
            let text = serde_json::to_string(leaf).unwrap_or_default();
            out.push(format!("{prefix}={text}"));
        }
        _ => {}
    }
}

#[test]
fn fuzz_config_yaml() {
    let _serial = fuzz_support::serial();
    let t = tempfile::tempdir().unwrap();
    let files = configs(t.path());
    let seeds: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(t.path().join(f)).unwrap()).collect();
    // Every mutated file sits beside the papers' configs, so the seeds' relative `extends:` still resolve.
    let target = t.path().join("papers/fuzz-case.yaml");
    fuzz("config", "yaml", &seeds, YAML_DICT, cases(CI_CASES), |input, case| {
        std::fs::write(&target, input).unwrap();
        let n = if case.rng.gen_ratio(1, 4) { case.rng.gen_range(1..=3) } else { 0 };
        let overrides: Vec<String> =
            (0..n).map(|_| OVERRIDES[case.rng.gen_range(0..OVERRIDES.len())].to_string()).collect();
        case.note = format!("overrides: {overrides:?}");
        load_config(&target, &overrides).map(|_| ()).map_err(|e| e.to_string())
    })
    .check();
}

#[test]
fn fuzz_config_set_strings() {
    let _serial = fuzz_support::serial();
    let t = tempfile::tempdir().unwrap();
    configs(t.path());
    // One plain config and one pipeline of stages (its `stages.NAME.key` overrides take another path).
    let bases = [t.path().join("papers/dcgan_mnist.yaml"), t.path().join("papers/stackgan_cub.yaml")];
    // An input is up to a few overrides separated by NUL (a command line cannot hold NUL in an argument).
    // Besides typical overrides, every leaf of the two configs as `key=value`, so most mutations hit the values
    // of real keys rather than make the key unknown.
    let mut leaves = Vec::new();
    for base in &bases {
        let value = parse_yaml(&std::fs::read_to_string(base).unwrap()).unwrap();
        leaf_overrides(&value, "", &mut leaves);
    }
    let seeds: Vec<Vec<u8>> = OVERRIDES
        .iter()
        .map(|o| o.to_string())
        .chain(leaves)
        .map(String::into_bytes)
        .chain([b"train.steps=5\0seed=2".to_vec(), b"stages.stage1.train.steps=3\0eval.every=0".to_vec()])
        .collect();
    let dict: Vec<&[u8]> = YAML_DICT.iter().copied().chain([&b"="[..], b".", b"\0", b"stages.", b"train."]).collect();
    fuzz("set", "txt", &seeds, &dict, cases(CI_CASES), |input, case| {
        // Arguments reach the loader as Rust strings: invalid UTF-8 is refused before (by clap).
        let text = String::from_utf8_lossy(input);
        let overrides: Vec<String> = text.split('\0').map(str::to_string).collect();
        let base = &bases[case.rng.gen_range(0..bases.len())];
        case.note = format!("config: {}", base.display());
        load_config(base, &overrides).map(|_| ()).map_err(|e| e.to_string())
    })
    .check();
}
