//! Every family × every engine option: each trains 3 steps from its YAML config on its smallest data and resumes
//! bitwise to 4 (a fresh family restored from step 3's state and stepped once equals 4 uninterrupted steps,
//! tensor for tensor); bf16 rows resume exactly too and stay finite. And the combinations that do not go
//! together are refused by key with the reason.
use ganzoo_pipelines::config::load::{from_value, merge, parse_yaml};
use ganzoo_pipelines::engine::Trainer;
use ganzoo_pipelines::families::Config;
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Tensor};

/// Each family's smallest run (2 classes of generated digits-like images for cgan, so no download is needed).
fn families(dir: &Path) -> Vec<(&'static str, String)> {
    let classes = dir.join("classes");
    vec![
        ("gan", "data: {kind: shapes, size: 28, train_count: 16, test_count: 8}\nmodel: {family: gan, z_dim: 8, generator: {arch: dcgan, ngf: 4}, discriminator: {arch: dcgan, ndf: 4}}".into()),
        ("cgan", format!("data: {{kind: image_folder, root: '{}', size: 28, channels: 1}}\nmodel: {{family: cgan, z_dim: 8, generator: {{arch: dcgan, ngf: 4}}, discriminator: {{arch: dcgan, ndf: 4}}}}", classes.display())),
        ("gan_cls", "data: {kind: shapes, size: 28, train_count: 16, test_count: 8}\nmodel:\n  family: gan_cls\n  z_dim: 8\n  generator: {arch: dcgan, ngf: 4, cond_proj: 4}\n  discriminator: {arch: dcgan, ndf: 4, cond_proj: 4}\n  heads: split\n  interpolation: 1.0\n  text: {encoder: {kind: trainable, network: {arch: gru, embed_dim: 8, hidden: 8}, dim: 8, pretrain_steps: 2}, captions_per_image: 2}".into()),
        ("stackgan", "data: {kind: shapes, size: 64, train_count: 16, test_count: 8}\nmodel:\n  family: stackgan\n  net: {z_dim: 4, ef_dim: 4, gf_dim: 4, df_dim: 2, r_num: 1, stage1_size: 16}\n  text: {encoder: {kind: trainable, network: {arch: gru, embed_dim: 8, hidden: 8}, dim: 8, pretrain_steps: 2}, captions_per_image: 2}".into()),
        ("cyclegan", "data: {kind: shapes2, size: 16, train: 8, test: 4}\nmodel: {family: cyclegan, generator: {ngf: 4, n_blocks: 1}, discriminator: {ndf: 4, n_layers: 2}, pool_size: 3}".into()),
        ("unit", "data: {kind: shapes2, size: 16, train: 8, test: 4}\nmodel: {family: unit, generator: {dim: 4, n_downsample: 2, n_res: 2, shared_enc_blocks: 1, shared_dec_blocks: 1}, discriminator: {dim: 4, n_layer: 2, num_scales: 2}}".into()),
        ("vaegan", "data: {kind: shapes, size: 16, train_count: 16, test_count: 8}\nmodel: {family: vaegan, networks: {z_dim: 4, enc_channels: [4, 6], enc_fc: 8, dec_fc_channels: 6, dec_channels: [6, 4], dis_first: 3, dis_channels: [4, 6], dis_fc: 8, feature_conv: 3}}".into()),
    ]
}

/// The engine options, one per row.
const ROWS: [(&str, &str); 11] = [
    ("hinge", "loss: {adversarial: hinge}"),
    ("wgan_gp", "loss: {adversarial: wasserstein, gradient_penalty: 10}"),
    ("r1", "loss: {r1: 1.0}"),
    ("weight_clip", "loss: {adversarial: wasserstein, weight_clip: 0.05}"),
    ("spectral_norm", "loss: {spectral_norm: true}"),
    ("ema", "train: {ema: 0.9}"),
    ("grad_clip", "train: {grad_clip: 1.0}"),
    ("max_norm", "train: {max_norm: 1.9365}"),
    ("diffaugment", "train: {diffaugment: [color, translation, cutout]}"),
    ("accumulate", "train: {accumulate: 2}"),
    ("bf16", "train: {precision: bf16}"),
];

fn config(base: &str, row: &str) -> Config {
    let mut v = parse_yaml(&format!("name: m\nseed: 3\ndevice: cpu\ntrain: {{batch_size: 4, steps: 4}}\n{base}")).expect("base parses");
    merge(&mut v, parse_yaml(row).expect("row parses"));
    from_value::<Config>(v, &[], &[]).expect("config")
}

/// Two classes of 16×16 gray images (read at 28×28) (a bright and a dark square at random places).
fn write_classes(dir: &Path) {
    for (c, level) in [("bright", 230u8), ("dark", 40u8)] {
        let d = dir.join("classes").join(c);
        std::fs::create_dir_all(&d).unwrap();
        for k in 0..6u32 {
            let img = image::GrayImage::from_fn(16, 16, |x, y| image::Luma([if (x + k) % 16 < 8 && (y + 2 * k) % 16 < 8 { level } else { 128 }]));
            img.save(d.join(format!("{k}.png"))).unwrap();
        }
    }
}

/// Deep copies of a trainer's state (the live tensors keep training).
fn snapshot(state: Vec<(String, Tensor)>) -> BTreeMap<String, Tensor> {
    state.into_iter().map(|(k, t)| (k, t.detach().copy())).collect()
}

/// Trains `cfg` for `steps` steps from scratch, or from `from` (state after `start` steps); returns the state.
fn train(cfg: &Config, dir: &Path, start: i64, steps: i64, from: Option<&BTreeMap<String, Tensor>>) -> BTreeMap<String, Tensor> {
    let mut fam = cfg.build(Device::Cpu, true, Some(dir)).unwrap_or_else(|e| panic!("build: {e}"));
    let mut t = Trainer::new(fam.as_ref(), &cfg.settings(), Device::Cpu).expect("trainer");
    if let Some(state) = from {
        let map = state.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect();
        t.restore(fam.as_mut(), &map, "step 3").unwrap_or_else(|e| panic!("restore: {e}"));
    }
    for step in start..steps {
        t.scale_lr(cfg.train.lr_schedule.factor(step, cfg.train.steps));
        let logs = t.step(fam.as_mut(), step).unwrap_or_else(|e| panic!("step {step}: {e}"));
        assert!(logs.values().all(|v| v.is_finite()), "step {step}: {logs:?}");
    }
    snapshot(t.state(fam.as_ref()))
}

fn check_family(family: &str) {
    // One intra-op thread: the tests of this file run side by side on two cores.
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    write_classes(dir.path());
    let (_, base) = families(dir.path()).into_iter().find(|(f, _)| *f == family).expect("family");
    for (row, yaml) in ROWS {
        let cfg = config(&base, yaml);
        let problems = cfg.problems();
        assert!(problems.is_empty(), "{family} × {row}: {problems:?}");
        let run = dir.path().join(row); // the tokenizer a trainable text encoder keeps
        let full = train(&cfg, &run, 0, 4, None);
        let at3 = train(&cfg, &run, 0, 3, None);
        let resumed = train(&cfg, &run, 3, 4, Some(&at3));
        assert_eq!(full.keys().collect::<Vec<_>>(), resumed.keys().collect::<Vec<_>>(), "{family} × {row}");
        for (k, a) in &full {
            assert!(a.equal(&resumed[k]), "{family} × {row}: {k} differs after resuming at step 3");
            if a.is_floating_point() {
                assert!(a.isfinite().all().int64_value(&[]) == 1, "{family} × {row}: {k} is not finite");
            }
        }
        if row == "ema" {
            assert!(full.keys().any(|k| k.contains("_ema.")), "{family}: EMA weights in the checkpoint");
        }
        if row == "spectral_norm" {
            assert!(full.keys().any(|k| k.ends_with("weight_orig")), "{family}: spectrally normalized D");
        }
    }
}

#[test]
fn gan_trains_and_resumes_with_every_option() {
    check_family("gan");
}

#[test]
fn cgan_trains_and_resumes_with_every_option() {
    check_family("cgan");
}

#[test]
fn gan_cls_trains_and_resumes_with_every_option() {
    check_family("gan_cls");
}

#[test]
fn stackgan_trains_and_resumes_with_every_option() {
    check_family("stackgan");
}

#[test]
fn cyclegan_trains_and_resumes_with_every_option() {
    check_family("cyclegan");
}

#[test]
fn unit_trains_and_resumes_with_every_option() {
    check_family("unit");
}

#[test]
fn vaegan_trains_and_resumes_with_every_option() {
    check_family("vaegan");
}

#[test]
fn combinations_that_do_not_go_together_are_refused_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let (_, base) = families(dir.path()).into_iter().next().expect("gan");
    for (row, needle) in [
        ("loss: {weight_clip: 0.01}", "loss.weight_clip: weight clipping is the WGAN critic's constraint; it needs loss.adversarial: wasserstein"),
        ("loss: {r1: 1.0, gradient_penalty: 10}", "loss.r1: choose either the R1 penalty or loss.gradient_penalty, not both"),
        ("train: {accumulate: 0}", "train.accumulate: must be at least 1, got 0"),
        ("loss: {r1: 1.0, r1_every: 0}", "loss.r1_every: must be at least 1, got 0"),
        ("train: {diffaugment: [color, color]}", "train.diffaugment: color is listed twice"),
    ] {
        let problems = config(&base, row).problems();
        assert!(problems.iter().any(|p| p.contains(needle)), "{row}: {problems:?}");
    }
    let points = config("data: {kind: ring8}\nmodel: {family: gan, generator: {arch: mlp}, discriminator: {arch: mlp}}", "train: {diffaugment: [translation]}");
    assert!(points.problems().iter().any(|p| p.contains("train.diffaugment: DiffAugment transforms images; data.kind ring8 is 2-D points")));
}


