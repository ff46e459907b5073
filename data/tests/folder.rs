//! Tests of the image-folder dataset on fixture trees generated into a temp dir (plus one CMYK JPEG
//! fixture, made with Pillow since the `image` crate cannot encode CMYK:
//! `Image.new("RGB",(12,10))` left half (255,0,0), right half (0,0,255), `.convert("CMYK").save("cmyk.jpg", quality=95)`).

use std::path::{Path, PathBuf};

use ganzoo_data::folder::{ImageFolder, ImageFolderConfig, OnBadInput};
use ganzoo_data::{derived_rng, DataError, Dataset};
use image::{ImageBuffer, Luma, Rgb, Rgba};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Writes one valid image of each kind into `dir`: RGB PNG, RGB JPEG, gray PNG, RGBA PNG, 16-bit PNG, CMYK JPEG.
fn write_good(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let rgb = ImageBuffer::from_fn(20, 16, |x, _| Rgb([(x * 12) as u8, 100, 200]));
    rgb.save(dir.join("a_rgb.png")).unwrap();
    rgb.save(dir.join("b_rgb.jpg")).unwrap();
    ImageBuffer::from_fn(9, 9, |x, y| Luma([((x + y) * 14) as u8])).save(dir.join("c_gray.png")).unwrap();
    ImageBuffer::from_fn(8, 8, |_, _| Rgba([255u8, 0, 0, 10])).save(dir.join("d_rgba.png")).unwrap();
    ImageBuffer::from_fn(8, 8, |_, _| Rgb([65535u16, 0, 32768])).save(dir.join("e_16bit.png")).unwrap();
    std::fs::copy(fixtures().join("cmyk.jpg"), dir.join("f_cmyk.jpg")).unwrap();
}

/// Writes the bad files: zero-byte PNG, truncated JPEG, text named .png.
fn write_bad(dir: &Path) {
    std::fs::write(dir.join("x_empty.png"), b"").unwrap();
    let big = ImageBuffer::from_fn(64, 64, |x, y| Rgb([(x * 4) as u8, (y * 4) as u8, 7]));
    let jpg = dir.join("y_trunc.jpg");
    big.save(&jpg).unwrap();
    let bytes = std::fs::read(&jpg).unwrap();
    std::fs::write(&jpg, &bytes[..bytes.len() / 3]).unwrap();
    std::fs::write(dir.join("z_text.png"), b"this is not a png\n").unwrap();
}

fn cfg(root: &Path, channels: i64, on_bad_input: OnBadInput) -> ImageFolderConfig {
    ImageFolderConfig { channels, on_bad_input, ..ImageFolderConfig::new(root, 8) }
}

fn get_all(ds: &ImageFolder) -> Vec<Result<ganzoo_data::Example, DataError>> {
    (0..ds.len()).map(|i| ds.get(i, &mut derived_rng(0, "item", i as u64))).collect()
}

#[test]
fn decodes_every_color_kind() {
    let t = tempfile::tempdir().unwrap();
    write_good(t.path());
    std::fs::write(t.path().join("notes.txt"), "ignored").unwrap();
    for channels in [1, 3] {
        let ds = ImageFolder::open(&cfg(t.path(), channels, OnBadInput::Error)).unwrap();
        assert_eq!(ds.len(), 6);
        assert_eq!(ds.num_classes(), 0);
        assert_eq!(ds.shape(), vec![channels, 8, 8]);
        for (i, ex) in get_all(&ds).into_iter().enumerate() {
            let ex = ex.unwrap_or_else(|e| panic!("item {i}: {e}"));
            assert_eq!(ex.x.len() as i64, channels * 64);
            assert!(ex.x.iter().all(|v| (-1.0..=1.0).contains(v)));
            assert_eq!(ex.label, None);
        }
    }
    let ds = ImageFolder::open(&cfg(t.path(), 3, OnBadInput::Error)).unwrap();
    let r = |i: usize| ds.get(i, &mut derived_rng(0, "item", 0)).unwrap().x;
    // RGBA: alpha dropped, colour kept. 16-bit: 65535 -> 1.0, 0 -> -1.0, 32768 -> ~0.
    let rgba = r(3);
    assert!((rgba[0] - 1.0).abs() < 1e-6 && (rgba[64] + 1.0).abs() < 1e-6);
    let deep = r(4);
    assert!((deep[0] - 1.0).abs() < 1e-6 && (deep[64] + 1.0).abs() < 1e-6 && deep[128].abs() < 0.01);
    // CMYK: left half red, right half blue (not inverted).
    let cmyk = r(5);
    let (red_l, blue_l, red_r, blue_r) = (cmyk[8 * 4], cmyk[128 + 8 * 4], cmyk[8 * 4 + 7], cmyk[128 + 8 * 4 + 7]);
    assert!(red_l > 0.8 && blue_l < -0.8 && red_r < -0.8 && blue_r > 0.8, "{red_l} {blue_l} {red_r} {blue_r}");
}

#[test]
fn error_mode_names_the_bad_file() {
    for bad in ["x_empty.png", "y_trunc.jpg", "z_text.png"] {
        let t = tempfile::tempdir().unwrap();
        write_good(t.path());
        write_bad(t.path());
        for other in ["x_empty.png", "y_trunc.jpg", "z_text.png"] {
            if other != bad {
                std::fs::remove_file(t.path().join(other)).unwrap();
            }
        }
        let c = cfg(t.path(), 3, OnBadInput::Error);
        // A bad header fails at open; a bad body (truncated JPEG) at get.
        let err = match ImageFolder::open(&c) {
            Err(e) => e,
            Ok(ds) => get_all(&ds).into_iter().find_map(|r| r.err()).unwrap_or_else(|| panic!("{bad} decoded")),
        };
        assert!(matches!(err, DataError::Decode { .. }), "{bad}: {err:?}");
        assert!(err.to_string().contains(bad), "{bad}: {err}");
    }
}

#[test]
fn skip_mode_counts_bad_files_and_keeps_batches_full() {
    let t = tempfile::tempdir().unwrap();
    write_good(t.path());
    write_bad(t.path());
    let ds = ImageFolder::open(&cfg(t.path(), 3, OnBadInput::Skip)).unwrap();
    let all = get_all(&ds);
    assert!(all.iter().all(|r| r.is_ok()));
    assert_eq!(ds.skipped(), 3, "{:?}", ds.skipped_files());
    let names: Vec<String> = ds.skipped_files().iter().map(|p| p.file_name().unwrap().to_string_lossy().into()).collect();
    for bad in ["x_empty.png", "y_trunc.jpg", "z_text.png"] {
        assert!(names.contains(&bad.to_string()), "{names:?}");
    }
    // Counted once, however often they are hit again.
    let _ = get_all(&ds);
    assert_eq!(ds.skipped(), 3);
}

#[test]
fn class_subfolders_give_sorted_labels() {
    let t = tempfile::tempdir().unwrap();
    write_good(&t.path().join("zebra"));
    write_good(&t.path().join("horse/nested"));
    std::fs::create_dir_all(t.path().join(".hidden")).unwrap();
    let ds = ImageFolder::open(&cfg(t.path(), 3, OnBadInput::Error)).unwrap();
    assert_eq!(ds.classes(), ["horse".to_string(), "zebra".to_string()]);
    assert_eq!(ds.num_classes(), 2);
    assert_eq!(ds.len(), 12);
    let labels: Vec<Option<i64>> = get_all(&ds).into_iter().map(|r| r.unwrap().label).collect();
    assert_eq!(labels[..6], [Some(0); 6]);
    assert_eq!(labels[6..], [Some(1); 6]);
    // Images beside class folders are ambiguous.
    write_good(t.path());
    let err = ImageFolder::open(&cfg(t.path(), 3, OnBadInput::Error)).unwrap_err();
    assert!(matches!(err, DataError::Format { .. }), "{err}");
}

#[test]
fn empty_or_missing_folder_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("readme.txt"), "no images").unwrap();
    let err = ImageFolder::open(&cfg(t.path(), 3, OnBadInput::Error)).unwrap_err();
    assert!(matches!(err, DataError::Empty { .. }), "{err}");
    assert!(err.to_string().contains(&t.path().display().to_string()), "{err}");
    std::fs::create_dir(t.path().join("empty_class")).unwrap();
    let err = ImageFolder::open(&cfg(t.path(), 3, OnBadInput::Error)).unwrap_err();
    assert!(err.to_string().contains("empty_class"), "{err}");
    let missing = t.path().join("nope");
    let err = ImageFolder::open(&cfg(&missing, 3, OnBadInput::Error)).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }) && err.to_string().contains("nope"), "{err}");
    // All files bad with Skip: nothing usable.
    let b = t.path().join("allbad");
    std::fs::create_dir(&b).unwrap();
    std::fs::write(b.join("x.png"), b"").unwrap();
    let err = ImageFolder::open(&cfg(&b, 3, OnBadInput::Skip)).unwrap_err();
    assert!(matches!(err, DataError::Empty { .. }), "{err}");
}

#[test]
fn crop_and_flip_are_seeded() {
    let t = tempfile::tempdir().unwrap();
    write_good(t.path());
    let c = ImageFolderConfig { load_size: Some(12), flip: true, ..cfg(t.path(), 3, OnBadInput::Error) };
    let ds = ImageFolder::open(&c).unwrap();
    let a = ds.get(0, &mut derived_rng(5, "item", 0)).unwrap();
    let b = ds.get(0, &mut derived_rng(5, "item", 0)).unwrap();
    assert_eq!(a, b);
    let differs = (1..20).any(|s| ds.get(0, &mut derived_rng(s, "item", 0)).unwrap() != a);
    assert!(differs);
    let bad = ImageFolderConfig { load_size: Some(4), ..c.clone() };
    assert!(ImageFolder::open(&bad).is_err());
    let bad = ImageFolderConfig { channels: 2, ..c };
    assert!(ImageFolder::open(&bad).is_err());
}

#[test]
fn config_yaml_like_json_rejects_unknown_keys() {
    let c: ImageFolderConfig = serde_json::from_str(r#"{"root": "x", "on_bad_input": "skip"}"#).unwrap();
    assert_eq!((c.size, c.channels, c.on_bad_input), (64, 3, OnBadInput::Skip));
    assert!(serde_json::from_str::<ImageFolderConfig>(r#"{"root": "x", "sise": 3}"#).is_err());
}

#[test]
fn grid_png_is_written_atomically() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("sub/grid.png");
    let imgs: Vec<Vec<f32>> = (0..5).map(|i| vec![i as f32 / 5.0 - 0.5; 3 * 4 * 6]).collect();
    ganzoo_data::save_png_grid(&imgs, 3, 4, 6, 2, &p).unwrap();
    let g = image::open(&p).unwrap();
    assert_eq!((g.width(), g.height()), (2 * 8 + 2, 3 * 6 + 2));
    let leftovers: Vec<_> = std::fs::read_dir(t.path().join("sub")).unwrap().collect();
    assert_eq!(leftovers.len(), 1);
    assert!(ganzoo_data::save_png_grid(&imgs, 3, 4, 5, 2, &p).is_err());
}

#[test]
fn folder_through_the_loader_is_deterministic() {
    use ganzoo_data::{Loader, LoaderConfig};
    use std::sync::Arc;
    let t = tempfile::tempdir().unwrap();
    write_good(&t.path().join("a"));
    write_good(&t.path().join("b"));
    write_bad(&t.path().join("b"));
    let c = ImageFolderConfig { load_size: Some(10), flip: true, ..cfg(t.path(), 3, OnBadInput::Skip) };
    let run = |workers: usize| -> Vec<(Vec<f32>, Vec<i64>)> {
        let ds = Arc::new(ImageFolder::open(&c).unwrap());
        let l = Loader::new(ds, LoaderConfig { batch_size: 4, workers, seed: 3, ..Default::default() });
        l.iter_from(0, 0)
            .take(6)
            .map(|b| {
                let b = b.unwrap();
                assert_eq!(b.x.size(), vec![4, 3, 8, 8]);
                (Vec::<f32>::try_from(b.x.flatten(0, -1)).unwrap(), Vec::<i64>::try_from(b.y.unwrap()).unwrap())
            })
            .collect()
    };
    assert_eq!(run(1), run(2));
    // Error mode: a JPEG truncated in its scan data (header intact) is caught at open by its missing end marker.
    std::fs::remove_file(t.path().join("b/x_empty.png")).unwrap();
    std::fs::remove_file(t.path().join("b/z_text.png")).unwrap();
    let big = ImageBuffer::from_fn(256, 256, |x, y| Rgb([(x ^ y) as u8, (x * y) as u8, (x + y) as u8]));
    let jpg = t.path().join("b/y_trunc.jpg");
    big.save(&jpg).unwrap();
    let bytes = std::fs::read(&jpg).unwrap();
    std::fs::write(&jpg, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let err = ImageFolder::open(&cfg(t.path(), 3, OnBadInput::Error)).unwrap_err();
    assert!(err.to_string().contains("y_trunc.jpg") && err.to_string().contains("truncated"), "{err}");
    // A file that goes bad after `open` fails inside the loader.
    big.save(&jpg).unwrap();
    let ds = Arc::new(ImageFolder::open(&cfg(t.path(), 3, OnBadInput::Error)).unwrap());
    std::fs::write(&jpg, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let l = Loader::new(ds, LoaderConfig { batch_size: 13, workers: 2, ..Default::default() });
    let err = l.iter_from(0, 0).take(3).find_map(|r| r.err()).expect("the truncated JPEG fails");
    assert!(err.to_string().contains("y_trunc.jpg"), "{err}");
}
