//! The MiniLM sentence encoder against sentence-transformers: golden embeddings from
//! `models/golden/minilm_golden.py` (run with the project's `.venv`), padding invariance, and load errors.
//!
//! Needs the model files in `$GANZOO_CACHE/minilm` (default `<workspace>/.ganzoo-cache/minilm`), put there by
//! `ganzoo data get minilm --cache DIR`; set `GANZOO_SKIP_MINILM=1` to skip the tests that need them.
mod common;
use common::max_diff;

use std::path::{Path, PathBuf};
use std::time::Instant;

use ganzoo_models::bert::{BertConfig, MiniLm};
use ganzoo_models::ModelError;
use tch::{nn, Device, Kind, Tensor};

struct Case {
    text: String,
    ids: Vec<i64>,
    embedding: Vec<f32>,
}

fn golden() -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/minilm.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            text: c["text"].as_str().expect("text").to_owned(),
            ids: c["input_ids"]
                .as_array()
                .expect("ids")
                .iter()
                .map(|x| x.as_i64().expect("id"))
                .collect(),
            embedding: c["embedding"]
                .as_array()
                .expect("emb")
                .iter()
                .map(|x| x.as_f64().expect("f") as f32)
                .collect(),
        })
        .collect()
}

/// The model directory, or `None` when the user asked to skip; panics with instructions when it is missing.
fn model_dir() -> Option<PathBuf> {
    let weights = common::cached_file("minilm/model.safetensors", "MiniLM", "minilm", "GANZOO_SKIP_MINILM")?;
    weights.parent().map(Path::to_path_buf)
}

/// Right-pads token id lists into one batch: ids (N, L) i64 and mask (N, L) i64.
fn pad(seqs: &[&[i64]]) -> (Tensor, Tensor) {
    let l = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut ids = vec![0i64; seqs.len() * l];
    let mut mask = vec![0i64; seqs.len() * l];
    for (i, s) in seqs.iter().enumerate() {
        ids[i * l..i * l + s.len()].copy_from_slice(s);
        mask[i * l..i * l + s.len()].fill(1);
    }
    let shape = [seqs.len() as i64, l as i64];
    (
        Tensor::from_slice(&ids).view(shape),
        Tensor::from_slice(&mask).view(shape),
    )
}

#[test]
fn golden_embeddings_match_sentence_transformers() {
    let Some(dir) = model_dir() else { return };
    let cases = golden();
    let (_vs, model) = MiniLm::load(&dir, Device::Cpu).expect("load MiniLM");
    assert_eq!(model.dim(), 384);

    let seqs: Vec<&[i64]> = cases.iter().map(|c| c.ids.as_slice()).collect();
    let (ids, mask) = pad(&seqs);
    let emb = model.embed(&ids, &mask); // (16, 384)
    assert_eq!(emb.size(), [cases.len() as i64, 384]);
    assert_eq!(emb.kind(), Kind::Float);

    let mut worst = 0.0f64;
    for (i, c) in cases.iter().enumerate() {
        let want = Tensor::from_slice(&c.embedding);
        let d = max_diff(&emb.get(i as i64), &want);
        assert!(
            d < 1e-4,
            "caption {i} {:?}: max |diff| {d:e} ≥ 1e-4",
            c.text
        );
        worst = worst.max(d);
    }
    println!(
        "MiniLM vs sentence-transformers: max |diff| {worst:e} over {} captions (one padded batch)",
        cases.len()
    );

    // Padding invariance: each caption alone (no padding) equals its row of the padded batch.
    let mut worst_pad = 0.0f64;
    for (i, c) in cases.iter().enumerate() {
        let (ids1, mask1) = pad(&[c.ids.as_slice()]);
        let one = model.embed(&ids1, &mask1); // (1, 384)
        worst_pad = worst_pad.max(max_diff(&one.get(0), &emb.get(i as i64)));
    }
    println!("MiniLM padding invariance: max |batch of one − padded batch| {worst_pad:e}");
    assert!(
        worst_pad < 1e-5,
        "padding changes embeddings by {worst_pad:e}"
    );

    // The mask may be of any kind; rows are unit vectors.
    let emb_bool = model.embed(&ids, &mask.to_kind(Kind::Bool));
    assert!(max_diff(&emb_bool, &emb) < 1e-6);
    let norms = emb.norm_scalaropt_dim(2.0, 1, false);
    assert!(
        max_diff(
            &norms,
            &Tensor::ones([cases.len() as i64], (Kind::Float, Device::Cpu))
        ) < 1e-5
    );

    // Bad input is an error, not a panic.
    let too_long = Tensor::zeros([1, 513], (Kind::Int64, Device::Cpu));
    assert!(matches!(
        model.f_embed(&too_long, &too_long.ones_like()),
        Err(ModelError::Shape(_))
    ));
    assert!(matches!(
        model.f_embed(&ids.full_like(30522), &mask),
        Err(ModelError::Shape(_))
    ));
    assert!(matches!(
        model.f_embed(&ids, &mask.narrow(1, 0, 3)),
        Err(ModelError::Shape(_))
    ));
}

/// A tiny BERT config for the load-error tests.
fn tiny_config() -> BertConfig {
    BertConfig {
        hidden_size: 8,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        intermediate_size: 16,
        vocab_size: 10,
        max_position_embeddings: 16,
        type_vocab_size: 2,
        ..BertConfig::all_minilm_l6_v2()
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ganzoo-minilm-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

const TINY_CONFIG_JSON: &str = r#"{"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
  "intermediate_size": 16, "vocab_size": 10, "max_position_embeddings": 16, "type_vocab_size": 2,
  "layer_norm_eps": 1e-12, "hidden_act": "gelu", "position_embedding_type": "absolute",
  "architectures": ["BertModel"], "model_type": "bert"}"#;

#[test]
fn load_reports_mismatched_tensors_by_name_and_shape() {
    let dir = temp_dir("shapes");
    std::fs::write(dir.join("config.json"), TINY_CONFIG_JSON).expect("write config");

    // A correct tiny checkpoint in HF layout (with the ignored position_ids buffer and pooler), then broken.
    let vs = nn::VarStore::new(Device::Cpu);
    let _m = MiniLm::new(&vs.root(), &tiny_config()).expect("tiny model");
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    named.push((
        "embeddings.position_ids".into(),
        Tensor::arange(16, (Kind::Int64, Device::Cpu)).view([1, 16]),
    ));
    named.push((
        "pooler.dense.weight".into(),
        Tensor::zeros([8, 8], (Kind::Float, Device::Cpu)),
    ));
    let good = dir.join("good.safetensors");
    Tensor::write_safetensors(&named, &good).expect("write good");

    // Wrong shapes, one missing, one unexpected.
    let mut bad: Vec<(String, Tensor)> = named
        .iter()
        .filter(|(n, _)| n != "encoder.layer.0.output.dense.bias")
        .map(|(n, t)| match n.as_str() {
            "embeddings.word_embeddings.weight" => (
                n.clone(),
                Tensor::zeros([11, 8], (Kind::Float, Device::Cpu)),
            ),
            "encoder.layer.0.attention.self.query.weight" => {
                (n.clone(), Tensor::zeros([8, 4], (Kind::Float, Device::Cpu)))
            }
            _ => (n.clone(), t.shallow_clone()),
        })
        .collect();
    bad.push((
        "encoder.layer.1.output.dense.bias".into(),
        Tensor::zeros([8], (Kind::Float, Device::Cpu)),
    ));
    Tensor::write_safetensors(&bad, dir.join("model.safetensors")).expect("write bad");

    let err = MiniLm::load(&dir, Device::Cpu).expect_err("mismatched checkpoint must not load");
    let msg = err.to_string();
    println!("{msg}");
    assert!(matches!(err, ModelError::State(_)), "{msg}");
    for needle in [
        "model.safetensors",
        "mis-shaped embeddings.word_embeddings.weight: file [11, 8], model [10, 8]",
        "mis-shaped encoder.layer.0.attention.self.query.weight: file [8, 4], model [8, 8]",
        "missing encoder.layer.0.output.dense.bias [8]",
        "unexpected encoder.layer.1.output.dense.bias [8]",
        "(4 problems)",
    ] {
        assert!(msg.contains(needle), "error lacks {needle:?}:\n{msg}");
    }
    assert!(
        !msg.contains("position_ids") && !msg.contains("pooler"),
        "{msg}"
    );

    // The good file (with a `bert.` prefix, as BertFor* checkpoints have) loads and reproduces the weights.
    let prefixed: Vec<(String, Tensor)> = named
        .iter()
        .map(|(n, t)| (format!("bert.{n}"), t.shallow_clone()))
        .collect();
    Tensor::write_safetensors(&prefixed, dir.join("model.safetensors")).expect("write good");
    let (vs2, m2) = MiniLm::load(&dir, Device::Cpu).expect("good tiny checkpoint loads");
    let ids = Tensor::from_slice(&[1i64, 2, 3, 0]).view([1, 4]);
    let mask = Tensor::from_slice(&[1i64, 1, 1, 0]).view([1, 4]);
    let a = _m.embed(&ids, &mask);
    let b = m2.embed(&ids, &mask);
    assert!(max_diff(&a, &b) < 1e-6);
    assert!(
        vs2.trainable_variables().iter().all(|t| !t.requires_grad()),
        "VarStore must be frozen"
    );

    // A missing or bad config names the file.
    std::fs::write(dir.join("config.json"), r#"{"hidden_size": 8}"#).expect("write config");
    let msg = MiniLm::load(&dir, Device::Cpu)
        .expect_err("bad config")
        .to_string();
    assert!(
        msg.contains("config.json") && msg.contains("num_hidden_layers"),
        "{msg}"
    );
    std::fs::remove_file(dir.join("config.json")).expect("rm config");
    let msg = MiniLm::load(&dir, Device::Cpu)
        .expect_err("no config")
        .to_string();
    assert!(msg.contains("config.json"), "{msg}");
    std::fs::remove_dir_all(&dir).ok();
}

/// CPU throughput of `embed` for a batch of 64 short captions on one libtorch thread:
/// `cargo test -p ganzoo-models --test minilm -- --ignored --nocapture throughput`.
#[test]
#[ignore = "timing; run on demand"]
fn throughput_cpu_one_thread() {
    let Some(dir) = model_dir() else { return };
    tch::set_num_threads(1);
    let cases = golden();
    let short: Vec<&[i64]> = cases
        .iter()
        .filter(|c| c.ids.len() <= 20)
        .map(|c| c.ids.as_slice())
        .collect();
    let seqs: Vec<&[i64]> = short.iter().cycle().take(64).copied().collect();
    let (ids, mask) = pad(&seqs);
    let (_vs, model) = MiniLm::load(&dir, Device::Cpu).expect("load MiniLM");
    let _ = model.embed(&ids, &mask); // warm-up
    let reps = 5;
    let t = Instant::now();
    for _ in 0..reps {
        let _ = tch::no_grad(|| model.embed(&ids, &mask));
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "MiniLM embed, CPU, 1 thread, batch 64 × {} tokens: {:.0} sentences/s",
        ids.size()[1],
        (reps * 64) as f64 / s
    );
}
