//! Tests of the CUB / Oxford-102 captioned-image reader on small fixture trees built in temp dirs
//! (JPEG/PNG files written with the `image` crate): split forms, folder names, transforms, every bad-input
//! case in both `on_bad_input` modes, and `check_layout`.

use std::path::{Path, PathBuf};

use ganzoo_data::captions::{check_layout, CaptionedConfig, CaptionedImages};
use ganzoo_data::{derived_rng, Dataset, OnBadInput, Split};
use image::{ImageBuffer, Rgb};

/// Writes a `w`×`h` image (format from the extension) with a horizontal gradient in `tint`.
fn write_image(path: &Path, w: u32, h: u32, tint: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    ImageBuffer::from_fn(w, h, |x, y| {
        Rgb([(x * 255 / w.max(1)) as u8, (y * 255 / h.max(1)) as u8, tint])
    })
    .save(path)
    .unwrap();
}

fn write_text(path: &Path, text: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// CUB-like tree with `images`/`text` folder names:
/// 001.Alpha: a_0001.jpg, a_0002.png; 002.Beta: b_0001.jpg, b_0002.jpg; 003.Gamma: c_0001.jpg.
/// Class-level splits: train = Alpha, Beta; test = Gamma.
fn build_tree(root: &Path, images: &str, text: &str) {
    let items = [
        ("001.Alpha/a_0001", "jpg"),
        ("001.Alpha/a_0002", "png"),
        ("002.Beta/b_0001", "jpg"),
        ("002.Beta/b_0002", "jpg"),
        ("003.Gamma/c_0001", "jpg"),
    ];
    for (k, (name, ext)) in items.iter().enumerate() {
        write_image(
            &root.join(images).join(format!("{name}.{ext}")),
            20 + k as u32,
            16,
            40 * k as u8,
        );
        let caps = format!("caption one of {name}\n\n  caption two of {name}  \r\n\n");
        write_text(
            &root.join(text).join(format!("{name}.txt")),
            caps.as_bytes(),
        );
    }
    write_text(&root.join("trainclasses.txt"), b"001.Alpha\n002.Beta\n");
    write_text(&root.join("testclasses.txt"), b"003.Gamma\n");
}

fn cub(root: &Path, mode: OnBadInput) -> CaptionedConfig {
    CaptionedConfig {
        size: 8,
        on_bad_input: mode,
        ..CaptionedConfig::new(root)
    }
}

fn names(ds: &CaptionedImages) -> Vec<String> {
    (0..ds.len()).map(|i| ds.name(i).to_string()).collect()
}

#[test]
fn class_level_split_reads_items_in_sorted_order() {
    let t = tempfile::tempdir().unwrap();
    build_tree(t.path(), "images", "text");
    let cfg = cub(t.path(), OnBadInput::Error);
    let ds = CaptionedImages::open(&cfg, Split::Train).unwrap();
    assert_eq!(
        names(&ds),
        [
            "001.Alpha/a_0001",
            "001.Alpha/a_0002",
            "002.Beta/b_0001",
            "002.Beta/b_0002"
        ]
    );
    assert_eq!(
        (0..4).map(|i| ds.class_index(i)).collect::<Vec<_>>(),
        [0, 0, 1, 1]
    );
    assert_eq!(ds.classes(), ["001.Alpha", "002.Beta", "003.Gamma"]);
    assert_eq!(
        ds.captions(1),
        [
            "caption one of 001.Alpha/a_0002",
            "caption two of 001.Alpha/a_0002"
        ]
    );
    assert_eq!(
        ds.image_path(1),
        t.path().join("images/001.Alpha/a_0002.png")
    );
    assert_eq!(ds.index_of("002.Beta/b_0001"), Some(2));
    assert_eq!(ds.index_of("003.Gamma/c_0001"), None);
    assert_eq!(ds.all_captions().len(), 8);
    assert_eq!(ds.all_captions()[0], "caption one of 001.Alpha/a_0001");
    assert!(ds.skipped().is_empty());
    assert_eq!(ds.shape(), vec![3, 8, 8]);
    for i in 0..ds.len() {
        let ex = ds.get(i, &mut derived_rng(0, "item", i as u64)).unwrap();
        assert_eq!(ex.shape, vec![3, 8, 8]);
        assert_eq!(ex.x.len(), 3 * 64);
        assert_eq!(ex.label, Some(i as i64));
        assert!(ex.x.iter().all(|v| (-1.0..=1.0).contains(v)));
    }
    assert!(ds.get(4, &mut derived_rng(0, "item", 0)).is_err());

    let test = cfg.build(Split::Test).unwrap();
    assert_eq!(names(&test), ["003.Gamma/c_0001"]);
    assert_eq!(
        test.class_index(0),
        2,
        "class indices count every class folder, not just the split's"
    );
}

#[test]
fn image_level_and_mixed_splits() {
    let t = tempfile::tempdir().unwrap();
    build_tree(t.path(), "images", "text");
    // Image-level (with a Windows separator, surrounding blanks and an extension tolerated), then mixed.
    write_text(
        &t.path().join("splits/img.txt"),
        b"\xEF\xBB\xBF002.Beta/b_0002\r\n\n  001.Alpha\\a_0001 \n003.Gamma/c_0001.jpg\n",
    );
    write_text(
        &t.path().join("splits/mixed.txt"),
        b"003.Gamma\n001.Alpha/a_0002\n003.Gamma/c_0001\n",
    );
    let cfg = CaptionedConfig {
        train_split: Some("splits/img.txt".into()),
        test_split: Some("splits/mixed.txt".into()),
        ..cub(t.path(), OnBadInput::Error)
    };
    let train = CaptionedImages::open(&cfg, Split::Train).unwrap();
    assert_eq!(
        names(&train),
        ["001.Alpha/a_0001", "002.Beta/b_0002", "003.Gamma/c_0001"]
    );
    let test = CaptionedImages::open(&cfg, Split::Test).unwrap();
    assert_eq!(
        names(&test),
        ["001.Alpha/a_0002", "003.Gamma/c_0001"],
        "sorted, duplicates merged"
    );
    assert_eq!(test.class_index(0), 0);
    assert_eq!(test.class_index(1), 2);
}

#[test]
fn configurable_folder_names_oxford102() {
    let t = tempfile::tempdir().unwrap();
    build_tree(t.path(), "jpg", "text_c10");
    let cfg = CaptionedConfig {
        size: 8,
        ..CaptionedConfig::oxford102(t.path())
    };
    assert_eq!(
        (cfg.images.as_str(), cfg.text.as_str()),
        ("jpg", "text_c10")
    );
    let ds = cfg.build(Split::Train).unwrap();
    assert_eq!(ds.len(), 4);
    assert_eq!(ds.image_path(0), t.path().join("jpg/001.Alpha/a_0001.jpg"));
    // The default names do not fit this tree: the error names the folder and the key.
    let err = CaptionedImages::open(&cub(t.path(), OnBadInput::Skip), Split::Train)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&t.path().join("images").display().to_string()) && err.contains("`data.images`"),
        "{err}"
    );
    // Through serde, as a config file gives it.
    let json = format!(
        r#"{{"root": {:?}, "images": "jpg", "text": "text_c10", "size": 8}}"#,
        t.path()
    );
    let parsed: CaptionedConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed, cfg);
}

#[test]
fn config_defaults_and_unknown_keys() {
    let cfg: CaptionedConfig = serde_json::from_str(r#"{"root": "/data/cub"}"#).unwrap();
    assert_eq!(cfg, CaptionedConfig::new("/data/cub"));
    assert_eq!(cfg.size, 64);
    assert_eq!(
        cfg.split_file(Split::Train),
        PathBuf::from("/data/cub/trainclasses.txt")
    );
    assert_eq!(
        cfg.split_file(Split::Test),
        PathBuf::from("/data/cub/testclasses.txt")
    );
    let err =
        serde_json::from_str::<CaptionedConfig>(r#"{"root": "/x", "image": "jpg"}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `image`"), "{err}");
    let gan_cls = CaptionedConfig::new("/x").with_gan_cls_augmentation();
    assert_eq!(
        (gan_cls.size, gan_cls.load_size, gan_cls.flip),
        (64, Some(76), true)
    );
    let bad = CaptionedConfig {
        load_size: Some(4),
        ..CaptionedConfig::new("/x")
    };
    assert!(CaptionedImages::open(&bad, Split::Train)
        .unwrap_err()
        .to_string()
        .contains("load_size"));
}

#[test]
fn train_crop_and_flip_are_seeded_test_split_is_not_augmented() {
    let t = tempfile::tempdir().unwrap();
    build_tree(t.path(), "images", "text");
    let cfg = CaptionedConfig {
        load_size: Some(12),
        flip: true,
        ..cub(t.path(), OnBadInput::Error)
    };
    let train = cfg.build(Split::Train).unwrap();
    let a = train.get(0, &mut derived_rng(1, "item", 0)).unwrap();
    let b = train.get(0, &mut derived_rng(1, "item", 0)).unwrap();
    assert_eq!(a, b, "same RNG, same item");
    let differs = (1..20).any(|s| train.get(0, &mut derived_rng(s, "item", 0)).unwrap().x != a.x);
    assert!(differs, "crop/flip should vary with the RNG");
    let test = cfg.build(Split::Test).unwrap();
    let x0 = test.get(0, &mut derived_rng(1, "item", 0)).unwrap();
    for s in 2..6 {
        assert_eq!(
            test.get(0, &mut derived_rng(s, "item", 0)).unwrap(),
            x0,
            "test split draws nothing"
        );
    }
}

/// One bad-input case: how to break the tree, the file the error must name, a message fragment, and the
/// train items left in skip mode.
struct Case {
    what: &'static str,
    breaks: fn(&Path),
    file: &'static str,
    fragment: &'static str,
    train_left: usize,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            what: "empty caption file",
            breaks: |r| write_text(&r.join("text/001.Alpha/a_0002.txt"), b""),
            file: "text/001.Alpha/a_0002.txt",
            fragment: "empty",
            train_left: 3,
        },
        Case {
            what: "caption file of blank lines",
            breaks: |r| write_text(&r.join("text/002.Beta/b_0001.txt"), b"\n  \r\n\t\n"),
            file: "text/002.Beta/b_0001.txt",
            fragment: "blank lines",
            train_left: 3,
        },
        Case {
            what: "caption file not UTF-8",
            breaks: |r| {
                write_text(
                    &r.join("text/002.Beta/b_0002.txt"),
                    b"a bird \xff\xfe with wings\n",
                )
            },
            file: "text/002.Beta/b_0002.txt",
            fragment: "not UTF-8 (invalid byte at offset 7)",
            train_left: 3,
        },
        Case {
            what: "image without caption file",
            breaks: |r| std::fs::remove_file(r.join("text/001.Alpha/a_0001.txt")).unwrap(),
            file: "images/001.Alpha/a_0001.jpg",
            fragment: "no caption file (expected",
            train_left: 3,
        },
        Case {
            what: "caption file without image",
            breaks: |r| write_text(&r.join("text/002.Beta/b_0003.txt"), b"an orphan caption\n"),
            file: "text/002.Beta/b_0003.txt",
            fragment: "has no image",
            train_left: 4,
        },
        Case {
            what: "zero-byte image",
            breaks: |r| write_text(&r.join("images/001.Alpha/a_0002.png"), b""),
            file: "images/001.Alpha/a_0002.png",
            fragment: "0 bytes",
            train_left: 3,
        },
        Case {
            what: "truncated JPEG",
            breaks: |r| {
                let p = r.join("images/002.Beta/b_0001.jpg");
                write_image(&p, 64, 64, 9);
                let bytes = std::fs::read(&p).unwrap();
                std::fs::write(&p, &bytes[..bytes.len() / 3]).unwrap();
            },
            file: "images/002.Beta/b_0001.jpg",
            fragment: "truncated",
            train_left: 3,
        },
        Case {
            what: "text named .jpg",
            breaks: |r| {
                write_text(
                    &r.join("images/002.Beta/b_0002.jpg"),
                    b"this is not a jpeg\n",
                )
            },
            file: "images/002.Beta/b_0002.jpg",
            fragment: "cannot decode",
            train_left: 3,
        },
        Case {
            what: "split entry matching nothing",
            breaks: |r| {
                write_text(
                    &r.join("trainclasses.txt"),
                    b"001.Alpha\n\n002.Bta\n002.Beta\n",
                )
            },
            file: "trainclasses.txt",
            fragment: "line 3: entry `002.Bta` matches no class folder and no image",
            train_left: 4,
        },
        Case {
            what: "image-level entry whose image is missing",
            breaks: |r| {
                write_text(&r.join("trainclasses.txt"), b"001.Alpha\n002.Beta/b_0009\n");
                write_text(
                    &r.join("text/002.Beta/b_0009.txt"),
                    b"caption of a missing image\n",
                );
            },
            file: "trainclasses.txt",
            fragment: "line 2: entry `002.Beta/b_0009` matches no class folder and no image",
            train_left: 2,
        },
        Case {
            what: "two images with the same name",
            breaks: |r| write_image(&r.join("images/001.Alpha/a_0001.png"), 8, 8, 1),
            file: "images/001.Alpha/a_0001.png",
            fragment: "same name `001.Alpha/a_0001`",
            train_left: 4,
        },
        Case {
            what: "image outside a class folder",
            breaks: |r| write_image(&r.join("images/stray.jpg"), 8, 8, 1),
            file: "images/stray.jpg",
            fragment: "outside a class folder",
            train_left: 4,
        },
        Case {
            what: "empty class folder listed in the split",
            breaks: |r| {
                std::fs::create_dir_all(r.join("images/004.Delta")).unwrap();
                write_text(
                    &r.join("trainclasses.txt"),
                    b"001.Alpha\n002.Beta\n004.Delta\n",
                );
            },
            file: "images/004.Delta",
            fragment: "class folder has no images (listed at",
            train_left: 4,
        },
    ]
}

#[test]
fn every_bad_input_errors_naming_the_file_or_is_skipped_and_recorded() {
    for case in cases() {
        let t = tempfile::tempdir().unwrap();
        build_tree(t.path(), "images", "text");
        (case.breaks)(t.path());
        let file = t.path().join(case.file);

        let err = CaptionedImages::open(&cub(t.path(), OnBadInput::Error), Split::Train)
            .map(|ds| ds.len())
            .expect_err(case.what)
            .to_string();
        assert!(
            err.contains(&file.display().to_string()),
            "{}: error does not name {}: {err}",
            case.what,
            file.display()
        );
        assert!(
            err.contains(case.fragment),
            "{}: error lacks {:?}: {err}",
            case.what,
            case.fragment
        );

        let ds = CaptionedImages::open(&cub(t.path(), OnBadInput::Skip), Split::Train)
            .unwrap_or_else(|e| panic!("{}: skip mode failed: {e}", case.what));
        assert_eq!(ds.len(), case.train_left, "{}: items left", case.what);
        assert_eq!(ds.skipped().len(), 1, "{}: {:?}", case.what, ds.skipped());
        let (path, reason) = &ds.skipped()[0];
        assert_eq!(path, &file, "{}", case.what);
        assert!(
            reason.contains(case.fragment),
            "{}: reason lacks {:?}: {reason}",
            case.what,
            case.fragment
        );
        for i in 0..ds.len() {
            ds.get(i, &mut derived_rng(0, "item", i as u64)).unwrap();
        }

        // check_layout reports it too, as a line naming the file.
        let report = check_layout(&cub(t.path(), OnBadInput::Error));
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains(&file.display().to_string()) && p.contains(case.fragment)),
            "{}: check_layout missed it: {:#?}",
            case.what,
            report.problems
        );
    }
}

#[test]
fn problems_outside_the_split_do_not_affect_it() {
    let t = tempfile::tempdir().unwrap();
    build_tree(t.path(), "images", "text");
    // Broken test-split data; the train split opens fine in error mode.
    write_text(&t.path().join("images/003.Gamma/c_0001.jpg"), b"");
    write_text(&t.path().join("text/003.Gamma/c_0009.txt"), b"orphan\n");
    let ds = CaptionedImages::open(&cub(t.path(), OnBadInput::Error), Split::Train).unwrap();
    assert_eq!(ds.len(), 4);
    assert!(CaptionedImages::open(&cub(t.path(), OnBadInput::Error), Split::Test).is_err());
}

#[test]
fn missing_split_file_is_always_an_error_naming_file_and_key() {
    let t = tempfile::tempdir().unwrap();
    build_tree(t.path(), "images", "text");
    std::fs::remove_file(t.path().join("testclasses.txt")).unwrap();
    for mode in [OnBadInput::Error, OnBadInput::Skip] {
        let err = CaptionedImages::open(&cub(t.path(), mode), Split::Test)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&t.path().join("testclasses.txt").display().to_string()),
            "{err}"
        );
        assert!(
            err.contains("`data.test_split`") && err.contains("test split"),
            "{err}"
        );
    }
    let cfg = CaptionedConfig {
        train_split: Some("nope/train.txt".into()),
        ..cub(t.path(), OnBadInput::Skip)
    };
    let err = CaptionedImages::open(&cfg, Split::Train)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nope/train.txt") && err.contains("`data.train_split`"),
        "{err}"
    );
}

#[test]
fn non_utf8_split_file_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    build_tree(t.path(), "images", "text");
    write_text(&t.path().join("trainclasses.txt"), b"001.Alpha\n\xc3\x28\n");
    for mode in [OnBadInput::Error, OnBadInput::Skip] {
        let err = CaptionedImages::open(&cub(t.path(), mode), Split::Train)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("trainclasses.txt") && err.contains("not UTF-8"),
            "{err}"
        );
    }
}

#[test]
fn empty_split_is_an_error_in_both_modes() {
    let t = tempfile::tempdir().unwrap();
    build_tree(t.path(), "images", "text");
    write_text(&t.path().join("trainclasses.txt"), b"\n\n");
    for mode in [OnBadInput::Error, OnBadInput::Skip] {
        let err = CaptionedImages::open(&cub(t.path(), mode), Split::Train)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("trainclasses.txt") && err.contains("no usable images in the train split"),
            "{err}"
        );
    }
    // A split whose every item is bad: skip mode leaves nothing, which is an error too.
    write_text(&t.path().join("images/003.Gamma/c_0001.jpg"), b"");
    let err = CaptionedImages::open(&cub(t.path(), OnBadInput::Skip), Split::Test)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("testclasses.txt") && err.contains("no usable images"),
        "{err}"
    );
}

#[test]
fn several_problems_in_skip_mode_are_all_recorded_in_order() {
    let t = tempfile::tempdir().unwrap();
    build_tree(t.path(), "images", "text");
    write_text(&t.path().join("text/001.Alpha/a_0001.txt"), b"");
    write_text(&t.path().join("images/002.Beta/b_0002.jpg"), b"");
    write_text(
        &t.path().join("trainclasses.txt"),
        b"001.Alpha\n002.Beta\n009.Nothing\n",
    );
    let ds = CaptionedImages::open(&cub(t.path(), OnBadInput::Skip), Split::Train).unwrap();
    assert_eq!(names(&ds), ["001.Alpha/a_0002", "002.Beta/b_0001"]);
    let files: Vec<PathBuf> = ds.skipped().iter().map(|s| s.0.clone()).collect();
    assert_eq!(
        files,
        [
            t.path().join("trainclasses.txt"),
            t.path().join("text/001.Alpha/a_0001.txt"),
            t.path().join("images/002.Beta/b_0002.jpg")
        ]
    );
    // Error mode reports the first of them.
    let err = CaptionedImages::open(&cub(t.path(), OnBadInput::Error), Split::Train)
        .unwrap_err()
        .to_string();
    assert!(err.contains("009.Nothing"), "{err}");
}

#[test]
fn decode_failure_after_the_header_check_is_skipped_in_get() {
    let t = tempfile::tempdir().unwrap();
    build_tree(t.path(), "images", "text");
    // A PNG whose header is intact but whose pixel data is cut: passes `open`, fails to decode.
    let p = t.path().join("images/001.Alpha/a_0002.png");
    ImageBuffer::from_fn(64, 64, |x, y| {
        Rgb([(x * 3) as u8, (y * 5) as u8, ((x * y) % 251) as u8])
    })
    .save(&p)
    .unwrap();
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();

    let strict = CaptionedImages::open(&cub(t.path(), OnBadInput::Error), Split::Train).unwrap();
    let err = strict
        .get(1, &mut derived_rng(0, "item", 1))
        .unwrap_err()
        .to_string();
    assert!(err.contains(&p.display().to_string()), "{err}");

    let ds = CaptionedImages::open(&cub(t.path(), OnBadInput::Skip), Split::Train).unwrap();
    assert!(ds.skipped().is_empty());
    let ex = ds.get(1, &mut derived_rng(0, "item", 1)).unwrap();
    assert_eq!(
        ex.label,
        Some(2),
        "the next item stands in, labelled with its own index"
    );
    assert_eq!(ex, ds.get(2, &mut derived_rng(0, "item", 1)).unwrap());
    let bad = ds.skipped_at_decode();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].0, p);
    ds.get(1, &mut derived_rng(0, "item", 1)).unwrap();
    assert_eq!(ds.skipped_at_decode().len(), 1, "recorded once");
}

#[test]
fn check_layout_on_a_good_tree() {
    let t = tempfile::tempdir().unwrap();
    build_tree(t.path(), "images", "text");
    let report = check_layout(&cub(t.path(), OnBadInput::Error));
    assert!(report.is_ok(), "{report}");
    assert_eq!(
        (
            report.images,
            report.caption_files,
            report.train,
            report.test
        ),
        (5, 5, 4, 1)
    );
    let text = report.to_string();
    assert!(
        text.contains("5 images, 5 caption files; train split: 4 items, test split: 1 items"),
        "{text}"
    );
}

#[test]
fn check_layout_lists_every_problem() {
    let t = tempfile::tempdir().unwrap();
    build_tree(t.path(), "images", "text");
    std::fs::remove_file(t.path().join("testclasses.txt")).unwrap();
    write_text(&t.path().join("text/001.Alpha/a_0001.txt"), b"");
    std::fs::remove_file(t.path().join("text/002.Beta/b_0002.txt")).unwrap();
    write_text(
        &t.path().join("text/009.Nothing/x.txt"),
        b"orphan in a class with no image folder\n",
    );
    write_text(
        &t.path().join("trainclasses.txt"),
        b"001.Alpha\n002.Beta\n003.Gamma/c_0001\n003.Gamma\n",
    );
    let report = check_layout(&cub(t.path(), OnBadInput::Skip));
    let p = |rel: &str| t.path().join(rel).display().to_string();
    let expect = [
        (p("text/001.Alpha/a_0001.txt"), "empty"),
        (p("images/002.Beta/b_0002.jpg"), "no caption file"),
        (p("text/009.Nothing/x.txt"), "has no image"),
        (p("testclasses.txt"), "`data.test_split`"),
    ];
    for (path, frag) in expect {
        assert!(
            report
                .problems
                .iter()
                .any(|l| l.contains(&path) && l.contains(frag)),
            "missing {path} / {frag}: {:#?}",
            report.problems
        );
    }
    assert_eq!(report.problems.len(), 4, "{:#?}", report.problems);
    assert_eq!(
        (
            report.images,
            report.caption_files,
            report.train,
            report.test
        ),
        (5, 5, 3, 0)
    );

    // Overlapping splits are reported; a missing caption folder stops the scan with one clear line.
    write_text(&t.path().join("testclasses.txt"), b"003.Gamma\n");
    let report = check_layout(&cub(t.path(), OnBadInput::Skip));
    assert!(
        report
            .problems
            .iter()
            .any(|l| l.contains("in both the train and the test split")),
        "{report}"
    );
    std::fs::rename(t.path().join("text"), t.path().join("captions")).unwrap();
    let report = check_layout(&cub(t.path(), OnBadInput::Skip));
    assert_eq!(report.problems.len(), 1, "{report}");
    assert!(
        report.problems[0].contains(&p("text")) && report.problems[0].contains("`data.text`"),
        "{report}"
    );
}
