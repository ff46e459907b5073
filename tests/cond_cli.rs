//! End-to-end runs of the conditional families: text-to-image GAN-CLS on tiny captioned shapes (trained
//! tokenizer saved in the run, prompts, judged attributes, exact resume), class-conditional CGAN on real MNIST
//! (judged by the real-digit classifier), bad prompts, bad caption folders and config problems.
mod common;
use common::{ganzoo, read, write};
use std::path::Path;

const T2I: &str = "name: t2i\nseed: 4\nthreads: 1\ndata: {kind: shapes, size: 32, train_count: 228, test_count: 114}\nmodel:\n  family: gan_cls\n  z_dim: 8\n  generator: {arch: dcgan, ngf: 8, cond_proj: 8, cond_bn: true}\n  discriminator: {arch: dcgan, ndf: 8, cond_proj: 8}\n  heads: split\n  interpolation: 1.0\n  mode_seeking: 1.0\n  text:\n    encoder: {kind: trainable, network: {arch: gru, embed_dim: 16, hidden: 16}, dim: 16, pretrain_steps: 4}\n    captions_per_image: 2\ntrain:\n  steps: 6\n  batch_size: 16\n  log_every: 3\n  sample_every: 3\n  checkpoint_every: 3\neval: {samples: 228}\n";

const CGAN: &str = "name: cg\nseed: 1\nthreads: 1\ndata: {kind: mnist}\nmodel:\n  family: cgan\n  z_dim: 10\n  noise: uniform\n  generator: {arch: mlp, z_hidden: 16, cond_hidden: 16, dropout: 0.5}\n  discriminator: {arch: maxout, x_units: 16, x_pieces: 2, cond_units: 8, cond_pieces: 2, joint_units: 16, joint_pieces: 2, dropout: 0.5}\ntrain:\n  steps: 4\n  batch_size: 20\n  g_optimizer: {kind: sgd, lr: 0.1, momentum: 0.5}\n  d_optimizer: {kind: sgd, lr: 0.1, momentum: 0.5}\n  lr_schedule: {kind: exponential, gamma: 0.99, min: 0.5}\n  log_every: 2\n  sample_every: 2\n  checkpoint_every: 2\neval: {samples: 100}\n";


#[test]
fn gan_cls_trains_samples_from_prompts_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t.yaml", T2I);
    write(dir.path(), "t9.yaml", &T2I.replace("steps: 6", "steps: 9"));
    let (code, out, err) = ganzoo(dir.path(), &["train", "t.yaml", "--out", "r", "--json", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let acc = &report["eval"]["attribute_accuracy"];
    for phrasing in ["seen_phrasing", "unseen_phrasing"] {
        for k in ["shape", "colour", "size", "background", "all_four"] {
            let v = acc[phrasing][k].as_f64().unwrap_or_else(|| panic!("no {phrasing}.{k}: {acc}"));
            assert!((0.0..=1.0).contains(&v));
        }
    }
    let judge = acc["judge_held_out_accuracy"].as_array().unwrap();
    assert!(judge.iter().all(|a| a.as_f64().unwrap() > 0.9), "the attribute judge must be accurate on real shapes: {judge:?}");
    let heads = &report["eval"]["heads"];
    for h in ["match_head", "uncond_head"] {
        for pair in ["real_matching", "real_mismatching", "generated"] {
            assert!(heads[h][pair].is_number(), "{h}.{pair}: {heads}");
        }
    }
    for net in ["G", "D", "T"] {
        assert!(report["parameters"][net].as_i64().unwrap() > 0, "{}", report["parameters"]);
    }
    let fl = &report["final_losses"];
    assert!(fl["loss_D_uncond"].is_number() && fl["loss_G_int"].is_number(), "{fl}");
    assert!(fl["loss_G_ms"].as_f64().is_some_and(|v| v.is_finite() && v > 0.0), "mode seeking is on: {fl}");
    assert!(dir.path().join("r/tokenizer.json").exists(), "the trained tokenizer is kept in the run");
    // Images from the test split's captions against the test images.
    common::eval_metrics(dir.path(), "r", 10, &[("samples", 10, 10)]);
    let rows = std::fs::read_to_string(dir.path().join("r/samples/step_00000006.txt")).unwrap();
    assert_eq!(rows.lines().count(), 8, "{rows}");
    // Prompts.
    let (code, out, err) = ganzoo(dir.path(), &["sample", "r", "--prompt", "a large green square on a white background", "--n", "4", "--out", "p.png"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("p.png"));
    let img = image::open(dir.path().join("p.png")).unwrap();
    assert_eq!((img.width(), img.height()), (2 + 2 * 34, 2 + 2 * 34), "a 2×2 grid of 32-px images");
    // Several prompts: one row of n each, the same noise in every row (so a prompt's row is the single-prompt
    // grid's images, and a repeated prompt repeats its row).
    let green = "a large green square on a white background";
    let (code, out, err) = ganzoo(dir.path(), &["sample", "r", "--n", "4", "--out", "rows.png", "--prompt", green, "--prompt", "a small red circle on a blue background", "--prompt", green]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("3 rows"), "{out}");
    let rows = image::open(dir.path().join("rows.png")).unwrap().to_rgb8();
    assert_eq!((rows.width(), rows.height()), (2 + 4 * 34, 2 + 3 * 34), "3 rows of 4 32-px images");
    let single = img.to_rgb8();
    let tile = |im: &image::RgbImage, r: u32, c: u32| image::imageops::crop_imm(im, 2 + c * 34, 2 + r * 34, 32, 32).to_image();
    for k in 0..4 {
        assert_eq!(tile(&rows, 0, k), tile(&single, k / 2, k % 2), "image {k} of the prompt's row is the single-prompt grid's");
        assert_eq!(tile(&rows, 2, k), tile(&rows, 0, k), "the same prompt and noise give the same image");
    }
    assert_ne!(tile(&rows, 1, 0), tile(&rows, 0, 0), "another prompt, another image");
    let (code, _, err) = ganzoo(dir.path(), &["sample", "r", "--prompt", "zzz qqq", "--out", "bad.png"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("zzz qqq") && err.contains("vocabulary"), "{err}");
    let (code, _, err) = ganzoo(dir.path(), &["sample", "r", "--prompt", "  ", "--out", "bad.png"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("empty"), "{err}");
    let (code, _, err) = ganzoo(dir.path(), &["sample", "r", "--class", "3", "--out", "bad.png"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--prompt"), "{err}");
    assert!(!dir.path().join("bad.png").exists(), "nothing written for a bad prompt");
    // 6 + 3 steps resumed equal 9 in one go (pretraining, caption choices and the tokenizer included).
    let (code, _, err) = ganzoo(dir.path(), &["train", "--resume", "r", "--set", "train.steps=9", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = ganzoo(dir.path(), &["train", "t9.yaml", "--out", "one", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let ck = "checkpoints/step_00000009.safetensors";
    assert_eq!(read(&dir.path().join("r").join(ck)), read(&dir.path().join("one").join(ck)));
}

#[test]
fn cgan_on_real_mnist_is_judged_per_class_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", CGAN);
    write(dir.path(), "c6.yaml", &CGAN.replace("steps: 4", "steps: 6"));
    let (code, out, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "r", "--json", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let acc = &report["eval"]["class_accuracy"];
    let judge = acc["judge_held_out_accuracy"].as_f64().unwrap();
    assert!(judge >= 0.97, "the digit judge scores {judge} on 1,000 held-out real digits");
    assert_eq!(acc["per_class_accuracy"].as_array().unwrap().len(), 10);
    assert!(report["eval"]["heads"]["uncond_head"].is_null(), "joint design: one head");
    // FID of samples drawn class by class against the test digits, and the FID of each class alone.
    let m = common::eval_metrics(dir.path(), "r", 40, &[("samples", 40, 40)]);
    let intra = &m["samples"]["intra_class_fid"];
    // 4 samples of each digit; the 40 test digits evenly spaced have at least 2 of most classes.
    assert!(intra["per_class"].as_object().is_some_and(|o| o.len() >= 6), "{intra}");
    assert!(intra["mean"].as_f64().is_some_and(|v| v.is_finite() && v > 0.0), "{intra}");
    let (code, _, err) = ganzoo(dir.path(), &["sample", "r", "--class", "7", "--n", "9", "--out", "seven.png"]);
    assert_eq!(code, 0, "{err}");
    assert!(dir.path().join("seven.png").exists());
    let (code, _, err) = ganzoo(dir.path(), &["sample", "r", "--class", "10", "--out", "x.png"]);
    assert_eq!(code, 2);
    assert!(err.contains("0 to 9"), "{err}");
    let (code, _, err) = ganzoo(dir.path(), &["sample", "r", "--prompt", "a seven", "--out", "x.png"]);
    assert_eq!(code, 2);
    assert!(err.contains("--class"), "{err}");
    // Dropout masks come from (seed, step): 4 + 2 resumed equal 6 in one go.
    let (code, _, err) = ganzoo(dir.path(), &["train", "--resume", "r", "--set", "train.steps=6", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = ganzoo(dir.path(), &["train", "c6.yaml", "--out", "one", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let ck = "checkpoints/step_00000006.safetensors";
    assert_eq!(read(&dir.path().join("r").join(ck)), read(&dir.path().join("one").join(ck)));
}

#[test]
fn conditional_config_problems_are_reported_together() {
    let dir = tempfile::tempdir().unwrap();
    let no_text = T2I.replace("  text:\n    encoder: {kind: trainable, network: {arch: gru, embed_dim: 16, hidden: 16}, dim: 16, pretrain_steps: 4}\n    captions_per_image: 2\n", "  mismatch_weight: 1.5\n").replace("mode_seeking: 1.0", "mode_seeking: -1");
    write(dir.path(), "a.yaml", &no_text);
    let (code, _, err) = ganzoo(dir.path(), &["train", "a.yaml", "--out", "r"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("model.text: family gan_cls needs a text section"), "{err}");
    assert!(err.contains("model.mismatch_weight: must be in [0, 1], got 1.5"), "{err}");
    assert!(err.contains("model.mode_seeking: must be a number ≥ 0, got -1"), "{err}");
    assert!(!dir.path().join("r").exists(), "no run directory for a bad config");
    write(dir.path(), "b.yaml", &CGAN.replace("data: {kind: mnist}", "data: {kind: shapes, size: 32}"));
    let (code, _, err) = ganzoo(dir.path(), &["train", "b.yaml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("family cgan needs class labels"), "{err}");
}

/// A CUB-style tree: images/<class>/<name>.png, text/<class>/<name>.txt, split files.
fn caption_tree(root: &Path) {
    for (class, names) in [("c1", ["a", "b"]), ("c2", ["c", "d"]), ("c3", ["e", "f"])] {
        std::fs::create_dir_all(root.join("images").join(class)).unwrap();
        std::fs::create_dir_all(root.join("text").join(class)).unwrap();
        for (i, n) in names.iter().enumerate() {
            let colour = if class == "c1" { [200, 20, 20] } else { [20, 20, 200] };
            image::RgbImage::from_pixel(40 + i as u32 * 8, 36, image::Rgb(colour)).save(root.join("images").join(class).join(format!("{n}.png"))).unwrap();
            std::fs::write(root.join("text").join(class).join(format!("{n}.txt")), format!("a {n} bird\nthe bird {n} is {class}\n")).unwrap();
        }
    }
    std::fs::write(root.join("trainclasses.txt"), "c1\nc2\n").unwrap();
    std::fs::write(root.join("testclasses.txt"), "c3\n").unwrap();
}

#[test]
fn captioned_folders_train_and_bad_caption_files_are_named_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cub");
    caption_tree(&root);
    let cfg = T2I
        .replace("data: {kind: shapes, size: 32, train_count: 228, test_count: 114}", "data: {kind: captioned, root: cub, size: 32, load_size: 36, flip: true}")
        .replace("batch_size: 16", "batch_size: 2")
        .replace("interpolation: 1.0", "interpolation: 0.0");
    write(dir.path(), "c.yaml", &cfg);
    let (code, out, err) = ganzoo(dir.path(), &["data", "check", "captioned", "cub"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("complete"), "{out}");
    let (code, out, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "ok", "--json", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(report["eval"]["heads"]["match_head"]["real_matching"].is_number());
    // An empty caption file stops the run, naming it; under on_bad_input: skip it is left out.
    std::fs::write(root.join("text/c1/b.txt"), "\n\n").unwrap();
    let (code, _, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "bad", "--quiet"]);
    assert_ne!(code, 0);
    assert!(err.contains("b.txt"), "{err}");
    let (code, out, err) = ganzoo(dir.path(), &["data", "check", "captioned", "cub"]);
    assert_eq!(code, 2, "{err}");
    assert!(out.contains("b.txt"), "{out}");
    let (code, _, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "skip", "--quiet", "--set", "data.on_bad_input=skip"]);
    assert_eq!(code, 0, "{err}");
}
