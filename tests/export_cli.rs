//! `ganzoo export`: a tiny CycleGAN's generators and the cgan / gan_cls G as TorchScript, run by the venv's PyTorch
//! (tests/export_check.py) and compared with ganzoo's own outputs (translators also at twice the traced size);
//! the reference-named state_dict loaded strictly by a PyTorch rebuild of the reference generator
//! (tests/reference_resnet.py) and round-tripped through `ganzoo import`; and the refusals (exit 2, nothing
//! written).
mod common;
use common::{ganzoo, json, read, repo, write};
use std::path::Path;
use tch::{Kind, Tensor};

/// The tiny CycleGAN of tests/cyclegan_cli.rs, with an EMA of the generators (what export must take).
const TINY: &str = "name: cg\nseed: 2\nthreads: 1\ndata: {kind: shapes2, size: 16, train: 40, test: 6}\nmodel:\n  family: cyclegan\n  generator: {ngf: 4, n_blocks: 1}\n  discriminator: {ndf: 4, n_layers: 2}\n  pool_size: 3\nloss: {adversarial: lsgan}\ntrain:\n  steps: 8\n  batch_size: 2\n  log_every: 4\n  sample_every: 4\n  checkpoint_every: 4\n  ema: 0.5\neval: {samples: 6}\n";

/// Trains TINY into `dir/r`.
fn train(dir: &Path) {
    write(dir, "c.yaml", TINY);
    let (code, _, err) = ganzoo(dir, &["train", "c.yaml", "--out", "r", "--quiet"]);
    assert_eq!(code, 0, "{err}");
}

/// Three 16×16 PNGs in `dir/in`; returns them as one (3, 3, 16, 16) batch in [-1, 1], read as ganzoo reads them.
fn inputs(dir: &Path) -> Tensor {
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let mut xs = Vec::new();
    for k in 0..3u32 {
        let img = image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([(x * 15 + k * 40) as u8, (y * 15) as u8, ((x * y + k * 70) % 256) as u8]));
        img.save(input.join(format!("{k}.png"))).unwrap();
        xs.push(Tensor::from_slice(img.as_raw()).view([16, 16, 3]).permute([2, 0, 1]).to_kind(Kind::Float) / 127.5 - 1.0);
    }
    Tensor::stack(&xs, 0)
}

/// ganzoo's own translation of `x` by run `run`'s newest checkpoint (EMA weights where kept), as `translate`
/// computes it.
fn own_translation(run: &Path, x: &Tensor, a2b: bool) -> Tensor {
    let cfg = ganzoo_pipelines::run::run_config(run, &[]).unwrap().config;
    let fam = ganzoo_pipelines::run::build(&cfg, false, Some(run)).unwrap();
    let (_, tensors) = ganzoo_pipelines::checkpoint::load_latest(&run.join("checkpoints")).unwrap().unwrap();
    ganzoo_pipelines::engine::restore_networks(fam.as_ref(), &tensors, "test").unwrap();
    fam.translator().unwrap().translate(x, a2b)
}

/// Runs `module` with the venv's PyTorch (tests/export_check.py) on each named input; returns the outputs by name.
fn pytorch(dir: &Path, module: &str, inputs: &[(&str, &Tensor)]) -> Vec<(String, Tensor)> {
    python(dir, "export_check.py", module, inputs)
}

/// Runs `tests/SCRIPT FILE IN OUT` with the venv's Python on the named inputs; returns the outputs by name.
fn python(dir: &Path, script: &str, file: &str, inputs: &[(&str, &Tensor)]) -> Vec<(String, Tensor)> {
    let (ins, outs) = (dir.join("py_in.safetensors"), dir.join("py_out.safetensors"));
    Tensor::write_safetensors(inputs, &ins).unwrap();
    let python = repo().join(".venv/bin/python");
    let out = std::process::Command::new(&python)
        .arg(repo().join("tests").join(script))
        .arg(dir.join(file))
        .arg(&ins)
        .arg(&outs)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (bash .ci/dev sets up the .venv)", python.display()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Tensor::read_safetensors(&outs).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

fn get<'a>(outs: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &outs.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no output {name}")).1
}

#[test]
fn torchscript_generators_run_in_pytorch_like_ganzoo() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train(d);
    let x = inputs(d);
    let (code, _, err) = ganzoo(d, &["translate", "r", "--direction", "a2b", "in", "out"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = ganzoo(d, &["export", "r", "--net", "G_A", "--out", "e/g_a.pt", "--json"]);
    assert_eq!(code, 0, "{err}");
    let r = json(&out);
    let meta = json(&std::fs::read_to_string(d.join("e/g_a.json")).unwrap());
    for m in [&r, &meta] {
        assert_eq!((m["family"].as_str(), m["net"].as_str(), m["config"].as_str()), (Some("cyclegan"), Some("G_A"), Some("cg")), "{m}");
        assert_eq!((m["checkpoint_step"].as_i64(), m["ema_weights"].as_bool()), (Some(8), Some(true)), "{m}");
        assert_eq!(m["inputs"][0]["name"], "x", "{m}");
        assert_eq!(m["inputs"][0]["traced_shape"], serde_json::json!([1, 3, 16, 16]), "{m}");
        assert_eq!(m["inputs"][0]["range"], serde_json::json!([-1.0, 1.0]), "{m}");
    }
    // The traced size, a batch of three, and twice the traced size (a batch of two): PyTorch's output equals
    // ganzoo's (the EMA weights, evaluation mode) within 1e-5.
    tch::manual_seed(5);
    let x32 = Tensor::rand([2, 3, 32, 32], (Kind::Float, tch::Device::Cpu)) * 2.0 - 1.0;
    let outs = pytorch(d, "e/g_a.pt", &[("x16", &x), ("x32", &x32)]);
    let y16 = get(&outs, "x16");
    assert!(max_diff(y16, &own_translation(&d.join("r"), &x, true)) <= 1e-5);
    assert!(max_diff(get(&outs, "x32"), &own_translation(&d.join("r"), &x32, true)) <= 1e-5);
    // ... and, quantized as ganzoo writes images, `translate`'s PNGs (within one level: rounding at a tie).
    for k in 0..3 {
        let png = image::open(d.join(format!("out/{k}.png"))).unwrap().to_rgb8();
        let saved = Tensor::from_slice(png.as_raw()).view([16, 16, 3]).permute([2, 0, 1]).to_kind(Kind::Float);
        let quantized = ((y16.get(k).clamp(-1.0, 1.0) + 1.0) * 127.5).round();
        assert!(max_diff(&saved, &quantized) <= 1.0, "{k}.png");
    }
    // G_B is B → A.
    let (code, _, err) = ganzoo(d, &["export", "r", "--net", "G_B", "--out", "e/g_b.pt"]);
    assert_eq!(code, 0, "{err}");
    let outs = pytorch(d, "e/g_b.pt", &[("x16", &x)]);
    assert!(max_diff(get(&outs, "x16"), &own_translation(&d.join("r"), &x, false)) <= 1e-5);
    // --force replaces both files (the module itself holds no traced size: the same bytes at 8 as at 16).
    let (code, _, err) = ganzoo(d, &["export", "r", "--net", "G_A", "--out", "e/g_a.pt", "--size", "8", "--force", "--json"]);
    assert_eq!(code, 0, "{err}");
    let meta = json(&std::fs::read_to_string(d.join("e/g_a.json")).unwrap());
    assert_eq!(meta["inputs"][0]["traced_shape"], serde_json::json!([1, 3, 8, 8]), "{meta}");
    assert!(!common::tree(d).iter().any(|p| common::is_temp(p)), "no temp files left");
}

/// ganzoo's own G(z, c) of run `run`'s newest checkpoint (EMA weights where kept).
fn own_generation(run: &Path, z: &Tensor, c: &Tensor) -> Tensor {
    let cfg = ganzoo_pipelines::run::run_config(run, &[]).unwrap().config;
    let fam = ganzoo_pipelines::run::build(&cfg, false, Some(run)).unwrap();
    let (_, tensors) = ganzoo_pipelines::checkpoint::load_latest(&run.join("checkpoints")).unwrap().unwrap();
    ganzoo_pipelines::engine::restore_networks(fam.as_ref(), &tensors, "test").unwrap();
    fam.generator().unwrap().generate(z, c)
}

/// The conditional generators of `cgan` (z, one-hot class) and `gan_cls` (z, sentence vector): PyTorch's output of
/// the exported G equals ganzoo's on the traced batch size and on another.
#[test]
fn conditional_generators_run_in_pytorch_like_ganzoo() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The tiny configs of tests/cond_cli.rs (cgan on MNIST with dropout in G; gan_cls with batch norm in G).
    let cgan = "name: cg\nseed: 1\nthreads: 1\ndata: {kind: mnist}\nmodel:\n  family: cgan\n  z_dim: 10\n  noise: uniform\n  generator: {arch: mlp, z_hidden: 16, cond_hidden: 16, dropout: 0.5}\n  discriminator: {arch: maxout, x_units: 16, x_pieces: 2, cond_units: 8, cond_pieces: 2, joint_units: 16, joint_pieces: 2, dropout: 0.5}\ntrain:\n  steps: 4\n  batch_size: 20\n  log_every: 2\n  sample_every: 2\n  checkpoint_every: 2\neval: {samples: 100}\n";
    let t2i = "name: t2i\nseed: 4\nthreads: 1\ndata: {kind: shapes, size: 32, train_count: 228, test_count: 114}\nmodel:\n  family: gan_cls\n  z_dim: 8\n  generator: {arch: dcgan, ngf: 8, cond_proj: 8, cond_bn: true}\n  discriminator: {arch: dcgan, ndf: 8, cond_proj: 8}\n  text:\n    encoder: {kind: trainable, network: {arch: gru, embed_dim: 16, hidden: 16}, dim: 16, pretrain_steps: 4}\n    captions_per_image: 2\ntrain:\n  steps: 6\n  batch_size: 16\n  log_every: 3\n  sample_every: 3\n  checkpoint_every: 3\n  ema: 0.5\neval: {samples: 228}\n";
    for (name, config, z_dim, c_dim, image) in [("cg", cgan, 10, 10, [1, 28, 28]), ("t2i", t2i, 8, 16, [3, 32, 32])] {
        write(d, &format!("{name}.yaml"), config);
        let (code, _, err) = ganzoo(d, &["train", &format!("{name}.yaml"), "--out", name, "--quiet"]);
        assert_eq!(code, 0, "{name}: {err}");
        let module = format!("e/{name}_g.pt");
        let (code, out, err) = ganzoo(d, &["export", name, "--net", "G", "--out", &module, "--json"]);
        assert_eq!(code, 0, "{name}: {err}");
        let meta = json(&out);
        assert_eq!((meta["inputs"][0]["name"].as_str(), meta["inputs"][1]["name"].as_str()), (Some("z"), Some("c")), "{meta}");
        assert_eq!(meta["inputs"][1]["shape"], serde_json::json!(["N", c_dim]), "{meta}");
        tch::manual_seed(9);
        let z = Tensor::rand([5, z_dim], (Kind::Float, tch::Device::Cpu)) * 2.0 - 1.0;
        let c = match name {
            "cg" => Tensor::from_slice(&[0i64, 3, 7, 9, 3]).one_hot(10).to_kind(Kind::Float),
            _ => Tensor::randn([5, c_dim], (Kind::Float, tch::Device::Cpu)),
        };
        let outs = pytorch(d, &module, &[("g:0", &z), ("g:1", &c)]);
        let own = own_generation(&d.join(name), &z, &c);
        assert_eq!(own.size()[1..], image, "{name}");
        assert!(max_diff(get(&outs, "g"), &own) <= 1e-5, "{name}");
    }
    // --size applies to translators only.
    let (code, _, err) = ganzoo(d, &["export", "cg", "--net", "G", "--out", "e/x.pt", "--size", "32"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--size 32") && !d.join("e/x.pt").exists(), "{err}");
}

/// CUT's G and pix2pix's G (evaluation mode) as TorchScript, at the traced size and twice it; pix2pix's default
/// paper-style inference (dropout on) is refused.
#[test]
fn one_way_translators_run_in_pytorch_like_ganzoo() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The tiny configs of tests/translation_cli.rs.
    let p2p = "name: p2p\nseed: 2\nthreads: 1\ndata: {kind: shapes2, size: 32, train: 40, test: 6}\nmodel:\n  family: pix2pix\n  generator: {ngf: 4, num_downs: 5}\n  discriminator: {ndf: 4, n_layers: 2}\n  inference: eval\ntrain:\n  steps: 4\n  batch_size: 2\n  log_every: 4\n  sample_every: 4\n  checkpoint_every: 4\neval: {samples: 6}\n";
    let cut = "name: cut\nseed: 2\nthreads: 1\ndata: {kind: shapes2, size: 32, train: 40, test: 6}\nmodel:\n  family: cut\n  generator: {ngf: 4, n_blocks: 5}\n  discriminator: {ndf: 4, n_layers: 2}\n  num_patches: 32\n  netf_nc: 16\nloss: {adversarial: lsgan}\ntrain:\n  steps: 4\n  batch_size: 2\n  log_every: 4\n  sample_every: 4\n  checkpoint_every: 4\neval: {samples: 6}\n";
    tch::manual_seed(7);
    let x32 = Tensor::rand([2, 3, 32, 32], (Kind::Float, tch::Device::Cpu)) * 2.0 - 1.0;
    let x64 = Tensor::rand([1, 3, 64, 64], (Kind::Float, tch::Device::Cpu)) * 2.0 - 1.0;
    for (name, config) in [("p2p", p2p), ("cut", cut)] {
        write(d, &format!("{name}.yaml"), config);
        let (code, _, err) = ganzoo(d, &["train", &format!("{name}.yaml"), "--out", name, "--quiet"]);
        assert_eq!(code, 0, "{name}: {err}");
        let module = format!("e/{name}_g.pt");
        let (code, _, err) = ganzoo(d, &["export", name, "--net", "G", "--out", &module]);
        assert_eq!(code, 0, "{name}: {err}");
        let outs = pytorch(d, &module, &[("x32", &x32), ("x64", &x64)]);
        for (k, x) in [("x32", &x32), ("x64", &x64)] {
            assert!(max_diff(get(&outs, k), &own_translation(&d.join(name), x, true)) <= 1e-5, "{name} {k}");
        }
    }
    // pix2pix's default inference (the paper's: dropout on at test time) has no faithful trace.
    write(d, "paper.yaml", &p2p.replace("  inference: eval\n", ""));
    let (code, _, err) = ganzoo(d, &["train", "paper.yaml", "--out", "paper", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = ganzoo(d, &["export", "paper", "--net", "G", "--out", "e/paper.pt"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("model.inference: eval") && !d.join("e/paper.pt").exists(), "{err}");
}

#[test]
fn reference_export_imports_back_to_the_same_translations() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train(d);
    let _ = inputs(d);
    let (code, _, err) = ganzoo(d, &["export", "r", "--net", "G_A", "--format", "reference", "--out", "g_a.safetensors"]);
    assert_eq!(code, 0, "{err}");
    let st = Tensor::read_safetensors(d.join("g_a.safetensors")).unwrap();
    assert!(st.iter().any(|(n, _)| n == "model.1.weight"), "the reference's key names");
    assert_eq!(json(&std::fs::read_to_string(d.join("g_a.json")).unwrap())["format"], "reference");
    // A PyTorch rebuild of the reference ResNet generator loads it strictly and translates as ganzoo does.
    tch::manual_seed(3);
    let x = Tensor::rand([2, 3, 16, 16], (Kind::Float, tch::Device::Cpu)) * 2.0 - 1.0;
    let outs = python(d, "reference_resnet.py", "g_a.safetensors", &[("x", &x)]);
    assert!(max_diff(get(&outs, "x"), &own_translation(&d.join("r"), &x, true)) <= 1e-5);
    let (code, _, err) = ganzoo(d, &["import", "c.yaml", "--weights", "G_A=g_a.safetensors", "--out", "imp"]);
    assert_eq!(code, 0, "{err}");
    for run in ["r", "imp"] {
        let (code, _, err) = ganzoo(d, &["translate", run, "--direction", "a2b", "in", &format!("out_{run}")]);
        assert_eq!(code, 0, "{err}");
    }
    for k in 0..3 {
        let name = format!("{k}.png");
        assert_eq!(read(&d.join("out_r").join(&name)), read(&d.join("out_imp").join(&name)), "{name}");
    }
}

#[test]
fn bad_exports_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train(d);
    let refused = |args: &[&str], says: &[&str]| {
        let (code, _, err) = ganzoo(d, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        for s in says {
            assert!(err.contains(s), "{args:?}: {err} lacks {s}");
        }
        assert!(!d.join("e").exists(), "{args:?}: nothing written");
    };
    refused(&["export", "r", "--net", "G_X", "--out", "e/g.pt"], &["--net G_X", "G_A, G_B, D_A, D_B"]);
    refused(&["export", "r", "--net", "D_A", "--out", "e/d.pt"], &["D_A", "no TorchScript export", "cyclegan G_A and G_B"]);
    refused(&["export", "r", "--net", "G_A", "--out", "e/g.onnx"], &["--out e/g.onnx", ".pt"]);
    refused(&["export", "r", "--net", "G_A", "--out", "e/g.pt", "--size", "18"], &["--size 18", "multiples of 4"]);
    // A run without checkpoints.
    std::fs::create_dir(d.join("empty")).unwrap();
    std::fs::copy(d.join("r/config.resolved.yaml"), d.join("empty/config.resolved.yaml")).unwrap();
    refused(&["export", "empty", "--net", "G_A", "--out", "e/g.pt"], &["no checkpoint"]);
    // An existing output (either file) without --force.
    std::fs::create_dir(d.join("taken")).unwrap();
    std::fs::write(d.join("taken/g.json"), "mine").unwrap();
    let (code, _, err) = ganzoo(d, &["export", "r", "--net", "G_A", "--out", "taken/g.pt"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("taken/g.json: already exists") && err.contains("--force"), "{err}");
    assert_eq!(read(&d.join("taken/g.json")), b"mine");
    assert!(!d.join("taken/g.pt").exists());
    // A family with neither export: a GAN on 2-D points.
    write(d, "ring.yaml", common::TINY_RING);
    let (code, _, err) = ganzoo(d, &["train", "ring.yaml", "--out", "ring", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    refused(&["export", "ring", "--net", "G", "--out", "e/g.pt"], &["gan", "no TorchScript export", "supported"]);
    refused(&["export", "ring", "--net", "G", "--format", "reference", "--out", "e/g.safetensors"], &["no reference layout", "cyclegan"]);
}
