//! The `Dataset` trait and a deterministic, prefetching, parallel batch loader.
//!
//! Determinism contract (what makes exact resume work): the shuffle of epoch `e` depends only on
//! `(seed, e)`, and the RNG handed to `Dataset::get` for dataset index `i` in epoch `e` is
//! `derived_rng(seed, "item", e * len + i)`. So batch `(e, k)` is the same whatever the worker count
//! and wherever iteration started.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::rng::derived_rng;

/// One decoded item: `x` is row-major with dimensions `shape` (e.g. `[C, H, W]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub x: Vec<f32>,
    pub shape: Vec<i64>,
    pub label: Option<i64>,
}

/// A random-access dataset. `get` must be pure: its output depends only on `index` and the RNG.
pub trait Dataset: Send + Sync {
    /// Number of items.
    fn len(&self) -> usize;
    /// Item `index`, drawing any randomness (crop, flip) from `rng`.
    fn get(&self, index: usize, rng: &mut ChaCha8Rng) -> Result<Example>;
    /// The shape of every item's `x`.
    fn shape(&self) -> Vec<i64>;
    /// True when the dataset has no items.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The captions of item `index`, for captioned data (text-to-image); `None` for other data.
    fn captions(&self, _index: usize) -> Option<Vec<String>> {
        None
    }
    /// A stable name of item `index` (e.g. `class/file` of a caption folder), where the data has one.
    fn item_name(&self, _index: usize) -> Option<String> {
        None
    }
    /// The number of classes, for class-labelled data (MNIST, image folders with class subfolders).
    fn num_classes(&self) -> Option<usize> {
        None
    }
    /// Two-domain data: the number of images of domain `d` (0: A, 1: B); `None` for other data.
    fn domain_len(&self, _d: usize) -> Option<usize> {
        None
    }
    /// Two-domain data: image `index` of domain `d` alone, `(C, H, W)`, drawing any randomness from `rng`
    /// (what evaluation compares: every test image of a domain once, whatever the other domain holds).
    fn domain_image(&self, d: usize, _index: usize, _rng: &mut ChaCha8Rng) -> Result<Example> {
        Err(DataError::Invalid(format!("this dataset has no image domains (asked for domain {d})")))
    }
}

/// A batch on the CPU. `x` is `(N, ...shape)` f32, `y` is `(N,)` i64 when the dataset has labels.
#[derive(Debug)]
pub struct Batch {
    pub x: tch::Tensor,
    pub y: Option<tch::Tensor>,
    pub epoch: usize,
    /// Batch index within the epoch.
    pub index: usize,
}

/// Loader settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LoaderConfig {
    pub batch_size: usize,
    /// Decoding threads; 0 means rayon's default (one per core).
    pub workers: usize,
    /// Depth of the bounded channel of ready batches.
    pub prefetch: usize,
    /// Drop the last incomplete batch of each epoch.
    pub drop_last: bool,
    pub seed: u64,
    /// Data-parallel rank and world size: each batch holds rows `rank·b/world .. (rank+1)·b/world` of the batch
    /// one process would build (the same items, decoded with the same randomness); (0, 1) for one process.
    pub shard: (usize, usize),
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig { batch_size: 64, workers: 0, prefetch: 2, drop_last: true, seed: 0, shard: (0, 1) }
    }
}

/// Produces batches of a dataset in a deterministic order; see the module docs.
#[derive(Clone)]
pub struct Loader {
    dataset: Arc<dyn Dataset>,
    cfg: LoaderConfig,
}

impl Loader {
    /// A loader over `dataset`. Invalid settings (batch size 0, too few items) surface as an `Err`
    /// from the first `next()` of an iterator, or from [`Loader::check`].
    pub fn new(dataset: Arc<dyn Dataset>, cfg: LoaderConfig) -> Self {
        Loader { dataset, cfg }
    }

    /// The settings.
    pub fn config(&self) -> &LoaderConfig {
        &self.cfg
    }

    /// The dataset.
    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    /// Batches in one epoch (0 when the settings give none).
    pub fn batches_per_epoch(&self) -> usize {
        let (n, b) = (self.dataset.len(), self.cfg.batch_size);
        if b == 0 {
            0
        } else if self.cfg.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// Errors when the settings give no batch at all.
    pub fn check(&self) -> Result<()> {
        if self.cfg.batch_size == 0 {
            return Err(DataError::Invalid("loader batch_size must be >= 1".into()));
        }
        if self.batches_per_epoch() == 0 {
            return Err(DataError::Invalid(format!(
                "dataset has {} items, fewer than batch_size {} (drop_last = {}): no batch",
                self.dataset.len(),
                self.cfg.batch_size,
                self.cfg.drop_last
            )));
        }
        Ok(())
    }

    /// The shuffled order of dataset indices in `epoch` (Fisher–Yates from `derived_rng(seed, "shuffle", epoch)`).
    pub fn permutation(&self, epoch: usize) -> Vec<usize> {
        let mut perm: Vec<usize> = (0..self.dataset.len()).collect();
        let mut rng = derived_rng(self.cfg.seed, "shuffle", epoch as u64);
        for i in (1..perm.len()).rev() {
            let j = rng.gen_range(0..=i);
            perm.swap(i, j);
        }
        perm
    }

    /// Builds batch `index` of `epoch` on the calling thread (rayon's global pool); the same batch an
    /// iterator yields at that position.
    pub fn batch(&self, epoch: usize, index: usize) -> Result<Batch> {
        self.check()?;
        let perm = self.permutation(epoch);
        make_batch(&*self.dataset, &self.cfg, &perm, epoch, index)
    }

    /// An endless iterator of batches starting at batch `batch_index` of `epoch` and continuing into
    /// the following epochs. A background thread prepares up to `prefetch` batches ahead, decoding
    /// each batch's items in parallel on its own rayon pool. After an `Err` the iterator ends.
    /// Dropping it stops the thread.
    pub fn iter_from(&self, epoch: usize, batch_index: usize) -> BatchIter {
        let (tx, rx) = sync_channel::<Result<Batch>>(self.cfg.prefetch);
        let stop = Arc::new(AtomicBool::new(false));
        let (dataset, cfg, stop_t) = (self.dataset.clone(), self.cfg.clone(), stop.clone());
        let bpe = self.batches_per_epoch();
        let checked = self.check();
        let handle = std::thread::Builder::new().name("ganzoo-loader".into()).spawn(move || {
            if let Err(e) = checked {
                let _ = tx.send(Err(e));
                return;
            }
            let pool = match rayon::ThreadPoolBuilder::new()
                .num_threads(cfg.workers)
                .thread_name(|i| format!("ganzoo-decode-{i}"))
                .start_handler(|_| tch::set_num_threads(1))
                .build()
            {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Err(DataError::Invalid(format!("cannot start decode threads: {e}"))));
                    return;
                }
            };
            let loader = Loader { dataset, cfg };
            let (mut e, mut k) = (epoch + batch_index / bpe, batch_index % bpe);
            let mut perm = loader.permutation(e);
            loop {
                if stop_t.load(Ordering::Relaxed) {
                    return;
                }
                let res = pool.install(|| make_batch(&*loader.dataset, &loader.cfg, &perm, e, k));
                let failed = res.is_err();
                if tx.send(res).is_err() || failed {
                    return;
                }
                k += 1;
                if k == bpe {
                    k = 0;
                    e += 1;
                    perm = loader.permutation(e);
                }
            }
        });
        match handle {
            Ok(h) => BatchIter { rx: Some(rx), handle: Some(h), stop, done: false },
            Err(err) => {
                let (tx, rx) = sync_channel(1);
                let _ = tx.send(Err(DataError::Invalid(format!("cannot start loader thread: {err}"))));
                BatchIter { rx: Some(rx), handle: None, stop, done: false }
            }
        }
    }
}

/// Decodes batch `k` of epoch `e` (given that epoch's permutation) in parallel on the current rayon pool.
fn make_batch(ds: &dyn Dataset, cfg: &LoaderConfig, perm: &[usize], e: usize, k: usize) -> Result<Batch> {
    let len = perm.len();
    let start = k * cfg.batch_size;
    let end = (start + cfg.batch_size).min(len);
    if start >= end {
        return Err(DataError::Invalid(format!("batch {k} of epoch {e} is out of range")));
    }
    let shape = ds.shape();
    let per: i64 = shape.iter().product();
    let (rank, world) = (cfg.shard.0, cfg.shard.1.max(1));
    let rows = end - start;
    let (start, end) = (start + rank * rows / world, start + (rank + 1) * rows / world);
    let items: Vec<Result<Example>> = perm[start..end]
        .par_iter()
        .map(|&i| {
            let mut rng = derived_rng(cfg.seed, "item", (e as u64).wrapping_mul(len as u64).wrapping_add(i as u64));
            ds.get(i, &mut rng)
        })
        .collect();
    let n = items.len();
    let mut x = Vec::with_capacity(n * per.max(0) as usize);
    let mut labels = Vec::with_capacity(n);
    for (item, &i) in items.into_iter().zip(&perm[start..end]) {
        let ex = item?;
        if ex.shape != shape || ex.x.len() as i64 != per {
            return Err(DataError::Invalid(format!(
                "item {i} has shape {:?} ({} values), dataset shape is {shape:?}",
                ex.shape,
                ex.x.len()
            )));
        }
        x.extend_from_slice(&ex.x);
        labels.push(ex.label);
    }
    let y = if labels.iter().all(Option::is_some) {
        let ys: Vec<i64> = labels.iter().flatten().copied().collect();
        Some(tch::Tensor::from_slice(&ys))
    } else if labels.iter().all(Option::is_none) {
        None
    } else {
        return Err(DataError::Invalid(format!("batch {k} of epoch {e} mixes labelled and unlabelled items")));
    };
    let mut dims = vec![n as i64];
    dims.extend_from_slice(&shape);
    let x = tch::Tensor::from_slice(&x).reshape(dims.as_slice());
    Ok(Batch { x, y, epoch: e, index: k })
}

/// Iterator of batches fed by a background thread; see [`Loader::iter_from`].
pub struct BatchIter {
    rx: Option<Receiver<Result<Batch>>>,
    handle: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    done: bool,
}

impl Iterator for BatchIter {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let got = self.rx.as_ref().and_then(|rx| rx.recv().ok());
        match got {
            Some(Ok(b)) => Some(Ok(b)),
            Some(Err(e)) => {
                self.done = true;
                Some(Err(e))
            }
            None => {
                // The thread ended without an error message: only a panic inside a dataset does that.
                self.done = true;
                match self.handle.take().map(JoinHandle::join) {
                    Some(Err(p)) => {
                        let msg = p
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| p.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "unknown panic".into());
                        Some(Err(DataError::Invalid(format!("loader thread panicked: {msg}"))))
                    }
                    _ => None,
                }
            }
        }
    }
}

impl Drop for BatchIter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Dropping the receiver unblocks a pending send; then the thread returns.
        self.rx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
