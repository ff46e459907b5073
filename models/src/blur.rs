//! Anti-aliased resampling (Zhang 2019, "Making Convolutional Networks Shift-Invariant Again") as the CUT code
//! uses it (taesungp/contrastive-unpaired-translation, `models/networks.py`: `Downsample`, `Upsample`): a fixed
//! binomial blur applied per channel with the stride. The filters are buffers named `filt`, as in the reference's
//! state_dict, kept as non-trainable variables so checkpoints and imported weights carry them.
use tch::{nn, Kind, Tensor};

/// The normalized 2-D binomial filter of `taps` taps: outer([1, 2, 1]) / 16 for 3, outer([1, 3, 3, 1]) / 64 for 4.
fn binomial(taps: usize) -> Tensor {
    let row: Vec<f32> = match taps {
        3 => vec![1.0, 2.0, 1.0],
        _ => vec![1.0, 3.0, 3.0, 1.0],
    };
    let a = Tensor::from_slice(&row);
    let f = a.unsqueeze(1) * a.unsqueeze(0); // (taps, taps)
    &f / f.sum(Kind::Float)
}

/// The per-channel filter (C, 1, k, k) as a non-trainable variable `filt` under `p`.
fn filter(p: &nn::Path, channels: i64, taps: usize, scale: f64) -> Tensor {
    let k = taps as i64;
    let mut v = p.zeros_no_train("filt", &[channels, 1, k, k]);
    let f = (binomial(taps) * scale).to_device(v.device()).expand([channels, 1, k, k], true);
    tch::no_grad(|| v.copy_(&f));
    v
}

/// Blur, then keep every second pixel: reflection pad 1, the 3-tap binomial filter, stride 2.
#[derive(Debug)]
pub struct Downsample {
    filt: Tensor,
    channels: i64,
}

impl Downsample {
    pub fn new(p: &nn::Path, channels: i64) -> Self {
        Downsample { filt: filter(p, channels, 3, 1.0), channels }
    }

    /// x: (N, C, H, W) → (N, C, ⌊(H − 1) / 2⌋ + 1, …).
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let padded = x.reflection_pad2d([1, 1, 1, 1]); // (N, C, H + 2, W + 2)
        padded.conv2d(&self.filt, None::<Tensor>, [2, 2], [0, 0], [1, 1], self.channels) // (N, C, H', W')
    }
}

/// Double the resolution by a transposed convolution with the 4-tap binomial filter (× stride²), after a
/// replication pad of 1, cropped to exactly 2H × 2W.
#[derive(Debug)]
pub struct Upsample {
    filt: Tensor,
    channels: i64,
}

impl Upsample {
    pub fn new(p: &nn::Path, channels: i64) -> Self {
        Upsample { filt: filter(p, channels, 4, 4.0), channels }
    }

    /// x: (N, C, H, W) → (N, C, 2H, 2W).
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let padded = x.replication_pad2d([1, 1, 1, 1]); // (N, C, H + 2, W + 2)
        let up = padded.conv_transpose2d(&self.filt, None::<Tensor>, [2, 2], [2, 2], [0, 0], self.channels, [1, 1]); // (N, C, 2H + 2, 2W + 2)
        // One row and column off each side, with no size read from a tensor (a traced G then takes any size).
        up.slice(2, 1, -1, 1).slice(3, 1, -1, 1) // (N, C, 2H, 2W)
    }
}
