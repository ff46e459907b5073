//! Tests of the captioned-shapes set: determinism, exact colours, small vs large, balanced combinations,
//! captions naming the attributes, held-out captions sharing no attribute word with training captions,
//! config errors, and a preview grid.

use std::collections::HashSet;

use ganzoo_data::shapes::{
    place, render, render_placed, training_captions, ShapeAttrs, BACKGROUNDS, BACKGROUND_RGB, COLOURS, COLOUR_RGB,
    SHAPES, SIZES, UNSEEN_BACKGROUNDS, UNSEEN_COLOURS, UNSEEN_SHAPES, UNSEEN_SIZES,
};
use ganzoo_data::unpaired::Split;
use ganzoo_data::{derived_rng, save_png_grid, CaptionedShapes, Dataset, ShapesConfig};

fn cfg(train: usize, test: usize) -> ShapesConfig {
    ShapesConfig { size: 64, train_count: train, test_count: test }
}

/// The RGB colour (in [0, 1]) of pixel `(x, y)` of a `[3, S, S]` image.
fn pixel(img: &[f32], size: usize, x: usize, y: usize) -> [f32; 3] {
    let plane = size * size;
    [0, 1, 2].map(|c| (img[c * plane + y * size + x] + 1.0) / 2.0)
}

fn close(a: [f32; 3], b: [f32; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4)
}

/// Words of a caption: lowercase runs of letters and digits.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

#[test]
fn all_combinations_are_valid_and_distinct() {
    let all = ShapeAttrs::all();
    assert_eq!(all.len(), 3 * 5 * 2 * 4 - 3 * 2);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), all.len());
    assert!(all.iter().all(|a| COLOURS[a.colour] != BACKGROUNDS[a.background]));
    assert!(!all.iter().any(|a| a.colour == 2 && a.background == 3), "blue on blue");
    for a in &all {
        assert_eq!(ShapeAttrs::from_array(a.as_array()), Some(*a));
        for (k, &v) in a.as_array().iter().enumerate() {
            assert!(v < ShapeAttrs::HEADS[k], "{} out of range", ShapeAttrs::NAMES[k]);
        }
    }
    assert_eq!(ShapeAttrs::from_array([0, 2, 0, 3]), None);
    assert_eq!(ShapeAttrs::HEADS, [SHAPES.len(), COLOURS.len(), SIZES.len(), BACKGROUNDS.len()]);
}

#[test]
fn items_are_deterministic_and_splits_differ() {
    let c = cfg(300, 300);
    let a = CaptionedShapes::open(&c, Split::Train, 7).unwrap();
    let b = CaptionedShapes::open(&c, Split::Train, 7).unwrap();
    let test = CaptionedShapes::open(&c, Split::Test, 7).unwrap();
    let other_seed = CaptionedShapes::open(&c, Split::Train, 8).unwrap();
    assert_eq!((a.len(), a.shape()), (300, vec![3, 64, 64]));
    for i in [0, 1, 57, 299] {
        // The loader's RNG does not matter: the set is fixed.
        let x1 = a.get(i, &mut derived_rng(1, "item", i as u64)).unwrap();
        let x2 = b.get(i, &mut derived_rng(2, "item", 99)).unwrap();
        assert_eq!(x1, x2);
        assert_eq!(x1.shape, vec![3, 64, 64]);
        assert_eq!(x1.label, Some(i as i64));
        assert!(x1.x.iter().all(|v| (-1.0..=1.0).contains(v)));
        assert_eq!(a.attrs(i), b.attrs(i));
    }
    // Train and test draw different jitters even for the same attributes.
    let same_attrs_differ =
        (0..300).filter(|&i| a.attrs(i) == test.attrs(i)).all(|i| a.placement(i) != test.placement(i));
    assert!(same_attrs_differ);
    assert!((0..20).any(|i| a.image(i) != test.image(i)));
    assert!((0..20).any(|i| a.attrs(i) != other_seed.attrs(i)));
    // A fixed attribute rendered with two index streams lands in different places.
    let at = ShapeAttrs { shape: 0, colour: 0, size: 0, background: 0 };
    assert_ne!(render(&at, 64, &mut derived_rng(0, "x", 0)), render(&at, 64, &mut derived_rng(0, "x", 1)));
    assert!(a.get(300, &mut derived_rng(0, "item", 0)).is_err());
}

#[test]
fn large_shape_centre_has_object_colour_and_corner_background() {
    let size = 64;
    for a in ShapeAttrs::all().into_iter().filter(|a| a.size == 1) {
        for k in 0..5 {
            let p = place(&a, size, &mut derived_rng(3, "colour-check", k));
            let img = render_placed(&a, &p, size);
            // The centroid of the triangle, the centre of the others; at least a pixel inside the edge.
            let (cx, cy) = (p.cx.floor() as usize, p.cy.floor() as usize);
            assert!(close(pixel(&img, size, cx, cy), COLOUR_RGB[a.colour]), "{a:?} centre");
            for (x, y) in [(0, 0), (size - 1, 0), (0, size - 1), (size - 1, size - 1)] {
                assert!(close(pixel(&img, size, x, y), BACKGROUND_RGB[a.background]), "{a:?} corner ({x}, {y})");
            }
            // Anti-aliased: some edge pixels are strictly between the two colours.
            let plane = size * size;
            let fg = COLOUR_RGB[a.colour];
            let bg = BACKGROUND_RGB[a.background];
            let ch = (0..3).max_by(|&i, &j| (fg[i] - bg[i]).abs().total_cmp(&(fg[j] - bg[j]).abs())).unwrap();
            let (lo, hi) = (fg[ch].min(bg[ch]) + 0.05, fg[ch].max(bg[ch]) - 0.05);
            let partial = (0..plane).filter(|&q| (lo..hi).contains(&((img[ch * plane + q] + 1.0) / 2.0))).count();
            assert!(partial > 4, "{a:?}: only {partial} anti-aliased pixels");
        }
    }
}

/// Fraction of pixels that are not the background colour.
fn area(a: &ShapeAttrs, img: &[f32], size: usize) -> f32 {
    let bg = BACKGROUND_RGB[a.background];
    let plane = size * size;
    let mut cover = 0.0;
    for q in 0..plane {
        // Coverage along the channel that differs most.
        let fg = COLOUR_RGB[a.colour];
        let ch = (0..3).max_by(|&i, &j| (fg[i] - bg[i]).abs().total_cmp(&(fg[j] - bg[j]).abs())).unwrap();
        let v = (img[ch * plane + q] + 1.0) / 2.0;
        cover += (v - bg[ch]) / (fg[ch] - bg[ch]);
    }
    cover / plane as f32
}

#[test]
fn small_and_large_are_unambiguous() {
    let size = 64;
    for (shape, name) in SHAPES.iter().enumerate() {
        let mut small_max: f32 = 0.0;
        let mut large_min: f32 = 1.0;
        for k in 0..40 {
            let mut rng = derived_rng(4, "area", k);
            let s = ShapeAttrs { shape, colour: 0, size: 0, background: 1 };
            let l = ShapeAttrs { size: 1, ..s };
            small_max = small_max.max(area(&s, &render(&s, size, &mut rng), size));
            large_min = large_min.min(area(&l, &render(&l, size, &mut rng), size));
        }
        assert!(large_min > 2.5 * small_max, "{name}: large area {large_min} vs small {small_max}");
        assert!(small_max > 0.03 && large_min < 0.6, "{name}: {small_max} {large_min}");
    }
}

#[test]
fn every_combination_is_equally_frequent() {
    let k = ShapeAttrs::all().len();
    let ds = CaptionedShapes::open(&cfg(3 * k, 10), Split::Train, 11).unwrap();
    let counts = ds.combination_counts();
    assert_eq!(counts.len(), k);
    assert!(counts.values().all(|&c| c == 3), "{counts:?}");
    // Not in the fixed order of all(): shuffled.
    assert!((0..k).any(|i| ds.attrs(i) != ShapeAttrs::all()[i]));
    // A count that is not a multiple: the counts differ by at most one.
    let ds = CaptionedShapes::open(&cfg(1000, 10), Split::Train, 11).unwrap();
    let counts = ds.combination_counts();
    let (lo, hi) = (counts.values().min().unwrap(), counts.values().max().unwrap());
    assert!(counts.len() == k && hi - lo <= 1, "{lo}..{hi}");
    // Each attribute on its own is balanced over a full cycle.
    let ds = CaptionedShapes::open(&cfg(10, k), Split::Test, 3).unwrap();
    let red = (0..k).filter(|&i| ds.attrs(i).colour == 0).count();
    assert_eq!(red, 3 * 2 * 4);
}

#[test]
fn captions_name_every_attribute() {
    for a in ShapeAttrs::all() {
        let caps = a.captions();
        assert!(caps.len() >= 5);
        assert_eq!(caps.iter().collect::<HashSet<_>>().len(), caps.len());
        for c in &caps {
            let w = words(c);
            for word in [SHAPES[a.shape], COLOURS[a.colour], SIZES[a.size], BACKGROUNDS[a.background]] {
                assert!(w.iter().any(|x| x == word), "{c:?} lacks {word}");
            }
        }
    }
    let a = ShapeAttrs { shape: 0, colour: 0, size: 0, background: 3 };
    assert_eq!(a.captions()[0], "a small red circle on a blue background");
    assert_eq!(a.unseen_captions()[0], "a tiny crimson disc against navy");
    let ds = CaptionedShapes::open(&cfg(10, 10), Split::Train, 0).unwrap();
    assert_eq!(ds.captions(4), ds.attrs(4).captions());
}

#[test]
fn unseen_captions_share_no_attribute_word_with_training_captions() {
    let vocab: HashSet<String> = training_captions().iter().flat_map(|c| words(c)).collect();
    assert!(vocab.contains("circle") && vocab.contains("background"));
    let synonym_words: HashSet<String> = UNSEEN_SHAPES
        .iter()
        .flatten()
        .chain(UNSEEN_COLOURS.iter().flatten())
        .chain(UNSEEN_SIZES.iter().flatten())
        .chain(UNSEEN_BACKGROUNDS.iter().flatten())
        .flat_map(|s| words(s))
        .collect();
    let shared: Vec<_> = synonym_words.intersection(&vocab).collect();
    assert!(shared.is_empty(), "held-out synonyms used in training captions: {shared:?}");
    for a in ShapeAttrs::all() {
        let unseen = a.unseen_captions();
        assert!(unseen.len() >= 3);
        for c in &unseen {
            let w = words(c);
            // Only the article may be shared with the training vocabulary.
            let common: Vec<_> = w.iter().filter(|x| vocab.contains(*x) && *x != "a").collect();
            assert!(common.is_empty(), "{c:?} shares {common:?} with the training captions");
            // Every attribute is still named, by one of its synonyms.
            let names = |syn: &[&str; 2]| syn.iter().any(|s| c.contains(s));
            assert!(names(&UNSEEN_SHAPES[a.shape]) && names(&UNSEEN_COLOURS[a.colour]), "{c:?}");
            assert!(names(&UNSEEN_SIZES[a.size]) && names(&UNSEEN_BACKGROUNDS[a.background]), "{c:?}");
        }
    }
}

#[test]
fn config_errors_name_the_key_and_defaults() {
    let c = ShapesConfig::default();
    assert_eq!((c.size, c.train_count, c.test_count), (64, 12_000, 1_200));
    let parsed: ShapesConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(parsed, c);
    assert!(serde_json::from_str::<ShapesConfig>("{\"sise\": 32}").unwrap_err().to_string().contains("sise"));
    let err = CaptionedShapes::open(&ShapesConfig { size: 8, ..c.clone() }, Split::Train, 0).unwrap_err();
    assert!(err.to_string().contains("data.size") && err.to_string().contains('8'), "{err}");
    let err = CaptionedShapes::open(&ShapesConfig { train_count: 0, ..c.clone() }, Split::Train, 0).unwrap_err();
    assert!(err.to_string().contains("data.train_count"), "{err}");
    let err = CaptionedShapes::open(&ShapesConfig { test_count: 0, ..c.clone() }, Split::Test, 0).unwrap_err();
    assert!(err.to_string().contains("data.test_count"), "{err}");
    let ok = c.build(Split::Test, 0).unwrap();
    assert_eq!((ok.len(), ok.config()), (1_200, &c));
}

#[test]
fn preview_png_can_be_written() {
    let t = tempfile::tempdir().unwrap();
    let ds = CaptionedShapes::open(&cfg(32, 8), Split::Train, 1).unwrap();
    let images: Vec<Vec<f32>> = (0..32).map(|i| ds.image(i)).collect();
    let path = t.path().join("preview.png");
    save_png_grid(&images, 3, 64, 64, 8, &path).unwrap();
    let png = image::open(&path).unwrap();
    assert_eq!((png.width(), png.height()), (8 * 66 + 2, 4 * 66 + 2));
    // Sizes other than 64 work too.
    let small =
        CaptionedShapes::open(&ShapesConfig { size: 16, train_count: 5, test_count: 5 }, Split::Test, 1).unwrap();
    assert_eq!(small.get(0, &mut derived_rng(0, "item", 0)).unwrap().x.len(), 3 * 16 * 16);
}
