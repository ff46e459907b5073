//! Snapshot tests of config errors: the bad file, the exact message, the exit code (2).
mod common;
use common::{ganzoo, json, write};

fn check(config: &str, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", config);
    let mut args = vec!["inspect", "c.yaml"];
    args.extend_from_slice(extra);
    let (code, _, err) = ganzoo(dir.path(), &args);
    (code, err)
}

const BASE: &str = "data: {kind: ring8}\nmodel:\n  family: gan\n  generator: {arch: mlp}\n  discriminator: {arch: mlp}\n";

#[test]
fn misspelled_key_names_file_line_and_nearest_key() {
    let (code, err) = check(&format!("{BASE}train:\n  batch_size: 8\n  stpes: 10\n"), &[]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: c.yaml:8: unknown key `train.stpes`; did you mean `train.steps`?\n  valid keys here: steps, batch_size, n_critic, g_optimizer, d_optimizer, lr_schedule, ema, grad_clip, max_norm, log_every, sample_every, checkpoint_every, keep_checkpoints, workers, prefetch, accumulate, precision, diffaugment, collective_timeout_s, sync_batch_norm, tensorboard\n"
    );
}

#[test]
fn misspelled_key_inside_a_tagged_section() {
    let (code, err) = check("data: {kind: ring8, sdt: 0.1}\nmodel:\n  family: gan\n  generator: {arch: mlp}\n  discriminator: {arch: mlp}\n", &[]);
    assert_eq!(code, 2);
    assert_eq!(err, "error: c.yaml:1: unknown key `data.sdt`; did you mean `data.std`?\n  valid keys here: std\n");
}

#[test]
fn misspelled_key_below_the_family_tag_keeps_its_full_path() {
    let (code, err) = check("data: {kind: ring8}\nmodel:\n  family: gan\n  generator: {arch: mlp, hiden: 3}\n  discriminator: {arch: mlp}\n", &[]);
    assert_eq!(code, 2);
    assert_eq!(err, "error: c.yaml:4: unknown key `model.generator.hiden`; did you mean `model.generator.hidden`?\n  valid keys here: hidden, layers, activation\n");
    let (code, err) = check("data: {kind: ring8}\nmodel:\n  family: gam\n", &[]);
    assert_eq!(code, 2);
    assert_eq!(err, "error: c.yaml:3: `model.family`: unknown choice `gam`; did you mean `gan`?\n  valid choices: gan, cyclegan, cgan, gan_cls, stackgan, vaegan, unit, pix2pix, cut\n");
}

#[test]
fn unknown_choice_lists_the_valid_ones() {
    let (code, err) = check(&format!("{BASE}loss: {{adversarial: hinj}}\n"), &[]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: c.yaml:6: `loss.adversarial`: unknown choice `hinj`; did you mean `hinge`?\n  valid choices: minimax, non_saturating, lsgan, wasserstein, hinge\n"
    );
}

#[test]
fn override_of_a_missing_key_fails_with_nearest_keys() {
    let (code, err) = check(BASE, &["--set", "train.step=5"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: --set train.step=5: unknown key `train.step`; did you mean `train.steps`?\n"), "{err}");
}

#[test]
fn override_of_an_existing_key_applies() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", BASE);
    let (code, out, err) = ganzoo(dir.path(), &["inspect", "c.yaml", "--set", "train.steps=7", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["config"]["train"]["steps"], 7);
}

#[test]
fn cross_field_problems_are_reported_together() {
    let (code, err) = check(
        &format!("{BASE}loss: {{adversarial: wasserstein}}\ntrain: {{steps: 0, batch_size: -1}}\ndevice: tpu\n"),
        &[],
    );
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: 4 problem(s) in the config:\n  - c.yaml: device: `tpu` is not a device; use auto, cpu, cuda or cuda:N\n  - c.yaml: train.steps: must be at least 1, got 0\n  - c.yaml: train.batch_size: must be at least 1, got -1\n  - c.yaml: loss.adversarial: wasserstein needs a Lipschitz constraint on D: set loss.weight_clip, loss.gradient_penalty or loss.spectral_norm\n"
    );
}

#[test]
fn extends_merges_and_reports_errors_in_the_parent_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "base.yaml", &format!("{BASE}train:\n  steps: 10\n  lr_shedule: {{kind: constant}}\n"));
    write(dir.path(), "child.yaml", "extends: base.yaml\nname: child\n");
    let (code, _, err) = ganzoo(dir.path(), &["inspect", "child.yaml"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: base.yaml:8: unknown key `train.lr_shedule`; did you mean `train.lr_schedule`?"), "{err}");
    write(dir.path(), "ok.yaml", &format!("{BASE}train: {{steps: 10, batch_size: 4}}\n"));
    write(dir.path(), "child2.yaml", "extends: ok.yaml\ntrain: {steps: 20}\n");
    let (code, out, err) = ganzoo(dir.path(), &["inspect", "child2.yaml", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!((v["config"]["train"]["steps"].as_i64(), v["config"]["train"]["batch_size"].as_i64()), (Some(20), Some(4)));
}

#[test]
fn missing_parent_and_bad_yaml_are_clear() {
    let (code, err) = check("extends: nowhere.yaml\n", &[]);
    assert_eq!(code, 2);
    assert!(err.contains("c.yaml:1: `extends` names ") && err.contains("nowhere.yaml, which does not exist"), "{err}");
    let (code, err) = check("data: [unclosed\n", &[]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: c.yaml:"), "{err}");
    assert!(err.contains("not valid YAML"), "{err}");
}

#[test]
fn a_missing_config_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = ganzoo(dir.path(), &["train", "absent.yaml"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: absent.yaml: cannot read config file"), "{err}");
}

/// Every shipped config resolves and builds its networks (`ganzoo inspect`); the ones whose data is a download
/// the user makes (CUB, Oxford-102) may only fail by naming the missing dataset folder.
#[test]
fn every_shipped_config_inspects() {
    let mut seen = 0;
    for dir in ["configs/papers", "configs/quickstart"] {
        for entry in std::fs::read_dir(common::repo().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            seen += 1;
            let (code, out, err) = ganzoo(&common::repo(), &["inspect", path.to_str().unwrap(), "--json"]);
            if code == 0 {
                let v = json(&out);
                assert!(v["parameters"].is_object() || v["stages"].is_array(), "{}: {out}", path.display());
            } else {
                assert!(err.contains("dataset root folder not found (set by `data.root`)"), "{}: exit {code}\n{err}", path.display());
            }
        }
    }
    assert!(seen >= 20, "only {seen} configs found");
}
