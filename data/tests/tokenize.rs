//! Tests of the caption tokenizer: training word-level and BPE vocabularies, save/load round trips,
//! unknown words, prompt errors that quote the prompt, batch padding and truncation, config parsing.
//! (The real MiniLM WordPiece file is tested in minilm_fetch.rs.)

use ganzoo_data::shapes::{training_captions, ShapeAttrs};
use ganzoo_data::tokenize::{PAD_TOKEN, UNK_TOKEN};
use ganzoo_data::{CaptionTokenizer, DataError, TokenizerConfig};

fn captions() -> Vec<String> {
    ["a small red circle on a blue background", "large green square, white background", "a Small RED triangle!"]
        .map(String::from)
        .to_vec()
}

#[test]
fn word_level_vocabulary_and_unknown_words() {
    let tok = CaptionTokenizer::train(&TokenizerConfig::default(), &captions()).unwrap();
    assert_eq!((tok.pad_id(), tok.unk_id()), (0, Some(1)));
    assert_eq!(tok.token_to_id(PAD_TOKEN), Some(0));
    assert_eq!(tok.token_to_id(UNK_TOKEN), Some(1));
    // Words: a small red circle on blue background large green square , white triangle ! = 14, + 2 specials.
    assert_eq!(tok.vocab_size(), 16);
    let ids = tok.encode("A small RED circle").unwrap();
    assert_eq!(ids.len(), 4);
    assert_eq!(ids, tok.encode("a small red circle").unwrap(), "lowercased");
    assert!(ids.iter().all(|&i| i > 1));
    // An unknown word maps to [UNK]; one known word is enough.
    let ids = tok.encode("a crimson circle").unwrap();
    assert_eq!(ids[1], 1);
    assert_eq!(tok.unknown_count(&ids), 1);
    // Accents are stripped, punctuation split off.
    assert_eq!(tok.encode("círcle,").unwrap(), vec![tok.token_to_id("circle").unwrap(), tok.token_to_id(",").unwrap()]);
}

#[test]
fn prompt_errors_quote_the_prompt() {
    let tok = CaptionTokenizer::train(&TokenizerConfig::default(), &captions()).unwrap();
    for blank in ["", "   \t"] {
        let err = tok.encode(blank).unwrap_err();
        assert!(matches!(err, DataError::Invalid(_)), "{err:?}");
        assert!(err.to_string().contains(&format!("{blank:?}")) && err.to_string().contains("empty"), "{err}");
    }
    let err = tok.encode("crimson disc, navy").unwrap_err();
    assert!(
        err.to_string().contains("none of the words of \"crimson disc, navy\" are in the tokenizer's vocabulary"),
        "{err}"
    );
    assert!(tok.encode_batch(&["a red circle", "zzz qqq"], 16, true).unwrap_err().to_string().contains("zzz qqq"));
    // Lenient batches (evaluation prompts) keep all-unknown rows as unknown tokens.
    let b = tok.encode_batch(&["a red circle", "zzz qqq"], 16, false).unwrap();
    assert_eq!((b.n, b.len), (2, 3));
    assert_eq!(&b.ids[3..5], &[1, 1]);
    // The lenient form never fails.
    assert_eq!(tok.encode_lenient("crimson disc"), vec![1, 1]);
    assert_eq!(tok.encode_lenient(""), Vec::<i64>::new());
}

#[test]
fn bpe_trains_and_splits_unseen_words_into_pieces() {
    let cfg = TokenizerConfig::Bpe { vocab_size: 60, min_frequency: 1 };
    let tok = CaptionTokenizer::train(&cfg, &captions()).unwrap();
    assert_eq!((tok.pad_id(), tok.unk_id()), (0, Some(1)));
    assert!(tok.vocab_size() <= 60 && tok.vocab_size() > 20, "{}", tok.vocab_size());
    let known = tok.encode("red circle").unwrap();
    assert!(!known.is_empty() && !known.contains(&1));
    // A new word made of known letters is split, not unknown; unknown letters become [UNK].
    let pieces = tok.encode("circular").unwrap();
    assert!(!pieces.contains(&1), "{pieces:?}");
    assert!(tok.encode("red ж").unwrap().contains(&1));
    assert!(tok.encode("жжж").unwrap_err().to_string().contains("жжж"));
}

#[test]
fn save_and_from_file_round_trip() {
    let t = tempfile::tempdir().unwrap();
    let all = training_captions();
    for cfg in [TokenizerConfig::default(), TokenizerConfig::Bpe { vocab_size: 200, min_frequency: 2 }] {
        let tok = CaptionTokenizer::train(&cfg, &all).unwrap();
        let path = t.path().join("run/tokenizer.json");
        tok.save(&path).unwrap();
        let back = CaptionTokenizer::from_file(&path).unwrap();
        let via_cfg = TokenizerConfig::File { path: path.clone() }.build(&[]).unwrap();
        assert_eq!((back.vocab_size(), back.pad_id(), back.unk_id()), (tok.vocab_size(), 0, Some(1)));
        for a in ShapeAttrs::all().iter().step_by(7) {
            for c in a.captions().iter().chain(a.unseen_captions().iter()) {
                assert_eq!(tok.encode_lenient(c), back.encode_lenient(c), "{c}");
                assert_eq!(via_cfg.encode_lenient(c), back.encode_lenient(c), "{c}");
            }
        }
        // No stray temp files next to it.
        let names: Vec<_> = std::fs::read_dir(t.path().join("run")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["tokenizer.json"]);
    }
    // Word-level on the shapes captions: every training word is known, held-out synonyms are not.
    let tok = CaptionTokenizer::train(&TokenizerConfig::default(), &all).unwrap();
    assert!(all.iter().all(|c| tok.unknown_count(&tok.encode(c).unwrap()) == 0));
    let a = ShapeAttrs { shape: 0, colour: 0, size: 0, background: 3 };
    let unseen = &a.unseen_captions()[0];
    let ids = tok.encode_lenient(unseen);
    assert_eq!(tok.unknown_count(&ids), ids.len() - 1, "only \"a\" is known in {unseen:?}");
}

#[test]
fn from_file_errors_name_the_file() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("nope/tokenizer.json");
    let err = CaptionTokenizer::from_file(&missing).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }) && err.to_string().contains("nope/tokenizer.json"), "{err}");
    let bad = t.path().join("bad-tokenizer.json");
    std::fs::write(&bad, "{\"not\": \"a tokenizer\"}").unwrap();
    let err = CaptionTokenizer::from_file(&bad).unwrap_err();
    assert!(matches!(err, DataError::Decode { .. }) && err.to_string().contains("bad-tokenizer.json"), "{err}");
    let err = TokenizerConfig::File { path: bad.clone() }.build(&captions()).unwrap_err();
    assert!(err.to_string().contains("bad-tokenizer.json"), "{err}");
    assert!(CaptionTokenizer::train(&TokenizerConfig::default(), &[]).is_err());
}

#[test]
fn batch_pads_masks_and_truncates() {
    let tok = CaptionTokenizer::train(&TokenizerConfig::default(), &captions()).unwrap();
    let b = tok.encode_batch(&["red circle", "a small red circle on a blue background"], 64, true).unwrap();
    assert_eq!((b.n, b.len), (2, 8));
    assert_eq!(b.ids.len(), 16);
    assert_eq!(&b.ids[2..8], &[0; 6]);
    assert_eq!(&b.mask[..8], &[1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert!(b.mask[8..].iter().all(|&m| m == 1.0));
    assert_eq!(&b.ids[..2], tok.encode("red circle").unwrap().as_slice());
    // Capped at max_len (no special tokens here: plain truncation).
    let b = tok.encode_batch(&["red circle", "a small red circle on a blue background"], 3, true).unwrap();
    assert_eq!((b.n, b.len), (2, 3));
    assert_eq!(&b.ids[3..], &tok.encode("a small red").unwrap()[..]);
    assert!(tok.encode_batch(&[], 4, true).is_err());
    assert!(tok.encode_batch(&["red"], 0, true).is_err());
}

#[test]
fn config_parses_with_defaults_and_rejects_unknown_keys() {
    let c: TokenizerConfig = serde_json::from_str(r#"{"kind": "word_level"}"#).unwrap();
    assert_eq!(c, TokenizerConfig::WordLevel { min_frequency: 1 });
    let c: TokenizerConfig = serde_json::from_str(r#"{"kind": "bpe"}"#).unwrap();
    assert_eq!(c, TokenizerConfig::Bpe { vocab_size: 1000, min_frequency: 1 });
    let c: TokenizerConfig = serde_json::from_str(r#"{"kind": "file", "path": "t.json"}"#).unwrap();
    assert_eq!(c, TokenizerConfig::File { path: "t.json".into() });
    let err = serde_json::from_str::<TokenizerConfig>(r#"{"kind": "bpe", "vocab": 10}"#).unwrap_err();
    assert!(err.to_string().contains("vocab"), "{err}");
    assert!(serde_json::from_str::<TokenizerConfig>(r#"{"kind": "sentencepiece"}"#).is_err());
    let err =
        CaptionTokenizer::train(&TokenizerConfig::Bpe { vocab_size: 2, min_frequency: 1 }, &captions()).unwrap_err();
    assert!(err.to_string().contains("tokenizer.vocab_size"), "{err}");
}

/// Writes the committed WordPiece fixture with `from` replaced by `to` (which must occur) and loads it.
fn load_edited_fixture(from: &str, to: &str) -> (tempfile::TempDir, std::path::PathBuf, Result<CaptionTokenizer, DataError>) {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wordpiece_tokenizer.json");
    let text = std::fs::read_to_string(fixture).unwrap();
    assert!(text.contains(from), "fixture lacks {from:?}");
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("tokenizer.json");
    std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
    let r = CaptionTokenizer::from_file(&p);
    (t, p, r)
}

fn assert_load_error(from: &str, to: &str, fragment: &str) {
    let (_t, p, r) = load_edited_fixture(from, to);
    let e = r.err().unwrap_or_else(|| panic!("{from:?} -> {to:?} loaded")).to_string();
    assert!(e.contains(&p.display().to_string()) && e.contains(fragment), "{e}");
}

#[test]
fn wordpiece_fixture_loads_and_encodes() {
    let (_t, _p, r) = load_edited_fixture("\"bird\"", "\"bird\"");
    let tok = r.unwrap();
    let ids = tok.encode("a small bird").unwrap();
    assert_eq!((ids.first(), ids.last()), (tok.token_to_id("[CLS]").as_ref(), tok.token_to_id("[SEP]").as_ref()));
}

// Regression tests from the fuzzing of issue #16: each input made `from_file`, or the first encoding, panic or
// allocate without bound inside the `tokenizers` crate.

#[test]
fn malformed_decoder_section_is_an_error_not_a_panic() {
    // Read from bytes, the crate's decoder deserializer `expect`s on a syntax error inside the section.
    assert_load_error("\"decoder\": {", "\"decoder\": {1: 2, ", "not a valid tokenizer.json");
}

#[test]
fn bad_precompiled_normalizer_is_an_error_not_a_panic() {
    // The crate `expect`s a Precompiled normalizer to hold a valid charsmap.
    assert_load_error("\"type\": \"BertNormalizer\"", "\"type\": \"Precompiled\"", "tokenizers crate failed");
}

#[test]
fn template_naming_an_undefined_special_token_is_an_error_not_a_panic() {
    // The single template uses [SEP], which special_tokens no longer defines: every encoding panicked.
    assert_load_error("\"[SEP]\": {", "\"[S,P]\": {", "post_processor");
}

#[test]
fn token_id_past_the_vocabulary_is_an_error() {
    // With an id of 4e9, saving the tokenizer walked (and printed) 4e9 vocabulary "holes", gigabytes; the text
    // encoder's embedding table, sized by the vocabulary, could not hold such an id either.
    assert_load_error("\"bird\": 8", "\"bird\": 4000000000", "outside the vocabulary");
}

#[test]
fn two_tokens_on_one_id_are_an_error() {
    // `save` kept one of the two (a run's copy of the tokenizer would differ from the file) and printed a warning.
    assert_load_error("\"bird\": 8", "\"bird\": 9", "share the id 9");
}
