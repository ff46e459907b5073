//! Adversarial losses (minimax, non-saturating, LSGAN, Wasserstein, hinge) and the regularizers around them
//! (gradient penalty, R1, weight clipping, gradient-norm clipping).

use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, Tensor};

use crate::error::{ModelError, Result, TorchContext};

/// Which adversarial objective a GAN trains with. `D` outputs raw scores (logits for the BCE losses).
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum AdvLoss {
    /// Goodfellow et al. 2014, eq. 1: D maximizes log D(x) + log(1 - D(G(z))); G *minimizes*
    /// log(1 - D(G(z))) (the saturating game the theory is stated for).
    Minimax,
    /// Goodfellow et al. 2014, §3: same D; G maximizes log D(G(z)) instead (strong gradients early on).
    #[default]
    NonSaturating,
    /// Mao et al. 2017 (LSGAN), eq. 2 with a=0, b=c=1: least squares to 1 (real) and 0 (fake).
    Lsgan,
    /// Arjovsky et al. 2017 (WGAN), eq. 3: critic maximizes E[D(x)] - E[D(G(z))]; G maximizes E[D(G(z))].
    Wasserstein,
    /// Lim & Ye 2017 (Geometric GAN) / Miyato et al. 2018: D minimizes E[relu(1 - D(x))] + E[relu(1 + D(G(z)))];
    /// G minimizes -E[D(G(z))].
    Hinge,
}

/// Which side of the game a batch of scores should be classified as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Real,
    Fake,
}

fn bce(scores: &Tensor, target: Target) -> Tensor {
    let t = match target {
        Target::Real => scores.ones_like(),
        Target::Fake => scores.zeros_like(),
    };
    scores.binary_cross_entropy_with_logits::<Tensor>(&t, None, None, Reduction::Mean)
}

fn mse(scores: &Tensor, target: Target) -> Tensor {
    let t = match target {
        Target::Real => scores.ones_like(),
        Target::Fake => scores.zeros_like(),
    };
    scores.mse_loss(&t, Reduction::Mean)
}

impl AdvLoss {
    /// The discriminator's loss term (a scalar to minimize) for `scores` that should be judged `target`.
    ///
    /// minimax / non-saturating: BCE with logits (−log σ(s) for real, −log(1−σ(s)) for fake);
    /// lsgan: mean (s−1)² / mean s²; wasserstein: −mean s / +mean s; hinge: mean relu(1−s) / mean relu(1+s).
    pub fn d_term(&self, scores: &Tensor, target: Target) -> Tensor {
        match (self, target) {
            (AdvLoss::Minimax | AdvLoss::NonSaturating, t) => bce(scores, t),
            (AdvLoss::Lsgan, t) => mse(scores, t),
            (AdvLoss::Wasserstein, Target::Real) => -scores.mean(scores.kind()),
            (AdvLoss::Wasserstein, Target::Fake) => scores.mean(scores.kind()),
            (AdvLoss::Hinge, Target::Real) => (scores.neg() + 1.0).relu().mean(scores.kind()),
            (AdvLoss::Hinge, Target::Fake) => (scores + 1.0).relu().mean(scores.kind()),
        }
    }

    /// The discriminator loss: `d_term(real, Real) + d_term(fake, Fake)`.
    pub fn d_loss(&self, real: &Tensor, fake: &Tensor) -> Tensor {
        self.d_term(real, Target::Real) + self.d_term(fake, Target::Fake)
    }

    /// The generator loss (a scalar to minimize) for D's scores on generated samples.
    ///
    /// minimax: −BCE(s, fake) = mean log(1 − σ(s)) (saturating, Goodfellow 2014 eq. 1);
    /// non-saturating: BCE(s, real) = −mean log σ(s); lsgan: mean (s−1)²; wasserstein / hinge: −mean s.
    pub fn g_loss(&self, fake: &Tensor) -> Tensor {
        match self {
            AdvLoss::Minimax => -bce(fake, Target::Fake),
            AdvLoss::NonSaturating => bce(fake, Target::Real),
            AdvLoss::Lsgan => mse(fake, Target::Real),
            AdvLoss::Wasserstein | AdvLoss::Hinge => -fake.mean(fake.kind()),
        }
    }
}

/// ∇ₓ of the critic's per-sample scores at `x` (a leaf that requires grad), keeping the graph (double backward).
///
/// The critic may return one score per sample, (N,) or (N, 1), or several, (N, ...) such as a PatchGAN map
/// (N, 1, H', W'); each sample's scores are reduced by their mean first, so the result is the gradient of
/// Σₙ mean(D(x)ₙ) and sample n's gradient is that of its own mean score (samples do not interact unless the
/// critic mixes them, e.g. batch norm in training mode). A first dimension other than N is an error, and so is
/// an output without an autograd graph: `run_backward` on such a tensor segfaults in libtorch 2.11
/// (DESIGN.md), so it is refused before the call.
fn input_gradient(critic: &dyn Fn(&Tensor) -> Tensor, x: &Tensor, what: &str) -> Result<Tensor> {
    let n = x.size().first().copied().unwrap_or(0);
    let out = critic(x);
    if !x.requires_grad() || !out.requires_grad() {
        return Err(ModelError::State(format!(
            "{what}: the critic output has no autograd graph (was it run under no_grad, or with gradients \
             disabled?)"
        )));
    }
    if out.dim() == 0 || out.size()[0] != n {
        return Err(ModelError::Shape(format!(
            "{what}: critic returned {:?} for a batch of {n}; expected (N, ...) scores with N = {n}",
            out.size()
        )));
    }
    let per_sample = out.reshape([n, -1]).mean_dim(1, false, out.kind()); // (N,)
    let grads = Tensor::f_run_backward(&[per_sample.sum(out.kind())], &[x], true, true)
        .ctx("computing the gradient of the critic w.r.t. its input")?;
    grads
        .into_iter()
        .next()
        .filter(|g| g.defined())
        .ok_or_else(|| ModelError::State(format!("{what}: the critic output does not depend on its input")))
}

/// Per-sample L2 norms of a gradient (N, ...) -> (N,).
fn per_sample_norms(g: &Tensor) -> Tensor {
    let n = g.size()[0];
    g.reshape([n, -1]).norm_scalaropt_dim(2.0, [1i64].as_slice(), false) // (N,)
}

/// WGAN-GP gradient penalty (Gulrajani et al. 2017, eq. 3): E[(‖∇ D(x̂)‖₂ − 1)²] with
/// x̂ = ε·real + (1−ε)·fake.
///
/// `eps` must broadcast against `real` (e.g. shape (N, 1, 1, 1) for images, (N, 1) for vectors). The critic
/// may return (N,) scores or several per sample, (N, ...) (a PatchGAN map): each sample's scores are averaged
/// before the gradient is taken, so x̂ₙ's gradient is that of its own mean score. The returned scalar keeps its graph
/// (double backward), so `penalty.backward()` reaches the critic's weights. Errors instead of crashing when
/// the critic output has no graph (e.g. evaluated under `no_grad`) or its first dimension is not N.
pub fn gradient_penalty(
    critic: &dyn Fn(&Tensor) -> Tensor,
    real: &Tensor,
    fake: &Tensor,
    eps: &Tensor,
) -> Result<Tensor> {
    if real.size() != fake.size() {
        return Err(ModelError::Shape(format!(
            "gradient penalty: real {:?} and fake {:?} differ in shape",
            real.size(),
            fake.size()
        )));
    }
    // Fallible ops: an `eps` that does not broadcast must be an error, not a panic.
    let from_real = eps
        .f_mul(&real.detach())
        .ctx("gradient penalty: eps * real (does eps broadcast?)")?;
    let one_minus = eps
        .f_neg()
        .and_then(|e| e.f_add_scalar(1.0))
        .ctx("gradient penalty: 1 - eps")?;
    let from_fake = one_minus
        .f_mul(&fake.detach())
        .ctx("gradient penalty: (1 - eps) * fake")?;
    let mixed = from_real
        .f_add(&from_fake)
        .ctx("mixing real and fake for the gradient penalty")?;
    if mixed.size() != real.size() {
        return Err(ModelError::Shape(format!(
            "gradient penalty: eps {:?} does not broadcast to the data shape {:?}",
            eps.size(),
            real.size()
        )));
    }
    let x_hat = mixed.detach().set_requires_grad(true);
    let g = input_gradient(critic, &x_hat, "gradient penalty")?;
    Ok((per_sample_norms(&g) - 1.0).square().mean(g.kind()))
}

/// R1 regularizer (Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?", eq. 9):
/// E_{x~p_D} ‖∇ₓ D(x)‖², the mean over the batch of each real sample's squared gradient norm. The paper's
/// term is (γ/2) times this: the caller multiplies by γ/2 (the authors use γ = 10 on CelebA/LSUN).
///
/// The gradient is taken at `real` itself (a detached copy that requires grad), with the graph kept, so
/// `penalty.backward()` reaches D's weights. Like [`gradient_penalty`] the critic may return (N,) scores or
/// (N, ...) maps, reduced per sample by their mean first; an output without a graph or whose first dimension is
/// not N is an error, not a crash.
pub fn r1_penalty(critic: &dyn Fn(&Tensor) -> Tensor, real: &Tensor) -> Result<Tensor> {
    let x = real.detach().set_requires_grad(true);
    let g = input_gradient(critic, &x, "R1 penalty")?;
    let n = g.size()[0];
    let sq = g.reshape([n, -1]).square().sum_dim_intlist(1, false, g.kind()); // (N,)
    Ok(sq.mean(g.kind()))
}

/// The mode-seeking term of MSGAN (Mao et al. 2019): 1 / (mean |G(z₁, c) − G(z₂, c)| / mean |z₁ − z₂| + 1e-5),
/// small when two noise draws of the same conditions give images that differ in proportion.
pub fn mode_seeking(fake1: &Tensor, fake2: &Tensor, z1: &Tensor, z2: &Tensor) -> Tensor {
    let ratio = (fake1 - fake2).abs().mean(Kind::Float) / (z1 - z2).abs().mean(Kind::Float);
    (ratio + 1e-5).reciprocal()
}

/// WGAN weight clipping (Arjovsky et al. 2017, Algorithm 1): clamps every one of `params` (a critic's trainable
/// variables) to [−c, c], in place.
pub fn clip_weights<'a>(params: impl IntoIterator<Item = &'a Tensor>, c: f64) {
    tch::no_grad(|| {
        for v in params {
            let _ = v.shallow_clone().clamp_(-c, c);
        }
    });
}

/// Max-norm constraint (pylearn2's `max_col_norm`, used by Goodfellow et al. 2014 and Mirza & Osindero 2014
/// with 1.9365): every unit's incoming weight vector — each row of a linear layer's `(out, in)` weight, each
/// output channel of a convolution — is rescaled to L2 norm at most `c` (`torch.renorm(w, 2, 0, c)`), in place.
/// `params` are a network's trainable variables by name; biases, norms' parameters and other 1-D variables are
/// left alone.
pub fn max_norm<'a>(params: impl IntoIterator<Item = (&'a str, &'a Tensor)>, c: f64) {
    tch::no_grad(|| {
        for (name, v) in params {
            if name.ends_with("weight") && v.dim() >= 2 {
                let _ = v.shallow_clone().renorm_(2.0, 0, c);
            }
        }
    });
}

/// Scales the gradients of `vars` so that their joint L2 norm is at most `max_norm`, like
/// `torch.nn.utils.clip_grad_norm_`; returns the total norm before clipping. Undefined grads are ignored.
pub fn clip_grad_norm(vars: &[Tensor], max_norm: f64) -> f64 {
    let grads: Vec<Tensor> = vars
        .iter()
        .map(|v| v.grad())
        .filter(|g| g.defined())
        .collect();
    if grads.is_empty() {
        return 0.0;
    }
    let total = tch::no_grad(|| {
        grads
            .iter()
            .map(|g| {
                let n = g.norm().to_kind(Kind::Double).double_value(&[]);
                n * n
            })
            .sum::<f64>()
            .sqrt()
    });
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        tch::no_grad(|| {
            for mut g in grads {
                let _ = g.g_mul_scalar_(coef);
            }
        });
    }
    total
}
