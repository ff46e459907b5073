//! Procedural sets that need no download: the 2-D ring of 8 Gaussians and the 5×5 grid used as
//! mode-collapse benchmarks (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018), a 1-D Gaussian
//! (Goodfellow et al. 2014, Fig. 1), their mode-coverage metric, and `Dataset` wrappers.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::loader::{Dataset, Example};

/// A 2-D mixture of equally weighted isotropic Gaussians.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Toy2d {
    /// 8 modes evenly spaced on a circle of radius 2 (first mode at angle 0, counter-clockwise).
    Ring8,
    /// 25 modes on the grid {-4, -2, 0, 2, 4}², row-major in (x, y): x outer, y inner.
    Grid25,
}

impl Toy2d {
    /// The mode centres, in a fixed order (the order of `ModeReport::per_mode`).
    pub fn centers(&self) -> Vec<[f64; 2]> {
        match self {
            Toy2d::Ring8 => (0..8)
                .map(|k| {
                    let a = 2.0 * std::f64::consts::PI * k as f64 / 8.0;
                    [2.0 * a.cos(), 2.0 * a.sin()]
                })
                .collect(),
            Toy2d::Grid25 => {
                let mut c = Vec::with_capacity(25);
                for i in -2..=2 {
                    for j in -2..=2 {
                        c.push([2.0 * i as f64, 2.0 * j as f64]);
                    }
                }
                c
            }
        }
    }

    /// Per-coordinate standard deviation of each mode in the benchmark protocol: ring8 0.02
    /// (VEEGAN), grid25 0.05 (PacGAN).
    pub fn default_std(&self) -> f64 {
        match self {
            Toy2d::Ring8 => 0.02,
            Toy2d::Grid25 => 0.05,
        }
    }

    /// Draws `n` points: a mode chosen uniformly, plus N(0, std²) noise on each coordinate.
    /// A negative `std` is used as its absolute value.
    pub fn sample(&self, n: usize, std: f64, rng: &mut ChaCha8Rng) -> Vec<[f32; 2]> {
        let centers = self.centers();
        (0..n).map(|_| sample_mixture(&centers, std, rng)).collect()
    }

    /// Mode-coverage report of `samples` against this set at its default std.
    pub fn report(&self, samples: &[[f32; 2]]) -> ModeReport {
        mode_report(&self.centers(), self.default_std(), samples)
    }
}

fn sample_mixture(centers: &[[f64; 2]], std: f64, rng: &mut ChaCha8Rng) -> [f32; 2] {
    let c = centers[rng.gen_range(0..centers.len())];
    let nx: f64 = StandardNormal.sample(rng);
    let ny: f64 = StandardNormal.sample(rng);
    [(c[0] + std.abs() * nx) as f32, (c[1] + std.abs() * ny) as f32]
}

/// Mode coverage and sample quality of 2-D samples (the VEEGAN / PacGAN protocol).
///
/// Exactly what is computed: each sample is assigned to its nearest centre (Euclidean; ties go to the
/// lower index). It is *high quality* if that distance is at most `3 * std`. `per_mode[j]` counts the
/// high-quality samples assigned to mode `j`. A mode is *covered* if `per_mode[j] >= 1` (VEEGAN and
/// PacGAN count a mode as captured with at least one high-quality sample; use
/// [`ModeReport::modes_with_at_least`] for a stricter threshold). Non-finite samples are never high quality.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModeReport {
    pub modes: usize,
    pub modes_covered: usize,
    pub high_quality: usize,
    pub total: usize,
    /// `high_quality / total`, 0 when there are no samples.
    pub high_quality_fraction: f64,
    pub per_mode: Vec<usize>,
}

impl ModeReport {
    /// Number of modes with at least `k` high-quality samples.
    pub fn modes_with_at_least(&self, k: usize) -> usize {
        self.per_mode.iter().filter(|&&c| c >= k).count()
    }
}

/// Computes a [`ModeReport`]; see its documentation for the exact definitions.
pub fn mode_report(centers: &[[f64; 2]], std: f64, samples: &[[f32; 2]]) -> ModeReport {
    let mut per_mode = vec![0usize; centers.len()];
    let radius = 3.0 * std.abs();
    for s in samples {
        let (x, y) = (f64::from(s[0]), f64::from(s[1]));
        if !x.is_finite() || !y.is_finite() {
            continue;
        }
        let mut best: Option<(usize, f64)> = None;
        for (j, c) in centers.iter().enumerate() {
            let d = ((x - c[0]).powi(2) + (y - c[1]).powi(2)).sqrt();
            if !matches!(best, Some((_, bd)) if bd <= d) {
                best = Some((j, d));
            }
        }
        if let Some((j, d)) = best {
            if d <= radius {
                per_mode[j] += 1;
            }
        }
    }
    let high_quality: usize = per_mode.iter().sum();
    let total = samples.len();
    ModeReport {
        modes: centers.len(),
        modes_covered: per_mode.iter().filter(|&&c| c > 0).count(),
        high_quality,
        total,
        high_quality_fraction: if total == 0 { 0.0 } else { high_quality as f64 / total as f64 },
        per_mode,
    }
}

/// A 1-D Gaussian N(mean, std²), the target of the original GAN's 1-D illustration.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Gaussian1d {
    pub mean: f64,
    pub std: f64,
}

impl Default for Gaussian1d {
    fn default() -> Self {
        Gaussian1d { mean: 4.0, std: 0.5 }
    }
}

impl Gaussian1d {
    /// Probability density at `x` (0 for a non-positive std).
    pub fn pdf(&self, x: f64) -> f64 {
        if self.std <= 0.0 {
            return 0.0;
        }
        let z = (x - self.mean) / self.std;
        (-0.5 * z * z).exp() / (self.std * (2.0 * std::f64::consts::PI).sqrt())
    }

    /// Draws `n` values.
    pub fn sample(&self, n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let z: f64 = StandardNormal.sample(rng);
                (self.mean + self.std.abs() * z) as f32
            })
            .collect()
    }
}

/// A `Dataset` of `len` fresh 2-D points per epoch: item `i` is drawn from the RNG the loader passes,
/// so it is pure in (seed, epoch, i). Shape `[2]`, no label.
#[derive(Debug, Clone, PartialEq)]
pub struct Toy2dDataset {
    pub kind: Toy2d,
    pub std: f64,
    pub len: usize,
    centers: Vec<[f64; 2]>,
}

impl Toy2dDataset {
    /// `len` items per epoch at the given std.
    pub fn new(kind: Toy2d, std: f64, len: usize) -> Result<Self> {
        if !std.is_finite() || std < 0.0 {
            return Err(DataError::Invalid(format!("toy std must be finite and >= 0, got {std}")));
        }
        Ok(Toy2dDataset { kind, std, len, centers: kind.centers() })
    }
}

impl Dataset for Toy2dDataset {
    fn len(&self) -> usize {
        self.len
    }
    fn get(&self, index: usize, rng: &mut ChaCha8Rng) -> Result<Example> {
        if index >= self.len {
            return Err(DataError::Invalid(format!("index {index} out of range (len {})", self.len)));
        }
        let p = sample_mixture(&self.centers, self.std, rng);
        Ok(Example { x: p.to_vec(), shape: vec![2], label: None })
    }
    fn shape(&self) -> Vec<i64> {
        vec![2]
    }
}

/// A `Dataset` of `len` fresh 1-D Gaussian values per epoch. Shape `[1]`, no label.
#[derive(Debug, Clone, PartialEq)]
pub struct Gaussian1dDataset {
    pub dist: Gaussian1d,
    pub len: usize,
}

impl Dataset for Gaussian1dDataset {
    fn len(&self) -> usize {
        self.len
    }
    fn get(&self, index: usize, rng: &mut ChaCha8Rng) -> Result<Example> {
        if index >= self.len {
            return Err(DataError::Invalid(format!("index {index} out of range (len {})", self.len)));
        }
        Ok(Example { x: self.dist.sample(1, rng), shape: vec![1], label: None })
    }
    fn shape(&self) -> Vec<i64> {
        vec![1]
    }
}
