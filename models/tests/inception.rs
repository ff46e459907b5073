//! The FID Inception-v3 feature network against PyTorch running the same TorchScript: golden pool3 features
//! from `models/golden/inception_golden.py` (run with the project's `.venv`), chunked and uint8 input giving the
//! same features, the shape checks, and load errors.
//!
//! Needs `default_1.pt` in `$GANZOO_CACHE/inception` (default `<workspace>/.ganzoo-cache/inception`), put there
//! by `ganzoo data get inception --cache DIR` (`bash .ci/dev test` does it first); without it these tests fail
//! and say so, unless `GANZOO_SKIP_INCEPTION=1` asks to skip them.
mod common;
use common::max_diff;

use std::path::{Path, PathBuf};
use std::time::Instant;

use ganzoo_models::inception::{sha1_of_file, FeatureNet, FID_INCEPTION_SHA1, INPUT_SIZE};
use ganzoo_models::ModelError;
use tch::{Device, Kind, Tensor};

/// `default_1.pt` in the cache, or `None` when the user asked to skip; panics with instructions when missing.
fn weights() -> Option<PathBuf> {
    common::cached_file("inception/default_1.pt", "the FID Inception-v3 network", "inception", "GANZOO_SKIP_INCEPTION")
}

/// The five images of `inception_golden.py` (its `images()`, same integer formulas): (5, 3, 299, 299) float32
/// pixel values in [0, 255].
fn images() -> Tensor {
    let s = INPUT_SIZE;
    let pixel = |i: i64, c: i64, y: i64, x: i64| -> i64 {
        match i {
            0 => [255 * x / 298, 255 * y / 298, 255 * (x + y) / 596][c as usize],
            1 => {
                let k = (x / 23 + y / 23) % 2;
                [255 * k, 255 * (1 - k), 128][c as usize]
            }
            2 => (((x - 149).pow(2) + (y - 149).pow(2)) / 64 + 85 * c) % 256,
            3 => 128,
            _ => (7 * x + 13 * y + 50 * c) % 256,
        }
    };
    let mut v = Vec::with_capacity((5 * 3 * s * s) as usize);
    for i in 0..5 {
        for c in 0..3 {
            for y in 0..s {
                for x in 0..s {
                    v.push(pixel(i, c, y, x) as f32);
                }
            }
        }
    }
    Tensor::from_slice(&v).reshape([5, 3, s, s])
}

fn golden() -> Tensor {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/inception_golden.safetensors");
    let tensors = Tensor::read_safetensors(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    tensors.into_iter().find(|(k, _)| k == "features").expect("features in the golden file").1
}

#[test]
fn features_match_pytorch_and_do_not_depend_on_chunking_or_dtype() {
    let Some(file) = weights() else { return };
    let t0 = Instant::now();
    let net = FeatureNet::load(&file, Device::Cpu).unwrap();
    let loaded = t0.elapsed();
    assert_eq!(net.sha1(), FID_INCEPTION_SHA1);
    assert!(net.is_fid_reference());
    let d = net.describe();
    assert!(d.contains("default_1.pt") && d.contains(FID_INCEPTION_SHA1) && d.contains("x/128 - 1"), "{d}");

    let x = images();
    let want = golden();
    let t1 = Instant::now();
    let got = tch::no_grad(|| net.features(&x)).unwrap(); // (5, 2048)
    let ran = t1.elapsed();
    assert_eq!(got.size(), [5, 2048]);
    assert_eq!(got.kind(), Kind::Float);
    let scale = want.abs().max().double_value(&[]).max(1.0);
    let err = max_diff(&got, &want);
    eprintln!(
        "inception: max |ours - PyTorch| {err:.2e} (relative {:.2e} of max |feature| {scale:.3}); load {loaded:.2?}, \
         5 images {ran:.2?}",
        err / scale
    );
    assert!(err <= 1e-4 * scale, "features differ from PyTorch's by {err:e} (max |feature| {scale})");

    // Chunks of 2 (the last chunk 1 image), uint8 input: the same features, on the CPU, without a graph.
    let batched = net.features_batched(&x.to_kind(Kind::Uint8), 2).unwrap();
    assert_eq!((batched.size(), batched.device(), batched.requires_grad()), (vec![5, 2048], Device::Cpu, false));
    let err = max_diff(&batched, &want);
    assert!(err <= 1e-4 * scale, "chunked features differ by {err:e}");
    let empty = net.features_batched(&Tensor::zeros([0, 3, 299, 299], (Kind::Uint8, Device::Cpu)), 4).unwrap();
    assert_eq!(empty.size(), [0, 2048]);
}

#[test]
fn wrong_shapes_and_dtypes_are_errors_that_say_what_is_wrong() {
    let Some(file) = weights() else { return };
    let net = FeatureNet::load(&file, Device::Cpu).unwrap();
    let err = |x: Tensor| match net.features(&x) {
        Err(e @ ModelError::Shape(_)) => e.to_string(),
        other => panic!("expected a shape error, got {other:?}"),
    };
    let zeros = |shape: &[i64]| Tensor::zeros(shape, (Kind::Float, Device::Cpu));
    let e = err(zeros(&[2, 1, 299, 299]));
    assert!(e.contains("3 (RGB) channels, got 1"), "{e}");
    let e = err(zeros(&[2, 3, 256, 256]));
    assert!(e.contains("299×299") && e.contains("256×256") && e.contains("resize"), "{e}");
    let e = err(zeros(&[3, 299, 299]));
    assert!(e.contains("[3, 299, 299]"), "{e}");
    let e = err(Tensor::zeros([1, 3, 299, 299], (Kind::Bool, Device::Cpu)));
    assert!(e.contains("Bool"), "{e}");
    // features_batched checks the whole tensor first, and its batch size.
    assert!(net.features_batched(&zeros(&[4, 3, 300, 300]), 2).unwrap_err().to_string().contains("300×300"));
    assert!(net.features_batched(&zeros(&[1, 3, 299, 299]), 0).unwrap_err().to_string().contains("batch_size"));
}

#[test]
fn load_errors_name_the_file_and_the_fetch_command() {
    let dir = std::env::temp_dir().join(format!("ganzoo-inception-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("default_1.pt");
    let e = FeatureNet::load(&missing, Device::Cpu).unwrap_err();
    assert!(matches!(e, ModelError::File { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&missing.display().to_string()) && msg.contains("ganzoo data get inception"), "{msg}");

    let junk = dir.join("junk.pt");
    std::fs::write(&junk, b"not a TorchScript archive").unwrap();
    let msg = FeatureNet::load(&junk, Device::Cpu).unwrap_err().to_string();
    assert!(msg.contains("junk.pt") && msg.contains("TorchScript"), "{msg}");

    // SHA-1 test vectors (FIPS 180-1): "abc" and the empty message.
    let abc = dir.join("abc");
    std::fs::write(&abc, b"abc").unwrap();
    assert_eq!(sha1_of_file(&abc).unwrap(), "a9993e364706816aba3e25717850c26c9cd0d89d");
    std::fs::write(&abc, b"").unwrap();
    assert_eq!(sha1_of_file(&abc).unwrap(), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    std::fs::remove_dir_all(&dir).unwrap();
}
