//! End-to-end UNIT runs on tiny two-domain shapes: the run directory, report and evaluation against the hidden
//! ground truth, per-part parameter counts, exact resume, `translate` through the shared latent space, and bad
//! input (a checkpoint of another architecture, an empty or missing input folder, unreadable images, empty or
//! unreadable training folders).
mod common;
use common::{assert_extension_is_exact, ganzoo, json, write};

const TINY: &str = "name: un\nseed: 4\nthreads: 1\ndata: {kind: shapes2, size: 16, train: 40, test: 6}\nmodel:\n  family: unit\n  generator: {dim: 4, n_downsample: 2, n_res: 2, shared_enc_blocks: 1, shared_dec_blocks: 1}\n  discriminator: {dim: 4, n_layer: 2, num_scales: 2}\nloss: {adversarial: lsgan}\ntrain:\n  steps: 8\n  batch_size: 2\n  g_optimizer: {kind: adam, lr: 1.0e-4, betas: [0.5, 0.999], weight_decay: 1.0e-4}\n  d_optimizer: {kind: adam, lr: 1.0e-4, betas: [0.5, 0.999], weight_decay: 1.0e-4}\n  log_every: 4\n  sample_every: 4\n  checkpoint_every: 4\neval: {samples: 6}\n";

const TINY_CYCLEGAN: &str = "name: cg\nseed: 2\nthreads: 1\ndata: {kind: shapes2, size: 16, train: 40, test: 6}\nmodel:\n  family: cyclegan\n  generator: {ngf: 4, n_blocks: 1}\n  discriminator: {ndf: 4, n_layers: 2}\nloss: {adversarial: lsgan}\ntrain:\n  steps: 4\n  batch_size: 2\n  checkpoint_every: 4\neval: {samples: 6}\n";

#[test]
fn unit_trains_evaluates_against_ground_truth_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", TINY);
    write(dir.path(), "c12.yaml", &TINY.replace("steps: 8", "steps: 12"));
    let (code, out, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "r", "--json", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let report = json(&out);
    for k in ["a2b_psnr", "b2a_psnr", "a2b_l1", "identity_baseline_psnr", "cycle_l1_A", "cycle_l1_B"] {
        assert!(report["eval"][k].is_number(), "eval lacks {k}: {}", report["eval"]);
    }
    assert_eq!(report["eval"]["test_images"], 6);
    assert_eq!(report["family"], "unit");
    // Per part, the shared blocks once: the parts add up to the generators' total.
    let p = &report["parameters"];
    let parts: i64 = ["EN_A", "DE_A", "EN_B", "DE_B", "EN_shared", "DE_shared"].iter().map(|k| p[*k].as_i64().unwrap()).sum();
    assert_eq!(parts, p["G_total"].as_i64().unwrap(), "{p}");
    assert_eq!(p["EN_A"], p["EN_B"]);
    // A shared residual block at 16 latent channels: two 3×3 convs with biases.
    assert_eq!(p["EN_shared"].as_i64(), Some(2 * (16 * 16 * 9 + 16)));
    assert!(p["D_A"].as_i64().unwrap() > 0 && p["D_A"] == p["D_B"]);
    let metrics = std::fs::read_to_string(dir.path().join("r/metrics.jsonl")).unwrap();
    let last = json(metrics.lines().last().unwrap());
    for k in ["loss_G", "loss_D_A", "loss_D_B", "gan_A", "recon_A", "kl_A", "kl_cycle_B", "cycle_A", "lr_G", "lr_D_A"] {
        assert!(last[k].is_number(), "metrics lack {k}: {last}");
    }
    let grid = image::open(dir.path().join("r/samples/step_00000008.png")).unwrap();
    assert!(grid.width() > grid.height(), "6 columns: A, A→B, A→B→A, B, B→A, B→A→B");
    // `ganzoo eval` on the finished run gives the same figures as the report.
    let (code, out, err) = ganzoo(dir.path(), &["eval", "r", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["eval"]["a2b_psnr"], report["eval"]["a2b_psnr"]);
    common::eval_metrics(dir.path(), "r", 4, &[("A→B", 4, 4), ("B→A", 4, 4), ("A as B (identity)", 4, 4)]);
    // 8 + 4 steps equal 12 in one go (networks, Adam state, the latent noise stream).
    assert_extension_is_exact(dir.path(), "r", "c12.yaml", 12);
}

#[test]
fn inspect_counts_each_part_once() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", TINY);
    let (code, out, err) = ganzoo(dir.path(), &["inspect", "c.yaml", "--json"]);
    assert_eq!(code, 0, "{err}");
    let with = json(&out)["parameters"].clone();
    let (code, out, err) = ganzoo(dir.path(), &["inspect", "c.yaml", "--json", "--set", "model.generator.shared_enc_blocks=0", "--set", "model.generator.shared_dec_blocks=0"]);
    assert_eq!(code, 0, "{err}");
    let without = json(&out)["parameters"].clone();
    // Unsharing a block gives each domain its own copy: the total grows by one block per side.
    let block = with["EN_shared"].as_i64().unwrap();
    assert_eq!(without["EN_shared"].as_i64(), Some(0));
    assert_eq!(without["G_total"].as_i64().unwrap(), with["G_total"].as_i64().unwrap() + 2 * block);
    // Too many shared blocks is a config error naming the key.
    let (code, _, err) = ganzoo(dir.path(), &["inspect", "c.yaml", "--set", "model.generator.shared_enc_blocks=3"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("model.generator: shared_enc_blocks must be in 0..=n_res (2), got 3"), "{err}");
}

#[test]
fn translate_goes_through_the_shared_latent_and_names_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", &TINY.replace("steps: 8", "steps: 4"));
    assert_eq!(ganzoo(dir.path(), &["train", "c.yaml", "--out", "r", "--quiet"]).0, 0);
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    image::RgbImage::from_pixel(20, 12, image::Rgb([200, 30, 30])).save(input.join("a.png")).unwrap();
    image::GrayImage::from_pixel(16, 16, image::Luma([90])).save(input.join("b.jpg")).unwrap();
    std::fs::write(input.join("notes.txt"), "not an image").unwrap();
    let (code, out, err) = ganzoo(dir.path(), &["translate", "r", "--direction", "a2b", "in", "ab", "--json"]);
    assert_eq!(code, 0, "{err}");
    let r = json(&out);
    assert_eq!((r["translated"].as_i64(), r["direction"].as_str()), (Some(2), Some("a2b")));
    assert_eq!(r["skipped_not_images"].as_array().unwrap().len(), 1);
    let (code, _, err) = ganzoo(dir.path(), &["translate", "r", "--direction", "b2a", "in", "ba"]);
    assert_eq!(code, 0, "{err}");
    for name in ["a.png", "b.jpg"] {
        let img = image::open(dir.path().join("ab").join(name)).unwrap();
        assert_eq!((img.width(), img.height()), (16, 16), "resized to the run's data.size");
    }
    assert_ne!(common::read(&dir.path().join("ab/a.png")), common::read(&dir.path().join("ba/a.png")), "DE_B and DE_A differ");
    // An unreadable image stops the command naming it, and nothing of it is written; --skip-bad counts it.
    std::fs::write(input.join("c.png"), b"\x89PNG but truncated").unwrap();
    let (code, _, err) = ganzoo(dir.path(), &["translate", "r", "--direction", "a2b", "in", "out2"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("c.png"), "{err}");
    assert!(!dir.path().join("out2/c.png").exists(), "nothing half-written");
    let (code, out, err) = ganzoo(dir.path(), &["translate", "r", "--direction", "a2b", "in", "out3", "--skip-bad", "--json"]);
    assert_eq!(code, 0, "{err}");
    let r = json(&out);
    assert_eq!((r["translated"].as_i64(), r["skipped_unreadable"].as_array().map(Vec::len)), (Some(2), Some(1)));
    // An empty input folder is a usage error naming it, and creates no output folder.
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let (code, _, err) = ganzoo(dir.path(), &["translate", "r", "--direction", "a2b", "empty", "out4"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("empty: no image files to read; the folder is empty"), "{err}");
    assert!(!dir.path().join("out4").exists());
    // A folder that is not a run is a usage error.
    let (code, _, err) = ganzoo(dir.path(), &["translate", "nowhere", "--direction", "a2b", "in", "out5"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_checkpoint_of_another_architecture_is_refused_naming_tensors() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", &TINY.replace("steps: 8", "steps: 4"));
    write(dir.path(), "cg.yaml", TINY_CYCLEGAN);
    assert_eq!(ganzoo(dir.path(), &["train", "c.yaml", "--out", "r", "--quiet"]).0, 0);
    assert_eq!(ganzoo(dir.path(), &["train", "cg.yaml", "--out", "cg", "--quiet"]).0, 0);
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    image::RgbImage::from_pixel(16, 16, image::Rgb([10, 200, 30])).save(input.join("x.png")).unwrap();
    // The unit run's newest checkpoint replaced by a cyclegan one (same step, the unit run's JSON).
    let ck = "checkpoints/step_00000004.safetensors";
    std::fs::copy(dir.path().join("cg").join(ck), dir.path().join("r").join(ck)).unwrap();
    let metrics_before = std::fs::read(dir.path().join("r/metrics.jsonl")).unwrap();
    let (code, _, err) = ganzoo(dir.path(), &["translate", "r", "--direction", "a2b", "in", "out"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not fit network `G`") && err.contains("G.gen_a.enc.model.0.conv.weight: missing"), "{err}");
    assert!(!dir.path().join("out").exists(), "nothing written");
    let config_before = std::fs::read(dir.path().join("r/config.resolved.yaml")).unwrap();
    let (code, _, err) = ganzoo(dir.path(), &["train", "--resume", "r", "--quiet"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("G.shared.enc.0.model.0.conv.weight: missing"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("r/metrics.jsonl")).unwrap(), metrics_before, "the run is left as it was");
    assert_eq!(std::fs::read(dir.path().join("r/config.resolved.yaml")).unwrap(), config_before);
    // The generalized translate still serves cyclegan runs.
    let (code, _, err) = ganzoo(dir.path(), &["translate", "cg", "--direction", "a2b", "in", "out_cg"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn config_errors_name_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bad.yaml", &TINY.replace("data: {kind: shapes2, size: 16, train: 40, test: 6}", "data: {kind: shapes2, size: 18, train: 40, test: 6}").replace("  discriminator:", "  recon_kl_w: -1\n  discriminator:"));
    let (code, _, err) = ganzoo(dir.path(), &["train", "bad.yaml", "--out", "r"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("model.recon_kl_w: must be a number ≥ 0, got -1"), "{err}");
    assert!(err.contains("image side 18 must be a multiple of 2^n_downsample = 4"), "{err}");
    assert!(!dir.path().join("r").exists());
    write(dir.path(), "typo.yaml", &TINY.replace("shared_dec_blocks", "shared_decoder_blocks"));
    let (code, _, err) = ganzoo(dir.path(), &["train", "typo.yaml", "--out", "r"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("shared_decoder_blocks"), "{err}");
}

#[test]
fn empty_or_unreadable_training_folders_are_named_and_leave_no_run() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["trainA", "trainB", "testA", "testB"] {
        std::fs::create_dir_all(dir.path().join("d").join(f)).unwrap();
    }
    write(dir.path(), "e.yaml", "name: e\ndata: {kind: unpaired, root: d, size: 16}\nmodel: {family: unit, generator: {dim: 4, n_res: 1}, discriminator: {dim: 4, n_layer: 2, num_scales: 1}}\ntrain: {steps: 2, batch_size: 1}\n");
    let (code, _, err) = ganzoo(dir.path(), &["train", "e.yaml", "--out", "r1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("trainA: no readable images found"), "{err}");
    assert!(!dir.path().join("r1").exists(), "no half-made run directory");
    std::fs::write(dir.path().join("d/trainA/bad.png"), b"x").unwrap();
    let (code, _, err) = ganzoo(dir.path(), &["train", "e.yaml", "--out", "r2"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.png: cannot decode"), "{err}");
    assert!(!dir.path().join("r2").exists());
}
