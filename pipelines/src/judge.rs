//! Classifiers that judge generated images without any download: a digit classifier trained on the real
//! MNIST digits, and an attribute classifier (shape, colour, size, background) trained on real captioned
//! shapes. Each is trained once, deterministically, and cached under `<cache>/judges/` with its held-out
//! accuracy.
use crate::checkpoint::{write_atomic, write_text_atomic};
use crate::error::{PipelineError, Result};
use ganzoo_data::loader::Dataset;
use ganzoo_data::shapes::{CaptionedShapes, ShapeAttrs, ShapesConfig};
use ganzoo_data::Split;
use ganzoo_models::classifier::{accuracy, predict, train_classifier, Classifier};
use ganzoo_models::metrics;
use ganzoo_models::rng::derived_rng;
use serde_json::json;
use std::path::PathBuf;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Bump when the judges' recipe changes, so stale cached weights are not reused.
const RECIPE: u32 = 3;
const WIDTH: i64 = 32;
const DIGITS_TRAIN: usize = 9000;
const DIGITS_STEPS: i64 = 1000;
const SHAPES_TRAIN: usize = 3000;
const SHAPES_TEST: usize = 600;
const SHAPES_STEPS: i64 = 800;
const BATCH: i64 = 64;
const SEED: u64 = 20_161_001;

/// A trained classifier and what it scored on held-out real images.
pub struct Judge {
    _vs: VarStore,
    net: Classifier,
    held_out: Vec<f64>,
    what: String,
}

impl Judge {
    /// The digit judge: trained on the first 9,000 real MNIST digits, tested on the last 1,000.
    pub fn digits(device: Device) -> Result<Judge> {
        let dir = ganzoo_data::mnist::default_cache_dir().join("mnist");
        let name = format!("mnist_digits_r{RECIPE}");
        Self::cached(&name, 1, 28, &[10], device, "digit classifier", || {
            if !dir.join(ganzoo_data::mnist::IMAGES_FILE).exists() {
                return Err(PipelineError::Usage(format!(
                    "eval: the digit judge trains on real MNIST, which is not at {}; run `ganzoo data get mnist` first",
                    dir.display()
                )));
            }
            let ds = ganzoo_data::mnist::Mnist::open(&dir, false)?;
            let (x, y) = stack(&ds, 0..ds.len(), |ex| vec![ex.label.unwrap_or(-1)])?;
            let n = ds.len() as i64;
            let cut = (DIGITS_TRAIN as i64).min(n - 1);
            Ok(((x.narrow(0, 0, cut), y.narrow(0, 0, cut)), (x.narrow(0, cut, n - cut), y.narrow(0, cut, n - cut)), DIGITS_STEPS))
        })
    }

    /// The attribute judge for captioned shapes of `cfg.size`: trained on 3,000 rendered training images,
    /// tested on 600 of the test split.
    pub fn shapes(cfg: &ShapesConfig, device: Device) -> Result<Judge> {
        let size = cfg.size;
        let name = format!("shapes_{size}_r{RECIPE}");
        Self::cached(&name, 3, size, &ShapeAttrs::HEADS.map(|h| h as i64), device, "attribute classifier", || {
            let c = ShapesConfig { size, train_count: SHAPES_TRAIN, test_count: SHAPES_TEST };
            let label = |ds: &CaptionedShapes, i: usize| ds.attrs(i).as_array().map(|a| a as i64).to_vec();
            let train = CaptionedShapes::open(&c, Split::Train, SEED)?;
            let test = CaptionedShapes::open(&c, Split::Test, SEED)?;
            let tr = stack_indexed(&train, |i| label(&train, i))?;
            let te = stack_indexed(&test, |i| label(&test, i))?;
            Ok((tr, te, SHAPES_STEPS))
        })
    }

    /// Loads the judge from the cache, or trains and caches it.
    fn cached(
        name: &str,
        channels: i64,
        size: i64,
        heads: &[i64],
        device: Device,
        what: &str,
        data: impl FnOnce() -> Result<((Tensor, Tensor), (Tensor, Tensor), i64)>,
    ) -> Result<Judge> {
        let dir = judges_dir();
        let weights = dir.join(format!("{name}.safetensors"));
        let info = dir.join(format!("{name}.json"));
        let mut vs = VarStore::new(device);
        let net = Classifier::new(&vs.root(), channels, size, heads, WIDTH)?;
        if let (true, Ok(text)) = (weights.exists(), std::fs::read_to_string(&info)) {
            let meta: serde_json::Value = serde_json::from_str(&text).map_err(|e| PipelineError::Runtime(format!("{}: {e}", info.display())))?;
            vs.load(&weights).map_err(PipelineError::torch(format!("loading the cached {what} {}", weights.display())))?;
            let held_out = meta["held_out_accuracy"].as_array().map(|a| a.iter().filter_map(|v| v.as_f64()).collect()).unwrap_or_default();
            return Ok(Judge { _vs: vs, net, held_out, what: describe(what, &meta) });
        }
        eprintln!("training the {what} for evaluation (once; cached in {})", dir.display());
        ganzoo_models::init::init_default(&vs, &mut derived_rng(SEED, name, 0));
        let ((xtr, ytr), (xte, yte), steps) = data()?;
        let (xtr, ytr) = (xtr.to_device(device), ytr.to_device(device));
        train_classifier(&vs, &net, &xtr, &ytr, steps, BATCH, &mut derived_rng(SEED, "judge_batches", 0))?;
        let held_out = accuracy(&net, &xte.to_device(device), &yte.to_device(device), 256);
        let meta = json!({
            "judge": what,
            "recipe": RECIPE,
            "train_images": xtr.size()[0],
            "held_out_images": xte.size()[0],
            "steps": steps,
            "held_out_accuracy": held_out,
        });
        std::fs::create_dir_all(&dir).map_err(PipelineError::io(&dir))?;
        let named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        write_atomic(&weights, |tmp| {
            Tensor::write_safetensors(&named, tmp).map_err(PipelineError::torch(format!("saving {}", weights.display())))
        })?;
        write_text_atomic(&info, &meta.to_string())?;
        Ok(Judge { _vs: vs, net, held_out, what: describe(what, &meta) })
    }

    /// Predicted classes (N, heads) of images (N, C, H, W) in [-1, 1].
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        Ok(tch::no_grad(|| predict(&self.net, x, 256)))
    }

    /// Pooled features (N, F) of images (N, C, H, W) in [-1, 1] (evaluation mode, chunks of 256).
    pub fn features(&self, x: &Tensor) -> Tensor {
        let dev = self.net.device();
        tch::no_grad(|| {
            let n = x.size()[0];
            let parts: Vec<Tensor> = (0..n)
                .step_by(256)
                .map(|s| self.net.features_t(&x.narrow(0, s, 256.min(n - s)).to_device(dev), false)) // (b, F)
                .collect();
            Tensor::cat(&parts, 0) // (N, F)
        })
    }

    /// Held-out accuracy of each head on real images.
    pub fn held_out(&self) -> &[f64] {
        &self.held_out
    }

    /// What the judge is, for protocols in reports.
    pub fn describe(&self) -> &str {
        &self.what
    }
}

fn describe(what: &str, meta: &serde_json::Value) -> String {
    format!(
        "a {what} trained on {} real images (held-out accuracy {} on {})",
        meta["train_images"], meta["held_out_accuracy"], meta["held_out_images"]
    )
}

/// `<cache>/judges`.
pub fn judges_dir() -> PathBuf {
    ganzoo_data::mnist::default_cache_dir().join("judges")
}

/// Stacks items of a dataset into (N, C, H, W) images and (N, heads) labels.
fn stack(ds: &dyn Dataset, range: std::ops::Range<usize>, label: impl Fn(&ganzoo_data::Example) -> Vec<i64>) -> Result<(Tensor, Tensor)> {
    let n = range.len() as i64;
    let (mut xs, mut ys, mut shape) = (Vec::new(), Vec::new(), Vec::new());
    for i in range {
        let ex = ds.get(i, &mut derived_rng(SEED, "judge_item", i as u64))?;
        ys.extend(label(&ex));
        shape.clone_from(&ex.shape);
        xs.extend_from_slice(&ex.x);
    }
    let dims: Vec<i64> = std::iter::once(n).chain(shape).collect();
    Ok((Tensor::from_slice(&xs).view(dims.as_slice()), Tensor::from_slice(&ys).view([n, -1]).to_kind(Kind::Int64)))
}

/// Every item of a captioned-shapes split with its four attribute labels.
fn stack_indexed(ds: &CaptionedShapes, label: impl Fn(usize) -> Vec<i64>) -> Result<(Tensor, Tensor)> {
    stack(ds, 0..ds.len(), |ex| label(ex.label.unwrap_or(0) as usize))
}

/// One prompt per attribute combination for the judged evaluation: a training phrasing, or an unseen one (synonyms
/// only), cycling through the phrasings.
pub(crate) fn eval_prompts(all: &[ShapeAttrs], unseen: bool) -> Vec<String> {
    all.iter()
        .enumerate()
        .map(|(i, a)| {
            let list = if unseen { a.unseen_captions() } else { a.captions() };
            list[i % list.len()].clone()
        })
        .collect()
}

/// Per image, whether the judge got each of the four attributes right.
pub(crate) fn attribute_hits(judge: &Judge, x: &Tensor, truth: &[[usize; 4]]) -> Result<Vec<[bool; 4]>> {
    let pred = judge.predict(x)?; // (N, 4)
    let pred: Vec<i64> = Vec::<i64>::try_from(&pred.contiguous().view([-1]).to_device(Device::Cpu)).map_err(PipelineError::torch("reading predictions"))?;
    Ok(truth.iter().enumerate().map(|(i, t)| std::array::from_fn(|h| pred[i * 4 + h] == t[h] as i64)).collect())
}

/// Accuracy per attribute and of all four at once, with an example prompt.
pub(crate) fn accuracy_json(hits: &[[bool; 4]], n: usize, example: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut acc = serde_json::Map::new();
    for (h, name) in ShapeAttrs::NAMES.iter().enumerate() {
        acc.insert(name.to_string(), json!(hits.iter().filter(|r| r[h]).count() as f64 / n as f64));
    }
    acc.insert("all_four".into(), json!(hits.iter().filter(|r| r.iter().all(|&o| o)).count() as f64 / n as f64));
    acc.insert("example_prompt".into(), json!(example));
    acc
}

/// Fréchet distance between Gaussians fitted to two feature sets (N, F) and (M, F) (Heusel et al. 2017), by
/// the one implementation in [`ganzoo_models::metrics`] (float64, symmetric eigendecompositions).
pub fn frechet_distance(a: &Tensor, b: &Tensor) -> Result<f64> {
    let (m1, s1) = metrics::gaussian_stats(a)?;
    let (m2, s2) = metrics::gaussian_stats(b)?;
    Ok(metrics::frechet_distance(&m1, &s1, &m2, &s2)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frechet_distance_of_known_gaussians() {
        let mut rng = derived_rng(1, "fd", 0);
        let x = ganzoo_models::rng::randn(&mut rng, &[4000, 3], Device::Cpu);
        assert!(frechet_distance(&x, &x).unwrap().abs() < 1e-6, "a set against itself");
        // Same covariance, mean moved by (1, 2, 0): the distance is the squared shift, 5.
        let shifted = &x + Tensor::from_slice(&[1.0f32, 2.0, 0.0]);
        assert!((frechet_distance(&x, &shifted).unwrap() - 5.0).abs() < 1e-6);
        // N(0, I) against N(0, 4I) in 3-D: Tr(I + 4I − 2·2I) = 3 (up to sampling error).
        let y = ganzoo_models::rng::randn(&mut derived_rng(1, "fd", 1), &[4000, 3], Device::Cpu) * 2.0;
        let d = frechet_distance(&x, &y).unwrap();
        assert!((d - 3.0).abs() < 0.3, "{d}");
        assert!(frechet_distance(&x, &x.narrow(1, 0, 2)).is_err());
    }
}
