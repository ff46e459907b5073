//! Tests of the procedural 2-D sets and the VEEGAN/PacGAN mode-coverage report.

use ganzoo_data::toy::{mode_report, Gaussian1d, Toy2d, Toy2dDataset};
use ganzoo_data::{derived_rng, Dataset};

#[test]
fn centers_match_the_protocol() {
    let ring = Toy2d::Ring8.centers();
    assert_eq!(ring.len(), 8);
    for c in &ring {
        assert!(((c[0] * c[0] + c[1] * c[1]).sqrt() - 2.0).abs() < 1e-12);
    }
    assert!((ring[0][0] - 2.0).abs() < 1e-12 && ring[0][1].abs() < 1e-12);
    assert!(ring[2][0].abs() < 1e-12 && (ring[2][1] - 2.0).abs() < 1e-12);
    let grid = Toy2d::Grid25.centers();
    assert_eq!(grid.len(), 25);
    for v in [-4.0, -2.0, 0.0, 2.0, 4.0] {
        assert_eq!(grid.iter().filter(|c| c[0] == v).count(), 5);
        assert_eq!(grid.iter().filter(|c| c[1] == v).count(), 5);
    }
    assert_eq!(Toy2d::Ring8.default_std(), 0.02);
    assert_eq!(Toy2d::Grid25.default_std(), 0.05);
    let parsed: Toy2d = serde_json::from_str("\"grid25\"").unwrap();
    assert_eq!(parsed, Toy2d::Grid25);
}

#[test]
fn perfect_samples_cover_every_mode() {
    for kind in [Toy2d::Ring8, Toy2d::Grid25] {
        let mut rng = derived_rng(7, "toy", 0);
        let s = kind.sample(5000, kind.default_std(), &mut rng);
        let r = kind.report(&s);
        assert_eq!(r.modes_covered, r.modes, "{kind:?}: {r:?}");
        // 3σ in 2-D holds 1 - exp(-4.5) ≈ 98.9 % of the mass.
        assert!(r.high_quality_fraction > 0.97, "{kind:?}: {r:?}");
        assert_eq!(r.total, 5000);
        assert_eq!(r.per_mode.iter().sum::<usize>(), r.high_quality);
        // Same seed, same samples.
        assert_eq!(s, kind.sample(5000, kind.default_std(), &mut derived_rng(7, "toy", 0)));
    }
}

#[test]
fn collapsed_samples_cover_one_mode() {
    let centers = Toy2d::Ring8.centers();
    let s = vec![[2.0f32, 0.0]; 100];
    let r = mode_report(&centers, 0.02, &s);
    assert_eq!(r.modes_covered, 1);
    assert_eq!(r.per_mode[0], 100);
    assert_eq!(r.high_quality, 100);
    assert_eq!(r.high_quality_fraction, 1.0);
}

#[test]
fn far_points_are_not_high_quality() {
    let centers = Toy2d::Ring8.centers();
    // 0.07 from mode 0 is beyond 3σ = 0.06; the origin and NaN are far from everything.
    let s = vec![[2.07f32, 0.0], [0.0, 0.0], [f32::NAN, 1.0], [10.0, 10.0], [2.05, 0.0]];
    let r = mode_report(&centers, 0.02, &s);
    assert_eq!(r.high_quality, 1);
    assert_eq!(r.modes_covered, 1);
    assert_eq!(r.total, 5);
    assert!((r.high_quality_fraction - 0.2).abs() < 1e-12);
    assert_eq!(r.modes_with_at_least(2), 0);
    let empty = mode_report(&centers, 0.02, &[]);
    assert_eq!((empty.modes_covered, empty.high_quality_fraction), (0, 0.0));
}

#[test]
fn gaussian1d_pdf_and_sample() {
    let g = Gaussian1d { mean: 4.0, std: 0.5 };
    assert!((g.pdf(4.0) - 1.0 / (0.5 * (2.0 * std::f64::consts::PI).sqrt())).abs() < 1e-12);
    let s = g.sample(20000, &mut derived_rng(1, "g", 0));
    let mean = s.iter().map(|&v| f64::from(v)).sum::<f64>() / s.len() as f64;
    let var = s.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / s.len() as f64;
    assert!((mean - 4.0).abs() < 0.02, "{mean}");
    assert!((var.sqrt() - 0.5).abs() < 0.02, "{var}");
}

#[test]
fn toy_dataset_is_pure() {
    let ds = Toy2dDataset::new(Toy2d::Ring8, 0.02, 10).unwrap();
    let a = ds.get(3, &mut derived_rng(0, "item", 3)).unwrap();
    let b = ds.get(3, &mut derived_rng(0, "item", 3)).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.shape, vec![2]);
    assert!(ds.get(10, &mut derived_rng(0, "item", 3)).is_err());
    assert!(Toy2dDataset::new(Toy2d::Ring8, f64::NAN, 10).is_err());
}
