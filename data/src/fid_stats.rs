//! Reference statistics for FID: the mean `mu` (F,) and covariance `sigma` (F, F) of Inception pool3 features,
//! stored as `.npz` in pytorch-fid's layout (`np.savez(path, mu=mu, sigma=sigma)`: a zip of `mu.npy` and
//! `sigma.npy`, float64, stored uncompressed), so statistics published for pytorch-fid or clean-fid load here
//! and ours load there. Compressed archives (`np.savez_compressed`) and float32 arrays are read too.

use std::io::{BufReader, Read, Write};
use std::path::Path;

use tch::Tensor;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::error::{DataError, Result};
use crate::npy::{self, format_err, read_values};

/// Largest feature width accepted (Inception pool3 has 2048); bounds `sigma` to 2 GiB before anything is
/// allocated.
pub const MAX_STATS_DIM: usize = 16_384;

/// A Gaussian fitted to features: FID's reference statistics (Heusel et al. 2017, eq. 2 uses μ and Σ).
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianStats {
    /// Feature width F.
    pub dim: usize,
    /// The mean, F values.
    pub mu: Vec<f64>,
    /// The covariance, F × F row-major.
    pub sigma: Vec<f64>,
}

fn check_dim(dim: usize) -> Result<()> {
    if dim == 0 || dim > MAX_STATS_DIM {
        return Err(DataError::Invalid(format!(
            "FID statistics of width {dim}; it must be in 1..={MAX_STATS_DIM}"
        )));
    }
    Ok(())
}

impl GaussianStats {
    /// Checks that `mu` has `dim` values and `sigma` `dim²`, with `1 ≤ dim ≤ MAX_STATS_DIM`.
    pub fn new(dim: usize, mu: Vec<f64>, sigma: Vec<f64>) -> Result<Self> {
        let stats = GaussianStats { dim, mu, sigma };
        stats.check()?;
        Ok(stats)
    }

    fn check(&self) -> Result<()> {
        check_dim(self.dim)?;
        if self.mu.len() != self.dim || self.sigma.len() != self.dim * self.dim {
            return Err(DataError::Invalid(format!(
                "FID statistics of width {} need {} mean and {} covariance values, got {} and {}",
                self.dim,
                self.dim,
                self.dim * self.dim,
                self.mu.len(),
                self.sigma.len()
            )));
        }
        Ok(())
    }

    /// From float tensors `mu` (F,) and `sigma` (F, F) on any device (copied to the CPU as f64).
    pub fn from_tensors(mu: &Tensor, sigma: &Tensor) -> Result<Self> {
        let (sm, ss) = (mu.size(), sigma.size());
        if sm.len() != 1 || ss.len() != 2 || ss[0] != sm[0] || ss[1] != sm[0] {
            return Err(DataError::Invalid(format!(
                "FID statistics need mu (F,) and sigma (F, F), got {sm:?} and {ss:?}"
            )));
        }
        let f = sm[0].max(0) as usize;
        check_dim(f)?;
        let to_vec = |t: &Tensor| {
            Vec::<f64>::try_from(t.to_device(tch::Device::Cpu).to_kind(tch::Kind::Double).flatten(0, -1))
                .map_err(|e| DataError::Invalid(format!("FID statistics: reading a tensor failed: {e}")))
        };
        GaussianStats::new(f, to_vec(mu)?, to_vec(sigma)?)
    }

    /// `(mu, sigma)` as f64 CPU tensors of shapes (F,) and (F, F).
    pub fn tensors(&self) -> (Tensor, Tensor) {
        let f = self.dim as i64;
        (Tensor::from_slice(&self.mu), Tensor::from_slice(&self.sigma).reshape([f, f]))
    }
}

/// Reads one member array of the archive, checking its declared size against its header before allocating.
fn read_member<R: Read + std::io::Seek>(
    zip: &mut ZipArchive<R>,
    name: &str,
    path: &Path,
) -> Result<(Vec<usize>, Vec<f64>)> {
    let mut names: Vec<&str> = zip.file_names().collect();
    names.sort_unstable();
    let list = names.join(", ");
    let mut entry = match zip.by_name(name) {
        Ok(e) => e,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(format_err(
                path,
                format!(
                    "no `{}` array (the archive holds: {}); FID statistics are written by \
                     `np.savez(path, mu=mu, sigma=sigma)`",
                    name.trim_end_matches(".npy"),
                    if list.is_empty() { "nothing" } else { &list }
                ),
            ))
        }
        Err(e) => return Err(format_err(path, format!("{name}: cannot read this archive member: {e}"))),
    };
    let total = entry.size();
    let ctx = format!("{name}: ");
    let h = npy::read_header(&mut entry, total, path, &ctx)?;
    let dim_ok = |d: usize| (1..=MAX_STATS_DIM).contains(&d);
    if !h.shape.iter().all(|&d| dim_ok(d)) {
        return Err(format_err(
            path,
            format!("{ctx}shape {:?} has a dimension outside 1..={MAX_STATS_DIM}", h.shape),
        ));
    }
    // At most MAX_STATS_DIM² values once the shapes are checked by the caller; bounded here for any rank.
    let count = h
        .count()
        .filter(|&c| c <= MAX_STATS_DIM * MAX_STATS_DIM)
        .ok_or_else(|| format_err(path, format!("{ctx}shape {:?} is too large", h.shape)))?;
    let want = count as u64 * h.dtype.size() as u64;
    let have = total.saturating_sub(h.len);
    if have != want {
        return Err(format_err(
            path,
            format!("{ctx}shape {:?} of {} needs {want} bytes of data, the member holds {have}", h.shape, h.descr),
        ));
    }
    let data = read_values::<f64>(&mut entry, h.dtype, count, path, &ctx)?;
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(format_err(path, format!("{ctx}non-finite value {} at flat index {i}", data[i])));
    }
    Ok((h.shape, data))
}

/// Reads FID reference statistics from an `.npz` archive with arrays `mu` (F,) and `sigma` (F, F), dtype
/// `<f8` or `<f4` (widened to f64), stored or deflate-compressed, as pytorch-fid's `np.savez(path, mu=mu,
/// sigma=sigma)` and `np.savez_compressed` write them. Other members are ignored. Errors name the file and
/// what is wrong: not a zip archive, a missing `mu` or `sigma`, wrong ranks, `sigma` not F×F for F from `mu`,
/// a dimension over [`MAX_STATS_DIM`], a size that does not match the header, non-finite values, and the NPY
/// header problems of [`crate::read_embeddings`].
pub fn read_fid_stats(path: &Path) -> Result<GaussianStats> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut zip = ZipArchive::new(BufReader::new(file)).map_err(|e| {
        format_err(path, format!("not a zip archive ({e}); FID statistics are an `.npz` written by np.savez"))
    })?;
    let (mu_shape, mu) = read_member(&mut zip, "mu.npy", path)?;
    let f = match mu_shape[..] {
        [f] => f,
        _ => return Err(format_err(path, format!("mu.npy: shape {mu_shape:?}; mu must be 1-D (F,)"))),
    };
    let (sigma_shape, sigma) = read_member(&mut zip, "sigma.npy", path)?;
    if sigma_shape != [f, f] {
        return Err(format_err(
            path,
            format!("sigma.npy: shape {sigma_shape:?}; sigma must be F×F = ({f}, {f}) for mu of shape ({f},)"),
        ));
    }
    Ok(GaussianStats { dim: f, mu, sigma })
}

/// Writes FID statistics as pytorch-fid does (`np.savez(path, mu=mu, sigma=sigma)`): a zip archive of
/// uncompressed `mu.npy` and `sigma.npy`, float64 C-order NPY 1.0, which `np.load` reads back. Written
/// atomically (temp file, sync, rename); parent folders are created.
pub fn write_fid_stats(path: &Path, stats: &GaussianStats) -> Result<()> {
    stats.check()?;
    let f = stats.dim;
    // Members above 4 GiB would need zip64; sigma is at most MAX_STATS_DIM² × 8 bytes = 2 GiB.
    let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    npy::write_atomic(path, |w| {
        let mut zip = ZipWriter::new(w);
        for (name, shape, data) in [("mu.npy", vec![f], &stats.mu), ("sigma.npy", vec![f, f], &stats.sigma)] {
            zip.start_file(name, opts)?;
            zip.write_all(&npy::header_bytes("<f8", &shape))?;
            npy::write_le(&mut zip, data, f64::to_le_bytes)?;
        }
        zip.finish()?;
        Ok(())
    })
}
