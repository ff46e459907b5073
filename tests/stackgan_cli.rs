//! End-to-end runs of StackGAN as a two-stage pipeline on tiny captioned shapes: both stages, Stage-I frozen in
//! Stage-II, side-by-side samples, per-stage parameter counts and attribute accuracy, exact resume inside a
//! stage, `--stage`, and the pipeline errors reported before any training (missing stage, another
//! architecture, freeze without init_from, bad stage keys).
mod common;
use common::{ganzoo, read, write};
use std::collections::HashMap;
use std::path::Path;
use tch::Tensor;

/// Stage-II's D is the projection D with spectral norm and no batch norm; Stage-I's is the paper's.
const PIPE: &str = "name: sg\nseed: 5\nthreads: 1\ndata: {kind: shapes, size: 64, train_count: 228, test_count: 114}\nmodel:\n  family: stackgan\n  net: {z_dim: 8, ef_dim: 8, gf_dim: 8, df_dim: 4, r_num: 1, stage1_size: 16}\n  heads: split\n  mode_seeking: 0.1\n  stage2_consistency: 1.0\n  text:\n    encoder: {kind: trainable, network: {arch: gru, embed_dim: 16, hidden: 16}, dim: 16, pretrain_steps: 4}\n    captions_per_image: 2\ntrain:\n  batch_size: 8\n  log_every: 2\n  sample_every: 2\n  checkpoint_every: 2\neval: {samples: 228}\nstages:\n  - name: s1\n    set: {model.stage: 1, train.steps: 4}\n  - name: s2\n    set: {model.stage: 2, train.steps: 4, model.d_conditioning: projection, model.d_batch_norm: false, loss.spectral_norm: true}\n    init_from: {G1: s1, T: s1}\n    freeze: [G1, T]\n";

fn tensors(p: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).into_iter().collect()
}


fn same_network(a: &HashMap<String, Tensor>, b: &HashMap<String, Tensor>, prefix: &str) -> usize {
    let mut n = 0;
    for (k, t) in a.iter().filter(|(k, _)| k.starts_with(prefix)) {
        let u = b.get(k).unwrap_or_else(|| panic!("{k} missing"));
        assert!(t.equal(u), "{k} differs");
        n += 1;
    }
    n
}

#[test]
fn two_stages_train_in_order_with_stage1_frozen_and_resume_inside_a_stage() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "p.yaml", PIPE);
    let (code, out, err) = ganzoo(d, &["train", "p.yaml", "--out", "r", "--json", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let stages = report["stages"].as_array().unwrap();
    assert_eq!(stages.iter().map(|s| s["stage"].as_str().unwrap()).collect::<Vec<_>>(), ["s1", "s2"]);
    let s1 = &stages[0]["report"];
    let s2 = &stages[1]["report"];
    assert!(s1["final_losses"]["pretrain_text_loss"].is_null(), "pretraining is logged at step 0 only");
    for net in ["G1", "D1", "T"] {
        assert!(s1["parameters"][net].as_i64().unwrap() > 0, "{}", s1["parameters"]);
    }
    for net in ["G1", "G2", "D2", "T"] {
        assert!(s2["parameters"][net].as_i64().unwrap() > 0, "{}", s2["parameters"]);
    }
    // Stage-II's eval judges both stages' images against the prompts.
    let acc = &s2["eval"]["attribute_accuracy"]["seen_phrasing"];
    for stage in ["stage1", "stage2"] {
        for k in ["shape", "colour", "size", "background", "all_four"] {
            let v = acc[stage][k].as_f64().unwrap_or_else(|| panic!("{stage}.{k}: {acc}"));
            assert!((0.0..=1.0).contains(&v));
        }
    }
    assert!(s1["eval"]["attribute_accuracy"]["seen_phrasing"]["stage2"].is_null());
    assert!(s2["final_losses"]["kl"].is_number() && s2["final_losses"]["loss_D_uncond"].is_number());
    // The optional terms (mode seeking in both stages, the consistency term in Stage-II only) are trained.
    assert!(s1["final_losses"]["loss_G_ms"].is_number() && s2["final_losses"]["loss_G_ms"].is_number());
    assert!(s1["final_losses"]["loss_G_consistency"].is_null() && s2["final_losses"]["loss_G_consistency"].as_f64().unwrap() > 0.0);
    // The resolved pipeline and each stage's config are in the run.
    let top = std::fs::read_to_string(d.join("r/config.resolved.yaml")).unwrap();
    assert!(top.contains("stages:") && top.contains("init_from"), "{top}");
    let c2 = std::fs::read_to_string(d.join("r/stages/s2/config.resolved.yaml")).unwrap();
    assert!(c2.contains("stage: 2") && !c2.contains("stages:"), "{c2}");
    // Stage-II started from Stage-I's final G1 and T and never changed them.
    let t1 = tensors(&d.join("r/stages/s1/checkpoints/step_00000004.safetensors"));
    let t2 = tensors(&d.join("r/stages/s2/checkpoints/step_00000004.safetensors"));
    assert!(same_network(&t1, &t2, "G1.") > 10);
    assert!(same_network(&t1, &t2, "T.") > 3);
    assert!(t2.keys().any(|k| k.starts_with("G2.")) && !t2.keys().any(|k| k.starts_with("D1.")));
    // D1 is the paper's (text code concatenated, batch norm); D2 the projection D with spectral norm, whose
    // power-iteration vectors are checkpointed (the exact resume below depends on them).
    assert!(t1.contains_key("D1.context.fc.weight") && t1.contains_key("D1.enc.bn2.weight"));
    assert!(t2.contains_key("D2.proj.embed.weight_orig") && t2.contains_key("D2.proj.embed.weight_u") && t2.contains_key("D2.enc.conv2.bias"));
    assert!(!t2.keys().any(|k| k.starts_with("D2.enc.bn") || k.starts_with("D2.context")), "no batch norm, no concat head in D2");
    assert!(std::fs::read_to_string(d.join("r/stages/s2/tokenizer.json")).unwrap() == std::fs::read_to_string(d.join("r/stages/s1/tokenizer.json")).unwrap());
    // Samples: each Stage-I image (upscaled) beside its Stage-II image.
    let (code, _, err) = ganzoo(d, &["sample", "r", "--prompt", "a large green square on a white background", "--n", "4", "--out", "p.png"]);
    assert_eq!(code, 0, "{err}");
    let img = image::open(d.join("p.png")).unwrap();
    assert_eq!((img.width(), img.height()), (2 + 4 * 66, 2 + 2 * 66), "2 rows of 2 (Stage-I, Stage-II) pairs of 64-px images");
    let grid = image::open(d.join("r/stages/s2/samples/step_00000004.png")).unwrap();
    assert_eq!((grid.width(), grid.height()), (2 + 16 * 66, 2 + 8 * 66));
    let (code, out, err) = ganzoo(d, &["eval", "r", "--json", "--set", "eval.metrics=[]"]);
    assert_eq!(code, 0, "{err}");
    let ev: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(ev["metrics"].is_null(), "eval.metrics=[]: only the judges");
    assert_eq!(ev["eval"]["stage"], 2);
    // Both stages' images from the test captions against the test images.
    common::eval_metrics(d, "r", 8, &[("Stage-II", 8, 8), ("Stage-I", 8, 8)]);
    assert_eq!(ev["eval"]["attribute_accuracy"], s2["eval"]["attribute_accuracy"], "eval of the newest stage repeats the report's figures");

    // Stopped inside Stage-II after step 2: --resume keeps stage 1 and continues stage 2 exactly.
    let final2 = read(&d.join("r/stages/s2/checkpoints/step_00000004.safetensors"));
    let s1_ckpt = read(&d.join("r/stages/s1/checkpoints/step_00000004.safetensors"));
    for f in ["checkpoints/step_00000004.safetensors", "checkpoints/step_00000004.json", "report.json"] {
        std::fs::remove_file(d.join("r/stages/s2").join(f)).unwrap();
    }
    let (code, _, err) = ganzoo(d, &["train", "--resume", "r", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("pretraining"), "{err}");
    assert_eq!(read(&d.join("r/stages/s2/checkpoints/step_00000004.safetensors")), final2, "resumed Stage-II equals the uninterrupted one");
    assert_eq!(read(&d.join("r/stages/s1/checkpoints/step_00000004.safetensors")), s1_ckpt, "the finished stage is not run again");
    // `--set stages.s2.train.steps=6` lengthens Stage-II alone (a plain --set loses to the stage's own `set`).
    let (code, _, err) = ganzoo(d, &["train", "--resume", "r", "--quiet", "--set", "stages.s2.train.steps=6"]);
    assert_eq!(code, 0, "{err}");
    assert!(d.join("r/stages/s2/checkpoints/step_00000006.safetensors").exists(), "Stage-II continued to step 6");
    assert!(!d.join("r/stages/s1/checkpoints/step_00000006.safetensors").exists(), "Stage-I is finished and untouched");
    let (code, _, err) = ganzoo(d, &["train", "--resume", "r", "--quiet", "--set", "stages.s9.train.steps=6"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no stage named `s9`") && err.contains("s1, s2"), "{err}");

    // --stage: stage 2 alone needs a finished stage 1; then one stage at a time gives the same result.
    let (code, _, err) = ganzoo(d, &["train", "p.yaml", "--out", "q", "--stage", "s2", "--quiet"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("stage `s1` has not run yet"), "{err}");
    let (code, _, err) = ganzoo(d, &["train", "--resume", "q", "--stage", "s1", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert!(!d.join("q/stages/s2/checkpoints").exists(), "--stage s1 runs only s1");
    let (code, _, err) = ganzoo(d, &["train", "--resume", "q", "--stage", "s2", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(read(&d.join("q/stages/s2/checkpoints/step_00000004.safetensors")), final2);
    let (code, _, err) = ganzoo(d, &["train", "--resume", "q", "--stage", "s3", "--quiet"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--stage s3") && err.contains("s1, s2"), "{err}");
}

#[test]
fn inspect_reports_both_stages_networks() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "p.yaml", PIPE);
    let (code, out, err) = ganzoo(dir.path(), &["inspect", "p.yaml", "--json"]);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let p = &r["parameters"];
    for k in ["s1.G1", "s1.D1", "s1.T", "s2.G1", "s2.G2", "s2.D2", "s2.T"] {
        assert!(p[k].as_i64().unwrap() > 0, "{k}: {p}");
    }
    assert_eq!(p["s1.G1"], p["s2.G1"]);
    assert_eq!(r["stages"][1]["frozen"], serde_json::json!(["G1", "T"]));
    let (code, out, _) = ganzoo(dir.path(), &["inspect", "p.yaml"]);
    assert_eq!(code, 0);
    assert!(out.contains("s2.D2:") && out.contains("parameters"), "{out}");
}

#[test]
fn pipeline_errors_are_reported_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        ("missing", PIPE.replace("init_from: {G1: s1, T: s1}", "init_from: {G1: nope, T: s1}"), vec!["stages[1] (s2).init_from.G1", "`nope` is no stage"]),
        ("later", PIPE.replace("init_from: {G1: s1, T: s1}", "init_from: {G1: s2, T: s1}"), vec!["`s2` is a later (or the same) stage"]),
        (
            "arch",
            PIPE.replace("set: {model.stage: 2, train.steps: 4,", "set: {model.stage: 2, train.steps: 4, model.net.gf_dim: 12,"),
            vec!["stage `s2`: `G1` from stage `s1` is another architecture", "G1.fc.weight: [64, 16] in stage `s1`, [96, 16] in this stage", "G1.out.weight"],
        ),
        (
            "weights",
            PIPE.replace("stage2_consistency: 1.0", "stage2_consistency: -1")
                .replace("mode_seeking: 0.1", "mode_seeking: .nan")
                .replace("train:\n", "loss: {gradient_penalty: 10.0, r1: 1.0}\ntrain:\n"),
            vec![
                "model.stage2_consistency: must be a number ≥ 0, got -1",
                "model.mode_seeking: must be a number ≥ 0, got NaN",
                "loss.r1: choose either the R1 penalty or loss.gradient_penalty, not both",
            ],
        ),
        ("freeze", PIPE.replace("freeze: [G1, T]", "freeze: [G1, T, D2]"), vec!["`D2` is not taken from an earlier stage"]),
        ("key", PIPE.replace("train.steps: 4, model.d_", "train.stpes: 4, model.d_"), vec!["stages[1] (s2)", "unknown key `train.stpes`", "did you mean `train.steps`"]),
        ("net", PIPE.replace("init_from: {G1: s1, T: s1}", "init_from: {G1: s1, T: s1, G2: s1}").replace("freeze: [G1, T]", "freeze: [G1, T, G2]"), vec!["takes `G2` from stage `s1`, which has no such network (it has G1, D1, T)"]),
    ];
    for (name, text, needles) in cases {
        write(d, &format!("{name}.yaml"), &text);
        let out = format!("run_{name}");
        let (code, _, err) = ganzoo(d, &["train", &format!("{name}.yaml"), "--out", &out, "--quiet"]);
        assert_eq!(code, 2, "{name}: {err}");
        for n in needles {
            assert!(err.contains(n), "{name}: `{n}` not in:\n{err}");
        }
        assert!(!d.join(&out).exists(), "{name}: nothing is written before the pipeline checks out");
    }
    // A checkpoint file of another architecture named by path: every mismatched tensor by name and shape.
    write(d, "p.yaml", PIPE);
    let (code, _, err) = ganzoo(d, &["train", "p.yaml", "--out", "ok", "--stage", "s1", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let ckpt = d.join("ok/stages/s1/checkpoints/step_00000004.safetensors");
    let other = PIPE
        .replace("init_from: {G1: s1, T: s1}", &format!("init_from: {{G1: {}, T: s1}}", ckpt.display()))
        .replace("gf_dim: 8", "gf_dim: 4");
    write(d, "other.yaml", &other);
    let (code, _, err) = ganzoo(d, &["train", "other.yaml", "--out", "o", "--quiet"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is another architecture") && err.contains("G1.res1.conv1.weight: [16, 64, 1, 1] in"), "{err}");
    assert!(!d.join("o").exists());
    // Stage-II outside a pipeline would train on a random Stage-I.
    let single = PIPE.split("stages:").next().unwrap().replace("family: stackgan", "family: stackgan\n  stage: 2").replace("batch_size: 8", "batch_size: 8\n  steps: 2");
    write(d, "single.yaml", &single);
    let (code, _, err) = ganzoo(d, &["train", "single.yaml", "--out", "s", "--quiet"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("init_from: {G1: <stage-I stage>, T: <stage-I stage>}"), "{err}");
    // --stage on a single-stage config.
    let (code, _, err) = ganzoo(d, &["train", "single.yaml", "--out", "s3", "--stage", "s1", "--quiet"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no `stages` list"), "{err}");
}

/// A CUB-layout fixture (3 birds of 2 classes, 10 captions each, 1024-d char-CNN-RNN-shaped embeddings) under
/// `root/data/<name>` with the folder names of the release.
fn caption_fixture(root: &Path, name: &str, images: &str, text: &str) {
    let base = root.join("data").join(name);
    let items = [("001.Albatross", "a"), ("001.Albatross", "b"), ("002.Auklet", "c")];
    for (class, item) in items {
        std::fs::create_dir_all(base.join(images).join(class)).unwrap();
        std::fs::create_dir_all(base.join(text).join(class)).unwrap();
        image::RgbImage::from_pixel(8, 8, image::Rgb([200, 30, 30])).save(base.join(images).join(class).join(format!("{item}.png"))).unwrap();
        let caps: String = (0..10).map(|k| format!("a red bird number {k}\n")).collect();
        std::fs::write(base.join(text).join(class).join(format!("{item}.txt")), caps).unwrap();
    }
    std::fs::write(base.join("trainvalclasses.txt"), "001.Albatross\n002.Auklet\n").unwrap();
    std::fs::write(base.join("testclasses.txt"), "").unwrap();
    std::fs::write(base.join("filenames.txt"), items.iter().map(|(c, i)| format!("{c}/{i}\n")).collect::<String>()).unwrap();
    let emb: Vec<f32> = (0..3 * 10 * 1024).map(|i| (i % 7) as f32 * 0.1).collect();
    ganzoo_data::embeddings::write_npy_f32(&base.join("char-CNN-RNN-embeddings.npy"), &[3, 10, 1024], &emb).unwrap();
}

#[test]
fn paper_configs_have_the_authors_widths_in_both_stages() {
    let golden: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(common::repo().join("models/golden/stackgan_golden.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    caption_fixture(dir.path(), "cub", "images", "text");
    caption_fixture(dir.path(), "flowers", "jpg", "text_c10");
    for cfg in ["stackgan_cub.yaml", "stackgan_flowers.yaml"] {
        let path = common::repo().join("configs/papers").join(cfg);
        let (code, out, err) = ganzoo(dir.path(), &["inspect", path.to_str().unwrap(), "--json"]);
        assert_eq!(code, 0, "{cfg}: {err}");
        let r: serde_json::Value = serde_json::from_str(&out).unwrap();
        let p = &r["parameters"];
        for (key, py) in [("stage1.G1", "G1"), ("stage1.D1", "D1_joint"), ("stage2.G1", "G1"), ("stage2.G2", "G2"), ("stage2.D2", "D2_joint")] {
            assert_eq!(p[key], golden["counts"][py], "{cfg} {key}: {p}");
        }
        let stages = r["stages"].as_array().unwrap();
        assert!(stages[1]["resolved_yaml"].as_str().unwrap().contains("every: "), "{cfg}");
    }
}
