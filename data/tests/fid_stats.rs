//! FID reference statistics (`.npz`, pytorch-fid's layout) against archives NumPy wrote
//! (data/golden/npz_golden.py): the good ones read back exactly, the bad ones fail naming the file and the
//! problem; our writer round-trips and lays out its members byte for byte as `np.savez` does.

use std::io::Read;
use std::path::{Path, PathBuf};

use ganzoo_data::{read_fid_stats, write_fid_stats, GaussianStats, MAX_STATS_DIM};
use tch::{Kind, Tensor};

const F: usize = 5;

fn npz(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/npz").join(name)
}

/// The values npz_golden.py writes: mu[i] = i / 8 - 0.5, sigma[i, j] = 1 / (1 + i + j).
fn expected() -> GaussianStats {
    let mu = (0..F).map(|i| i as f64 / 8.0 - 0.5).collect();
    let sigma = (0..F * F).map(|k| 1.0 / (1.0 + (k / F) as f64 + (k % F) as f64)).collect();
    GaussianStats::new(F, mu, sigma).unwrap()
}

#[test]
fn numpy_archives_read_back_exactly() {
    let want = expected();
    for name in ["savez.npz", "compressed.npz", "extra.npz"] {
        assert_eq!(read_fid_stats(&npz(name)).unwrap(), want, "{name}");
    }
    let f32_stats = read_fid_stats(&npz("f32.npz")).unwrap();
    let widen = |v: &[f64]| v.iter().map(|x| f64::from(*x as f32)).collect::<Vec<_>>();
    assert_eq!(f32_stats.mu, widen(&want.mu));
    assert_eq!(f32_stats.sigma, widen(&want.sigma));
}

#[test]
fn bad_archives_name_the_file_and_the_problem() {
    let cases = [
        ("no_mu.npz", "no `mu` array (the archive holds: sigma.npy)"),
        ("no_sigma.npz", "no `sigma` array (the archive holds: mu.npy)"),
        ("mu_2d.npz", "mu.npy: shape [1, 5]; mu must be 1-D"),
        ("sigma_rect.npz", "sigma.npy: shape [5, 4]; sigma must be F×F = (5, 5)"),
        ("sigma_mismatch.npz", "sigma.npy: shape [4, 4]; sigma must be F×F = (5, 5)"),
        ("int.npz", "mu.npy: dtype <i8 is not supported"),
        ("nan.npz", "sigma.npy: non-finite value NaN at flat index 13"),
        ("object.npz", "mu.npy: object array"),
        ("fortran.npz", "sigma.npy: fortran_order is True"),
        ("huge.npz", "mu.npy: shape [100000] has a dimension outside 1..=16384"),
        ("short.npz", "sigma.npy: shape [5, 5] of <f8 needs 200 bytes of data, the member holds 192"),
        ("not_zip.npz", "not a zip archive"),
        ("truncated.npz", "not a zip archive"),
    ];
    for (name, fragment) in cases {
        let p = npz(name);
        let err = read_fid_stats(&p).expect_err(name).to_string();
        assert!(err.contains(&p.display().to_string()), "{name}: error does not name the file: {err}");
        assert!(err.contains(fragment), "{name}: error lacks {fragment:?}: {err}");
    }
    let missing = npz("absent.npz");
    assert!(read_fid_stats(&missing).unwrap_err().to_string().contains("absent.npz"));
}

/// The bytes of one member of an archive, and whether it is stored uncompressed.
fn member(path: &Path, name: &str) -> (Vec<u8>, bool) {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut e = z.by_name(name).unwrap();
    let stored = e.compression() == zip::CompressionMethod::Stored;
    let mut out = Vec::new();
    e.read_to_end(&mut out).unwrap();
    (out, stored)
}

#[test]
fn writer_lays_out_members_as_numpy_savez() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("nested/ref.npz");
    write_fid_stats(&p, &expected()).unwrap();
    assert_eq!(read_fid_stats(&p).unwrap(), expected());
    for name in ["mu.npy", "sigma.npy"] {
        let (ours, stored) = member(&p, name);
        assert!(stored, "{name} is compressed");
        assert_eq!(ours, member(&npz("savez.npz"), name).0, "{name} differs from numpy's bytes");
    }
    // Overwriting is atomic and leaves no temp file behind.
    write_fid_stats(&p, &expected()).unwrap();
    assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
}

#[test]
fn tensors_convert_both_ways_and_shapes_are_checked() {
    let s = expected();
    let (mu, sigma) = s.tensors();
    assert_eq!((mu.size(), sigma.size(), sigma.kind()), (vec![5], vec![5, 5], Kind::Double));
    assert_eq!(GaussianStats::from_tensors(&mu, &sigma.to_kind(Kind::Float)).unwrap().dim, 5);
    assert_eq!(GaussianStats::from_tensors(&mu, &sigma).unwrap(), s);
    let err = GaussianStats::from_tensors(&mu, &sigma.narrow(1, 0, 4)).unwrap_err().to_string();
    assert!(err.contains("mu (F,) and sigma (F, F), got [5] and [5, 4]"), "{err}");
    let big = Tensor::zeros([MAX_STATS_DIM as i64 + 1], (Kind::Double, tch::Device::Cpu));
    let err = GaussianStats::from_tensors(&big, &Tensor::zeros([1, 1], (Kind::Double, tch::Device::Cpu)));
    assert!(err.is_err());
    assert!(GaussianStats::new(3, vec![0.0; 3], vec![0.0; 8]).unwrap_err().to_string().contains("need 3 mean and 9"));
    assert!(GaussianStats::new(0, vec![], vec![]).unwrap_err().to_string().contains("width 0"));
    let bad = GaussianStats { dim: 2, mu: vec![0.0; 2], sigma: vec![0.0; 3] };
    assert!(write_fid_stats(&tempfile::tempdir().unwrap().path().join("x.npz"), &bad).is_err());
}
