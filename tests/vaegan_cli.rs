//! End-to-end VAE-GAN runs on tiny captioned shapes: the run directory and report, exact resume after a
//! SIGKILL, the plain-VAE switch, `sample` from the prior, `reconstruct` (names kept, bad files named or
//! skipped, the pair grid), the CelebA paper config on a fixture tree in CelebA's layout, and config errors.
mod common;
use common::{assert_extension_is_exact, assert_sigkill_resume_is_exact, ganzoo, json, repo, write};
use std::path::Path;

const TINY: &str = "name: vg\nseed: 5\nthreads: 1\ndata: {kind: shapes, size: 16, train_count: 64, test_count: 8}\nmodel:\n  family: vaegan\n  networks: {z_dim: 4, enc_channels: [4, 6], enc_fc: 8, dec_fc_channels: 6, dec_channels: [6, 4], dis_first: 3, dis_channels: [4, 6], dis_fc: 8, feature_conv: 3}\n  equilibrium: {margin: 0.35, center: 0.68}\ntrain:\n  steps: 8\n  batch_size: 4\n  g_optimizer: {kind: rmsprop, lr: 3.0e-4}\n  d_optimizer: {kind: rmsprop, lr: 3.0e-4}\n  log_every: 4\n  sample_every: 4\n  checkpoint_every: 4\n  keep_checkpoints: 2\neval: {samples: 8}\n";

#[test]
fn vaegan_trains_reports_samples_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", TINY);
    write(dir.path(), "c12.yaml", &TINY.replace("steps: 8", "steps: 12"));
    let (code, out, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "r", "--json", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let report = json(&out);
    for k in ["recon_mse", "recon_psnr", "sharpness_samples", "sharpness_reconstructions", "sharpness_real"] {
        assert!(report["eval"][k].is_number(), "eval lacks {k}: {}", report["eval"]);
    }
    assert_eq!(report["eval"]["held_out_images"], 8, "captioned shapes: the test split");
    // Prior samples and reconstructions of the held-out images, each against those images.
    common::eval_metrics(dir.path(), "r", 8, &[("prior samples", 8, 8), ("reconstructions", 8, 8)]);
    for net in ["E", "Dec", "Dis"] {
        assert!(report["parameters"][net].as_i64().unwrap() > 0, "{net}");
    }
    let metrics = std::fs::read_to_string(dir.path().join("r/metrics.jsonl")).unwrap();
    let last = json(metrics.lines().last().unwrap());
    for k in ["loss_D", "kl", "llike", "loss_Dec_gan", "D_updated", "Dec_updated", "lr_E", "lr_Dec", "lr_Dis"] {
        assert!(last[k].is_number(), "metrics lack {k}: {last}");
    }
    // The grid: 16 held-out pairs (only 8 test images: 8 pairs) and 32 prior samples, 8 a row.
    let grid = image::open(dir.path().join("r/samples/step_00000008.png")).unwrap();
    assert_eq!(grid.width(), 8 * 18 + 2);
    assert_eq!(grid.height(), 6 * 18 + 2);
    // `sample` draws from the prior.
    let (code, _, err) = ganzoo(dir.path(), &["sample", "r", "--n", "9", "--out", "s.png", "--seed", "2"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(image::open(dir.path().join("s.png")).unwrap().width(), 3 * 18 + 2);
    // 8 + 4 steps equal 12 in one go (networks, BN statistics, RMSProp state all in the checkpoint).
    assert_extension_is_exact(dir.path(), "r", "c12.yaml", 12);
}

#[test]
fn resume_after_sigkill_reproduces_the_uninterrupted_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let steps = 300;
    let cfg = TINY.replace("steps: 8", &format!("steps: {steps}")).replace("sample_every: 4", "sample_every: 1000").replace("log_every: 4", "log_every: 5").replace("checkpoint_every: 4", "checkpoint_every: 5");
    write(dir.path(), "c.yaml", &cfg);
    assert_sigkill_resume_is_exact(dir.path(), steps);
}

#[test]
fn plain_vae_has_the_same_encoder_and_decoder_and_no_discriminator() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", &TINY.replace("steps: 8", "steps: 4"));
    let (code, out, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "gan", "--json", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let vaegan = json(&out);
    let (code, out, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "vae", "--json", "--quiet", "--set", "model.plain_vae=true"]);
    assert_eq!(code, 0, "{err}");
    let vae = json(&out);
    assert_eq!(vae["parameters"]["E"], vaegan["parameters"]["E"]);
    assert_eq!(vae["parameters"]["Dec"], vaegan["parameters"]["Dec"]);
    assert!(vae["parameters"].get("Dis").is_none(), "{}", vae["parameters"]);
    assert_eq!(vae["eval"]["model"], "plain VAE");
    assert!(vae["final_losses"]["recon_nll"].is_number() && vae["final_losses"].get("loss_D").is_none());
}

#[test]
fn reconstruct_keeps_names_names_bad_files_and_writes_the_pair_grid() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", &TINY.replace("steps: 8", "steps: 2"));
    assert_eq!(ganzoo(dir.path(), &["train", "c.yaml", "--out", "r", "--quiet"]).0, 0);
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    image::RgbImage::from_pixel(20, 12, image::Rgb([200, 30, 30])).save(input.join("a.png")).unwrap();
    image::GrayImage::from_pixel(16, 16, image::Luma([90])).save(input.join("b.jpg")).unwrap();
    std::fs::write(input.join("notes.txt"), "not an image").unwrap();
    std::fs::write(input.join("c.png"), b"\x89PNG\r\n\x1a\n truncated").unwrap();
    // An unreadable image stops the command and is named.
    let (code, _, err) = ganzoo(dir.path(), &["reconstruct", "r", "in", "out"]);
    assert_ne!(code, 0);
    assert!(err.contains("c.png"), "{err}");
    assert!(!dir.path().join("out/c.png").exists());
    // --skip-bad skips and lists it.
    let (code, out, err) = ganzoo(dir.path(), &["reconstruct", "r", "in", "out", "--skip-bad", "--json", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let r = json(&out);
    assert_eq!(r["reconstructed"], 2);
    assert_eq!(r["skipped_not_images"].as_array().unwrap().len(), 1);
    assert_eq!(r["skipped_unreadable"].as_array().unwrap().len(), 1);
    for name in ["a.png", "b.jpg"] {
        let img = image::open(dir.path().join("out").join(name)).unwrap();
        assert_eq!((img.width(), img.height()), (16, 16), "at the run's data.size");
    }
    let grid = image::open(dir.path().join("out/reconstructions.png")).unwrap();
    assert_eq!((grid.width(), grid.height()), (4 * 18 + 2, 18 + 2), "input | reconstruction pairs");
    assert!(std::fs::read_dir(dir.path().join("out")).unwrap().flatten().all(|e| !e.path().to_string_lossy().ends_with(".tmp")));
    // An input named like the grid would be overwritten: refused before anything is written.
    std::fs::copy(input.join("a.png"), input.join("reconstructions.png")).unwrap();
    let (code, _, err) = ganzoo(dir.path(), &["reconstruct", "r", "in", "out2", "--skip-bad"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("reconstructions.png") && !dir.path().join("out2").exists(), "{err}");
}

/// A few JPEGs at CelebA's aligned size (178×218) under `root/img_align_celeba/`, named as the release.
fn celeba_fixture(root: &Path, n: u32) -> std::path::PathBuf {
    let dir = root.join("img_align_celeba");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 1..=n {
        let img = image::RgbImage::from_fn(178, 218, |x, y| image::Rgb([(x * i) as u8, (y * 2) as u8, (40 * i) as u8]));
        img.save(dir.join(format!("{i:06}.jpg"))).unwrap();
    }
    dir
}

#[test]
fn the_celeba_paper_config_reads_the_celeba_layout() {
    let dir = tempfile::tempdir().unwrap();
    let celeba = celeba_fixture(dir.path(), 6);
    let paper = repo().join("configs/papers/vaegan_celeba.yaml");
    let paper = paper.to_str().unwrap();
    // The paper config as published: the authors' network sizes.
    let (code, out, err) = ganzoo(dir.path(), &["inspect", paper, "--json"]);
    assert_eq!(code, 0, "{err}");
    let p = json(&out)["parameters"].clone();
    assert_eq!((p["E"].as_i64(), p["Dec"].as_i64(), p["Dis"].as_i64()), (Some(18_071_360), Some(4_693_155), Some(10_953_857)));
    // Two steps on the fixture tree with narrow networks: 4 images train, the last 2 are held out.
    let root = format!("data.root={}", celeba.display());
    let args = [
        "train", paper, "--out", "run", "--quiet", "--json", "--set", &root, "--set", "model.held_out=2", "--set", "train.batch_size=2",
        "--set", "train.steps=2", "--set", "eval.samples=4", "--set", "threads=1",
        "--set", "model.networks.enc_channels=[4, 4, 4]", "--set", "model.networks.enc_fc=8", "--set", "model.networks.dec_fc_channels=4",
        "--set", "model.networks.dec_channels=[4, 4, 4]", "--set", "model.networks.dis_channels=[4, 4, 4]", "--set", "model.networks.dis_first=4",
        "--set", "model.networks.dis_fc=8", "--set", "model.networks.z_dim=4",
    ];
    let (code, out, err) = ganzoo(dir.path(), &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["eval"]["held_out_images"], 2);
    // Holding out every image leaves nothing to train on: the key is named.
    let mut all = args.to_vec();
    all[3] = "run2";
    let held = "model.held_out=6";
    all[9] = held;
    let (code, _, err) = ganzoo(dir.path(), &all);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("model.held_out") && err.contains("6 images"), "{err}");
    // A missing folder is named.
    let (code, _, err) = ganzoo(dir.path(), &["train", paper, "--out", "run3", "--set", "data.root=nowhere/img_align_celeba"]);
    assert_ne!(code, 0);
    assert!(err.contains("nowhere/img_align_celeba"), "{err}");
}

#[test]
fn vaegan_config_errors_name_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "two.yaml", &TINY.replace("{kind: shapes, size: 16, train_count: 64, test_count: 8}", "{kind: shapes2, size: 16, train: 8, test: 2}"));
    let (code, _, err) = ganzoo(dir.path(), &["train", "two.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("data.kind: family vaegan needs one domain of images"), "{err}");
    write(dir.path(), "bad.yaml", &TINY.replace("feature_conv: 3", "feature_conv: 7").replace("equilibrium: {margin: 0.35, center: 0.68}", "equilibrium: {margin: 0.35, center: 0.68}\n  gamma: -1"));
    let (code, _, err) = ganzoo(dir.path(), &["train", "bad.yaml", "--set", "loss.adversarial=lsgan"]);
    assert_eq!(code, 2);
    for key in ["model.networks: feature_conv", "model.gamma", "model.equilibrium: the band"] {
        assert!(err.contains(key), "{key}: {err}");
    }
    write(dir.path(), "typo.yaml", &TINY.replace("equilibrium:", "equilibrum:"));
    let (code, _, err) = ganzoo(dir.path(), &["train", "typo.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("equilibrum"), "{err}");
}
