//! Trainable text encoders (token ids -> one embedding per caption) for text-conditional GANs, an image
//! encoder for their contrastive pretraining, and the symmetric InfoNCE loss (Radford et al. 2021, CLIP).
//!
//! Both text encoders are padding-invariant: a caption gets the same embedding alone or in a batch padded
//! to a longer caption (padding is at the end, id 0, mask 0). Parameter names equal the `state_dict` keys of
//! the PyTorch equivalents (`nn.GRU(bidirectional=True, batch_first=True)` run on packed sequences;
//! `nn.TransformerEncoder` of pre-LN `nn.TransformerEncoderLayer`s with a final LayerNorm), checked in
//! `tests/text.rs` against `golden/cond_golden.py`.
//!
//! Initialization never uses libtorch's global generator: `new` draws PyTorch's default distributions
//! from a ChaCha stream seeded by the variable path (deterministic); `reset_parameters(rng)` redraws them
//! from a run's seeded RNG. (`init::init_default` would not recognize the GRU / attention names.)

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Kind, Tensor};

use crate::error::{ModelError, Result};
use crate::rng::{derived_rng, fill_const, fill_normal, fill_uniform};

/// GRU text encoder settings.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GruTextConfig {
    /// Size of the token embeddings.
    pub embed_dim: i64,
    /// Hidden size of each direction.
    pub hidden: i64,
    /// Stacked bidirectional GRU layers.
    pub layers: i64,
}

impl Default for GruTextConfig {
    fn default() -> Self {
        GruTextConfig {
            embed_dim: 128,
            hidden: 128,
            layers: 1,
        }
    }
}

/// Transformer text encoder settings.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TransformerTextConfig {
    /// Model width (divisible by `heads`); the feed-forward width is 4·dim.
    pub dim: i64,
    /// Attention heads.
    pub heads: i64,
    /// Pre-LN transformer layers.
    pub layers: i64,
    /// Longest caption in tokens (learned positions); longer captions are truncated to their first
    /// `max_len` tokens.
    pub max_len: i64,
}

impl Default for TransformerTextConfig {
    fn default() -> Self {
        TransformerTextConfig {
            dim: 128,
            heads: 4,
            layers: 2,
            max_len: 64,
        }
    }
}

/// Which text encoder to build (`arch: gru | transformer` plus its own keys).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "arch", rename_all = "snake_case")]
pub enum TextEncoderConfig {
    /// Bidirectional GRU, masked mean of the outputs over real tokens, Linear(2·hidden -> out_dim).
    Gru(GruTextConfig),
    /// Token + learned position embeddings, pre-LN encoder layers with a key padding mask, final
    /// LayerNorm, masked mean, Linear(dim -> out_dim).
    Transformer(TransformerTextConfig),
}

impl Default for TextEncoderConfig {
    fn default() -> Self {
        TextEncoderConfig::Gru(GruTextConfig::default())
    }
}

impl TextEncoderConfig {
    /// Every problem with the configuration, naming the key.
    pub fn check(&self) -> Vec<String> {
        let mut p = vec![];
        let mut pos = |k: &str, v: i64| {
            if v < 1 {
                p.push(format!("{k} must be >= 1, got {v}"));
            }
        };
        match self {
            TextEncoderConfig::Gru(c) => {
                pos("embed_dim", c.embed_dim);
                pos("hidden", c.hidden);
                pos("layers", c.layers);
            }
            TextEncoderConfig::Transformer(c) => {
                pos("dim", c.dim);
                pos("heads", c.heads);
                pos("layers", c.layers);
                pos("max_len", c.max_len);
                if c.dim >= 1 && c.heads >= 1 && c.dim % c.heads != 0 {
                    p.push(format!(
                        "dim ({}) must be divisible by heads ({})",
                        c.dim, c.heads
                    ));
                }
            }
        }
        p
    }
}

// ---------------------------------------------------------------------------------------------------
// Parameters with seeded initialization

/// PyTorch's default initialization of one parameter.
#[derive(Debug, Clone, Copy)]
enum PInit {
    /// U(−b, b).
    Uniform(f64),
    /// N(0, std²).
    Normal(f64),
    Const(f64),
}

/// Variables created with a placeholder value and the distribution to draw them from.
#[derive(Debug, Default)]
struct Inits(Vec<(Tensor, PInit)>);

impl Inits {
    fn var(&mut self, p: &nn::Path, name: &str, shape: &[i64], init: PInit) -> Tensor {
        let t = p.var(name, shape, nn::Init::Const(0.0));
        self.0.push((t.shallow_clone(), init));
        t
    }

    fn reset(&self, rng: &mut ChaCha8Rng) {
        for (t, init) in &self.0 {
            match *init {
                PInit::Uniform(b) => fill_uniform(t, rng, -b, b),
                PInit::Normal(s) => fill_normal(t, rng, 0.0, s),
                PInit::Const(v) => fill_const(t, v),
            }
        }
    }
}

/// A linear layer (`weight` (out, in), `bias` (out,)) with PyTorch's default U(±1/√in) init.
#[derive(Debug)]
struct Linear {
    w: Tensor,
    b: Tensor,
}

impl Linear {
    fn new(p: &nn::Path, inits: &mut Inits, in_dim: i64, out_dim: i64) -> Self {
        let b = 1.0 / (in_dim as f64).sqrt();
        Linear {
            w: inits.var(p, "weight", &[out_dim, in_dim], PInit::Uniform(b)),
            b: inits.var(p, "bias", &[out_dim], PInit::Uniform(b)),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.w, Some(&self.b)) // (..., in) -> (..., out)
    }
}

fn layer_norm(p: &nn::Path, dim: i64) -> nn::LayerNorm {
    nn::layer_norm(p, vec![dim], Default::default()) // weight 1, bias 0, eps 1e-5 (PyTorch's)
}

/// Mean of `h` (N, L, D) over the positions where `mask` (N, L) is 1 -> (N, D). All-padding rows give 0.
fn masked_mean(h: &Tensor, mask: &Tensor) -> Tensor {
    let m = mask.to_kind(h.kind()).unsqueeze(-1); // (N, L, 1)
    let count = m
        .sum_dim_intlist(&[1i64][..], false, h.kind())
        .clamp_min(1.0); // (N, 1)
    (h * &m).sum_dim_intlist(&[1i64][..], false, h.kind()) / count // (N, D)
}

// ---------------------------------------------------------------------------------------------------
// GRU

/// One GRU layer and direction: `weight_ih_l{k}{sfx}` (3H, in), `weight_hh_l{k}{sfx}` (3H, H), biases (3H,).
#[derive(Debug)]
struct GruCell {
    params: [Tensor; 4],
    hidden: i64,
}

impl GruCell {
    fn new(p: &nn::Path, inits: &mut Inits, k: i64, sfx: &str, in_dim: i64, hidden: i64) -> Self {
        let b = PInit::Uniform(1.0 / (hidden as f64).sqrt());
        let g = 3 * hidden;
        GruCell {
            params: [
                inits.var(p, &format!("weight_ih_l{k}{sfx}"), &[g, in_dim], b),
                inits.var(p, &format!("weight_hh_l{k}{sfx}"), &[g, hidden], b),
                inits.var(p, &format!("bias_ih_l{k}{sfx}"), &[g], b),
                inits.var(p, &format!("bias_hh_l{k}{sfx}"), &[g], b),
            ],
            hidden,
        }
    }

    /// x (N, L, in) -> (N, L, H), running left to right from a zero state.
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let n = x.size()[0];
        let h0 = Tensor::zeros([1, n, self.hidden], (x.kind(), x.device())); // (1, N, H)
        x.gru(&h0, &self.params, true, 1, 0.0, train, false, true).0 // (N, L, H)
    }
}

#[derive(Debug)]
struct GruEncoder {
    embed: Tensor,
    layers: Vec<(GruCell, GruCell)>,
}

impl GruEncoder {
    fn new(p: &nn::Path, inits: &mut Inits, cfg: &GruTextConfig, vocab: i64) -> Self {
        let embed = inits.var(
            &(p / "embed"),
            "weight",
            &[vocab, cfg.embed_dim],
            PInit::Normal(1.0),
        );
        let gp = p / "gru";
        let mut in_dim = cfg.embed_dim;
        let layers = (0..cfg.layers)
            .map(|k| {
                let fwd = GruCell::new(&gp, inits, k, "", in_dim, cfg.hidden);
                let bwd = GruCell::new(&gp, inits, k, "_reverse", in_dim, cfg.hidden);
                in_dim = 2 * cfg.hidden;
                (fwd, bwd)
            })
            .collect();
        GruEncoder { embed, layers }
    }

    /// (N, L) ids and mask -> (N, L, 2H) outputs, equal to a bidirectional GRU on packed sequences at the
    /// real positions: the backward direction runs on each caption reversed within its length, so it
    /// never sees padding before real tokens.
    fn forward(&self, ids: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let size = ids.size();
        let (n, l) = (size[0], size[1]);
        let dev = ids.device();
        let len = mask
            .sum_dim_intlist(&[1i64][..], true, Kind::Float)
            .round()
            .to_kind(Kind::Int64); // (N, 1)
        let j = Tensor::arange(l, (Kind::Int64, dev))
            .unsqueeze(0)
            .expand([n, l], false); // (N, L)
        let rev = (&len - 1 - &j).where_self(&j.lt_tensor(&len), &j); // (N, L): a permutation per row
        let flip = |x: &Tensor| {
            let d = x.size()[2];
            x.gather(1, &rev.unsqueeze(-1).expand([n, l, d], false), false) // (N, L, d)
        };
        let mut x = Tensor::embedding(&self.embed, ids, -1, false, false); // (N, L, E)
        for (fwd, bwd) in &self.layers {
            let f = fwd.forward(&x, train); // (N, L, H)
            let b = flip(&bwd.forward(&flip(&x), train)); // (N, L, H)
            x = Tensor::cat(&[f, b], 2); // (N, L, 2H)
        }
        x
    }
}

// ---------------------------------------------------------------------------------------------------
// Transformer

/// One pre-LN encoder layer: h + MHA(LN1(h)), then h + W2·GELU(W1·LN2(h)). Names as PyTorch's
/// `TransformerEncoderLayer`: `self_attn.in_proj_weight|bias`, `self_attn.out_proj`, `linear1`, `linear2`,
/// `norm1`, `norm2`.
#[derive(Debug)]
struct EncoderLayer {
    in_proj_w: Tensor,
    in_proj_b: Tensor,
    out_proj: Linear,
    linear1: Linear,
    linear2: Linear,
    norm1: nn::LayerNorm,
    norm2: nn::LayerNorm,
    heads: i64,
}

impl EncoderLayer {
    fn new(p: &nn::Path, inits: &mut Inits, dim: i64, heads: i64) -> Self {
        let a = p / "self_attn";
        let xavier = (6.0 / (dim + 3 * dim) as f64).sqrt(); // PyTorch's xavier_uniform_ on in_proj_weight
        let out_proj = Linear::new(&(&a / "out_proj"), inits, dim, dim);
        // MultiheadAttention._reset_parameters zeroes both attention biases.
        if let Some(last) = inits.0.last_mut() {
            last.1 = PInit::Const(0.0);
        }
        EncoderLayer {
            in_proj_w: inits.var(
                &a,
                "in_proj_weight",
                &[3 * dim, dim],
                PInit::Uniform(xavier),
            ),
            in_proj_b: inits.var(&a, "in_proj_bias", &[3 * dim], PInit::Const(0.0)),
            out_proj,
            linear1: Linear::new(&(p / "linear1"), inits, dim, 4 * dim),
            linear2: Linear::new(&(p / "linear2"), inits, 4 * dim, dim),
            norm1: layer_norm(&(p / "norm1"), dim),
            norm2: layer_norm(&(p / "norm2"), dim),
            heads,
        }
    }

    /// h (N, L, D), `key_pad` (N, 1, 1, L) true at padding -> (N, L, D).
    fn forward(&self, h: &Tensor, key_pad: &Tensor) -> Tensor {
        let size = h.size();
        let (n, l, d) = (size[0], size[1], size[2]);
        let dh = d / self.heads;
        let a = self.norm1.forward(h); // (N, L, D)
        let qkv = a.linear(&self.in_proj_w, Some(&self.in_proj_b)); // (N, L, 3D)
        let split = |i: i64| {
            qkv.narrow(2, i * d, d)
                .reshape([n, l, self.heads, dh])
                .transpose(1, 2) // (N, heads, L, dh)
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let scores = q.matmul(&k.transpose(-2, -1)) / (dh as f64).sqrt(); // (N, heads, L, L)
                                                                          // A large finite negative instead of −inf: exp underflows to exactly 0 the same way, and a
                                                                          // caption with no tokens gives finite (ignored) values instead of NaN.
        let scores = scores.masked_fill(key_pad, -1e9); // (N, heads, L, L)
        let att = scores
            .softmax(-1, scores.kind())
            .matmul(&v) // (N, heads, L, dh)
            .transpose(1, 2)
            .reshape([n, l, d]); // (N, L, D)
        let h = h + self.out_proj.forward(&att); // (N, L, D)
        let f = self.linear1.forward(&self.norm2.forward(&h)).gelu("none"); // (N, L, 4D)
        &h + self.linear2.forward(&f) // (N, L, D)
    }
}

#[derive(Debug)]
struct TransformerEncoder {
    tok: Tensor,
    pos: Tensor,
    layers: Vec<EncoderLayer>,
    norm: nn::LayerNorm,
    max_len: i64,
}

impl TransformerEncoder {
    fn new(p: &nn::Path, inits: &mut Inits, cfg: &TransformerTextConfig, vocab: i64) -> Self {
        let tok = inits.var(
            &(p / "tok_embed"),
            "weight",
            &[vocab, cfg.dim],
            PInit::Normal(1.0),
        );
        let pos = inits.var(
            &(p / "pos_embed"),
            "weight",
            &[cfg.max_len, cfg.dim],
            PInit::Normal(1.0),
        );
        let lp = p / "encoder" / "layers";
        let layers = (0..cfg.layers)
            .map(|i| EncoderLayer::new(&(&lp / i), inits, cfg.dim, cfg.heads))
            .collect();
        TransformerEncoder {
            tok,
            pos,
            layers,
            norm: layer_norm(&(p / "encoder" / "norm"), cfg.dim),
            max_len: cfg.max_len,
        }
    }

    /// (N, L) ids and mask (L <= max_len) -> (N, L, D).
    fn forward(&self, ids: &Tensor, mask: &Tensor) -> Tensor {
        let l = ids.size()[1];
        let pos = self.pos.narrow(0, 0, l); // (L, D)
        let mut h = Tensor::embedding(&self.tok, ids, -1, false, false) + pos.unsqueeze(0); // (N, L, D)
        let key_pad = mask.le(0.5).unsqueeze(1).unsqueeze(1); // (N, 1, 1, L) bool
        for layer in &self.layers {
            h = layer.forward(&h, &key_pad); // (N, L, D)
        }
        self.norm.forward(&h) // (N, L, D)
    }
}

// ---------------------------------------------------------------------------------------------------

#[derive(Debug)]
enum Body {
    Gru(GruEncoder),
    Transformer(TransformerEncoder),
}

/// A trainable text encoder: token ids (N, L) -> caption embeddings (N, out_dim).
///
/// Names: GRU `embed.weight`, `gru.{weight,bias}_{ih,hh}_l{k}[_reverse]`, `proj.*`; transformer
/// `tok_embed.weight`, `pos_embed.weight`, `encoder.layers.{i}.*`, `encoder.norm.*`, `proj.*`.
#[derive(Debug)]
pub struct TextEncoder {
    body: Body,
    proj: Linear,
    inits: Inits,
    out_dim: i64,
}

impl TextEncoder {
    /// Builds the encoder under `p` for token ids in [0, vocab_size) (0 = padding).
    pub fn new(
        p: &nn::Path,
        cfg: &TextEncoderConfig,
        vocab_size: i64,
        out_dim: i64,
    ) -> Result<Self> {
        let mut problems = cfg.check();
        if vocab_size < 1 {
            problems.push(format!("vocab_size must be >= 1, got {vocab_size}"));
        }
        if out_dim < 1 {
            problems.push(format!("out_dim must be >= 1, got {out_dim}"));
        }
        if !problems.is_empty() {
            return Err(ModelError::Config(format!(
                "text encoder: {}",
                problems.join("; ")
            )));
        }
        let mut inits = Inits::default();
        let (body, width) = match cfg {
            TextEncoderConfig::Gru(c) => (
                Body::Gru(GruEncoder::new(p, &mut inits, c, vocab_size)),
                2 * c.hidden,
            ),
            TextEncoderConfig::Transformer(c) => (
                Body::Transformer(TransformerEncoder::new(p, &mut inits, c, vocab_size)),
                c.dim,
            ),
        };
        let proj = Linear::new(&(p / "proj"), &mut inits, width, out_dim);
        let enc = TextEncoder {
            body,
            proj,
            inits,
            out_dim,
        };
        enc.reset_parameters(&mut derived_rng(0, &p.path("init"), 0));
        Ok(enc)
    }

    /// Redraws every parameter from PyTorch's default distributions using `rng` (embeddings N(0, 1),
    /// GRU U(±1/√hidden), linear U(±1/√in), attention in-projection Xavier-uniform, attention biases 0).
    pub fn reset_parameters(&self, rng: &mut ChaCha8Rng) {
        self.inits.reset(rng);
    }

    /// ids (N, L) int64 with padding 0 at the end, mask (N, L) float 1 at real tokens / 0 at padding ->
    /// (N, out_dim). `train` has no effect (no dropout); the transformer truncates to `max_len` tokens.
    pub fn forward_t(&self, ids: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let out = match &self.body {
            Body::Gru(g) => {
                let h = g.forward(ids, mask, train); // (N, L, 2H)
                masked_mean(&h, mask) // (N, 2H)
            }
            Body::Transformer(t) => {
                let l = ids.size()[1].min(t.max_len);
                let (ids, mask) = (ids.narrow(1, 0, l), mask.narrow(1, 0, l)); // (N, L')
                let h = t.forward(&ids, &mask); // (N, L', D)
                masked_mean(&h, &mask) // (N, D)
            }
        };
        self.proj.forward(&out) // (N, out_dim)
    }

    /// The embedding size.
    pub fn out_dim(&self) -> i64 {
        self.out_dim
    }
}

// ---------------------------------------------------------------------------------------------------
// Image encoder and contrastive loss

/// The image side of contrastive text-encoder pretraining: Conv(3×3, stride 2) + LeakyReLU(0.2) stages
/// (width, 2·width, ... capped at 8·width) until the map is at most 4×4, global average pool,
/// Linear -> out_dim. Names `convs.{i}.weight|bias`, `proj.weight|bias`.
#[derive(Debug)]
pub struct ImageEncoder {
    convs: Vec<(Tensor, Tensor)>,
    proj: Linear,
    inits: Inits,
}

impl ImageEncoder {
    /// For `channels` × `size` × `size` images (size >= 1).
    pub fn new(p: &nn::Path, channels: i64, size: i64, width: i64, out_dim: i64) -> Result<Self> {
        let mut problems = vec![];
        for (k, v) in [
            ("channels", channels),
            ("size", size),
            ("width", width),
            ("out_dim", out_dim),
        ] {
            if v < 1 {
                problems.push(format!("{k} must be >= 1, got {v}"));
            }
        }
        if !problems.is_empty() {
            return Err(ModelError::Config(format!(
                "image encoder: {}",
                problems.join("; ")
            )));
        }
        let mut inits = Inits::default();
        let cp = p / "convs";
        let mut convs = vec![];
        let (mut s, mut c_in, mut i) = (size, channels, 0i64);
        loop {
            let c_out = width << i.min(3);
            let b = PInit::Uniform(1.0 / ((c_in * 9) as f64).sqrt());
            let q = &cp / i;
            convs.push((
                inits.var(&q, "weight", &[c_out, c_in, 3, 3], b),
                inits.var(&q, "bias", &[c_out], b),
            ));
            s = (s + 1) / 2;
            c_in = c_out;
            i += 1;
            if s <= 4 {
                break;
            }
        }
        let proj = Linear::new(&(p / "proj"), &mut inits, c_in, out_dim);
        let enc = ImageEncoder { convs, proj, inits };
        enc.reset_parameters(&mut derived_rng(0, &p.path("init"), 0));
        Ok(enc)
    }

    /// Redraws every parameter (PyTorch's default U(±1/√fan_in)) from `rng`.
    pub fn reset_parameters(&self, rng: &mut ChaCha8Rng) {
        self.inits.reset(rng);
    }

    /// x (N, C, S, S) -> (N, out_dim). `train` has no effect (no dropout or batch norm).
    pub fn forward_t(&self, x: &Tensor, _train: bool) -> Tensor {
        let mut h = x.shallow_clone(); // (N, C, S, S)
        for (w, b) in &self.convs {
            h = h.conv2d(w, Some(b), [2, 2], [1, 1], [1, 1], 1); // (N, c_i, ⌈s/2⌉, ⌈s/2⌉)
            h = crate::nets::leaky_relu(&h, 0.2); // same shape
        }
        let pooled = h.mean_dim(&[2i64, 3][..], false, h.kind()); // (N, c_last)
        self.proj.forward(&pooled) // (N, out_dim)
    }
}

/// Symmetric InfoNCE (Radford et al. 2021, CLIP; van den Oord et al. 2018): rows i of `text` (N, D) and
/// `image` (N, D) match. Both are L2-normalized, logits = t·iᵀ / temperature (N, N), and the loss is the
/// mean of the text->image and image->text cross-entropies with the diagonal as targets. Scalar.
pub fn contrastive_loss(text: &Tensor, image: &Tensor, temperature: f64) -> Tensor {
    let normalize = |x: &Tensor| {
        let norm = x
            .square()
            .sum_dim_intlist(&[1i64][..], true, x.kind())
            .sqrt()
            .clamp_min(1e-12); // (N, 1)
        x / norm // (N, D)
    };
    let (t, i) = (normalize(text), normalize(image));
    let logits = t.matmul(&i.tr()) / temperature; // (N, N)
    let n = logits.size()[0];
    let labels = Tensor::arange(n, (Kind::Int64, logits.device())); // (N,)
    (logits.cross_entropy_for_logits(&labels) + logits.tr().cross_entropy_for_logits(&labels)) * 0.5
}

/// Top-1 retrieval accuracy of text -> image (and image -> text) over matching rows: the fraction of rows
/// whose most similar partner (cosine) is their own. Returns (text->image, image->text).
pub fn retrieval_accuracy(text: &Tensor, image: &Tensor) -> (f64, f64) {
    let sim = tch::no_grad(|| {
        let t = text
            / text
                .norm_scalaropt_dim(2, &[1i64][..], true)
                .clamp_min(1e-12);
        let i = image
            / image
                .norm_scalaropt_dim(2, &[1i64][..], true)
                .clamp_min(1e-12);
        t.matmul(&i.tr()) // (N, N)
    });
    let n = sim.size()[0];
    let target = Tensor::arange(n, (Kind::Int64, sim.device()));
    let acc = |s: &Tensor| {
        s.argmax(1, false)
            .eq_tensor(&target)
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[])
    };
    (acc(&sim), acc(&sim.tr()))
}
