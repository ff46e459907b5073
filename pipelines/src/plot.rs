//! Pictures of 2-D point sets: generated samples over the real modes, written as PNG.
use crate::checkpoint::write_atomic;
use crate::error::{PipelineError, Result};
use image::{Rgb, RgbImage};
use std::path::Path;

/// Draws real points (grey), generated points (red) and the mode centres (blue crosses) on a square canvas
/// covering [-extent, extent]², and writes it to `path` as PNG.
pub fn scatter_png(path: &Path, real: &[[f32; 2]], fake: &[[f32; 2]], centers: &[[f64; 2]], extent: f64) -> Result<()> {
    const SIZE: u32 = 512;
    let mut img = RgbImage::from_pixel(SIZE, SIZE, Rgb([255, 255, 255]));
    // Points far outside the canvas (or not finite) land off it and are not drawn.
    let to_px = |v: f64| -> i64 {
        let px = ((v + extent) / (2.0 * extent) * (SIZE as f64 - 1.0)).round();
        if px.is_finite() { px.clamp(-10.0, SIZE as f64 + 10.0) as i64 } else { -10 }
    };
    let put = |x: i64, y: i64, c: Rgb<u8>, img: &mut RgbImage| {
        if (0..SIZE as i64).contains(&x) && (0..SIZE as i64).contains(&y) {
            img.put_pixel(x as u32, y as u32, c);
        }
    };
    for i in 0..SIZE as i64 {
        put(i, to_px(0.0), Rgb([225, 225, 225]), &mut img);
        put(to_px(0.0), i, Rgb([225, 225, 225]), &mut img);
    }
    for (points, color) in [(real, Rgb([150, 150, 150])), (fake, Rgb([220, 30, 30]))] {
        for p in points {
            let (x, y) = (to_px(p[0] as f64), to_px(-(p[1] as f64)));
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                put(x + dx, y + dy, color, &mut img);
            }
        }
    }
    for c in centers {
        let (x, y) = (to_px(c[0]), to_px(-c[1]));
        for d in -6..=6 {
            put(x + d, y, Rgb([30, 60, 220]), &mut img);
            put(x, y + d, Rgb([30, 60, 220]), &mut img);
        }
    }
    write_atomic(path, |tmp| {
        img.save_with_format(tmp, image::ImageFormat::Png)
            .map_err(|e| PipelineError::Runtime(format!("{}: cannot write PNG: {e}", tmp.display())))
    })
}

/// The images of a batch (N, C, H, W) in [-1, 1], each as CHW values on the CPU.
pub fn tensor_images(x: &tch::Tensor) -> Result<Vec<Vec<f32>>> {
    let n = x.size()[0];
    let flat = x.to_device(tch::Device::Cpu).to_kind(tch::Kind::Float).contiguous().view([n, -1]);
    (0..n).map(|i| Vec::<f32>::try_from(&flat.get(i)).map_err(PipelineError::torch("reading images"))).collect()
}

/// Writes a batch (N, C, H, W) in [-1, 1] as a PNG grid with `ncol` columns, atomically.
pub fn save_tensor_grid(x: &tch::Tensor, ncol: usize, path: &Path) -> Result<()> {
    let s = x.size();
    ganzoo_data::grid::save_png_grid(&tensor_images(x)?, s[1], s[2], s[3], ncol, path)?;
    Ok(())
}
