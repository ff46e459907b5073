//! Tests of the procedural two-domain shapes set: determinism, hidden vs true pairing, the two styles
//! differing while sharing geometry, and loader determinism.

use std::sync::Arc;

use ganzoo_data::shapes2::{Kind, Shapes2, Shapes2Config, BG_A, BG_B, B_COLOUR_OF, PALETTE, RIM_B};
use ganzoo_data::unpaired::Split;
use ganzoo_data::{derived_rng, Dataset, Loader, LoaderConfig};

fn small() -> Shapes2Config {
    Shapes2Config { train: 50, test: 10, size: 32 }
}

/// The RGB colour (in [0, 1]) of pixel `p` of a `[3, H, W]` plane.
fn pixel(x: &[f32], p: usize) -> [f32; 3] {
    let plane = x.len() / 3;
    [0, 1, 2].map(|c| (x[c * plane + p] + 1.0) / 2.0)
}

fn eq3(a: [f32; 3], b: [f32; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
}

/// Foreground mask: pixels that are not the background colour.
fn mask(x: &[f32], bg: [f32; 3]) -> Vec<bool> {
    (0..x.len() / 3).map(|p| !eq3(pixel(x, p), bg)).collect()
}

#[test]
fn scenes_are_deterministic_in_seed_split_index() {
    let a = Shapes2::open(&small(), Split::Train, false, 5).unwrap();
    let b = Shapes2::open(&small(), Split::Train, false, 5).unwrap();
    let other_seed = Shapes2::open(&small(), Split::Train, false, 6).unwrap();
    let test = Shapes2::open(&small(), Split::Test, false, 5).unwrap();
    assert_eq!((a.len(), test.len()), (50, 10));
    assert_eq!(a.shape(), vec![2, 3, 32, 32]);
    for i in 0..10 {
        assert_eq!(a.scene(i), b.scene(i));
        assert_eq!(a.render_a(i), b.render_a(i));
        let mut r1 = derived_rng(1, "item", i as u64);
        let mut r2 = derived_rng(1, "item", i as u64);
        assert_eq!(a.get(i, &mut r1).unwrap(), b.get(i, &mut r2).unwrap());
    }
    assert!((0..10).any(|i| a.scene(i) != other_seed.scene(i)));
    assert!((0..10).any(|i| a.scene(i) != test.scene(i)), "train and test scenes should differ");
    // Variety: one and two shapes, every kind, several colours; shapes stay inside the image.
    let scenes: Vec<_> = (0..50).map(|i| a.scene(i)).collect();
    assert!(scenes.iter().any(|s| s.len() == 1) && scenes.iter().any(|s| s.len() == 2));
    for kind in [Kind::Circle, Kind::Square, Kind::Triangle] {
        assert!(scenes.iter().flatten().any(|s| s.kind == kind), "{kind:?} never drawn");
    }
    for c in 0..PALETTE.len() {
        assert!(scenes.iter().flatten().any(|s| s.colour == c), "colour {c} never drawn");
    }
    for s in scenes.iter().flatten() {
        assert!(s.cx - s.r >= 0.0 && s.cx + s.r <= 32.0 && s.cy - s.r >= 0.0 && s.cy + s.r <= 32.0, "{s:?}");
    }
    assert!(scenes.iter().filter(|s| s.len() == 2).all(|s| s[0].colour != s[1].colour));
}

#[test]
fn paired_gives_the_true_counterpart_unpaired_hides_it() {
    let paired = Shapes2::open(&small(), Split::Test, true, 0).unwrap();
    let unpaired = Shapes2::open(&small(), Split::Test, false, 0).unwrap();
    let n = 10;
    let mut matched_other = 0;
    for i in 0..n {
        let ex = paired.get(i, &mut derived_rng(0, "item", i as u64)).unwrap();
        assert_eq!(ex.shape, vec![2, 3, 32, 32]);
        assert_eq!(ex.label, None);
        let (a, b) = ex.x.split_at(ex.x.len() / 2);
        assert_eq!(a, paired.render_a(i).as_slice());
        assert_eq!(b, paired.render_b(i).as_slice());
        // Unpaired: A is scene i, B is some scene j drawn from the RNG, the same for the same RNG.
        let mut js = std::collections::BTreeSet::new();
        for s in 0..6u64 {
            let ex = unpaired.get(i, &mut derived_rng(s, "item", i as u64)).unwrap();
            assert_eq!(ex, unpaired.get(i, &mut derived_rng(s, "item", i as u64)).unwrap());
            let (a, b) = ex.x.split_at(ex.x.len() / 2);
            assert_eq!(a, unpaired.render_a(i).as_slice());
            let j = (0..n).find(|&j| b == unpaired.render_b(j).as_slice()).expect("B is one of the scenes");
            js.insert(j);
        }
        if js.iter().any(|&j| j != i) {
            matched_other += 1;
        }
        assert!(js.len() > 1, "item {i}: B index never varies with the RNG");
    }
    assert!(matched_other == n, "unpaired B should not be stuck on the true counterpart");
}

#[test]
fn domains_differ_but_share_geometry() {
    let ds = Shapes2::open(&small(), Split::Train, true, 3).unwrap();
    for i in 0..50 {
        let (a, b) = (ds.render_a(i), ds.render_b(i));
        assert!(a.iter().chain(&b).all(|v| (-1.0..=1.0).contains(v)));
        let diff = a.iter().zip(&b).map(|(p, q)| (p - q).abs()).sum::<f32>() / a.len() as f32;
        assert!(diff > 0.3, "scene {i}: A and B barely differ ({diff})");
        let (ma, mb) = (mask(&a, BG_A), mask(&b, BG_B));
        assert_eq!(ma, mb, "scene {i}: foreground masks differ");
        let fg = ma.iter().filter(|&&m| m).count();
        assert!(fg > 10 && fg < ma.len(), "scene {i}: {fg} foreground pixels");
        // Interior pixels of B carry the permuted colour of A's fill; the rest of B's foreground is the rim.
        let mut interior = 0;
        for p in (0..ma.len()).filter(|&p| ma[p]) {
            let (ca, cb) = (pixel(&a, p), pixel(&b, p));
            let k = PALETTE.iter().position(|&c| eq3(c, ca)).expect("A's fill is a palette colour");
            assert!(eq3(cb, PALETTE[B_COLOUR_OF[k]]) || eq3(cb, RIM_B), "scene {i} pixel {p}");
            interior += usize::from(!eq3(cb, RIM_B));
        }
        let rim = fg - interior;
        assert!(rim > 0, "scene {i}: no rim in B");
    }
}

#[test]
fn loader_is_deterministic_across_worker_counts() {
    let ds: Arc<dyn Dataset> = Arc::new(Shapes2::open(&small(), Split::Train, false, 1).unwrap());
    let run = |workers: usize| -> Vec<Vec<f32>> {
        let lc = LoaderConfig { batch_size: 16, workers, prefetch: 2, drop_last: true, seed: 9, shard: (0, 1) };
        Loader::new(ds.clone(), lc)
            .iter_from(0, 0)
            .take(6)
            .map(|b| Vec::<f32>::try_from(b.unwrap().x.flatten(0, -1)).unwrap())
            .collect()
    };
    assert_eq!(run(1), run(3));
}

#[test]
fn config_defaults_and_errors() {
    let cfg: Shapes2Config = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, Shapes2Config { train: 2000, test: 200, size: 32 });
    assert_eq!(cfg, Shapes2Config::default());
    assert!(serde_json::from_str::<Shapes2Config>(r#"{"sise": 8}"#).unwrap_err().to_string().contains("sise"));
    let err = Shapes2::open(&Shapes2Config { size: 4, ..small() }, Split::Train, false, 0).unwrap_err().to_string();
    assert!(err.contains("size"), "{err}");
    let err = Shapes2::open(&Shapes2Config { test: 0, ..small() }, Split::Test, false, 0).unwrap_err().to_string();
    assert!(err.contains("test"), "{err}");
    let ds = Shapes2::open(&Shapes2Config { size: 64, ..small() }, Split::Train, false, 0).unwrap();
    assert_eq!(ds.get(0, &mut derived_rng(0, "item", 0)).unwrap().x.len(), 2 * 3 * 64 * 64);
    assert!(ds.get(50, &mut derived_rng(0, "item", 0)).is_err());
}
