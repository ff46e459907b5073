//! The FID resize protocols against their references (data/golden/resize_golden.py: PIL 12.1.1's bicubic on
//! mode-'F' images for `clean`, torch's bilinear `F.interpolate` for `legacy`) on real photos (crops of the CMP
//! facades as PIL decoded them, stored with the references; and whole facades JPEGs decoded here, when
//! `../shared/datasets/facades` exists) and on a synthetic zone plate the test rebuilds; plus the clip,
//! grayscale replication, batching and the errors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ganzoo_data::resize::{rgb8_planes, MAX_SIDE};
use ganzoo_data::{resize_batch, resize_bicubic_pil, resize_bilinear, resize_fid, ResizeProtocol};
use serde_json::Value;
use tch::{Kind, Tensor};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

fn facades_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/facades")
}

/// The golden cases (JSON) and outputs (`<case>.clean`, `<case>.legacy`, strided).
fn golden() -> (Vec<Value>, HashMap<String, Tensor>) {
    let dir = golden_dir();
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("resize_golden.json")).unwrap()).unwrap();
    let tensors = Tensor::read_safetensors(dir.join("resize_golden.safetensors")).unwrap().into_iter().collect();
    (meta["cases"].as_array().unwrap().clone(), tensors)
}

/// The synthetic image of resize_golden.py's `chirp`: (3, h, w) integers in [0, 255].
fn chirp(h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0f32; 3 * h * w];
    for y in 0..h {
        for x in 0..w {
            let (xi, yi) = (x as i64, y as i64);
            let v = [(xi * xi + 3 * yi * yi) / 7 % 256, (xi * yi + 5 * xi) / 3 % 256, ((xi / 2 + yi) % 2) * 255];
            for (c, v) in v.iter().enumerate() {
                out[(c * h + y) * w + x] = *v as f32;
            }
        }
    }
    out
}

fn crop(planes: &[f32], [c, h, w]: [usize; 3], ch: usize, cw: usize) -> Vec<f32> {
    (0..c).flat_map(|c| (0..ch).flat_map(move |y| (0..cw).map(move |x| planes[(c * h + y) * w + x]))).collect()
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// (mean, max) absolute difference on the [0, 1] scale between the full output `got` (3, oh, ow) taken at
/// every `stride`-th row and column and the stored reference.
fn errors(got: &[f32], [oh, ow]: [usize; 2], stride: usize, want: &Tensor) -> (f64, f64) {
    let sub: Vec<f32> = (0..3)
        .flat_map(|c| (0..oh).step_by(stride).flat_map(move |y| (0..ow).step_by(stride).map(move |x| (c, y, x))))
        .map(|(c, y, x)| got[(c * oh + y) * ow + x])
        .collect();
    let want: Vec<f32> = Vec::try_from(want.flatten(0, -1)).unwrap();
    assert_eq!(sub.len(), want.len(), "strided output and reference differ in size");
    let d: Vec<f64> = sub.iter().zip(&want).map(|(a, b)| f64::from(a - b).abs() / 255.0).collect();
    (d.iter().sum::<f64>() / d.len() as f64, d.iter().cloned().fold(0.0, f64::max))
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect()
}

/// How a case's input relates to the reference's.
#[derive(Clone, Copy, PartialEq)]
enum Input {
    /// The same pixels (stored crops, the synthetic image, or a file our decoder reads as PIL does).
    Same,
    /// A JPEG our decoder (the `image` crate) reads differently from PIL's libjpeg-turbo.
    OtherDecoder,
}

/// The input of a golden case, or None (with a note) when it is a facades file and the dataset is absent.
fn input(case: &Value, tensors: &HashMap<String, Tensor>) -> Option<(Vec<f32>, [usize; 3], Input)> {
    let src = &case["source"];
    if let Some(key) = src["stored_input"].as_str() {
        let t = &tensors[key];
        let s: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        return Some((Vec::try_from(t.to_kind(Kind::Float).flatten(0, -1)).unwrap(), [s[0], s[1], s[2]], Input::Same));
    }
    if let Some(file) = src["file"].as_str() {
        let path = facades_dir().join(file);
        if !path.exists() {
            eprintln!("note: {} not found; skipping the facades case {}", path.display(), case["name"]);
            return None;
        }
        let rgb = image::open(&path).unwrap().to_rgb8();
        let same = format!("{:016x}", fnv1a64(rgb.as_raw())) == src["decoded_fnv1a64"].as_str().unwrap();
        let shape = [3, rgb.height() as usize, rgb.width() as usize];
        return Some((rgb8_planes(&rgb), shape, if same { Input::Same } else { Input::OtherDecoder }));
    }
    let hw = usizes(&src["chirp"]);
    let full = chirp(hw[0], hw[1]);
    match src.get("crop") {
        Some(c) => {
            let c = usizes(c);
            Some((crop(&full, [3, hw[0], hw[1]], c[0], c[1]), [3, c[0], c[1]], Input::Same))
        }
        None => Some((full, [3, hw[0], hw[1]], Input::Same)),
    }
}

/// Runs every golden case through `f`. With the reference's input: mean ≤ 1e-3 (the bound, on
/// [0, 1]) and max ≤ `exact_max`. With a JPEG decoded differently (0.2–0.25 levels on average, up to 5, on
/// the facades): mean ≤ 2e-3, which the decoder alone nearly reaches; printed, to show the gap. Returns the
/// number of cases with the same input.
fn check_protocol(key: &str, exact_max: f64, f: impl Fn(&[f32], [usize; 3], [usize; 2]) -> Vec<f32>) -> usize {
    let (cases, tensors) = golden();
    let mut same = 0;
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let Some((planes, shape, how)) = input(case, &tensors) else { continue };
        assert_eq!(usizes(&case["in_hw"]), shape[1..]);
        let o = usizes(&case["out_hw"]);
        let out_hw = [o[0], o[1]];
        let got = f(&planes, shape, out_hw);
        let stride = case["stride"].as_u64().unwrap() as usize;
        let (mean, max) = errors(&got, out_hw, stride, &tensors[&format!("{name}.{key}")]);
        match how {
            Input::Same => {
                eprintln!("{key} {name}: mean |err| {mean:.2e}, max {max:.2e} (on [0, 1])");
                assert!(mean <= 1e-3 && max <= exact_max, "{key} {name}: mean {mean:e}, max {max:e}");
                same += 1;
            }
            Input::OtherDecoder => {
                eprintln!("{key} {name}: mean |err| {mean:.2e}, max {max:.2e} (on [0, 1]), JPEG decoded differently from PIL");
                assert!(mean <= 2e-3, "{key} {name}: mean {mean:e} with another JPEG decoder");
            }
        }
    }
    same
}

#[test]
fn clean_matches_pil_bicubic() {
    let same = check_protocol("clean", 1e-6, |p, s, o| resize_bicubic_pil(p, s, o).unwrap());
    assert!(same >= 8, "the stored crops and the synthetic cases always run");
}

#[test]
fn legacy_matches_torch_bilinear() {
    // libtorch's portable kernels (ATEN_CPU_CAPABILITY=default) round the bilinear weights differently: up to
    // 2e-6 here (5e-4 of a level), where the vector kernels match the reference exactly.
    let same = check_protocol("legacy", 1e-5, |p, s, o| resize_bilinear(p, s, o).unwrap());
    assert!(same >= 8);
}

#[test]
fn fid_protocol_clips_and_replicates_grayscale() {
    let shape = [3, 48, 64];
    let img = chirp(48, 64);
    let raw = resize_bicubic_pil(&img, shape, [97, 131]).unwrap();
    assert!(raw.iter().any(|v| *v < 0.0) && raw.iter().any(|v| *v > 255.0), "bicubic up-sampling overshoots");
    let clean = resize_fid(&img, shape, [97, 131], ResizeProtocol::Clean).unwrap();
    assert_eq!(clean, raw.iter().map(|v| v.clamp(0.0, 255.0)).collect::<Vec<_>>());
    // Grayscale: the one plane resized, then replicated to 3 channels.
    let gray = &img[..48 * 64];
    for protocol in [ResizeProtocol::Clean, ResizeProtocol::Legacy] {
        let g = resize_fid(gray, [1, 48, 64], [29, 31], protocol).unwrap();
        let one = match protocol {
            ResizeProtocol::Clean => resize_bicubic_pil(gray, [1, 48, 64], [29, 31]).unwrap(),
            ResizeProtocol::Legacy => resize_bilinear(gray, [1, 48, 64], [29, 31]).unwrap(),
        };
        let one: Vec<f32> = one.iter().map(|v| v.clamp(0.0, 255.0)).collect();
        assert_eq!(g, one.repeat(3));
    }
    // The same size is a copy, as in PIL.
    assert_eq!(resize_bicubic_pil(&img, shape, [48, 64]).unwrap(), img);
    // One pass only (height kept, width changed, and the reverse) equals the separable result's pass.
    let w_only = resize_bicubic_pil(&img, shape, [48, 40]).unwrap();
    let both = resize_bicubic_pil(&w_only, [3, 48, 40], [30, 40]).unwrap();
    assert_eq!(both, resize_bicubic_pil(&img, shape, [30, 40]).unwrap(), "horizontal then vertical");
}

#[test]
fn batch_equals_single_images() {
    let a = chirp(40, 50);
    let b: Vec<f32> = a.iter().map(|v| 255.0 - v).collect();
    let batch = Tensor::from_slice(&[a.clone(), b.clone()].concat()).reshape([2, 3, 40, 50]);
    for protocol in [ResizeProtocol::Clean, ResizeProtocol::Legacy] {
        let out = resize_batch(&batch, [299, 299], protocol).unwrap();
        assert_eq!(out.size(), vec![2, 3, 299, 299]);
        assert_eq!(out.kind(), Kind::Float);
        let got: Vec<f32> = Vec::try_from(out.flatten(0, -1)).unwrap();
        let want = [
            resize_fid(&a, [3, 40, 50], [299, 299], protocol).unwrap(),
            resize_fid(&b, [3, 40, 50], [299, 299], protocol).unwrap(),
        ]
        .concat();
        assert_eq!(got, want);
    }
    let single = resize_batch(&Tensor::from_slice(&a).reshape([3, 40, 50]).to_kind(Kind::Double), [10, 10], ResizeProtocol::Clean).unwrap();
    assert_eq!(single.size(), vec![1, 3, 10, 10]);
    assert_eq!(serde_json::to_string(&ResizeProtocol::default()).unwrap(), "\"clean\"");
    assert_eq!(serde_json::from_str::<ResizeProtocol>("\"legacy\"").unwrap(), ResizeProtocol::Legacy);
}

#[test]
fn bad_input_is_an_error() {
    let img = chirp(8, 8);
    let err = |r: ganzoo_data::Result<Vec<f32>>| r.unwrap_err().to_string();
    assert!(err(resize_bicubic_pil(&img, [3, 8, 9], [4, 4])).contains("values given"));
    assert!(err(resize_bicubic_pil(&img, [3, 8, 8], [0, 4])).contains("output height is 0"));
    assert!(err(resize_bicubic_pil(&img, [3, 8, 8], [4, MAX_SIDE + 1])).contains("output width"));
    assert!(err(resize_bicubic_pil(&[], [0, 8, 8], [4, 4])).contains("0 channels"));
    assert!(err(resize_fid(&img[..128], [2, 8, 8], [4, 4], ResizeProtocol::Clean)).contains("grayscale (1) or RGB (3)"));
    let mut nan = img.clone();
    nan[64 + 8 * 3 + 5] = f32::NAN;
    assert!(err(resize_fid(&nan, [3, 8, 8], [4, 4], ResizeProtocol::Legacy)).contains("(channel 1, row 3, column 5)"));
    let e = resize_batch(&Tensor::zeros([2, 8, 8, 3, 1], (Kind::Float, tch::Device::Cpu)), [4, 4], ResizeProtocol::Clean);
    assert!(e.unwrap_err().to_string().contains("expected (N, C, H, W)"));
    let e = resize_batch(&Tensor::zeros([1, 3, 8, 8], (Kind::Uint8, tch::Device::Cpu)), [4, 4], ResizeProtocol::Clean);
    assert!(e.unwrap_err().to_string().contains("convert to float"));
    let e = resize_batch(&Tensor::zeros([0, 3, 8, 8], (Kind::Float, tch::Device::Cpu)), [4, 4], ResizeProtocol::Clean);
    assert!(e.unwrap_err().to_string().contains("empty batch"));
}
