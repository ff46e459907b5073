//! DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training", §3 and the
//! authors' `DiffAugment_pytorch.py`): the same random, differentiable transform T applied to every image D sees,
//! real and generated, in D's and in G's step (D(T(x)), D(T(G(z)))), so D cannot memorize a small data set and
//! G's gradients pass through T.
//!
//! The official policy ops, with the official code's ranges and rounding:
//! - `color`: brightness x + b, b ~ U(−0.5, 0.5); saturation (x − mean_C x)·s + mean_C x, s ~ U(0, 2);
//!   contrast (x − mean_{C,H,W} x)·c + mean_{C,H,W} x, c ~ U(0.5, 1.5); one b, s, c per sample, in that order.
//! - `translation` (ratio 1/8): out[i, j] = x[i + t_h, j + t_w] where inside the image, else 0, with integer
//!   t_h ∈ [−⌊H/8 + ½⌋, ⌊H/8 + ½⌋], t_w likewise from W, per sample (the official code's gather from a
//!   1-pixel zero-padded copy with clamped indices, which this reproduces index for index).
//! - `cutout` (ratio 1/2): a ⌊H/2 + ½⌋ × ⌊W/2 + ½⌋ rectangle set to 0, its rows
//!   clamp(o_h − ⌊size_h/2⌋ + k, 0, H − 1) for k < size_h with o_h ∈ [0, H − (size_h mod 2)] (columns alike),
//!   so it is clipped at the borders, per sample.
//!
//! Randomness and application are split: [`AugParams::draw`] takes every random number from a seeded ChaCha
//! stream (never libtorch's generator), and [`apply`] is a pure function of the image batch built from
//! arithmetic, padding and gathers (no in-place op on x, no detach), differentiable in x, for any float dtype
//! (bf16 included, kept) and on the device of x. Applying one `AugParams` to a real and a fake batch of the same
//! size transforms both identically.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::error::{ModelError, Result};
use crate::rng::{randint, uniform};

/// One op of a DiffAugment policy (the official policy string's names).
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AugOp {
    /// Random brightness, saturation and contrast.
    Color,
    /// Random integer translation by up to 1/8 of the image side, zero fill.
    Translation,
    /// A random half-side rectangle set to zero.
    Cutout,
}

/// A DiffAugment policy: the ops applied in order (`ops: [color, translation, cutout]`). The default is the
/// paper's policy for its main results, `color,translation,cutout`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DiffAugment {
    pub ops: Vec<AugOp>,
}

impl Default for DiffAugment {
    fn default() -> Self {
        DiffAugment { ops: vec![AugOp::Color, AugOp::Translation, AugOp::Cutout] }
    }
}

impl DiffAugment {
    /// Draws the parameters of one transform of an (n, C, h, w) batch (see [`AugParams::draw`]).
    pub fn draw(&self, rng: &mut ChaCha8Rng, n: i64, h: i64, w: i64, device: Device) -> Result<AugParams> {
        AugParams::draw(rng, n, h, w, &self.ops, device)
    }
}

/// The largest translation along a side of `size` pixels: ⌊size/8 + ½⌋ (the official `int(size * 0.125 + 0.5)`).
pub fn max_shift(size: i64) -> i64 {
    (size + 4) / 8
}

/// The cutout rectangle's side along a side of `size` pixels: ⌊size/2 + ½⌋ (the official `int(size * 0.5 + 0.5)`).
pub fn cutout_size(size: i64) -> i64 {
    (size + 1) / 2
}

/// The `color` op's factors, each of shape (N,): brightness b (added), saturation s and contrast c (scales).
#[derive(Debug)]
pub struct ColorParams {
    pub brightness: Tensor,
    pub saturation: Tensor,
    pub contrast: Tensor,
}

/// Per-sample row and column values must come in equal numbers, for an image of positive size.
fn check_per_sample(what: &str, rows: &[i64], cols: &[i64], h: i64, w: i64) -> Result<()> {
    if rows.len() == cols.len() && h >= 1 && w >= 1 {
        return Ok(());
    }
    Err(ModelError::Shape(format!("{what}: {} and {} values for {h}x{w} images", rows.len(), cols.len())))
}

/// The `translation` op's shifts per sample and the gather indices they give.
#[derive(Debug)]
pub struct TranslationParams {
    /// t_h per sample: output row i reads input row i + t_h.
    pub shift_h: Vec<i64>,
    /// t_w per sample: output column j reads input column j + t_w.
    pub shift_w: Vec<i64>,
    /// (N, H) rows of the 1-pixel zero-padded input to read: clamp(i + t_h + 1, 0, H + 1).
    rows: Tensor,
    /// (N, W) columns of the padded input: clamp(j + t_w + 1, 0, W + 1).
    cols: Tensor,
}

impl TranslationParams {
    /// Shifts for an (N, C, h, w) batch (N = `shift_h.len()` = `shift_w.len()`); any integers, a shift of the
    /// side or more gives an all-zero image. Indices are built on `device`.
    pub fn new(shift_h: Vec<i64>, shift_w: Vec<i64>, h: i64, w: i64, device: Device) -> Result<Self> {
        check_per_sample("translation: row shifts and column shifts", &shift_h, &shift_w, h, w)?;
        let index = |shifts: &[i64], side: i64| {
            let v: Vec<i64> =
                shifts.iter().flat_map(|t| (0..side).map(move |i| (i + t + 1).clamp(0, side + 1))).collect();
            Tensor::from_slice(&v).reshape([shifts.len() as i64, side]).to_device(device)
        };
        let (rows, cols) = (index(&shift_h, h), index(&shift_w, w));
        Ok(TranslationParams { shift_h, shift_w, rows, cols })
    }
}

/// The `cutout` op's rectangle centres per sample and the mask they give.
#[derive(Debug)]
pub struct CutoutParams {
    /// o_h per sample (the official `offset_x`, in [0, H − (size_h mod 2)] when drawn).
    pub offset_h: Vec<i64>,
    /// o_w per sample.
    pub offset_w: Vec<i64>,
    /// (N, 1, H, W) f32: 0 inside the rectangle, 1 elsewhere.
    mask: Tensor,
}

impl CutoutParams {
    /// Rectangles for an (N, C, h, w) batch (N = `offset_h.len()` = `offset_w.len()`), of side
    /// [`cutout_size`], covering rows clamp(o_h − ⌊size_h/2⌋ + k, 0, h − 1), k < size_h (columns alike), as the
    /// official code. The mask is built on `device`.
    pub fn new(offset_h: Vec<i64>, offset_w: Vec<i64>, h: i64, w: i64, device: Device) -> Result<Self> {
        check_per_sample("cutout: row offsets and column offsets", &offset_h, &offset_w, h, w)?;
        let n = offset_h.len() as i64;
        // Per sample, a 0/1 indicator of the rectangle's rows (cols): (N, side).
        let inside = |offsets: &[i64], side: i64| {
            let size = cutout_size(side);
            let mut v = vec![0f32; offsets.len() * side as usize];
            for (s, o) in offsets.iter().enumerate() {
                for k in 0..size {
                    let i = (o - size / 2 + k).clamp(0, side - 1);
                    v[s * side as usize + i as usize] = 1.0;
                }
            }
            Tensor::from_slice(&v).reshape([offsets.len() as i64, side]).to_device(device)
        };
        let r = inside(&offset_h, h).view([n, 1, h, 1]);
        let c = inside(&offset_w, w).view([n, 1, 1, w]);
        let mask = (r * c).neg() + 1.0; // (N, 1, H, W)
        Ok(CutoutParams { offset_h, offset_w, mask })
    }
}

/// The parameters of one op of a drawn transform.
#[derive(Debug)]
pub enum AugStep {
    Color(ColorParams),
    Translation(TranslationParams),
    Cutout(CutoutParams),
}

impl AugStep {
    /// The batch size this step was made for.
    fn batch(&self) -> i64 {
        match self {
            AugStep::Color(c) => c.brightness.numel() as i64,
            AugStep::Translation(t) => t.shift_h.len() as i64,
            AugStep::Cutout(c) => c.offset_h.len() as i64,
        }
    }

    fn apply(&self, x: &Tensor) -> Tensor {
        let (k, dev) = (x.kind(), x.device());
        let size = x.size();
        let (n, c, h, w) = (size[0], size[1], size[2], size[3]);
        match self {
            AugStep::Color(p) => {
                let factor = |t: &Tensor| t.to_device(dev).to_kind(k).view([n, 1, 1, 1]);
                let x = x + factor(&p.brightness); // (N, C, H, W)
                let mean = x.mean_dim(1, true, k); // (N, 1, H, W)
                let x = (&x - &mean) * factor(&p.saturation) + &mean; // (N, C, H, W)
                let mean = x.mean_dim([1i64, 2, 3].as_slice(), true, k); // (N, 1, 1, 1)
                (&x - &mean) * factor(&p.contrast) + &mean // (N, C, H, W)
            }
            AugStep::Translation(p) => {
                let padded = x.constant_pad_nd([1i64, 1, 1, 1]); // (N, C, H + 2, W + 2), zeros around
                let rows = p.rows.to_device(dev).view([n, 1, h, 1]).expand([n, c, h, w + 2], false);
                let by_rows = padded.gather(2, &rows, false); // (N, C, H, W + 2)
                let cols = p.cols.to_device(dev).view([n, 1, 1, w]).expand([n, c, h, w], false);
                by_rows.gather(3, &cols, false) // (N, C, H, W)
            }
            AugStep::Cutout(p) => x * p.mask.to_device(dev).to_kind(k), // (N, C, H, W)
        }
    }
}

/// Everything random about one DiffAugment transform of an (N, C, H, W) batch: the steps in policy order.
#[derive(Debug)]
pub struct AugParams {
    n: i64,
    h: i64,
    w: i64,
    steps: Vec<AugStep>,
}

impl AugParams {
    /// Parameters from explicit steps (e.g. numbers drawn elsewhere), checked against the batch size `n` and,
    /// for translation and cutout, the image size `h`×`w` they were built for (their index tensors and masks
    /// are per pixel, so build them with the same `h`, `w`).
    pub fn new(n: i64, h: i64, w: i64, steps: Vec<AugStep>) -> Result<Self> {
        if n < 0 || h < 1 || w < 1 {
            return Err(ModelError::Shape(format!("DiffAugment: batch {n} of {h}x{w} images")));
        }
        for s in &steps {
            let (fits, what) = match s {
                AugStep::Color(p) => {
                    let sizes = [&p.brightness, &p.saturation, &p.contrast].map(|t| t.numel() as i64);
                    (sizes.iter().all(|m| *m == n), format!("color factors of {sizes:?} samples"))
                }
                AugStep::Translation(p) => {
                    let ok = p.rows.size() == [n, h] && p.cols.size() == [n, w];
                    (ok, format!("translation indices {:?}, {:?}", p.rows.size(), p.cols.size()))
                }
                AugStep::Cutout(p) => (p.mask.size() == [n, 1, h, w], format!("cutout mask {:?}", p.mask.size())),
            };
            if !fits {
                return Err(ModelError::Shape(format!(
                    "DiffAugment: {what} do not fit a batch of {n} images of {h}x{w} (step for a batch of {})",
                    s.batch()
                )));
            }
        }
        Ok(AugParams { n, h, w, steps })
    }

    /// Draws one transform of an (n, C, h, w) batch for the policy `ops` from `rng` (every number, in policy
    /// order; per op: color b, s, c for all samples; translation t_h then t_w; cutout o_h then o_w), with the
    /// index tensors and masks built on `device`. The same `rng` state always gives the same transform.
    pub fn draw(rng: &mut ChaCha8Rng, n: i64, h: i64, w: i64, ops: &[AugOp], device: Device) -> Result<Self> {
        if n < 0 || h < 1 || w < 1 {
            return Err(ModelError::Shape(format!("DiffAugment: cannot draw for a batch of {n} images of {h}x{w}")));
        }
        let count = n as usize;
        let mut steps = Vec::with_capacity(ops.len());
        for op in ops {
            steps.push(match op {
                AugOp::Color => AugStep::Color(ColorParams {
                    brightness: uniform(rng, &[n], -0.5, 0.5, device),
                    saturation: uniform(rng, &[n], 0.0, 2.0, device),
                    contrast: uniform(rng, &[n], 0.5, 1.5, device),
                }),
                AugOp::Translation => {
                    let (sh, sw) = (max_shift(h), max_shift(w));
                    let shift_h = randint(rng, count, -sh, sh);
                    let shift_w = randint(rng, count, -sw, sw);
                    AugStep::Translation(TranslationParams::new(shift_h, shift_w, h, w, device)?)
                }
                AugOp::Cutout => {
                    let offset_h = randint(rng, count, 0, h - cutout_size(h) % 2);
                    let offset_w = randint(rng, count, 0, w - cutout_size(w) % 2);
                    AugStep::Cutout(CutoutParams::new(offset_h, offset_w, h, w, device)?)
                }
            });
        }
        AugParams::new(n, h, w, steps)
    }

    /// The steps, in the order [`apply`] runs them.
    pub fn steps(&self) -> &[AugStep] {
        &self.steps
    }

    /// Whether applying changes nothing (an empty policy).
    pub fn is_identity(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Applies the transform `params` to x (N, C, H, W): a pure function of x, differentiable in x, keeping x's
/// dtype and running on x's device (the parameters are moved there; draw them on it to avoid the copies).
/// Errors when x is not (N, C, H, W) with the N, H, W the parameters were drawn for, or not floating point.
pub fn apply(x: &Tensor, params: &AugParams) -> Result<Tensor> {
    let size = x.size();
    if size.len() != 4 || size[0] != params.n || size[2] != params.h || size[3] != params.w {
        return Err(ModelError::Shape(format!(
            "DiffAugment: parameters for (N, C, H, W) = ({}, C, {}, {}), got a batch of {size:?}",
            params.n, params.h, params.w
        )));
    }
    if !x.is_floating_point() {
        return Err(ModelError::Shape(format!("DiffAugment: images must be floating point, got {:?}", x.kind())));
    }
    let mut y = x.shallow_clone(); // (N, C, H, W)
    for step in &params.steps {
        y = step.apply(&y); // (N, C, H, W)
    }
    Ok(y)
}
