//! DiffAugment (`ganzoo_models::augment`): the official ops against a PyTorch re-implementation with the same
//! parameters (`models/golden/augment_golden.py`), gradients against finite differences (float64), one drawn
//! transform applied identically to two batches, identities, the drawn ranges, dtypes and errors.

mod common;
use common::max_diff;

use common::tensor;
use ganzoo_models::augment::{
    apply, cutout_size, max_shift, AugOp, AugParams, AugStep, ColorParams, CutoutParams, DiffAugment,
    TranslationParams,
};
use ganzoo_models::rng::{derived_rng, randn, uniform};
use serde_json::Value;
use tch::{Device, Kind, Tensor};

const CPU: Device = Device::Cpu;
const GOLDEN: &str = include_str!("../golden/augment_golden.json");

fn ints(v: &Value) -> Vec<i64> {
    v.as_array().expect("list").iter().map(|x| x.as_i64().expect("int")).collect()
}

fn color(c: &Value) -> AugStep {
    AugStep::Color(ColorParams {
        brightness: tensor(&c["brightness"]),
        saturation: tensor(&c["saturation"]),
        contrast: tensor(&c["contrast"]),
    })
}

fn translation(c: &Value, h: i64, w: i64) -> AugStep {
    AugStep::Translation(TranslationParams::new(ints(&c["shift_h"]), ints(&c["shift_w"]), h, w, CPU).expect("shifts"))
}

fn cutout(c: &Value, h: i64, w: i64) -> AugStep {
    AugStep::Cutout(CutoutParams::new(ints(&c["offset_h"]), ints(&c["offset_w"]), h, w, CPU).expect("offsets"))
}

#[test]
fn ops_match_the_official_code_with_the_same_parameters() {
    let golden: Value = serde_json::from_str(GOLDEN).expect("golden parses");
    for case in ["even", "odd"] {
        let c = &golden[case];
        let x = tensor(&c["x"]);
        let s = x.size();
        let (n, h, w) = (s[0], s[2], s[3]);
        let policy = || vec![color(c), translation(c, h, w), cutout(c, h, w)];
        let cases: [(&str, Vec<AugStep>); 4] = [
            ("color", vec![color(c)]),
            ("translation", vec![translation(c, h, w)]),
            ("cutout", vec![cutout(c, h, w)]),
            ("policy", policy()),
        ];
        for (name, steps) in cases {
            let params = AugParams::new(n, h, w, steps).expect("params fit");
            let want = tensor(&c[name]);
            for kind in [Kind::Double, Kind::Float] {
                let y = apply(&x.to_kind(kind), &params).expect("apply");
                assert_eq!(y.kind(), kind);
                let d = max_diff(&y, &want);
                assert!(d < 1e-5, "{case} {name} {kind:?}: differs from the official ops by {d}");
            }
        }
    }
}

/// d/dx of Σ wᵢ·T(x)ᵢ by autograd equals central finite differences at a few pixels, for each op and the policy.
#[test]
fn every_op_is_differentiable_in_x() {
    let (n, c, h, w) = (2, 3, 8, 8);
    for ops in [vec![AugOp::Color], vec![AugOp::Translation], vec![AugOp::Cutout], DiffAugment::default().ops] {
        let params = AugParams::draw(&mut derived_rng(1, "aug", 0), n, h, w, &ops, CPU).expect("draw");
        let x = randn(&mut derived_rng(2, "x", 0), &[n, c, h, w], CPU).to_kind(Kind::Double);
        let wt = randn(&mut derived_rng(3, "w", 0), &[n, c, h, w], CPU).to_kind(Kind::Double);
        let f = |x: &Tensor| (apply(x, &params).expect("apply") * &wt).sum(Kind::Double);
        let xg = x.detach().set_requires_grad(true);
        f(&xg).backward();
        let g = xg.grad();
        assert!(g.abs().sum(Kind::Double).double_value(&[]) > 0.0, "{ops:?}: gradient reaches x");
        let mut nonzero = 0;
        for idx in [[0, 0, 0, 0], [0, 1, 3, 4], [1, 2, 7, 7], [1, 0, 4, 2], [0, 2, 5, 1], [1, 1, 2, 6]] {
            let h_ = 1e-6;
            let bump = |d: f64| {
                let e = x.zeros_like();
                let _ = e.get(idx[0]).get(idx[1]).get(idx[2]).get(idx[3]).shallow_clone().fill_(d);
                f(&(&x + e)).double_value(&[])
            };
            let fd = (bump(h_) - bump(-h_)) / (2.0 * h_);
            let ad = g.double_value(&idx);
            nonzero += usize::from(ad != 0.0);
            assert!((fd - ad).abs() <= 1e-6 * fd.abs().max(1.0), "{ops:?} at {idx:?}: autograd {ad} vs finite difference {fd}");
        }
        assert!(nonzero > 0, "{ops:?}: some checked pixel has a nonzero gradient");
    }
}

#[test]
fn one_draw_transforms_two_batches_identically() {
    let (n, h, w) = (5, 16, 16);
    let params = AugParams::draw(&mut derived_rng(4, "aug", 0), n, h, w, &[AugOp::Translation], CPU).expect("draw");
    let AugStep::Translation(t) = &params.steps()[0] else { panic!("a translation step") };
    // Two batches, each sample with one lit pixel, at different places in the two batches.
    let lit = |at: [i64; 2]| {
        let x = Tensor::zeros([n, 1, h, w], (Kind::Float, CPU));
        for s in 0..n {
            let _ = x.get(s).get(0).get(at[0]).get(at[1]).shallow_clone().fill_(1.0);
        }
        x
    };
    for at in [[5, 6], [9, 8]] {
        let y = apply(&lit(at), &params).expect("apply");
        for s in 0..n {
            let (dh, dw) = (t.shift_h[s as usize], t.shift_w[s as usize]);
            assert!(dh.abs() <= max_shift(h) && dw.abs() <= max_shift(w));
            // Output (i, j) reads input (i + t_h, j + t_w): the pixel moves by (−t_h, −t_w).
            let (i, j) = (at[0] - dh, at[1] - dw);
            assert_eq!(y.get(s).get(0).double_value(&[i, j]), 1.0, "sample {s} shift ({dh}, {dw})");
            assert_eq!(y.get(s).sum(Kind::Float).double_value(&[]), 1.0, "sample {s}: one lit pixel");
        }
    }
    // Cutout zeros the same rectangle of both batches.
    let params = AugParams::draw(&mut derived_rng(5, "aug", 0), n, h, w, &[AugOp::Cutout], CPU).expect("draw");
    let ones = Tensor::ones([n, 2, h, w], (Kind::Float, CPU));
    let (a, b) = (apply(&ones, &params).expect("a"), apply(&(&ones * 3.0), &params).expect("b"));
    assert_eq!(max_diff(&(a * 3.0), &b), 0.0);
    let zeros_per_sample = apply(&ones, &params).unwrap().eq(0.0).sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Int64);
    assert!(Vec::<i64>::try_from(&zeros_per_sample).unwrap().iter().all(|z| *z > 0 && *z <= 2 * 8 * 8));
    let params = AugParams::draw(&mut derived_rng(6, "aug", 0), n, h, w, &[AugOp::Color], CPU).expect("draw");
    let x = uniform(&mut derived_rng(7, "x", 0), &[n, 3, h, w], -1.0, 1.0, CPU);
    let y = apply(&x, &params).expect("color");
    assert_eq!(max_diff(&y, &apply(&x, &params).expect("again")), 0.0, "a pure function of x");
    assert!(apply(&Tensor::cat(&[&x, &x], 0), &params).is_err(), "a batch of another size is refused");
}

#[test]
fn neutral_parameters_are_the_identity() {
    let (n, h, w) = (3, 8, 8);
    let x = uniform(&mut derived_rng(8, "x", 0), &[n, 3, h, w], -1.0, 1.0, CPU);
    let zeros = Tensor::zeros([n], (Kind::Float, CPU));
    let ones = Tensor::ones([n], (Kind::Float, CPU));
    let steps = vec![
        AugStep::Color(ColorParams { brightness: zeros, saturation: ones.copy(), contrast: ones }),
        AugStep::Translation(TranslationParams::new(vec![0; 3], vec![0; 3], h, w, CPU).expect("shifts")),
    ];
    let y = apply(&x, &AugParams::new(n, h, w, steps).expect("params")).expect("apply");
    assert!(max_diff(&y, &x) < 1e-6, "differs by {}", max_diff(&y, &x));
    let none = AugParams::draw(&mut derived_rng(8, "aug", 0), n, h, w, &[], CPU).expect("empty policy");
    assert!(none.is_identity());
    assert_eq!(max_diff(&apply(&x, &none).expect("apply"), &x), 0.0);
    // A shift of a whole side or more leaves nothing.
    let far = TranslationParams::new(vec![8, -9, 0], vec![0, 0, 20], h, w, CPU).expect("shifts");
    let y = apply(&x, &AugParams::new(n, h, w, vec![AugStep::Translation(far)]).unwrap()).unwrap();
    assert_eq!(y.abs().sum(Kind::Float).double_value(&[]), 0.0);
}

#[test]
fn draws_are_seeded_in_the_official_ranges_and_keep_dtype() {
    let (n, h, w) = (64, 12, 7);
    let ops = DiffAugment::default().ops;
    assert_eq!(ops, vec![AugOp::Color, AugOp::Translation, AugOp::Cutout]);
    let p = AugParams::draw(&mut derived_rng(9, "aug", 0), n, h, w, &ops, CPU).expect("draw");
    let q = AugParams::draw(&mut derived_rng(9, "aug", 0), n, h, w, &ops, CPU).expect("draw");
    let r = AugParams::draw(&mut derived_rng(9, "aug", 1), n, h, w, &ops, CPU).expect("draw");
    let x = uniform(&mut derived_rng(9, "x", 0), &[n, 3, h, w], -1.0, 1.0, CPU);
    let (yp, yq, yr) = (apply(&x, &p).unwrap(), apply(&x, &q).unwrap(), apply(&x, &r).unwrap());
    assert_eq!(max_diff(&yp, &yq), 0.0, "the same seed gives the same transform");
    assert!(max_diff(&yp, &yr) > 0.1, "another stream gives another transform");
    let (AugStep::Color(c), AugStep::Translation(t), AugStep::Cutout(k)) = (&p.steps()[0], &p.steps()[1], &p.steps()[2])
    else {
        panic!("steps in policy order")
    };
    for (f, lo, hi) in [(&c.brightness, -0.5, 0.5), (&c.saturation, 0.0, 2.0), (&c.contrast, 0.5, 1.5)] {
        assert!(f.min().double_value(&[]) >= lo && f.max().double_value(&[]) < hi);
        assert!(f.max().double_value(&[]) - f.min().double_value(&[]) > 0.5 * (hi - lo), "spread over the range");
    }
    assert_eq!((max_shift(h), max_shift(w), cutout_size(h), cutout_size(w)), (2, 1, 6, 4));
    assert_eq!(t.shift_h.iter().min().zip(t.shift_h.iter().max()), Some((&-2, &2)));
    assert_eq!(t.shift_w.iter().min().zip(t.shift_w.iter().max()), Some((&-1, &1)));
    // Even cutout sides: offsets in [0, side]; the official upper bound h + (1 − size mod 2) is exclusive.
    assert!(k.offset_h.iter().all(|o| (0..=12).contains(o)) && k.offset_w.iter().all(|o| (0..=7).contains(o)));
    assert!(k.offset_h.contains(&12) && k.offset_w.contains(&7) && k.offset_h.contains(&0));
    // bf16 in, bf16 out.
    let yb = apply(&x.to_kind(Kind::BFloat16), &p).expect("bf16");
    assert_eq!(yb.kind(), Kind::BFloat16);
    assert!(max_diff(&yb, &yp) < 0.05, "bf16 within its precision: {}", max_diff(&yb, &yp));
}

#[test]
fn config_parses_and_bad_inputs_are_errors() {
    let d: DiffAugment = serde_json::from_str(r#"{"ops": ["translation", "cutout"]}"#).expect("parses");
    assert_eq!(d.ops, vec![AugOp::Translation, AugOp::Cutout]);
    assert_eq!(serde_json::from_str::<DiffAugment>("{}").expect("default"), DiffAugment::default());
    assert!(serde_json::from_str::<DiffAugment>(r#"{"ops": ["hue"]}"#).is_err());
    assert!(serde_json::from_str::<DiffAugment>(r#"{"policy": ["color"]}"#).is_err());
    let p = d.draw(&mut derived_rng(10, "aug", 0), 2, 8, 8, CPU).expect("draw");
    let e = apply(&Tensor::zeros([2, 3, 8, 9], (Kind::Float, CPU)), &p).expect_err("wrong width").to_string();
    assert!(e.contains("[2, 3, 8, 9]"), "{e}");
    assert!(apply(&Tensor::zeros([2, 3, 8, 8], (Kind::Int64, CPU)), &p).is_err(), "integer images");
    assert!(apply(&Tensor::zeros([2, 8, 8], (Kind::Float, CPU)), &p).is_err(), "3-D input");
    assert!(AugParams::draw(&mut derived_rng(10, "aug", 0), 2, 0, 8, &[AugOp::Cutout], CPU).is_err());
    let short = TranslationParams::new(vec![0, 1], vec![0], 8, 8, CPU);
    assert!(short.is_err(), "one shift list shorter than the other");
    let t = TranslationParams::new(vec![0, 1], vec![0, 0], 8, 8, CPU).expect("shifts");
    assert!(AugParams::new(3, 8, 8, vec![AugStep::Translation(t)]).is_err(), "steps for another batch size");
}
