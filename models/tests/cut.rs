//! CUT's networks and PatchNCE against the authors' code (taesungp/contrastive-unpaired-translation) as rebuilt
//! by `models/golden/cut_golden.py` (torch 2.11.0, CPU): state_dict names, shapes and parameter counts
//! (`cut_golden.json`), and features, patch rows, losses and gradients of small networks with the reference's
//! weights and patch ids (`cut_golden.safetensors`).

mod common;

use std::collections::BTreeMap;

use ganzoo_models::cut::{patch_nce, patch_ids, PatchSampler};
use ganzoo_models::cyclegan::{load_named_tensors, PatchDiscriminator, PatchDiscriminatorConfig, ResnetGenerator, ResnetGeneratorConfig};
use ganzoo_models::nets::count_parameters;
use ganzoo_models::rng::derived_rng;
use serde_json::Value;
use tch::{nn, Device, Kind, Tensor};

const CPU: Device = Device::Cpu;
const LAYOUTS: &str = include_str!("../golden/cut_golden.json");
const TENSORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/cut_golden.safetensors");
const LAYERS: [usize; 5] = [0, 4, 8, 12, 16];

fn keys(layout: &Value) -> BTreeMap<String, Vec<i64>> {
    layout["state_dict"]
        .as_array()
        .expect("state_dict list")
        .iter()
        .map(|kv| (kv[0].as_str().expect("name").to_string(), kv[1].as_array().expect("shape").iter().map(|d| d.as_i64().expect("dim")).collect()))
        .collect()
}

fn store_keys(vs: &nn::VarStore) -> BTreeMap<String, Vec<i64>> {
    vs.variables().into_iter().map(|(n, t)| (n, t.size())).collect()
}

/// The largest difference relative to the reference's largest magnitude (at least 1).
fn rel(got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.size(), want.size(), "shapes differ");
    let scale = want.abs().max().double_value(&[]).max(1.0);
    (got.to_kind(Kind::Double) - want.to_kind(Kind::Double)).abs().max().double_value(&[]) / scale
}

fn cut_d() -> PatchDiscriminatorConfig {
    PatchDiscriminatorConfig { antialias: true, ..PatchDiscriminatorConfig::default() }
}

#[test]
fn names_shapes_and_counts_equal_the_reference() {
    let l: Value = serde_json::from_str(LAYOUTS).expect("cut_golden.json parses");
    let gvs = nn::VarStore::new(CPU);
    let g_cfg = ResnetGeneratorConfig::cut();
    let g = ResnetGenerator::new(&gvs.root(), &g_cfg, 3, 3).expect("G builds");
    assert_eq!(store_keys(&gvs), keys(&l["g_cut_9blocks"]));
    assert_eq!(count_parameters(&gvs), 11_378_179, "the blur filters are buffers, not parameters");
    let dvs = nn::VarStore::new(CPU);
    let d = PatchDiscriminator::new(&dvs.root(), &cut_d(), 3, false).expect("D builds");
    assert_eq!(store_keys(&dvs), keys(&l["d_cut_basic"]));
    assert_eq!(count_parameters(&dvs), 2_764_737);
    assert_eq!(cut_d().output_size(256), Some(30));
    let chans: Vec<i64> = LAYERS.iter().map(|&i| g_cfg.encoder_channels(3)[i]).collect();
    assert_eq!(chans, [3, 128, 256, 256, 256]);
    let fvs = nn::VarStore::new(CPU);
    PatchSampler::new(&fvs.root(), &chans, 256).expect("F builds");
    assert_eq!(store_keys(&fvs), keys(&l["f_mlp_sample"]));
    assert_eq!(count_parameters(&fvs), 560_384);
    tch::no_grad(|| {
        let x = Tensor::zeros([1, 3, 256, 256], (Kind::Float, CPU));
        let shapes: Vec<Vec<i64>> = g.features(&x, &LAYERS, false).expect("features").iter().map(Tensor::size).collect();
        let want: Vec<Vec<i64>> = serde_json::from_value(l["g_cut_9blocks"]["feature_shapes_256"].clone()).expect("shapes");
        assert_eq!(shapes, want);
        assert_eq!(d.forward_t(&x, false).size(), [1, 1, 30, 30]);
        assert_eq!(g.forward_t(&x, false).size(), [1, 3, 256, 256]);
    });
    assert!(g.features(&Tensor::zeros([1, 3, 16, 16], (Kind::Float, CPU)), &[40], false).is_err(), "a layer past the blocks");
}

#[test]
fn features_patches_losses_and_gradients_match_pytorch() {
    let all = Tensor::read_safetensors(TENSORS).expect("golden file reads");
    let get = |name: &str| all.iter().find(|(n, _)| n == name).map(|(_, t)| t.shallow_clone()).unwrap_or_else(|| panic!("no {name}"));
    let prefixed = |p: &str| -> Vec<(String, Tensor)> { all.iter().filter_map(|(n, t)| n.strip_prefix(p).map(|r| (r.to_string(), t.shallow_clone()))).collect() };
    let g_cfg = ResnetGeneratorConfig { ngf: 8, n_blocks: 6, ..ResnetGeneratorConfig::cut() };
    let gvs = nn::VarStore::new(CPU);
    let g = ResnetGenerator::new(&gvs.root(), &g_cfg, 3, 3).expect("G builds");
    load_named_tensors(&gvs, &prefixed("G.")).expect("G takes the reference weights");
    let mut dvs = nn::VarStore::new(CPU);
    let d = PatchDiscriminator::new(&dvs.root(), &PatchDiscriminatorConfig { ndf: 8, ..cut_d() }, 3, false).expect("D builds");
    load_named_tensors(&dvs, &prefixed("D.")).expect("D takes the reference weights");
    let chans: Vec<i64> = LAYERS.iter().map(|&i| g_cfg.encoder_channels(3)[i]).collect();
    let fvs = nn::VarStore::new(CPU);
    let f = PatchSampler::new(&fvs.root(), &chans, 16).expect("F builds");
    load_named_tensors(&fvs, &prefixed("F.")).expect("F takes the reference weights");
    let (a, b) = (get("A"), get("B"));
    let ids: Vec<Tensor> = (0..5).map(|i| get(&format!("ids_{i}")).to_kind(Kind::Int64)).collect();

    tch::no_grad(|| {
        let feats = g.features(&a, &LAYERS, true).expect("features");
        for (i, t) in feats.iter().enumerate() {
            assert!(rel(t, &get(&format!("feat_{i}"))) < 1e-4, "feature {i}: {}", rel(t, &get(&format!("feat_{i}"))));
        }
        for (i, t) in f.forward(&feats, &ids).expect("rows").iter().enumerate() {
            assert!(rel(t, &get(&format!("F_{i}"))) < 1e-4, "F rows {i}");
        }
        assert!(rel(&d.forward_t(&a, true), &get("D_out")) < 1e-4, "D");
    });

    let nce = |src: &Tensor, tgt: &Tensor| -> Tensor {
        let q = f.forward(&g.features(tgt, &LAYERS, true).expect("q"), &ids).expect("q rows");
        let k = f.forward(&g.features(src, &LAYERS, true).expect("k"), &ids).expect("k rows");
        let total = q.iter().zip(&k).map(|(q, k)| patch_nce(q, k, 2, 0.07).mean(q.kind())).fold(Tensor::from(0.0f32), |s, l| s + l);
        total / LAYERS.len() as f64
    };
    let fake = g.forward_t(&Tensor::cat(&[&a, &b], 0), true);
    let (fake_b, idt_b) = (fake.narrow(0, 0, 2), fake.narrow(0, 2, 2));
    assert!(rel(&fake_b, &get("G_out")) < 1e-4, "G(A)");
    let d_fake = d.forward_t(&fake_b.detach(), true);
    let d_real = d.forward_t(&b, true);
    let loss_d = (d_fake.square().mean(Kind::Float) + (d_real - 1.0).square().mean(Kind::Float)) * 0.5;
    assert!(rel(&loss_d, &get("loss_D")) < 1e-4, "loss_D");
    dvs.freeze();
    let (nce_a, nce_b) = (nce(&a, &fake_b), nce(&b, &idt_b));
    assert!(rel(&nce_a, &get("nce_A")) < 1e-4, "NCE(A, G(A)) {nce_a} vs {}", get("nce_A"));
    assert!(rel(&nce_b, &get("nce_B")) < 1e-4, "NCE(B, G(B))");
    let loss_g = (d.forward_t(&fake_b, true) - 1.0).square().mean(Kind::Float) + (nce_a + nce_b) * 0.5;
    assert!(rel(&loss_g, &get("loss_G")) < 1e-4, "loss_G");

    // The gradients, in float64 as the golden file computed them (G's first conv sums terms that cancel).
    let (mut gvs, mut fvs) = (gvs, fvs);
    for vs in [&mut gvs, &mut dvs, &mut fvs] {
        vs.double();
    }
    let (a, b) = (a.to_kind(Kind::Double), b.to_kind(Kind::Double));
    let fake = g.forward_t(&Tensor::cat(&[&a, &b], 0), true);
    let (fake_b, idt_b) = (fake.narrow(0, 0, 2), fake.narrow(0, 2, 2));
    let loss_g = (d.forward_t(&fake_b, true) - 1.0).square().mean(Kind::Double) + (nce(&a, &fake_b) + nce(&b, &idt_b)) * 0.5;
    loss_g.backward();
    let g_first = gvs.variables()["model.1.weight"].grad();
    assert!(rel(&g_first, &get("grad_G_first")) < 1e-4, "grad G: {}", rel(&g_first, &get("grad_G_first")));
    let f_first = fvs.variables()["mlp_0.0.weight"].grad();
    assert!(rel(&f_first, &get("grad_F_first")) < 1e-4, "grad F: {}", rel(&f_first, &get("grad_F_first")));
}

#[test]
fn patch_ids_are_seeded_distinct_and_bounded() {
    let a = patch_ids(&mut derived_rng(1, "ids", 0), 100, 30);
    assert_eq!(a, patch_ids(&mut derived_rng(1, "ids", 0), 100, 30));
    let v: Vec<i64> = Vec::try_from(&a).expect("ids");
    let mut s = v.clone();
    s.sort();
    s.dedup();
    assert_eq!((v.len(), s.len()), (30, 30), "distinct");
    assert!(v.iter().all(|&i| (0..100).contains(&i)));
    assert_eq!(patch_ids(&mut derived_rng(1, "ids", 0), 10, 256).size(), [10], "fewer positions than patches");
}
