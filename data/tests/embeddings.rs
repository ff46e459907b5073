//! Tests of the `.npy` / `.safetensors` embedding readers, the names reader and the `.npy` writer.
//!
//! Golden files in tests/fixtures were written by numpy 2.4 (from /work/main, with the project's venv):
//! ```python
//! import numpy as np
//! np.save('data/tests/fixtures/emb_f32.npy', np.arange(24, dtype='<f4').reshape(2,3,4))
//! np.save('data/tests/fixtures/emb_f64_2d.npy', np.arange(6, dtype='<f8').reshape(3,2)/4)
//! ```
//! Other NPY and safetensors files are assembled byte by byte here, following the format specs.

use std::path::{Path, PathBuf};

#[path = "support/npy.rs"]
mod npy_file;
use npy_file::npy;

use ganzoo_data::embeddings::{read_embeddings, read_names, write_npy_f32, Embeddings};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn dict(descr: &str, fortran: &str, shape: &str) -> String {
    format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}")
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A safetensors file: header JSON (as given) and the data buffer.
fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Asserts reading `path` fails with a message naming it and containing `fragment`.
fn assert_err(path: &Path, fragment: &str) {
    let err = read_embeddings(path).expect_err(fragment).to_string();
    assert!(
        err.contains(&path.display().to_string()),
        "error does not name the file: {err}"
    );
    assert!(err.contains(fragment), "error lacks {fragment:?}: {err}");
}

#[test]
fn golden_numpy_files_read_back_exactly() {
    let e = read_embeddings(&fixtures().join("emb_f32.npy")).unwrap();
    assert_eq!((e.n, e.per_item, e.dim), (2, 3, 4));
    assert_eq!(e.data, (0..24).map(|v| v as f32).collect::<Vec<_>>());
    assert_eq!(e.get(1, 2), [20.0, 21.0, 22.0, 23.0]);
    assert_eq!(e.get(0, 1), [4.0, 5.0, 6.0, 7.0]);
    assert_eq!(e.try_get(2, 0), None);
    assert_eq!(e.try_get(0, 3), None);
    assert_eq!(e.shape(), [2, 3, 4]);

    let e = read_embeddings(&fixtures().join("emb_f64_2d.npy")).unwrap();
    assert_eq!((e.n, e.per_item, e.dim), (3, 1, 2));
    assert_eq!(e.data, [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]);
    assert_eq!(e.get(2, 0), [1.0, 1.25]);
}

#[test]
fn writer_matches_numpy_byte_for_byte() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("a.npy");
    let data: Vec<f32> = (0..24).map(|v| v as f32).collect();
    write_npy_f32(&p, &[2, 3, 4], &data).unwrap();
    assert_eq!(
        std::fs::read(&p).unwrap(),
        std::fs::read(fixtures().join("emb_f32.npy")).unwrap()
    );
}

#[test]
fn npy_round_trips_2d_and_3d() {
    let t = tempfile::tempdir().unwrap();
    let data: Vec<f32> = (0..60).map(|v| (v as f32 - 30.0) / 7.0).collect();
    let p = t.path().join("nested/dir/e3.npy");
    write_npy_f32(&p, &[5, 3, 4], &data).unwrap();
    let e = read_embeddings(&p).unwrap();
    assert_eq!(
        e,
        Embeddings {
            data: data.clone(),
            n: 5,
            per_item: 3,
            dim: 4
        }
    );
    let p2 = t.path().join("e2.npy");
    write_npy_f32(&p2, &[6, 10], &data).unwrap();
    let e = read_embeddings(&p2).unwrap();
    assert_eq!((e.n, e.per_item, e.dim), (6, 1, 10));
    assert_eq!(e.data, data);
    // Overwriting is atomic and leaves no temp file behind.
    write_npy_f32(&p2, &[2, 30], &data).unwrap();
    assert_eq!(read_embeddings(&p2).unwrap().shape(), [2, 1, 30]);
    let names: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn writer_rejects_a_shape_that_does_not_fit() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("x.npy");
    let err = write_npy_f32(&p, &[2, 3], &[0.0; 5])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("x.npy") && err.contains("[2, 3]") && err.contains("5 values"),
        "{err}"
    );
    assert!(!p.exists());
}

#[test]
fn npy_versions_and_dtypes() {
    let t = tempfile::tempdir().unwrap();
    let vals = [1.5f64, -2.25, 1e-3, 3.0e10, 0.0, -0.0];
    for major in [1u8, 2, 3] {
        let p = write(
            t.path(),
            &format!("v{major}.npy"),
            &npy(major, &dict("<f8", "False", "(2, 3)"), &f64_bytes(&vals)),
        );
        let e = read_embeddings(&p).unwrap();
        assert_eq!((e.n, e.per_item, e.dim), (2, 1, 3));
        assert_eq!(e.data, vals.iter().map(|&v| v as f32).collect::<Vec<_>>());
    }
    // Keys in any order, double quotes, no trailing comma.
    let d = "{\"shape\": (1, 2, 2), \"fortran_order\": False, \"descr\": \"<f4\"}";
    let p = write(
        t.path(),
        "order.npy",
        &npy(1, d, &f32_bytes(&[1.0, 2.0, 3.0, 4.0])),
    );
    assert_eq!(read_embeddings(&p).unwrap().get(0, 1), [3.0, 4.0]);
}

#[test]
fn npy_errors_name_file_and_problem() {
    let t = tempfile::tempdir().unwrap();
    let d4 = f32_bytes(&[0.0; 4]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "fortran.npy",
            npy(1, &dict("<f4", "True", "(2, 2)"), &d4),
            "fortran_order is True",
        ),
        (
            "object.npy",
            npy(1, &dict("|O", "False", "(2, 2)"), &[0u8; 16]),
            "object array",
        ),
        (
            "big.npy",
            npy(1, &dict(">f4", "False", "(2, 2)"), &d4),
            "big-endian",
        ),
        (
            "int.npy",
            npy(1, &dict("<i4", "False", "(2, 2)"), &d4),
            "dtype <i4 is not supported",
        ),
        (
            "half.npy",
            npy(1, &dict("<f2", "False", "(2, 2)"), &[0u8; 8]),
            "dtype <f2 is not supported",
        ),
        (
            "short.npy",
            npy(1, &dict("<f4", "False", "(2, 3)"), &d4),
            "needs 24 bytes of data, the file holds 16",
        ),
        (
            "long.npy",
            npy(1, &dict("<f4", "False", "(1, 2)"), &d4),
            "needs 8 bytes of data, the file holds 16",
        ),
        (
            "one_d.npy",
            npy(1, &dict("<f4", "False", "(4,)"), &d4),
            "expected 2-D (n, dim) or 3-D",
        ),
        (
            "four_d.npy",
            npy(1, &dict("<f4", "False", "(1, 1, 2, 2)"), &d4),
            "expected 2-D (n, dim) or 3-D",
        ),
        (
            "scalar.npy",
            npy(1, &dict("<f4", "False", "()"), &d4[..4]),
            "expected 2-D",
        ),
        (
            "zero.npy",
            npy(1, &dict("<f4", "False", "(0, 4)"), &[]),
            "no embeddings",
        ),
        (
            "nan.npy",
            npy(
                1,
                &dict("<f4", "False", "(2, 2)"),
                &f32_bytes(&[0.0, 1.0, 2.0, f32::NAN]),
            ),
            "non-finite value NaN at item 1, embedding 0, index 1",
        ),
        (
            "struct.npy",
            npy(
                1,
                "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 2), }",
                &d4,
            ),
            "structured dtype",
        ),
        (
            "noshape.npy",
            npy(1, "{'descr': '<f4', 'fortran_order': False, }", &d4),
            "no 'shape'",
        ),
        (
            "garbage.npy",
            npy(1, "not a dict", &d4),
            "not a Python dict",
        ),
        (
            "version.npy",
            {
                let mut b = npy(1, &dict("<f4", "False", "(2, 2)"), &d4);
                b[6] = 4;
                b
            },
            "version 4.0",
        ),
        (
            "magic.npy",
            b"PK\x03\x04 this is a zip, not an npy".to_vec(),
            "no \\x93NUMPY magic",
        ),
        (
            "tiny.npy",
            b"\x93NUM".to_vec(),
            "shorter than its 8-byte preamble",
        ),
        (
            "header_past_end.npy",
            {
                let mut b = npy(1, &dict("<f4", "False", "(2, 2)"), &d4);
                b[8] = 0xff;
                b[9] = 0xff;
                b
            },
            "runs past the end",
        ),
    ];
    for (name, bytes, fragment) in cases {
        let p = write(t.path(), name, &bytes);
        assert_err(&p, fragment);
    }
}

#[test]
fn safetensors_dtypes_and_tensor_choice() {
    let t = tempfile::tempdir().unwrap();
    // The only tensor, F32, 3-D, with metadata.
    let vals: Vec<f32> = (0..12).map(|v| v as f32 * 0.5).collect();
    let h = r#"{"__metadata__":{"format":"pt"},"text_emb":{"dtype":"F32","shape":[2,3,2],"data_offsets":[0,48]}}"#;
    let p = write(
        t.path(),
        "only.safetensors",
        &safetensors(h, &f32_bytes(&vals)),
    );
    let e = read_embeddings(&p).unwrap();
    assert_eq!(
        e,
        Embeddings {
            data: vals.clone(),
            n: 2,
            per_item: 3,
            dim: 2
        }
    );

    // "embeddings" chosen among several; it starts at a non-zero offset.
    let mut data = f32_bytes(&[9.0, 9.0]);
    data.extend(f64_bytes(&[0.125, -4.0, 8.5, 1e20]));
    let h = r#"{"other":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"embeddings":{"dtype":"F64","shape":[2,2],"data_offsets":[8,40]}}"#;
    let p = write(t.path(), "many.safetensors", &safetensors(h, &data));
    let e = read_embeddings(&p).unwrap();
    assert_eq!((e.n, e.per_item, e.dim), (2, 1, 2));
    assert_eq!(e.data, [0.125, -4.0, 8.5, 1e20]);

    // F16: 1.0, -2.0, 0.5, 65504 (max), 2^-24 (smallest subnormal), 2^-14 (smallest normal).
    let halves: [u16; 6] = [0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x0400];
    let data: Vec<u8> = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
    let h = r#"{"embeddings":{"dtype":"F16","shape":[3,2],"data_offsets":[0,12]}}"#;
    let p = write(t.path(), "f16.safetensors", &safetensors(h, &data));
    assert_eq!(
        read_embeddings(&p).unwrap().data,
        [1.0, -2.0, 0.5, 65504.0, 2f32.powi(-24), 2f32.powi(-14)]
    );

    // BF16: the top 16 bits of an f32.
    let want = [1.0f32, -3.5, 0.15625, 256.0];
    let data: Vec<u8> = want
        .iter()
        .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
        .collect();
    let h = r#"{"embeddings":{"dtype":"BF16","shape":[1,4],"data_offsets":[0,8]}}"#;
    let p = write(t.path(), "bf16.safetensors", &safetensors(h, &data));
    assert_eq!(read_embeddings(&p).unwrap().data, want);
}

#[test]
fn safetensors_errors_name_file_and_tensor() {
    let t = tempfile::tempdir().unwrap();
    let d = f32_bytes(&[0.0; 4]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "i32.safetensors",
            safetensors(
                r#"{"embeddings":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}"#,
                &d,
            ),
            "tensor \"embeddings\": dtype I32 is not supported",
        ),
        (
            "ambiguous.safetensors",
            safetensors(
                r#"{"a":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1,2],"data_offsets":[8,16]}}"#,
                &d,
            ),
            "2 tensors and none named \"embeddings\": a, b",
        ),
        (
            "size.safetensors",
            safetensors(
                r#"{"emb":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}}"#,
                &d,
            ),
            "tensor \"emb\": shape [2, 3] of F32 needs 24 bytes, data_offsets span 16",
        ),
        (
            "outside.safetensors",
            safetensors(
                r#"{"emb":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]}}"#,
                &d,
            ),
            "tensor \"emb\": data_offsets [8, 24] lie outside the 16 bytes",
        ),
        (
            "one_d.safetensors",
            safetensors(
                r#"{"emb":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
                &d,
            ),
            "tensor \"emb\" has shape [4]: expected 2-D",
        ),
        (
            "nan.safetensors",
            safetensors(
                r#"{"emb":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#,
                &f32_bytes(&[0.0, f32::INFINITY, 0.0, 0.0]),
            ),
            "tensor \"emb\": non-finite value inf at item 0, embedding 0, index 1",
        ),
        (
            "badshape.safetensors",
            safetensors(
                r#"{"emb":{"dtype":"F32","shape":[2,-2],"data_offsets":[0,16]}}"#,
                &d,
            ),
            "tensor \"emb\": shape is not a list",
        ),
        (
            "json.safetensors",
            safetensors("{not json", &d),
            "header is not valid JSON",
        ),
        (
            "array.safetensors",
            safetensors("[1, 2]", &d),
            "header is not a JSON object",
        ),
        (
            "none.safetensors",
            safetensors(r#"{"__metadata__":{}}"#, &d),
            "no tensors in the safetensors file",
        ),
        (
            "hlen.safetensors",
            {
                let mut b = safetensors(
                    r#"{"emb":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#,
                    &d,
                );
                b[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
                b
            },
            "header length 1099511627776 is impossible",
        ),
        (
            "tiny.safetensors",
            vec![1, 2, 3],
            "shorter than its 8-byte header length",
        ),
    ];
    for (name, bytes, fragment) in cases {
        let p = write(t.path(), name, &bytes);
        assert_err(&p, fragment);
    }
}

#[test]
fn unknown_extensions_pickles_and_missing_files() {
    let t = tempfile::tempdir().unwrap();
    let p = write(t.path(), "emb.pickle", b"\x80\x04...");
    assert_err(&p, "pickle files are not read");
    let p = write(t.path(), "emb.bin", b"1234");
    assert_err(&p, "extension must be .npy or .safetensors");
    assert_err(&t.path().join("missing.npy"), "No such file");
    // The extension is matched case-insensitively.
    let p = t.path().join("UPPER.NPY");
    std::fs::copy(fixtures().join("emb_f32.npy"), &p).unwrap();
    assert_eq!(read_embeddings(&p).unwrap().n, 2);
}

#[test]
fn names_files() {
    let t = tempfile::tempdir().unwrap();
    let p = write(
        t.path(),
        "names.txt",
        b"\xEF\xBB\xBF001.A/a_0001\r\n\n  001.A\\a_0002  \n002.B/b_0001\n\n",
    );
    assert_eq!(
        read_names(&p).unwrap(),
        ["001.A/a_0001", "001.A/a_0002", "002.B/b_0001"]
    );

    let check = |name: &str, bytes: &[u8], fragment: &str| {
        let p = write(t.path(), name, bytes);
        let err = read_names(&p).unwrap_err().to_string();
        assert!(
            err.contains(&p.display().to_string()) && err.contains(fragment),
            "{err}"
        );
    };
    check(
        "dup.txt",
        b"a/1\nb/2\n\na/1\n",
        "line 4: name `a/1` already listed at line 1",
    );
    check(
        "latin1.txt",
        b"caf\xe9/1\n",
        "not UTF-8 (invalid byte at offset 3)",
    );
    check("empty.txt", b"\n \n", "no names found");
    let missing = t.path().join("absent.txt");
    assert!(read_names(&missing)
        .unwrap_err()
        .to_string()
        .contains("absent.txt"));
}
