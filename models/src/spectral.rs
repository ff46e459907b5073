//! Spectral normalization (Miyato et al. 2018, "Spectral Normalization for GANs", eq. 8 and Algorithm 1)
//! as linear and conv2d layers: W_SN = W / σ(W), σ estimated by power iteration.
//!
//! Variable names follow `torch.nn.utils.spectral_norm`'s state_dict: `weight_orig` (trainable),
//! `weight_u` and `weight_v` (non-trainable buffers, added with `p.add(.., false)` so `unfreeze()` never
//! makes them trainable), `bias`.

use tch::{nn, Kind, Tensor};

use crate::rng::{derived_rng, randn};

const SN_EPS: f64 = 1e-12;

fn normalize(v: &Tensor) -> Tensor {
    v / v.norm().clamp_min(SN_EPS) // like F.normalize(v, dim=0, eps=1e-12)
}

/// A weight with spectral normalization. One power iteration runs per training forward
/// (`weight(true)`), updating `u` and `v` in place under `no_grad`; evaluation (`weight(false)`) reuses them.
#[derive(Debug)]
pub struct SpectralNorm {
    /// The unnormalized weight W (trainable), any shape (out, ...).
    pub weight_orig: Tensor,
    /// Left singular vector estimate, shape (out,), not trainable.
    pub u: Tensor,
    /// Right singular vector estimate, shape (prod(rest),), not trainable.
    pub v: Tensor,
}

impl SpectralNorm {
    /// Creates `weight_orig` of `shape` (tch's default Kaiming-uniform init; re-initialize with
    /// [`crate::init`]) and the buffers `weight_u`, `weight_v`. `u`, `v` start as normalized Gaussian
    /// vectors drawn from a ChaCha stream seeded by the variable's path (deterministic, independent
    /// of libtorch's global generator).
    pub fn new(p: &nn::Path, shape: &[i64]) -> Self {
        let weight_orig = p.var("weight_orig", shape, nn::init::DEFAULT_KAIMING_UNIFORM);
        let h = shape[0];
        let w: i64 = shape[1..].iter().product();
        let mut rng = derived_rng(0, &p.path("weight_u"), 0);
        let dev = p.device();
        let u0 = normalize(&randn(&mut rng, &[h], dev)).to_kind(weight_orig.kind());
        let v0 = normalize(&randn(&mut rng, &[w], dev)).to_kind(weight_orig.kind());
        let u = p.add("weight_u", u0, false);
        let v = p.add("weight_v", v0, false);
        SpectralNorm { weight_orig, u, v }
    }

    fn matrix(&self) -> Tensor {
        let h = self.weight_orig.size()[0];
        self.weight_orig.reshape([h, -1]) // (out, in*k*k)
    }

    /// One power iteration (Miyato 2018, Algorithm 1): v ← Wᵀu/‖Wᵀu‖, u ← Wv/‖Wv‖, in place, no grad.
    pub fn power_iteration(&self) {
        tch::no_grad(|| {
            let w = self.matrix().detach();
            let v = normalize(&w.tr().mv(&self.u));
            let u = normalize(&w.mv(&v));
            self.v.shallow_clone().copy_(&v);
            self.u.shallow_clone().copy_(&u);
        });
    }

    /// σ(W) ≈ uᵀ W v with the current u, v (differentiable in W, u and v held constant).
    pub fn sigma(&self) -> Tensor {
        // Copies, as PyTorch's spectral_norm clones them: the graph saves u and v, and the next training
        // forward (D runs on real and on fake images before one backward) updates the stored ones in place.
        let u = self.u.detach().copy();
        let v = self.v.detach().copy();
        u.dot(&self.matrix().mv(&v)) // ()
    }

    /// The normalized weight W / σ(W); runs one power iteration first when `train`.
    pub fn weight(&self, train: bool) -> Tensor {
        if train {
            self.power_iteration();
        }
        &self.weight_orig / self.sigma()
    }
}

/// A linear layer with a spectrally normalized weight.
#[derive(Debug)]
pub struct SnLinear {
    pub sn: SpectralNorm,
    pub bias: Option<Tensor>,
}

impl SnLinear {
    /// Linear `in_dim -> out_dim` (weight (out, in), bias (out,) when `bias`).
    pub fn new(p: &nn::Path, in_dim: i64, out_dim: i64, bias: bool) -> Self {
        let sn = SpectralNorm::new(p, &[out_dim, in_dim]);
        let bound = 1.0 / (in_dim as f64).sqrt();
        let bias = bias.then(|| {
            p.var(
                "bias",
                &[out_dim],
                nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )
        });
        SnLinear { sn, bias }
    }
}

impl nn::ModuleT for SnLinear {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        xs.linear(&self.sn.weight(train), self.bias.as_ref()) // (N, in) -> (N, out)
    }
}

/// A 2-D convolution with a spectrally normalized weight (σ of the (out, in/groups·k·k) matrix, as Miyato 2018
/// and `torch.nn.utils.spectral_norm`).
///
/// `config` gives stride, padding, dilation, groups, bias and the padding mode; a mode other than zeros pads
/// the input first (`reflect`: as `nn.ReflectionPad2d(padding)` before a `padding=0` conv, the layout of UNIT's
/// `Conv2dBlock`) and convolves without padding, as tch's own `Conv2D` does. Its `ws_init` / `bs_init` are not
/// used: the weight starts Kaiming-uniform and the bias U(±1/√fan_in), PyTorch's `Conv2d` defaults.
#[derive(Debug)]
pub struct SnConv2d {
    pub sn: SpectralNorm,
    pub bias: Option<Tensor>,
    pub config: nn::ConvConfig,
}

impl SnConv2d {
    /// Conv `in_c -> out_c`, square kernel `k`, given stride and zero padding.
    pub fn new(
        p: &nn::Path,
        in_c: i64,
        out_c: i64,
        k: i64,
        stride: i64,
        padding: i64,
        bias: bool,
    ) -> Self {
        let config = nn::ConvConfig {
            stride,
            padding,
            bias,
            ..Default::default()
        };
        Self::with_config(p, in_c, out_c, k, config)
    }

    /// Conv `in_c -> out_c`, square kernel `k`, with `config`'s stride, padding (and padding mode),
    /// dilation, groups and bias.
    pub fn with_config(p: &nn::Path, in_c: i64, out_c: i64, k: i64, config: nn::ConvConfig) -> Self {
        let per_group = in_c / config.groups.max(1);
        let sn = SpectralNorm::new(p, &[out_c, per_group, k, k]);
        let bound = 1.0 / ((per_group * k * k) as f64).sqrt();
        let bias = config.bias.then(|| {
            p.var(
                "bias",
                &[out_c],
                nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )
        });
        SnConv2d { sn, bias, config }
    }
}

impl nn::ModuleT for SnConv2d {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let c = &self.config;
        let (xs, padding) = match c.padding_mode {
            nn::PaddingMode::Zeros => (xs.shallow_clone(), c.padding), // (N, in, H, W)
            mode => (mode.pad(xs, &[c.padding; 4]), 0),                // (N, in, H + 2p, W + 2p)
        };
        // (N, in, H, W) -> (N, out, H', W')
        xs.conv2d(
            &self.sn.weight(train),
            self.bias.as_ref(),
            [c.stride, c.stride],
            [padding, padding],
            [c.dilation, c.dilation],
            c.groups,
        )
    }
}

/// A linear layer, spectrally normalized or plain (`tch::nn::Linear`, names `weight`, `bias`).
pub fn linear(
    p: &nn::Path,
    in_dim: i64,
    out_dim: i64,
    bias: bool,
    spectral_norm: bool,
) -> Box<dyn nn::ModuleT> {
    if spectral_norm {
        Box::new(SnLinear::new(p, in_dim, out_dim, bias))
    } else {
        let bound = 1.0 / (in_dim as f64).sqrt();
        let cfg = nn::LinearConfig {
            ws_init: nn::init::DEFAULT_KAIMING_UNIFORM,
            bs_init: Some(nn::Init::Uniform {
                lo: -bound,
                up: bound,
            }),
            bias,
        };
        Box::new(nn::linear(p, in_dim, out_dim, cfg))
    }
}

/// A conv2d layer with zero padding, spectrally normalized or plain (`tch::nn::Conv2D`, names `weight`, `bias`).
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    p: &nn::Path,
    in_c: i64,
    out_c: i64,
    k: i64,
    stride: i64,
    padding: i64,
    bias: bool,
    spectral_norm: bool,
) -> Box<dyn nn::ModuleT> {
    let config = nn::ConvConfig {
        stride,
        padding,
        bias,
        ..Default::default()
    };
    conv2d_config(p, in_c, out_c, k, config, spectral_norm)
}

/// A conv2d layer with any [`nn::ConvConfig`] (reflection padding included): [`SnConv2d`] when
/// `spectral_norm`, else exactly `nn::conv2d(p, in_c, out_c, k, config)`.
pub fn conv2d_config(
    p: &nn::Path,
    in_c: i64,
    out_c: i64,
    k: i64,
    config: nn::ConvConfig,
    spectral_norm: bool,
) -> Box<dyn nn::ModuleT> {
    if spectral_norm {
        Box::new(SnConv2d::with_config(p, in_c, out_c, k, config))
    } else {
        Box::new(nn::conv2d(p, in_c, out_c, k, config))
    }
}

/// The largest singular value of a weight viewed as an (out, rest) matrix: √λ_max(W Wᵀ), exact in f64
/// (for tests and diagnostics; tch's `linalg_svdvals` cannot pass "no driver" on CPU).
pub fn top_singular_value(w: &Tensor) -> f64 {
    let h = w.size()[0];
    let m = w.detach().reshape([h, -1]).to_kind(Kind::Double);
    let eig = m.matmul(&m.tr()).linalg_eigvalsh("L"); // (h,) ascending
    eig.max().double_value(&[]).max(0.0).sqrt()
}

/// Every spectrally normalized weight of `vs`, by the name of its layer (`model.0.` for `model.0.weight_orig`),
/// sorted: the `*.weight_orig` variables with their `weight_u` / `weight_v` buffers, sharing storage with the
/// store (a power iteration on one updates the store). For [`warm_up`] and for diagnostics (σ per layer).
pub fn spectral_norms(vs: &nn::VarStore) -> Vec<(String, SpectralNorm)> {
    let vars = vs.variables();
    let mut out: Vec<(String, SpectralNorm)> = vars
        .iter()
        .filter_map(|(name, w)| {
            let prefix = name.strip_suffix("weight_orig")?;
            let u = vars.get(&format!("{prefix}weight_u"))?;
            let v = vars.get(&format!("{prefix}weight_v"))?;
            let sn = SpectralNorm { weight_orig: w.shallow_clone(), u: u.shallow_clone(), v: v.shallow_clone() };
            Some((prefix.to_string(), sn))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Runs `iters` power iterations on every spectrally normalized weight of `vs` (see [`spectral_norms`]), so
/// σ(W) is converged before the first forward: call it after (re-)initializing the weights.
/// `torch.nn.utils.parametrizations.spectral_norm` does 15 at registration; without it, a network evaluated
/// before any training forward divides by a σ estimated from random vectors and can output values of 1e11.
pub fn warm_up(vs: &nn::VarStore, iters: usize) {
    for (_, sn) in spectral_norms(vs) {
        for _ in 0..iters {
            sn.power_iteration();
        }
    }
}
