//! FID, KID, precision/recall and density/coverage against NumPy/SciPy (models/golden/metrics_golden.py:
//! pytorch-fid's FID with `scipy.linalg.sqrtm`, torch-fidelity's KID on the subset indices stored there, the
//! PRDC counts from direct distances) on a full-rank case (200 and 180 × 64) and a singular one (40 and
//! 50 × 64); plus the errors, the seeded subset draw, and known closed forms.

mod common;

use common::max_diff;
use ganzoo_models::metrics::{
    density_coverage, frechet_distance, gaussian_stats, kid, kid_on_subsets, precision_recall, BLOCK_ELEMENTS,
};
use ganzoo_models::rng::{derived_rng, randn};
use serde_json::Value;
use std::collections::HashMap;
use tch::{Device, Kind, Tensor};

const JSON: &str = include_str!("../golden/metrics_golden.json");

fn golden() -> (Value, HashMap<String, Tensor>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/metrics_golden.safetensors");
    let t = Tensor::read_safetensors(path).expect("metrics_golden.safetensors").into_iter().collect();
    (serde_json::from_str(JSON).expect("metrics_golden.json parses"), t)
}

fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

#[test]
fn gaussian_stats_match_numpy() {
    let (_, t) = golden();
    for set in ["real", "fake"] {
        let (mu, sigma) = gaussian_stats(&t[&format!("wide.{set}")]).unwrap();
        assert_eq!((mu.kind(), sigma.size()), (Kind::Double, vec![64, 64]));
        let (dm, ds) = (max_diff(&mu, &t[&format!("wide.{set}_mu")]), max_diff(&sigma, &t[&format!("wide.{set}_sigma")]));
        eprintln!("{set}: mu max diff {dm:.1e}, sigma {ds:.1e}");
        assert!(dm < 1e-12 && ds < 1e-12, "{set}: {dm} {ds}");
    }
}

#[test]
fn fid_matches_pytorch_fid_with_scipy_sqrtm() {
    let (g, t) = golden();
    for case in ["wide", "narrow"] {
        let (m1, s1) = gaussian_stats(&t[&format!("{case}.real")]).unwrap();
        let (m2, s2) = gaussian_stats(&t[&format!("{case}.fake")]).unwrap();
        let fid = frechet_distance(&m1, &s1, &m2, &s2).unwrap();
        let want = g[case]["fid"].as_f64().unwrap();
        eprintln!("{case}: FID {fid:.9} vs pytorch-fid {want:.9}: relative error {:.1e}", rel(fid, want));
        assert!(rel(fid, want) <= 1e-6, "{case}: {fid} vs {want}");
        // Symmetric in its arguments, and the float32 statistics give the same number to float32 precision.
        let swapped = frechet_distance(&m2, &s2, &m1, &s1).unwrap();
        assert!(rel(swapped, want) <= 1e-6, "{case} swapped: {swapped}");
        let f32_fid = frechet_distance(&m1.to_kind(Kind::Float), &s1.to_kind(Kind::Float), &m2, &s2).unwrap();
        assert!(rel(f32_fid, want) <= 1e-4, "{case} f32: {f32_fid}");
    }
}

#[test]
fn fid_closed_forms() {
    let f = 6;
    let eye = Tensor::eye(f, (Kind::Double, Device::Cpu));
    let zero = Tensor::zeros([f], (Kind::Double, Device::Cpu));
    let shift = Tensor::from_slice(&[1.0, 2.0, 0.0, 0.0, 0.0, 0.0]);
    // Same covariance, mean moved: the squared shift.
    assert!((frechet_distance(&zero, &eye, &shift, &eye).unwrap() - 5.0).abs() < 1e-12);
    // I against 4I: Tr(I + 4I − 2·2I) = F.
    assert!((frechet_distance(&zero, &eye, &zero, &(&eye * 4.0)).unwrap() - f as f64).abs() < 1e-12);
    // A singular covariance (rank 1) against a zero one: Tr Σ₁.
    let v = Tensor::from_slice(&[1.0, -2.0, 0.5, 0.0, 3.0, 1.0]);
    let rank1 = v.outer(&v);
    let zeros = Tensor::zeros([f, f], (Kind::Double, Device::Cpu));
    let d = frechet_distance(&zero, &rank1, &zero, &zeros).unwrap();
    assert!((d - 15.25).abs() < 1e-9, "{d}");
    // Features that are all equal: covariance 0, distance = squared mean shift + Tr Σ of the other set.
    let x = randn(&mut derived_rng(3, "fid", 0), &[500, f], Device::Cpu).to_kind(Kind::Double);
    let same = Tensor::ones([4, f], (Kind::Double, Device::Cpu));
    let ((m1, s1), (m2, s2)) = (gaussian_stats(&x).unwrap(), gaussian_stats(&same).unwrap());
    let want = (&m1 - &m2).square().sum(Kind::Double).double_value(&[]) + s1.trace().double_value(&[]);
    assert!((frechet_distance(&m1, &s1, &m2, &s2).unwrap() - want).abs() < 1e-9);
    // A set against itself is 0 up to rounding.
    assert!(frechet_distance(&m1, &s1, &m1, &s1).unwrap().abs() < 1e-9);
}

#[test]
fn kid_matches_torch_fidelity_on_given_subsets() {
    let (g, t) = golden();
    for case in ["wide", "narrow"] {
        let subsets: Vec<(Vec<usize>, Vec<usize>)> = g[case]["kid_subsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (usizes(&s["real"]), usizes(&s["fake"])))
            .collect();
        let k = kid_on_subsets(&t[&format!("{case}.real")], &t[&format!("{case}.fake")], &subsets).unwrap();
        let (mean, std) = (g[case]["kid_mean"].as_f64().unwrap(), g[case]["kid_std"].as_f64().unwrap());
        eprintln!("{case}: KID {:.9} ± {:.9}: relative errors {:.1e}, {:.1e}", k.mean, k.std, rel(k.mean, mean), rel(k.std, std));
        assert!(rel(k.mean, mean) <= 1e-6 && rel(k.std, std) <= 1e-6, "{case}: {k:?} vs {mean} ± {std}");
        assert_eq!((k.subsets, k.subset_size), (10, subsets[0].0.len()));
    }
}

#[test]
fn kid_draws_seeded_subsets_and_caps_their_size() {
    let (_, t) = golden();
    let (real, fake) = (&t["wide.real"], &t["wide.fake"]);
    let a = kid(real, fake, 5, 50, &mut derived_rng(7, "kid", 0)).unwrap();
    assert_eq!(a, kid(real, fake, 5, 50, &mut derived_rng(7, "kid", 0)).unwrap(), "same seed, same estimate");
    assert_ne!(a, kid(real, fake, 5, 50, &mut derived_rng(8, "kid", 0)).unwrap());
    // torch-fidelity's 1000 rows are capped at the smaller set (180); with one subset taking every row, the
    // estimate no longer depends on the draw.
    let full = kid(real, fake, 1, 1000, &mut derived_rng(1, "kid", 0)).unwrap();
    assert_eq!((full.subset_size, full.std), (180, 0.0));
    let all_fake: Vec<usize> = (0..180).collect();
    let some_real: Vec<usize> = (0..180).collect();
    let direct = kid_on_subsets(&real.narrow(0, 0, 180), fake, &[(some_real, all_fake)]).unwrap();
    let other = kid(&real.narrow(0, 0, 180), fake, 1, 1000, &mut derived_rng(2, "kid", 0)).unwrap();
    assert!(rel(other.mean, direct.mean) < 1e-12, "{other:?} vs {direct:?}");
    // Identical distributions: KID near 0 (unbiased: either sign).
    let x = randn(&mut derived_rng(4, "kid", 0), &[400, 16], Device::Cpu);
    let y = randn(&mut derived_rng(4, "kid", 1), &[400, 16], Device::Cpu);
    assert!(kid(&x, &y, 10, 200, &mut derived_rng(1, "kid", 1)).unwrap().mean.abs() < 0.01);
}

#[test]
fn precision_recall_density_coverage_count_exactly() {
    let (g, t) = golden();
    for case in ["wide", "narrow"] {
        let (real, fake) = (&t[&format!("{case}.real")], &t[&format!("{case}.fake")]);
        let (nr, nf) = (real.size()[0] as usize, fake.size()[0] as usize);
        let c = &g[case];
        let n = |key: &str| c[key].as_u64().unwrap() as usize;
        assert!(c["margin"].as_f64().unwrap() > 1e-8, "{case}: golden radii too close to distances");
        let pr = precision_recall(real, fake, n("k_pr")).unwrap();
        assert_eq!(pr.precision, n("precision_count") as f64 / nf as f64, "{case} precision");
        assert_eq!(pr.recall, n("recall_count") as f64 / nr as f64, "{case} recall");
        let dc = density_coverage(real, fake, n("k_dc")).unwrap();
        assert_eq!(dc.density, n("density_count") as f64 / (n("k_dc") * nf) as f64, "{case} density");
        assert_eq!(dc.coverage, n("coverage_count") as f64 / nr as f64, "{case} coverage");
        eprintln!("{case}: {pr:?} {dc:?}");
        // float32 features give the same counts.
        let pr32 = precision_recall(&real.to_kind(Kind::Float), &fake.to_kind(Kind::Float), 3).unwrap();
        assert_eq!(pr32, pr);
    }
}

#[test]
fn distance_blocks_do_not_change_the_counts() {
    // More rows than one block holds for these widths: the results equal a single-block computation done by
    // hand here.
    let n = (BLOCK_ELEMENTS / 1000) + 77; // rows per block for 1000 columns is BLOCK_ELEMENTS / 1000
    let real = randn(&mut derived_rng(5, "prdc", 0), &[n as i64, 4], Device::Cpu).to_kind(Kind::Double);
    let fake = (randn(&mut derived_rng(5, "prdc", 1), &[1000, 4], Device::Cpu) * 1.3).to_kind(Kind::Double);
    let dc = density_coverage(&real, &fake, 5).unwrap();
    // By hand: radii from sorted real-real distances, then fake-in-ball counts over the full matrix.
    let sq = |a: &Tensor, b: &Tensor| (a.unsqueeze(1) - b.unsqueeze(0)).square().sum_dim_intlist(2, false, Kind::Double);
    let mut radii = Vec::new();
    for i in (0..n as i64).step_by(512) {
        let len = 512.min(n as i64 - i);
        radii.push(sq(&real.narrow(0, i, len), &real).kthvalue(6, 1, false).0);
    }
    let rr = Tensor::cat(&radii, 0);
    let d = sq(&real, &fake); // (n, 1000)
    let in_balls = d.lt_tensor(&rr.unsqueeze(1)).sum(Kind::Int64).int64_value(&[]) as f64;
    let covered = d.min_dim(1, false).0.lt_tensor(&rr).sum(Kind::Int64).int64_value(&[]) as f64;
    assert_eq!(dc.density, in_balls / (5.0 * 1000.0));
    assert_eq!(dc.coverage, covered / n as f64);
}

#[test]
fn undefined_metrics_are_errors() {
    let x = randn(&mut derived_rng(6, "err", 0), &[20, 8], Device::Cpu);
    let y = randn(&mut derived_rng(6, "err", 1), &[30, 8], Device::Cpu);
    let err = |e: ganzoo_models::ModelError| e.to_string();
    assert!(err(gaussian_stats(&x.narrow(0, 0, 1)).unwrap_err()).contains("needs at least 2"));
    assert!(err(gaussian_stats(&x.narrow(0, 0, 0)).unwrap_err()).contains("empty"));
    assert!(err(gaussian_stats(&x.reshape([20, 2, 4])).unwrap_err()).contains("2-D"));
    let nan = x.copy();
    let _ = nan.get(3).get(2).fill_(f64::NAN);
    assert!(err(gaussian_stats(&nan).unwrap_err()).contains("NaN"));
    assert!(err(gaussian_stats(&Tensor::ones([3, 2], (Kind::Int64, Device::Cpu))).unwrap_err()).contains("float kind"));

    let (m, s) = gaussian_stats(&x).unwrap();
    let (m4, s4) = gaussian_stats(&x.narrow(1, 0, 4)).unwrap();
    assert!(err(frechet_distance(&m, &s, &m4, &s4).unwrap_err()).contains("differ in width"));
    assert!(err(frechet_distance(&m, &s4, &m, &s).unwrap_err()).contains("need mu (F,) and sigma (F, F)"));
    let inf = s.copy();
    let _ = inf.get(0).get(0).fill_(f64::INFINITY);
    assert!(err(frechet_distance(&m, &inf, &m, &s).unwrap_err()).contains("NaN or infinite"));

    assert!(err(kid(&x, &y.narrow(1, 0, 4), 2, 10, &mut derived_rng(1, "k", 0)).unwrap_err()).contains("differ in width"));
    assert!(err(kid(&x, &y, 0, 10, &mut derived_rng(1, "k", 0)).unwrap_err()).contains("0 subsets"));
    assert!(err(kid(&x, &y, 3, 1, &mut derived_rng(1, "k", 0)).unwrap_err()).contains("of 1 (asked 1)"));
    assert!(err(kid(&x.narrow(0, 0, 0), &y, 3, 10, &mut derived_rng(1, "k", 0)).unwrap_err()).contains("empty"));
    let dup = vec![(vec![0, 1, 1], vec![0, 1, 2])];
    assert!(err(kid_on_subsets(&x, &y, &dup).unwrap_err()).contains("2 distinct"));
    let out = vec![(vec![0, 1, 20], vec![0, 1, 2])];
    assert!(err(kid_on_subsets(&x, &y, &out).unwrap_err()).contains("below 20"));
    assert!(err(kid_on_subsets(&x, &y, &[]).unwrap_err()).contains("at least one subset"));

    assert!(err(precision_recall(&x, &y, 20).unwrap_err()).contains("k = 20 nearest neighbours needs 1 ≤ k < the 20 real"));
    assert!(err(precision_recall(&y, &x, 20).unwrap_err()).contains("the 20 fake"));
    assert!(err(precision_recall(&x, &y, 0).unwrap_err()).contains("k = 0"));
    assert!(err(density_coverage(&x, &y, 25).unwrap_err()).contains("< the 20 real"));
    assert!(density_coverage(&y, &x, 25).is_ok(), "density/coverage use only the real set's neighbours");
    assert!(err(density_coverage(&x, &y.narrow(0, 0, 0), 5).unwrap_err()).contains("fake features are empty"));
}
