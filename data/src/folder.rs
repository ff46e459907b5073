//! Image folders: a flat folder of images, or one subfolder per class (sorted names → labels 0, 1, …).
//!
//! Files are listed in sorted order, so item indices are the same on every machine. `open` reads every
//! header (cheap, in parallel); `get` decodes, converts (grayscale, RGBA, CMYK JPEG, 16-bit PNG all
//! become 8-bit L or RGB), resizes, random-crops and flips with the RNG it is given, and scales to [-1, 1].

use std::collections::BTreeSet;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, ImageReader};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::loader::{Dataset, Example};

/// File extensions (lower-case) treated as images; other files are ignored.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp"];

/// What to do with an image that cannot be read.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnBadInput {
    /// Fail with an error naming the file.
    #[default]
    Error,
    /// Leave the file out and count it (see [`ImageFolder::skipped`]).
    Skip,
}

/// Settings of an [`ImageFolder`].
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageFolderConfig {
    /// Folder of images, or of one subfolder per class.
    pub root: PathBuf,
    /// Side of the square output image.
    #[serde(default = "default_size")]
    pub size: i64,
    /// 1 (grayscale) or 3 (RGB).
    #[serde(default = "default_channels")]
    pub channels: i64,
    /// Resize to `load_size`² first, then take a random `size`² crop (CycleGAN's `resize_and_crop`).
    /// `None`: resize straight to `size`².
    #[serde(default)]
    pub load_size: Option<i64>,
    /// Take the largest centred square before resizing (keeps the aspect ratio of non-square photos,
    /// as DCGAN's CelebA preprocessing does); otherwise the image is stretched.
    #[serde(default)]
    pub center_crop: bool,
    /// Random horizontal flip with probability 1/2.
    #[serde(default)]
    pub flip: bool,
    /// `error` stops at the first unreadable image, naming it; `skip` leaves it out and counts it.
    #[serde(default)]
    pub on_bad_input: OnBadInput,
}

fn default_size() -> i64 {
    64
}
fn default_channels() -> i64 {
    3
}

impl ImageFolderConfig {
    /// Defaults (3 channels, no crop, no flip, errors on bad input) for `root` at `size`².
    pub fn new(root: impl Into<PathBuf>, size: i64) -> Self {
        ImageFolderConfig {
            root: root.into(),
            size,
            channels: 3,
            load_size: None,
            center_crop: false,
            flip: false,
            on_bad_input: OnBadInput::Error,
        }
    }

    /// Builds the dataset (same as [`ImageFolder::open`]).
    pub fn build(&self) -> Result<ImageFolder> {
        ImageFolder::open(self)
    }
}

/// A dataset of image files; see the module docs.
#[derive(Debug)]
pub struct ImageFolder {
    cfg: ImageFolderConfig,
    files: Vec<(PathBuf, Option<i64>)>,
    classes: Vec<String>,
    skipped_at_open: Vec<PathBuf>,
    /// Indices found unreadable at decode time (Skip mode), so each is counted once.
    bad_at_decode: Mutex<BTreeSet<usize>>,
}

pub(crate) fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

fn is_hidden(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).map(|n| n.starts_with('.')).unwrap_or(false)
}

/// Sorted non-hidden entries of `dir`: (subfolders, image files).
fn list_dir(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let rd = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    for entry in rd {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let path = entry.path();
        if is_hidden(&path) {
            continue;
        }
        // Follows symlinks, so linked class folders and files work.
        let meta = std::fs::metadata(&path).map_err(|e| DataError::io(&path, e))?;
        if meta.is_dir() {
            dirs.push(path);
        } else if meta.is_file() && is_image(&path) {
            files.push(path);
        }
    }
    dirs.sort();
    files.sort();
    Ok((dirs, files))
}

/// All images under `dir`, recursively, sorted by path.
fn walk_images(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    walk_below(dir, out, &mut Vec::new())
}

/// `walk_images` with the real paths of the folders above `dir`: a linked folder that leads back to one of
/// them is a loop, reported by its link (not by the 40-level path the system gives up at).
fn walk_below(dir: &Path, out: &mut Vec<PathBuf>, above: &mut Vec<PathBuf>) -> Result<()> {
    let real = dir.canonicalize().map_err(|e| DataError::io(dir, e))?;
    if let Some(a) = above.iter().find(|a| **a == real) {
        return Err(DataError::Format {
            path: dir.into(),
            reason: format!("a link back to {} (a folder above it): a symlink loop; remove the link", a.display()),
        });
    }
    let (dirs, files) = list_dir(dir)?;
    out.extend(files);
    above.push(real);
    for d in dirs {
        walk_below(&d, out, above)?;
    }
    above.pop();
    Ok(())
}

/// Reads only the header of `path` (plus, for a JPEG, its last 4 KiB); errors name the file.
pub fn check_header(path: &Path) -> Result<(u32, u32)> {
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
    if meta.len() == 0 {
        return Err(DataError::Decode { path: path.into(), reason: "empty file (0 bytes)".into() });
    }
    let reader = ImageReader::open(path)
        .map_err(|e| DataError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?;
    if reader.format() == Some(ImageFormat::Jpeg) {
        let mut f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        let tail = meta.len().min(JPEG_TAIL);
        f.seek(SeekFrom::End(-(tail as i64))).map_err(|e| DataError::io(path, e))?;
        let mut buf = Vec::with_capacity(tail as usize);
        f.read_to_end(&mut buf).map_err(|e| DataError::io(path, e))?;
        check_jpeg_end(path, &buf)?;
    }
    reader.into_dimensions().map_err(|e| DataError::Decode { path: path.into(), reason: e.to_string() })
}

/// How far from the end of a JPEG the end-of-image marker is looked for.
const JPEG_TAIL: u64 = 4096;

/// The JPEG decoder fills a truncated scan with grey instead of failing, so a JPEG whose last 4 KiB
/// hold no end-of-image marker (FF D9) is reported as truncated.
fn check_jpeg_end(path: &Path, tail: &[u8]) -> Result<()> {
    let start = tail.len().saturating_sub(JPEG_TAIL as usize);
    if tail[start..].windows(2).any(|w| w == [0xFF, 0xD9]) {
        Ok(())
    } else {
        Err(DataError::Decode { path: path.into(), reason: "truncated JPEG (no end-of-image marker)".into() })
    }
}

/// Decodes `path` fully; errors name the file.
pub fn decode_image(path: &Path) -> Result<DynamicImage> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if bytes.is_empty() {
        return Err(DataError::Decode { path: path.into(), reason: "empty file (0 bytes)".into() });
    }
    let mut reader = ImageReader::new(Cursor::new(bytes.as_slice()))
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?;
    if reader.format().is_none() {
        // Content not recognised: fall back to the extension, as `ImageReader::open` does.
        if let Ok(fmt) = ImageFormat::from_path(path) {
            reader.set_format(fmt);
        }
    }
    if reader.format() == Some(ImageFormat::Jpeg) {
        check_jpeg_end(path, &bytes)?;
    }
    let img = reader.decode().map_err(|e| DataError::Decode { path: path.into(), reason: e.to_string() })?;
    if img.width() == 0 || img.height() == 0 {
        return Err(DataError::Decode { path: path.into(), reason: "image has zero width or height".into() });
    }
    Ok(img)
}

impl ImageFolder {
    /// Lists and header-checks the images under `cfg.root`.
    ///
    /// Layout: if `root` has (non-hidden) subfolders, each is a class (sorted names → labels) and its
    /// images are found recursively; images directly in `root` next to class folders are an error.
    /// Otherwise `root` is a flat folder of unlabelled images. Files whose extension is not an image
    /// extension are ignored.
    pub fn open(cfg: &ImageFolderConfig) -> Result<Self> {
        if cfg.size <= 0 {
            return Err(DataError::Invalid(format!("image folder size must be > 0, got {}", cfg.size)));
        }
        if cfg.channels != 1 && cfg.channels != 3 {
            return Err(DataError::Invalid(format!("image folder channels must be 1 or 3, got {}", cfg.channels)));
        }
        if let Some(l) = cfg.load_size {
            if l < cfg.size {
                return Err(DataError::Invalid(format!("load_size {l} is smaller than size {}", cfg.size)));
            }
        }
        let root = &cfg.root;
        let (dirs, top_files) = list_dir(root)?;
        let mut files: Vec<(PathBuf, Option<i64>)> = Vec::new();
        let mut classes = Vec::new();
        if dirs.is_empty() {
            files.extend(top_files.into_iter().map(|p| (p, None)));
        } else {
            if let Some(f) = top_files.first() {
                return Err(DataError::Format {
                    path: root.clone(),
                    reason: format!(
                        "holds both class subfolders and images (e.g. {}): put every image in a class folder, or use a flat folder",
                        f.display()
                    ),
                });
            }
            for (label, d) in dirs.iter().enumerate() {
                let mut imgs = Vec::new();
                walk_images(d, &mut imgs)?;
                if imgs.is_empty() && cfg.on_bad_input == OnBadInput::Error {
                    return Err(DataError::Empty { path: d.clone(), what: "images in class folder".into() });
                }
                classes.push(d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
                files.extend(imgs.into_iter().map(|p| (p, Some(label as i64))));
            }
        }
        // Header check in parallel; results keep the sorted order.
        let checks: Vec<Result<(u32, u32)>> = files.par_iter().map(|(p, _)| check_header(p)).collect();
        let mut kept = Vec::with_capacity(files.len());
        let mut skipped_at_open = Vec::new();
        for ((path, label), check) in files.into_iter().zip(checks) {
            match check {
                Ok(_) => kept.push((path, label)),
                Err(e) => match cfg.on_bad_input {
                    OnBadInput::Error => return Err(e),
                    OnBadInput::Skip => skipped_at_open.push(path),
                },
            }
        }
        if kept.is_empty() {
            return Err(DataError::Empty { path: root.clone(), what: "readable images".into() });
        }
        Ok(ImageFolder { cfg: cfg.clone(), files: kept, classes, skipped_at_open, bad_at_decode: Mutex::new(BTreeSet::new()) })
    }

    /// Files left out so far: unreadable headers at `open`, plus files that failed to decode in `get`
    /// (each counted once). Always 0 with `on_bad_input: error`.
    pub fn skipped(&self) -> usize {
        self.skipped_at_open.len() + self.bad_at_decode.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Paths of the skipped files (open-time first, then decode-time in index order).
    pub fn skipped_files(&self) -> Vec<PathBuf> {
        let mut v = self.skipped_at_open.clone();
        if let Ok(s) = self.bad_at_decode.lock() {
            v.extend(s.iter().map(|&i| self.files[i].0.clone()));
        }
        v
    }

    /// Number of classes (0 for a flat folder).
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// Class names in label order.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The image files in index order, with their labels.
    pub fn files(&self) -> &[(PathBuf, Option<i64>)] {
        &self.files
    }

    /// The settings it was opened with.
    pub fn config(&self) -> &ImageFolderConfig {
        &self.cfg
    }

    /// Decodes and transforms file `index` (no skipping).
    pub(crate) fn load(&self, index: usize, rng: &mut ChaCha8Rng) -> Result<Example> {
        let (path, label) = &self.files[index];
        let img = decode_image(path)?;
        let x = transform(img, &self.cfg, rng);
        let s = self.cfg.size;
        Ok(Example { x, shape: vec![self.cfg.channels, s, s], label: *label })
    }
}

/// Converts to L8/RGB8, optionally centre-crops, resizes, random-crops, flips; returns CHW in [-1, 1].
/// The RNG is used in a fixed order (crop x, crop y, flip) so results depend only on its seed.
pub fn transform(img: DynamicImage, cfg: &ImageFolderConfig, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let c = cfg.channels as usize;
    let size = cfg.size as u32;
    // 16-bit, RGBA, CMYK (decoded to RGB by the JPEG decoder), palette: all become 8-bit L or RGB.
    let mut img = if c == 1 { DynamicImage::ImageLuma8(img.to_luma8()) } else { DynamicImage::ImageRgb8(img.to_rgb8()) };
    if cfg.center_crop {
        let side = img.width().min(img.height());
        img = img.crop_imm((img.width() - side) / 2, (img.height() - side) / 2, side, side);
    }
    let load = cfg.load_size.map(|l| l as u32).unwrap_or(size);
    if img.width() != load || img.height() != load {
        img = img.resize_exact(load, load, FilterType::CatmullRom);
    }
    let (ox, oy) = if load > size { (rng.gen_range(0..=load - size), rng.gen_range(0..=load - size)) } else { (0, 0) };
    let flip = cfg.flip && rng.gen_bool(0.5);
    let s = size as usize;
    let raw = img.as_bytes();
    let stride = load as usize;
    let mut out = vec![0f32; c * s * s];
    for y in 0..s {
        for x in 0..s {
            let sx = if flip { s - 1 - x } else { x } + ox as usize;
            let sy = y + oy as usize;
            for ch in 0..c {
                let v = raw[(sy * stride + sx) * c + ch];
                out[ch * s * s + y * s + x] = f32::from(v) / 127.5 - 1.0;
            }
        }
    }
    out
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.files.len()
    }

    /// With `on_bad_input: skip`, a file that fails to decode is recorded and the next index (cyclically)
    /// is tried with the same RNG, so batches keep their size and `get` stays deterministic.
    fn get(&self, index: usize, rng: &mut ChaCha8Rng) -> Result<Example> {
        let n = self.files.len();
        if index >= n {
            return Err(DataError::Invalid(format!("index {index} out of range for {} ({n} images)", self.cfg.root.display())));
        }
        if self.cfg.on_bad_input == OnBadInput::Error {
            return self.load(index, rng);
        }
        let start_rng = rng.clone();
        for step in 0..n {
            let i = (index + step) % n;
            if self.bad_at_decode.lock().map(|s| s.contains(&i)).unwrap_or(false) {
                continue;
            }
            let mut r = start_rng.clone();
            match self.load(i, &mut r) {
                Ok(ex) => {
                    *rng = r;
                    return Ok(ex);
                }
                Err(DataError::Decode { .. }) | Err(DataError::Io { .. }) => {
                    if let Ok(mut s) = self.bad_at_decode.lock() {
                        s.insert(i);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(DataError::Empty { path: self.cfg.root.clone(), what: "decodable images (all failed)".into() })
    }

    fn shape(&self) -> Vec<i64> {
        vec![self.cfg.channels, self.cfg.size, self.cfg.size]
    }

    fn num_classes(&self) -> Option<usize> {
        (!self.classes.is_empty()).then_some(self.classes.len())
    }
}
