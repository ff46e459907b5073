//! Captions to condition vectors φ(t) for the text-conditional family: the captions of each training image,
//! a tokenizer, and one of three encoders (trainable, pretrained MiniLM, precomputed embeddings).
//!
//! Frozen encoders are run once over the distinct captions and kept as a table (M, E) on the device; a jointly
//! trained encoder is run on every batch.
use crate::error::{PipelineError, Result};
use ganzoo_data::tokenize::{CaptionTokenizer, TokenizerConfig};
use ganzoo_models::bert::MiniLm;
use ganzoo_models::optim::{Optimizer, OptimizerConfig};
use ganzoo_models::text::{TextEncoder, TextEncoderConfig};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// How captions become condition vectors.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextConfig {
    /// The text encoder: `trainable`, `minilm` (pretrained, frozen) or `precomputed` embeddings.
    pub encoder: TextEncoderChoice,
    /// Tokenizer of a trainable encoder: `word_level` or `bpe` trained on the training captions (saved as
    /// `tokenizer.json` in the run), or `file` (a user's tokenizer.json). MiniLM uses its own.
    #[serde(default)]
    pub tokenizer: TokenizerConfig,
    /// Embeddings of this many randomly chosen captions of an image are averaged (Reed et al.: 4).
    #[serde(default = "four")]
    pub captions_per_image: usize,
    /// Captions are cut to this many tokens.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
}

fn four() -> usize {
    4
}
fn default_max_tokens() -> usize {
    32
}

/// Which text encoder turns a caption into φ(t).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TextEncoderChoice {
    /// A text encoder of models/ trained here: contrastively pretrained on (image, caption) pairs and then
    /// frozen (`training: pretrained`), or trained jointly by D's loss (`training: joint`).
    Trainable {
        /// The network: `arch: gru` (bidirectional GRU) or `arch: transformer`.
        #[serde(default)]
        network: TextEncoderConfig,
        /// Size of φ(t).
        #[serde(default = "default_text_dim")]
        dim: i64,
        /// `pretrained`: contrastively pretrained, then frozen; `joint`: trained by D's loss.
        #[serde(default)]
        training: TextTraining,
        /// Contrastive pretraining steps before GAN training (training: pretrained).
        #[serde(default = "default_pretrain_steps")]
        pretrain_steps: i64,
        /// Learning rate of the encoder's Adam (pretraining or joint training).
        #[serde(default = "default_text_lr")]
        lr: f64,
    },
    /// The pretrained MiniLM sentence encoder (all-MiniLM-L6-v2, 384-d), frozen; `ganzoo data get minilm`.
    Minilm {
        /// Folder with model.safetensors, config.json and tokenizer.json (default: `<cache>/minilm`).
        #[serde(default)]
        dir: Option<PathBuf>,
    },
    /// Precomputed embeddings (e.g. CUB's char-CNN-RNN, converted to .npy or .safetensors): (N, K, D) or
    /// (N, D) rows in the dataset's image order, or in the order of `names`.
    Precomputed {
        /// The `.npy` or `.safetensors` file of the embeddings.
        file: PathBuf,
        /// A text file naming the image of each row (`class/name`), one a line.
        #[serde(default)]
        names: Option<PathBuf>,
    },
}

fn default_text_dim() -> i64 {
    128
}
fn default_pretrain_steps() -> i64 {
    500
}
fn default_text_lr() -> f64 {
    1e-3
}

/// How a trainable text encoder learns.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum TextTraining {
    /// Contrastive (image, caption) pretraining for `pretrain_steps`, then frozen.
    #[default]
    Pretrained,
    /// Updated with D's loss during GAN training (G sees its output detached).
    Joint,
}


impl TextConfig {
    /// The problems of a text section (under `model.text`), each naming its dotted key.
    pub fn check(&self, p: &mut Vec<String>) {
        if self.captions_per_image < 1 {
            p.push("model.text.captions_per_image: must be at least 1".into());
        }
        if self.max_tokens < 3 {
            p.push(format!("model.text.max_tokens: must be at least 3, got {}", self.max_tokens));
        }
        if let TextEncoderChoice::Trainable { dim, lr, .. } = &self.encoder {
            if *dim < 1 {
                p.push(format!("model.text.encoder.dim: must be at least 1, got {dim}"));
            }
            if lr.is_nan() || *lr <= 0.0 {
                p.push(format!("model.text.encoder.lr: must be positive, got {lr}"));
            }
        }
    }
}

/// The file a run keeps its trained tokenizer in.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// The captions of a dataset: the distinct caption strings and, per image, which of them describe it.
#[derive(Debug, Clone, Default)]
pub struct Captions {
    pub unique: Vec<String>,
    pub per_image: Vec<Vec<usize>>,
}

impl Captions {
    /// Builds the table from each image's captions (in dataset order).
    pub fn from_lists(lists: impl IntoIterator<Item = Vec<String>>) -> Self {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut c = Captions::default();
        for list in lists {
            let ids = list
                .into_iter()
                .map(|t| {
                    *index.entry(t.clone()).or_insert_with(|| {
                        c.unique.push(t);
                        c.unique.len() - 1
                    })
                })
                .collect();
            c.per_image.push(ids);
        }
        c
    }
}

/// The captions of every image of a captioned dataset, and its images' names where it has them.
pub fn captions_of(data: &dyn ganzoo_data::loader::Dataset) -> (Captions, Option<Vec<String>>) {
    let captions = Captions::from_lists((0..data.len()).map(|i| data.captions(i).unwrap_or_default()));
    let names = (0..data.len()).map(|i| data.item_name(i)).collect::<Option<Vec<_>>>();
    (captions, names)
}

/// The captions generated images are conditioned on for the standard metrics: image `i` of `n` takes the
/// captions of reference image `i mod M`, so the generated set follows the reference set's captions (the
/// StackGAN / AttnGAN protocol: images from the test split's captions against the test images). With
/// precomputed embeddings, which cover the training images only, the training split is the reference.
pub struct EvalCaptions {
    /// Each reference image's captions (test split), or `None`: training images by index (precomputed).
    lists: Option<Vec<Vec<String>>>,
    /// Reference images.
    pub count: usize,
    pub reference: crate::family::Reference,
    pub how: String,
}

impl EvalCaptions {
    pub fn open(s: &crate::config::Settings, t: &TextSide) -> Result<Self> {
        if let Encoder::Precomputed { .. } = t.encoder {
            let count = t.captions.per_image.len();
            return Ok(EvalCaptions {
                lists: None,
                count,
                reference: crate::family::Reference::train(),
                how: "conditioned on the training images' precomputed caption embeddings in turn (they cover the training split only)".into(),
            });
        }
        let test = match ganzoo_data::open(&s.data, ganzoo_data::source::Part::test(), s.seed)? {
            ganzoo_data::source::Source::Items(d) => d,
            ganzoo_data::source::Source::Points { .. } => return Err(PipelineError::Usage("data: captioned images needed".into())),
        };
        let lists: Vec<Vec<String>> = (0..test.len()).map(|i| test.captions(i).unwrap_or_default()).collect();
        if lists.is_empty() {
            return Err(PipelineError::Usage("data: the test split has no images to take captions from".into()));
        }
        if let Some(i) = lists.iter().position(Vec::is_empty) {
            return Err(PipelineError::Usage(format!("data: test image {} has no captions", test.item_name(i).unwrap_or_else(|| i.to_string()))));
        }
        let k = t.cfg.captions_per_image;
        Ok(EvalCaptions {
            count: lists.len(),
            lists: Some(lists),
            reference: crate::family::Reference::test(),
            how: format!("conditioned on the test images' captions in turn (the mean φ of each image's first {k})"),
        })
    }

    /// The conditions (N, E) of generated images `first..first + len`.
    pub fn conditions(&self, t: &TextSide, seed: u64, first: usize, len: usize) -> Result<Tensor> {
        let idx: Vec<usize> = (first..first + len).map(|i| i % self.count).collect();
        let Some(lists) = &self.lists else {
            return t.batch(&idx, &mut ganzoo_models::rng::derived_rng(seed, "metrics_captions", first as u64), false);
        };
        let k = t.cfg.captions_per_image;
        let mut texts = Vec::with_capacity(len * k);
        for &i in &idx {
            let caps = &lists[i];
            texts.extend((0..k).map(|j| caps[j % caps.len()].as_str()));
        }
        let e = t.encode(&texts, false, false)?; // (len·k, E)
        Ok(e.view([len as i64, k as i64, -1]).mean_dim(1, false, Kind::Float)) // (len, E)
    }
}

/// A text encoder and what it needs.
pub enum Encoder {
    /// all-MiniLM-L6-v2, frozen.
    Minilm { vs: VarStore, net: MiniLm, tok: CaptionTokenizer },
    /// A models/ text encoder with its tokenizer (trained with D when `training` is joint).
    Trainable { vs: VarStore, net: TextEncoder, tok: CaptionTokenizer, training: TextTraining },
    /// Rows of a precomputed embedding file, one per caption of `Captions::unique` (kept as the table).
    Precomputed { dim: i64 },
}

/// Captions, encoder and the cached embedding table.
pub struct TextSide {
    pub captions: Captions,
    pub encoder: Encoder,
    pub cfg: TextConfig,
    device: Device,
    table: RefCell<Option<Tensor>>,
}

impl TextSide {
    /// Sets up the encoder. A trainable encoder's tokenizer is read from `run_dir/tokenizer.json` when the run
    /// has one, else trained on the captions (or read from the configured file) and saved there.
    pub fn new(cfg: &TextConfig, captions: Captions, run_dir: Option<&Path>, names: Option<&[String]>, device: Device) -> Result<Self> {
        let encoder = match &cfg.encoder {
            TextEncoderChoice::Minilm { dir } => {
                let dir = dir.clone().unwrap_or_else(|| ganzoo_data::minilm::minilm_dir(&ganzoo_data::default_cache_dir()));
                if !ganzoo_data::minilm::is_complete(&dir) {
                    return Err(PipelineError::Usage(format!(
                        "model.text.encoder: the MiniLM files are not in {}; run `ganzoo data get minilm` first (or set model.text.encoder.dir)",
                        dir.display()
                    )));
                }
                let (vs, net) = MiniLm::load(&dir, device)?;
                let tok = CaptionTokenizer::from_file(&dir.join("tokenizer.json"))?;
                Encoder::Minilm { vs, net, tok }
            }
            TextEncoderChoice::Trainable { network, dim, training, .. } => {
                let saved = run_dir.map(|d| d.join(TOKENIZER_FILE)).filter(|p| p.exists());
                let tok = match saved {
                    Some(p) => CaptionTokenizer::from_file(&p)?,
                    None => {
                        let tok = CaptionTokenizer::train(&cfg.tokenizer, &captions.unique)?;
                        if let Some(d) = run_dir {
                            std::fs::create_dir_all(d).map_err(PipelineError::io(d))?;
                            tok.save(&d.join(TOKENIZER_FILE))?;
                        }
                        tok
                    }
                };
                let vs = VarStore::new(device);
                let net = TextEncoder::new(&vs.root(), network, tok.vocab_size() as i64, *dim)?;
                Encoder::Trainable { vs, net, tok, training: *training }
            }
            TextEncoderChoice::Precomputed { file, names: names_file } => {
                let emb = ganzoo_data::embeddings::read_embeddings(file)?;
                let n_images = captions.per_image.len();
                let order: Vec<usize> = match (names_file, names) {
                    (Some(nf), Some(dataset_names)) => {
                        let rows = ganzoo_data::embeddings::read_names(nf)?;
                        if rows.len() != emb.n {
                            return Err(PipelineError::Usage(format!(
                                "model.text.encoder.names: {} names {} rows but {} holds {}",
                                nf.display(), rows.len(), file.display(), emb.n
                            )));
                        }
                        let at: HashMap<&str, usize> = rows.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
                        dataset_names
                            .iter()
                            .map(|n| {
                                at.get(n.as_str()).copied().ok_or_else(|| {
                                    PipelineError::Usage(format!("model.text.encoder.names: image `{n}` has no row in {}", nf.display()))
                                })
                            })
                            .collect::<Result<_>>()?
                    }
                    _ => {
                        if emb.n != n_images {
                            return Err(PipelineError::Usage(format!(
                                "model.text.encoder.file: {} holds {} rows but the training split has {} images; give model.text.encoder.names to match rows to images",
                                file.display(), emb.n, n_images
                            )));
                        }
                        (0..n_images).collect()
                    }
                };
                let mut rows = Vec::with_capacity(n_images * emb.per_item * emb.dim);
                for &r in &order {
                    for k in 0..emb.per_item {
                        rows.extend_from_slice(emb.get(r, k));
                    }
                }
                let table = Tensor::from_slice(&rows).view([(n_images * emb.per_item) as i64, emb.dim as i64]).to_device(device);
                // The captions become the rows: image i owns rows i·K … i·K + K − 1.
                let k = emb.per_item;
                let unique = (0..n_images * k).map(|r| format!("row {r}")).collect();
                let per_image = (0..n_images).map(|i| (i * k..(i + 1) * k).collect()).collect();
                let side = TextSide {
                    captions: Captions { unique, per_image },
                    encoder: Encoder::Precomputed { dim: emb.dim as i64 },
                    cfg: cfg.clone(),
                    device,
                    table: RefCell::new(Some(table)),
                };
                return Ok(side);
            }
        };
        Ok(TextSide { captions, encoder, cfg: cfg.clone(), device, table: RefCell::new(None) })
    }

    /// Size of φ(t).
    pub fn dim(&self) -> i64 {
        match &self.encoder {
            Encoder::Minilm { net, .. } => net.dim(),
            Encoder::Trainable { net, .. } => net.out_dim(),
            Encoder::Precomputed { dim } => *dim,
        }
    }

    /// The text encoder's variables, when it has trainable ones.
    pub fn trainable(&self) -> Option<&VarStore> {
        match &self.encoder {
            Encoder::Trainable { vs, .. } => Some(vs),
            _ => None,
        }
    }

    /// The optimizer of an encoder trained jointly with D: Adam at `model.text.encoder.lr`, β (0.5, 0.999).
    pub fn joint_optimizer(&self) -> Option<OptimizerConfig> {
        match (&self.cfg.encoder, self.is_joint()) {
            (TextEncoderChoice::Trainable { lr, .. }, true) => Some(OptimizerConfig::Adam { lr: *lr, betas: (0.5, 0.999), eps: 1e-8, weight_decay: 0.0 }),
            _ => None,
        }
    }

    /// The trainable encoder network, if this is one.
    pub fn trainable_net(&self) -> Option<&TextEncoder> {
        match &self.encoder {
            Encoder::Trainable { net, .. } => Some(net),
            _ => None,
        }
    }

    /// True when the encoder learns from D's loss during GAN training.
    pub fn is_joint(&self) -> bool {
        matches!(&self.encoder, Encoder::Trainable { training: TextTraining::Joint, .. })
    }

    /// True when a trainable encoder still needs its contrastive pretraining.
    pub fn needs_pretraining(&self) -> bool {
        matches!(&self.encoder, Encoder::Trainable { training: TextTraining::Pretrained, .. })
    }

    /// Forgets the cached table (after the encoder's weights changed).
    pub fn invalidate(&self) {
        *self.table.borrow_mut() = None;
    }

    /// Tokens (N, L) and mask (N, L) of `texts` for the encoder's tokenizer; unknown words become the unknown
    /// token. `strict`: an empty text or one made only of unknown words is an error naming it.
    pub fn tokens(&self, texts: &[&str], strict: bool) -> Result<(Tensor, Tensor)> {
        let tok = match &self.encoder {
            Encoder::Minilm { tok, .. } | Encoder::Trainable { tok, .. } => tok,
            Encoder::Precomputed { .. } => return Err(cannot_encode()),
        };
        // A prompt the tokenizer cannot use is the user's input to fix (exit code 2).
        let b = tok.encode_batch(texts, self.cfg.max_tokens, strict).map_err(|e| match strict {
            true => PipelineError::Usage(format!("prompt: {e}")),
            false => e.into(),
        })?;
        let ids = Tensor::from_slice(&b.ids).view([b.n as i64, b.len as i64]).to_device(self.device);
        let mask = Tensor::from_slice(&b.mask).view([b.n as i64, b.len as i64]).to_device(self.device);
        Ok((ids, mask))
    }

    /// φ of `texts` (N, E); with gradients for a jointly trained encoder when `train`.
    pub fn encode(&self, texts: &[&str], strict: bool, train: bool) -> Result<Tensor> {
        Ok(match &self.encoder {
            Encoder::Minilm { net, .. } => {
                let (ids, mask) = self.tokens(texts, strict)?;
                tch::no_grad(|| net.embed(&ids, &mask))
            }
            Encoder::Trainable { net, .. } => {
                let (ids, mask) = self.tokens(texts, strict)?;
                match train {
                    true => net.forward_t(&ids, &mask, true),
                    false => tch::no_grad(|| net.forward_t(&ids, &mask, false)),
                }
            }
            Encoder::Precomputed { .. } => return Err(cannot_encode()),
        })
    }

    /// φ of every distinct caption (M, E), computed once for frozen encoders, in batches.
    pub fn table(&self) -> Result<Tensor> {
        if let Some(t) = self.table.borrow().as_ref() {
            return Ok(t.shallow_clone());
        }
        let mut parts = Vec::new();
        for chunk in self.captions.unique.chunks(256) {
            let texts: Vec<&str> = chunk.iter().map(String::as_str).collect();
            parts.push(self.encode(&texts, false, false)?);
        }
        let t = Tensor::cat(&parts, 0);
        if !self.is_joint() {
            *self.table.borrow_mut() = Some(t.shallow_clone());
        }
        Ok(t)
    }

    /// The condition of each image of a batch: the mean φ of `captions_per_image` of its captions, chosen with
    /// `rng`. `train` keeps the graph of a jointly trained encoder. Returns (N, E).
    pub fn batch(&self, images: &[usize], rng: &mut rand_chacha::ChaCha8Rng, train: bool) -> Result<Tensor> {
        use rand::Rng;
        let k = self.cfg.captions_per_image;
        let mut chosen = Vec::with_capacity(images.len() * k);
        for &i in images {
            let caps = self.captions.per_image.get(i).filter(|c| !c.is_empty()).ok_or_else(|| {
                PipelineError::Runtime(format!("image {i} has no captions (the dataset and the caption table disagree)"))
            })?;
            for _ in 0..k {
                chosen.push(caps[rng.gen_range(0..caps.len())]);
            }
        }
        let n = images.len() as i64;
        let emb = if self.is_joint() && train {
            let texts: Vec<&str> = chosen.iter().map(|&c| self.captions.unique[c].as_str()).collect();
            self.encode(&texts, false, true)? // (N·k, E)
        } else {
            let idx = Tensor::from_slice(&chosen.iter().map(|&c| c as i64).collect::<Vec<_>>()).to_device(self.device);
            self.table()?.index_select(0, &idx) // (N·k, E)
        };
        Ok(emb.view([n, k as i64, -1]).mean_dim(1, false, Kind::Float)) // (N, E)
    }
    /// Contrastive (InfoNCE) pretraining of a trainable encoder on (image, caption) pairs of `dataset` against
    /// a small conv image encoder, for the config's `pretrain_steps` with Adam at its `lr`, then frozen (the
    /// table is rebuilt from the new weights). Images larger than `image_size` are average-pooled to it first.
    /// Returns the last loss and in-batch retrieval accuracy; does nothing for other encoders.
    pub fn pretrain(&self, dataset: &dyn ganzoo_data::loader::Dataset, channels: i64, image_size: i64, seed: u64, batch_size: i64) -> Result<crate::family::Losses> {
        use ganzoo_models::rng::derived_rng;
        let mut l = crate::family::Losses::new();
        let TextEncoderChoice::Trainable { pretrain_steps, lr, .. } = self.cfg.encoder else { return Ok(l) };
        let (Some(t_vs), Some(net)) = (self.trainable(), self.trainable_net()) else { return Ok(l) };
        let img_vs = VarStore::new(self.device);
        let img = ganzoo_models::text::ImageEncoder::new(&img_vs.root(), channels, image_size, 32, self.dim())?;
        img.reset_parameters(&mut derived_rng(seed, "init_pretrain_image", 0));
        let adam = OptimizerConfig::Adam { lr, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.0 };
        let mut opt_t = Optimizer::new(t_vs, &adam);
        let mut opt_i = Optimizer::new(&img_vs, &adam);
        let n = dataset.len();
        let bs = batch_size.min(n as i64).max(2) as usize;
        let bar = crate::progress::Counter::new(pretrain_steps as u64, "pretraining the text encoder", false);
        let mut last = (f64::NAN, f64::NAN);
        for s in 0..pretrain_steps {
            use rand::Rng;
            let mut rng = derived_rng(seed, "pretrain_text", s as u64);
            let idx: Vec<usize> = (0..bs).map(|_| rng.gen_range(0..n)).collect();
            let mut xs = Vec::with_capacity(bs);
            for &i in &idx {
                let ex = dataset.get(i, &mut derived_rng(seed, "pretrain_item", (s as u64) << 20 | i as u64))?;
                xs.push(Tensor::from_slice(&ex.x).view(ex.shape.as_slice()));
            }
            let mut x = Tensor::stack(&xs, 0).to_device(self.device); // (B, C, H, W)
            let h = x.size()[2];
            if h > image_size && h % image_size == 0 {
                let k = h / image_size;
                x = x.avg_pool2d([k, k], [k, k], [0, 0], false, true, None); // (B, C, size, size)
            }
            let caps: Vec<&str> = idx
                .iter()
                .map(|&i| {
                    let c = &self.captions.per_image[i];
                    self.captions.unique[c[rng.gen_range(0..c.len())]].as_str()
                })
                .collect();
            let (ids, mask) = self.tokens(&caps, false)?;
            opt_t.zero_grad();
            opt_i.zero_grad();
            let te = net.forward_t(&ids, &mask, true); // (B, E)
            let ie = img.forward_t(&x, true); // (B, E)
            let loss = ganzoo_models::text::contrastive_loss(&te, &ie, 0.07);
            loss.backward();
            opt_t.step()?;
            opt_i.step()?;
            let acc = tch::no_grad(|| {
                let sim = te.matmul(&ie.transpose(0, 1)); // (B, B)
                let hit = sim.argmax(1, false).eq_tensor(&Tensor::arange(bs as i64, (Kind::Int64, self.device)));
                hit.to_kind(Kind::Float).mean(Kind::Float).double_value(&[])
            });
            last = (loss.double_value(&[]), acc);
            bar.inc();
        }
        bar.finish();
        // The encoder is used under no_grad from now on (frozen) and its table is rebuilt from the new weights.
        self.invalidate();
        l.insert("pretrain_text_loss".into(), last.0);
        l.insert("pretrain_text_retrieval".into(), last.1);
        Ok(l)
    }
}

/// Precomputed embeddings cover the dataset's captions only.
fn cannot_encode() -> PipelineError {
    PipelineError::Usage(
        "this run is conditioned on precomputed embeddings, which cannot encode new text; train with model.text.encoder: trainable or minilm to sample from prompts".into(),
    )
}
