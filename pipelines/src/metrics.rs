//! The standard metrics of GAN papers, each reported with the protocol that makes it comparable: FID (Heusel
//! et al. 2017), KID (Bińkowski et al. 2018), improved precision/recall (Kynkäänniemi et al. 2019) and
//! density/coverage (Naeem et al. 2020) on the pool3 features of the FID Inception-v3, intra-class FID for
//! class-conditional images, and the Inception Score (Salimans et al. 2016) with a user's classifier.
//!
//! Every image goes the same way, whether a family generated it, a dataset holds it or a folder has it as a
//! file: 8-bit RGB (generated images are quantised as their PNG would be; grayscale is replicated to three
//! channels), resized to 299×299 by the protocol (`clean`: clean-fid's PIL bicubic; `legacy`: pytorch-fid's
//! bilinear), then the network. So `ganzoo fid RUN DIR` gives what `ganzoo fid` of the run's samples saved as
//! PNG files would.
//!
//! Features of real images are cached under `<cache>/fid-stats/`, keyed by a hash of the images' content
//! (the decoded pixels, or a folder's file names and bytes), the resize protocol and the network's SHA-1.
use crate::checkpoint::write_atomic;
use crate::config::{BestMetric, DataConfig, EvalConfig, ResizeProtocol, Settings, StandardMetric};
use crate::error::{PipelineError, Result};
use crate::family::{Compared, Family, Images, MetricSet, Reference};
use crate::hash::Fnv;
use crate::progress::Counter;
use ganzoo_data::fid_stats::GaussianStats;
use ganzoo_data::resize::{resize_batch, resize_fid, rgb8_planes, INCEPTION_SIZE};
use ganzoo_data::source::Source;
use ganzoo_models::inception::{FeatureNet, FEATURE_DIM};
use ganzoo_models::metrics as m;
use ganzoo_models::rng::derived_rng;
use rayon::prelude::*;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use tch::{CModule, Device, Kind, Tensor};

/// Neighbours of improved precision/recall (Kynkäänniemi et al. 2019).
pub const PR_K: usize = 3;
/// Neighbours of density/coverage (Naeem et al. 2020).
pub const DC_K: usize = 5;
/// KID's subsets and their largest size (torch-fidelity's defaults).
pub const KID_SUBSETS: usize = 100;
pub const KID_SUBSET_SIZE: usize = 1000;
/// Splits of the Inception Score.
pub const IS_SPLITS: usize = 10;
/// Image files a folder may hold (bounds the file list before anything is decoded).
pub const MAX_FOLDER_IMAGES: usize = 1_000_000;
/// Bumped when what the cache holds changes.
const CACHE_VERSION: &str = "ganzoo-fid-features-1";

/// Features of a set of images: (N, 2048) float32 on the CPU, the classifier's logits (N, K) where IS is
/// computed, the images' classes where they have them, and what the set is, in words.
pub struct Features {
    pub feats: Tensor,
    pub logits: Option<Tensor>,
    pub labels: Option<Vec<i64>>,
    pub what: String,
}

impl Features {
    pub fn len(&self) -> usize {
        self.feats.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same features, sharing the tensors' storage.
    pub fn share(&self) -> Features {
        Features { feats: self.feats.shallow_clone(), logits: self.logits.as_ref().map(Tensor::shallow_clone), labels: self.labels.clone(), what: self.what.clone() }
    }
}

/// The default feature network: `<cache>/inception/default_1.pt`.
pub fn default_network_path() -> PathBuf {
    ganzoo_data::inception::inception_dir(&ganzoo_data::default_cache_dir()).join(ganzoo_data::inception::MODEL_FILE)
}

/// The feature cache folder: `<cache>/fid-stats`.
pub fn cache_dir() -> PathBuf {
    ganzoo_data::default_cache_dir().join("fid-stats")
}

/// The feature network (and IS classifier) with the protocol around it.
pub struct Evaluator {
    net: FeatureNet,
    classifier: Option<(CModule, String)>,
    resize: ResizeProtocol,
    batch: usize,
    metrics: Vec<StandardMetric>,
    quiet: bool,
}

/// A missing or unloadable network file is the user's to fix (exit 2), with the command that fetches it.
fn load_error(key: &str, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Usage(format!("{key}: {e}"))
}

impl Evaluator {
    /// Loads the feature network (`eval.network`, default `<cache>/inception/default_1.pt`) and the IS
    /// classifier (`eval.inception`) onto `device`.
    pub fn new(e: &EvalConfig, device: Device, quiet: bool) -> Result<Self> {
        let path = e.network.clone().unwrap_or_else(default_network_path);
        let net = FeatureNet::load(&path, device).map_err(|err| load_error("eval.network", err))?;
        let classifier = match &e.inception {
            None => None,
            Some(p) => {
                if !p.is_file() {
                    return Err(PipelineError::Usage(format!("eval.inception: {}: no such file (a TorchScript classifier returning logits)", p.display())));
                }
                let mut module = CModule::load_on_device(p, device)
                    .map_err(|err| PipelineError::Usage(format!("eval.inception: {}: cannot load it as a TorchScript module: {err}", p.display())))?;
                module.set_eval();
                let sha1 = ganzoo_models::inception::sha1_of_file(p).map_err(|err| load_error("eval.inception", err))?;
                Some((module, format!("{} sha1 {sha1}", p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())))
            }
        };
        Ok(Evaluator { net, classifier, resize: e.resize, batch: e.batch_size.max(1), metrics: e.metrics.clone(), quiet })
    }

    /// The network, resize and metric definitions, in words: the fixed part of every protocol string.
    pub fn describe(&self) -> String {
        let resize = match self.resize {
            ResizeProtocol::Clean => "clean (PIL bicubic with antialiasing on float images, as clean-fid)",
            ResizeProtocol::Legacy => "legacy (bilinear without antialiasing, as pytorch-fid)",
        };
        format!("features: {}; resize to {INCEPTION_SIZE}×{INCEPTION_SIZE}: {resize}", self.net.describe())
    }

    /// The metrics' definitions, in words.
    fn definitions(&self, n_gen: usize, n_real: usize) -> String {
        let mut d = Vec::new();
        for metric in &self.metrics {
            d.push(match metric {
                StandardMetric::Fid => "FID (float64, Fréchet distance of Gaussian fits)".to_string(),
                StandardMetric::Kid => format!("KID (unbiased MMD², cubic polynomial kernel, {KID_SUBSETS} subsets of {})", kid_subset(n_gen, n_real)),
                StandardMetric::PrecisionRecall => format!("precision/recall (k = {PR_K})"),
                StandardMetric::DensityCoverage => format!("density/coverage (k = {DC_K})"),
            });
        }
        if let Some((_, c)) = &self.classifier {
            d.push(format!("IS ({IS_SPLITS} splits, classifier {c})"));
        }
        d.join(", ")
    }

    /// Images in [-1, 1] (N, C, H, W) → the network's input (N, 3, 299, 299), pixel values in [0, 255]:
    /// quantised to 8 bits as their PNG would be (NaN as black), then resized by the protocol.
    fn input_of_generated(&self, x: &Tensor) -> Result<Tensor> {
        let q = ((x.detach().to_device(Device::Cpu).to_kind(Kind::Float).nan_to_num(-1.0, 1.0, -1.0).clamp(-1.0, 1.0) + 1.0) * 127.5).round();
        Ok(resize_batch(&q, [INCEPTION_SIZE, INCEPTION_SIZE], self.resize)?)
    }

    /// Features (and logits) of `count` images whose network inputs `next(first, len)` gives, `self.batch`
    /// at a time, with a progress bar.
    fn extract(&self, count: usize, what: &str, mut next: impl FnMut(usize, usize) -> Result<Tensor>) -> Result<(Tensor, Option<Tensor>)> {
        let bar = Counter::new(count as u64, what, self.quiet);
        let (mut feats, mut logits) = (Vec::new(), Vec::new());
        for first in (0..count).step_by(self.batch) {
            let len = self.batch.min(count - first);
            let x = next(first, len)?; // (len, 3, 299, 299) in [0, 255]
            tch::no_grad(|| -> Result<()> {
                feats.push(self.net.features(&x)?.to_device(Device::Cpu));
                if let Some((c, name)) = &self.classifier {
                    let input = x.to_device(self.net.device()).to_kind(Kind::Float);
                    let out = c.forward_ts(&[input]).map_err(|e| PipelineError::Usage(format!("eval.inception: {name}: running it failed: {e}")))?;
                    let s = out.size();
                    if s.len() != 2 || s[0] != len as i64 || s[1] < 2 {
                        return Err(PipelineError::Usage(format!("eval.inception: {name}: returned shape {s:?} for {len} images; it must return logits ({len}, K), K ≥ 2")));
                    }
                    logits.push(out.to_device(Device::Cpu).to_kind(Kind::Double));
                }
                Ok(())
            })?;
            bar.inc_by(len as u64);
        }
        bar.finish();
        if feats.is_empty() {
            return Err(PipelineError::Usage(format!("{what}: no images")));
        }
        Ok((Tensor::cat(&feats, 0), (!logits.is_empty()).then(|| Tensor::cat(&logits, 0))))
    }

    /// Features of a family's generated images.
    pub fn generated(&self, images: &Images, what: &str) -> Result<Features> {
        let (feats, logits) = self.extract(images.count, &format!("features of {what}"), |first, len| {
            let x = (images.draw)(first, len)?;
            if x.size().first() != Some(&(len as i64)) {
                return Err(PipelineError::Runtime(format!("{what}: asked for {len} images, got {:?}", x.size())));
            }
            self.input_of_generated(&x)
        })?;
        Ok(Features { feats, logits, labels: images.labels.clone(), what: format!("{} generated images ({what})", images.count) })
    }

    /// Features of the real images of `r` in the run's data: at most `n`, evenly spaced over the split, from
    /// the cache when the same images were seen with the same protocol and network.
    pub fn reference(&self, s: &Settings, r: &Reference, n: usize) -> Result<Features> {
        let ds = match ganzoo_data::open(&s.data, r.part, s.seed)? {
            Source::Items(d) => d,
            Source::Points { .. } => return Err(PipelineError::Usage(format!("data.kind: {} is 2-D points, not images", s.data.kind()))),
        };
        let len = match r.domain {
            Some(d) => ds.domain_len(d).unwrap_or(0),
            None => ds.len(),
        };
        let count = len.min(n);
        if count == 0 {
            return Err(PipelineError::Usage(format!("the reference images ({}) are empty", describe_reference(&s.data, r))));
        }
        let idx: Vec<usize> = (0..count).map(|i| i * len / count).collect();
        let load = |range: std::ops::Range<usize>| crate::feed::stack_items(ds.as_ref(), &idx[range], r.domain, s.seed, "reference");
        // The key: every image's 8-bit pixels and label (decoded once more on a miss; decoding is cheap next
        // to the network).
        let mut h = self.key();
        let mut labels: Option<Vec<i64>> = Some(Vec::with_capacity(count));
        for first in (0..count).step_by(256) {
            let (x, y) = load(first..(first + 256).min(count))?;
            let q = ((x.to_kind(Kind::Float).clamp(-1.0, 1.0) + 1.0) * 127.5).round().to_kind(Kind::Uint8).contiguous();
            h.field(&q.size().iter().flat_map(|d| d.to_le_bytes()).collect::<Vec<u8>>());
            let bytes = Vec::<u8>::try_from(&q.view([-1])).map_err(PipelineError::torch("reading reference images"))?;
            h.field(&bytes);
            match (&mut labels, y) {
                (Some(l), Some(y)) => {
                    h.field(&y.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());
                    l.extend(y);
                }
                (l, _) => *l = None,
            }
        }
        let what = format!("{count} real images ({})", describe_reference(&s.data, r));
        let (feats, _) = self.cached(&h, &format!("features of {what}"), count, |first, len| {
            let (x, _) = load(first..first + len)?;
            self.input_of_generated(&x)
        })?;
        Ok(Features { feats, logits: None, labels, what })
    }

    /// Features of every image file under `dir` (recursively, sorted by path), from the cache when the same
    /// files (names and bytes) were seen with the same protocol and network.
    pub fn folder(&self, dir: &Path) -> Result<Features> {
        let files = image_files(dir)?;
        let mut h = self.key();
        for f in &files {
            let bytes = std::fs::read(f).map_err(|e| PipelineError::Usage(format!("{}: cannot read it: {e}", f.display())))?;
            h.field(f.strip_prefix(dir).unwrap_or(f).to_string_lossy().as_bytes());
            h.field(&bytes);
        }
        let what = format!("{} images of {}", files.len(), dir.display());
        let (feats, logits) = self.cached(&h, &format!("features of {what}"), files.len(), |first, len| {
            let planes = files[first..first + len].par_iter().map(|p| fid_input(p, self.resize)).collect::<Result<Vec<_>>>()?;
            let s = INCEPTION_SIZE as i64;
            Ok(Tensor::from_slice(&planes.concat()).view([len as i64, 3, s, s]))
        })?;
        Ok(Features { feats, logits, labels: None, what })
    }

    /// The cache key's start: the protocol and the network.
    fn key(&self) -> Fnv {
        let mut h = Fnv::default();
        h.field(CACHE_VERSION.as_bytes());
        h.field(self.resize.as_str().as_bytes());
        h.field(self.net.sha1().as_bytes());
        h
    }

    /// Features of `count` real images under the content key `h`: read from the cache, or extracted and
    /// written there (atomically; a cache that cannot be written is only a slower next time).
    fn cached(&self, h: &Fnv, what: &str, count: usize, next: impl FnMut(usize, usize) -> Result<Tensor>) -> Result<(Tensor, Option<Tensor>)> {
        let path = cache_dir().join(format!("{}.safetensors", h.hex()));
        // The cache keeps features only: with an IS classifier the images go through the networks again.
        if let (None, Ok(t)) = (&self.classifier, Tensor::read_safetensors(&path)) {
            if let Some((_, f)) = t.into_iter().find(|(k, _)| k == "features") {
                if f.size() == [count as i64, FEATURE_DIM] {
                    return Ok((f, None));
                }
            }
        }
        let (feats, logits) = self.extract(count, what, next)?;
        if std::fs::create_dir_all(cache_dir()).is_ok() {
            let _ = write_atomic(&path, |tmp| {
                Tensor::write_safetensors(&[("features", &feats)], tmp).map_err(PipelineError::torch(format!("writing {}", tmp.display())))
            });
        }
        Ok((feats, logits))
    }

    /// The metrics of generated features against real ones; `seed` draws KID's subsets. A metric that needs
    /// more images than a set has is left out and said so under `skipped`.
    pub fn compare(&self, gen: &Features, real: &Features, seed: u64) -> Result<Map<String, Value>> {
        let (ng, nr) = (gen.len(), real.len());
        for (set, n) in [(&gen.what, ng), (&real.what, nr)] {
            if n < 2 {
                return Err(PipelineError::Usage(format!(
                    "{set}: FID needs at least 2 images on each side (the covariance of {n} image{} is undefined)",
                    if n == 1 { "" } else { "s" }
                )));
            }
        }
        let mut out = Map::new();
        let mut skipped = Vec::new();
        for metric in &self.metrics {
            match metric {
                StandardMetric::Fid => {
                    out.insert("fid".into(), json!(fid(&gen.feats, &real.feats)?));
                    if let (Some(gl), Some(rl)) = (&gen.labels, &real.labels) {
                        out.insert("intra_class_fid".into(), intra_class_fid(&gen.feats, gl, &real.feats, rl)?);
                    }
                }
                StandardMetric::Kid => {
                    let size = kid_subset(ng, nr);
                    let k = m::kid(&real.feats, &gen.feats, KID_SUBSETS, size, &mut derived_rng(seed, "kid", 0))?;
                    out.insert("kid".into(), json!(k.mean));
                    out.insert("kid_std".into(), json!(k.std));
                }
                StandardMetric::PrecisionRecall if ng.min(nr) > PR_K => {
                    let pr = m::precision_recall(&real.feats, &gen.feats, PR_K)?;
                    out.insert("precision".into(), json!(pr.precision));
                    out.insert("recall".into(), json!(pr.recall));
                }
                StandardMetric::DensityCoverage if ng.min(nr) > DC_K => {
                    let dc = m::density_coverage(&real.feats, &gen.feats, DC_K)?;
                    out.insert("density".into(), json!(dc.density));
                    out.insert("coverage".into(), json!(dc.coverage));
                }
                StandardMetric::PrecisionRecall => skipped.push(format!("precision/recall: needs more than {PR_K} images on each side")),
                StandardMetric::DensityCoverage => skipped.push(format!("density/coverage: needs more than {DC_K} images on each side")),
            }
        }
        if let Some(l) = &gen.logits {
            let (mean, std) = inception_score(l, IS_SPLITS.min(ng))?;
            out.insert("inception_score".into(), json!(mean));
            out.insert("inception_score_std".into(), json!(std));
        }
        if !skipped.is_empty() {
            out.insert("skipped".into(), json!(skipped));
        }
        Ok(out)
    }

    /// The protocol string of one comparison.
    pub fn protocol(&self, gen: &Features, real: &Features, seed: u64) -> String {
        format!("{}; {}; {} against {}; seed {seed}", self.definitions(gen.len(), real.len()), self.describe(), gen.what, real.what)
    }

    /// Every comparison of a family's [`Family::metric_sets`] with `s.eval.samples` images, by name (each with
    /// its protocol), or `None` when the family has no images to compare (2-D points) or no metric is asked.
    pub fn evaluate(&self, fam: &dyn Family, s: &Settings) -> Result<Option<Evaluated>> {
        if self.metrics.is_empty() && self.classifier.is_none() {
            return Ok(None);
        }
        let sets: Vec<MetricSet> = fam.metric_sets(s.eval.samples)?;
        if sets.is_empty() {
            return Ok(None);
        }
        let mut refs: Vec<(Reference, Features)> = Vec::new();
        let mut out = Map::new();
        for set in &sets {
            let gen = match &set.generated {
                Compared::Made(images) => self.generated(images, &format!("{}: {}", set.name, set.how))?,
                Compared::Real(r) => self.real(&mut refs, s, *r)?.share(),
            };
            let real = self.real(&mut refs, s, set.reference)?;
            let mut r = self.compare(&gen, real, s.seed)?;
            r.insert("generated".into(), json!(gen.len()));
            r.insert("reference".into(), json!(real.len()));
            r.insert("protocol".into(), json!(self.protocol(&gen, real, s.seed)));
            out.insert(set.name.clone(), Value::Object(r));
        }
        Ok(Some(Evaluated { json: Value::Object(out), first: sets[0].name.clone() }))
    }

    /// The features of the real images `r` with `s.eval.samples` at most, from `refs` or extracted (or read from
    /// the cache) into it once.
    fn real<'r>(&self, refs: &'r mut Vec<(Reference, Features)>, s: &Settings, r: Reference) -> Result<&'r Features> {
        let i = match refs.iter().position(|(x, _)| *x == r) {
            Some(i) => i,
            None => {
                refs.push((r, self.reference(s, &r, s.eval.samples)?));
                refs.len() - 1
            }
        };
        Ok(&refs[i].1)
    }
}

/// The standard metrics of a family's comparisons.
pub struct Evaluated {
    /// Each comparison by name (a JSON object: its keys sort, so they need not follow the family's order).
    pub json: Value,
    /// The family's first comparison (samples, A → B, Stage-II, prior samples): the one `eval.best` follows.
    pub first: String,
}

impl Evaluated {
    /// The value `eval.best` compares: the metric of the first comparison, with its name.
    pub fn best_score(&self, best: BestMetric) -> Option<(String, f64)> {
        Some((self.first.clone(), self.json[&self.first][best.key()].as_f64()?))
    }
}

/// KID's subset size: 1,000, or the smaller set's size.
fn kid_subset(n_gen: usize, n_real: usize) -> usize {
    KID_SUBSET_SIZE.min(n_gen).min(n_real)
}

/// FID of two feature sets (N, F).
pub fn fid(gen: &Tensor, real: &Tensor) -> Result<f64> {
    let (mg, sg) = m::gaussian_stats(gen)?;
    let (mr, sr) = m::gaussian_stats(real)?;
    Ok(m::frechet_distance(&mg, &sg, &mr, &sr)?)
}

/// FID of each class with at least 2 images on both sides, and their mean.
fn intra_class_fid(gen: &Tensor, gl: &[i64], real: &Tensor, rl: &[i64]) -> Result<Value> {
    let mut classes: Vec<i64> = gl.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let rows = |labels: &[i64], k: i64| Tensor::from_slice(&labels.iter().enumerate().filter(|(_, &l)| l == k).map(|(i, _)| i as i64).collect::<Vec<_>>());
    let mut per_class = Map::new();
    for k in classes {
        let (g, r) = (rows(gl, k), rows(rl, k));
        if g.size()[0] >= 2 && r.size()[0] >= 2 {
            per_class.insert(k.to_string(), json!(fid(&gen.index_select(0, &g), &real.index_select(0, &r))?));
        }
    }
    let values: Vec<f64> = per_class.values().filter_map(Value::as_f64).collect();
    let mean = (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
    Ok(json!({ "mean": mean, "per_class": per_class }))
}

/// The Inception Score of logits (N, K) in `splits` consecutive splits: exp(E_x KL(p(y|x) ‖ p(y))) per split,
/// their mean and (population) standard deviation, as the original code and torch-fidelity report it.
pub fn inception_score(logits: &Tensor, splits: usize) -> Result<(f64, f64)> {
    let n = logits.size()[0] as usize;
    if splits == 0 || n < splits {
        return Err(PipelineError::Usage(format!("the Inception Score needs at least {splits} images, got {n}")));
    }
    let p = logits.to_kind(Kind::Double).softmax(1, Kind::Double); // (N, K)
    let mut scores = Vec::with_capacity(splits);
    for s in 0..splits {
        let (a, b) = (s * n / splits, (s + 1) * n / splits);
        let part = p.narrow(0, a as i64, (b - a) as i64); // (n_s, K)
        let py = part.mean_dim(0, true, Kind::Double); // (1, K)
        let kl = (&part * (part.clamp_min(1e-300).log() - py.clamp_min(1e-300).log())).sum_dim_intlist(1, false, Kind::Double); // (n_s,)
        scores.push(kl.mean(Kind::Double).double_value(&[]).exp());
    }
    let mean = scores.iter().sum::<f64>() / splits as f64;
    let var = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / splits as f64;
    Ok((mean, var.sqrt()))
}

/// Which split of the data the reference images are, in words.
pub fn describe_reference(data: &DataConfig, r: &Reference) -> String {
    use ganzoo_data::unpaired::Split;
    let kind = data.kind();
    let domain = r.domain.map(|d| format!(", domain {}", ["A", "B"][d.min(1)])).unwrap_or_default();
    match r.part.split {
        Split::Train => format!("{kind}: the training split{domain}"),
        Split::Test if data.has_test_split() => format!("{kind}: the test split{domain}"),
        Split::Test if r.part.held_out > 0 => format!("{kind}: the last {} images, held out from training", r.part.held_out),
        Split::Test => format!("{kind}: all images (the data has no test split; they are also the training images)"),
    }
}

/// The image files under `dir`, recursively (links to files followed, links to folders not), sorted; at most
/// [`MAX_FOLDER_IMAGES`]. An empty folder is an error.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| PipelineError::Usage(format!("{}: cannot read the folder: {e}", d.display())))?;
        for e in entries.flatten() {
            let Ok(t) = e.file_type() else { continue };
            let p = e.path();
            // Links to files are followed (a folder of links is a common way to pick images); links to folders
            // are not (no cycles).
            let is_file = t.is_file() || (t.is_symlink() && std::fs::metadata(&p).is_ok_and(|m| m.is_file()));
            if t.is_dir() && depth < 32 {
                stack.push((p, depth + 1));
            } else if is_file && ganzoo_data::unpaired::is_image_file(&p) {
                out.push(p);
                if out.len() > MAX_FOLDER_IMAGES {
                    return Err(PipelineError::Usage(format!("{}: more than {MAX_FOLDER_IMAGES} images", dir.display())));
                }
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(PipelineError::Usage(format!("{}: no image files (png, jpg, bmp, gif, tif, webp) in it or its subfolders", dir.display())));
    }
    Ok(out)
}

/// One image file as the network's input (3, 299, 299) in [0, 255]: decoded (size-checked before
/// allocation), converted to 8-bit RGB (grayscale replicated, alpha dropped, 16-bit scaled), resized by the
/// protocol.
pub fn fid_input(path: &Path, resize: ResizeProtocol) -> Result<Vec<f32>> {
    let img = ganzoo_data::folder::decode_image(path).map_err(|e| PipelineError::Usage(e.to_string()))?;
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    resize_fid(&rgb8_planes(&rgb), [3, h, w], [INCEPTION_SIZE, INCEPTION_SIZE], resize).map_err(|e| PipelineError::Usage(format!("{}: {e}", path.display())))
}

/// Reads FID statistics (`mu`, `sigma`) from a `.npz`, checking their width against the network's.
pub fn read_stats(path: &Path) -> Result<GaussianStats> {
    let stats = ganzoo_data::fid_stats::read_fid_stats(path).map_err(|e| PipelineError::Usage(format!("{}: {e}", path.display())))?;
    if stats.dim != FEATURE_DIM as usize {
        return Err(PipelineError::Usage(format!(
            "{}: statistics of {}-d features; the FID network gives {FEATURE_DIM}-d pool3 features",
            path.display(),
            stats.dim
        )));
    }
    Ok(stats)
}

/// FID between statistics and features, or two statistics.
pub fn fid_of_stats(a: &GaussianStats, b: &GaussianStats) -> Result<f64> {
    let ((ma, sa), (mb, sb)) = (a.tensors(), b.tensors());
    Ok(m::frechet_distance(&ma, &sa, &mb, &sb)?)
}

/// The Gaussian statistics of features.
pub fn stats_of(f: &Features) -> Result<GaussianStats> {
    if f.len() < 2 {
        return Err(PipelineError::Usage(format!("{}: statistics need at least 2 images", f.what)));
    }
    let (mu, sigma) = m::gaussian_stats(&f.feats)?;
    Ok(GaussianStats::from_tensors(&mu, &sigma)?)
}

/// One line on the standard metrics: `FID 12.3 (samples)` per comparison.
pub fn summarize(eval: &Value) -> String {
    let Some(sets) = eval.as_object() else { return String::new() };
    sets.iter()
        .filter_map(|(name, v)| {
            let f = v["fid"].as_f64().map(|x| format!("FID {x:.2}"));
            let k = v["kid"].as_f64().map(|x| format!("KID {x:.4}"));
            let p = v["precision"].as_f64().zip(v["recall"].as_f64()).map(|(p, r)| format!("precision {p:.2} / recall {r:.2}"));
            let parts: Vec<String> = [f, k, p].into_iter().flatten().collect();
            (!parts.is_empty()).then(|| format!("{name}: {}", parts.join(", ")))
        })
        .collect::<Vec<_>>()
        .join("; ")
}
