//! Two-domain shapes: a procedural unpaired-translation set with a hidden ground-truth correspondence
//! (no download), so translation quality (L1/PSNR against the true counterpart) can be measured.
//!
//! A scene — 1 or 2 shapes (circle, square, triangle), each with a centre, a radius and a colour from a
//! 6-colour palette — is a pure function of `(seed, split, index)`. Domain A draws it as flat filled
//! shapes on a light-grey background. Domain B draws the *same* scene with the same silhouettes, but on
//! a dark background, each fill colour mapped through a fixed palette permutation ([`B_COLOUR_OF`]), and
//! with a thick near-white rim along the inside of every shape's edge. So the foreground masks of A and B
//! are identical and every pixel's B value is fixed by the scene: A → B must learn the colour map and
//! the rim, B → A must erase the rim and undo the colour map. No anti-aliasing: edges are exact, which
//! keeps the masks comparable and the rendering fast.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::loader::{Dataset, Example};
use crate::rng::derived_rng;
use crate::unpaired::Split;

/// The palette of fill colours (RGB in [0, 1]): red, green, blue, yellow, magenta, cyan.
pub const PALETTE: [[f32; 3]; 6] =
    [[0.9, 0.1, 0.1], [0.1, 0.75, 0.2], [0.15, 0.3, 0.95], [0.95, 0.85, 0.1], [0.85, 0.2, 0.8], [0.1, 0.8, 0.85]];
/// Domain B's fill for palette colour `k` is `PALETTE[B_COLOUR_OF[k]]` (a fixed permutation, no fixed point).
pub const B_COLOUR_OF: [usize; 6] = [5, 3, 4, 2, 0, 1];
/// Domain A's background (light grey).
pub const BG_A: [f32; 3] = [0.82, 0.82, 0.82];
/// Domain B's background (dark navy).
pub const BG_B: [f32; 3] = [0.08, 0.08, 0.16];
/// Domain B's rim colour (near white).
pub const RIM_B: [f32; 3] = [0.97, 0.97, 0.97];

/// Shape kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Circle,
    Square,
    Triangle,
}

/// One shape of a scene; lengths in pixels, centre in pixel coordinates (pixel `(x, y)` covers
/// `[x, x+1) × [y, y+1)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    pub kind: Kind,
    pub cx: f32,
    pub cy: f32,
    /// Circle radius; half the side of a square; circumradius of an (upward) equilateral triangle.
    pub r: f32,
    /// Index into [`PALETTE`].
    pub colour: usize,
}

impl Shape {
    /// Signed distance (pixels, positive inside) from the point to the shape's edge; for the square and
    /// triangle the smallest distance to an edge's line, which is exact inside and what the rim needs.
    pub(crate) fn inside_distance(&self, px: f32, py: f32) -> f32 {
        let (dx, dy) = (px - self.cx, py - self.cy);
        match self.kind {
            Kind::Circle => self.r - (dx * dx + dy * dy).sqrt(),
            Kind::Square => self.r - dx.abs().max(dy.abs()),
            Kind::Triangle => {
                // Equilateral, apex up, centroid at (cx, cy): inradius r/2; edge normals at -90°, 30°, 150°
                // (y grows downward, so the apex is at -y).
                let ir = 0.5 * self.r;
                let (s, c) = (0.5f32, 0.866_025_4f32);
                let d_base = ir - dy; // bottom edge, outward normal (0, 1)
                let d_right = ir - (c * dx - s * dy); // outward normal (cos 30°, -sin 30°)
                let d_left = ir - (-c * dx - s * dy); // outward normal (-cos 30°, -sin 30°)
                d_base.min(d_right).min(d_left)
            }
        }
    }
}

/// Settings of a [`Shapes2`] set.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Shapes2Config {
    /// Scenes in the train split.
    #[serde(default = "n_train")]
    pub train: usize,
    /// Scenes in the test split.
    #[serde(default = "n_test")]
    pub test: usize,
    /// Side of the square images (at least 8).
    #[serde(default = "s32")]
    pub size: i64,
}

fn n_train() -> usize {
    2000
}
fn n_test() -> usize {
    200
}
fn s32() -> i64 {
    32
}

impl Default for Shapes2Config {
    fn default() -> Self {
        Shapes2Config { train: n_train(), test: n_test(), size: s32() }
    }
}

impl Shapes2Config {
    /// Opens `split` (same as [`Shapes2::open`]).
    pub fn build(&self, split: Split, paired: bool, seed: u64) -> Result<Shapes2> {
        Shapes2::open(self, split, paired, seed)
    }
}

/// The two-domain shapes dataset; item `i` is `x = [A, B]`, shape `[2, 3, size, size]` in [-1, 1], no label.
///
/// `paired = false`: A is scene `i`, B is scene `j` with `j` drawn from the item's RNG (the pairing is
/// hidden). `paired = true`: B is scene `i` too, A's true counterpart.
#[derive(Debug, Clone)]
pub struct Shapes2 {
    cfg: Shapes2Config,
    split: Split,
    paired: bool,
    seed: u64,
    n: usize,
}

impl Shapes2 {
    /// The `split` of the set under scene seed `seed` (the loader's seed only picks unpaired B indices).
    pub fn open(cfg: &Shapes2Config, split: Split, paired: bool, seed: u64) -> Result<Self> {
        if cfg.size < 8 {
            return Err(DataError::Invalid(format!("shapes2 size must be >= 8, got {}", cfg.size)));
        }
        let n = match split {
            Split::Train => cfg.train,
            Split::Test => cfg.test,
        };
        if n == 0 {
            return Err(DataError::Invalid(format!("shapes2 {split} split has 0 scenes")));
        }
        Ok(Shapes2 { cfg: cfg.clone(), split, paired, seed, n })
    }

    /// The scene of `index`: a pure function of `(seed, split, index)`.
    pub fn scene(&self, index: usize) -> Vec<Shape> {
        let mut rng = derived_rng(self.seed, &format!("shapes2/{}", self.split), index as u64);
        let s = self.cfg.size as f32;
        let count = rng.gen_range(1..=2);
        let mut shapes = Vec::with_capacity(count);
        let mut first_colour: Option<usize> = None;
        for _ in 0..count {
            let kind = match rng.gen_range(0..3) {
                0 => Kind::Circle,
                1 => Kind::Square,
                _ => Kind::Triangle,
            };
            let r = rng.gen_range(0.14 * s..0.28 * s);
            let cx = rng.gen_range(r..s - r);
            let cy = rng.gen_range(r..s - r);
            // Two shapes get different colours, so an overlap stays legible in both domains.
            let colour = match first_colour {
                None => rng.gen_range(0..PALETTE.len()),
                Some(f) => {
                    let c = rng.gen_range(0..PALETTE.len() - 1);
                    if c >= f {
                        c + 1
                    } else {
                        c
                    }
                }
            };
            first_colour.get_or_insert(colour);
            shapes.push(Shape { kind, cx, cy, r, colour });
        }
        shapes
    }

    /// Domain-A image of scene `index`: CHW, [-1, 1].
    pub fn render_a(&self, index: usize) -> Vec<f32> {
        render(&self.scene(index), self.cfg.size as usize, false)
    }

    /// Domain-B image of scene `index` (A's true counterpart): CHW, [-1, 1].
    pub fn render_b(&self, index: usize) -> Vec<f32> {
        render(&self.scene(index), self.cfg.size as usize, true)
    }

    /// Whether items pair each A with its true B.
    pub fn paired(&self) -> bool {
        self.paired
    }

    /// The settings it was opened with.
    pub fn config(&self) -> &Shapes2Config {
        &self.cfg
    }
}

/// Rim width of domain B in pixels: about 1/12 of the image side, at least 1.5.
fn rim_width(size: usize) -> f32 {
    (size as f32 / 12.0).max(1.5)
}

/// Draws `shapes` (later ones on top) at `size`², in style A or B; CHW in [-1, 1].
fn render(shapes: &[Shape], size: usize, style_b: bool) -> Vec<f32> {
    let bg = if style_b { BG_B } else { BG_A };
    let rim = rim_width(size);
    let plane = size * size;
    let mut out = vec![0f32; 3 * plane];
    for y in 0..size {
        for x in 0..size {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let mut col = bg;
            for sh in shapes {
                let d = sh.inside_distance(px, py);
                if d >= 0.0 {
                    col = if !style_b {
                        PALETTE[sh.colour]
                    } else if d < rim {
                        RIM_B
                    } else {
                        PALETTE[B_COLOUR_OF[sh.colour]]
                    };
                }
            }
            for ch in 0..3 {
                out[ch * plane + y * size + x] = col[ch] * 2.0 - 1.0;
            }
        }
    }
    out
}

impl Dataset for Shapes2 {
    fn len(&self) -> usize {
        self.n
    }

    /// RNG use: one draw, the B scene index (unpaired only).
    fn get(&self, index: usize, rng: &mut ChaCha8Rng) -> Result<Example> {
        if index >= self.n {
            return Err(DataError::Invalid(format!(
                "index {index} out of range for shapes2 {} ({} scenes)",
                self.split, self.n
            )));
        }
        let j = if self.paired { index } else { rng.gen_range(0..self.n) };
        let mut x = self.render_a(index);
        x.extend_from_slice(&self.render_b(j));
        let s = self.cfg.size;
        Ok(Example { x, shape: vec![2, 3, s, s], label: None })
    }

    fn shape(&self) -> Vec<i64> {
        vec![2, 3, self.cfg.size, self.cfg.size]
    }

    fn domain_len(&self, d: usize) -> Option<usize> {
        (d < 2).then_some(self.n)
    }

    fn domain_image(&self, d: usize, index: usize, _rng: &mut ChaCha8Rng) -> Result<Example> {
        if d > 1 || index >= self.n {
            return Err(DataError::Invalid(format!(
                "domain {d} image {index}: shapes2 {} has domains 0 and 1 of {} scenes",
                self.split, self.n
            )));
        }
        let x = if d == 0 { self.render_a(index) } else { self.render_b(index) };
        let s = self.cfg.size;
        Ok(Example { x, shape: vec![3, s, s], label: None })
    }
}
