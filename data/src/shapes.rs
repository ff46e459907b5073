//! Captioned shapes: the procedural text-to-image quickstart set (no download). Each image shows one
//! shape with exact attributes — kind, colour, size, background — and comes with several captions
//! ("a small red circle on a blue background"), plus held-out phrasings built only from words no
//! training caption uses ("a tiny scarlet disc against navy"), to measure whether a pretrained text
//! encoder lets a generator follow prompts it never saw.
//!
//! Every item is a pure function of `(seed, split, index)`: the attribute order is a seeded shuffle of
//! [`ShapeAttrs::all`] repeated block by block (so every combination is equally frequent), and the
//! position and scale jitter come from `derived_rng(seed, "shapes/{split}", index)`, never from the
//! loader's RNG, so a split is a fixed set of images. Edges are anti-aliased by pixel coverage
//! estimated from the signed distance to the shape's edge (the distance function of [`crate::shapes2`]).

use std::collections::HashMap;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::loader::{Dataset, Example};
use crate::rng::derived_rng;
use crate::shapes2::{Kind, Shape};
use crate::unpaired::Split;

/// Shape kinds, as named in training captions.
pub const SHAPES: [&str; 3] = ["circle", "square", "triangle"];
/// Object colours, as named in training captions.
pub const COLOURS: [&str; 5] = ["red", "green", "blue", "yellow", "purple"];
/// Sizes, as named in training captions.
pub const SIZES: [&str; 2] = ["small", "large"];
/// Background colours, as named in training captions.
pub const BACKGROUNDS: [&str; 4] = ["black", "white", "gray", "blue"];

/// Object colours in RGB, [0, 1], indexed like [`COLOURS`].
pub const COLOUR_RGB: [[f32; 3]; 5] =
    [[0.90, 0.12, 0.10], [0.12, 0.72, 0.20], [0.15, 0.30, 0.95], [0.96, 0.86, 0.12], [0.62, 0.18, 0.80]];
/// Background colours in RGB, [0, 1], indexed like [`BACKGROUNDS`].
pub const BACKGROUND_RGB: [[f32; 3]; 4] =
    [[0.04, 0.04, 0.04], [0.96, 0.96, 0.96], [0.50, 0.50, 0.50], [0.10, 0.20, 0.62]];

/// Held-out synonyms of [`SHAPES`] (two per kind), used only by [`ShapeAttrs::unseen_captions`].
pub const UNSEEN_SHAPES: [[&str; 2]; 3] =
    [["disc", "round shape"], ["box", "block"], ["triangular shape", "three-sided shape"]];
/// Held-out synonyms of [`COLOURS`].
pub const UNSEEN_COLOURS: [[&str; 2]; 5] =
    [["crimson", "scarlet"], ["emerald", "jade"], ["azure", "cobalt"], ["golden", "amber"], ["violet", "lilac"]];
/// Held-out synonyms of [`SIZES`].
pub const UNSEEN_SIZES: [[&str; 2]; 2] = [["tiny", "little"], ["big", "huge"]];
/// Held-out synonyms of [`BACKGROUNDS`].
pub const UNSEEN_BACKGROUNDS: [[&str; 2]; 4] =
    [["ebony", "jet"], ["snowy", "ivory"], ["grey", "slate"], ["navy", "sapphire"]];

/// Base radius as a fraction of the image side, for [`SIZES`] (before the ±8% scale jitter).
pub const BASE_RADIUS: [f32; 2] = [0.16, 0.34];
/// Relative scale jitter: the radius is multiplied by a uniform draw from `1 ± SCALE_JITTER`.
pub const SCALE_JITTER: f32 = 0.08;

/// The attributes of one image: indices into [`SHAPES`], [`COLOURS`], [`SIZES`], [`BACKGROUNDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShapeAttrs {
    /// Index into [`SHAPES`].
    pub shape: usize,
    /// Index into [`COLOURS`].
    pub colour: usize,
    /// Index into [`SIZES`].
    pub size: usize,
    /// Index into [`BACKGROUNDS`].
    pub background: usize,
}

impl ShapeAttrs {
    /// Classes per attribute, in the order shape, colour, size, background.
    pub const HEADS: [usize; 4] = [3, 5, 2, 4];
    /// Attribute names, in the order of [`ShapeAttrs::HEADS`].
    pub const NAMES: [&'static str; 4] = ["shape", "colour", "size", "background"];

    /// Every valid combination, in a fixed order (shape, then colour, size, background; the last varies
    /// fastest), leaving out those whose background is the object's colour (a blue object on blue):
    /// 3·5·2·4 − 3·2 = 114.
    pub fn all() -> Vec<ShapeAttrs> {
        let mut out = Vec::new();
        for shape in 0..SHAPES.len() {
            for colour in 0..COLOURS.len() {
                for size in 0..SIZES.len() {
                    for background in 0..BACKGROUNDS.len() {
                        let a = ShapeAttrs { shape, colour, size, background };
                        if a.is_valid() {
                            out.push(a);
                        }
                    }
                }
            }
        }
        out
    }

    /// True if every index is in range and the background is not named like the object colour.
    pub fn is_valid(&self) -> bool {
        self.shape < SHAPES.len()
            && self.colour < COLOURS.len()
            && self.size < SIZES.len()
            && self.background < BACKGROUNDS.len()
            && COLOURS[self.colour] != BACKGROUNDS[self.background]
    }

    /// `[shape, colour, size, background]`, the order of [`ShapeAttrs::HEADS`].
    pub fn as_array(&self) -> [usize; 4] {
        [self.shape, self.colour, self.size, self.background]
    }

    /// The inverse of [`ShapeAttrs::as_array`]; `None` if an index is out of range or the combination
    /// is invalid.
    pub fn from_array(a: [usize; 4]) -> Option<ShapeAttrs> {
        let attrs = ShapeAttrs { shape: a[0], colour: a[1], size: a[2], background: a[3] };
        attrs.is_valid().then_some(attrs)
    }

    /// The training phrasings (6 templates), each naming all four attributes with the words of
    /// [`SHAPES`], [`COLOURS`], [`SIZES`], [`BACKGROUNDS`]:
    ///
    /// 1. "a small red circle on a blue background"
    /// 2. "small red circle, blue background"
    /// 3. "there is a small circle in red on a blue background"
    /// 4. "a blue background with a small red circle"
    /// 5. "a red circle that is small, on blue"
    /// 6. "the small circle is red and the background is blue"
    pub fn captions(&self) -> Vec<String> {
        let (s, c, z, b) = (SHAPES[self.shape], COLOURS[self.colour], SIZES[self.size], BACKGROUNDS[self.background]);
        vec![
            format!("a {z} {c} {s} on a {b} background"),
            format!("{z} {c} {s}, {b} background"),
            format!("there is a {z} {s} in {c} on a {b} background"),
            format!("a {b} background with a {z} {c} {s}"),
            format!("a {c} {s} that is {z}, on {b}"),
            format!("the {z} {s} is {c} and the background is {b}"),
        ]
    }

    /// Held-out phrasings: every attribute named by a synonym from [`UNSEEN_SHAPES`], [`UNSEEN_COLOURS`],
    /// [`UNSEEN_SIZES`], [`UNSEEN_BACKGROUNDS`] (none of whose words occurs in any training caption), in
    /// sentence structures the training captions do not use. The only word shared with the training
    /// captions is the article "a". Four phrasings:
    ///
    /// 1. "a tiny crimson disc against navy"
    /// 2. "sapphire backdrop, little scarlet round shape"
    /// 3. "one tiny round shape coloured crimson, set against navy"
    /// 4. "picture of a little scarlet disc over sapphire"
    pub fn unseen_captions(&self) -> Vec<String> {
        let s = UNSEEN_SHAPES[self.shape];
        let c = UNSEEN_COLOURS[self.colour];
        let z = UNSEEN_SIZES[self.size];
        let b = UNSEEN_BACKGROUNDS[self.background];
        vec![
            format!("a {} {} {} against {}", z[0], c[0], s[0], b[0]),
            format!("{} backdrop, {} {} {}", b[1], z[1], c[1], s[1]),
            format!("one {} {} coloured {}, set against {}", z[0], s[1], c[0], b[0]),
            format!("picture of a {} {} {} over {}", z[1], c[1], s[0], b[1]),
        ]
    }
}

/// Every training caption of every valid combination (6 × 114), in [`ShapeAttrs::all`] order: the
/// corpus a caption tokenizer is trained on (the same for both splits).
pub fn training_captions() -> Vec<String> {
    ShapeAttrs::all().iter().flat_map(|a| a.captions()).collect()
}

/// Where a shape is drawn: centre in pixel coordinates (pixel `(x, y)` covers `[x, x+1) × [y, y+1)`)
/// and radius in pixels (circle radius; half the side of a square; circumradius of a triangle).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub cx: f32,
    pub cy: f32,
    pub r: f32,
}

/// Radius factor per kind, so the three kinds cover similar areas at the same size (the triangle, being
/// thinner, gets a larger circumradius): circle 1, square half-side 0.9, triangle circumradius 1.35.
const KIND_FACTOR: [f32; 3] = [1.0, 0.9, 1.35];

fn kind_of(shape: usize) -> Kind {
    match shape {
        0 => Kind::Circle,
        1 => Kind::Square,
        _ => Kind::Triangle,
    }
}

/// Draws the scale and position of `a` in a `size`² image from `rng` (two draws: scale, then centre).
///
/// Radius `BASE_RADIUS[size] · KIND_FACTOR[shape] · U(0.92, 1.08) · size`; the centre is uniform over the
/// positions that keep the whole shape at least `0.02 · size` from the border.
pub fn place(a: &ShapeAttrs, size: usize, rng: &mut ChaCha8Rng) -> Placement {
    let s = size as f32;
    let size_idx = a.size.min(SIZES.len() - 1);
    let shape_idx = a.shape.min(SHAPES.len() - 1);
    let jitter = rng.gen_range(1.0 - SCALE_JITTER..=1.0 + SCALE_JITTER);
    let r = BASE_RADIUS[size_idx] * KIND_FACTOR[shape_idx] * jitter * s;
    // Half-width, extent above and below the centre.
    let (hw, up, down) = match kind_of(shape_idx) {
        Kind::Circle | Kind::Square => (r, r, r),
        Kind::Triangle => (0.866_025_4 * r, r, 0.5 * r),
    };
    let m = 0.02 * s;
    let range = |lo: f32, hi: f32, rng: &mut ChaCha8Rng| {
        if lo < hi {
            rng.gen_range(lo..hi)
        } else {
            0.5 * (lo + hi)
        }
    };
    let cx = range(hw + m, s - hw - m, rng);
    let cy = range(up + m, s - down - m, rng);
    Placement { cx, cy, r }
}

/// Renders `a` at placement `p` into a `3 × size × size` CHW image in [-1, 1]; the edge pixels blend
/// object and background by coverage `clamp(d + 0.5, 0, 1)`, `d` the signed distance (pixels) from the
/// pixel centre to the edge.
pub fn render_placed(a: &ShapeAttrs, p: &Placement, size: usize) -> Vec<f32> {
    let fg = COLOUR_RGB[a.colour.min(COLOURS.len() - 1)];
    let bg = BACKGROUND_RGB[a.background.min(BACKGROUNDS.len() - 1)];
    let shape = Shape { kind: kind_of(a.shape), cx: p.cx, cy: p.cy, r: p.r, colour: 0 };
    let plane = size * size;
    let mut out = vec![0f32; 3 * plane];
    for y in 0..size {
        for x in 0..size {
            let d = shape.inside_distance(x as f32 + 0.5, y as f32 + 0.5);
            let alpha = (d + 0.5).clamp(0.0, 1.0);
            for ch in 0..3 {
                let v = bg[ch] + alpha * (fg[ch] - bg[ch]);
                out[ch * plane + y * size + x] = v * 2.0 - 1.0;
            }
        }
    }
    out
}

/// Renders `a` as a `3 × size × size` CHW image in [-1, 1], with position and scale jitter drawn from
/// `rng` ([`place`] then [`render_placed`]).
pub fn render(a: &ShapeAttrs, size: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let p = place(a, size, rng);
    render_placed(a, &p, size)
}

/// Settings of the captioned-shapes set (the `data` section of a text-to-image config).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShapesConfig {
    /// Side of the square images, 16..=1024.
    #[serde(default = "default_size")]
    pub size: i64,
    /// Images in the train split.
    #[serde(default = "default_train_count")]
    pub train_count: usize,
    /// Images in the test split.
    #[serde(default = "default_test_count")]
    pub test_count: usize,
}

fn default_size() -> i64 {
    64
}
fn default_train_count() -> usize {
    12_000
}
fn default_test_count() -> usize {
    1_200
}

impl Default for ShapesConfig {
    fn default() -> Self {
        ShapesConfig { size: default_size(), train_count: default_train_count(), test_count: default_test_count() }
    }
}

impl ShapesConfig {
    /// Opens `split` (same as [`CaptionedShapes::open`]).
    pub fn build(&self, split: Split, seed: u64) -> Result<CaptionedShapes> {
        CaptionedShapes::open(self, split, seed)
    }
}

/// The captioned-shapes dataset: item `i` is `x` of shape `[3, size, size]` in [-1, 1] with
/// `label = Some(i)` (look the captions and attributes up by index).
#[derive(Debug, Clone)]
pub struct CaptionedShapes {
    cfg: ShapesConfig,
    split: Split,
    seed: u64,
    /// Index into `combos` of every item.
    order: Vec<u16>,
    combos: Vec<ShapeAttrs>,
}

impl CaptionedShapes {
    /// The `split` of the set under `seed`. Errors name the key: `data.size` outside 16..=1024,
    /// `data.train_count` / `data.test_count` equal to 0 (for the split opened).
    pub fn open(cfg: &ShapesConfig, split: Split, seed: u64) -> Result<Self> {
        if !(16..=1024).contains(&cfg.size) {
            return Err(DataError::Invalid(format!("data.size must be in 16..=1024, got {}", cfg.size)));
        }
        let (n, key) = match split {
            Split::Train => (cfg.train_count, "data.train_count"),
            Split::Test => (cfg.test_count, "data.test_count"),
        };
        if n == 0 {
            return Err(DataError::Invalid(format!("{key} must be at least 1, got 0")));
        }
        let combos = ShapeAttrs::all();
        let k = combos.len();
        // Block b of k items is a fresh seeded permutation of all combinations.
        let mut order = Vec::with_capacity(n);
        let mut block: Vec<u16> = (0..k as u16).collect();
        for b in 0..n.div_ceil(k) {
            block.sort_unstable();
            block.shuffle(&mut derived_rng(seed, &format!("shapes/{split}/order"), b as u64));
            order.extend(block.iter().take(n - b * k));
        }
        Ok(CaptionedShapes { cfg: cfg.clone(), split, seed, order, combos })
    }

    /// The attributes of item `index`. Over any `114·m` consecutive items starting at a multiple of 114,
    /// every combination of [`ShapeAttrs::all`] appears exactly `m` times. Out-of-range indices wrap.
    pub fn attrs(&self, index: usize) -> ShapeAttrs {
        self.combos[usize::from(self.order[index % self.order.len()])]
    }

    /// The training captions of item `index` ([`ShapeAttrs::captions`]).
    pub fn captions(&self, index: usize) -> Vec<String> {
        self.attrs(index).captions()
    }

    /// Number of items per combination, keyed by combination (for checks and reports).
    pub fn combination_counts(&self) -> HashMap<ShapeAttrs, usize> {
        let mut counts = HashMap::new();
        for i in 0..self.order.len() {
            *counts.entry(self.attrs(i)).or_insert(0) += 1;
        }
        counts
    }

    /// Where item `index`'s shape is drawn (the same draws [`Dataset::get`] uses).
    pub fn placement(&self, index: usize) -> Placement {
        place(&self.attrs(index), self.cfg.size as usize, &mut self.item_rng(index))
    }

    /// The image of item `index`: CHW, [-1, 1].
    pub fn image(&self, index: usize) -> Vec<f32> {
        render(&self.attrs(index), self.cfg.size as usize, &mut self.item_rng(index))
    }

    /// The split it was opened for.
    pub fn split(&self) -> Split {
        self.split
    }

    /// The settings it was opened with.
    pub fn config(&self) -> &ShapesConfig {
        &self.cfg
    }

    fn item_rng(&self, index: usize) -> ChaCha8Rng {
        derived_rng(self.seed, &format!("shapes/{}", self.split), index as u64)
    }
}

impl Dataset for CaptionedShapes {
    fn len(&self) -> usize {
        self.order.len()
    }

    /// Does not use `rng`: the jitter comes from `(seed, split, index)`, so the split is a fixed set.
    fn get(&self, index: usize, _rng: &mut ChaCha8Rng) -> Result<Example> {
        if index >= self.order.len() {
            return Err(DataError::Invalid(format!(
                "index {index} out of range for captioned shapes {} ({} images)",
                self.split,
                self.order.len()
            )));
        }
        let s = self.cfg.size;
        Ok(Example { x: self.image(index), shape: vec![3, s, s], label: Some(index as i64) })
    }

    fn shape(&self) -> Vec<i64> {
        vec![3, self.cfg.size, self.cfg.size]
    }

    fn captions(&self, index: usize) -> Option<Vec<String>> {
        (index < self.order.len()).then(|| CaptionedShapes::captions(self, index))
    }
}
