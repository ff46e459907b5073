//! Fuzzing of the data layer's readers of user files (issue #16): caption, split and names files, `.npy`
//! embeddings, `.npz` FID statistics, `.safetensors` embeddings and `tokenizer.json`. Each reader gets mutated
//! copies of valid inputs (the product's own writers' output and committed fixtures) and must answer every one
//! with a value or an error: no panic, no single allocation past `fuzz_support::alloc_bound`.
//!
//! Seeds: the fixtures (numpy-written `.npy`; `wordpiece_tokenizer.json`, the MiniLM tokenizer.json with its
//! vocabulary cut to 120 tokens and renumbered), files the product writes here (`write_npy_f32`,
//! `write_fid_stats`, trained tokenizers' `save`), and small files built to the formats' specs.
//!
//! Long run: `GANZOO_FUZZ_CASES=200000 cargo test -p ganzoo-data --test fuzz -- --nocapture` (see
//! bench/README.md); `GANZOO_FUZZ_SEED` picks other cases.

#[path = "fuzz_support/mod.rs"]
mod fuzz_support;
#[path = "support/npy.rs"]
mod npy_file;

use std::io::Write;
use std::path::{Path, PathBuf};

use fuzz_support::{cases, fuzz};
use npy_file::npy;
use ganzoo_data::captions::{check_layout, CaptionedConfig, CaptionedImages};
use ganzoo_data::embeddings::{read_embeddings, read_names, write_npy_f32};
use ganzoo_data::fid_stats::{read_fid_stats, write_fid_stats, GaussianStats};
use ganzoo_data::tokenize::{CaptionTokenizer, TokenizerConfig};
use ganzoo_data::{Dataset, OnBadInput, Split};
use rand::Rng;

/// Cases per reader in CI: both fuzz binaries together take about a minute on two cores (dev profile).
const CI_CASES: usize = 25_000;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn f32_bytes(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| (i as f32 * 0.25 - 1.0).to_le_bytes()).collect()
}

fn f64_bytes(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| (i as f64 / 8.0).to_le_bytes()).collect()
}

/// A safetensors file: 8-byte little-endian header length, the JSON header, the data.
fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Tokens of the Python-dict NPY header and of the zip container.
const NPY_DICT: &[&[u8]] = &[
    b"\x93NUMPY", b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", b"'descr'", b"'shape'",
    b"'fortran_order'", b"True", b"False", b"(", b")", b"()", b"(0,)", b",", b"'<f8'", b"'|O'", b"'>f4'", b"[('a', '<f4')]",
    b"L", b"mu.npy", b"sigma.npy", b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06",
];

fn seed_npy(dir: &Path) -> Vec<Vec<u8>> {
    let mut seeds = vec![
        std::fs::read(fixtures().join("emb_f32.npy")).unwrap(),
        std::fs::read(fixtures().join("emb_f64_2d.npy")).unwrap(),
        npy(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 3), }", &f32_bytes(6)),
        npy(3, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", &f64_bytes(6)),
        npy(1, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (1L, 5L)}", &f32_bytes(5)),
    ];
    for (i, shape) in [vec![4usize, 3], vec![2, 2, 2]].iter().enumerate() {
        let p = dir.join(format!("w{i}.npy"));
        let n = shape.iter().product::<usize>();
        write_npy_f32(&p, shape, &(0..n).map(|v| v as f32).collect::<Vec<_>>()).unwrap();
        seeds.push(std::fs::read(p).unwrap());
    }
    seeds
}

#[test]
fn fuzz_npy_embeddings() {
    let _serial = fuzz_support::serial();
    let t = tempfile::tempdir().unwrap();
    let seeds = seed_npy(t.path());
    let p = t.path().join("case.npy");
    fuzz("npy", "npy", &seeds, NPY_DICT, cases(CI_CASES), |input, _| {
        std::fs::write(&p, input).unwrap();
        let e = read_embeddings(&p).map_err(err)?;
        // Every row the shape promises is there.
        let [n, k, d] = e.shape();
        assert_eq!(e.data.len(), n * k * d);
        assert_eq!(e.get(n - 1, k - 1).len(), d);
        Ok(())
    })
    .check();
}

/// An `.npz` of `(name, bytes)` members, stored or deflated.
fn npz(members: &[(&str, Vec<u8>)], deflate: bool) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let method = if deflate { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in members {
        z.start_file(*name, opts).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap().into_inner()
}

#[test]
fn fuzz_npz_fid_stats() {
    let _serial = fuzz_support::serial();
    let t = tempfile::tempdir().unwrap();
    let mut seeds = Vec::new();
    for f in [3usize, 5] {
        let sigma: Vec<f64> = (0..f * f).map(|i| if i % (f + 1) == 0 { 1.0 } else { 0.1 }).collect();
        let stats = GaussianStats::new(f, (0..f).map(|i| i as f64).collect(), sigma).unwrap();
        let p = t.path().join(format!("s{f}.npz"));
        write_fid_stats(&p, &stats).unwrap();
        seeds.push(std::fs::read(&p).unwrap());
    }
    let dict = |shape: &str, descr: &str| format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    seeds.push(npz(
        &[
            ("mu.npy", npy(1, &dict("(2,)", "<f4"), &f32_bytes(2))),
            ("sigma.npy", npy(1, &dict("(2, 2)", "<f4"), &f32_bytes(4))),
        ],
        true,
    ));
    seeds.push(npz(
        &[
            ("extra.npy", npy(1, &dict("(1,)", "<f8"), &f64_bytes(1))),
            ("mu.npy", npy(2, &dict("(2,)", "<f8"), &f64_bytes(2))),
            ("sigma.npy", npy(3, &dict("(2, 2)", "<f8"), &f64_bytes(4))),
        ],
        false,
    ));
    let p = t.path().join("case.npz");
    fuzz("npz", "npz", &seeds, NPY_DICT, cases(CI_CASES), |input, _| {
        std::fs::write(&p, input).unwrap();
        let s = read_fid_stats(&p).map_err(err)?;
        assert_eq!((s.mu.len(), s.sigma.len()), (s.dim, s.dim * s.dim));
        Ok(())
    })
    .check();
}

const SAFETENSORS_DICT: &[&[u8]] = &[
    b"\"dtype\"", b"\"shape\"", b"\"data_offsets\"", b"\"embeddings\"", b"\"__metadata__\"", b"\"F32\"", b"\"F16\"",
    b"\"BF16\"", b"\"F64\"", b"\"I64\"", b"[", b"]", b"{", b"}", b",", b":", b"null", b"-1", b"1e400", b"[0, 0]",
    b"\"\\u0000\"", b"\"\\ud800\"",
];

#[test]
fn fuzz_safetensors_embeddings() {
    let _serial = fuzz_support::serial();
    let f16: Vec<u8> = (0..8u16).flat_map(|i| (0x3c00u16 + i * 0x100).to_le_bytes()).collect();
    let bf16: Vec<u8> = (0..6u16).flat_map(|i| (0x3f80u16 + i).to_le_bytes()).collect();
    let seeds = vec![
        safetensors(r#"{"embeddings":{"dtype":"F32","shape":[2,3,2],"data_offsets":[0,48]}}"#, &f32_bytes(12)),
        safetensors(
            r#"{"__metadata__":{"format":"pt"},"names":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"embeddings":{"dtype":"F64","shape":[2,2],"data_offsets":[8,40]}}"#,
            &f64_bytes(5),
        ),
        safetensors(r#"{"only":{"dtype":"F16","shape":[4,2],"data_offsets":[0,16]}}"#, &f16),
        safetensors(r#"{"e":{"dtype":"BF16","shape":[3,1,2],"data_offsets":[0,12]},"__metadata__":{}}  "#, &bf16),
    ];
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("case.safetensors");
    fuzz("safetensors", "safetensors", &seeds, SAFETENSORS_DICT, cases(CI_CASES), |input, _| {
        std::fs::write(&p, input).unwrap();
        let e = read_embeddings(&p).map_err(err)?;
        let [n, k, d] = e.shape();
        assert_eq!(e.data.len(), n * k * d);
        Ok(())
    })
    .check();
}

/// A tiny CUB-like tree: two classes, three images (PNG), a caption file each, class-level splits.
fn build_tree(root: &Path) -> Vec<u8> {
    let caption = "a small bird with a red crown\n\n  and short wings  \r\nthis bird is mostly white\n".as_bytes();
    for name in ["001.Alpha/a_0001", "001.Alpha/a_0002", "002.Beta/b_0001"] {
        let img = root.join("images").join(format!("{name}.png"));
        std::fs::create_dir_all(img.parent().unwrap()).unwrap();
        image::RgbImage::from_fn(6, 5, |x, y| image::Rgb([x as u8 * 40, y as u8 * 50, 7])).save(&img).unwrap();
        let txt = root.join("text").join(format!("{name}.txt"));
        std::fs::create_dir_all(txt.parent().unwrap()).unwrap();
        std::fs::write(txt, caption).unwrap();
    }
    std::fs::write(root.join("trainclasses.txt"), "001.Alpha\n002.Beta/b_0001.png\n").unwrap();
    std::fs::write(root.join("testclasses.txt"), "002.Beta\n").unwrap();
    caption.to_vec()
}

const TEXT_DICT: &[&[u8]] = &[
    b"\n", b"\r\n", b"\r", b"\xef\xbb\xbf", b"001.Alpha", b"002.Beta", b"001.Alpha/a_0002", b"/", b"\\", b"..", b".png",
    b".jpg", b"a_0001", b"  ", b"\t", b"\0",
];

/// Opens the train split in error or skip mode (drawn per case) and reads every item's captions.
fn open_captioned(root: &Path, case: &mut fuzz_support::Case) -> Result<(), String> {
    let mode = if case.rng.gen() { OnBadInput::Error } else { OnBadInput::Skip };
    case.note = format!("on_bad_input: {mode:?}");
    let cfg = CaptionedConfig { size: 4, on_bad_input: mode, ..CaptionedConfig::new(root) };
    if case.rng.gen_ratio(1, 8) {
        let _ = check_layout(&cfg).to_string();
    }
    let ds = CaptionedImages::open(&cfg, Split::Train).map_err(err)?;
    for i in 0..ds.len() {
        assert!(!ds.captions(i).is_empty());
        assert_eq!(ds.index_of(ds.name(i)), Some(i));
    }
    let _ = ds.all_captions();
    Ok(())
}

#[test]
fn fuzz_caption_files() {
    let _serial = fuzz_support::serial();
    let t = tempfile::tempdir().unwrap();
    let caption = build_tree(t.path());
    let seeds = vec![caption, "one caption only".into(), "\u{feff}ünïcode caption — with dashes\n\n".into()];
    let target = t.path().join("text/001.Alpha/a_0001.txt");
    fuzz("captions", "txt", &seeds, TEXT_DICT, cases(CI_CASES), |input, case| {
        std::fs::write(&target, input).unwrap();
        open_captioned(t.path(), case)
    })
    .check();
}

#[test]
fn fuzz_split_files() {
    let _serial = fuzz_support::serial();
    let t = tempfile::tempdir().unwrap();
    build_tree(t.path());
    let seeds = vec![
        b"001.Alpha\n002.Beta/b_0001.png\n".to_vec(),
        b"001.Alpha/a_0001\r\n001.Alpha/a_0002.PNG\r\n002.Beta\\\r\n".to_vec(),
        b"\xef\xbb\xbf002.Beta/\n\n  001.Alpha  \n".to_vec(),
    ];
    let target = t.path().join("trainclasses.txt");
    fuzz("split", "txt", &seeds, TEXT_DICT, cases(CI_CASES), |input, case| {
        std::fs::write(&target, input).unwrap();
        open_captioned(t.path(), case)
    })
    .check();
}

#[test]
fn fuzz_names_files() {
    let _serial = fuzz_support::serial();
    let t = tempfile::tempdir().unwrap();
    let seeds = vec![
        b"001.Black_footed_Albatross/Black_Footed_Albatross_0046_18\n001.Black_footed_Albatross/x_2\n".to_vec(),
        b"\xef\xbb\xbfa\\b\r\n\r\n  c/d  \n".to_vec(),
    ];
    let p = t.path().join("names.txt");
    fuzz("names", "txt", &seeds, TEXT_DICT, cases(CI_CASES), |input, _| {
        std::fs::write(&p, input).unwrap();
        let names = read_names(&p).map_err(err)?;
        assert!(!names.is_empty());
        Ok(())
    })
    .check();
}

const TOKENIZER_DICT: &[&[u8]] = &[
    b"\"type\"", b"\"WordPiece\"", b"\"WordLevel\"", b"\"BPE\"", b"\"Unigram\"", b"\"vocab\"", b"\"merges\"",
    b"\"unk_token\"", b"\"added_tokens\"", b"\"id\"", b"\"content\"", b"\"special\"", b"\"normalizer\"",
    b"\"pre_tokenizer\"", b"\"post_processor\"", b"\"decoder\"", b"\"padding\"", b"\"truncation\"",
    b"{\"Fixed\": 0}", b"\"BatchLongest\"", b"\"max_length\": 0", b"\"stride\": 99", b"\"pad_to_multiple_of\": 0",
    b"\"pad_id\": 4294967295", b"\"max_input_chars_per_word\": 0", b"\"Split\"", b"{\"Regex\": \"((\"}",
    b"{\"String\": \"\"}", b"\"Sequence\"", b"\"TemplateProcessing\"", b"\"$A\"", b"\"$B\"", b"\"Replace\"",
    b"\"Metaspace\"", b"\"ByteLevel\"", b"\"[UNK]\"", b"\"[PAD]\"", b"\"##\"", b"null", b"true", b"false", b"[", b"]",
    b"{", b"}", b",", b":", b"-1", b"[[\"a\", \"b\"]]", b"\"a b\"",
];

#[test]
fn fuzz_tokenizer_files() {
    let _serial = fuzz_support::serial();
    let t = tempfile::tempdir().unwrap();
    let captions: Vec<String> = [
        "a small bird with a red crown and short wings",
        "this flower has pink petals and a yellow center",
        "the bird is black with white wing bars",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut seeds = vec![std::fs::read(fixtures().join("wordpiece_tokenizer.json")).unwrap()];
    for (i, cfg) in [TokenizerConfig::WordLevel { min_frequency: 1 }, TokenizerConfig::Bpe { vocab_size: 60, min_frequency: 1 }]
        .iter()
        .enumerate()
    {
        let p = t.path().join(format!("trained{i}.json"));
        CaptionTokenizer::train(cfg, &captions).unwrap().save(&p).unwrap();
        seeds.push(std::fs::read(p).unwrap());
    }
    let p = t.path().join("tokenizer.json");
    let saved = t.path().join("saved.json");
    let texts: Vec<&str> = captions.iter().map(String::as_str).chain(["", "  ", "ünknown wörds 🐦 [CLS] ##s"]).collect();
    fuzz("tokenizer", "json", &seeds, TOKENIZER_DICT, cases(CI_CASES), |input, _| {
        std::fs::write(&p, input).unwrap();
        let tok = CaptionTokenizer::from_file(&p).map_err(err)?;
        // A file that loads is then used as a run uses it: prompts, training captions, batches, saving.
        for text in &texts {
            let _ = tok.encode(text);
            let ids = tok.encode_lenient(text);
            let _ = tok.unknown_count(&ids);
        }
        let _ = tok.encode_batch(&texts, 8, false);
        let _ = tok.encode_batch(&texts[..3], 1, true);
        let _ = (tok.vocab_size(), tok.pad_id(), tok.unk_id());
        tok.save(&saved).map_err(err)?;
        Ok(())
    })
    .check();
}
