//! Tests of the two-domain translation data (`folders` and `side_by_side` layouts) on tiny fixture trees
//! generated into a temp dir, the single-image load/save helpers, and one read of the real facades set.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ganzoo_data::unpaired::{is_image_file, load_for_translation, save_image, Layout, Split, Unpaired, UnpairedConfig};
use ganzoo_data::{derived_rng, Dataset, Loader, LoaderConfig, OnBadInput};
use image::{ImageBuffer, Luma, Rgb, Rgba};

/// The grey level of solid fixture image `k` of a domain (distinct for k < 12).
fn level(k: usize) -> u8 {
    (10 + 20 * k) as u8
}

/// Writes `n` solid 10×10 images (grey level `level(k)`) into `dir` as `img_{k:02}.png`.
fn write_solid(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for k in 0..n {
        let v = level(k);
        ImageBuffer::from_fn(10, 10, |_, _| Rgb([v, v, v])).save(dir.join(format!("img_{k:02}.png"))).unwrap();
    }
}

/// Recovers which solid image `k` produced a decoded `[C, H, W]` plane in [-1, 1].
fn which(x: &[f32]) -> usize {
    let mean = x.iter().sum::<f32>() / x.len() as f32;
    let byte = (mean + 1.0) * 127.5;
    ((byte - 10.0) / 20.0).round() as usize
}

/// A folders tree: trainA 3 images, trainB 5 images, testA 2, testB 2.
fn folders_tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    write_solid(&t.path().join("trainA"), 3);
    write_solid(&t.path().join("trainB"), 5);
    write_solid(&t.path().join("testA"), 2);
    write_solid(&t.path().join("testB"), 2);
    t
}

fn halves(x: &[f32]) -> (&[f32], &[f32]) {
    x.split_at(x.len() / 2)
}

/// The B image index of `ds[i]` under the loader's RNG for (seed, epoch).
fn b_index(ds: &Unpaired, seed: u64, epoch: usize, i: usize) -> usize {
    let n = ds.len() as u64;
    let ex = ds.get(i, &mut derived_rng(seed, "item", epoch as u64 * n + i as u64)).unwrap();
    which(halves(&ex.x).1)
}

#[test]
fn folders_len_is_max_and_b_is_seeded() {
    let t = folders_tree();
    let ds = Unpaired::open(&UnpairedConfig::new(t.path(), 8), Split::Train, false).unwrap();
    assert_eq!((ds.len_a(), ds.len_b(), ds.len()), (3, 5, 5));
    assert_eq!(ds.shape(), vec![2, 3, 8, 8]);
    assert!(!ds.has_ground_truth());
    for i in 0..ds.len() {
        let ex = ds.get(i, &mut derived_rng(0, "item", i as u64)).unwrap();
        assert_eq!(ex.shape, vec![2, 3, 8, 8]);
        assert_eq!(ex.x.len(), 2 * 3 * 64);
        assert_eq!(ex.label, None);
        assert!(ex.x.iter().all(|v| (-1.0..=1.0).contains(v)));
        assert_eq!(which(halves(&ex.x).0), i % 3, "A of item {i} is A[i % len_a]");
        assert!(which(halves(&ex.x).1) < 5);
    }
    // Same seed and index: same B. Other epochs and seeds: the B index moves.
    let base: Vec<usize> = (0..5).map(|i| b_index(&ds, 7, 0, i)).collect();
    assert_eq!(base, (0..5).map(|i| b_index(&ds, 7, 0, i)).collect::<Vec<_>>());
    let other_epochs: Vec<Vec<usize>> = (1..4).map(|e| (0..5).map(|i| b_index(&ds, 7, e, i)).collect()).collect();
    assert!(other_epochs.iter().any(|v| *v != base), "B indices never change across epochs: {base:?} {other_epochs:?}");
    let other_seeds: Vec<Vec<usize>> = (8..11).map(|s| (0..5).map(|i| b_index(&ds, s, 0, i)).collect()).collect();
    assert!(other_seeds.iter().any(|v| *v != base), "B indices never change across seeds");
    // Every B image gets drawn at some point.
    let mut seen = [false; 5];
    for e in 0..20 {
        for i in 0..5 {
            seen[b_index(&ds, 7, e, i)] = true;
        }
    }
    assert!(seen.iter().all(|&s| s), "{seen:?}");

    let test = Unpaired::open(&UnpairedConfig::new(t.path(), 8), Split::Test, false).unwrap();
    assert_eq!((test.len_a(), test.len_b(), test.len()), (2, 2, 2));
    assert_eq!(test.file_a(1).unwrap(), t.path().join("testA/img_01.png"));
}

#[test]
fn loader_batches_do_not_depend_on_worker_count() {
    let t = folders_tree();
    let cfg = UnpairedConfig { load_size: Some(10), flip: true, ..UnpairedConfig::new(t.path(), 8) };
    let ds: Arc<dyn Dataset> = Arc::new(Unpaired::open(&cfg, Split::Train, false).unwrap());
    let run = |workers: usize| -> Vec<Vec<f32>> {
        let lc = LoaderConfig { batch_size: 2, workers, prefetch: 2, drop_last: false, seed: 3, shard: (0, 1) };
        let loader = Loader::new(ds.clone(), lc);
        loader
            .iter_from(0, 0)
            .take(9) // 3 batches an epoch: three epochs
            .map(|b| {
                let b = b.unwrap();
                assert_eq!(b.x.size()[1..], [2, 3, 8, 8]);
                Vec::<f32>::try_from(b.x.flatten(0, -1)).unwrap()
            })
            .collect()
    };
    let one = run(1);
    assert_eq!(one, run(3));
    // Resume in the middle gives the same batches.
    let lc = LoaderConfig { batch_size: 2, workers: 2, prefetch: 1, drop_last: false, seed: 3, shard: (0, 1) };
    let resumed: Vec<Vec<f32>> = Loader::new(ds.clone(), lc)
        .iter_from(1, 1)
        .take(3)
        .map(|b| Vec::<f32>::try_from(b.unwrap().x.flatten(0, -1)).unwrap())
        .collect();
    assert_eq!(resumed, one[4..7].to_vec());
}

/// Writes a `w×h` side-by-side image whose left half is `left` and right half `right`.
fn write_side(path: &Path, w: u32, h: u32, left: [u8; 3], right: [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    ImageBuffer::from_fn(w, h, |x, _| Rgb(if x < w / 2 { left } else { right })).save(path).unwrap();
}

/// Mean of each channel of a `[3, H, W]` plane, as bytes.
fn mean_rgb(x: &[f32]) -> [f32; 3] {
    let p = x.len() / 3;
    let m = |c: usize| (x[c * p..(c + 1) * p].iter().sum::<f32>() / p as f32 + 1.0) * 127.5;
    [m(0), m(1), m(2)]
}

fn close(a: [f32; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - f32::from(y)).abs() < 1.5)
}

#[test]
fn side_by_side_halves_and_swap() {
    let t = tempfile::tempdir().unwrap();
    let (red, blue) = ([255, 0, 0], [0, 0, 255]);
    write_side(&t.path().join("train/1.png"), 32, 16, red, blue);
    write_side(&t.path().join("test/1.png"), 32, 16, red, blue);
    let cfg = UnpairedConfig { layout: Layout::SideBySide, ..UnpairedConfig::new(t.path(), 8) };
    for split in [Split::Train, Split::Test] {
        for paired in [false, true] {
            let ds = Unpaired::open(&cfg, split, paired).unwrap();
            assert!(ds.has_ground_truth());
            assert_eq!((ds.len_a(), ds.len_b(), ds.len()), (1, 1, 1));
            let ex = ds.get(0, &mut derived_rng(0, "item", 0)).unwrap();
            let (a, b) = halves(&ex.x);
            assert!(close(mean_rgb(a), red), "A should be the red left half: {:?}", mean_rgb(a));
            assert!(close(mean_rgb(b), blue), "B should be the blue right half: {:?}", mean_rgb(b));
        }
    }
    let swapped = Unpaired::open(&UnpairedConfig { swap: true, ..cfg.clone() }, Split::Test, true).unwrap();
    let ex = swapped.get(0, &mut derived_rng(0, "item", 0)).unwrap();
    let (a, b) = halves(&ex.x);
    assert!(close(mean_rgb(a), blue) && close(mean_rgb(b), red), "swap takes A from the right half");
}

#[test]
fn side_by_side_paired_shares_crop_and_flip_unpaired_draws_b() {
    let t = tempfile::tempdir().unwrap();
    // Each half holds the same gradient, so an aligned (shared) crop and flip give A == B exactly.
    let dir = t.path().join("train");
    std::fs::create_dir_all(&dir).unwrap();
    for k in 0..4u32 {
        ImageBuffer::from_fn(40, 20, |x, y| Rgb([((x % 20) * 12) as u8, (y * 12) as u8, (k * 60) as u8]))
            .save(dir.join(format!("{k}.png")))
            .unwrap();
    }
    let cfg = UnpairedConfig {
        layout: Layout::SideBySide,
        load_size: Some(14),
        flip: true,
        ..UnpairedConfig::new(t.path(), 8)
    };
    let paired = Unpaired::open(&cfg, Split::Train, true).unwrap();
    let mut distinct = std::collections::HashSet::new();
    for s in 0..8u64 {
        let ex = paired.get(1, &mut derived_rng(s, "item", 1)).unwrap();
        let (a, b) = halves(&ex.x);
        assert_eq!(a, b, "paired items share the crop and the flip");
        distinct.insert(a.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    }
    assert!(distinct.len() > 1, "random crop/flip never varied");
    // Unpaired: B comes from a drawn image (blue channel tells which), deterministic per RNG.
    let unpaired = Unpaired::open(&cfg, Split::Train, false).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for s in 0..30u64 {
        let ex = unpaired.get(0, &mut derived_rng(s, "item", 0)).unwrap();
        assert_eq!(ex, unpaired.get(0, &mut derived_rng(s, "item", 0)).unwrap());
        let (a, b) = halves(&ex.x);
        assert!(mean_rgb(a)[2] < 1.5, "A is image 0");
        seen.insert((mean_rgb(b)[2] / 60.0).round() as u32);
    }
    assert_eq!(seen.len(), 4, "B drawn from every image: {seen:?}");
}

#[test]
fn folders_paired_is_a_clear_error() {
    let t = folders_tree();
    let err = Unpaired::open(&UnpairedConfig::new(t.path(), 8), Split::Test, true).unwrap_err().to_string();
    assert!(err.contains("ground-truth") && err.contains("side_by_side"), "{err}");
    let err = Unpaired::open(&UnpairedConfig { swap: true, ..UnpairedConfig::new(t.path(), 8) }, Split::Train, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("swap"), "{err}");
}

#[test]
fn empty_or_missing_domain_folder_is_named() {
    let t = tempfile::tempdir().unwrap();
    write_solid(&t.path().join("trainA"), 2);
    std::fs::create_dir_all(t.path().join("trainB")).unwrap();
    std::fs::write(t.path().join("trainB/readme.txt"), "not an image").unwrap();
    let err = Unpaired::open(&UnpairedConfig::new(t.path(), 8), Split::Train, false).unwrap_err().to_string();
    assert!(err.contains("trainB") && err.contains("no readable images"), "{err}");
    let err = Unpaired::open(&UnpairedConfig::new(t.path(), 8), Split::Test, false).unwrap_err().to_string();
    assert!(err.contains("testA") && err.contains("missing folder"), "{err}");
    let sbs = UnpairedConfig { layout: Layout::SideBySide, ..UnpairedConfig::new(t.path(), 8) };
    let err = Unpaired::open(&sbs, Split::Train, false).unwrap_err().to_string();
    assert!(err.contains("train") && err.contains("side_by_side"), "{err}");
}

#[test]
fn bad_images_error_or_are_skipped_and_counted() {
    // A zero-byte image in trainA: fails at open (header check).
    let t = folders_tree();
    let zero = t.path().join("trainA/img_99.png");
    std::fs::write(&zero, b"").unwrap();
    let err = Unpaired::open(&UnpairedConfig::new(t.path(), 8), Split::Train, false).unwrap_err().to_string();
    assert!(err.contains("img_99.png") && err.contains("0 bytes"), "{err}");
    let skip = UnpairedConfig { on_bad_input: OnBadInput::Skip, ..UnpairedConfig::new(t.path(), 8) };
    let ds = Unpaired::open(&skip, Split::Train, false).unwrap();
    assert_eq!((ds.len_a(), ds.skipped(), ds.skipped_files()), (3, 1, vec![zero.clone()]));

    // Side by side: a truncated JPEG is caught at open (missing end marker) ...
    let s = tempfile::tempdir().unwrap();
    for k in 0..2 {
        write_side(&s.path().join(format!("train/{k}.png")), 16, 8, [200, 0, 0], [0, 0, 200]);
    }
    let big = ImageBuffer::from_fn(128, 64, |x, y| Rgb([(x * 2) as u8, (y * 4) as u8, 7]));
    let trunc: PathBuf = s.path().join("train/2.jpg");
    big.save(&trunc).unwrap();
    let bytes = std::fs::read(&trunc).unwrap();
    let truncate = || std::fs::write(&trunc, &bytes[..bytes.len() / 3]).unwrap();
    truncate();
    let cfg = UnpairedConfig { layout: Layout::SideBySide, ..UnpairedConfig::new(s.path(), 8) };
    let skip = UnpairedConfig { on_bad_input: OnBadInput::Skip, ..cfg.clone() };
    let err = Unpaired::open(&cfg, Split::Train, true).unwrap_err().to_string();
    assert!(err.contains("2.jpg"), "{err}");
    let ds = Unpaired::open(&skip, Split::Train, true).unwrap();
    assert_eq!((ds.len(), ds.skipped(), ds.skipped_files()), (2, 1, vec![trunc.clone()]));
    // ... and one that goes bad after open fails at decode time: an error naming it, or a counted skip.
    std::fs::write(&trunc, &bytes).unwrap();
    let strict = Unpaired::open(&cfg, Split::Train, true).unwrap();
    let lenient = Unpaired::open(&skip, Split::Train, false).unwrap();
    assert_eq!((strict.len(), lenient.len(), lenient.skipped()), (3, 3, 0));
    truncate();
    let err = strict.get(2, &mut derived_rng(0, "item", 2)).unwrap_err().to_string();
    assert!(err.contains("2.jpg"), "{err}");
    for i in 0..3 {
        for seed in 0..4 {
            let ex = lenient.get(i, &mut derived_rng(seed, "item", i as u64)).unwrap();
            assert!(close(mean_rgb(halves(&ex.x).0), [200, 0, 0]));
            assert!(close(mean_rgb(halves(&ex.x).1), [0, 0, 200]));
        }
    }
    assert_eq!((lenient.skipped(), lenient.skipped_files()), (1, vec![trunc]));
}

#[test]
fn load_for_translation_converts_every_kind_and_names_bad_files() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ImageBuffer::from_fn(10, 13, |x, y| Luma([((x + y) * 9) as u8])).save(d.join("gray.png")).unwrap();
    ImageBuffer::from_fn(10, 13, |_, _| Rgba([255u8, 0, 0, 10])).save(d.join("rgba.png")).unwrap();
    ImageBuffer::from_fn(10, 13, |_, _| Rgb([65535u16, 0, 32768])).save(d.join("deep.png")).unwrap();
    for name in ["gray.png", "rgba.png", "deep.png"] {
        for channels in [1, 3] {
            let (x, shape) = load_for_translation(&d.join(name), Some(8), channels).unwrap();
            assert_eq!(shape, vec![channels, 8, 8]);
            assert_eq!(x.len(), (channels * 64) as usize);
            assert!(x.iter().all(|v| (-1.0..=1.0).contains(v)));
            // Own size, rounded down to a multiple of 4: 10×13 → W 8, H 12.
            let (x, shape) = load_for_translation(&d.join(name), None, channels).unwrap();
            assert_eq!(shape, vec![channels, 12, 8], "{name}");
            assert_eq!(x.len(), (channels * 96) as usize);
        }
    }
    let (x, _) = load_for_translation(&d.join("deep.png"), Some(4), 3).unwrap();
    assert!((x[0] - 1.0).abs() < 1e-6 && (x[16] + 1.0).abs() < 1e-6 && x[32].abs() < 0.01, "16-bit scaled to 8-bit");
    std::fs::write(d.join("notes.png"), "not an image").unwrap();
    let err = load_for_translation(&d.join("notes.png"), Some(8), 3).unwrap_err().to_string();
    assert!(err.contains("notes.png"), "{err}");
    let err = load_for_translation(&d.join("missing.png"), None, 3).unwrap_err().to_string();
    assert!(err.contains("missing.png"), "{err}");
    ImageBuffer::from_fn(3, 9, |_, _| Luma([1u8])).save(d.join("thin.png")).unwrap();
    let err = load_for_translation(&d.join("thin.png"), None, 3).unwrap_err().to_string();
    assert!(err.contains("thin.png") && err.contains("smaller than 4"), "{err}");
}

#[test]
fn save_image_round_trips() {
    let t = tempfile::tempdir().unwrap();
    let (h, w) = (6usize, 10usize);
    let x: Vec<f32> = (0..3 * h * w).map(|i| ((i * 37) % 255) as f32 / 127.5 - 1.0).collect();
    let png = t.path().join("sub/out.png");
    save_image(&x, &[3, h as i64, w as i64], &png).unwrap();
    let img = image::open(&png).unwrap().to_rgb8();
    assert_eq!((img.width(), img.height()), (w as u32, h as u32));
    for (p, px) in img.pixels().enumerate() {
        for c in 0..3 {
            let v = f32::from(px[c]) / 127.5 - 1.0;
            assert!((v - x[c * h * w + p]).abs() < 0.5 / 127.5 + 1e-6);
        }
    }
    // Gray, JPEG, a leading batch dimension, out-of-range values clamped.
    let gray: Vec<f32> = (0..64).map(|i| i as f32 / 32.0 - 1.0).collect();
    let jpg = t.path().join("gray.jpg");
    save_image(&gray, &[1, 1, 8, 8], &jpg).unwrap();
    let (g, shape) = load_for_translation(&jpg, None, 1).unwrap();
    assert_eq!(shape, vec![1, 8, 8]);
    let err: f32 = g.iter().zip(&gray).map(|(a, b)| (a - b).abs()).sum::<f32>() / 64.0;
    assert!(err < 0.05, "JPEG round trip error {err}");
    save_image(&[5.0, -5.0, f32::NAN, 0.0], &[1, 2, 2], &t.path().join("clamp.bmp")).unwrap();
    let b = image::open(t.path().join("clamp.bmp")).unwrap().to_luma8();
    assert_eq!(b.as_raw(), &vec![255, 0, 0, 128]);
    // No stray temp files.
    let names: Vec<String> =
        std::fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
    // Bad shape or extension: errors naming the file.
    let err = save_image(&x, &[2, h as i64, w as i64], &png).unwrap_err().to_string();
    assert!(err.contains("out.png"), "{err}");
    let err = save_image(&x, &[3, h as i64, w as i64], &t.path().join("out.xyz")).unwrap_err().to_string();
    assert!(err.contains("out.xyz"), "{err}");
}

#[test]
fn image_file_extensions() {
    for good in ["a.png", "b.JPG", "c.jpeg", "d.bmp", "e.tif", "f.webp", "g.gif"] {
        assert!(is_image_file(Path::new(good)), "{good}");
    }
    for bad in ["a.txt", "noext", "b.png.bak", ".hidden"] {
        assert!(!is_image_file(Path::new(bad)), "{bad}");
    }
}

#[test]
fn config_serde_defaults_and_unknown_fields() {
    let cfg: UnpairedConfig = serde_json::from_str(r#"{"root": "d", "size": 256}"#).unwrap();
    assert_eq!(cfg, UnpairedConfig::new("d", 256));
    let cfg: UnpairedConfig = serde_json::from_str(
        r#"{"root": "d", "size": 256, "layout": "side_by_side", "swap": true, "on_bad_input": "skip"}"#,
    )
    .unwrap();
    assert_eq!((cfg.layout, cfg.swap, cfg.on_bad_input), (Layout::SideBySide, true, OnBadInput::Skip));
    let err =
        serde_json::from_str::<UnpairedConfig>(r#"{"root": "d", "size": 256, "filp": true}"#).unwrap_err().to_string();
    assert!(err.contains("filp"), "{err}");
    assert_eq!(serde_json::to_string(&Split::Test).unwrap(), "\"test\"");
}

/// The CMP facades at `../shared/datasets/facades` (relative to the repo root), when present.
#[test]
fn real_facades() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/facades");
    if !root.join("train").is_dir() {
        eprintln!("note: {} not found; skipping the facades test", root.display());
        return;
    }
    let cfg = UnpairedConfig {
        layout: Layout::SideBySide,
        load_size: Some(72),
        flip: true,
        ..UnpairedConfig::new(&root, 64)
    };
    let train = Unpaired::open(&cfg, Split::Train, false).unwrap();
    assert_eq!((train.len(), train.len_a(), train.len_b()), (400, 400, 400));
    assert_eq!(train.shape(), vec![2, 3, 64, 64]);
    let test = Unpaired::open(&cfg, Split::Test, true).unwrap();
    assert_eq!(test.len(), 106);
    for (ds, i) in [(&train, 0), (&train, 399), (&test, 5)] {
        let ex = ds.get(i, &mut derived_rng(1, "item", i as u64)).unwrap();
        assert_eq!(ex.shape, vec![2, 3, 64, 64]);
        let (a, b) = halves(&ex.x);
        assert!(a.iter().chain(b).all(|v| (-1.0..=1.0).contains(v)));
        let diff = a.iter().zip(b).map(|(p, q)| (p - q).abs()).sum::<f32>() / a.len() as f32;
        assert!(diff > 0.1, "photo (A) and labels (B) should differ, mean |A-B| = {diff}");
    }
    // Paired: B is the labels of the same facade; swap exchanges the halves exactly.
    let swapped = Unpaired::open(&UnpairedConfig { swap: true, ..cfg.clone() }, Split::Test, true).unwrap();
    let ex = test.get(5, &mut derived_rng(1, "item", 5)).unwrap();
    let sw = swapped.get(5, &mut derived_rng(1, "item", 5)).unwrap();
    assert_eq!((halves(&ex.x).0, halves(&ex.x).1), (halves(&sw.x).1, halves(&sw.x).0));
}
