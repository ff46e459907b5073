//! The one factory from a config's `data:` section to what training and evaluation read: [`DataConfig`] names
//! every kind of data ganzoo trains on, and [`open`] opens any of them as a [`Source`] (procedural 2-D points
//! drawn per batch, or an indexed [`Dataset`]).
use std::path::PathBuf;
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::captions::{CaptionedConfig, CaptionedImages};
use crate::error::{DataError, Result};
use crate::folder::{ImageFolder, ImageFolderConfig};
use crate::loader::{Dataset, Example};
use crate::mnist::Mnist;
use crate::shapes::{CaptionedShapes, ShapesConfig};
use crate::shapes2::{Shapes2, Shapes2Config};
use crate::toy::Toy2d;
use crate::unpaired::{Split, Unpaired, UnpairedConfig};

/// Where training examples come from (the `data:` section of a config, chosen by `kind:`).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataConfig {
    /// 8 Gaussians on a circle of radius 2 (VEEGAN / PacGAN mode-collapse benchmark).
    Ring8 {
        /// Standard deviation of each mode (default 0.02).
        #[serde(default)]
        std: Option<f64>,
    },
    /// 25 Gaussians on a 5×5 grid.
    Grid25 {
        /// Standard deviation of each mode (default 0.05).
        #[serde(default)]
        std: Option<f64>,
    },
    /// The 10,000 real MNIST digits of `ganzoo data get mnist`.
    Mnist {
        /// Folder holding the converted IDX files (default: `<cache>/mnist`).
        #[serde(default)]
        root: Option<PathBuf>,
        /// Zero-pad 28×28 digits to 32×32.
        #[serde(default)]
        pad_to_32: bool,
    },
    /// A folder of images (flat, or one subfolder per class).
    ImageFolder(ImageFolderConfig),
    /// Two image domains: `trainA/ trainB/ testA/ testB/`, or side-by-side A|B images (pix2pix form).
    Unpaired(UnpairedConfig),
    /// Procedural two-domain scenes with a hidden ground-truth correspondence.
    Shapes2(Shapes2Config),
    /// Procedural captioned shapes ("a small red circle on a blue background") with exact attributes.
    Shapes(ShapesConfig),
    /// Images with caption files in the CUB-200 / Oxford-102 layout (`images/`, `text/`, split files).
    Captioned(CaptionedConfig),
}

impl DataConfig {
    /// (channels, height, width) of one example; 2-D points are (2, 1, 1).
    pub fn dims(&self) -> [i64; 3] {
        match self {
            DataConfig::Ring8 { .. } | DataConfig::Grid25 { .. } => [2, 1, 1],
            DataConfig::Mnist { pad_to_32, .. } => {
                let s = if *pad_to_32 { 32 } else { 28 };
                [1, s, s]
            }
            DataConfig::ImageFolder(f) => [f.channels, f.size, f.size],
            DataConfig::Unpaired(u) => [u.channels, u.size, u.size],
            DataConfig::Shapes2(s) => [3, s.size, s.size],
            DataConfig::Shapes(s) => [3, s.size, s.size],
            DataConfig::Captioned(c) => [3, c.size, c.size],
        }
    }

    /// Whether an example holds an A and a B image (unpaired translation).
    pub fn is_two_domain(&self) -> bool {
        matches!(self, DataConfig::Unpaired(_) | DataConfig::Shapes2(_))
    }

    /// The `kind:` as written in configs.
    pub fn kind(&self) -> &'static str {
        match self {
            DataConfig::Ring8 { .. } => "ring8",
            DataConfig::Grid25 { .. } => "grid25",
            DataConfig::Mnist { .. } => "mnist",
            DataConfig::ImageFolder(_) => "image_folder",
            DataConfig::Unpaired(_) => "unpaired",
            DataConfig::Shapes2(_) => "shapes2",
            DataConfig::Shapes(_) => "shapes",
            DataConfig::Captioned(_) => "captioned",
        }
    }

    /// Whether every example comes with captions (text-to-image data).
    pub fn has_captions(&self) -> bool {
        matches!(self, DataConfig::Shapes(_) | DataConfig::Captioned(_))
    }

    /// Whether examples are 2-D points rather than images.
    pub fn is_points(&self) -> bool {
        matches!(self, DataConfig::Ring8 { .. } | DataConfig::Grid25 { .. })
    }

    /// The procedural 2-D set and its per-mode std, for point data.
    pub fn points(&self) -> Option<(Toy2d, f64)> {
        match self {
            DataConfig::Ring8 { std } => Some((Toy2d::Ring8, std.unwrap_or(Toy2d::Ring8.default_std()))),
            DataConfig::Grid25 { std } => Some((Toy2d::Grid25, std.unwrap_or(Toy2d::Grid25.default_std()))),
            _ => None,
        }
    }

    /// Whether the data has a test split of its own (two-domain folders, procedural sets, caption folders);
    /// MNIST and image folders do not.
    pub fn has_test_split(&self) -> bool {
        !matches!(self, DataConfig::Mnist { .. } | DataConfig::ImageFolder(_)) && !self.is_points()
    }

    /// Whether the test split pairs each A with its true B (side-by-side images, A and B folders, shapes2).
    pub fn has_ground_truth(&self) -> bool {
        match self {
            DataConfig::Unpaired(u) => u.layout.has_pairs(),
            DataConfig::Shapes2(_) => true,
            _ => false,
        }
    }
}

/// Which part of the data [`open`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub split: Split,
    /// Two-domain data: each A with its true counterpart where the data has pairs (evaluation).
    pub paired: bool,
    /// Data without a test split of its own (MNIST, image folders): the last `held_out` items are the test
    /// split and the rest the training split. 0: all of it is both.
    pub held_out: usize,
}

impl Part {
    /// The training split, unpaired, nothing held out.
    pub fn train() -> Self {
        Part { split: Split::Train, paired: false, held_out: 0 }
    }

    /// The test split (true pairs where the data has them).
    pub fn test() -> Self {
        Part { split: Split::Test, paired: true, held_out: 0 }
    }

    /// This part with the last `n` items of split-less data held out.
    pub fn holding_out(self, n: usize) -> Self {
        Part { held_out: n, ..self }
    }
}

/// What [`open`] gives: 2-D points drawn afresh for every batch, or an indexed dataset.
#[derive(Clone)]
pub enum Source {
    Points { set: Toy2d, std: f64 },
    Items(Arc<dyn Dataset>),
}

impl Source {
    /// The indexed dataset (`None` for points).
    pub fn dataset(&self) -> Option<&Arc<dyn Dataset>> {
        match self {
            Source::Items(d) => Some(d),
            Source::Points { .. } => None,
        }
    }
}

/// The MNIST folder of `root` (default `<cache>/mnist`), or an error saying how to get it.
pub fn mnist_dir(root: &Option<PathBuf>) -> Result<PathBuf> {
    let dir = root.clone().unwrap_or_else(|| crate::mnist::default_cache_dir().join("mnist"));
    if !dir.join(crate::mnist::IMAGES_FILE).exists() {
        return Err(DataError::Usage(format!(
            "data: MNIST is not at {}; run `ganzoo data get mnist` first (or set data.root)",
            dir.display()
        )));
    }
    Ok(dir)
}

/// Opens `part` of the data `cfg` describes; `seed` draws the procedural sets.
pub fn open(cfg: &DataConfig, part: Part, seed: u64) -> Result<Source> {
    let whole: Arc<dyn Dataset> = match cfg {
        DataConfig::Ring8 { .. } | DataConfig::Grid25 { .. } => {
            let (set, std) = cfg.points().expect("point data");
            return Ok(Source::Points { set, std });
        }
        DataConfig::Mnist { root, pad_to_32 } => Arc::new(Mnist::open(&mnist_dir(root)?, *pad_to_32)?),
        DataConfig::ImageFolder(f) => Arc::new(ImageFolder::open(f)?),
        DataConfig::Unpaired(u) => return Ok(Source::Items(Arc::new(Unpaired::open(u, part.split, part.paired)?))),
        DataConfig::Shapes2(s) => return Ok(Source::Items(Arc::new(Shapes2::open(s, part.split, part.paired, seed)?))),
        DataConfig::Shapes(s) => return Ok(Source::Items(Arc::new(CaptionedShapes::open(s, part.split, seed)?))),
        DataConfig::Captioned(c) => return Ok(Source::Items(Arc::new(CaptionedImages::open(c, part.split)?))),
    };
    if part.held_out == 0 {
        return Ok(Source::Items(whole));
    }
    let n = whole.len();
    if part.held_out >= n {
        return Err(DataError::Usage(format!(
            "{} held-out images leave none of the {n} images of the dataset for training; lower it",
            part.held_out
        )));
    }
    let (start, len) = match part.split {
        Split::Train => (0, n - part.held_out),
        Split::Test => (n - part.held_out, part.held_out),
    };
    Ok(Source::Items(Arc::new(Subset { inner: whole, start, len })))
}

/// Items `start .. start + len` of another dataset.
struct Subset {
    inner: Arc<dyn Dataset>,
    start: usize,
    len: usize,
}

impl Dataset for Subset {
    fn len(&self) -> usize {
        self.len
    }
    fn get(&self, index: usize, rng: &mut ChaCha8Rng) -> Result<Example> {
        if index >= self.len {
            return Err(DataError::Invalid(format!("index {index} out of {} items", self.len)));
        }
        self.inner.get(self.start + index, rng)
    }
    fn shape(&self) -> Vec<i64> {
        self.inner.shape()
    }
    fn captions(&self, index: usize) -> Option<Vec<String>> {
        (index < self.len).then(|| self.inner.captions(self.start + index)).flatten()
    }
    fn item_name(&self, index: usize) -> Option<String> {
        (index < self.len).then(|| self.inner.item_name(self.start + index)).flatten()
    }
    fn num_classes(&self) -> Option<usize> {
        self.inner.num_classes()
    }
}
