//! A run's batches: the loader positioned by the number of batches drawn so far, so a resumed run continues
//! with exactly the batch an uninterrupted run would have drawn next; or procedural 2-D points drawn per batch;
//! or, for benchmarks, one fixed batch.
use crate::config::TrainConfig;
use crate::dist::Place;
use crate::error::{PipelineError, Result};
use crate::family::Batch;
use ganzoo_data::loader::{BatchIter, Dataset, Loader, LoaderConfig};
use ganzoo_data::source::Source;
use ganzoo_data::toy::Toy2d;
use ganzoo_models::rng::derived_rng;
use tch::{Device, Tensor};

/// Batches of a data source, in the run's deterministic order, moved to the device.
pub struct Feed {
    kind: Kind,
    batch_size: i64,
    seed: u64,
    device: Device,
    place: Place,
}

enum Kind {
    Points { set: Toy2d, std: f64 },
    Items { loader: Loader, iter: Option<BatchIter> },
    Fixed { x: Tensor, y: Option<Vec<i64>> },
}

/// `train.workers`, at most one decode thread per core: more only make the threads wait on each other (and
/// thousands of them take a minute and a gigabyte to start). Says so when it lowers the number.
fn capped_workers(workers: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if workers > cores {
        eprintln!("note: train.workers: {workers} is more than this machine's {cores} cores; using {cores}");
    }
    workers.min(cores)
}

impl Feed {
    /// Batches of `train.batch_size` from `source` on `device`.
    pub fn new(source: Source, train: &TrainConfig, seed: u64, device: Device) -> Self {
        Self::for_rank(source, train, seed, device, Place::ALONE)
    }

    /// This rank's rows of each batch of `train.batch_size` (the same examples, with the same random draws, as
    /// those rows of one process's batch); the batch size must divide by the world size.
    pub fn for_rank(source: Source, train: &TrainConfig, seed: u64, device: Device, place: Place) -> Self {
        let kind = match source {
            Source::Points { set, std } => Kind::Points { set, std },
            Source::Items(dataset) => {
                let lc = LoaderConfig {
                    batch_size: train.batch_size as usize,
                    workers: capped_workers(train.workers),
                    prefetch: train.prefetch.max(1),
                    drop_last: true,
                    seed,
                    shard: (place.rank, place.world),
                };
                Kind::Items { loader: Loader::new(dataset, lc), iter: None }
            }
        };
        Feed { kind, batch_size: train.batch_size, seed, device, place }
    }

    /// The same batch every draw (for step-time benchmarks that time the update, not the loader).
    pub fn fixed(x: Tensor, y: Option<Vec<i64>>, seed: u64) -> Self {
        let n = x.size()[0];
        let device = x.device();
        Feed { kind: Kind::Fixed { x, y }, batch_size: n, seed, device, place: Place::ALONE }
    }

    /// The `draw`-th batch of the run. Draws are consecutive; the first one fixes the loader position.
    pub fn next(&mut self, draw: i64) -> Result<Batch> {
        let (x, y) = match &mut self.kind {
            Kind::Points { set, std } => {
                let pts = set.sample(self.batch_size as usize, *std, &mut derived_rng(self.seed, "data", draw as u64));
                let flat: Vec<f32> = pts.iter().flat_map(|p| [p[0], p[1]]).collect();
                let x = Tensor::from_slice(&flat).view([pts.len() as i64, 2]);
                let (rank, world) = (self.place.rank as i64, self.place.world as i64);
                let rows = x.size()[0] / world;
                (x.narrow(0, rank * rows, rows), None)
            }
            Kind::Items { loader, iter } => {
                let per_epoch = loader.batches_per_epoch();
                if per_epoch == 0 {
                    return Err(PipelineError::Usage(format!(
                        "train.batch_size {} is larger than the dataset ({} examples); lower it",
                        loader.config().batch_size,
                        loader.dataset().len()
                    )));
                }
                let d = draw as usize;
                let it = iter.get_or_insert_with(|| loader.iter_from(d / per_epoch, d % per_epoch));
                let b = it.next().ok_or_else(|| PipelineError::Runtime("the data loader stopped".into()))??;
                let y = match b.y {
                    Some(y) => Some(Vec::<i64>::try_from(&y).map_err(PipelineError::torch("reading labels"))?),
                    None => None,
                };
                (b.x, y)
            }
            Kind::Fixed { x, y } => (x.shallow_clone(), y.clone()),
        };
        Ok(Batch { x: x.to_device(self.device), y, draw })
    }
}

/// Items `indices` of `ds` stacked into (N, C, H, W) on the CPU, decoded in parallel; of two-domain data, the
/// images of `domain` (0: A, 1: B) alone. Item `i` draws any randomness from `(seed, stream, i)`. Also the
/// items' labels, when every item has one.
pub fn stack_items(ds: &dyn Dataset, indices: &[usize], domain: Option<usize>, seed: u64, stream: &str) -> Result<(Tensor, Option<Vec<i64>>)> {
    use rayon::prelude::*;
    if indices.is_empty() {
        return Err(PipelineError::Usage("no images to read (an empty split?)".into()));
    }
    let items = indices
        .par_iter()
        .map(|&i| {
            let mut rng = derived_rng(seed, stream, i as u64);
            match domain {
                Some(d) => ds.domain_image(d, i, &mut rng),
                None => ds.get(i, &mut rng),
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let labels = items.iter().map(|e| e.label).collect::<Option<Vec<i64>>>();
    let x: Vec<Tensor> = items.iter().map(|e| Tensor::from_slice(&e.x).view(e.shape.as_slice())).collect();
    Ok((Tensor::stack(&x, 0), labels))
}
