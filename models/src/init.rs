//! Weight initialization from an explicit seeded RNG (never libtorch's global generator), chosen by
//! variable name and shape.
//!
//! Rules (applied to trainable variables only, in sorted name order so a seed always gives the same
//! weights): a `weight`/`weight_orig` with 2+ dims is a linear/conv weight; a 1-D `weight` is a
//! normalization layer's scale (BatchNorm / InstanceNorm / LayerNorm); `bias` is a bias. Non-trainable
//! buffers (BN running stats, spectral-norm `weight_u`/`weight_v`) are left alone.

use rand_chacha::ChaCha8Rng;
use tch::nn;

use crate::optim::named_trainable;
use crate::rng::{fill_const, fill_normal, fill_uniform};

enum Role {
    Weight,
    NormScale,
    Bias,
    Other,
}

fn role(name: &str, dims: usize) -> Role {
    let last = name.rsplit('.').next().unwrap_or(name);
    match (last, dims) {
        ("weight" | "weight_orig", d) if d >= 2 => Role::Weight,
        ("weight", 1) => Role::NormScale,
        ("bias", _) => Role::Bias,
        _ => Role::Other,
    }
}

/// DCGAN initialization (Radford et al. 2016, §4): conv/linear weights N(0, 0.02), normalization
/// scales N(1, 0.02), biases 0.
pub fn init_dcgan(vs: &nn::VarStore, rng: &mut ChaCha8Rng) {
    for (name, t) in named_trainable(vs) {
        match role(&name, t.dim()) {
            Role::Weight => fill_normal(&t, rng, 0.0, 0.02),
            Role::NormScale => fill_normal(&t, rng, 1.0, 0.02),
            Role::Bias => fill_const(&t, 0.0),
            Role::Other => {}
        }
    }
}

/// Plain N(0, std) initialization for weights (CycleGAN's `init_type=normal` uses std 0.02), norm scales
/// N(1, std), biases 0.
pub fn init_normal(vs: &nn::VarStore, rng: &mut ChaCha8Rng, std: f64) {
    for (name, t) in named_trainable(vs) {
        match role(&name, t.dim()) {
            Role::Weight => fill_normal(&t, rng, 0.0, std),
            Role::NormScale => fill_normal(&t, rng, 1.0, std),
            Role::Bias => fill_const(&t, 0.0),
            Role::Other => {}
        }
    }
}

/// PyTorch's default layer initialization, drawn from `rng`: weights and biases U(±1/√fan_in) with
/// fan_in = size(1)·prod(kernel) of the layer's weight (what kaiming_uniform(a=√5) gives, including
/// PyTorch's choice of dim 1 for transposed convs); norm scales 1, norm biases 0.
pub fn init_default(vs: &nn::VarStore, rng: &mut ChaCha8Rng) {
    let vars = named_trainable(vs);
    let fan_in_of = |prefix: &str| -> Option<i64> {
        vars.iter()
            .find(|(n, t)| {
                (*n == format!("{prefix}.weight") || *n == format!("{prefix}.weight_orig"))
                    && t.dim() >= 2
            })
            .map(|(_, t)| t.size()[1..].iter().product())
    };
    for (name, t) in &vars {
        match role(name, t.dim()) {
            Role::Weight => {
                let b = 1.0 / (t.size()[1..].iter().product::<i64>().max(1) as f64).sqrt();
                fill_uniform(t, rng, -b, b);
            }
            Role::NormScale => fill_const(t, 1.0),
            Role::Bias => {
                let prefix = name.rsplit_once('.').map(|(p, _)| p).unwrap_or("");
                match fan_in_of(prefix) {
                    Some(f) => {
                        let b = 1.0 / (f.max(1) as f64).sqrt();
                        fill_uniform(t, rng, -b, b);
                    }
                    None => fill_const(t, 0.0), // a norm layer's shift
                }
            }
            Role::Other => {}
        }
    }
}

/// Xavier (Glorot) normal initialization, as PyTorch's `xavier_normal_(w, gain)`: weights N(0, σ²) with
/// σ = gain·√(2 / (fan_in + fan_out)), fan_in = size(1)·kernel, fan_out = size(0)·kernel; norm scales N(1, gain),
/// biases 0 (the CUT code's default `init_type=xavier`, gain 0.02).
pub fn init_xavier_normal(vs: &nn::VarStore, rng: &mut ChaCha8Rng, gain: f64) {
    for (name, t) in named_trainable(vs) {
        match role(&name, t.dim()) {
            Role::Weight => {
                let s = t.size();
                let kernel: i64 = s[2..].iter().product();
                let (fan_in, fan_out) = (s[1] * kernel, s[0] * kernel);
                fill_normal(&t, rng, 0.0, gain * (2.0 / (fan_in + fan_out).max(1) as f64).sqrt());
            }
            Role::NormScale => fill_normal(&t, rng, 1.0, gain),
            Role::Bias => fill_const(&t, 0.0),
            Role::Other => {}
        }
    }
}
