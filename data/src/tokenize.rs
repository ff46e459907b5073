//! Caption tokenization on the `tokenizers` crate: a word-level or BPE vocabulary trained on a dataset's
//! training captions (saved in the run as `tokenizer.json`), or a user's `tokenizer.json` such as the
//! WordPiece vocabulary of the pretrained MiniLM encoder ([`crate::minilm`]).
//!
//! Prompts are user input: an empty prompt, or one none of whose words the vocabulary knows, is an error
//! that quotes the prompt ([`CaptionTokenizer::encode`]); training captions go through
//! [`CaptionTokenizer::encode_lenient`], which never fails, and unknown tokens are counted instead.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::models::wordlevel::{WordLevel, WordLevelTrainer};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{AddedToken, Tokenizer};

use crate::error::{catch_panic, DataError, Result};
use crate::grid::write_atomic;

/// The padding token of trained tokenizers (id 0).
pub const PAD_TOKEN: &str = "[PAD]";
/// The unknown-word token of trained tokenizers (id 1).
pub const UNK_TOKEN: &str = "[UNK]";

fn one() -> u64 {
    1
}
fn default_bpe_vocab() -> usize {
    1000
}

/// How captions are tokenized (the `tokenizer` section of a text-conditional config).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TokenizerConfig {
    /// A word-level vocabulary trained on the training captions.
    WordLevel {
        /// Words seen fewer times than this map to `[UNK]`.
        #[serde(default = "one")]
        min_frequency: u64,
    },
    /// Byte-pair encoding trained on the training captions.
    Bpe {
        /// Target vocabulary size (special tokens and the alphabet included).
        #[serde(default = "default_bpe_vocab")]
        vocab_size: usize,
        /// Merges seen fewer times than this are not learned.
        #[serde(default = "one")]
        min_frequency: u64,
    },
    /// A user's tokenizer.json (e.g. a WordPiece vocabulary); padding and truncation in the file are switched off.
    File {
        /// Path of the `tokenizer.json`.
        path: PathBuf,
    },
}

impl Default for TokenizerConfig {
    fn default() -> Self {
        TokenizerConfig::WordLevel { min_frequency: 1 }
    }
}

impl TokenizerConfig {
    /// Builds the tokenizer (same as [`CaptionTokenizer::train`]).
    pub fn build(&self, captions: &[String]) -> Result<CaptionTokenizer> {
        CaptionTokenizer::train(self, captions)
    }
}

/// A batch of token ids, row-major `n × len`, padded with the pad id; `mask` is 1 for tokens, 0 for padding.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBatch {
    /// Token ids, `n × len`, row-major.
    pub ids: Vec<i64>,
    /// 1.0 where `ids` holds a token, 0.0 where it holds padding.
    pub mask: Vec<f32>,
    /// Number of texts (rows).
    pub n: usize,
    /// Tokens per row (the longest text, capped at `max_len`).
    pub len: usize,
}

/// A tokenizer for captions and prompts; see the module docs.
#[derive(Debug, Clone)]
pub struct CaptionTokenizer {
    tok: Tokenizer,
    pad_id: i64,
    unk_id: Option<i64>,
    /// `tok.get_vocab_size(true)`, which rebuilds the whole vocabulary map on each call.
    vocab_size: usize,
}

/// Ids and special-token mask of one encoded text.
struct Encoded {
    ids: Vec<i64>,
    special: Vec<bool>,
    tokens: Vec<String>,
}

impl CaptionTokenizer {
    /// Trains a word-level or BPE tokenizer on `captions`, or loads the file of `TokenizerConfig::File`.
    ///
    /// Trained tokenizers use BERT's normalizer (clean control characters, lowercase, NFD + strip
    /// accents) and pre-tokenizer (split on whitespace and punctuation), and reserve `[PAD]` = 0 and
    /// `[UNK]` = 1; they add no other special tokens. Errors: no captions, `tokenizer.vocab_size` below 3,
    /// or a vocabulary with no words beyond the special tokens.
    pub fn train(cfg: &TokenizerConfig, captions: &[String]) -> Result<Self> {
        let specials = vec![AddedToken::from(PAD_TOKEN, true), AddedToken::from(UNK_TOKEN, true)];
        let (model, mut trainer): (ModelWrapper, TrainerWrapper) = match cfg {
            TokenizerConfig::File { path } => return Self::from_file(path),
            TokenizerConfig::WordLevel { min_frequency } => {
                let model = WordLevel::builder()
                    .unk_token(UNK_TOKEN.into())
                    .build()
                    .map_err(|e| DataError::Invalid(format!("word-level tokenizer: {e}")))?;
                let trainer = WordLevelTrainer::builder()
                    .min_frequency(*min_frequency)
                    .show_progress(false)
                    .special_tokens(specials)
                    .build()
                    .map_err(|e| DataError::Invalid(format!("word-level trainer: {e}")))?;
                (model.into(), TrainerWrapper::WordLevelTrainer(trainer))
            }
            TokenizerConfig::Bpe { vocab_size, min_frequency } => {
                if *vocab_size < 3 {
                    return Err(DataError::Invalid(format!(
                        "tokenizer.vocab_size must be at least 3, got {vocab_size}"
                    )));
                }
                let model = BPE::builder()
                    .unk_token(UNK_TOKEN.into())
                    .build()
                    .map_err(|e| DataError::Invalid(format!("BPE tokenizer: {e}")))?;
                let trainer = BpeTrainer::builder()
                    .vocab_size(*vocab_size)
                    .min_frequency(*min_frequency)
                    .show_progress(false)
                    .special_tokens(specials)
                    .build();
                (model.into(), TrainerWrapper::BpeTrainer(trainer))
            }
        };
        if captions.is_empty() {
            return Err(DataError::Invalid("cannot train a caption tokenizer on 0 captions".into()));
        }
        let mut tok = Tokenizer::new(model);
        tok.with_normalizer(Some(BertNormalizer::new(true, true, Some(true), true)));
        tok.with_pre_tokenizer(Some(BertPreTokenizer));
        tok.train(&mut trainer, captions.iter())
            .map_err(|e| DataError::Invalid(format!("training the caption tokenizer failed: {e}")))?;
        if tok.get_vocab_size(true) <= 2 {
            return Err(DataError::Invalid(format!(
                "the caption tokenizer learned no words from {} captions (is tokenizer.min_frequency too high?)",
                captions.len()
            )));
        }
        Ok(Self::wrap(tok))
    }

    /// Loads a `tokenizer.json`, with its padding and truncation switched off. The unknown token comes
    /// from the model (WordPiece / WordLevel / BPE `unk_token`; else `[UNK]` or `<unk>` if in the
    /// vocabulary); the pad id is that of `[PAD]`, else the file's padding id, else 0.
    /// Errors name the file: missing, unreadable, or not a tokenizer.json.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let invalid = |e: String| DataError::Decode { path: path.into(), reason: format!("not a valid tokenizer.json: {e}") };
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        // The `tokenizers` crate panics (`expect`) on some malformed sections: a `decoder` that is not JSON,
        // when it reads bytes (reading the parsed value avoids that), or a bad `Precompiled` normalizer (which
        // catching the unwind turns into this error).
        let tok = catch_panic(|| serde_json::from_value::<Tokenizer>(value))
            .map_err(|p| invalid(format!("the tokenizers crate failed on it ({p})")))?
            .map_err(|e| invalid(e.to_string()))?;
        let wrapped = Self::wrap(tok);
        wrapped.check_ids().map_err(|reason| DataError::Decode { path: path.into(), reason })?;
        // Nor does the crate check a `TemplateProcessing` post-processor when it reads one: a template naming a
        // special token it does not define, or `$B` in the single template, panics on every encoding. One
        // encoding now finds that while the file can still be named.
        if let Err(p) = catch_panic(|| wrapped.tok.encode("a", true).map(|_| ())) {
            return Err(invalid(format!(
                "encoding a test word fails inside the tokenizers crate ({p}); is the post_processor's template \
                 consistent with its special_tokens?"
            )));
        }
        Ok(wrapped)
    }

    /// Token ids must be distinct and lie below the vocabulary size: the text encoder's embedding table has
    /// that many rows, and the `tokenizers` crate's serializer walks every id up to the largest (a file with an
    /// id of 4e9 made `save` allocate gigabytes).
    fn check_ids(&self) -> std::result::Result<(), String> {
        let n = self.vocab_size();
        if n == 0 {
            return Err("the vocabulary is empty".into());
        }
        let vocab = self.tok.get_vocab(true);
        if let Some((token, id)) = vocab.iter().max_by_key(|(_, &id)| id).filter(|(_, &id)| id as usize >= n) {
            return Err(format!(
                "token {token:?} has id {id}, outside the vocabulary of {n} tokens (ids must be 0..{n})"
            ));
        }
        // Two tokens on one id: `save` would keep one of them (and print a warning about the "hole" left).
        let mut by_id: Vec<(u32, &String)> = vocab.iter().map(|(t, &id)| (id, t)).collect();
        by_id.sort_unstable();
        if let Some(w) = by_id.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(format!("tokens {:?} and {:?} share the id {}", w[0].1, w[1].1, w[0].0));
        }
        if self.pad_id < 0 || self.pad_id as usize >= n {
            return Err(format!("the padding id {} is outside the vocabulary of {n} tokens", self.pad_id));
        }
        Ok(())
    }

    fn wrap(mut tok: Tokenizer) -> Self {
        let file_pad = tok.get_padding().map(|p| i64::from(p.pad_id));
        tok.with_padding(None);
        // Switching truncation off cannot fail (only invalid parameters are rejected).
        let _ = tok.with_truncation(None);
        let id = |t: &str| tok.token_to_id(t).map(i64::from);
        let model_unk = match tok.get_model() {
            ModelWrapper::WordPiece(m) => Some(m.unk_token.clone()),
            ModelWrapper::WordLevel(m) => Some(m.unk_token.clone()),
            ModelWrapper::BPE(m) => m.unk_token.clone(),
            _ => None,
        };
        let unk_id = model_unk.as_deref().and_then(id).or_else(|| id(UNK_TOKEN)).or_else(|| id("<unk>"));
        let pad_id = id(PAD_TOKEN).or(file_pad).unwrap_or(0);
        let vocab_size = tok.get_vocab_size(true);
        CaptionTokenizer { tok, pad_id, unk_id, vocab_size }
    }

    /// Saves the tokenizer as a `tokenizer.json` (temp file + rename); [`CaptionTokenizer::from_file`]
    /// reads it back.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = self
            .tok
            .to_string(true)
            .map_err(|e| DataError::Invalid(format!("{}: cannot serialize the tokenizer: {e}", path.display())))?;
        write_atomic(path, json.as_bytes())
    }

    /// Vocabulary size, added (special) tokens included.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The id used for padding.
    pub fn pad_id(&self) -> i64 {
        self.pad_id
    }

    /// The id unknown words map to, if the vocabulary has one.
    pub fn unk_id(&self) -> Option<i64> {
        self.unk_id
    }

    /// The id of `token`, if in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<i64> {
        self.tok.token_to_id(token).map(i64::from)
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.tok
    }

    fn encode_raw(&self, text: &str) -> Result<Encoded> {
        let enc =
            self.tok.encode(text, true).map_err(|e| DataError::Invalid(format!("cannot tokenize {text:?}: {e}")))?;
        // A post-processor may add special tokens by id, not checked against the vocabulary at load.
        let n = self.vocab_size;
        if let Some(id) = enc.get_ids().iter().find(|&&id| id as usize >= n) {
            return Err(DataError::Invalid(format!(
                "tokenizing {text:?} gave id {id}, outside the tokenizer's vocabulary of {n} tokens"
            )));
        }
        Ok(Encoded {
            ids: enc.get_ids().iter().map(|&i| i64::from(i)).collect(),
            special: enc.get_special_tokens_mask().iter().map(|&m| m != 0).collect(),
            tokens: enc.get_tokens().to_vec(),
        })
    }

    fn encode_checked(&self, text: &str) -> Result<Encoded> {
        if text.trim().is_empty() {
            return Err(DataError::Invalid(format!("the prompt {text:?} is empty; describe the image in words")));
        }
        let enc = self.encode_raw(text)?;
        // A "word" is a non-special token with a letter or digit in it (punctuation alone does not count).
        let mut words = enc
            .ids
            .iter()
            .zip(&enc.special)
            .zip(&enc.tokens)
            .filter(|((_, &special), tok)| !special && tok.chars().any(char::is_alphanumeric))
            .map(|((&id, _), _)| id)
            .peekable();
        let any_word = words.peek().is_some();
        let all_unknown = words.all(|id| Some(id) == self.unk_id);
        if !any_word || all_unknown {
            return Err(DataError::Invalid(format!("none of the words of {text:?} are in the tokenizer's vocabulary")));
        }
        Ok(enc)
    }

    /// Token ids of `text`, with the tokenizer's own special tokens (a BERT WordPiece file adds
    /// `[CLS]` … `[SEP]`); unknown words become the unknown id. Errors quote the text: an empty or blank
    /// text, or one in which no word is in the vocabulary.
    pub fn encode(&self, text: &str) -> Result<Vec<i64>> {
        Ok(self.encode_checked(text)?.ids)
    }

    /// Like [`CaptionTokenizer::encode`] but never fails: a blank or all-unknown text gives its (special
    /// or unknown) tokens, and an internal tokenizer error gives an empty vector. For training captions,
    /// whose unknown tokens are counted ([`CaptionTokenizer::unknown_count`]) rather than rejected.
    pub fn encode_lenient(&self, text: &str) -> Vec<i64> {
        self.encode_raw(text).map(|e| e.ids).unwrap_or_default()
    }

    /// How many of `ids` are the unknown id.
    pub fn unknown_count(&self, ids: &[i64]) -> usize {
        self.unk_id.map_or(0, |u| ids.iter().filter(|&&i| i == u).count())
    }

    /// Encodes `texts` ([`CaptionTokenizer::encode`], so the same errors) and pads them with the pad id
    /// to the longest, capped at `max_len`. A longer text is truncated to `max_len` tokens; when it ends
    /// in a special token (`[SEP]`), that token is kept as the last one.
    ///
    /// `strict: false` encodes leniently instead ([`CaptionTokenizer::encode_lenient`]'s rules: a text made only
    /// of unknown words becomes unknown tokens), for training captions and evaluation prompts.
    pub fn encode_batch(&self, texts: &[&str], max_len: usize, strict: bool) -> Result<TokenBatch> {
        if texts.is_empty() {
            return Err(DataError::Invalid("no texts to encode".into()));
        }
        if max_len == 0 {
            return Err(DataError::Invalid("max_len for token batches must be at least 1".into()));
        }
        let mut rows = Vec::with_capacity(texts.len());
        for text in texts {
            let enc = if strict { self.encode_checked(text)? } else { self.encode_raw(text)? };
            let mut ids = enc.ids;
            if ids.len() > max_len {
                let keep_last = max_len >= 2 && enc.special.last().copied().unwrap_or(false);
                let last = ids[ids.len() - 1];
                ids.truncate(max_len);
                if keep_last {
                    ids[max_len - 1] = last;
                }
            }
            rows.push(ids);
        }
        let len = rows.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let n = rows.len();
        let mut ids = vec![self.pad_id; n * len];
        let mut mask = vec![0f32; n * len];
        for (r, row) in rows.iter().enumerate() {
            ids[r * len..r * len + row.len()].copy_from_slice(row);
            mask[r * len..r * len + row.len()].fill(1.0);
        }
        Ok(TokenBatch { ids, mask, n, len })
    }
}
