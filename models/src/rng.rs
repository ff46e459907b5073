//! Seeded, independent random streams and tensor sampling from them (never tch's global generator).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use tch::{Device, Tensor};

/// FNV-1a 64-bit over bytes: a fixed hash, identical on every platform and run (unlike `RandomState`).
fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// SplitMix64 finalizer: spreads nearby inputs (seed 1 vs 2) to unrelated outputs.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A deterministic RNG for `(seed, stream, index)`, e.g. `("init.generator", 0)` or `("noise", step)`.
///
/// Different stream names or indices give statistically independent ChaCha8 streams; the derivation
/// uses only fixed hashes (FNV-1a + SplitMix64), so results are stable across runs, platforms and builds.
pub fn derived_rng(seed: u64, stream: &str, index: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    let h_stream = fnv1a(stream.as_bytes(), 0xcbf2_9ce4_8422_2325);
    let mut state =
        splitmix64(seed ^ splitmix64(h_stream) ^ splitmix64(index.wrapping_add(0x5851_f42d)));
    for chunk in key.chunks_mut(8) {
        state = splitmix64(state.wrapping_add(h_stream).wrapping_add(index));
        chunk.copy_from_slice(&state.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

fn numel(shape: &[i64]) -> usize {
    shape.iter().map(|d| (*d).max(0) as usize).product()
}

thread_local! {
    /// This thread's rows of every batch-shaped draw: (rank, world); (0, 1) outside data-parallel steps.
    static ROW_SHARD: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 1)) };
}

/// Runs `f` as rank `rank` of `world` data-parallel ranks: inside it, a draw of `n` rows ([`randn`],
/// [`uniform`], [`randint`]) is rows `rank·n .. (rank+1)·n` of the draw of `world·n` rows one process would make
/// from the same stream, so the ranks' draws together are exactly one process's draw for the global batch.
/// (The other ranks' rows are drawn and dropped: the stream stays in step for the next draw.)
pub fn with_row_shard<T>(rank: usize, world: usize, f: impl FnOnce() -> T) -> T {
    struct Restore((usize, usize));
    impl Drop for Restore {
        fn drop(&mut self) {
            ROW_SHARD.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(ROW_SHARD.with(|c| c.replace((rank, world.max(1)))));
    f()
}

/// Values of this rank's rows of a draw of `count` values per rank: the whole draw of `world · count` values is
/// made (so a next draw from the same stream starts where one process's would), this rank's part kept.
fn sharded<T>(rng: &mut ChaCha8Rng, count: usize, mut draw: impl FnMut(&mut ChaCha8Rng) -> T) -> Vec<T> {
    let (rank, world) = ROW_SHARD.with(|c| c.get());
    for _ in 0..rank * count {
        draw(rng);
    }
    let mine = (0..count).map(|_| draw(rng)).collect();
    for _ in 0..(world - rank - 1) * count {
        draw(rng);
    }
    mine
}

/// An f32 tensor of N(0, 1) samples drawn from `rng`, placed on `device`.
pub fn randn(rng: &mut ChaCha8Rng, shape: &[i64], device: Device) -> Tensor {
    let v: Vec<f32> = sharded(rng, numel(shape), |r| r.sample::<f32, _>(StandardNormal));
    Tensor::from_slice(&v).reshape(shape).to_device(device)
}

/// An f32 tensor of U[lo, hi) samples drawn from `rng`, placed on `device`.
pub fn uniform(rng: &mut ChaCha8Rng, shape: &[i64], lo: f64, hi: f64, device: Device) -> Tensor {
    let v: Vec<f32> = sharded(rng, numel(shape), |r| (lo + (hi - lo) * r.gen::<f64>()) as f32);
    Tensor::from_slice(&v).reshape(shape).to_device(device)
}

/// `n` integers drawn uniformly from the inclusive range [lo, hi] (empty when hi < lo).
pub fn randint(rng: &mut ChaCha8Rng, n: usize, lo: i64, hi: i64) -> Vec<i64> {
    if hi < lo {
        return vec![];
    }
    sharded(rng, n, |r| r.gen_range(lo..=hi))
}

/// Fills `t` in place (no grad) with N(mean, std^2) samples from `rng`, keeping its kind and device.
pub(crate) fn fill_normal(t: &Tensor, rng: &mut ChaCha8Rng, mean: f64, std: f64) {
    let shape = t.size();
    let v: Vec<f64> = (0..numel(&shape))
        .map(|_| mean + std * rng.sample::<f64, _>(StandardNormal))
        .collect();
    let src = Tensor::from_slice(&v)
        .reshape(shape.as_slice())
        .to_kind(t.kind())
        .to_device(t.device());
    let mut dst = t.shallow_clone();
    tch::no_grad(|| dst.copy_(&src));
}

/// Fills `t` in place (no grad) with U[lo, hi) samples from `rng`, keeping its kind and device.
pub(crate) fn fill_uniform(t: &Tensor, rng: &mut ChaCha8Rng, lo: f64, hi: f64) {
    let shape = t.size();
    let v: Vec<f64> = (0..numel(&shape))
        .map(|_| lo + (hi - lo) * rng.gen::<f64>())
        .collect();
    let src = Tensor::from_slice(&v)
        .reshape(shape.as_slice())
        .to_kind(t.kind())
        .to_device(t.device());
    let mut dst = t.shallow_clone();
    tch::no_grad(|| dst.copy_(&src));
}

/// Fills `t` in place (no grad) with a constant.
pub(crate) fn fill_const(t: &Tensor, value: f64) {
    let mut dst = t.shallow_clone();
    tch::no_grad(|| {
        let _ = dst.fill_(value);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn derived_streams_are_deterministic_and_distinct() {
        let a: u64 = derived_rng(7, "noise", 0).gen();
        let b: u64 = derived_rng(7, "noise", 0).gen();
        let c: u64 = derived_rng(7, "noise", 1).gen();
        let d: u64 = derived_rng(7, "init", 0).gen();
        let e: u64 = derived_rng(8, "noise", 0).gen();
        assert_eq!(a, b);
        assert!(a != c && a != d && a != e && c != d);
    }

    #[test]
    fn randn_moments() {
        let mut r = derived_rng(1, "t", 0);
        let t = randn(&mut r, &[200, 50], Device::Cpu);
        assert_eq!(t.size(), vec![200, 50]);
        assert_eq!(t.kind(), Kind::Float);
        assert!(t.mean(Kind::Double).double_value(&[]).abs() < 0.03);
        assert!((t.std(true).double_value(&[]) - 1.0).abs() < 0.03);
        let u = uniform(&mut r, &[1000], -2.0, 3.0, Device::Cpu);
        assert!(u.min().double_value(&[]) >= -2.0 && u.max().double_value(&[]) < 3.0);
        let k = randint(&mut r, 1000, -2, 2);
        assert_eq!(k.len(), 1000);
        for v in -2..=2 {
            assert!(k.contains(&v), "{v} never drawn");
        }
        assert!(k.iter().all(|v| (-2..=2).contains(v)));
        assert!(randint(&mut r, 3, 1, 0).is_empty());
    }
}
