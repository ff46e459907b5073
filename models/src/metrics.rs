//! Sample-quality metrics on feature sets (rows = images, e.g. Inception-v3 pool3 features): FID, KID,
//! improved precision/recall and density/coverage. Pure tensor math in float64 on the CPU; every input is
//! checked (shape, width, count, finiteness) and a metric that is undefined is an error, never a NaN.
//!
//! Pairwise distances are computed in row blocks of at most [`BLOCK_ELEMENTS`] values, so 10,000 × 10,000
//! samples of width 2048 need a few hundred MB. `models/golden/metrics_golden.py` writes the references of
//! `models/tests/metrics.rs` (NumPy/SciPy, pytorch-fid's FID, torch-fidelity's KID, the PRDC definitions).

use rand::seq::index;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use crate::error::{ModelError, Result};

/// Largest feature width accepted (Inception pool3 has 2048): bounds the F × F covariances before they exist.
pub const MAX_FEATURE_DIM: usize = 16_384;

/// Values of one block of the pairwise distance matrix (32 MB of f64).
pub const BLOCK_ELEMENTS: usize = 1 << 22;

/// The ε·I that pytorch-fid adds to both covariances when the square root of their product is not finite.
pub const FID_EPS: f64 = 1e-6;

fn shape_err(msg: String) -> ModelError {
    ModelError::Shape(msg)
}

fn all_finite(t: &Tensor) -> bool {
    t.isfinite().all().int64_value(&[]) != 0
}

/// `x` as a (N, F) f64 CPU tensor after the checks every metric needs: 2-D, at least `min_rows` rows, a
/// width in 1..=MAX_FEATURE_DIM, finite values. `what` names the set in errors.
fn features(x: &Tensor, what: &str, min_rows: usize) -> Result<Tensor> {
    let size = x.size();
    let [n, f] = size[..] else {
        return Err(shape_err(format!("{what} features must be 2-D (N, F), got shape {size:?}")));
    };
    if n == 0 {
        return Err(shape_err(format!("{what} features are empty (shape {size:?})")));
    }
    if (n as usize) < min_rows {
        return Err(shape_err(format!("{what} features have {n} rows; this metric needs at least {min_rows}")));
    }
    if f < 1 || f as usize > MAX_FEATURE_DIM {
        return Err(shape_err(format!("{what} features have width {f}; it must be in 1..={MAX_FEATURE_DIM}")));
    }
    if !x.is_floating_point() {
        return Err(shape_err(format!("{what} features have kind {:?}; a float kind is needed", x.kind())));
    }
    let x = x.detach().to_device(Device::Cpu).to_kind(Kind::Double);
    if !all_finite(&x) {
        return Err(shape_err(format!("{what} features hold NaN or infinite values")));
    }
    Ok(x)
}

/// Both sets checked by [`features`] and of one width.
fn feature_pair(real: &Tensor, fake: &Tensor, min_rows: usize) -> Result<(Tensor, Tensor)> {
    let (r, f) = (features(real, "real", min_rows)?, features(fake, "fake", min_rows)?);
    if r.size()[1] != f.size()[1] {
        return Err(shape_err(format!(
            "real and fake features differ in width: {:?} and {:?}",
            r.size(),
            f.size()
        )));
    }
    Ok((r, f))
}

/// The mean (F,) and unbiased covariance (F, F) of features (N, F), as `np.mean(x, axis=0)` and
/// `np.cov(x, rowvar=False)`: the Gaussian that FID fits to a set (Heusel et al. 2017, sec. 3). Both f64 on
/// the CPU. Errors: not 2-D, fewer than 2 rows (the covariance of one image is undefined), a width over
/// [`MAX_FEATURE_DIM`], non-finite values.
pub fn gaussian_stats(features_nf: &Tensor) -> Result<(Tensor, Tensor)> {
    let x = features(features_nf, "the", 2)?; // (N, F)
    let n = x.size()[0];
    let mu = x.mean_dim(0, false, Kind::Double); // (F,)
    let c = &x - &mu; // (N, F)
    let sigma = c.transpose(0, 1).matmul(&c) / (n - 1) as f64; // (F, F)
    Ok((mu, sigma))
}

/// Checks a (mu, sigma) pair and returns them as f64 CPU tensors, sigma symmetrized.
fn gaussian(mu: &Tensor, sigma: &Tensor, what: &str) -> Result<(Tensor, Tensor)> {
    let (sm, ss) = (mu.size(), sigma.size());
    if sm.len() != 1 || ss.len() != 2 || ss[0] != sm[0] || ss[1] != sm[0] {
        return Err(shape_err(format!("{what}: need mu (F,) and sigma (F, F), got {sm:?} and {ss:?}")));
    }
    if sm[0] < 1 || sm[0] as usize > MAX_FEATURE_DIM {
        return Err(shape_err(format!("{what}: width {} is outside 1..={MAX_FEATURE_DIM}", sm[0])));
    }
    let mu = mu.detach().to_device(Device::Cpu).to_kind(Kind::Double);
    let sigma = sigma.detach().to_device(Device::Cpu).to_kind(Kind::Double);
    if !all_finite(&mu) || !all_finite(&sigma) {
        return Err(shape_err(format!("{what}: mu or sigma holds NaN or infinite values")));
    }
    let sigma = (&sigma + sigma.transpose(0, 1)) / 2.0; // (F, F), symmetric up to rounding in the input
    Ok((mu, sigma))
}

/// Tr((Σ₁ Σ₂)^½) = Σᵢ √λᵢ(Σ₁ Σ₂) without complex square roots: for any A with Σ₁ = A Aᵀ, Σ₁ Σ₂ is similar to
/// the symmetric positive semi-definite Aᵀ Σ₂ A, whose eigenvalues a symmetric solver finds stably (those
/// below 0 from rounding count as 0). A is the Cholesky factor when Σ₁ is positive definite (the usual case,
/// more samples than features; three times faster than the alternative at F = 2048), else Σ₁^½ from a
/// symmetric eigendecomposition (fewer samples than features). None when the decompositions fail or the
/// result is not finite.
fn trace_sqrt_product(s1: &Tensor, s2: &Tensor) -> Option<f64> {
    let a = match s1.f_linalg_cholesky(false) {
        Ok(l) => l, // (F, F), lower triangular
        Err(_) => {
            let (w, v) = s1.f_linalg_eigh("L").ok()?; // (F,), (F, F)
            (&v * w.clamp_min(0.0).sqrt().unsqueeze(0)).matmul(&v.transpose(0, 1)) // Σ₁^½ (F, F)
        }
    };
    let m = a.transpose(0, 1).matmul(s2).matmul(&a); // (F, F)
    let m = (&m + m.transpose(0, 1)) / 2.0;
    let lam = m.f_linalg_eigvalsh("L").ok()?; // (F,)
    let t = lam.clamp_min(0.0).sqrt().sum(Kind::Double).double_value(&[]);
    t.is_finite().then_some(t)
}

/// The Fréchet distance between N(μ₁, Σ₁) and N(μ₂, Σ₂) (Heusel et al. 2017, eq. 2; FID on Inception
/// statistics): ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^½), in float64. The trace of the root is computed stably
/// (see `trace_sqrt_product`); should that fail, [`FID_EPS`]·I is added to both covariances and it is
/// retried, as pytorch-fid does for a singular product. Rounding can leave the distance of two equal
/// Gaussians a hair below 0; it is returned as computed. Errors: shapes other than (F,), (F, F) of one F,
/// non-finite values.
pub fn frechet_distance(mu1: &Tensor, sigma1: &Tensor, mu2: &Tensor, sigma2: &Tensor) -> Result<f64> {
    let (m1, s1) = gaussian(mu1, sigma1, "the first Gaussian")?;
    let (m2, s2) = gaussian(mu2, sigma2, "the second Gaussian")?;
    if m1.size() != m2.size() {
        return Err(shape_err(format!(
            "the Gaussians differ in width: {:?} and {:?}",
            m1.size(),
            m2.size()
        )));
    }
    let tr_sqrt = match trace_sqrt_product(&s1, &s2) {
        Some(t) => t,
        None => {
            let eye = Tensor::eye(s1.size()[0], (Kind::Double, Device::Cpu)) * FID_EPS;
            trace_sqrt_product(&(&s1 + &eye), &(&s2 + &eye)).ok_or_else(|| {
                ModelError::Config("FID: the square root of Σ₁Σ₂ is not finite even with ε·I added".into())
            })?
        }
    };
    let diff = (&m1 - &m2).square().sum(Kind::Double).double_value(&[]);
    let tr = s1.trace().double_value(&[]) + s2.trace().double_value(&[]);
    Ok(diff + tr - 2.0 * tr_sqrt)
}

/// A KID estimate: the mean and (population) standard deviation of the unbiased MMD² over `subsets`
/// subset pairs of `subset_size` rows each (the size actually used, after capping).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kid {
    pub mean: f64,
    pub std: f64,
    pub subsets: usize,
    pub subset_size: usize,
}

/// Unbiased MMD² (Gretton et al. 2012, eq. 3) between x (m, F) and y (n, F) with KID's cubic polynomial kernel
/// k(a, b) = (aᵀb / F + 1)³ (Bińkowski et al. 2018).
fn mmd2_unbiased(x: &Tensor, y: &Tensor) -> f64 {
    let d = x.size()[1] as f64;
    let kernel = |a: &Tensor, b: &Tensor| (a.matmul(&b.transpose(0, 1)) / d + 1.0).pow_tensor_scalar(3); // (·, ·)
    let off_diagonal_mean = |k: Tensor| {
        let m = k.size()[0] as f64;
        (k.sum(Kind::Double) - k.trace()).double_value(&[]) / (m * (m - 1.0))
    };
    let (m, n) = (x.size()[0] as f64, y.size()[0] as f64);
    off_diagonal_mean(kernel(x, x)) + off_diagonal_mean(kernel(y, y))
        - 2.0 * kernel(x, y).sum(Kind::Double).double_value(&[]) / (m * n)
}

/// KID on given subsets: for each `(real rows, fake rows)` pair, the unbiased MMD² of those rows; returns
/// the mean and population std (`np.std`) as torch-fidelity's `kid_features_to_metric` does. Each index list
/// needs at least 2 distinct rows in range. `subset_size` in the result is the largest subset's size.
pub fn kid_on_subsets(real: &Tensor, fake: &Tensor, subsets: &[(Vec<usize>, Vec<usize>)]) -> Result<Kid> {
    let (r, f) = feature_pair(real, fake, 2)?;
    if subsets.is_empty() {
        return Err(ModelError::Config("KID needs at least one subset".into()));
    }
    let rows = |x: &Tensor, idx: &[usize], what: &str, i: usize| -> Result<Tensor> {
        let n = x.size()[0] as usize;
        let mut sorted = idx.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != idx.len() || idx.len() < 2 || sorted.last().is_some_and(|&l| l >= n) {
            return Err(ModelError::Config(format!(
                "KID subset {i}: the {what} rows must be at least 2 distinct indices below {n}, got {} \
                 ({} distinct, largest {:?})",
                idx.len(),
                sorted.len(),
                sorted.last()
            )));
        }
        let idx: Vec<i64> = idx.iter().map(|&v| v as i64).collect();
        Ok(x.index_select(0, &Tensor::from_slice(&idx)))
    };
    let mut mmds = Vec::with_capacity(subsets.len());
    for (i, (ri, fi)) in subsets.iter().enumerate() {
        mmds.push(mmd2_unbiased(&rows(&r, ri, "real", i)?, &rows(&f, fi, "fake", i)?));
    }
    let k = mmds.len() as f64;
    let mean = mmds.iter().sum::<f64>() / k;
    let std = (mmds.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / k).sqrt();
    let subset_size = subsets.iter().map(|(a, b)| a.len().max(b.len())).max().unwrap_or(0);
    Ok(Kid { mean, std, subsets: subsets.len(), subset_size })
}

/// Kernel Inception Distance (Bińkowski et al. 2018): the unbiased MMD² with the cubic polynomial kernel,
/// averaged over `subsets` random pairs of subsets of `subset_size` rows drawn without replacement from each
/// set (torch-fidelity's defaults: 100 subsets of 1000). `subset_size` is capped at the smaller set; the
/// indices come from `rng`, so a seed fixes the estimate. Errors: no subsets, fewer than 2 rows to draw,
/// mismatched widths, empty or non-finite features.
pub fn kid(real: &Tensor, fake: &Tensor, subsets: usize, subset_size: usize, rng: &mut ChaCha8Rng) -> Result<Kid> {
    let (r, f) = feature_pair(real, fake, 2)?;
    let (nr, nf) = (r.size()[0] as usize, f.size()[0] as usize);
    let m = subset_size.min(nr).min(nf);
    if m < 2 || subsets == 0 {
        return Err(ModelError::Config(format!(
            "KID needs at least one subset of at least 2 rows, got {subsets} subsets of {m} (asked {subset_size})"
        )));
    }
    let pairs: Vec<(Vec<usize>, Vec<usize>)> =
        (0..subsets).map(|_| (index::sample(rng, nr, m).into_vec(), index::sample(rng, nf, m).into_vec())).collect();
    kid_on_subsets(&r, &f, &pairs)
}

/// Squared Euclidean distances between the rows of `a` (c, F) and `b` (n, F), given their squared norms
/// (c,) and (n,); clamped at 0 against rounding.
fn sq_dists(a: &Tensor, a_sq: &Tensor, b: &Tensor, b_sq: &Tensor) -> Tensor {
    (a_sq.unsqueeze(1) + b_sq.unsqueeze(0) - a.matmul(&b.transpose(0, 1)) * 2.0).clamp_min(0.0) // (c, n)
}

/// Runs `f(first row, block of a's rows, squared distances (c, n) to all of b)` over row blocks of `a`.
fn for_each_block(a: &Tensor, b: &Tensor, mut f: impl FnMut(i64, &Tensor)) {
    let (na, nb) = (a.size()[0], b.size()[0]);
    let (a_sq, b_sq) = (a.square().sum_dim_intlist(1, false, Kind::Double), b.square().sum_dim_intlist(1, false, Kind::Double));
    let rows = (BLOCK_ELEMENTS as i64 / nb.max(1)).max(1);
    let mut start = 0;
    while start < na {
        let len = rows.min(na - start);
        let d = sq_dists(&a.narrow(0, start, len), &a_sq.narrow(0, start, len), b, &b_sq); // (len, nb)
        f(start, &d);
        start += len;
    }
}

/// The squared distance of every row of `x` to its k-th nearest neighbour in `x`, itself excluded (the
/// (k+1)-th smallest distance, the row's own 0 included), (N,).
fn knn_radii_sq(x: &Tensor, k: usize) -> Tensor {
    let mut out = Vec::new();
    for_each_block(x, x, |_, d| out.push(d.kthvalue(k as i64 + 1, 1, false).0));
    Tensor::cat(&out, 0)
}

fn check_k(k: usize, n: usize, what: &str) -> Result<()> {
    if k == 0 || k >= n {
        return Err(ModelError::Config(format!(
            "k = {k} nearest neighbours needs 1 ≤ k < the {n} {what} samples"
        )));
    }
    Ok(())
}

fn count(mask: &Tensor) -> usize {
    mask.sum(Kind::Int64).int64_value(&[]) as usize
}

/// Improved precision and recall (Kynkäänniemi et al. 2019, eqs. 1–3), with the neighbourhood size `k`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrecisionRecall {
    /// Share of fake samples inside the real manifold.
    pub precision: f64,
    /// Share of real samples inside the fake manifold.
    pub recall: f64,
    pub k: usize,
}

/// Improved precision and recall (Kynkäänniemi et al. 2019): a set's manifold is the union of balls around
/// its samples, each with the radius of its k-th nearest neighbour in the set (itself excluded; the paper
/// and NVlabs' code use k = 3); precision is the share of fake samples inside the real manifold, recall the
/// share of real samples inside the fake one, "inside" meaning distance ≤ radius (eq. 1). Errors: k = 0 or
/// k ≥ either set's size, mismatched widths, empty or non-finite features.
pub fn precision_recall(real: &Tensor, fake: &Tensor, k: usize) -> Result<PrecisionRecall> {
    let (r, f) = feature_pair(real, fake, 1)?;
    let (nr, nf) = (r.size()[0] as usize, f.size()[0] as usize);
    check_k(k, nr, "real")?;
    check_k(k, nf, "fake")?;
    let (rr, rf) = (knn_radii_sq(&r, k), knn_radii_sq(&f, k)); // (Nr,), (Nf,)
    let mut fake_inside = Tensor::zeros([nf as i64], (Kind::Bool, Device::Cpu));
    let mut real_inside = 0;
    for_each_block(&r, &f, |start, d| {
        let radius = rr.narrow(0, start, d.size()[0]).unsqueeze(1); // (c, 1)
        fake_inside = fake_inside.logical_or(&d.le_tensor(&radius).any_dim(0, false));
        real_inside += count(&d.le_tensor(&rf.unsqueeze(0)).any_dim(1, false));
    });
    Ok(PrecisionRecall {
        precision: count(&fake_inside) as f64 / nf as f64,
        recall: real_inside as f64 / nr as f64,
        k,
    })
}

/// Density and coverage (Naeem et al. 2020, eqs. 5–6), with the neighbourhood size `k`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DensityCoverage {
    /// Mean number of real balls a fake sample lies in, divided by k (1 when fake matches real; unbounded).
    pub density: f64,
    /// Share of real samples whose ball holds at least one fake sample.
    pub coverage: f64,
    pub k: usize,
}

/// Density and coverage (Naeem et al. 2020; the paper uses k = 5), on the real samples' k-nearest-neighbour
/// balls only (so they do not inflate with fake outliers as recall does): density = 1/(kM) Σⱼ Σᵢ
/// 1[fⱼ ∈ B(rᵢ)], coverage = 1/N Σᵢ 1[∃j fⱼ ∈ B(rᵢ)], "in the ball" meaning distance < radius as in the
/// authors' code. Errors: k = 0 or k ≥ the real set's size, mismatched widths, empty or non-finite features.
pub fn density_coverage(real: &Tensor, fake: &Tensor, k: usize) -> Result<DensityCoverage> {
    let (r, f) = feature_pair(real, fake, 1)?;
    let (nr, nf) = (r.size()[0] as usize, f.size()[0] as usize);
    check_k(k, nr, "real")?;
    let rr = knn_radii_sq(&r, k); // (Nr,)
    let (mut in_balls, mut covered) = (0, 0);
    for_each_block(&r, &f, |start, d| {
        let radius = rr.narrow(0, start, d.size()[0]); // (c,)
        in_balls += count(&d.lt_tensor(&radius.unsqueeze(1)));
        covered += count(&d.min_dim(1, false).0.lt_tensor(&radius));
    });
    Ok(DensityCoverage {
        density: in_balls as f64 / (k * nf) as f64,
        coverage: covered as f64 / nr as f64,
        k,
    })
}
