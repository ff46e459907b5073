//! Writes a batch of images as one PNG grid (sample grids, dataset previews), atomically.

use std::path::Path;

use crate::error::{DataError, Result};

/// Saves `images` (each `c*h*w` values, CHW, in [-1, 1]; `c` is 1 or 3) as a PNG grid with `ncol`
/// columns and a 2-pixel black border between tiles. Values are clamped to [-1, 1] and mapped to
/// 0..=255; NaN maps to 0. Written to a temporary file in the same folder, then renamed.
pub fn save_png_grid(images: &[Vec<f32>], c: i64, h: i64, w: i64, ncol: usize, path: &Path) -> Result<()> {
    if !(c == 1 || c == 3) || h <= 0 || w <= 0 {
        return Err(DataError::Invalid(format!("grid image shape ({c}, {h}, {w}): need c in {{1, 3}}, h, w > 0")));
    }
    if images.is_empty() || ncol == 0 {
        return Err(DataError::Invalid(format!("grid for {}: no images or ncol = 0", path.display())));
    }
    let (c, h, w) = (c as usize, h as usize, w as usize);
    for (i, im) in images.iter().enumerate() {
        if im.len() != c * h * w {
            return Err(DataError::Invalid(format!("grid image {i} has {} values, expected {c}*{h}*{w}", im.len())));
        }
    }
    let pad = 2usize;
    let ncol = ncol.min(images.len());
    let nrow = images.len().div_ceil(ncol);
    let gw = ncol * (w + pad) + pad;
    let gh = nrow * (h + pad) + pad;
    let mut buf = vec![0u8; gw * gh * c];
    for (i, im) in images.iter().enumerate() {
        let (r, col) = (i / ncol, i % ncol);
        let (y0, x0) = (pad + r * (h + pad), pad + col * (w + pad));
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let v = im[ch * h * w + y * w + x];
                    let v = if v.is_nan() { -1.0 } else { v.clamp(-1.0, 1.0) };
                    buf[((y0 + y) * gw + x0 + x) * c + ch] = ((v + 1.0) * 127.5).round() as u8;
                }
            }
        }
    }
    let color = if c == 1 { image::ExtendedColorType::L8 } else { image::ExtendedColorType::Rgb8 };
    write_png_atomic(path, &buf, gw as u32, gh as u32, color)
}

/// Encodes a PNG to `path` through a temp file + rename, so readers never see a partial file.
pub(crate) fn write_png_atomic(path: &Path, buf: &[u8], w: u32, h: u32, color: image::ExtendedColorType) -> Result<()> {
    use image::ImageEncoder;
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(buf, w, h, color)
        .map_err(|e| DataError::Invalid(format!("{}: PNG encoding failed: {e}", path.display())))?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` via `.path.tmp-<pid>` and a rename; a failed write removes the temp file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        DataError::io(&tmp, e)
    })?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        DataError::io(path, e)
    })
}
