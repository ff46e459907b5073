//! Resizing images to the Inception network's 299×299 input for FID/KID/precision-recall, by one of two named
//! protocols, because the resize alone moves FID by several points (Parmar et al. 2022, "On Aliased Resizing
//! and Surprising Subtleties in GAN Evaluation"):
//! - [`ResizeProtocol::Clean`] (default): clean-fid's `make_resizer("PIL", False, "bicubic", (299, 299))`, i.e.
//!   PIL's `Image.resize(size, BICUBIC)` on every channel as a float32 (mode 'F') image in [0, 255], antialiased
//!   when down-sampling, not quantised afterwards, then clipped to [0, 255];
//! - [`ResizeProtocol::Legacy`]: pytorch-fid's `F.interpolate(x, size=(299, 299), mode='bilinear',
//!   align_corners=False)` (no antialiasing).
//!
//! The bicubic resampler reproduces PIL's `ImagingResample` for float images operation for operation
//! (coefficients in f64, per-pass f64 accumulation stored as f32, horizontal pass first), so it matches PIL to
//! the last bit or so; `data/golden/resize_golden.py` writes the references of `data/tests/resize.rs`.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::{DataError, Result};

/// The Inception-v3 input side of FID (pool3 features).
pub const INCEPTION_SIZE: usize = 299;

/// Largest input or output side accepted (PIL's coefficient tables and our buffers are sized from it).
pub const MAX_SIDE: usize = 16_384;

/// How images are resized before the Inception network; every reported number names its protocol.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeProtocol {
    /// clean-fid: PIL bicubic with antialiasing on float images, no quantisation, clipped to [0, 255].
    #[default]
    Clean,
    /// pytorch-fid: bilinear, `align_corners=False`, no antialiasing.
    Legacy,
}

impl ResizeProtocol {
    /// The name written next to a metric (`clean`, `legacy`).
    pub fn as_str(self) -> &'static str {
        match self {
            ResizeProtocol::Clean => "clean",
            ResizeProtocol::Legacy => "legacy",
        }
    }
}

/// The bicubic convolution kernel with a = −0.5 (Keys 1981), support 2, as PIL's `bicubic_filter` evaluates it.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Per output pixel, the first input pixel it reads and its normalized weights (PIL's `precompute_coeffs`
/// with the default box `(0, in_size)`).
struct Coeffs {
    /// `(first input index, number of taps)` per output pixel.
    bounds: Vec<(usize, usize)>,
    /// Row-major `out_size × ksize` weights; taps past a pixel's count are 0.
    weights: Vec<f64>,
    ksize: usize,
}

impl Coeffs {
    /// When down-sampling (scale > 1) the kernel is stretched by the scale, which is the antialiasing.
    fn new(in_size: usize, out_size: usize) -> Coeffs {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = 2.0 * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let ss = 1.0 / filterscale;
        let mut bounds = Vec::with_capacity(out_size);
        let mut weights = vec![0.0; out_size * ksize];
        for (xx, k) in weights.chunks_exact_mut(ksize).enumerate() {
            let center = (xx as f64 + 0.5) * scale;
            // C's (int) cast truncates toward zero, as `as` does; negative starts are clamped anyway.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).clamp(0, in_size as i64) as usize;
            let n = xmax.saturating_sub(xmin).min(ksize);
            let mut ww = 0.0;
            for (x, w) in k[..n].iter_mut().enumerate() {
                *w = bicubic(((x + xmin) as f64 - center + 0.5) * ss);
                ww += *w;
            }
            if ww != 0.0 {
                k[..n].iter_mut().for_each(|w| *w /= ww);
            }
            bounds.push((xmin, n));
        }
        Coeffs { bounds, weights, ksize }
    }

    /// Rows of the input the pass reads, `[first, last)`.
    fn span(&self) -> (usize, usize) {
        let first = self.bounds.first().map_or(0, |b| b.0);
        let last = self.bounds.last().map_or(0, |b| b.0 + b.1);
        (first, last)
    }
}

fn check_side(what: &str, side: usize) -> Result<()> {
    if side == 0 || side > MAX_SIDE {
        return Err(DataError::Invalid(format!("resize: {what} is {side}; it must be in 1..={MAX_SIDE}")));
    }
    Ok(())
}

/// Checks `planes` against `[channels, height, width]` and the output size against [`MAX_SIDE`].
fn check_shapes(planes: &[f32], shape: [usize; 3], out_hw: [usize; 2]) -> Result<()> {
    let [c, h, w] = shape;
    check_side("the input height", h)?;
    check_side("the input width", w)?;
    check_side("the output height", out_hw[0])?;
    check_side("the output width", out_hw[1])?;
    if c == 0 || c > 4 {
        return Err(DataError::Invalid(format!("resize: {c} channels; 1 to 4 are resized")));
    }
    if planes.len() != c * h * w {
        return Err(DataError::Invalid(format!(
            "resize: {} values given for shape (C, H, W) = ({c}, {h}, {w}), which holds {}",
            planes.len(),
            c * h * w
        )));
    }
    Ok(())
}

/// One plane (H, W) through PIL's two passes: horizontal over the rows the vertical pass reads, then vertical.
fn bicubic_plane(src: &[f32], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    let vert = Coeffs::new(h, out_h);
    let (first, last) = if out_h != h { vert.span() } else { (0, h) };
    let (tmp, tmp_w) = if out_w != w {
        let hor = Coeffs::new(w, out_w);
        let mut tmp = vec![0f32; (last - first) * out_w];
        for (row_out, row_in) in tmp.chunks_exact_mut(out_w).zip(src[first * w..last * w].chunks_exact(w)) {
            for (xx, out) in row_out.iter_mut().enumerate() {
                let (xmin, n) = hor.bounds[xx];
                let k = &hor.weights[xx * hor.ksize..xx * hor.ksize + n];
                let mut ss = 0.0f64;
                for (v, k) in row_in[xmin..xmin + n].iter().zip(k) {
                    ss += f64::from(*v) * k;
                }
                *out = ss as f32;
            }
        }
        (tmp, out_w)
    } else {
        (src[first * w..last * w].to_vec(), w)
    };
    if out_h == h {
        return tmp;
    }
    let mut out = vec![0f32; out_h * tmp_w];
    for (yy, row_out) in out.chunks_exact_mut(tmp_w).enumerate() {
        let (ymin, n) = vert.bounds[yy];
        let k = &vert.weights[yy * vert.ksize..yy * vert.ksize + n];
        for (xx, o) in row_out.iter_mut().enumerate() {
            let mut ss = 0.0f64;
            for (y, k) in k.iter().enumerate() {
                ss += f64::from(tmp[(ymin - first + y) * tmp_w + xx]) * k;
            }
            *o = ss as f32;
        }
    }
    out
}

/// PIL's `Image.resize((out_w, out_h), Image.BICUBIC)` applied to every plane of a (C, H, W) float image as
/// a mode-'F' image: separable bicubic (a = −0.5) with the kernel support stretched by the scale factor when
/// down-sampling (antialiasing), weights normalized per output pixel, horizontal pass then vertical, each pass
/// accumulated in f64 and stored as f32. No clipping (bicubic overshoots near edges); see [`resize_fid`].
/// Returns (C, out_h, out_w) row-major.
pub fn resize_bicubic_pil(planes: &[f32], shape: [usize; 3], out_hw: [usize; 2]) -> Result<Vec<f32>> {
    check_shapes(planes, shape, out_hw)?;
    let [_, h, w] = shape;
    let [oh, ow] = out_hw;
    Ok(planes.chunks_exact(h * w).flat_map(|p| bicubic_plane(p, h, w, oh, ow)).collect())
}

/// pytorch-fid's bilinear resize (`align_corners=False`, no antialiasing) of a (C, H, W) float image.
pub fn resize_bilinear(planes: &[f32], shape: [usize; 3], out_hw: [usize; 2]) -> Result<Vec<f32>> {
    check_shapes(planes, shape, out_hw)?;
    let [c, h, w] = shape;
    let x = Tensor::from_slice(planes).reshape([1, c as i64, h as i64, w as i64]); // (1, C, H, W)
    let y = x
        .f_upsample_bilinear2d([out_hw[0] as i64, out_hw[1] as i64], false, None, None) // (1, C, h', w')
        .map_err(|e| DataError::Invalid(format!("resize: bilinear interpolation failed: {e}")))?;
    Vec::<f32>::try_from(y.flatten(0, -1))
        .map_err(|e| DataError::Invalid(format!("resize: reading the bilinear output failed: {e}")))
}

/// Resizes one (C, H, W) image with values in [0, 255] by `protocol` for the Inception network: grayscale
/// (C = 1) is replicated to 3 channels (as `convert('RGB')` does), RGB is kept, other channel counts are an
/// error; the result (3, out_h, out_w) is clipped to [0, 255] (clean-fid clips both protocols; bilinear
/// cannot overshoot, so for pytorch-fid's legacy protocol the clip changes nothing). Non-finite input is an
/// error naming the first bad value.
pub fn resize_fid(planes: &[f32], shape: [usize; 3], out_hw: [usize; 2], protocol: ResizeProtocol) -> Result<Vec<f32>> {
    check_shapes(planes, shape, out_hw)?;
    let [c, h, w] = shape;
    if c != 1 && c != 3 {
        return Err(DataError::Invalid(format!(
            "resize: {c} channels; FID takes grayscale (1) or RGB (3) images (drop alpha first)"
        )));
    }
    if let Some(i) = planes.iter().position(|v| !v.is_finite()) {
        return Err(DataError::Invalid(format!(
            "resize: non-finite value {} at (channel {}, row {}, column {})",
            planes[i],
            i / (h * w),
            i % (h * w) / w,
            i % w
        )));
    }
    let mut out = match protocol {
        ResizeProtocol::Clean => resize_bicubic_pil(planes, shape, out_hw)?,
        ResizeProtocol::Legacy => resize_bilinear(planes, shape, out_hw)?,
    };
    out.iter_mut().for_each(|v| *v = v.clamp(0.0, 255.0));
    if c == 1 {
        out = out.repeat(3);
    }
    Ok(out)
}

/// [`resize_fid`] over a batch: `images` is (N, C, H, W) or (C, H, W), any float kind, values in [0, 255],
/// C = 1 or 3; returns (N, 3, out_h, out_w) f32 on the CPU. Images are resized in parallel (rayon); the
/// result does not depend on the thread count.
pub fn resize_batch(images: &Tensor, out_hw: [usize; 2], protocol: ResizeProtocol) -> Result<Tensor> {
    let size = images.size();
    let dims: Vec<usize> = size.iter().map(|&d| d.max(0) as usize).collect();
    let (n, shape) = match dims[..] {
        [c, h, w] => (1, [c, h, w]),
        [n, c, h, w] => (n, [c, h, w]),
        _ => {
            return Err(DataError::Invalid(format!(
                "resize: images of shape {size:?}; expected (N, C, H, W) or (C, H, W)"
            )))
        }
    };
    if n == 0 {
        return Err(DataError::Invalid("resize: an empty batch".into()));
    }
    let per = shape.iter().product::<usize>();
    if !images.is_floating_point() {
        return Err(DataError::Invalid(format!(
            "resize: images of kind {:?}; convert to float in [0, 255] first",
            images.kind()
        )));
    }
    let flat = images.to_device(tch::Device::Cpu).to_kind(Kind::Float).flatten(0, -1);
    let data = Vec::<f32>::try_from(&flat)
        .map_err(|e| DataError::Invalid(format!("resize: reading the images failed: {e}")))?;
    check_shapes(data.get(..per).unwrap_or(&[]), shape, out_hw)?;
    let outs = data
        .par_chunks_exact(per)
        .map(|img| resize_fid(img, shape, out_hw, protocol))
        .collect::<Result<Vec<_>>>()?;
    let [oh, ow] = out_hw;
    Ok(Tensor::from_slice(&outs.concat()).reshape([n as i64, 3, oh as i64, ow as i64]))
}

/// An RGB image as (3, H, W) planes of f32 values in [0, 255] (the uint8 values, unscaled), as clean-fid feeds
/// `np.asarray(img.convert('RGB'))` to its resizer.
pub fn rgb8_planes(img: &image::RgbImage) -> Vec<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = vec![0f32; 3 * h * w];
    for (i, px) in img.pixels().enumerate() {
        for (c, v) in px.0.iter().enumerate() {
            out[c * h * w + i] = f32::from(*v);
        }
    }
    out
}
