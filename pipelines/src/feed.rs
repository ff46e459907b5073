//! A run's batches: the loader positioned by the number of batches drawn so far, so a resumed run continues
//! with exactly the batch an uninterrupted run would have drawn next.
use crate::config::Config;
use crate::error::{PipelineError, Result};
use ganzoo_data::loader::{BatchIter, Dataset, Loader, LoaderConfig};
use std::path::PathBuf;
use std::sync::Arc;
use tch::Tensor;

/// Batches of a dataset, in the run's deterministic order.
pub struct Feed {
    loader: Loader,
    iter: Option<BatchIter>,
}

impl Feed {
    pub fn new(cfg: &Config, dataset: Arc<dyn Dataset>) -> Self {
        let lc = LoaderConfig {
            batch_size: cfg.train.batch_size as usize,
            workers: cfg.train.workers,
            prefetch: cfg.train.prefetch.max(1),
            drop_last: true,
            seed: cfg.seed,
        };
        Feed { loader: Loader::new(dataset, lc), iter: None }
    }

    /// The `draw`-th batch of the run (CPU). Draws are consecutive; the first one fixes the loader position.
    pub fn next(&mut self, draw: i64) -> Result<Tensor> {
        Ok(self.next_labelled(draw)?.0)
    }

    /// The `draw`-th batch with its labels (class labels, or dataset indices for captioned data).
    pub fn next_labelled(&mut self, draw: i64) -> Result<(Tensor, Option<Tensor>)> {
        let per_epoch = self.loader.batches_per_epoch();
        if per_epoch == 0 {
            return Err(PipelineError::Usage(format!(
                "train.batch_size {} is larger than the dataset ({} examples); lower it",
                self.loader.config().batch_size,
                self.loader.dataset().len()
            )));
        }
        let (loader, draw) = (&self.loader, draw as usize);
        let it = self.iter.get_or_insert_with(|| loader.iter_from(draw / per_epoch, draw % per_epoch));
        match it.next() {
            Some(b) => {
                let b = b?;
                Ok((b.x, b.y))
            }
            None => Err(PipelineError::Runtime("the data loader stopped".into())),
        }
    }
}

/// The MNIST digits of `data.root` (default `<cache>/mnist`), or a usage error saying how to get them.
pub fn open_mnist(root: &Option<PathBuf>, pad_to_32: bool) -> Result<ganzoo_data::mnist::Mnist> {
    let dir = root.clone().unwrap_or_else(|| ganzoo_data::mnist::default_cache_dir().join("mnist"));
    if !dir.join(ganzoo_data::mnist::IMAGES_FILE).exists() {
        return Err(PipelineError::Usage(format!(
            "data: MNIST is not at {}; run `ganzoo data get mnist` first (or set data.root)",
            dir.display()
        )));
    }
    Ok(ganzoo_data::mnist::Mnist::open(&dir, pad_to_32)?)
}
