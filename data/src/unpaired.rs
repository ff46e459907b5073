//! Two-domain image data for translation (CycleGAN, pix2pix): unpaired `trainA/trainB` folders or
//! pix2pix-style side-by-side `A|B` images, plus single-image load/save helpers for inference.
//!
//! Follows pytorch-CycleGAN-and-pix2pix's `unaligned_dataset.py` / `aligned_dataset.py`, except that the
//! unpaired B index is drawn from the item's seeded RNG (the reference uses an unseeded `randint`), so
//! batches are reproducible and resumable through the [`Loader`](crate::loader::Loader).
//! Decoding, colour conversion, resize, crop, flip and bad-input handling are those of [`crate::folder`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::folder::{decode_image, transform, ImageFolder, ImageFolderConfig, OnBadInput};
use crate::loader::{Dataset, Example};

/// Which part of a translation dataset to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// `trainA`/`trainB` (folders) or `train/` (side by side); random crop and flip apply.
    Train,
    /// `testA`/`testB` (folders) or `test/` (side by side); resized to `size`, no crop or flip.
    Test,
}

impl Split {
    /// `"train"` or `"test"`: the folder-name stem.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the two domains are stored under `root`.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// CycleGAN layout: `root/trainA`, `root/trainB`, `root/testA`, `root/testB`; the domains may hold
    /// different numbers of unrelated images.
    #[default]
    Folders,
    /// pix2pix layout: `root/train/*.jpg`, `root/test/*.jpg`, each image holding A on its left half and
    /// B on its right half (the true pair).
    SideBySide,
    /// True pairs in two folders: `root/A/train`, `root/B/train` (and `test`), A's image and its counterpart
    /// in B under the same file name (what the reference's `combine_A_and_B.py` reads). A file without its
    /// namesake in the other folder is an error naming it, or with `on_bad_input: skip` left out and counted.
    #[serde(rename = "a_b_folders")]
    ABFolders,
}

fn three() -> i64 {
    3
}

/// Settings of an [`Unpaired`] dataset: two image domains, A and B.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UnpairedConfig {
    /// The data folder: `trainA/ trainB/ testA/ testB/`, `train/ test/` (side by side) or `A/ B/` (A and B folders).
    pub root: PathBuf,
    /// `folders` (unrelated A and B images), `side_by_side` (pix2pix-form A|B images) or `a_b_folders` (true pairs
    /// under the same file name in `A/` and `B/`).
    #[serde(default)]
    pub layout: Layout,
    /// Side by side: take A from the right half and B from the left (facades hold the photo on the left and
    /// the labels on the right; `swap: true` makes labels → photo the A → B direction). A and B folders: A
    /// from `B/` and B from `A/`.
    #[serde(default)]
    pub swap: bool,
    /// Side of the square output images.
    pub size: i64,
    /// Resize to `load_size`² then random-crop `size`² (CycleGAN: 286 → 256), train split only.
    /// `None`: resize straight to `size`².
    #[serde(default)]
    pub load_size: Option<i64>,
    /// Random horizontal flip with probability 1/2 (train split only).
    #[serde(default)]
    pub flip: bool,
    /// 1 (grayscale) or 3 (RGB).
    #[serde(default = "three")]
    pub channels: i64,
    /// `error` stops at the first unreadable image (or, with A and B folders, a file without its namesake), naming
    /// it; `skip` leaves it out and counts it.
    #[serde(default)]
    pub on_bad_input: OnBadInput,
}

impl UnpairedConfig {
    /// Folders layout at `size`², 3 channels, no crop, no flip, errors on bad input.
    pub fn new(root: impl Into<PathBuf>, size: i64) -> Self {
        UnpairedConfig {
            root: root.into(),
            layout: Layout::Folders,
            swap: false,
            size,
            load_size: None,
            flip: false,
            channels: 3,
            on_bad_input: OnBadInput::Error,
        }
    }

    /// CycleGAN's training preprocessing: resize to 286², random crop 256², random flip.
    pub fn cyclegan(root: impl Into<PathBuf>) -> Self {
        UnpairedConfig { load_size: Some(286), flip: true, ..UnpairedConfig::new(root, 256) }
    }

    /// Opens `split` (same as [`Unpaired::open`]).
    pub fn build(&self, split: Split, paired: bool) -> Result<Unpaired> {
        Unpaired::open(self, split, paired)
    }
}

/// Where the images come from.
#[derive(Debug)]
enum Source {
    /// One image folder per domain (the folder dataset does decoding, transforms and skipping).
    Folders { a: ImageFolder, b: ImageFolder },
    /// One folder of `A|B` images; `files` lists and header-checks them, `bad` records decode failures
    /// (skip mode) so each is counted once.
    SideBySide { files: ImageFolder, bad: Mutex<BTreeSet<usize>> },
    /// `A/<split>` and `B/<split>`: pair `i` is `a`'s file `pairs[i].0` and `b`'s `pairs[i].1` (same name);
    /// `unmatched` the files left out for want of a namesake (skip mode), `bad` the pairs that failed to decode.
    Matched { a: ImageFolder, b: ImageFolder, pairs: Vec<(usize, usize)>, unmatched: Vec<PathBuf>, bad: Mutex<BTreeSet<usize>> },
}

/// A two-domain dataset; item `i` is `x = [A, B]` with shape `[2, C, size, size]` in [-1, 1], no label.
///
/// `paired = false` (training): `A = A[i % len_a]`, `B = B[j]` with `j` drawn uniformly from the item's
/// RNG; `len = max(len_a, len_b)`. `paired = true` (evaluation; side by side only): `A[i]` and its true
/// counterpart `B[i]`, with the same crop and flip applied to both (pix2pix's aligned transform).
#[derive(Debug)]
pub struct Unpaired {
    cfg: UnpairedConfig,
    split: Split,
    paired: bool,
    /// The per-image transform for this split (test: no crop, no flip).
    tcfg: ImageFolderConfig,
    src: Source,
}

impl Unpaired {
    /// Lists and header-checks the images of `split` under `cfg.root`.
    ///
    /// Errors: invalid sizes/channels; a missing or empty domain folder (naming it); an unreadable image
    /// (naming it) unless `on_bad_input: skip`; `paired = true` with the `folders` layout, which has no
    /// ground-truth pairs.
    pub fn open(cfg: &UnpairedConfig, split: Split, paired: bool) -> Result<Self> {
        if cfg.size <= 0 {
            return Err(DataError::Invalid(format!("unpaired size must be > 0, got {}", cfg.size)));
        }
        if cfg.channels != 1 && cfg.channels != 3 {
            return Err(DataError::Invalid(format!("unpaired channels must be 1 or 3, got {}", cfg.channels)));
        }
        if let Some(l) = cfg.load_size {
            if l < cfg.size {
                return Err(DataError::Invalid(format!("unpaired load_size {l} is smaller than size {}", cfg.size)));
            }
        }
        if cfg.swap && cfg.layout == Layout::Folders {
            return Err(DataError::Invalid(format!(
                "{}: swap applies to layouts side_by_side and a_b_folders only; with folders, exchange the A and B folders instead",
                cfg.root.display()
            )));
        }
        let train = split == Split::Train;
        let tcfg = ImageFolderConfig {
            root: cfg.root.clone(),
            size: cfg.size,
            channels: cfg.channels,
            load_size: if train { cfg.load_size } else { None },
            center_crop: false,
            flip: train && cfg.flip,
            on_bad_input: cfg.on_bad_input,
        };
        let folder = |name: String| -> Result<ImageFolder> {
            let dir = cfg.root.join(name);
            if !dir.is_dir() {
                let expect = match cfg.layout {
                    Layout::Folders => "layout folders expects trainA/, trainB/, testA/, testB/",
                    Layout::SideBySide => "layout side_by_side expects train/ and test/ of A|B images",
                    Layout::ABFolders => "layout a_b_folders expects A/train, B/train, A/test, B/test",
                };
                return Err(DataError::Format {
                    path: cfg.root.clone(),
                    reason: format!("missing folder {} for the {split} split ({expect})", dir.display()),
                });
            }
            ImageFolder::open(&ImageFolderConfig { root: dir, ..tcfg.clone() })
        };
        let src = match cfg.layout {
            Layout::Folders => {
                if paired {
                    return Err(DataError::Invalid(format!(
                        "{}: paired = true needs ground-truth pairs, but layout `folders` has none \
                         ({split}A[i] and {split}B[i] are unrelated images); use layout side_by_side for paired evaluation",
                        cfg.root.display()
                    )));
                }
                let a = folder(format!("{split}A"))?;
                let b = folder(format!("{split}B"))?;
                Source::Folders { a, b }
            }
            Layout::ABFolders => {
                let (na, nb) = if cfg.swap { ("B", "A") } else { ("A", "B") };
                let a = folder(format!("{na}/{split}"))?;
                let b = folder(format!("{nb}/{split}"))?;
                let (pairs, unmatched) = match_names(&a, &b, cfg.on_bad_input)?;
                Source::Matched { a, b, pairs, unmatched, bad: Mutex::new(BTreeSet::new()) }
            }
            Layout::SideBySide => {
                let files = folder(split.as_str().to_string())?;
                Source::SideBySide { files, bad: Mutex::new(BTreeSet::new()) }
            }
        };
        Ok(Unpaired { cfg: cfg.clone(), split, paired, tcfg, src })
    }

    /// Images in domain A.
    pub fn len_a(&self) -> usize {
        match &self.src {
            Source::Folders { a, .. } => a.len(),
            Source::SideBySide { files, .. } => files.len(),
            Source::Matched { pairs, .. } => pairs.len(),
        }
    }

    /// Images in domain B.
    pub fn len_b(&self) -> usize {
        match &self.src {
            Source::Folders { b, .. } => b.len(),
            Source::SideBySide { files, .. } => files.len(),
            Source::Matched { pairs, .. } => pairs.len(),
        }
    }

    /// True when B[i] is A[i]'s true counterpart (side by side, A and B folders), so paired training and
    /// evaluation are possible.
    pub fn has_ground_truth(&self) -> bool {
        self.cfg.layout.has_pairs()
    }

    /// Whether items pair A[i] with B[i] (evaluation) rather than a random B.
    pub fn paired(&self) -> bool {
        self.paired
    }

    /// The split it reads.
    pub fn split(&self) -> Split {
        self.split
    }

    /// The settings it was opened with.
    pub fn config(&self) -> &UnpairedConfig {
        &self.cfg
    }

    /// The file holding A image `i` (sorted order); `None` out of range.
    pub fn file_a(&self, i: usize) -> Option<&Path> {
        match &self.src {
            Source::Folders { a, .. } => a.files().get(i).map(|f| f.0.as_path()),
            Source::SideBySide { files, .. } => files.files().get(i).map(|f| f.0.as_path()),
            Source::Matched { a, pairs, .. } => pairs.get(i).map(|p| a.files()[p.0].0.as_path()),
        }
    }

    /// The file holding B image `i` (sorted order; the same file as A's for side by side).
    pub fn file_b(&self, i: usize) -> Option<&Path> {
        match &self.src {
            Source::Folders { b, .. } => b.files().get(i).map(|f| f.0.as_path()),
            Source::SideBySide { files, .. } => files.files().get(i).map(|f| f.0.as_path()),
            Source::Matched { b, pairs, .. } => pairs.get(i).map(|p| b.files()[p.1].0.as_path()),
        }
    }

    /// Files left out with `on_bad_input: skip` so far (unreadable at open, or failing to decode in `get`,
    /// each counted once). Always 0 with `on_bad_input: error`.
    pub fn skipped(&self) -> usize {
        self.skipped_files().len()
    }

    /// Paths of the skipped files.
    pub fn skipped_files(&self) -> Vec<PathBuf> {
        match &self.src {
            Source::Folders { a, b } => {
                let mut v = a.skipped_files();
                v.extend(b.skipped_files());
                v
            }
            Source::SideBySide { files, bad } => {
                let mut v = files.skipped_files();
                if let Ok(s) = bad.lock() {
                    v.extend(s.iter().map(|&i| files.files()[i].0.clone()));
                }
                v
            }
            Source::Matched { a, b, pairs, unmatched, bad } => {
                let mut v = a.skipped_files();
                v.extend(b.skipped_files());
                v.extend(unmatched.iter().cloned());
                if let Ok(s) = bad.lock() {
                    v.extend(s.iter().map(|&i| a.files()[pairs[i].0].0.clone()));
                }
                v
            }
        }
    }

    /// Pair `index` of A and B folders (the same crop and flip for both when `paired`, else a B drawn at
    /// random), or with `on_bad_input: skip` the next pair that decodes (cyclically), recording failures.
    fn matched_pair(&self, a: &ImageFolder, b: &ImageFolder, pairs: &[(usize, usize)], bad: &Mutex<BTreeSet<usize>>, index: usize, rng: &mut ChaCha8Rng) -> Result<(Vec<f32>, Vec<f32>)> {
        let n = pairs.len();
        let j = if self.paired { None } else { Some(rng.gen_range(0..n)) };
        let start = rng.clone();
        let is_bad = |k: usize| bad.lock().map(|s| s.contains(&k)).unwrap_or(false);
        for step in 0..n {
            // The pair's A, and its B (unpaired: the drawn B, stepping on with A so a bad B is passed too).
            let (i, jb) = ((index + step) % n, j.map(|j| (j + step) % n));
            if is_bad(i) || jb.is_some_and(is_bad) {
                continue;
            }
            let mut r = start.clone();
            let xa = a.load(pairs[i].0, &mut r);
            let xb = match jb {
                None => b.load(pairs[i].1, &mut start.clone()),
                Some(jb) => b.load(pairs[jb].1, &mut r),
            };
            let (e, culprit) = match (xa, xb) {
                (Ok(xa), Ok(xb)) => {
                    *rng = r;
                    return Ok((xa.x, xb.x));
                }
                (Err(e), _) => (e, i),
                (_, Err(e)) => (e, jb.unwrap_or(i)),
            };
            let skippable = matches!(e, DataError::Decode { .. } | DataError::Io { .. });
            if self.cfg.on_bad_input == OnBadInput::Error || !skippable {
                return Err(e);
            }
            if let Ok(mut s) = bad.lock() {
                s.insert(culprit);
            }
        }
        Err(DataError::Empty { path: self.cfg.root.clone(), what: "decodable pairs (all failed)".into() })
    }

    /// Decodes side-by-side image `index`, or with `on_bad_input: skip` the next decodable one
    /// (cyclically), recording failures. Decoding draws no randomness, so this stays pure.
    fn decode_side_by_side(
        &self,
        files: &ImageFolder,
        bad: &Mutex<BTreeSet<usize>>,
        index: usize,
    ) -> Result<DynamicImage> {
        let list = files.files();
        let n = list.len();
        if self.cfg.on_bad_input == OnBadInput::Error {
            return decode_side(&list[index].0);
        }
        for step in 0..n {
            let i = (index + step) % n;
            if bad.lock().map(|s| s.contains(&i)).unwrap_or(false) {
                continue;
            }
            match decode_side(&list[i].0) {
                Ok(img) => return Ok(img),
                Err(DataError::Decode { .. }) | Err(DataError::Io { .. }) | Err(DataError::Format { .. }) => {
                    if let Ok(mut s) = bad.lock() {
                        s.insert(i);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(DataError::Empty { path: files.config().root.clone(), what: "decodable images (all failed)".into() })
    }

    /// The (A, B) halves of a side-by-side image, honouring `swap`.
    fn halves(&self, img: &DynamicImage) -> (DynamicImage, DynamicImage) {
        let (w, h) = (img.width(), img.height());
        let w2 = w / 2;
        let left = img.crop_imm(0, 0, w2, h);
        let right = img.crop_imm(w2, 0, w - w2, h);
        if self.cfg.swap {
            (right, left)
        } else {
            (left, right)
        }
    }
}

impl Layout {
    /// Whether B[i] is A[i]'s true counterpart.
    pub fn has_pairs(self) -> bool {
        self != Layout::Folders
    }
}

/// Pairs the files of `a` and `b` by file name: (index in a, index in b) in a's order, and the files without
/// a namesake (an error naming the first unless `on_bad_input: skip`).
/// (index in A, index in B) of each pair, and the files left without a namesake.
type Matched = (Vec<(usize, usize)>, Vec<PathBuf>);

fn match_names(a: &ImageFolder, b: &ImageFolder, on_bad: OnBadInput) -> Result<Matched> {
    let name = |p: &Path| p.file_name().map(|n| n.to_os_string());
    let in_b: std::collections::HashMap<_, usize> = b.files().iter().enumerate().filter_map(|(i, f)| name(&f.0).map(|n| (n, i))).collect();
    let mut pairs = Vec::with_capacity(a.len());
    let mut unmatched = Vec::new();
    let mut used = vec![false; b.len()];
    for (i, f) in a.files().iter().enumerate() {
        match name(&f.0).and_then(|n| in_b.get(&n)) {
            Some(&j) => {
                pairs.push((i, j));
                used[j] = true;
            }
            None => unmatched.push(f.0.clone()),
        }
    }
    let lone_a = unmatched.len();
    unmatched.extend(b.files().iter().zip(&used).filter(|(_, u)| !**u).map(|(f, _)| f.0.clone()));
    if !unmatched.is_empty() && on_bad == OnBadInput::Error {
        return Err(DataError::Format {
            path: unmatched[0].clone(),
            reason: format!(
                "no namesake in the other folder: {lone_a} file(s) of {} and {} of {} have none (a pair is two files of the same name; `on_bad_input: skip` leaves them out, counted)",
                a.config().root.display(),
                unmatched.len() - lone_a,
                b.config().root.display()
            ),
        });
    }
    if pairs.is_empty() {
        return Err(DataError::Empty { path: a.config().root.clone(), what: format!("images with a namesake in {}", b.config().root.display()) });
    }
    Ok((pairs, unmatched))
}

/// Decodes a side-by-side image and checks that it is an A|B pair: its width twice its height (two square
/// halves, as every pix2pix dataset stores them). A single photo in a split would otherwise be cut in two and
/// its halves taken for a true pair.
fn decode_side(path: &Path) -> Result<DynamicImage> {
    let img = decode_image(path)?;
    if img.width() != 2 * img.height() {
        return Err(DataError::Format {
            path: path.into(),
            reason: format!(
                "side-by-side image is {}x{}: an A|B pair is twice as wide as high (e.g. 512x256), so this is not a pair (`on_bad_input: skip` leaves such files out, counted)",
                img.width(),
                img.height()
            ),
        });
    }
    Ok(img)
}

impl Dataset for Unpaired {
    fn len(&self) -> usize {
        self.len_a().max(self.len_b())
    }

    /// RNG use, in order: the B index (unpaired only), then A's crop/flip, then B's crop/flip (paired: the
    /// same crop/flip as A's).
    fn get(&self, index: usize, rng: &mut ChaCha8Rng) -> Result<Example> {
        let n = self.len();
        if index >= n {
            return Err(DataError::Invalid(format!(
                "index {index} out of range for {} ({n} items)",
                self.cfg.root.display()
            )));
        }
        let (c, s) = (self.cfg.channels, self.cfg.size);
        let (xa, xb) = match &self.src {
            Source::Folders { a, b } => {
                let j = rng.gen_range(0..b.len());
                let xa = a.get(index % a.len(), rng)?.x;
                let xb = b.get(j, rng)?.x;
                (xa, xb)
            }
            Source::SideBySide { files, bad } => {
                if self.paired {
                    let img = self.decode_side_by_side(files, bad, index)?;
                    let (ha, hb) = self.halves(&img);
                    let mut rb = rng.clone();
                    let xa = transform(ha, &self.tcfg, rng);
                    let xb = transform(hb, &self.tcfg, &mut rb);
                    (xa, xb)
                } else {
                    let j = rng.gen_range(0..files.len());
                    let ha = self.halves(&self.decode_side_by_side(files, bad, index)?).0;
                    let hb = self.halves(&self.decode_side_by_side(files, bad, j)?).1;
                    let xa = transform(ha, &self.tcfg, rng);
                    let xb = transform(hb, &self.tcfg, rng);
                    (xa, xb)
                }
            }
            Source::Matched { a, b, pairs, bad, .. } => self.matched_pair(a, b, pairs, bad, index, rng)?,
        };
        let mut x = xa;
        x.extend_from_slice(&xb);
        Ok(Example { x, shape: vec![2, c, s, s], label: None })
    }

    fn shape(&self) -> Vec<i64> {
        vec![2, self.cfg.channels, self.cfg.size, self.cfg.size]
    }

    fn domain_len(&self, d: usize) -> Option<usize> {
        match d {
            0 => Some(self.len_a()),
            1 => Some(self.len_b()),
            _ => None,
        }
    }

    fn domain_image(&self, d: usize, index: usize, rng: &mut ChaCha8Rng) -> Result<Example> {
        let n = self.domain_len(d).ok_or_else(|| DataError::Invalid(format!("domain {d}: two-domain data has domains 0 (A) and 1 (B)")))?;
        if index >= n {
            return Err(DataError::Invalid(format!(
                "index {index} out of range for domain {} of {} ({n} images)",
                ["A", "B"][d],
                self.cfg.root.display()
            )));
        }
        let (c, s) = (self.cfg.channels, self.cfg.size);
        let x = match &self.src {
            Source::Folders { a, b } => [a, b][d].get(index, rng)?.x,
            Source::Matched { a, b, pairs, .. } => {
                let (folder, i) = if d == 0 { (a, pairs[index].0) } else { (b, pairs[index].1) };
                folder.get(i, rng)?.x
            }
            Source::SideBySide { files, bad } => {
                let img = self.decode_side_by_side(files, bad, index)?;
                let (ha, hb) = self.halves(&img);
                transform(if d == 0 { ha } else { hb }, &self.tcfg, rng)
            }
        };
        Ok(Example { x, shape: vec![c, s, s], label: None })
    }
}

/// True when `path`'s extension (any case) is one of the formats the `image` crate decodes in this build
/// (`folder::IMAGE_EXTENSIONS`: png, jpg/jpeg, bmp, gif, tif/tiff, webp).
pub fn is_image_file(path: &Path) -> bool {
    crate::folder::is_image(path)
}

/// Decodes one image file for translation at inference.
///
/// `size = Some(s)`: resized to `s`². `size = None`: kept at its own size, rounded down to a multiple of 4
/// in each dimension (a ResNet/U-Net generator downsamples twice), by resizing as the reference's
/// `__make_power_2` does. Grayscale, RGBA, 16-bit and CMYK inputs are converted to `channels` (1 or 3).
/// Returns CHW values in [-1, 1] and the shape `[C, H, W]`; errors name the file.
pub fn load_for_translation(path: &Path, size: Option<i64>, channels: i64) -> Result<(Vec<f32>, Vec<i64>)> {
    if channels != 1 && channels != 3 {
        return Err(DataError::Invalid(format!("{}: channels must be 1 or 3, got {channels}", path.display())));
    }
    if let Some(s) = size {
        if s <= 0 {
            return Err(DataError::Invalid(format!("{}: size must be > 0, got {s}", path.display())));
        }
    }
    let img = decode_image(path)?;
    match size {
        Some(s) => {
            let tcfg = ImageFolderConfig { channels, ..ImageFolderConfig::new(path, s) };
            // No crop, no flip: the transform draws nothing from this RNG.
            let mut rng = crate::rng::derived_rng(0, "translate", 0);
            Ok((transform(img, &tcfg, &mut rng), vec![channels, s, s]))
        }
        None => {
            let (w, h) = ((img.width() / 4) * 4, (img.height() / 4) * 4);
            if w == 0 || h == 0 {
                return Err(DataError::Format {
                    path: path.into(),
                    reason: format!("image is {}x{}: smaller than 4 pixels on a side", img.width(), img.height()),
                });
            }
            let img = if channels == 1 {
                DynamicImage::ImageLuma8(img.to_luma8())
            } else {
                DynamicImage::ImageRgb8(img.to_rgb8())
            };
            let img = if (w, h) != (img.width(), img.height()) {
                img.resize_exact(w, h, FilterType::CatmullRom)
            } else {
                img
            };
            let (c, wu, hu) = (channels as usize, w as usize, h as usize);
            let raw = img.as_bytes();
            let mut out = vec![0f32; c * hu * wu];
            for (p, px) in raw.chunks_exact(c).enumerate() {
                for (ch, &v) in px.iter().enumerate() {
                    out[ch * hu * wu + p] = f32::from(v) / 127.5 - 1.0;
                }
            }
            Ok((out, vec![channels, h as i64, w as i64]))
        }
    }
}

/// Saves one CHW image in [-1, 1] (`shape` `[C, H, W]` or `[1, C, H, W]`, C 1 or 3) to `path`, in the
/// format its extension names (png, jpg, bmp, tif, ...), atomically (temp file + rename). Values are
/// clamped to [-1, 1]; NaN maps to black.
pub fn save_image(x: &[f32], shape: &[i64], path: &Path) -> Result<()> {
    let dims: &[i64] = match shape {
        [1, c, h, w] => &[*c, *h, *w],
        [c, h, w] => &[*c, *h, *w],
        _ => &[],
    };
    let (c, h, w) = match dims {
        &[c, h, w] if (c == 1 || c == 3) && h > 0 && w > 0 => (c as usize, h as usize, w as usize),
        _ => {
            return Err(DataError::Invalid(format!(
                "{}: image shape {shape:?}: need [C, H, W] (or [1, C, H, W]) with C 1 or 3 and H, W > 0",
                path.display()
            )))
        }
    };
    if x.len() != c * h * w {
        return Err(DataError::Invalid(format!("{}: {} values for image shape {shape:?}", path.display(), x.len())));
    }
    let format = ImageFormat::from_path(path).map_err(|e| {
        DataError::Invalid(format!("{}: cannot tell the image format from the extension: {e}", path.display()))
    })?;
    let mut buf = vec![0u8; c * h * w];
    for ch in 0..c {
        for p in 0..h * w {
            let v = x[ch * h * w + p];
            let v = if v.is_nan() { -1.0 } else { v.clamp(-1.0, 1.0) };
            buf[p * c + ch] = ((v + 1.0) * 127.5).round() as u8;
        }
    }
    let img = if c == 1 {
        image::GrayImage::from_raw(w as u32, h as u32, buf).map(DynamicImage::ImageLuma8)
    } else {
        image::RgbImage::from_raw(w as u32, h as u32, buf).map(DynamicImage::ImageRgb8)
    }
    .ok_or_else(|| DataError::Invalid(format!("{}: buffer does not match {w}x{h}x{c}", path.display())))?;
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, format)
        .map_err(|e| DataError::Invalid(format!("{}: {format:?} encoding failed: {e}", path.display())))?;
    crate::grid::write_atomic(path, &bytes.into_inner())
}
