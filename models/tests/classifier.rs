//! Classifiers that judge samples: shapes, config checks, learning synthetic patterns, and (ignored by
//! default) the real-MNIST target of ≥ 98 % held-out accuracy from 9,000 training digits.

use ganzoo_models::classifier::{
    accuracy, check_inputs, per_class_accuracy, predict, train_classifier, Classifier,
    ClassifierConfig,
};
use ganzoo_models::rng::{derived_rng, randn};
use rand::Rng;
use tch::{nn, Device, Kind, Tensor};

const CPU: Device = Device::Cpu;

/// Synthetic 3 × 32 × 32 images with two attributes: pattern (0 horizontal stripes, 1 vertical stripes,
/// 2 a centered square, 3 a diagonal) and color (the channel it is drawn in), plus noise.
fn patterns(n: i64, seed: u64) -> (Tensor, Tensor) {
    let mut rng = derived_rng(seed, "patterns", 0);
    let s = 32usize;
    let mut xs = vec![-1f32; n as usize * 3 * s * s];
    let mut ys = vec![0i64; n as usize * 2];
    for i in 0..n as usize {
        let pat = rng.gen_range(0..4usize);
        let col = rng.gen_range(0..3usize);
        let off = rng.gen_range(0..4usize);
        ys[2 * i] = pat as i64;
        ys[2 * i + 1] = col as i64;
        for r in 0..s {
            for c in 0..s {
                let on = match pat {
                    0 => (r + off) % 8 < 4,
                    1 => (c + off) % 8 < 4,
                    2 => (8 + off..24 + off).contains(&r) && (8..24).contains(&c),
                    _ => (r + 32 - c + off) % 8 < 3,
                };
                if on {
                    xs[((i * 3 + col) * s + r) * s + c] = 1.0;
                }
            }
        }
    }
    let x = Tensor::from_slice(&xs).reshape([n, 3, 32, 32]);
    let noise = randn(&mut rng, &[n, 3, 32, 32], CPU) * 0.3;
    (x + noise, Tensor::from_slice(&ys).reshape([n, 2]))
}

#[test]
fn output_shapes_for_each_size() {
    for (size, stages) in [(28, 5), (32, 5), (64, 6), (96, 7), (128, 7)] {
        let vs = nn::VarStore::new(CPU);
        let net = Classifier::new(&vs.root(), 3, size, &[3, 5, 2, 4], 8).expect("builds");
        let names: Vec<String> = vs.variables().keys().cloned().collect();
        let convs = names.iter().filter(|n| n.ends_with("conv.weight")).count();
        assert_eq!(convs, stages, "size {size}");
        let x = randn(&mut derived_rng(1, "x", 0), &[2, 3, size, size], CPU);
        let out = net.forward_t(&x, false);
        let shapes: Vec<Vec<i64>> = out.iter().map(|t| t.size()).collect();
        assert_eq!(shapes, vec![vec![2, 3], vec![2, 5], vec![2, 2], vec![2, 4]]);
        assert_eq!(predict(&net, &x, 1).size(), vec![2, 4]);
    }
}

#[test]
fn config_checks_name_every_problem() {
    let cfg = ClassifierConfig { width: 0 };
    let problems = cfg.check(0, 16, &[1, 3]);
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(problems[0].contains("width"));
    assert!(problems.iter().any(|p| p.contains("channels")));
    assert!(problems.iter().any(|p| p.contains("size")));
    assert!(problems.iter().any(|p| p.contains("heads[0]")));
    assert!(ClassifierConfig::default().check(1, 28, &[]).len() == 1);
    let vs = nn::VarStore::new(CPU);
    assert!(Classifier::new(&vs.root(), 1, 200, &[10], 8).is_err());
    let y: ClassifierConfig = serde_json::from_str(r#"{"width": 16}"#).expect("parses");
    assert_eq!(y.width, 16);
    assert!(serde_json::from_str::<ClassifierConfig>(r#"{"widht": 16}"#).is_err());
}

#[test]
fn same_path_gives_the_same_weights_and_bad_labels_are_errors() {
    let build = || {
        let vs = nn::VarStore::new(CPU);
        let net = Classifier::new(&vs.root(), 1, 28, &[10], 8).expect("builds");
        let x = randn(&mut derived_rng(2, "x", 0), &[3, 1, 28, 28], CPU);
        let out = tch::no_grad(|| net.forward_t(&x, false).remove(0));
        (vs, net, out)
    };
    let (vs, net, a) = build();
    let (_, _, b) = build();
    assert_eq!((&a - &b).abs().max().double_value(&[]), 0.0);
    let x = Tensor::zeros([4, 1, 28, 28], (Kind::Float, CPU));
    let y_bad = Tensor::zeros([4, 2], (Kind::Int64, CPU));
    let mut rng = derived_rng(0, "t", 0);
    assert!(train_classifier(&vs, &net, &x, &y_bad, 1, 2, &mut rng).is_err());
    assert!(check_inputs(&net, &x, Some(&y_bad), 2).is_err());
    assert!(check_inputs(&net, &x, None, 0).is_err());
    let y = Tensor::zeros([4, 1], (Kind::Int64, CPU));
    assert!(check_inputs(&net, &x, Some(&y), 2).is_ok());
}

#[test]
fn learns_synthetic_attributes() {
    tch::set_num_threads(1);
    let (x, y) = patterns(384, 1);
    let (xt, yt) = patterns(256, 2);
    let vs = nn::VarStore::new(CPU);
    let net = Classifier::new(&vs.root(), 3, 32, &[4, 3], 8).expect("builds");
    let mut rng = derived_rng(3, "train", 0);
    train_classifier(&vs, &net, &x, &y, 120, 32, &mut rng).expect("trains");
    let acc = accuracy(&net, &xt, &yt, 100);
    assert_eq!(acc.len(), 2);
    assert!(acc.iter().all(|a| *a >= 0.95), "held-out accuracy {acc:?}");
    let per = per_class_accuracy(&net, &xt, &yt, 0, 100);
    assert_eq!(per.len(), 4);
    assert!(per.iter().all(|a| *a >= 0.85), "per-class {per:?}");
    assert!(per_class_accuracy(&net, &xt, &yt, 5, 100).is_empty());
}

/// User + system CPU seconds of this process (Linux /proc), so timings mean something on a shared machine.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of stat(5), i.e. 11 and 12 after the command name.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

fn read_idx(path: &str, header: usize) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    bytes[header..].to_vec()
}

/// The target the lead checks: trained on 9,000 real MNIST digits, ≥ 98 % on the other 1,000.
/// Run: cargo test -p ganzoo-models --release --test classifier -- --ignored --nocapture
#[test]
#[ignore = "needs .ganzoo-cache/mnist (10,000 real digits) and ~30 s"]
fn mnist_held_out_accuracy() {
    tch::set_num_threads(1);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../.ganzoo-cache/mnist");
    let images = read_idx(&format!("{dir}/images-idx3-ubyte"), 16);
    let labels = read_idx(&format!("{dir}/labels-idx1-ubyte"), 8);
    let n = labels.len() as i64;
    assert_eq!(images.len() as i64, n * 784);
    let x = (Tensor::from_slice(&images)
        .reshape([n, 1, 28, 28])
        .to_kind(Kind::Float)
        / 127.5)
        - 1.0;
    let y = Tensor::from_slice(&labels)
        .to_kind(Kind::Int64)
        .reshape([n, 1]);
    let (xtr, ytr) = (x.narrow(0, 0, 9000), y.narrow(0, 0, 9000));
    let (xte, yte) = (x.narrow(0, 9000, n - 9000), y.narrow(0, 9000, n - 9000));
    let steps: i64 = std::env::var("MNIST_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let batch: i64 = std::env::var("MNIST_BATCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let width: i64 = std::env::var("MNIST_WIDTH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let vs = nn::VarStore::new(CPU);
    let net = Classifier::new(&vs.root(), 1, 28, &[10], width).expect("builds");
    let cpu0 = cpu_seconds();
    let t0 = std::time::Instant::now();
    let mut rng = derived_rng(0, "mnist", 0);
    train_classifier(&vs, &net, &xtr, &ytr, steps, batch, &mut rng).expect("trains");
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let acc = accuracy(&net, &xte, &yte, 500)[0];
    let per = per_class_accuracy(&net, &xte, &yte, 0, 500);
    println!(
        "MNIST: {steps} steps × {batch}, width {width}: held-out accuracy {:.2} % in {secs:.1} s ({cpu:.1} s CPU); per class {:?}",
        acc * 100.0,
        per.iter().map(|a| (a * 1000.0).round() / 10.0).collect::<Vec<_>>()
    );
    assert!(acc >= 0.98, "held-out accuracy {acc}");
}
