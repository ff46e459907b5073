//! What the two-domain translation families (cyclegan, unit, pix2pix, cut) share: opening the A/B data, the first
//! test pairs, the sample grid, and the evaluation against the hidden ground truth (PSNR and L1 of each
//! direction against the true counterpart, next to the identity baseline, plus the cycle error of two-way
//! translators).
use crate::config::Settings;
use crate::error::{PipelineError, Result};
pub use crate::family::scalar;
use crate::family::{Compared, Images, MetricSet, Reference, Translate};
use ganzoo_data::loader::Dataset;
use ganzoo_data::source::{Part, Source};
use ganzoo_data::unpaired::Split;
use ganzoo_models::cyclegan::{PatchDiscriminatorConfig, ResnetGeneratorConfig};
use ganzoo_models::rng::derived_rng;
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// Opens the two-domain dataset of `split`; `paired` gives true pairs where the data has them.
pub fn open_domains(s: &Settings, split: Split, paired: bool) -> Result<Arc<dyn Dataset>> {
    match ganzoo_data::open(&s.data, Part { split, paired, held_out: 0 }, s.seed)? {
        Source::Items(d) if s.data.is_two_domain() => Ok(d),
        _ => Err(PipelineError::Usage(format!("data.kind: two-domain translation needs unpaired or shapes2, got {}", s.data.kind()))),
    }
}

/// The first `n` test examples as (A, B) batches on `device`; true pairs where the data has them.
pub fn test_pairs(s: &Settings, device: Device, n: usize) -> Result<(Tensor, Tensor)> {
    let ds = open_domains(s, Split::Test, s.data.has_ground_truth())?;
    let n = n.min(ds.len());
    if n == 0 {
        return Err(PipelineError::Usage("the test split is empty".into()));
    }
    let mut a = Vec::with_capacity(n);
    let mut b = Vec::with_capacity(n);
    for i in 0..n {
        let ex = ds.get(i, &mut derived_rng(s.seed, "test", i as u64))?;
        let t = Tensor::from_slice(&ex.x).view(ex.shape.as_slice()); // (2, C, H, W)
        a.push(t.get(0));
        b.push(t.get(1));
    }
    Ok((Tensor::stack(&a, 0).to_device(device), Tensor::stack(&b, 0).to_device(device)))
}

/// The standard metrics' sets of a translator: A → B of every test A image (at most `n`) against the real test
/// B images, and B → A against the test A images (the protocol of the CycleGAN and CUT papers); then the
/// identity baseline beside PSNR's: the test A images untranslated against test B, at the same size and count
/// (what doing nothing scores).
pub fn metric_sets<'a>(s: &Settings, device: Device, t: &'a dyn Translate, n: usize) -> Result<Vec<MetricSet<'a>>> {
    let ds = open_domains(s, Split::Test, false)?;
    let mut sets = Vec::new();
    let directions: &[(usize, &str, bool)] = if t.both_ways() { &[(0, "A→B", true), (1, "B→A", false)] } else { &[(0, "A→B", true)] };
    for &(d, name, a2b) in directions {
        let (ds, seed) = (ds.clone(), s.seed);
        let count = ds.domain_len(d).unwrap_or(0).min(n);
        let draw = move |first: usize, len: usize| {
            let idx: Vec<usize> = (first..first + len).collect();
            let x = crate::feed::stack_items(ds.as_ref(), &idx, Some(d), seed, "test")?.0; // (len, C, H, W)
            Ok(t.translate(&x.to_device(device), a2b))
        };
        let how = format!("the translation of each test {} image", ["A", "B"][d]);
        sets.push(MetricSet { name: name.into(), how, generated: Compared::Made(Images::new(count, draw)), reference: Reference::test_domain(1 - d) });
    }
    let how = "the test A images untranslated: the identity baseline of A→B".into();
    sets.push(MetricSet { name: "A as B (identity)".into(), how, generated: Compared::Real(Reference::test_domain(0)), reference: Reference::test_domain(1) });
    Ok(sets)
}

/// The checks of a translator built from a ResNet G and a PatchGAN D (cyclegan, cut): two-domain data, the
/// networks' own checks, a side that is a multiple of 4 and large enough for D. False when the data is not
/// two-domain (the rest would mean nothing).
pub fn resnet_patchgan_problems(family: &str, s: &Settings, g: &ResnetGeneratorConfig, d: &PatchDiscriminatorConfig, p: &mut Vec<String>) -> bool {
    if !s.data.is_two_domain() {
        p.push(format!("data.kind: family {family} needs two domains (unpaired or shapes2), got {}", s.data.kind()));
        return false;
    }
    let shape = s.shape();
    p.extend(g.check(shape.channels, shape.channels).into_iter().map(|e| format!("model.generator: {e}")));
    p.extend(d.check(shape.channels).into_iter().map(|e| format!("model.discriminator: {e}")));
    if shape.height % 4 != 0 {
        p.push(format!("data.size: the ResNet generator needs a multiple of 4, got {}", shape.height));
    }
    if d.output_size(shape.height).is_none_or(|s| s < 1) {
        p.push(format!("data.size: {} is too small for a PatchGAN with n_layers {}", shape.height, d.n_layers));
    }
    true
}

/// A batch of pairs (N, 2, C, H, W) as the A and B batches (N, C, H, W).
pub fn domains(x: &Tensor) -> (Tensor, Tensor) {
    (x.select(1, 0), x.select(1, 1))
}

/// Mean absolute difference.
pub fn l1(a: &Tensor, b: &Tensor) -> Tensor {
    (a - b).abs().mean(Kind::Float)
}

/// Mean per-image PSNR (dB) of images in [-1, 1], measured on [0, 1].
pub fn psnr(x: &Tensor, y: &Tensor) -> f64 {
    let mse = ((x - y) / 2.0).square().flatten(1, -1).mean_dim(1, false, Kind::Float); // (N,)
    let p = (mse.clamp_min(1e-10).log10() * -10.0).mean(Kind::Float);
    scalar(&p)
}

/// The sample grid: one row per test pair, six columns A, A→B, A→B→A, B, B→A, B→A→B; three for a one-way
/// translator: A, A→B, the true B.
pub fn grid(t: &dyn Translate, a: &Tensor, b: &Tensor, path: &Path) -> Result<()> {
    let fake_b = t.translate(a, true);
    let columns = if t.both_ways() {
        let rec_a = t.translate(&fake_b, false);
        let fake_a = t.translate(b, false);
        let rec_b = t.translate(&fake_a, true);
        vec![a.shallow_clone(), fake_b, rec_a, b.shallow_clone(), fake_a, rec_b]
    } else {
        vec![a.shallow_clone(), fake_b, b.shallow_clone()]
    };
    let size = a.size();
    let (c, h, w) = (size[1], size[2], size[3]);
    let mut images = Vec::new();
    for i in 0..size[0] {
        for x in &columns {
            let flat = x.get(i).to_device(Device::Cpu).to_kind(Kind::Float).contiguous().view([-1]);
            images.push(Vec::<f32>::try_from(&flat).map_err(PipelineError::torch("reading images"))?);
        }
    }
    ganzoo_data::grid::save_png_grid(&images, c, h, w, columns.len(), path)?;
    Ok(())
}

/// The evaluation of a translator on the test split (`eval.samples` pairs at most): with ground truth, L1 and
/// PSNR of each direction against the true counterpart and of the identity (A against B); the cycle L1 of a
/// two-way translator.
pub fn evaluate(s: &Settings, device: Device, t: &dyn Translate) -> Result<serde_json::Value> {
    let gt = s.data.has_ground_truth();
    let two_way = t.both_ways();
    let ds = open_domains(s, Split::Test, gt)?;
    let n = ds.len().min(s.eval.samples);
    let (a, b) = test_pairs(s, device, n)?;
    let mut out = serde_json::Map::new();
    let mut sums: HashMap<&str, f64> = HashMap::new();
    let chunk = 8;
    let mut count = 0;
    for start in (0..n as i64).step_by(chunk) {
        let len = chunk.min(n - start as usize) as i64;
        let (a, b) = (a.narrow(0, start, len), b.narrow(0, start, len));
        let fake_b = t.translate(&a, true);
        let w = len as f64;
        let fake_a = two_way.then(|| t.translate(&b, false));
        if let Some(fake_a) = &fake_a {
            *sums.entry("cycle_l1_A").or_default() += scalar(&l1(&t.translate(&fake_b, false), &a)) * w;
            *sums.entry("cycle_l1_B").or_default() += scalar(&l1(&t.translate(fake_a, true), &b)) * w;
        }
        if gt {
            *sums.entry("a2b_l1").or_default() += scalar(&l1(&fake_b, &b)) * w;
            *sums.entry("a2b_psnr").or_default() += psnr(&fake_b, &b) * w;
            if let Some(fake_a) = &fake_a {
                *sums.entry("b2a_l1").or_default() += scalar(&l1(fake_a, &a)) * w;
                *sums.entry("b2a_psnr").or_default() += psnr(fake_a, &a) * w;
            }
            *sums.entry("identity_baseline_l1").or_default() += scalar(&l1(&a, &b)) * w;
            *sums.entry("identity_baseline_psnr").or_default() += psnr(&a, &b) * w;
        }
        count += len as usize;
    }
    for (k, v) in sums {
        out.insert(k.into(), json!(v / count as f64));
    }
    out.insert("test_images".into(), json!(count));
    out.insert(
        "protocol".into(),
        json!(if gt && !two_way {
            "test split, true pairs: L1 (on [-1,1]) and PSNR (dB, on [0,1]) of the A→B translation against B; the identity baseline compares A with B directly"
        } else if gt {
            "test split, true pairs: L1 and PSNR (dB, on [0,1]) of the A→B translation against B and of B→A against A; the identity baseline compares A with B directly; cycle L1 on [-1,1]"
        } else if two_way {
            "test split (no ground-truth pairs): cycle L1 of A→B→A against A and B→A→B against B, on [-1,1]"
        } else {
            "test split (no ground-truth pairs): no pixel measure for a one-way translator; see the standard metrics"
        }),
    );
    Ok(serde_json::Value::Object(out))
}

/// One line saying what [`evaluate`] found.
pub fn summarize(e: &serde_json::Value) -> String {
    let f = |k: &str| e[k].as_f64().unwrap_or(f64::NAN);
    if e.get("a2b_psnr").is_some() && e.get("b2a_psnr").is_none() {
        format!("A→B PSNR {:.2} dB, L1 {:.4} against the true pairs (identity baseline {:.2} dB, L1 {:.4})", f("a2b_psnr"), f("a2b_l1"), f("identity_baseline_psnr"), f("identity_baseline_l1"))
    } else if e.get("a2b_psnr").is_some() {
        format!(
            "A→B PSNR {:.2} dB, B→A PSNR {:.2} dB against the true pairs (identity baseline {:.2} dB); cycle L1 {:.4} / {:.4}",
            f("a2b_psnr"),
            f("b2a_psnr"),
            f("identity_baseline_psnr"),
            f("cycle_l1_A"),
            f("cycle_l1_B")
        )
    } else if e.get("cycle_l1_A").is_some() {
        format!("cycle L1 A→B→A {:.4}, B→A→B {:.4} on {} test images", f("cycle_l1_A"), f("cycle_l1_B"), e["test_images"])
    } else {
        format!("{} test images translated A→B; the data has no true pairs, so judge them by the standard metrics (FID)", e["test_images"])
    }
}

/// Test pairs shown in the sample grid of a two-domain family.
pub const GRID_ROWS: usize = 4;

/// The `Family` methods every two-domain translator shares (inside its `impl Family`, for a struct with fields
/// `s: Settings` and `device: Device` that implements [`Translate`]): the sample grid of the first test pairs,
/// `sample` of `n` test pairs, the evaluation against the hidden ground truth and its summary, and the
/// translator for `ganzoo translate`.
macro_rules! two_domain_family_methods {
    () => {
        fn write_samples(&self, path: &std::path::Path) -> $crate::error::Result<()> {
            let (a, b) = $crate::translation::test_pairs(&self.s, self.device, $crate::translation::GRID_ROWS)?;
            $crate::translation::grid(self, &a, &b, path)
        }

        fn sample_to(&self, n: usize, _seed: u64, path: &std::path::Path) -> $crate::error::Result<()> {
            let (a, b) = $crate::translation::test_pairs(&self.s, self.device, n)?;
            $crate::translation::grid(self, &a, &b, path)
        }

        fn evaluate(&self) -> $crate::error::Result<serde_json::Value> {
            $crate::translation::evaluate(&self.s, self.device, self)
        }

        fn summarize(&self, e: &serde_json::Value) -> String {
            $crate::translation::summarize(e)
        }

        fn metric_sets(&self, n: usize) -> $crate::error::Result<Vec<$crate::family::MetricSet<'_>>> {
            $crate::translation::metric_sets(&self.s, self.device, self, n)
        }

        fn translator(&self) -> Option<&dyn $crate::family::Translate> {
            Some(self)
        }
    };
}
pub(crate) use two_domain_family_methods;

/// The PatchGAN keys a `discriminator:` mapping gives.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchKeys {
    ndf: Option<i64>,
    n_layers: Option<i64>,
    norm: Option<ganzoo_models::cyclegan::Norm>,
    antialias: Option<bool>,
}

/// Reads a family's `discriminator:` mapping over its own defaults `base`: a key left out keeps `base`'s value
/// (the shared struct's defaults are CycleGAN's, so a partial mapping would otherwise switch pix2pix's batch
/// norm or CUT's anti-aliasing off without a word).
pub(crate) fn patch_keys_over<'de, D: serde::Deserializer<'de>>(d: D, base: PatchDiscriminatorConfig) -> std::result::Result<PatchDiscriminatorConfig, D::Error> {
    let k = <PatchKeys as serde::Deserialize>::deserialize(d)?;
    Ok(PatchDiscriminatorConfig {
        ndf: k.ndf.unwrap_or(base.ndf),
        n_layers: k.n_layers.unwrap_or(base.n_layers),
        norm: k.norm.unwrap_or(base.norm),
        antialias: k.antialias.unwrap_or(base.antialias),
    })
}
