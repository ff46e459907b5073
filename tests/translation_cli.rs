//! End-to-end runs of the one-way translators. pix2pix: paired training on tiny two-domain shapes (true pairs),
//! the one-way evaluation and grid, exact resume with the dropout noise, `translate` A → B only, the A/B-folders
//! layout with its pairing by file name, and the config checks. CUT / FastCUT: unpaired training with PatchNCE,
//! exact resume (patch positions and flips drawn from the seed), CUT's defaults under partial keys, its checks.
mod common;
use common::{ganzoo, read, write};
use std::path::Path;

const TINY: &str = "name: p2p\nseed: 2\nthreads: 1\ndata: {kind: shapes2, size: 32, train: 40, test: 6}\nmodel:\n  family: pix2pix\n  generator: {ngf: 4, num_downs: 5}\n  discriminator: {ndf: 4, n_layers: 2}\ntrain:\n  steps: 8\n  batch_size: 2\n  log_every: 4\n  sample_every: 4\n  checkpoint_every: 4\neval: {samples: 6}\n";

#[test]
fn pix2pix_trains_on_true_pairs_evaluates_one_way_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    // Dropout in one level (num_downs 6), so the resume must redraw the same noise.
    let cfg = TINY.replace("num_downs: 5", "num_downs: 6").replace("size: 32", "size: 64");
    write(dir.path(), "c.yaml", &cfg);
    write(dir.path(), "c12.yaml", &cfg.replace("steps: 8", "steps: 12"));
    let (code, out, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "r", "--json", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let report = common::json(&out);
    for k in ["a2b_psnr", "a2b_l1", "identity_baseline_psnr", "identity_baseline_l1"] {
        assert!(report["eval"][k].is_number(), "eval lacks {k}: {}", report["eval"]);
    }
    for k in ["b2a_psnr", "cycle_l1_A"] {
        assert!(report["eval"].get(k).is_none(), "a one-way translator has no {k}: {}", report["eval"]);
    }
    assert!(report["summary"].as_str().unwrap_or("").contains("A→B PSNR"), "{report}");
    assert!(report["parameters"]["G"].as_i64().unwrap() > 0 && report["parameters"]["D"].as_i64().unwrap() > 0);
    let grid = image::open(dir.path().join("r/samples/step_00000008.png")).unwrap();
    assert!(grid.width() < grid.height(), "3 columns (A, G(A), B) of 4 rows: {}x{}", grid.width(), grid.height());
    let logs = std::fs::read_to_string(dir.path().join("r/metrics.jsonl")).unwrap();
    assert!(logs.contains("G_L1") && logs.contains("loss_D"), "{logs}");
    common::eval_metrics(dir.path(), "r", 6, &[("A→B", 6, 6), ("A as B (identity)", 6, 6)]);
    common::assert_extension_is_exact(dir.path(), "r", "c12.yaml", 12);
}

#[test]
fn translate_goes_a_to_b_only_and_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", TINY);
    assert_eq!(ganzoo(dir.path(), &["train", "c.yaml", "--out", "r", "--quiet"]).0, 0);
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    image::RgbImage::from_fn(40, 40, |x, y| image::Rgb([(x * 6) as u8, (y * 6) as u8, 90])).save(input.join("x.png")).unwrap();
    for out in ["o1", "o2"] {
        let (code, _, err) = ganzoo(dir.path(), &["translate", "r", "--direction", "a2b", "in", out]);
        assert_eq!(code, 0, "{err}");
    }
    // The paper's test time draws dropout noise, from the run's seed: the same output twice.
    assert_eq!(read(&dir.path().join("o1/x.png")), read(&dir.path().join("o2/x.png")));
    let img = image::open(dir.path().join("o1/x.png")).unwrap();
    assert_eq!((img.width(), img.height()), (32, 32), "resized to the run's data.size");
    let (code, _, err) = ganzoo(dir.path(), &["translate", "r", "--direction", "b2a", "in", "o3"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--direction b2a") && err.contains("A → B only"), "{err}");
    assert!(!dir.path().join("o3").exists(), "nothing written");
    // The U-Net halves the side num_downs times: other sizes are refused before anything is written.
    for (size, words) in [("48", "--size 48: this pix2pix run's generator takes sides that are multiples of 32"), ("0", "--size 0: keeping each image's own size")] {
        let (code, _, err) = ganzoo(dir.path(), &["translate", "r", "--direction", "a2b", "in", "o4", "--size", size]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(words), "{err}");
        assert!(!dir.path().join("o4").exists(), "nothing written");
    }
    let (code, _, err) = ganzoo(dir.path(), &["translate", "r", "--direction", "a2b", "in", "o5", "--size", "64"]);
    assert_eq!(code, 0, "{err}");
    let img = image::open(dir.path().join("o5/x.png")).unwrap();
    assert_eq!((img.width(), img.height()), (64, 64), "twice the trained size");
}

/// Writes `n` pairs of 40×40 PNGs under `root/A/<split>` and `root/B/<split>`: B is A's colours inverted.
fn ab_pairs(root: &Path, split: &str, n: u32) {
    for side in ["A", "B"] {
        std::fs::create_dir_all(root.join(side).join(split)).unwrap();
    }
    for k in 0..n {
        let a = image::RgbImage::from_fn(40, 40, |x, y| image::Rgb([(x * 6 + k * 20) as u8, (y * 6) as u8, if (x / 10 + y / 10 + k) % 2 == 0 { 30 } else { 220 }]));
        let mut b = a.clone();
        b.pixels_mut().for_each(|p| p.0 = p.0.map(|v| 255 - v));
        a.save(root.join("A").join(split).join(format!("{k}.png"))).unwrap();
        b.save(root.join("B").join(split).join(format!("{k}.png"))).unwrap();
    }
}

#[test]
fn a_b_folders_pair_by_name_and_name_a_lone_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ab");
    ab_pairs(&data, "train", 6);
    ab_pairs(&data, "test", 3);
    let cfg = TINY.replace("data: {kind: shapes2, size: 32, train: 40, test: 6}", "data: {kind: unpaired, layout: a_b_folders, root: ab, size: 32}").replace("steps: 8", "steps: 4").replace("eval: {samples: 6}", "eval: {samples: 3}");
    write(dir.path(), "c.yaml", &cfg);
    let (code, out, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "r", "--json", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let e = &common::json(&out)["eval"];
    assert_eq!(e["test_images"], 3, "{e}");
    // B is A inverted: the identity baseline is far from the pairs (a wrong pairing would not change that, but
    // a B taken from A's own folder would make it 0).
    assert!(e["identity_baseline_l1"].as_f64().unwrap() > 0.3, "{e}");
    // A photo without its namesake is named; `on_bad_input: skip` leaves it out, counted.
    image::RgbImage::new(40, 40).save(data.join("A/train/lonely.png")).unwrap();
    let (code, _, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "r2", "--quiet"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("lonely.png") && err.contains("namesake"), "{err}");
    let (code, _, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "r3", "--quiet", "--set", "data.on_bad_input=skip"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn config_checks_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    // Unrelated A and B images cannot train a paired translator.
    write(dir.path(), "u.yaml", &TINY.replace("data: {kind: shapes2, size: 32, train: 40, test: 6}", "data: {kind: unpaired, root: nowhere, size: 32}"));
    let (code, _, err) = ganzoo(dir.path(), &["train", "u.yaml", "--out", "r"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("data.kind: family pix2pix trains on true pairs") && err.contains("layout folders"), "{err}");
    // The U-Net halves the side num_downs times.
    write(dir.path(), "s.yaml", &TINY.replace("size: 32", "size: 48"));
    let (code, _, err) = ganzoo(dir.path(), &["train", "s.yaml", "--out", "r"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("data.size: a U-Net with num_downs 5 needs a multiple of 32, got 48"), "{err}");
    assert!(!dir.path().join("r").exists(), "no run folder for a refused config");
}

const CUT: &str = "name: cut\nseed: 2\nthreads: 1\ndata: {kind: shapes2, size: 32, train: 40, test: 6}\nmodel:\n  family: cut\n  generator: {ngf: 4, n_blocks: 5}\n  discriminator: {ndf: 4, n_layers: 2}\n  num_patches: 32\n  netf_nc: 16\nloss: {adversarial: lsgan}\ntrain:\n  steps: 8\n  batch_size: 2\n  log_every: 4\n  sample_every: 4\n  checkpoint_every: 4\neval: {samples: 6}\n";

#[test]
fn cut_and_fastcut_train_evaluate_and_resume_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let fast = CUT.replace("  netf_nc: 16\n", "  netf_nc: 16\n  lambda_nce: 10\n  nce_idt: false\n  flip_equivariance: true\n");
    for (name, cfg, idt) in [("cut", CUT.to_string(), true), ("fastcut", fast, false)] {
        write(dir.path(), &format!("{name}.yaml"), &cfg);
        write(dir.path(), &format!("{name}12.yaml"), &cfg.replace("steps: 8", "steps: 12"));
        let (code, out, err) = ganzoo(dir.path(), &["train", &format!("{name}.yaml"), "--out", name, "--json", "--quiet"]);
        assert_eq!(code, 0, "{name}: {err}");
        let report = common::json(&out);
        assert!(report["eval"]["a2b_psnr"].is_number() && report["eval"].get("b2a_psnr").is_none(), "{}", report["eval"]);
        assert!(report["parameters"]["F"].as_i64().unwrap() > 0, "{report}");
        let logs = std::fs::read_to_string(dir.path().join(name).join("metrics.jsonl")).unwrap();
        assert!(logs.contains("\"NCE\"") && logs.contains("G_GAN"), "{logs}");
        assert_eq!(logs.contains("NCE_Y"), idt, "{name}: the identity term only with nce_idt");
        // Patch positions, flips and F's state: 8 + 4 steps equal 12 in one go.
        let one = format!("one_{name}");
        let (code, _, err) = ganzoo(dir.path(), &["train", "--resume", name, "--set", "train.steps=12", "--quiet"]);
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = ganzoo(dir.path(), &["train", &format!("{name}12.yaml"), "--out", &one, "--quiet"]);
        assert_eq!(code, 0, "{err}");
        let ck = "checkpoints/step_00000012.safetensors";
        assert_eq!(read(&dir.path().join(name).join(ck)), read(&dir.path().join(&one).join(ck)), "{name}");
    }
    let (code, _, err) = ganzoo(dir.path(), &["translate", "cut", "--direction", "b2a", "cut", "o"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("A → B only"), "{err}");
}

#[test]
fn cut_keeps_its_defaults_under_partial_keys_and_checks_its_layers() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", CUT);
    let (code, out, err) = ganzoo(dir.path(), &["inspect", "c.yaml", "--json"]);
    assert_eq!(code, 0, "{err}");
    let cfg = &common::json(&out)["config"]["model"];
    // `generator: {ngf: 4, n_blocks: 5}` keeps CUT's anti-aliasing (the shared struct's defaults are CycleGAN's).
    assert_eq!((cfg["generator"]["antialias"].as_bool(), cfg["generator"]["antialias_up"].as_bool(), cfg["discriminator"]["antialias"].as_bool()), (Some(true), Some(true), Some(true)), "{cfg}");
    write(dir.path(), "l.yaml", &CUT.replace("  netf_nc: 16\n", "  netf_nc: 16\n  nce_layers: [0, 8, 4, 40]\n"));
    let (code, _, err) = ganzoo(dir.path(), &["train", "l.yaml", "--out", "r"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("model.nce_layers: must be ascending") && err.contains("model.nce_layers: 40 is past G's residual blocks"), "{err}");
    write(dir.path(), "u.yaml", &CUT.replace("generator: {ngf: 4, n_blocks: 5}", "generator: {ngf: 4, n_blocks: 5, lambda: 3}"));
    let (code, _, err) = ganzoo(dir.path(), &["train", "u.yaml", "--out", "r"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("lambda"), "{err}");
    assert!(!dir.path().join("r").exists());
}
