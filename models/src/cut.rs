//! CUT's contrastive parts (Park, Efros, Zhang & Zhu 2020, "Contrastive Learning for Unpaired Image-to-Image
//! Translation", §3.1–3.2): the patch sampler with its MLP heads (the authors' `PatchSampleF`, netF
//! `mlp_sample`) and the PatchNCE loss (`PatchNCELoss`). G is CycleGAN's ResNet generator with the CUT code's
//! anti-aliased resampling ([`crate::cyclegan::ResnetGeneratorConfig::cut`]), whose encoder features
//! ([`crate::cyclegan::ResnetGenerator::features`]) the loss compares.
//!
//! The reference creates the MLP heads lazily at the first forward, from the channels it then sees; here they
//! are built from the config (the channels of the tapped layers), with the same names: `mlp_{i}.0` and
//! `mlp_{i}.2` (Linear, ReLU, Linear).
use rand_chacha::ChaCha8Rng;
use tch::nn::Module;
use tch::{nn, Kind, Tensor};

use crate::error::{ModelError, Result};

/// One MLP head per tapped layer: Linear(C_l, nc), ReLU, Linear(nc, nc).
#[derive(Debug)]
pub struct PatchSampler {
    mlps: Vec<(nn::Linear, nn::Linear)>,
}

impl PatchSampler {
    /// Heads for layers of `channels` channels, `nc` units (the reference's netF_nc: 256), under `p`.
    pub fn new(p: &nn::Path, channels: &[i64], nc: i64) -> Result<Self> {
        if nc < 1 || channels.iter().any(|&c| c < 1) {
            return Err(ModelError::Config(format!("patch sampler: channels {channels:?} and nc {nc} must be >= 1")));
        }
        let mlps = channels
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let q = p / format!("mlp_{i}");
                (nn::linear(&q / 0, c, nc, Default::default()), nn::linear(&q / 2, nc, nc, Default::default()))
            })
            .collect();
        Ok(PatchSampler { mlps })
    }

    /// For each layer's features (N, C_l, H_l, W_l) the patches at `ids[l]` (positions in H_l·W_l, the same for
    /// every image of the batch, as the reference) through the layer's head, each row L2-normalized:
    /// (N·P_l, nc), image-major.
    pub fn forward(&self, feats: &[Tensor], ids: &[Tensor]) -> Result<Vec<Tensor>> {
        if feats.len() != self.mlps.len() || ids.len() != feats.len() {
            return Err(ModelError::Config(format!("patch sampler: {} heads, {} feature maps, {} id lists", self.mlps.len(), feats.len(), ids.len())));
        }
        Ok(feats
            .iter()
            .zip(ids)
            .zip(&self.mlps)
            .map(|((f, id), (l1, l2))| {
                let flat = f.permute([0, 2, 3, 1]).flatten(1, 2); // (N, H·W, C)
                let x = flat.index_select(1, &id.to_device(f.device())).flatten(0, 1); // (N·P, C)
                let x = l2.forward(&l1.forward(&x).relu()); // (N·P, nc)
                l2_normalize(&x)
            })
            .collect())
    }
}

/// Sums in float32 (bf16 under autocast too), or float64 for float64 inputs.
fn sum_kind(x: &Tensor) -> Kind {
    if x.kind() == Kind::Double {
        Kind::Double
    } else {
        Kind::Float
    }
}

/// x / (‖x‖₂ + 1e-7) along dim 1 (the reference's `Normalize(2)`).
pub fn l2_normalize(x: &Tensor) -> Tensor {
    // The vector norm's backward is 0 at a zero row, where √(Σx²) would give NaN (a head whose ReLU layer is all
    // zero at some patch outputs its zero bias: common in small heads at the start).
    let norm = x.norm_scalaropt_dim(2.0, [1i64].as_slice(), true); // (M, 1)
    x / (norm + 1e-7)
}

/// `count` distinct positions out of `positions` (min of the two), in the order of a seeded random
/// permutation (the reference's `torch.randperm(H·W)[:num_patches]`, from a ChaCha stream here).
pub fn patch_ids(rng: &mut ChaCha8Rng, positions: i64, count: i64) -> Tensor {
    use rand::seq::SliceRandom;
    let mut all: Vec<i64> = (0..positions).collect();
    all.shuffle(rng);
    all.truncate(count.min(positions).max(0) as usize);
    Tensor::from_slice(&all)
}

/// PatchNCE (eq. 2 and 5): for each query patch q (of the translation) its key k⁺ (the same position of the
/// input, detached) against the other positions of the same image as negatives, cross-entropy of
/// [q·k⁺, q·k⁻…] / τ with the positive as the class; the diagonal of the negatives (the positive itself) is
/// masked with −10 as in the reference. `q`, `k`: (N·P, D), image-major; returns the loss per patch (N·P,).
pub fn patch_nce(q: &Tensor, k: &Tensor, batch: i64, tau: f64) -> Tensor {
    let k = k.detach();
    let (m, d) = (q.size()[0], q.size()[1]);
    let l_pos = (q * &k).sum_dim_intlist(1, true, sum_kind(q)); // (N·P, 1)
    let qb = q.view([batch, -1, d]); // (N, P, D)
    let kb = k.view([batch, -1, d]); // (N, P, D)
    let p = qb.size()[1];
    let eye = Tensor::eye(p, (Kind::Bool, q.device())).unsqueeze(0); // (1, P, P)
    let l_neg = qb.bmm(&kb.transpose(2, 1)).masked_fill(&eye, -10.0).view([-1, p]); // (N·P, P)
    let logits = Tensor::cat(&[l_pos, l_neg], 1) / tau; // (N·P, 1 + P)
    let target = Tensor::zeros([m], (Kind::Int64, q.device()));
    logits.cross_entropy_loss::<Tensor>(&target, None, tch::Reduction::None, -100, 0.0) // (N·P,)
}
