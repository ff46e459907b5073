//! Text encoders: shapes, padding invariance, outputs equal to PyTorch's packed bidirectional GRU and
//! pre-LN transformer encoder (golden/cond_golden.py), the contrastive loss against a hand computation,
//! and contrastive pretraining on a toy caption ↔ pattern task.
mod common;
use common::max_diff;

use std::collections::BTreeMap;

use ganzoo_models::cyclegan::load_named_tensors;
use ganzoo_models::optim::{Optimizer, OptimizerConfig};
use ganzoo_models::rng::{derived_rng, randn};
use ganzoo_models::text::{
    contrastive_loss, retrieval_accuracy, GruTextConfig, ImageEncoder, TextEncoder,
    TextEncoderConfig, TransformerTextConfig,
};
use tch::{nn, Device, Kind, Tensor};

const CPU: Device = Device::Cpu;
const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/golden/cond_golden.safetensors"
);

fn configs() -> Vec<TextEncoderConfig> {
    vec![
        TextEncoderConfig::Gru(GruTextConfig {
            embed_dim: 12,
            hidden: 10,
            layers: 2,
        }),
        TextEncoderConfig::Transformer(TransformerTextConfig {
            dim: 16,
            heads: 4,
            layers: 2,
            max_len: 12,
        }),
    ]
}

/// A batch of captions (lists of ids >= 1) padded with 0 at the end to the longest: (ids, mask).
fn batch(captions: &[&[i64]], len: usize) -> (Tensor, Tensor) {
    let mut ids = vec![];
    for c in captions {
        ids.extend_from_slice(c);
        ids.extend(std::iter::repeat_n(0, len - c.len()));
    }
    let ids = Tensor::from_slice(&ids).reshape([captions.len() as i64, len as i64]);
    let mask = ids.ne(0).to_kind(Kind::Float);
    (ids, mask)
}

#[test]
fn shapes_and_padding_invariance() {
    let short: &[i64] = &[4, 9, 2];
    let long: &[i64] = &[7, 1, 3, 3, 8, 5, 6, 2];
    for cfg in configs() {
        let vs = nn::VarStore::new(CPU);
        let enc = TextEncoder::new(&vs.root(), &cfg, 10, 6).expect("builds");
        assert_eq!(enc.out_dim(), 6);
        let (ids, mask) = batch(&[short], 3);
        let alone = enc.forward_t(&ids, &mask, false);
        assert_eq!(alone.size(), vec![1, 6]);
        let (ids, mask) = batch(&[long, short, short], 10);
        let together = enc.forward_t(&ids, &mask, true);
        assert_eq!(together.size(), vec![3, 6]);
        let d = max_diff(&alone.get(0), &together.get(1));
        assert!(d < 1e-5, "{cfg:?}: padding changed the embedding by {d}");
        assert!(max_diff(&together.get(0), &together.get(1)) > 1e-3);
        // Same captions, same embedding, whatever else is in the batch.
        assert!(max_diff(&together.get(1), &together.get(2)) < 1e-6);
    }
}

#[test]
fn initialization_is_seeded_and_the_transformer_truncates() {
    for cfg in configs() {
        let build = || {
            let vs = nn::VarStore::new(CPU);
            let enc = TextEncoder::new(&vs.root(), &cfg, 10, 6).expect("builds");
            (vs, enc)
        };
        let (_va, a) = build();
        let (_vb, b) = build();
        let (ids, mask) = batch(&[&[1, 2, 3], &[4, 5]], 3);
        let (ya, yb) = (
            a.forward_t(&ids, &mask, false),
            b.forward_t(&ids, &mask, false),
        );
        assert_eq!(
            max_diff(&ya, &yb),
            0.0,
            "no global RNG in initialization"
        );
        b.reset_parameters(&mut derived_rng(9, "init", 0));
        let yb = b.forward_t(&ids, &mask, false);
        assert!(max_diff(&ya, &yb) > 1e-4, "reset_parameters redraws");
        a.reset_parameters(&mut derived_rng(9, "init", 0));
        assert_eq!(max_diff(&a.forward_t(&ids, &mask, false), &yb), 0.0);
    }
    // 20 tokens with max_len 12: truncated, not a panic.
    let vs = nn::VarStore::new(CPU);
    let enc = TextEncoder::new(&vs.root(), &configs()[1], 10, 6).expect("builds");
    let ids = Tensor::ones([2, 20], (Kind::Int64, CPU));
    let y = enc.forward_t(&ids, &ids.to_kind(Kind::Float), false);
    assert_eq!(y.size(), vec![2, 6]);
}

#[test]
fn outputs_match_pytorch_packed_gru_and_transformer() {
    let all: BTreeMap<String, Tensor> = Tensor::read_safetensors(GOLDEN)
        .expect("golden reads")
        .into_iter()
        .collect();
    let with_prefix = |prefix: &str| -> Vec<(String, Tensor)> {
        all.iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.shallow_clone())))
            .collect()
    };
    let (ids, mask) = (&all["ids"], &all["mask"]);
    for (cfg, prefix, out) in [
        (
            TextEncoderConfig::Gru(GruTextConfig {
                embed_dim: 6,
                hidden: 5,
                layers: 2,
            }),
            "gru.",
            "gru_out",
        ),
        (
            TextEncoderConfig::Transformer(TransformerTextConfig {
                dim: 8,
                heads: 2,
                layers: 2,
                max_len: 9,
            }),
            "tr.",
            "tr_out",
        ),
    ] {
        let vs = nn::VarStore::new(CPU);
        let enc = TextEncoder::new(&vs.root(), &cfg, 11, 4).expect("builds");
        load_named_tensors(&vs, &with_prefix(prefix)).expect("PyTorch state_dict loads by name");
        let y = tch::no_grad(|| enc.forward_t(ids, mask, false));
        let d = max_diff(&y, &all[out]);
        assert!(d < 1e-4, "{prefix}: {d}");
    }
}

#[test]
fn contrastive_loss_matches_a_hand_computation() {
    let text = Tensor::from_slice(&[2.0f32, 0.0, 0.0, 3.0]).reshape([2, 2]);
    let image = Tensor::from_slice(&[1.0f32, 0.0, 1.0, 1.0]).reshape([2, 2]);
    let tau = 0.5;
    // Normalized: t = [[1, 0], [0, 1]], i = [[1, 0], [r, r]] with r = 1/√2; logits = t·iᵀ/τ.
    let r = std::f64::consts::FRAC_1_SQRT_2;
    let l = [[1.0 / tau, r / tau], [0.0, r / tau]];
    let ce = |row: [f64; 2], target: usize| -> f64 {
        let lse = (row[0].exp() + row[1].exp()).ln();
        lse - row[target]
    };
    let t2i = (ce(l[0], 0) + ce(l[1], 1)) / 2.0;
    let i2t = (ce([l[0][0], l[1][0]], 0) + ce([l[0][1], l[1][1]], 1)) / 2.0;
    let want = (t2i + i2t) / 2.0;
    let got = contrastive_loss(&text, &image, tau).double_value(&[]);
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    let (a, b) = retrieval_accuracy(&text, &image);
    assert_eq!((a, b), (1.0, 0.5));
}

/// 8 captions of different lengths ↔ 8 image patterns (a bright square at one of 8 places, in one of
/// two channels, on noise): a few hundred Adam steps of the symmetric InfoNCE loss must retrieve every
/// pair both ways, for both text encoders.
#[test]
fn contrastive_pretraining_solves_a_toy_task() {
    tch::set_num_threads(1);
    let captions: [&[i64]; 8] = [
        &[1, 2],
        &[1, 3, 4],
        &[5, 2, 6, 7],
        &[8, 9],
        &[10, 11, 12, 13, 2],
        &[14, 3],
        &[15, 16, 4],
        &[17, 18, 19, 2, 4, 6],
    ];
    let (ids, mask) = batch(&captions, 6);
    let mut img = vec![-1f32; 8 * 2 * 16 * 16];
    for k in 0..8usize {
        let (ch, r0, c0) = (k % 2, 2 + 6 * ((k / 2) % 2), 2 + 6 * (k / 4));
        for r in r0..r0 + 5 {
            for c in c0..c0 + 5 {
                img[((k * 2 + ch) * 16 + r) * 16 + c] = 1.0;
            }
        }
    }
    let images = Tensor::from_slice(&img).reshape([8, 2, 16, 16]);
    for cfg in configs() {
        let vs = nn::VarStore::new(CPU);
        let text = TextEncoder::new(&(vs.root() / "text"), &cfg, 20, 16).expect("builds");
        let image = ImageEncoder::new(&(vs.root() / "image"), 2, 16, 8, 16).expect("builds");
        let mut opt = Optimizer::new(
            &vs,
            &OptimizerConfig::Adam {
                lr: 3e-3,
                betas: (0.9, 0.999),
                eps: 1e-8,
                weight_decay: 0.0,
            },
        );
        let t0 = std::time::Instant::now();
        let mut first = None;
        let mut last = 0.0;
        for step in 0..300 {
            let noise = randn(&mut derived_rng(1, "noise", step), &[8, 2, 16, 16], CPU) * 0.2;
            let loss = contrastive_loss(
                &text.forward_t(&ids, &mask, true),
                &image.forward_t(&(&images + noise), true),
                0.1,
            );
            last = loss.double_value(&[]);
            first.get_or_insert(last);
            opt.zero_grad();
            loss.backward();
            opt.step().expect("step");
        }
        let first = first.expect("ran");
        let (t2i, i2t) = tch::no_grad(|| {
            retrieval_accuracy(
                &text.forward_t(&ids, &mask, false),
                &image.forward_t(&images, false),
            )
        });
        assert!(last < 0.25 * first, "{cfg:?}: loss {first} -> {last}");
        assert_eq!((t2i, i2t), (1.0, 1.0), "{cfg:?}");
        assert!(
            t0.elapsed().as_secs_f64() < 10.0,
            "{cfg:?}: {:?}",
            t0.elapsed()
        );
    }
}

#[test]
fn configs_parse_with_defaults_and_report_problems() {
    let c: TextEncoderConfig = serde_json::from_str(r#"{"arch": "gru"}"#).expect("parses");
    assert_eq!(c, TextEncoderConfig::default());
    let c: TextEncoderConfig =
        serde_json::from_str(r#"{"arch": "transformer", "dim": 64}"#).expect("parses");
    assert_eq!(
        c,
        TextEncoderConfig::Transformer(TransformerTextConfig {
            dim: 64,
            heads: 4,
            layers: 2,
            max_len: 64
        })
    );
    assert!(serde_json::from_str::<TextEncoderConfig>(r#"{"arch": "gru", "dim": 64}"#).is_err());
    assert!(serde_json::from_str::<TextEncoderConfig>(r#"{"arch": "lstm"}"#).is_err());
    let bad = TextEncoderConfig::Transformer(TransformerTextConfig {
        dim: 10,
        heads: 4,
        layers: 0,
        max_len: 64,
    });
    let p = bad.check();
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p.iter().any(|m| m.contains("layers")));
    assert!(p.iter().any(|m| m.contains("divisible")));
    let vs = nn::VarStore::new(CPU);
    let err = TextEncoder::new(&vs.root(), &bad, 0, 8).expect_err("fails");
    assert!(err.to_string().contains("vocab_size"), "{err}");
    assert!(ImageEncoder::new(&vs.root(), 3, 0, 8, 8).is_err());
}
