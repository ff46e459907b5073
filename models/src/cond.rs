//! Conditional generators G(z, c) and discriminators D(x, c): class-conditional (c one-hot) and
//! text-conditional (c a text embedding) networks, with the two D head designs of DESIGN.md.
//!
//! - `mlp` G / `maxout` D: Mirza & Osindero 2014 ("Conditional Generative Adversarial Nets", §4.1, MNIST).
//! - `dcgan` G / D: Reed et al. 2016 (GAN-CLS, "Generative Adversarial Text to Image Synthesis", §3–4),
//!   following the authors' Torch code (reedscot/icml2016 `main_cls_int.lua`, the script their
//!   `scripts/train_cub.sh` / `train_flowers.sh` run).
//! - `projection` D: Miyato & Koyama 2018 ("cGANs with Projection Discriminator", eq. 3).
//!
//! The condition c is always a float tensor (N, cond_dim). Dropout masks never come from libtorch's
//! global generator: see [`SeededDropout`] and [`CondGenerator::set_dropout_state`].

use std::cell::Cell;

use serde::{Deserialize, Serialize};
use tch::{nn, nn::ModuleT, Tensor};

use crate::dcgan::{bn as bn2d, layout, pytorch_bn};
use crate::error::{ModelError, Result};
use crate::nets::{leaky_relu, DataShape};
use crate::rng::{derived_rng, uniform};
use crate::spectral;

/// How D judges (image, condition) pairs (DESIGN.md "D heads").
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum HeadDesign {
    /// One score for "real and matching" (GAN-CLS, CGAN).
    #[default]
    Joint,
    /// A real/fake head on the image alone plus a match head on image + condition (StackGAN++, AttnGAN),
    /// each with its own loss term.
    Split,
}

/// D's scores: `matched` is the joint score (Joint) or the match head on image+condition (Split); `uncond`
/// is the split design's real/fake head on the image alone (None for Joint). Raw logits, shape (N,).
#[derive(Debug)]
pub struct Scores {
    pub matched: Tensor,
    pub uncond: Option<Tensor>,
}

impl Scores {
    /// Both heads' scores summed per sample (the match head alone under the joint design): D's one number
    /// for an (image, condition) pair, what an input-gradient penalty differentiates.
    pub fn total(self) -> Tensor {
        match self.uncond {
            Some(u) => self.matched + u,
            None => self.matched,
        }
    }
}

/// A conditional generator G(z, c).
pub trait CondGenerator: Send {
    /// z (N, z_dim), c (N, cond_dim) -> (N, C) for flat data, else (N, C, H, W), in [-1, 1].
    fn forward_t(&self, z: &Tensor, c: &Tensor, train: bool) -> Tensor;
    /// The latent size G expects.
    fn z_dim(&self) -> i64;
    /// The condition size G expects.
    fn cond_dim(&self) -> i64;
    /// Sets where dropout masks come from (a no-op for networks without dropout). Call it once per
    /// training step with the run seed and the step number: the masks of the k-th training forward after
    /// the call are drawn from `derived_rng(seed, "<layer path>@<step>", k)`, so a run resumed at `step`
    /// draws exactly the masks of the original run. Without a call, seed 0 / step 0 and a counter that
    /// keeps increasing (deterministic, but not resumable).
    fn set_dropout_state(&self, _seed: u64, _step: u64) {}
}

/// A conditional discriminator D(x, c).
pub trait CondDiscriminator: Send {
    /// Image features, computed once and reused for several conditions (real image with the right and
    /// the wrong text).
    fn features(&self, x: &Tensor, train: bool) -> Tensor;
    /// Scores of `features` output `h` paired with conditions c (N, cond_dim).
    fn heads(&self, h: &Tensor, c: &Tensor, train: bool) -> Scores;
    /// features + heads.
    fn forward_t(&self, x: &Tensor, c: &Tensor, train: bool) -> Scores {
        self.heads(&self.features(x, train), c, train)
    }
    /// See [`CondGenerator::set_dropout_state`].
    fn set_dropout_state(&self, _seed: u64, _step: u64) {}
}

// ---------------------------------------------------------------------------------------------------
// Seeded dropout

/// Inverted dropout (kept values scaled by 1/(1−p) in training, identity in evaluation) whose masks come
/// from ChaCha8 streams derived from (seed, layer name, step, call counter), never from libtorch's
/// global generator. `Cell`s keep the state: networks are `Send`, not `Sync`.
#[derive(Debug)]
pub struct SeededDropout {
    p: f64,
    name: String,
    seed: Cell<u64>,
    step: Cell<u64>,
    calls: Cell<u64>,
}

impl SeededDropout {
    /// Dropout with drop probability `p` in [0, 1); `name` (e.g. the layer's variable path) separates the
    /// streams of different layers.
    pub fn new(p: f64, name: impl Into<String>) -> Self {
        SeededDropout {
            p,
            name: name.into(),
            seed: Cell::new(0),
            step: Cell::new(0),
            calls: Cell::new(0),
        }
    }

    /// Masks of the following training forwards come from `derived_rng(seed, "{name}@{step}", k)`,
    /// k = 0, 1, ... counting forwards since this call.
    pub fn set_state(&self, seed: u64, step: u64) {
        self.seed.set(seed);
        self.step.set(step);
        self.calls.set(0);
    }

    /// Training forwards since the last [`SeededDropout::set_state`].
    pub fn calls(&self) -> u64 {
        self.calls.get()
    }

    /// x (any shape) -> same shape; a fresh mask per training call.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        if !train || self.p <= 0.0 {
            return x.shallow_clone();
        }
        let k = self.calls.get();
        self.calls.set(k + 1);
        let stream = format!("{}@{}", self.name, self.step.get());
        let mut rng = derived_rng(self.seed.get(), &stream, k);
        let keep = uniform(&mut rng, &x.size(), 0.0, 1.0, x.device())
            .ge(self.p)
            .to_kind(x.kind()); // same shape, 0/1
        x * keep * (1.0 / (1.0 - self.p)) // same shape
    }
}

fn check_dropout(key: &str, p: f64, problems: &mut Vec<String>) {
    if !(0.0..1.0).contains(&p) {
        problems.push(format!("{key} must be in [0, 1), got {p}"));
    }
}

fn check_positive(key: &str, v: i64, problems: &mut Vec<String>) {
    if v < 1 {
        problems.push(format!("{key} must be >= 1, got {v}"));
    }
}

// ---------------------------------------------------------------------------------------------------
// Mirza & Osindero 2014: MLP G, maxout D

/// Mirza & Osindero's MNIST generator (§4.1): z -> `z_hidden` ReLU, c -> `cond_hidden` ReLU, concatenated
/// (the paper's "combined hidden ReLU layer of dimensionality 1200" = 200 + 1000), -> numel(out) sigmoid.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MirzaGConfig {
    /// Width of the z branch (200).
    pub z_hidden: i64,
    /// Width of the condition branch (1000).
    pub cond_hidden: i64,
    /// An extra fully connected ReLU layer of this width on the concatenation (None: the concatenation
    /// itself is the joint layer, which is how the paper's 1200 = 200 + 1000 reads).
    pub joint_hidden: Option<i64>,
    /// Dropout probability (the paper: 0.5 "applied to both the generator and discriminator", place not
    /// stated; pylearn2 drops layer inputs). Applied here to the input of every layer after the first
    /// (never to z or c themselves).
    pub dropout: f64,
}

impl Default for MirzaGConfig {
    fn default() -> Self {
        MirzaGConfig {
            z_hidden: 200,
            cond_hidden: 1000,
            joint_hidden: None,
            dropout: 0.5,
        }
    }
}

impl MirzaGConfig {
    /// Every problem with the configuration, naming the key.
    pub fn check(&self) -> Vec<String> {
        let mut p = vec![];
        check_positive("z_hidden", self.z_hidden, &mut p);
        check_positive("cond_hidden", self.cond_hidden, &mut p);
        if let Some(j) = self.joint_hidden {
            check_positive("joint_hidden", j, &mut p);
        }
        check_dropout("dropout", self.dropout, &mut p);
        p
    }
}

/// The Mirza & Osindero generator. Names: `z_fc`, `cond_fc`, `joint_fc` (with `joint_hidden`), `out`.
pub struct MirzaGenerator {
    z_fc: Box<dyn ModuleT>,
    cond_fc: Box<dyn ModuleT>,
    joint_fc: Option<(Box<dyn ModuleT>, SeededDropout)>,
    out_drop: SeededDropout,
    out: Box<dyn ModuleT>,
    shape: DataShape,
    z_dim: i64,
    cond_dim: i64,
}

impl MirzaGenerator {
    /// G for latent size `z_dim`, condition size `cond_dim` and samples of shape `out` (any shape: the
    /// output layer has numel(out) units).
    pub fn new(
        p: &nn::Path,
        cfg: &MirzaGConfig,
        z_dim: i64,
        cond_dim: i64,
        out: &DataShape,
    ) -> Result<Self> {
        let mut problems = cfg.check();
        problems.extend(out.check());
        check_positive("z_dim", z_dim, &mut problems);
        check_positive("cond_dim", cond_dim, &mut problems);
        if !problems.is_empty() {
            return Err(ModelError::Config(problems.join("; ")));
        }
        let lin = |name: &str, i, o| spectral::linear(&(p / name), i, o, true, false);
        let mut width = cfg.z_hidden + cfg.cond_hidden;
        let joint_fc = cfg.joint_hidden.map(|j| {
            let l = lin("joint_fc", width, j);
            width = j;
            (
                l,
                SeededDropout::new(cfg.dropout, (p / "joint_fc").path("dropout")),
            )
        });
        Ok(MirzaGenerator {
            z_fc: lin("z_fc", z_dim, cfg.z_hidden),
            cond_fc: lin("cond_fc", cond_dim, cfg.cond_hidden),
            joint_fc,
            out_drop: SeededDropout::new(cfg.dropout, (p / "out").path("dropout")),
            out: lin("out", width, out.numel()),
            shape: *out,
            z_dim,
            cond_dim,
        })
    }
}

impl CondGenerator for MirzaGenerator {
    fn forward_t(&self, z: &Tensor, c: &Tensor, train: bool) -> Tensor {
        // No batch size read from a tensor: a traced G (`ganzoo export`) then takes any batch.
        let hz = self.z_fc.forward_t(&z.flatten(1, -1), train).relu(); // (N, z_hidden)
        let hc = self.cond_fc.forward_t(c, train).relu(); // (N, cond_hidden)
        let mut h = Tensor::cat(&[hz, hc], 1); // (N, z_hidden + cond_hidden)
        if let Some((fc, drop)) = &self.joint_fc {
            h = fc.forward_t(&drop.forward_t(&h, train), train).relu(); // (N, joint_hidden)
        }
        let a = self
            .out
            .forward_t(&self.out_drop.forward_t(&h, train), train); // (N, numel)
                                                                    // 2·sigmoid(a) − 1 = tanh(a/2): the paper's sigmoid output mapped to the data range [-1, 1].
        (a * 0.5)
            .tanh()
            .reshape(self.shape.batch_shape(-1).as_slice()) // (N, C) or (N, C, H, W)
    }

    fn z_dim(&self) -> i64 {
        self.z_dim
    }

    fn cond_dim(&self) -> i64 {
        self.cond_dim
    }

    fn set_dropout_state(&self, seed: u64, step: u64) {
        if let Some((_, d)) = &self.joint_fc {
            d.set_state(seed, step);
        }
        self.out_drop.set_state(seed, step);
    }
}

/// Mirza & Osindero's MNIST discriminator (§4.1): x -> maxout 240 units × 5 pieces, c -> maxout 50 × 5,
/// concatenated -> maxout 240 × 4 -> one logit (the paper's sigmoid is in the loss).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MirzaDConfig {
    /// Units of the maxout layer on the image.
    pub x_units: i64,
    /// Pieces of each unit of the maxout layer on the image.
    pub x_pieces: i64,
    /// Units of the maxout layer on the condition.
    pub cond_units: i64,
    /// Pieces of each unit of the maxout layer on the condition.
    pub cond_pieces: i64,
    /// Units of the maxout layer on the concatenation.
    pub joint_units: i64,
    /// Pieces of each unit of the maxout layer on the concatenation.
    pub joint_pieces: i64,
    /// Dropout on the inputs of the joint maxout, output and split uncond layers (0.5: the paper).
    pub dropout: f64,
    /// Dropout on the image input (0.2: Goodfellow et al.'s MNIST yaml, include probability 0.8 for the
    /// first layer, which the CGAN code builds on; the paper only says 0.5).
    pub input_dropout: f64,
}

impl Default for MirzaDConfig {
    fn default() -> Self {
        MirzaDConfig {
            x_units: 240,
            x_pieces: 5,
            cond_units: 50,
            cond_pieces: 5,
            joint_units: 240,
            joint_pieces: 4,
            dropout: 0.5,
            input_dropout: 0.2,
        }
    }
}

impl MirzaDConfig {
    /// Every problem with the configuration, naming the key.
    pub fn check(&self) -> Vec<String> {
        let mut p = vec![];
        for (k, v) in [
            ("x_units", self.x_units),
            ("x_pieces", self.x_pieces),
            ("cond_units", self.cond_units),
            ("cond_pieces", self.cond_pieces),
            ("joint_units", self.joint_units),
            ("joint_pieces", self.joint_pieces),
        ] {
            check_positive(k, v, &mut p);
        }
        check_dropout("dropout", self.dropout, &mut p);
        check_dropout("input_dropout", self.input_dropout, &mut p);
        p
    }
}

/// A maxout layer (Goodfellow et al. 2013): a linear map to units·pieces values, max over each unit's
/// pieces (pylearn2's layout: a unit's pieces are adjacent outputs).
struct Maxout {
    lin: Box<dyn ModuleT>,
    units: i64,
    pieces: i64,
}

impl Maxout {
    fn new(p: &nn::Path, in_dim: i64, units: i64, pieces: i64, sn: bool) -> Self {
        Maxout {
            lin: spectral::linear(p, in_dim, units * pieces, true, sn),
            units,
            pieces,
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let n = x.size()[0];
        self.lin
            .forward_t(x, train) // (N, units·pieces)
            .reshape([n, self.units, self.pieces]) // (N, units, pieces)
            .amax([2], false) // (N, units)
    }
}

/// The Mirza & Osindero maxout discriminator. Names: `x_maxout`, `cond_maxout`, `joint_maxout`, `out`,
/// and `uncond` (split design: a linear real/fake head on the x-maxout features).
pub struct MaxoutDiscriminator {
    in_drop: SeededDropout,
    x_maxout: Maxout,
    cond_maxout: Maxout,
    joint_drop: SeededDropout,
    joint_maxout: Maxout,
    out_drop: SeededDropout,
    out: Box<dyn ModuleT>,
    uncond: Option<(SeededDropout, Box<dyn ModuleT>)>,
}

impl MaxoutDiscriminator {
    /// D for samples of shape `input` (flattened) and conditions of size `cond_dim`.
    pub fn new(
        p: &nn::Path,
        cfg: &MirzaDConfig,
        cond_dim: i64,
        input: &DataShape,
        heads: HeadDesign,
        spectral_norm: bool,
    ) -> Result<Self> {
        let mut problems = cfg.check();
        problems.extend(input.check());
        check_positive("cond_dim", cond_dim, &mut problems);
        if !problems.is_empty() {
            return Err(ModelError::Config(problems.join("; ")));
        }
        let sn = spectral_norm;
        let joint_in = cfg.x_units + cfg.cond_units;
        let uncond = (heads == HeadDesign::Split).then(|| {
            (
                SeededDropout::new(cfg.dropout, (p / "uncond").path("dropout")),
                spectral::linear(&(p / "uncond"), cfg.x_units, 1, true, sn),
            )
        });
        Ok(MaxoutDiscriminator {
            in_drop: SeededDropout::new(cfg.input_dropout, (p / "x_maxout").path("dropout")),
            x_maxout: Maxout::new(
                &(p / "x_maxout"),
                input.numel(),
                cfg.x_units,
                cfg.x_pieces,
                sn,
            ),
            cond_maxout: Maxout::new(
                &(p / "cond_maxout"),
                cond_dim,
                cfg.cond_units,
                cfg.cond_pieces,
                sn,
            ),
            joint_drop: SeededDropout::new(cfg.dropout, (p / "joint_maxout").path("dropout")),
            joint_maxout: Maxout::new(
                &(p / "joint_maxout"),
                joint_in,
                cfg.joint_units,
                cfg.joint_pieces,
                sn,
            ),
            out_drop: SeededDropout::new(cfg.dropout, (p / "out").path("dropout")),
            out: spectral::linear(&(p / "out"), cfg.joint_units, 1, true, sn),
            uncond,
        })
    }
}

impl CondDiscriminator for MaxoutDiscriminator {
    fn features(&self, x: &Tensor, train: bool) -> Tensor {
        let n = x.size()[0];
        let x = self.in_drop.forward_t(&x.reshape([n, -1]), train); // (N, C·H·W)
        self.x_maxout.forward_t(&x, train) // (N, x_units)
    }

    fn heads(&self, h: &Tensor, c: &Tensor, train: bool) -> Scores {
        let n = h.size()[0];
        let hc = self.cond_maxout.forward_t(c, train); // (N, cond_units)
        let j = Tensor::cat(&[h.shallow_clone(), hc], 1); // (N, x_units + cond_units)
        let j = self
            .joint_maxout
            .forward_t(&self.joint_drop.forward_t(&j, train), train); // (N, joint_units)
        let matched = self
            .out
            .forward_t(&self.out_drop.forward_t(&j, train), train)
            .reshape([n]); // (N,)
        let uncond = self.uncond.as_ref().map(|(drop, lin)| {
            lin.forward_t(&drop.forward_t(h, train), train).reshape([n]) // (N,)
        });
        Scores { matched, uncond }
    }

    fn set_dropout_state(&self, seed: u64, step: u64) {
        for d in [&self.in_drop, &self.joint_drop, &self.out_drop] {
            d.set_state(seed, step);
        }
        if let Some((d, _)) = &self.uncond {
            d.set_state(seed, step);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// DCGAN-style conditional networks (GAN-CLS)

fn check_image(shape: &DataShape, width_key: &str, width: i64) -> Vec<String> {
    let mut p = shape.check();
    if shape.height != shape.width {
        p.push(format!(
            "image must be square, got {}x{}",
            shape.height, shape.width
        ));
    } else if layout(shape.height).is_none() {
        p.push(format!(
            "image size must be one of {:?}, got {}",
            crate::dcgan::DCGAN_SIZES,
            shape.height
        ));
    }
    check_positive(width_key, width, &mut p);
    p
}

fn bn1d(p: &nn::Path, c: i64) -> crate::base::BatchNorm {
    crate::base::batch_norm1d(p, c, pytorch_bn())
}

fn apply_bn(bn: &Option<crate::base::BatchNorm>, x: Tensor, train: bool) -> Tensor {
    match bn {
        Some(b) => b.forward_t(&x, train), // same shape
        None => x,
    }
}

#[derive(Clone, Copy)]
enum Act {
    Relu,
    Leaky,
}

impl Act {
    fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Act::Relu => x.relu(),
            Act::Leaky => leaky_relu(x, 0.2),
        }
    }
}

/// GAN-CLS's residual-style extra layers at a stage of c channels: [1×1 conv c→c/4, BN, act, 3×3 conv
/// c/4→c/4, BN, act, 3×3 conv c/4→c, BN], added to the stage's (post-BN, pre-activation) output.
/// Names `conv1..3`, `bn1..3`.
struct ResBlock {
    convs: Vec<Box<dyn ModuleT>>,
    bns: Vec<Option<crate::base::BatchNorm>>,
    act: Act,
}

impl ResBlock {
    fn new(p: &nn::Path, c: i64, batch_norm: bool, act: Act, sn: bool) -> Self {
        let mid = (c / 4).max(1);
        let spec = [(c, mid, 1, 0), (mid, mid, 3, 1), (mid, c, 3, 1)];
        let mut convs = vec![];
        let mut bns = vec![];
        for (j, (i, o, k, pad)) in spec.into_iter().enumerate() {
            let name = format!("conv{}", j + 1);
            convs.push(spectral::conv2d(
                &(p / name),
                i,
                o,
                k,
                1,
                pad,
                !batch_norm,
                sn,
            ));
            bns.push(batch_norm.then(|| bn2d(&(p / format!("bn{}", j + 1)), o)));
        }
        ResBlock { convs, bns, act }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = x.shallow_clone(); // (N, c, s, s)
        for (j, (conv, bn)) in self.convs.iter().zip(&self.bns).enumerate() {
            h = apply_bn(bn, conv.forward_t(&h, train), train); // (N, c/4 | c, s, s)
            if j < 2 {
                h = self.act.apply(&h); // same shape
            }
        }
        x + h // (N, c, s, s)
    }
}

/// GAN-CLS generator settings (defaults: reedscot/icml2016 `main_cls_int.lua`).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CondDcganGConfig {
    /// Width of the last hidden stage; earlier stages double it (128 in GAN-CLS: 4×4×1024 at 64 px).
    pub ngf: i64,
    /// c -> FC to this width + LeakyReLU(0.2) before the concatenation with z (the code's `nt` = 128);
    /// None concatenates c directly.
    pub cond_proj: Option<i64>,
    /// The code's residual-style extra layers after the first two stages (4×4 and 8×8 at 64 px).
    pub extra_layers: bool,
    /// Batch norm after every conv but the last. The Torch code gives its convs biases but zeroes them
    /// before every step, so with batch norm the convs here have none.
    pub batch_norm: bool,
    /// Conditional batch norm (as in SNGAN / BigGAN generators; not in GAN-CLS): after every stage's
    /// batch norm, h·(1 + γ_k(c)) + β_k(c) with γ_k, β_k linear maps of the (projected) condition,
    /// zero-initialized, so the condition reaches every stage and not only the input. Needs batch_norm.
    pub cond_bn: bool,
}

impl Default for CondDcganGConfig {
    fn default() -> Self {
        CondDcganGConfig {
            ngf: 128,
            cond_proj: Some(128),
            extra_layers: true,
            batch_norm: true,
            cond_bn: false,
        }
    }
}

impl CondDcganGConfig {
    /// Every problem building G for `out` would hit, naming the key.
    pub fn check(&self, out: &DataShape) -> Vec<String> {
        let mut p = check_image(out, "ngf", self.ngf);
        if let Some(c) = self.cond_proj {
            check_positive("cond_proj", c, &mut p);
        }
        if self.cond_bn && !self.batch_norm {
            p.push("cond_bn: true needs batch_norm: true".into());
        }
        p
    }
}

struct GStage {
    deconv: nn::ConvTranspose2D,
    bn: Option<crate::base::BatchNorm>,
    /// Conditional gain and bias (`cond_bn`): Linear(P -> c_out) each.
    cbn: Option<(nn::Linear, nn::Linear)>,
    res: Option<ResBlock>,
}

/// The GAN-CLS generator: z (N, nz), c (N, cond_dim) -> (N, C, S, S) in [-1, 1].
///
/// [z, act(FC(c))] (N, nz + P, 1, 1) -> ConvTranspose(base, 1, 0) to ngf·2^(n-1) channels -> n-1
/// ConvTranspose(4, 2, 1) stages halving channels, each with BN (+ extra layers at the first two) + ReLU
/// -> ConvTranspose(4, 2, 1) to C channels -> tanh. Names: `cond_proj`, `body.deconv{k}`, `body.bn{k}`,
/// `body.res{k}.conv{j}` / `.bn{j}` (k = 1..n), `body.out`.
pub struct CondDcganGenerator {
    cond_proj: Option<Box<dyn ModuleT>>,
    stages: Vec<GStage>,
    out: nn::ConvTranspose2D,
    z_dim: i64,
    cond_dim: i64,
}

impl CondDcganGenerator {
    pub fn new(
        p: &nn::Path,
        cfg: &CondDcganGConfig,
        z_dim: i64,
        cond_dim: i64,
        out: &DataShape,
    ) -> Result<Self> {
        let mut problems = cfg.check(out);
        check_positive("z_dim", z_dim, &mut problems);
        check_positive("cond_dim", cond_dim, &mut problems);
        let (base, n) = match (problems.is_empty(), layout(out.height)) {
            (true, Some(l)) => l,
            _ => return Err(ModelError::Config(problems.join("; "))),
        };
        let cond_proj = cfg
            .cond_proj
            .map(|w| spectral::linear(&(p / "cond_proj"), cond_dim, w, true, false));
        let body = p / "body";
        let mut c_in = z_dim + cfg.cond_proj.unwrap_or(cond_dim);
        let mut stages = Vec::with_capacity(n);
        for s in 0..n {
            let k = s + 1;
            let c_out = cfg.ngf << (n - 1 - s);
            let (ks, stride, pad) = if s == 0 { (base, 1, 0) } else { (4, 2, 1) };
            let conv_cfg = nn::ConvTransposeConfig {
                stride,
                padding: pad,
                bias: !cfg.batch_norm,
                ..Default::default()
            };
            let deconv =
                nn::conv_transpose2d(&body / format!("deconv{k}"), c_in, c_out, ks, conv_cfg);
            let bn = cfg
                .batch_norm
                .then(|| bn2d(&(&body / format!("bn{k}")), c_out));
            let cbn = cfg.cond_bn.then(|| {
                let zero = nn::LinearConfig {
                    ws_init: nn::Init::Const(0.0),
                    bs_init: Some(nn::Init::Const(0.0)),
                    bias: true,
                };
                let cp = &body / format!("cbn{k}");
                let width = cfg.cond_proj.unwrap_or(cond_dim);
                (nn::linear(&cp / "gain", width, c_out, zero), nn::linear(&cp / "bias", width, c_out, zero))
            });
            let res = (cfg.extra_layers && s < 2).then(|| {
                ResBlock::new(
                    &(&body / format!("res{k}")),
                    c_out,
                    cfg.batch_norm,
                    Act::Relu,
                    false,
                )
            });
            stages.push(GStage { deconv, bn, cbn, res });
            c_in = c_out;
        }
        let last_cfg = nn::ConvTransposeConfig {
            stride: 2,
            padding: 1,
            bias: !cfg.batch_norm,
            ..Default::default()
        };
        let out = nn::conv_transpose2d(&body / "out", c_in, out.channels, 4, last_cfg);
        Ok(CondDcganGenerator {
            cond_proj,
            stages,
            out,
            z_dim,
            cond_dim,
        })
    }
}

impl CondGenerator for CondDcganGenerator {
    fn forward_t(&self, z: &Tensor, c: &Tensor, train: bool) -> Tensor {
        // No batch size read from a tensor: a traced G (`ganzoo export`) then takes any batch.
        let c = match &self.cond_proj {
            Some(fc) => leaky_relu(&fc.forward_t(c, train), 0.2), // (N, P)
            None => c.shallow_clone(),                            // (N, cond_dim)
        };
        let mut h = Tensor::cat(&[z.flatten(1, -1), c.shallow_clone()], 1); // (N, nz + P)
        h = h.unsqueeze(-1).unsqueeze(-1); // (N, nz + P, 1, 1)
        for st in &self.stages {
            h = st.deconv.forward_t(&h, train); // (N, ngf·2^(n-1-s), base·2^s, base·2^s)
            h = apply_bn(&st.bn, h, train); // same shape
            if let Some((gain, bias)) = &st.cbn {
                let ch = h.size()[1];
                let g = gain.forward_t(&c, train).reshape([-1, ch, 1, 1]); // (N, c_out, 1, 1)
                let b = bias.forward_t(&c, train).reshape([-1, ch, 1, 1]); // (N, c_out, 1, 1)
                h = h * (g + 1.0) + b; // same shape
            }
            if let Some(r) = &st.res {
                h = r.forward_t(&h, train); // same shape
            }
            h = h.relu(); // same shape
        }
        self.out.forward_t(&h, train).tanh() // (N, C, S, S) in [-1, 1]
    }

    fn z_dim(&self) -> i64 {
        self.z_dim
    }

    fn cond_dim(&self) -> i64 {
        self.cond_dim
    }
}

/// GAN-CLS discriminator settings (defaults: reedscot/icml2016 `main_cls_int.lua`, ndf 64, nt 128).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CondDcganDConfig {
    /// Width of the first stage; later stages double it (64 in GAN-CLS: 4×4×512 features at 64 px).
    pub ndf: i64,
    /// c -> FC to this width (+ BN) + LeakyReLU(0.2), replicated over the base×base grid; None
    /// concatenates c directly.
    pub cond_proj: Option<i64>,
    /// BatchNorm1d on the condition projection (`main_cls_int.lua` has it, `main_cls.lua` does not).
    /// In training mode it needs batches of at least 2 rows (libtorch rejects batch statistics of one).
    pub cond_proj_bn: bool,
    /// A residual-style extra block on the trunk's last stage. The code builds one but adds `skipD`, an
    /// undefined variable, to its ConcatTable, so the block never runs: false matches what the code
    /// computes; true adds it as evidently intended.
    pub extra_layers: bool,
    /// Batch norm from the second conv on (DCGAN); convs have no bias with it (the Torch code zeroes them).
    pub batch_norm: bool,
}

impl Default for CondDcganDConfig {
    fn default() -> Self {
        CondDcganDConfig {
            ndf: 64,
            cond_proj: Some(128),
            cond_proj_bn: true,
            extra_layers: false,
            batch_norm: true,
        }
    }
}

impl CondDcganDConfig {
    /// Every problem building D for `input` would hit, naming the key.
    pub fn check(&self, input: &DataShape) -> Vec<String> {
        let mut p = check_image(input, "ndf", self.ndf);
        if let Some(c) = self.cond_proj {
            check_positive("cond_proj", c, &mut p);
        }
        p
    }
}

/// The DCGAN conv trunk: n Conv(4, 2, 1) stages, BN from the second, (extra block,) LeakyReLU(0.2):
/// (N, C, S, S) -> (N, ndf·2^(n-1), base, base). Names `conv{k}`, `bn{k}`, `res.*`.
///
/// `main_cls_int.lua` has no LeakyReLU after its third stage's BN (`main_cls.lua` and the paper do):
/// every stage here has one.
struct Trunk {
    stages: Vec<(Box<dyn ModuleT>, Option<crate::base::BatchNorm>)>,
    res: Option<ResBlock>,
    channels: i64,
    base: i64,
}

impl Trunk {
    fn new(
        p: &nn::Path,
        input: &DataShape,
        ndf: i64,
        batch_norm: bool,
        extra: bool,
        sn: bool,
    ) -> Self {
        // Callers validated the shape with check_image.
        let (base, n) = layout(input.height).unwrap_or((4, 4));
        let mut stages = Vec::with_capacity(n);
        let mut c_in = input.channels;
        for s in 0..n {
            let k = s + 1;
            let c_out = ndf << s;
            let conv = spectral::conv2d(
                &(p / format!("conv{k}")),
                c_in,
                c_out,
                4,
                2,
                1,
                !batch_norm,
                sn,
            );
            let bn = (batch_norm && s > 0).then(|| bn2d(&(p / format!("bn{k}")), c_out));
            stages.push((conv, bn));
            c_in = c_out;
        }
        let res = extra.then(|| ResBlock::new(&(p / "res"), c_in, batch_norm, Act::Leaky, sn));
        Trunk {
            stages,
            res,
            channels: c_in,
            base,
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = x.shallow_clone(); // (N, C, S, S)
        let last = self.stages.len() - 1;
        for (s, (conv, bn)) in self.stages.iter().enumerate() {
            h = conv.forward_t(&h, train); // (N, ndf·2^s, S/2^(s+1), S/2^(s+1))
            h = apply_bn(bn, h, train); // same shape
            if s == last {
                if let Some(r) = &self.res {
                    h = r.forward_t(&h, train); // same shape
                }
            }
            h = leaky_relu(&h, 0.2); // same shape
        }
        h // (N, F, base, base)
    }
}

/// The condition branch of a D: FC (+ BN) + LeakyReLU(0.2), or c itself. Names `cond_proj`, `cond_bn`.
struct CondProj {
    fc: Option<(Box<dyn ModuleT>, Option<crate::base::BatchNorm>)>,
    width: i64,
}

impl CondProj {
    fn new(p: &nn::Path, cond_dim: i64, proj: Option<i64>, bn: bool, sn: bool) -> Self {
        match proj {
            Some(w) => CondProj {
                fc: Some((
                    spectral::linear(&(p / "cond_proj"), cond_dim, w, true, sn),
                    bn.then(|| bn1d(&(p / "cond_bn"), w)),
                )),
                width: w,
            },
            None => CondProj {
                fc: None,
                width: cond_dim,
            },
        }
    }

    fn forward_t(&self, c: &Tensor, train: bool) -> Tensor {
        match &self.fc {
            Some((fc, bn)) => {
                let h = apply_bn(bn, fc.forward_t(c, train), train); // (N, P)
                leaky_relu(&h, 0.2) // (N, P)
            }
            None => c.shallow_clone(), // (N, cond_dim)
        }
    }
}

/// GAN-CLS's matching-aware head: [h, replicated cond] -> 1×1 conv to F + BN + LeakyReLU -> base×base
/// conv -> 1. Names `head.mix`, `head.bn`, `head.conv`.
struct MatchHead {
    mix: Box<dyn ModuleT>,
    bn: Option<crate::base::BatchNorm>,
    conv: Box<dyn ModuleT>,
}

/// The GAN-CLS discriminator: trunk features (N, F, base, base); the match head on (features, c); with
/// the split design also `uncond.conv`, a base×base conv on the features alone.
pub struct CondDcganDiscriminator {
    trunk: Trunk,
    cond: CondProj,
    head: MatchHead,
    uncond: Option<Box<dyn ModuleT>>,
}

impl CondDcganDiscriminator {
    pub fn new(
        p: &nn::Path,
        cfg: &CondDcganDConfig,
        cond_dim: i64,
        input: &DataShape,
        heads: HeadDesign,
        spectral_norm: bool,
    ) -> Result<Self> {
        let mut problems = cfg.check(input);
        check_positive("cond_dim", cond_dim, &mut problems);
        if !problems.is_empty() {
            return Err(ModelError::Config(problems.join("; ")));
        }
        let sn = spectral_norm;
        let trunk = Trunk::new(
            &(p / "trunk"),
            input,
            cfg.ndf,
            cfg.batch_norm,
            cfg.extra_layers,
            sn,
        );
        let cond = CondProj::new(p, cond_dim, cfg.cond_proj, cfg.cond_proj_bn, sn);
        let f = trunk.channels;
        let hp = p / "head";
        let head = MatchHead {
            mix: spectral::conv2d(
                &(&hp / "mix"),
                f + cond.width,
                f,
                1,
                1,
                0,
                !cfg.batch_norm,
                sn,
            ),
            bn: cfg.batch_norm.then(|| bn2d(&(&hp / "bn"), f)),
            conv: spectral::conv2d(&(&hp / "conv"), f, 1, trunk.base, 1, 0, false, sn),
        };
        let uncond = (heads == HeadDesign::Split)
            .then(|| spectral::conv2d(&(p / "uncond" / "conv"), f, 1, trunk.base, 1, 0, false, sn));
        Ok(CondDcganDiscriminator {
            trunk,
            cond,
            head,
            uncond,
        })
    }
}

impl CondDiscriminator for CondDcganDiscriminator {
    fn features(&self, x: &Tensor, train: bool) -> Tensor {
        self.trunk.forward_t(x, train) // (N, F, base, base)
    }

    fn heads(&self, h: &Tensor, c: &Tensor, train: bool) -> Scores {
        let size = h.size();
        let (n, b) = (size[0], size[2]);
        let hc = self.cond.forward_t(c, train); // (N, P)
        let p = hc.size()[1];
        let hc = hc.reshape([n, p, 1, 1]).expand([n, p, b, b], false); // (N, P, base, base)
        let j = Tensor::cat(&[h.shallow_clone(), hc], 1); // (N, F + P, base, base)
        let j = self.head.mix.forward_t(&j, train); // (N, F, base, base)
        let j = leaky_relu(&apply_bn(&self.head.bn, j, train), 0.2); // same shape
        let matched = self.head.conv.forward_t(&j, train).reshape([n]); // (N, 1, 1, 1) -> (N,)
        let uncond = self
            .uncond
            .as_ref()
            .map(|u| u.forward_t(h, train).reshape([n])); // (N, 1, 1, 1) -> (N,)
        Scores { matched, uncond }
    }
}

/// How the projection D pools its trunk features to φ(x).
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    /// Global sum pooling (Miyato & Koyama's code).
    #[default]
    Sum,
    Mean,
}

/// Projection discriminator settings (Miyato & Koyama 2018) on a DCGAN trunk.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectionDConfig {
    /// Width of the first trunk stage; later stages double it.
    pub ndf: i64,
    /// Batch norm in the trunk (DCGAN; the paper's ResNet D has none and relies on spectral norm).
    pub batch_norm: bool,
    /// How the trunk's features are pooled into φ(x): `sum` or `mean`.
    pub pool: Pool,
}

impl Default for ProjectionDConfig {
    fn default() -> Self {
        ProjectionDConfig {
            ndf: 64,
            batch_norm: true,
            pool: Pool::Sum,
        }
    }
}

impl ProjectionDConfig {
    /// Every problem building D for `input` would hit, naming the key.
    pub fn check(&self, input: &DataShape) -> Vec<String> {
        check_image(input, "ndf", self.ndf)
    }
}

/// The projection discriminator: φ(x) (N, F) = pooled trunk features; Joint: ψ(φ) + ⟨V c, φ⟩ (eq. 3);
/// Split: uncond = ψ(φ), matched = ⟨V c, φ⟩. ψ is `uncond` (Linear F -> 1), V is `embed` (Linear
/// cond_dim -> F without bias: for one-hot c, V c is the class embedding).
pub struct ProjectionDiscriminator {
    trunk: Trunk,
    pool: Pool,
    psi: Box<dyn ModuleT>,
    embed: Box<dyn ModuleT>,
    split: bool,
}

impl ProjectionDiscriminator {
    pub fn new(
        p: &nn::Path,
        cfg: &ProjectionDConfig,
        cond_dim: i64,
        input: &DataShape,
        heads: HeadDesign,
        spectral_norm: bool,
    ) -> Result<Self> {
        let mut problems = cfg.check(input);
        check_positive("cond_dim", cond_dim, &mut problems);
        if !problems.is_empty() {
            return Err(ModelError::Config(problems.join("; ")));
        }
        let sn = spectral_norm;
        let trunk = Trunk::new(&(p / "trunk"), input, cfg.ndf, cfg.batch_norm, false, sn);
        let f = trunk.channels;
        Ok(ProjectionDiscriminator {
            psi: spectral::linear(&(p / "uncond"), f, 1, true, sn),
            embed: spectral::linear(&(p / "embed"), cond_dim, f, false, sn),
            trunk,
            pool: cfg.pool,
            split: heads == HeadDesign::Split,
        })
    }
}

impl CondDiscriminator for ProjectionDiscriminator {
    fn features(&self, x: &Tensor, train: bool) -> Tensor {
        let h = self.trunk.forward_t(x, train); // (N, F, base, base)
        match self.pool {
            Pool::Sum => h.sum_dim_intlist(&[2i64, 3][..], false, h.kind()), // (N, F)
            Pool::Mean => h.mean_dim(&[2i64, 3][..], false, h.kind()),       // (N, F)
        }
    }

    fn heads(&self, h: &Tensor, c: &Tensor, train: bool) -> Scores {
        projection_scores(h, c, self.psi.as_ref(), self.embed.as_ref(), self.split, train)
    }
}

/// The projection D's scores (eq. 3) of pooled features φ (N, F) against conditions c (N, C), with ψ
/// (Linear F -> 1) and V (Linear C -> F): Joint: ψ(φ) + ⟨V c, φ⟩; Split: matched ⟨V c, φ⟩, uncond ψ(φ).
pub(crate) fn projection_scores(
    phi: &Tensor,
    c: &Tensor,
    psi: &dyn ModuleT,
    embed: &dyn ModuleT,
    split: bool,
    train: bool,
) -> Scores {
    let n = phi.size()[0];
    let psi = psi.forward_t(phi, train).reshape([n]); // (N,)
    let proj = (embed.forward_t(c, train) * phi).sum_dim_intlist(&[1i64][..], false, phi.kind()); // (N,)
    if split {
        Scores { matched: proj, uncond: Some(psi) }
    } else {
        Scores { matched: psi + proj, uncond: None }
    }
}

// ---------------------------------------------------------------------------------------------------
// Configs

/// Which conditional generator to build (`arch: mlp | dcgan` plus the architecture's own keys).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "arch", rename_all = "snake_case")]
pub enum CondGeneratorConfig {
    /// Mirza & Osindero 2014.
    Mlp(MirzaGConfig),
    /// Reed et al. 2016 (GAN-CLS).
    Dcgan(CondDcganGConfig),
}

impl Default for CondGeneratorConfig {
    fn default() -> Self {
        CondGeneratorConfig::Dcgan(CondDcganGConfig::default())
    }
}

/// Which conditional discriminator to build (`arch: maxout | dcgan | projection` plus its own keys).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "arch", rename_all = "snake_case")]
pub enum CondDiscriminatorConfig {
    /// Mirza & Osindero 2014.
    Maxout(MirzaDConfig),
    /// Reed et al. 2016 (GAN-CLS).
    Dcgan(CondDcganDConfig),
    /// Miyato & Koyama 2018.
    Projection(ProjectionDConfig),
}

impl Default for CondDiscriminatorConfig {
    fn default() -> Self {
        CondDiscriminatorConfig::Dcgan(CondDcganDConfig::default())
    }
}

impl CondGeneratorConfig {
    /// Builds G under `p`. Weights start from tch's default initializers: apply [`crate::init`] (e.g.
    /// `init_dcgan`) with a seeded RNG for reproducible weights.
    pub fn build(
        &self,
        p: &nn::Path,
        z_dim: i64,
        cond_dim: i64,
        out: &DataShape,
    ) -> Result<Box<dyn CondGenerator>> {
        Ok(match self {
            CondGeneratorConfig::Mlp(c) => {
                Box::new(MirzaGenerator::new(p, c, z_dim, cond_dim, out)?)
            }
            CondGeneratorConfig::Dcgan(c) => {
                Box::new(CondDcganGenerator::new(p, c, z_dim, cond_dim, out)?)
            }
        })
    }

    /// Every problem building this generator for `out` would hit (empty when fine).
    pub fn check(&self, out: &DataShape) -> Vec<String> {
        match self {
            CondGeneratorConfig::Mlp(c) => {
                let mut p = out.check();
                p.extend(c.check());
                p
            }
            CondGeneratorConfig::Dcgan(c) => c.check(out),
        }
    }
}

impl CondDiscriminatorConfig {
    /// Builds D under `p` for samples of shape `input` and conditions of size `cond_dim`; `spectral_norm`
    /// wraps every conv/linear layer in [`crate::spectral`].
    pub fn build(
        &self,
        p: &nn::Path,
        cond_dim: i64,
        input: &DataShape,
        heads: HeadDesign,
        spectral_norm: bool,
    ) -> Result<Box<dyn CondDiscriminator>> {
        Ok(match self {
            CondDiscriminatorConfig::Maxout(c) => Box::new(MaxoutDiscriminator::new(
                p,
                c,
                cond_dim,
                input,
                heads,
                spectral_norm,
            )?),
            CondDiscriminatorConfig::Dcgan(c) => Box::new(CondDcganDiscriminator::new(
                p,
                c,
                cond_dim,
                input,
                heads,
                spectral_norm,
            )?),
            CondDiscriminatorConfig::Projection(c) => Box::new(ProjectionDiscriminator::new(
                p,
                c,
                cond_dim,
                input,
                heads,
                spectral_norm,
            )?),
        })
    }

    /// Every problem building this discriminator for `input` would hit (empty when fine).
    pub fn check(&self, input: &DataShape) -> Vec<String> {
        match self {
            CondDiscriminatorConfig::Maxout(c) => {
                let mut p = input.check();
                p.extend(c.check());
                p
            }
            CondDiscriminatorConfig::Dcgan(c) => c.check(input),
            CondDiscriminatorConfig::Projection(c) => c.check(input),
        }
    }
}
