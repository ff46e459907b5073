//! End-to-end CycleGAN runs on tiny two-domain shapes: the run directory, exact resume with the image pools,
//! `translate` (names kept, non-images and unreadable files listed), and `import` of reference-named weights.
mod common;
use common::{ganzoo, read, write};

const TINY: &str = "name: cg\nseed: 2\nthreads: 1\ndata: {kind: shapes2, size: 16, train: 40, test: 6}\nmodel:\n  family: cyclegan\n  generator: {ngf: 4, n_blocks: 1}\n  discriminator: {ndf: 4, n_layers: 2}\n  pool_size: 3\nloss: {adversarial: lsgan}\ntrain:\n  steps: 8\n  batch_size: 2\n  log_every: 4\n  sample_every: 4\n  checkpoint_every: 4\neval: {samples: 6}\n";


#[test]
fn cyclegan_trains_evaluates_against_ground_truth_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", TINY);
    write(dir.path(), "c12.yaml", &TINY.replace("steps: 8", "steps: 12"));
    let (code, out, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "r", "--json", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    for k in ["a2b_psnr", "b2a_psnr", "identity_baseline_psnr", "cycle_l1_A", "cycle_l1_B"] {
        assert!(report["eval"][k].is_number(), "eval lacks {k}: {}", report["eval"]);
    }
    assert_eq!(report["eval"]["test_images"], 6);
    assert!(report["parameters"]["G_A"].as_i64().unwrap() > 0 && report["parameters"]["D_B"].as_i64().unwrap() > 0);
    let grid = image::open(dir.path().join("r/samples/step_00000008.png")).unwrap();
    assert!(grid.width() > grid.height(), "6 columns: A, G(A), F(G(A)), B, F(B), G(F(B))");
    // The standard metrics of the CycleGAN/CUT papers: A → B translations of test A against real test B.
    let m = common::eval_metrics(dir.path(), "r", 6, &[("A→B", 6, 6), ("B→A", 6, 6), ("A as B (identity)", 6, 6)]);
    assert!(m["A→B"]["protocol"].as_str().unwrap().contains("test"), "{m}");
    // The pools (3 images each) are in the checkpoint, so 8 + 4 steps equal 12 in one go.
    common::assert_extension_is_exact(dir.path(), "r", "c12.yaml", 12);
}

/// `eval.best` follows the family's first comparison, A → B, whatever order the JSON keys sort into (the
/// identity baseline "A as B (identity)" sorts first and never changes).
#[test]
fn eval_best_of_a_translator_follows_a_to_b() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", TINY);
    let set = ["--set", "eval.every=4", "--set", "eval.best=fid", "--set", "eval.samples=4"];
    let mut args = vec!["train", "c.yaml", "--out", "r", "--quiet"];
    args.extend(set);
    let (code, _, err) = ganzoo(dir.path(), &args);
    assert_eq!(code, 0, "{err}");
    let evals: Vec<(i64, f64)> = std::fs::read_to_string(dir.path().join("r/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(common::json)
        .filter(|v| v.get("eval").is_some())
        .map(|v| (v["step"].as_i64().unwrap(), v["eval"]["A→B"]["fid"].as_f64().unwrap()))
        .collect();
    assert_eq!(evals.iter().map(|e| e.0).collect::<Vec<_>>(), [4, 8], "{evals:?}");
    let (best_step, best_fid) = if evals[1].1 < evals[0].1 { evals[1] } else { evals[0] };
    let meta = common::json(&std::fs::read_to_string(dir.path().join("r/checkpoints/best.json")).unwrap());
    assert_eq!(meta["best"]["metric"], "A→B/fid", "{meta}");
    assert_eq!((meta["step"].as_i64(), meta["best"]["value"].as_f64()), (Some(best_step), Some(best_fid)), "{meta}");
}

#[test]
fn translate_keeps_names_lists_skips_and_names_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", TINY);
    assert_eq!(ganzoo(dir.path(), &["train", "c.yaml", "--out", "r", "--quiet"]).0, 0);
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    image::RgbImage::from_pixel(20, 12, image::Rgb([200, 30, 30])).save(input.join("a.png")).unwrap();
    image::GrayImage::from_pixel(16, 16, image::Luma([90])).save(input.join("b.jpg")).unwrap();
    std::fs::write(input.join("notes.txt"), "not an image").unwrap();
    let (code, out, err) = ganzoo(dir.path(), &["translate", "r", "--direction", "a2b", "in", "out", "--json"]);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["translated"], 2);
    assert_eq!(r["skipped_not_images"].as_array().unwrap().len(), 1);
    for name in ["a.png", "b.jpg"] {
        let img = image::open(dir.path().join("out").join(name)).unwrap();
        assert_eq!((img.width(), img.height()), (16, 16), "resized to the run's data.size");
    }
    // --size 0 keeps each image's own size (rounded down to a multiple of 4).
    let (code, _, err) = ganzoo(dir.path(), &["translate", "r", "--direction", "b2a", "in", "out0", "--size", "0"]);
    assert_eq!(code, 0, "{err}");
    let img = image::open(dir.path().join("out0/a.png")).unwrap();
    assert_eq!((img.width(), img.height()), (20, 12));
    // An unreadable image stops the command and is named; --skip-bad lists it instead.
    std::fs::write(input.join("c.png"), b"").unwrap();
    let (code, _, err) = ganzoo(dir.path(), &["translate", "r", "--direction", "a2b", "in", "out2"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("c.png"), "{err}");
    assert!(!dir.path().join("out2/c.png").exists(), "nothing half-written");
    let (code, out, err) = ganzoo(dir.path(), &["translate", "r", "--direction", "a2b", "in", "out3", "--skip-bad", "--json"]);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((r["translated"].as_i64(), r["skipped_unreadable"].as_array().map(Vec::len)), (Some(2), Some(1)));
    // A missing input folder is a usage error.
    let (code, _, err) = ganzoo(dir.path(), &["translate", "r", "--direction", "a2b", "nowhere", "out4"]);
    assert_eq!(code, 2);
    assert!(err.contains("nowhere: cannot read the input folder"), "{err}");
}

#[test]
fn imported_reference_weights_translate_like_the_original_run() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", TINY);
    assert_eq!(ganzoo(dir.path(), &["train", "c.yaml", "--out", "r", "--quiet"]).0, 0);
    // A reference-style state_dict: G_A's tensors under their own names (model.1.weight, ...).
    let ck = tch::Tensor::read_safetensors(dir.path().join("r/checkpoints/step_00000008.safetensors")).unwrap();
    let g_a: Vec<(String, tch::Tensor)> =
        ck.into_iter().filter_map(|(n, t)| n.strip_prefix("G_A.").map(|s| (s.to_string(), t))).collect();
    assert!(g_a.iter().any(|(n, _)| n == "model.1.weight"), "reference key names");
    tch::Tensor::write_safetensors(&g_a, dir.path().join("g_a.safetensors")).unwrap();
    let (code, _, err) = ganzoo(dir.path(), &["import", "c.yaml", "--weights", "G_A=g_a.safetensors", "--out", "imp"]);
    assert_eq!(code, 0, "{err}");
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([(x * 15) as u8, (y * 15) as u8, 128])).save(input.join("x.png")).unwrap();
    for run in ["r", "imp"] {
        let (code, _, err) = ganzoo(dir.path(), &["translate", run, "--direction", "a2b", "in", &format!("out_{run}")]);
        assert_eq!(code, 0, "{err}");
    }
    assert_eq!(read(&dir.path().join("out_r/x.png")), read(&dir.path().join("out_imp/x.png")));
    // Weights of another architecture: every mismatched tensor is named, nothing is written.
    let (code, _, err) = ganzoo(dir.path(), &["import", "c.yaml", "--set", "model.generator.ngf=8", "--weights", "G_A=g_a.safetensors", "--out", "bad"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("model.1.weight") && err.contains("does not fit G_A"), "{err}");
    assert!(!dir.path().join("bad/config.resolved.yaml").exists());
}
