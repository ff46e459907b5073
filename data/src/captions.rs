//! Captioned images in the CUB-200-2011 / Oxford-102 layout of the GAN-CLS (Reed et al. 2016, "Generative
//! Adversarial Text to Image Synthesis") and StackGAN data releases, with captions as plain text (never pickle):
//!
//! ```text
//! ROOT/images/<class>/<name>.jpg       any extension folder.rs decodes; may nest below <class>
//! ROOT/text/<class>/<name>.txt         one caption a line (blank lines ignored), UTF-8
//! ROOT/trainclasses.txt                split files: one entry a line, a class folder name (class-level
//! ROOT/testclasses.txt                 split) or an image name `<class>/<name>` (image-level); may be mixed
//! ```
//!
//! Oxford-102's release names the folders `jpg/` and `text_c10/` ([`CaptionedConfig::oxford102`]).
//! Items are in a fixed order (class folders sorted, then files sorted within each), so indices are the
//! same on every machine. Decoding, colour conversion, resize, crop, flip and header checks are those of
//! [`crate::folder`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::folder::{
    check_header, decode_image, is_image, transform, ImageFolderConfig, OnBadInput,
    IMAGE_EXTENSIONS,
};
use crate::loader::{Dataset, Example};
use crate::unpaired::Split;

fn default_images() -> String {
    "images".into()
}
fn default_text() -> String {
    "text".into()
}
fn default_size() -> i64 {
    64
}

/// Settings of a [`CaptionedImages`] dataset.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CaptionedConfig {
    /// Dataset root, holding the image folder, the caption folder and the split files.
    pub root: PathBuf,
    /// Image folder under `root` (one subfolder per class).
    #[serde(default = "default_images")]
    pub images: String,
    /// Caption folder under `root`, mirroring the image folder (`<class>/<name>.txt`).
    #[serde(default = "default_text")]
    pub text: String,
    /// Train split file, relative to `root`; `None` means `trainclasses.txt`.
    #[serde(default)]
    pub train_split: Option<PathBuf>,
    /// Test split file, relative to `root`; `None` means `testclasses.txt`.
    #[serde(default)]
    pub test_split: Option<PathBuf>,
    /// Side of the square output image.
    #[serde(default = "default_size")]
    pub size: i64,
    /// Resize to `load_size`² then take a random `size`² crop (train split only; GAN-CLS uses 76 → 64).
    /// `None`: resize straight to `size`².
    #[serde(default)]
    pub load_size: Option<i64>,
    /// Random horizontal flip with probability 1/2 (train split only).
    #[serde(default)]
    pub flip: bool,
    /// `error` stops at the first problem (those `ganzoo data check` lists), naming the file; `skip` leaves the
    /// images concerned out and records them.
    ///
    /// The skipped images: [`CaptionedImages::skipped`].
    #[serde(default)]
    pub on_bad_input: OnBadInput,
}

impl CaptionedConfig {
    /// CUB-200 layout (`images/`, `text/`, `trainclasses.txt`, `testclasses.txt`) at 64², no crop, no
    /// flip, errors on bad input.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        CaptionedConfig {
            root: root.into(),
            images: default_images(),
            text: default_text(),
            train_split: None,
            test_split: None,
            size: default_size(),
            load_size: None,
            flip: false,
            on_bad_input: OnBadInput::Error,
        }
    }

    /// Oxford-102 release layout: images in `jpg/<class>/`, captions in `text_c10/<class>/`.
    pub fn oxford102(root: impl Into<PathBuf>) -> Self {
        CaptionedConfig {
            images: "jpg".into(),
            text: "text_c10".into(),
            ..CaptionedConfig::new(root)
        }
    }

    /// GAN-CLS training preprocessing on top of `self`: resize to 76², random crop 64², random flip.
    pub fn with_gan_cls_augmentation(self) -> Self {
        CaptionedConfig {
            size: 64,
            load_size: Some(76),
            flip: true,
            ..self
        }
    }

    /// Opens `split` (same as [`CaptionedImages::open`]).
    pub fn build(&self, split: Split) -> Result<CaptionedImages> {
        CaptionedImages::open(self, split)
    }

    /// The split file of `split` (under `root`).
    pub fn split_file(&self, split: Split) -> PathBuf {
        let rel = match split {
            Split::Train => self
                .train_split
                .clone()
                .unwrap_or_else(|| PathBuf::from("trainclasses.txt")),
            Split::Test => self
                .test_split
                .clone()
                .unwrap_or_else(|| PathBuf::from("testclasses.txt")),
        };
        self.root.join(rel)
    }

    fn images_dir(&self) -> PathBuf {
        self.root.join(&self.images)
    }

    fn text_dir(&self) -> PathBuf {
        self.root.join(&self.text)
    }

    fn validate(&self) -> Result<()> {
        if self.size <= 0 {
            return Err(DataError::Invalid(format!(
                "captioned size must be > 0, got {}",
                self.size
            )));
        }
        if let Some(l) = self.load_size {
            if l < self.size {
                return Err(DataError::Invalid(format!(
                    "captioned load_size {l} is smaller than size {}",
                    self.size
                )));
            }
        }
        for (key, v) in [("images", &self.images), ("text", &self.text)] {
            if v.trim().is_empty() {
                return Err(DataError::Invalid(format!(
                    "captioned `{key}` folder name is empty"
                )));
            }
        }
        Ok(())
    }
}

/// The config key that sets `split`'s file, with its default, for error messages.
fn split_key(split: Split) -> &'static str {
    match split {
        Split::Train => "`data.train_split`; default \"trainclasses.txt\", relative to root",
        Split::Test => "`data.test_split`; default \"testclasses.txt\", relative to root",
    }
}

/// One problem found while scanning: the file it concerns, a short reason (for [`CaptionedImages::skipped`])
/// and the error it becomes with `on_bad_input: error`.
#[derive(Debug)]
struct Issue {
    path: PathBuf,
    reason: String,
    err: DataError,
}

impl Issue {
    fn decode(path: &Path, reason: impl Into<String>) -> Issue {
        let reason = reason.into();
        Issue {
            path: path.into(),
            reason: reason.clone(),
            err: DataError::Decode {
                path: path.into(),
                reason,
            },
        }
    }

    fn format(path: &Path, reason: impl Into<String>) -> Issue {
        let reason = reason.into();
        Issue {
            path: path.into(),
            reason: reason.clone(),
            err: DataError::Format {
                path: path.into(),
                reason,
            },
        }
    }

    fn from_error(err: DataError) -> Issue {
        let (path, reason) = match &err {
            DataError::Io { path, source } => (path.clone(), source.to_string()),
            DataError::Decode { path, reason } => {
                (path.clone(), format!("cannot decode: {reason}"))
            }
            DataError::Format { path, reason } => (path.clone(), reason.clone()),
            DataError::Empty { path, what } => (path.clone(), format!("no {what} found")),
            other => (PathBuf::new(), other.to_string()),
        };
        Issue { path, reason, err }
    }
}

/// One image file of the tree.
#[derive(Debug, Clone)]
struct Img {
    /// `class/…/stem`, '/'-separated.
    name: String,
    path: PathBuf,
    class: usize,
}

/// Everything listed under the image and caption folders (nothing read yet).
#[derive(Debug)]
struct Tree {
    images_dir: PathBuf,
    text_dir: PathBuf,
    classes: Vec<String>,
    /// Unique names, in class order then sorted file order.
    items: Vec<Img>,
    by_name: HashMap<String, usize>,
    class_items: Vec<Vec<usize>>,
    /// Caption files by name.
    captions: BTreeMap<String, PathBuf>,
    /// Images outside a class folder, duplicate names.
    structural: Vec<Issue>,
    image_files: usize,
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.starts_with('.'))
        .unwrap_or(false)
}

/// Sorted non-hidden entries of `dir`: (subfolders, files accepted by `keep`). Follows symlinks.
fn list(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let rd = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    for entry in rd {
        let path = entry.map_err(|e| DataError::io(dir, e))?.path();
        if is_hidden(&path) {
            continue;
        }
        let meta = std::fs::metadata(&path).map_err(|e| DataError::io(&path, e))?;
        if meta.is_dir() {
            dirs.push(path);
        } else if meta.is_file() && keep(&path) {
            files.push(path);
        }
    }
    dirs.sort();
    files.sort();
    Ok((dirs, files))
}

/// Files under `dir` accepted by `keep`, recursively: each folder's files (sorted), then its subfolders (sorted).
fn walk(dir: &Path, keep: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) -> Result<()> {
    let (dirs, files) = list(dir, keep)?;
    out.extend(files);
    for d in dirs {
        walk(&d, keep, out)?;
    }
    Ok(())
}

fn is_txt(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.eq_ignore_ascii_case("txt"))
        .unwrap_or(false)
}

/// `path` relative to `base`, without its extension, '/'-separated (e.g. `"001.Albatross/Albatross_0046"`).
fn item_name(base: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(base).unwrap_or(path).with_extension("");
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// A missing folder or file: `NotFound`, with a message saying which key sets it.
fn missing(path: &Path, what: String) -> DataError {
    DataError::io(
        path,
        std::io::Error::new(std::io::ErrorKind::NotFound, what),
    )
}

/// Lists the image and caption folders. Fails only when a folder is missing or cannot be listed.
fn scan(cfg: &CaptionedConfig) -> Result<Tree> {
    let images_dir = cfg.images_dir();
    let text_dir = cfg.text_dir();
    if !cfg.root.is_dir() {
        return Err(missing(
            &cfg.root,
            "dataset root folder not found (set by `data.root`)".into(),
        ));
    }
    if !images_dir.is_dir() {
        return Err(missing(
            &images_dir,
            format!("image folder not found (set by `data.images`, default \"images\"; expected {}/<class>/<name>.jpg)", images_dir.display()),
        ));
    }
    if !text_dir.is_dir() {
        return Err(missing(
            &text_dir,
            format!("caption folder not found (set by `data.text`, default \"text\"; expected {}/<class>/<name>.txt)", text_dir.display()),
        ));
    }
    let (class_dirs, top_images) = list(&images_dir, &is_image)?;
    let mut structural = Vec::new();
    let mut image_files = top_images.len();
    for f in &top_images {
        structural.push(Issue::format(
            f,
            format!(
                "image outside a class folder: every image belongs in {}/<class>/",
                images_dir.display()
            ),
        ));
    }
    let mut classes = Vec::with_capacity(class_dirs.len());
    let mut items: Vec<Img> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut class_items = Vec::with_capacity(class_dirs.len());
    for (c, dir) in class_dirs.iter().enumerate() {
        classes.push(
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        let mut files = Vec::new();
        walk(dir, &is_image, &mut files)?;
        image_files += files.len();
        let mut mine = Vec::with_capacity(files.len());
        for path in files {
            let name = item_name(&images_dir, &path);
            if let Some(&first) = by_name.get(&name) {
                structural.push(Issue::format(
                    &path,
                    format!("another image has the same name `{name}`: {} (captions could not tell them apart)", items[first].path.display()),
                ));
                continue;
            }
            by_name.insert(name.clone(), items.len());
            mine.push(items.len());
            items.push(Img {
                name,
                path,
                class: c,
            });
        }
        class_items.push(mine);
    }
    let mut txts = Vec::new();
    walk(&text_dir, &is_txt, &mut txts)?;
    let captions = txts
        .into_iter()
        .map(|p| (item_name(&text_dir, &p), p))
        .collect();
    Ok(Tree {
        images_dir,
        text_dir,
        classes,
        items,
        by_name,
        class_items,
        captions,
        structural,
        image_files,
    })
}

/// Reads a text file as UTF-8 (a leading byte-order mark is dropped); errors name the file and the offset
/// of the first invalid byte.
fn read_utf8(path: &Path, what: &str) -> std::result::Result<String, Issue> {
    let bytes = std::fs::read(path).map_err(|e| Issue::from_error(DataError::io(path, e)))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Issue::decode(
            path,
            format!(
                "{what} is not UTF-8 (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// The non-blank lines of a caption file, trimmed.
fn read_captions(path: &Path) -> std::result::Result<Vec<String>, Issue> {
    let text = read_utf8(path, "caption file")?;
    let caps: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if caps.is_empty() {
        return Err(Issue::format(
            path,
            "caption file is empty or holds only blank lines",
        ));
    }
    Ok(caps)
}

/// Checks one image: its caption file exists and holds captions, and its header reads.
fn check_item(tree: &Tree, i: usize) -> std::result::Result<Vec<String>, Issue> {
    let img = &tree.items[i];
    let Some(txt) = tree.captions.get(&img.name) else {
        return Err(Issue::format(
            &img.path,
            format!(
                "image has no caption file (expected {})",
                tree.text_dir.join(format!("{}.txt", img.name)).display()
            ),
        ));
    };
    let caps = read_captions(txt)?;
    check_header(&img.path).map_err(Issue::from_error)?;
    Ok(caps)
}

/// Caption files with no image, restricted to the classes `only` when given.
fn orphan_captions(tree: &Tree, only: Option<&BTreeSet<usize>>) -> Vec<Issue> {
    let class_pos: HashMap<&str, usize> = tree
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let exts = IMAGE_EXTENSIONS.join("|");
    tree.captions
        .iter()
        .filter(|(name, _)| !tree.by_name.contains_key(*name))
        .filter(|(name, _)| match only {
            None => true,
            Some(set) => {
                let class = name.split('/').next().unwrap_or("");
                class_pos
                    .get(class)
                    .map(|c| set.contains(c))
                    .unwrap_or(false)
            }
        })
        .map(|(name, path)| {
            Issue::format(
                path,
                format!(
                    "caption file has no image (expected {}.<{exts}>)",
                    tree.images_dir.join(name).display()
                ),
            )
        })
        .collect()
}

/// A split file's entries resolved against the tree.
#[derive(Debug, Default)]
struct Resolved {
    /// Selected item indices (tree order).
    items: BTreeSet<usize>,
    /// Classes selected by a class-level entry.
    classes: BTreeSet<usize>,
    issues: Vec<Issue>,
}

/// Reads the split file of `split`; a missing or unreadable file is always an error.
fn read_split(cfg: &CaptionedConfig, split: Split) -> Result<(PathBuf, Vec<(usize, String)>)> {
    let file = cfg.split_file(split);
    if !file.is_file() {
        return Err(missing(
            &file,
            format!(
                "split file of the {split} split not found (set by {})",
                split_key(split)
            ),
        ));
    }
    let text = read_utf8(&file, "split file").map_err(|i| i.err)?;
    let entries = text
        .lines()
        .enumerate()
        .map(|(n, l)| {
            (
                n + 1,
                l.trim()
                    .replace('\\', "/")
                    .trim_end_matches('/')
                    .to_string(),
            )
        })
        .filter(|(_, l)| !l.is_empty())
        .collect();
    Ok((file, entries))
}

/// Strips a known image extension from `entry` (a convenience: entries are documented without one).
fn strip_image_ext(entry: &str) -> Option<&str> {
    let (stem, ext) = entry.rsplit_once('.')?;
    IMAGE_EXTENSIONS
        .contains(&ext.to_ascii_lowercase().as_str())
        .then_some(stem)
}

fn resolve(tree: &Tree, file: &Path, entries: &[(usize, String)]) -> Resolved {
    let class_pos: HashMap<&str, usize> = tree
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let mut r = Resolved::default();
    for (line, entry) in entries {
        if let Some(&c) = class_pos.get(entry.as_str()) {
            r.classes.insert(c);
            if tree.class_items[c].is_empty() {
                r.issues.push(Issue::format(
                    &tree.images_dir.join(entry),
                    format!(
                        "class folder has no images (listed at {} line {line})",
                        file.display()
                    ),
                ));
            }
            r.items.extend(tree.class_items[c].iter().copied());
        } else if let Some(&i) = tree
            .by_name
            .get(entry.as_str())
            .or_else(|| strip_image_ext(entry).and_then(|s| tree.by_name.get(s)))
        {
            r.items.insert(i);
        } else {
            let hint = match tree.captions.get(entry.as_str()) {
                Some(txt) => format!(" (there is a caption file {} but no image)", txt.display()),
                None => String::new(),
            };
            r.issues.push(Issue::format(
                file,
                format!(
                    "line {line}: entry `{entry}` matches no class folder and no image under {}{hint}",
                    tree.images_dir.display()
                ),
            ));
        }
    }
    r
}

/// One item of the dataset.
#[derive(Debug)]
struct Item {
    name: String,
    path: PathBuf,
    class: i64,
    captions: Vec<String>,
}

/// Images with captions, one split of a CUB / Oxford-102 style dataset; see the module docs.
///
/// Item `i` is the image as `3×size×size` in [-1, 1] with `label = Some(i)`: the pipeline looks the
/// captions (or precomputed embeddings, by [`CaptionedImages::name`]) up by index.
#[derive(Debug)]
pub struct CaptionedImages {
    cfg: CaptionedConfig,
    split: Split,
    tcfg: ImageFolderConfig,
    classes: Vec<String>,
    items: Vec<Item>,
    by_name: HashMap<String, usize>,
    skipped: Vec<(PathBuf, String)>,
    /// Items whose image failed to decode in `get` (skip mode), with the reason; each recorded once.
    bad_at_decode: Mutex<BTreeMap<usize, String>>,
}

impl CaptionedImages {
    /// Lists the tree, reads `split`'s split file and every caption file of the split, and header-checks its
    /// images (in parallel).
    ///
    /// Always errors: invalid settings; a missing root, image or caption folder; a missing or non-UTF-8
    /// split file (the message names the key that sets it); a split with no usable item. Per-item problems
    /// error with the file named, or under `on_bad_input: skip` are left out and listed by
    /// [`skipped`](Self::skipped): an empty or non-UTF-8 caption file, an image without a caption file, a
    /// caption file without an image (in a class the split lists), an unreadable image, a split entry that
    /// matches nothing (split file, line and entry), a class folder with no images, an image outside a class
    /// folder, two images with the same name.
    pub fn open(cfg: &CaptionedConfig, split: Split) -> Result<Self> {
        cfg.validate()?;
        let mut tree = scan(cfg)?;
        let (file, entries) = read_split(cfg, split)?;
        let resolved = resolve(&tree, &file, &entries);
        let sel: Vec<usize> = resolved.items.iter().copied().collect();
        let checks: Vec<std::result::Result<Vec<String>, Issue>> =
            sel.par_iter().map(|&i| check_item(&tree, i)).collect();
        let mut issues: Vec<Issue> = std::mem::take(&mut tree.structural);
        issues.extend(resolved.issues);
        let mut items = Vec::with_capacity(sel.len());
        let mut item_issues = Vec::new();
        for (&i, check) in sel.iter().zip(checks) {
            match check {
                Ok(captions) => {
                    let img = &tree.items[i];
                    items.push(Item {
                        name: img.name.clone(),
                        path: img.path.clone(),
                        class: img.class as i64,
                        captions,
                    });
                }
                Err(issue) => item_issues.push(issue),
            }
        }
        issues.extend(item_issues);
        issues.extend(orphan_captions(&tree, Some(&resolved.classes)));
        if cfg.on_bad_input == OnBadInput::Error {
            if let Some(first) = issues.into_iter().next() {
                return Err(first.err);
            }
            issues = Vec::new();
        }
        let skipped: Vec<(PathBuf, String)> =
            issues.into_iter().map(|i| (i.path, i.reason)).collect();
        if items.is_empty() {
            return Err(DataError::Empty {
                path: file,
                what: format!("usable images in the {split} split"),
            });
        }
        let train = split == Split::Train;
        let tcfg = ImageFolderConfig {
            root: cfg.root.clone(),
            size: cfg.size,
            channels: 3,
            load_size: if train { cfg.load_size } else { None },
            center_crop: false,
            flip: train && cfg.flip,
            on_bad_input: cfg.on_bad_input,
        };
        let by_name = items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.name.clone(), i))
            .collect();
        Ok(CaptionedImages {
            cfg: cfg.clone(),
            split,
            tcfg,
            classes: tree.classes,
            items,
            by_name,
            skipped,
            bad_at_decode: Mutex::new(BTreeMap::new()),
        })
    }

    /// The captions of item `index`, in file order (at least one). Panics if `index >= len()`.
    pub fn captions(&self, index: usize) -> &[String] {
        &self.items[index].captions
    }

    /// The image file of item `index`. Panics if `index >= len()`.
    pub fn image_path(&self, index: usize) -> &Path {
        &self.items[index].path
    }

    /// The name of item `index`: its path under the image folder without extension, '/'-separated
    /// (`"001.Black_footed_Albatross/Black_Footed_Albatross_0046_18"`). Panics if `index >= len()`.
    pub fn name(&self, index: usize) -> &str {
        &self.items[index].name
    }

    /// The index of the item called `name` (see [`name`](Self::name)), if it is in this split.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The class of item `index`: the position of its class folder among all class folders of the image
    /// folder, sorted (so the same for both splits). Panics if `index >= len()`.
    pub fn class_index(&self, index: usize) -> i64 {
        self.items[index].class
    }

    /// Every class folder name of the image folder, sorted (index = [`class_index`](Self::class_index)).
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Problems left out at `open` under `on_bad_input: skip`: the file (an image, caption file, split file
    /// or folder) and the reason. Always empty with `on_bad_input: error`. Images that pass the header check
    /// but fail to decode later are in [`skipped_at_decode`](Self::skipped_at_decode).
    pub fn skipped(&self) -> &[(PathBuf, String)] {
        &self.skipped
    }

    /// Images that failed to decode in `get` so far (skip mode), each once, in index order.
    pub fn skipped_at_decode(&self) -> Vec<(PathBuf, String)> {
        match self.bad_at_decode.lock() {
            Ok(m) => m
                .iter()
                .map(|(&i, r)| (self.items[i].path.clone(), r.clone()))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Every caption of the split, item by item in index order (e.g. to train a tokenizer).
    pub fn all_captions(&self) -> Vec<&str> {
        self.items
            .iter()
            .flat_map(|it| it.captions.iter().map(String::as_str))
            .collect()
    }

    /// The split it reads.
    pub fn split(&self) -> Split {
        self.split
    }

    /// The settings it was opened with.
    pub fn config(&self) -> &CaptionedConfig {
        &self.cfg
    }

    /// Decodes and transforms item `index` (no skipping).
    fn load(&self, index: usize, rng: &mut ChaCha8Rng) -> Result<Example> {
        let img = decode_image(&self.items[index].path)?;
        let x = transform(img, &self.tcfg, rng);
        let s = self.cfg.size;
        Ok(Example {
            x,
            shape: vec![3, s, s],
            label: Some(index as i64),
        })
    }
}

impl Dataset for CaptionedImages {
    fn len(&self) -> usize {
        self.items.len()
    }

    /// Item `index`: RNG use is crop x, crop y, flip (train split; the test split resizes to `size`² with
    /// no crop or flip). With `on_bad_input: skip`, an image that fails to decode is recorded and the next
    /// item (cyclically) is returned instead, drawn with the same RNG and labelled with its own index, so
    /// its captions still match.
    fn get(&self, index: usize, rng: &mut ChaCha8Rng) -> Result<Example> {
        let n = self.items.len();
        if index >= n {
            return Err(DataError::Invalid(format!(
                "index {index} out of range for the {} split of {} ({n} items)",
                self.split,
                self.cfg.root.display()
            )));
        }
        if self.cfg.on_bad_input == OnBadInput::Error {
            return self.load(index, rng);
        }
        let start_rng = rng.clone();
        for step in 0..n {
            let i = (index + step) % n;
            if self
                .bad_at_decode
                .lock()
                .map(|s| s.contains_key(&i))
                .unwrap_or(false)
            {
                continue;
            }
            let mut r = start_rng.clone();
            match self.load(i, &mut r) {
                Ok(ex) => {
                    *rng = r;
                    return Ok(ex);
                }
                Err(e @ (DataError::Decode { .. } | DataError::Io { .. })) => {
                    if let Ok(mut s) = self.bad_at_decode.lock() {
                        s.insert(i, Issue::from_error(e).reason);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(DataError::Empty {
            path: self.cfg.images_dir(),
            what: "decodable images (all failed)".into(),
        })
    }

    fn shape(&self) -> Vec<i64> {
        vec![3, self.cfg.size, self.cfg.size]
    }

    fn captions(&self, index: usize) -> Option<Vec<String>> {
        (index < self.items.len()).then(|| CaptionedImages::captions(self, index).to_vec())
    }

    fn item_name(&self, index: usize) -> Option<String> {
        (index < self.items.len()).then(|| self.name(index).to_string())
    }
}

/// What `ganzoo data check captioned ROOT` prints: what was found and precisely what is missing or wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LayoutReport {
    /// Image files under the image folder (including ones with problems).
    pub images: usize,
    /// `.txt` files under the caption folder (including ones with problems).
    pub caption_files: usize,
    /// Usable items of the train split (what `open` gives under `on_bad_input: skip`).
    pub train: usize,
    /// Usable items of the test split.
    pub test: usize,
    /// One line per problem, each naming the file or folder; empty when the layout is fine.
    pub problems: Vec<String>,
}

impl LayoutReport {
    /// True when no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl std::fmt::Display for LayoutReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} images, {} caption files; train split: {} items, test split: {} items",
            self.images, self.caption_files, self.train, self.test
        )?;
        if self.problems.is_empty() {
            writeln!(f, "no problems found")
        } else {
            writeln!(f, "{} problem(s):", self.problems.len())?;
            for p in &self.problems {
                writeln!(f, "  {p}")?;
            }
            Ok(())
        }
    }
}

/// Checks a downloaded dataset against the layout of `cfg` without failing: counts what is there and lists
/// every problem (missing folders and split files, images without captions and captions without images,
/// empty or non-UTF-8 caption files, unreadable images, split entries that match nothing, empty splits,
/// items in both splits), each as a line naming the path. `on_bad_input` is ignored.
pub fn check_layout(cfg: &CaptionedConfig) -> LayoutReport {
    let mut report = LayoutReport::default();
    if let Err(e) = cfg.validate() {
        report.problems.push(e.to_string());
    }
    let tree = match scan(cfg) {
        Ok(t) => t,
        Err(e) => {
            report.problems.push(e.to_string());
            return report;
        }
    };
    report.images = tree.image_files;
    report.caption_files = tree.captions.len();
    report
        .problems
        .extend(tree.structural.iter().map(|i| i.err.to_string()));
    let checks: Vec<bool> = (0..tree.items.len())
        .into_par_iter()
        .map(|i| check_item(&tree, i))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|c| match c {
            Ok(_) => true,
            Err(issue) => {
                report.problems.push(issue.err.to_string());
                false
            }
        })
        .collect();
    report.problems.extend(
        orphan_captions(&tree, None)
            .into_iter()
            .map(|i| i.err.to_string()),
    );
    let mut selected: Vec<(PathBuf, BTreeSet<usize>)> = Vec::new();
    for split in [Split::Train, Split::Test] {
        let count = match read_split(cfg, split) {
            Err(e) => {
                report.problems.push(e.to_string());
                0
            }
            Ok((file, entries)) => {
                let r = resolve(&tree, &file, &entries);
                report
                    .problems
                    .extend(r.issues.iter().map(|i| i.err.to_string()));
                let usable = r.items.iter().filter(|&&i| checks[i]).count();
                if usable == 0 {
                    report.problems.push(
                        DataError::Empty {
                            path: file.clone(),
                            what: format!("usable images in the {split} split"),
                        }
                        .to_string(),
                    );
                }
                selected.push((file, r.items));
                usable
            }
        };
        match split {
            Split::Train => report.train = count,
            Split::Test => report.test = count,
        }
    }
    if let [(train_file, train), (test_file, test)] = selected.as_slice() {
        let both: Vec<usize> = train.intersection(test).copied().collect();
        if let Some(&first) = both.first() {
            report.problems.push(format!(
                "{} and {}: {} image(s) are in both the train and the test split (e.g. {})",
                train_file.display(),
                test_file.display(),
                both.len(),
                tree.items[first].name
            ));
        }
    }
    report
}
