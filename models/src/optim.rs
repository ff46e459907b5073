//! Optimizers (Adam, RMSprop, SGD) whose state the project owns, so checkpoints can hold it and resume
//! exactly (tch's `nn::Optimizer` cannot save its state); learning-rate schedules; EMA of weights.
//!
//! Update rules follow PyTorch's `torch.optim` single-tensor implementations exactly (checked against
//! golden numbers from PyTorch in `tests/golden.rs`).

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use crate::error::{ModelError, Result, TorchContext};

fn default_betas() -> (f64, f64) {
    (0.9, 0.999)
}
fn default_eps() -> f64 {
    1e-8
}
fn default_alpha() -> f64 {
    0.99
}

/// Optimizer choice and hyper-parameters. `lr` is required; the rest default to PyTorch's defaults.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// Kingma & Ba 2015, Algorithm 1 (L2 weight decay added to the gradient, as `torch.optim.Adam`).
    Adam {
        /// Learning rate (required).
        lr: f64,
        /// Adam's (β1, β2).
        #[serde(default = "default_betas")]
        betas: (f64, f64),
        /// Term added to the denominator for numerical stability.
        #[serde(default = "default_eps")]
        eps: f64,
        /// L2 penalty added to the gradient.
        #[serde(default)]
        weight_decay: f64,
    },
    /// Tieleman & Hinton 2012 (as `torch.optim.RMSprop`, non-centered; eps added outside the sqrt).
    Rmsprop {
        /// Learning rate (required).
        lr: f64,
        /// Smoothing constant of RMSprop's running average of squared gradients.
        #[serde(default = "default_alpha")]
        alpha: f64,
        /// Term added to the denominator for numerical stability.
        #[serde(default = "default_eps")]
        eps: f64,
        /// Momentum factor.
        #[serde(default)]
        momentum: f64,
        /// L2 penalty added to the gradient.
        #[serde(default)]
        weight_decay: f64,
    },
    /// SGD with optional (Nesterov) momentum, no dampening (as `torch.optim.SGD`).
    Sgd {
        /// Learning rate (required).
        lr: f64,
        /// Momentum factor.
        #[serde(default)]
        momentum: f64,
        /// Nesterov momentum.
        #[serde(default)]
        nesterov: bool,
        /// L2 penalty added to the gradient.
        #[serde(default)]
        weight_decay: f64,
    },
}

impl Default for OptimizerConfig {
    /// Adam 2e-4, betas (0.5, 0.999): the DCGAN setting most GAN papers reuse.
    fn default() -> Self {
        OptimizerConfig::Adam {
            lr: 2e-4,
            betas: (0.5, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl OptimizerConfig {
    /// The configured (base) learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerConfig::Adam { lr, .. }
            | OptimizerConfig::Rmsprop { lr, .. }
            | OptimizerConfig::Sgd { lr, .. } => *lr,
        }
    }

    /// Every problem with the hyper-parameters (empty when valid).
    pub fn check(&self) -> Vec<String> {
        let mut p = Vec::new();
        let lr = self.lr();
        if !(lr.is_finite() && lr >= 0.0) {
            p.push(format!("lr must be a finite number >= 0, got {lr}"));
        }
        match self {
            OptimizerConfig::Adam {
                betas,
                eps,
                weight_decay,
                ..
            } => {
                for (name, b) in [("betas[0]", betas.0), ("betas[1]", betas.1)] {
                    if !(0.0..1.0).contains(&b) {
                        p.push(format!("{name} must be in [0, 1), got {b}"));
                    }
                }
                check_nonneg(&mut p, "eps", *eps);
                check_nonneg(&mut p, "weight_decay", *weight_decay);
            }
            OptimizerConfig::Rmsprop {
                alpha,
                eps,
                momentum,
                weight_decay,
                ..
            } => {
                if !(0.0..=1.0).contains(alpha) {
                    p.push(format!("alpha must be in [0, 1], got {alpha}"));
                }
                check_nonneg(&mut p, "eps", *eps);
                check_nonneg(&mut p, "momentum", *momentum);
                check_nonneg(&mut p, "weight_decay", *weight_decay);
            }
            OptimizerConfig::Sgd {
                momentum,
                nesterov,
                weight_decay,
                ..
            } => {
                check_nonneg(&mut p, "momentum", *momentum);
                check_nonneg(&mut p, "weight_decay", *weight_decay);
                if *nesterov && *momentum <= 0.0 {
                    p.push("nesterov requires momentum > 0".into());
                }
            }
        }
        p
    }
}

fn check_nonneg(p: &mut Vec<String>, name: &str, v: f64) {
    if !(v.is_finite() && v >= 0.0) {
        p.push(format!("{name} must be a finite number >= 0, got {v}"));
    }
}

/// Per-parameter state. Buffers are created (zeros) up front so the state is always saveable;
/// `step` counts this parameter's own updates (PyTorch keeps a per-parameter step too).
struct ParamState {
    name: String,
    param: Tensor,
    step: i64,
    /// Adam: exp_avg; RMSprop: momentum_buffer; SGD: momentum_buffer.
    buf1: Tensor,
    /// Adam: exp_avg_sq; RMSprop: square_avg; SGD: unused (undefined).
    buf2: Tensor,
}

/// An optimizer over a VarStore's trainable variables with state the caller can save and load.
pub struct Optimizer {
    cfg: OptimizerConfig,
    lr: f64,
    steps: i64,
    params: Vec<ParamState>,
}

impl std::fmt::Debug for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Optimizer")
            .field("cfg", &self.cfg)
            .field("lr", &self.lr)
            .field("steps", &self.steps)
            .field(
                "params",
                &self
                    .params
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The trainable variables of `vs` with their names, sorted by name (deterministic order).
pub fn named_trainable(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let vars = vs.variables_.lock().unwrap_or_else(|e| e.into_inner());
    let ptrs: HashSet<usize> = vars
        .trainable_variables
        .iter()
        .map(|v| v.tensor.data_ptr() as usize)
        .collect();
    let mut out: Vec<(String, Tensor)> = vars
        .named_variables
        .iter()
        .filter(|(_, t)| ptrs.contains(&(t.data_ptr() as usize)))
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

impl Optimizer {
    /// An optimizer over `vs`'s trainable variables (by name, sorted), with zeroed state.
    pub fn new(vs: &nn::VarStore, cfg: &OptimizerConfig) -> Self {
        let params = named_trainable(vs)
            .into_iter()
            .map(|(name, param)| {
                let z = || tch::no_grad(|| param.zeros_like());
                let (buf1, buf2) = match cfg {
                    OptimizerConfig::Adam { .. } => (z(), z()),
                    OptimizerConfig::Rmsprop { .. } => (z(), z()),
                    OptimizerConfig::Sgd { .. } => (z(), Tensor::new()),
                };
                ParamState {
                    name,
                    param,
                    step: 0,
                    buf1,
                    buf2,
                }
            })
            .collect();
        Optimizer {
            cfg: cfg.clone(),
            lr: cfg.lr(),
            steps: 0,
            params,
        }
    }

    /// Zeroes every parameter's gradient (tch cannot reset a gradient to undefined, so defined
    /// gradients become zeros; parameters whose gradient was never defined stay undefined and are skipped).
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.param.zero_grad();
        }
    }

    /// One update of every parameter with a defined gradient, with PyTorch `torch.optim` semantics.
    pub fn step(&mut self) -> Result<()> {
        let lr = self.lr;
        let cfg = self.cfg.clone();
        let _guard = tch::no_grad_guard();
        for p in &mut self.params {
            let g0 = p.param.grad();
            if !g0.defined() {
                continue;
            }
            if g0.size() != p.param.size() {
                return Err(ModelError::Shape(format!(
                    "gradient of {} has shape {:?}, parameter {:?}",
                    p.name,
                    g0.size(),
                    p.param.size()
                )));
            }
            p.step += 1;
            match cfg {
                OptimizerConfig::Adam {
                    betas: (b1, b2),
                    eps,
                    weight_decay,
                    ..
                } => {
                    let grad = if weight_decay != 0.0 {
                        g0.f_add(&(&p.param * weight_decay))
                            .ctx("adam weight decay")?
                    } else {
                        g0
                    };
                    // torch.optim.Adam's single-tensor sequence, in place with fused ops (fewer full passes).
                    let _ = p.buf1.f_lerp_(&grad, 1.0 - b1).ctx("adam exp_avg")?;
                    let _ = p.buf2.f_mul_scalar_(b2).ctx("adam exp_avg_sq")?;
                    let _ = p
                        .buf2
                        .f_addcmul_(&(&grad * (1.0 - b2)), &grad)
                        .ctx("adam exp_avg_sq")?;
                    let t = p.step as f64;
                    let bc1 = 1.0 - b1.powf(t);
                    let bc2 = 1.0 - b2.powf(t);
                    let step_size = lr / bc1;
                    let mut denom = p.buf2.sqrt();
                    let _ = denom.f_div_scalar_(bc2.sqrt()).ctx("adam denom")?;
                    let _ = denom.f_add_scalar_(eps).ctx("adam denom")?;
                    let _ = p
                        .param
                        .f_addcdiv_(&(&p.buf1 * (-step_size)), &denom)
                        .ctx("adam update")?;
                }
                OptimizerConfig::Rmsprop {
                    alpha,
                    eps,
                    momentum,
                    weight_decay,
                    ..
                } => {
                    let grad = if weight_decay != 0.0 {
                        g0.f_add(&(&p.param * weight_decay))
                            .ctx("rmsprop weight decay")?
                    } else {
                        g0
                    };
                    let _ = p.buf2.f_mul_scalar_(alpha).ctx("rmsprop square_avg")?;
                    let _ = p
                        .buf2
                        .f_add_(&(&grad * &grad * (1.0 - alpha)))
                        .ctx("rmsprop square_avg")?;
                    let avg = p.buf2.sqrt() + eps;
                    if momentum > 0.0 {
                        let _ = p.buf1.f_mul_scalar_(momentum).ctx("rmsprop momentum")?;
                        let _ = p.buf1.f_add_(&(&grad / &avg)).ctx("rmsprop momentum")?;
                        let _ = p.param.f_add_(&(&p.buf1 * (-lr))).ctx("rmsprop update")?;
                    } else {
                        let _ = p
                            .param
                            .f_add_(&(&grad * (-lr) / &avg))
                            .ctx("rmsprop update")?;
                    }
                }
                OptimizerConfig::Sgd {
                    momentum,
                    nesterov,
                    weight_decay,
                    ..
                } => {
                    let mut grad = if weight_decay != 0.0 {
                        g0.f_add(&(&p.param * weight_decay))
                            .ctx("sgd weight decay")?
                    } else {
                        g0
                    };
                    if momentum != 0.0 {
                        if p.step == 1 {
                            // torch.optim.SGD: the momentum buffer starts as a copy of the first gradient.
                            p.buf1.f_copy_(&grad).ctx("sgd momentum buffer")?;
                        } else {
                            let _ = p.buf1.f_mul_scalar_(momentum).ctx("sgd momentum")?;
                            let _ = p.buf1.f_add_(&grad).ctx("sgd momentum")?;
                        }
                        grad = if nesterov {
                            grad.f_add(&(&p.buf1 * momentum)).ctx("sgd nesterov")?
                        } else {
                            p.buf1.shallow_clone()
                        };
                    }
                    let _ = p.param.f_add_(&(&grad * (-lr))).ctx("sgd update")?;
                }
            }
        }
        self.steps += 1;
        Ok(())
    }

    /// The current learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Sets the current learning rate (schedules call this with `base_lr() * factor`).
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// The configured learning rate.
    pub fn base_lr(&self) -> f64 {
        self.cfg.lr()
    }

    /// How many times `step` was called (including after `load_state`).
    pub fn steps(&self) -> i64 {
        self.steps
    }

    /// The configuration this optimizer was built with.
    pub fn config(&self) -> &OptimizerConfig {
        &self.cfg
    }

    /// Names of the optimized variables, sorted.
    pub fn param_names(&self) -> Vec<String> {
        self.params.iter().map(|p| p.name.clone()).collect()
    }

    /// The optimized variables (the stores' own tensors, not copies) with their names, sorted by name.
    pub fn params(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.params.iter().map(|p| (p.name.as_str(), &p.param))
    }

    fn buffer_names(&self) -> (&'static str, Option<&'static str>) {
        match self.cfg {
            OptimizerConfig::Adam { .. } => ("exp_avg", Some("exp_avg_sq")),
            OptimizerConfig::Rmsprop { .. } => ("momentum_buffer", Some("square_avg")),
            OptimizerConfig::Sgd { .. } => ("momentum_buffer", None),
        }
    }

    /// The full state as named tensors (copies, on the parameters' devices):
    /// `{prefix}.step` (i64, 1 element: `steps()`), `{prefix}.lr` (f64, 1 element),
    /// `{prefix}.param_step.{var}` (i64, 1 element) and `{prefix}.{buffer}.{var}` for each buffer
    /// (adam: exp_avg, exp_avg_sq; rmsprop: square_avg, momentum_buffer; sgd: momentum_buffer).
    pub fn state_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let (b1, b2) = self.buffer_names();
        let mut out = vec![
            (format!("{prefix}.step"), Tensor::from_slice(&[self.steps])),
            (format!("{prefix}.lr"), Tensor::from_slice(&[self.lr])),
        ];
        for p in &self.params {
            out.push((
                format!("{prefix}.param_step.{}", p.name),
                Tensor::from_slice(&[p.step]),
            ));
            out.push((format!("{prefix}.{b1}.{}", p.name), p.buf1.detach().copy()));
            if let Some(b2) = b2 {
                out.push((format!("{prefix}.{b2}.{}", p.name), p.buf2.detach().copy()));
            }
        }
        out
    }

    /// Restores state written by [`Optimizer::state_tensors`] with the same `prefix`. Checks everything
    /// first and changes nothing on error; the error lists every missing or mis-shaped tensor.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        let mut problems = Vec::new();
        let scalar = |key: &str, problems: &mut Vec<String>| -> Option<Tensor> {
            match tensors.get(key) {
                None => {
                    problems.push(format!("missing `{key}`"));
                    None
                }
                Some(t) if t.numel() != 1 => {
                    problems.push(format!(
                        "`{key}` must have 1 element, has shape {:?}",
                        t.size()
                    ));
                    None
                }
                Some(t) => Some(t.shallow_clone()),
            }
        };
        let steps = scalar(&format!("{prefix}.step"), &mut problems);
        let lr = tensors
            .get(&format!("{prefix}.lr"))
            .filter(|t| t.numel() == 1)
            .map(|t| t.to_kind(Kind::Double).double_value(&[0]));
        let (b1, b2) = self.buffer_names();
        let mut per_param = Vec::new();
        for p in &self.params {
            let st = scalar(&format!("{prefix}.param_step.{}", p.name), &mut problems);
            let mut bufs = Vec::new();
            for b in std::iter::once(b1).chain(b2) {
                let key = format!("{prefix}.{b}.{}", p.name);
                match tensors.get(&key) {
                    None => problems.push(format!("missing `{key}`")),
                    Some(t) if t.size() != p.param.size() => problems.push(format!(
                        "`{key}` has shape {:?}, the parameter has {:?}",
                        t.size(),
                        p.param.size()
                    )),
                    Some(t) => bufs.push(t.shallow_clone()),
                }
            }
            per_param.push((st, bufs));
        }
        if !problems.is_empty() {
            return Err(ModelError::State(format!(
                "optimizer state `{prefix}`: {}",
                problems.join("; ")
            )));
        }
        let to_i64 = |t: &Tensor| {
            t.to_kind(Kind::Int64)
                .to_device(Device::Cpu)
                .int64_value(&[0])
        };
        let _guard = tch::no_grad_guard();
        for (p, (st, bufs)) in self.params.iter_mut().zip(per_param) {
            if let Some(st) = st {
                p.step = to_i64(&st);
            }
            let src1 = bufs[0].to_device(p.param.device()).to_kind(p.param.kind());
            p.buf1
                .f_copy_(&src1)
                .ctx(format!("loading optimizer state for {}", p.name))?;
            if let Some(src2) = bufs.get(1) {
                let src2 = src2.to_device(p.param.device()).to_kind(p.param.kind());
                p.buf2
                    .f_copy_(&src2)
                    .ctx(format!("loading optimizer state for {}", p.name))?;
            }
        }
        if let Some(s) = steps {
            self.steps = to_i64(&s);
        }
        if let Some(lr) = lr {
            self.lr = lr;
        }
        Ok(())
    }
}

/// A learning-rate schedule: `lr = base_lr * factor(step, total_steps)`.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrSchedule {
    /// factor 1 throughout.
    #[default]
    Constant,
    /// CycleGAN style (Zhu et al. 2017, §4): constant until `start * total_steps`, then linearly to 0 at
    /// `total_steps`.
    Linear {
        /// Fraction of the run before the decay starts.
        #[serde(default = "default_linear_start")]
        start: f64,
    },
    /// Multiply by `gamma` every `every` steps (StackGAN / GAN-CLS halve the LR every N epochs).
    Step {
        /// Steps between two multiplications.
        every: i64,
        /// The factor.
        gamma: f64,
    },
    /// Multiply by `gamma` every step, never below `min` (Mirza & Osindero: lr 0.1 divided by 1.00004 a
    /// step down to 1e-6, i.e. gamma 1/1.00004, min 1e-5).
    Exponential {
        /// The factor a step, in (0, 1].
        gamma: f64,
        /// The smallest factor.
        #[serde(default)]
        min: f64,
    },
}

fn default_linear_start() -> f64 {
    0.5
}

impl LrSchedule {
    /// The LR multiplier at `step` (0-based) of `total_steps`.
    pub fn factor(&self, step: i64, total_steps: i64) -> f64 {
        match *self {
            LrSchedule::Constant => 1.0,
            LrSchedule::Linear { start } => {
                let total = total_steps.max(1) as f64;
                let s0 = (start.clamp(0.0, 1.0) * total).floor();
                let s = step as f64;
                if s <= s0 {
                    1.0
                } else {
                    (1.0 - (s - s0) / (total - s0).max(1.0)).clamp(0.0, 1.0)
                }
            }
            LrSchedule::Step { every, gamma } => {
                if every <= 0 {
                    1.0
                } else {
                    gamma.powi((step.max(0) / every) as i32)
                }
            }
            LrSchedule::Exponential { gamma, min } => gamma.powf(step.max(0) as f64).max(min),
        }
    }

    /// Every problem with the schedule (empty when valid).
    pub fn check(&self) -> Vec<String> {
        match *self {
            LrSchedule::Constant => vec![],
            LrSchedule::Linear { start } => {
                if (0.0..=1.0).contains(&start) {
                    vec![]
                } else {
                    vec![format!(
                        "linear schedule start must be a fraction in [0, 1], got {start}"
                    )]
                }
            }
            LrSchedule::Step { every, gamma } => {
                let mut p = vec![];
                if every <= 0 {
                    p.push(format!("step schedule `every` must be > 0, got {every}"));
                }
                if !(gamma.is_finite() && gamma > 0.0) {
                    p.push(format!("step schedule gamma must be > 0, got {gamma}"));
                }
                p
            }
            LrSchedule::Exponential { gamma, min } => {
                let mut p = vec![];
                if !(gamma.is_finite() && gamma > 0.0 && gamma <= 1.0) {
                    p.push(format!("exponential schedule gamma must be in (0, 1], got {gamma}"));
                }
                if !(0.0..=1.0).contains(&min) {
                    p.push(format!("exponential schedule min must be a factor in [0, 1], got {min}"));
                }
                p
            }
        }
    }
}

/// Exponential moving average of weights (e.g. of G, Karras et al. 2018 / Yazıcı et al. 2019):
/// `target = decay * target + (1 - decay) * source` for the target's trainable variables; every other
/// variable (BN running statistics, spectral-norm `u`/`v`, integer buffers) is copied from `source`.
/// Variables are matched by name; ones missing from `source` or of a different shape are left alone.
pub fn ema_update(target: &nn::VarStore, source: &nn::VarStore, decay: f64) {
    let src = source.variables();
    let trainable: HashSet<String> = named_trainable(target)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let _guard = tch::no_grad_guard();
    for (name, mut t) in target.variables() {
        let Some(s) = src.get(&name) else { continue };
        if s.size() != t.size() {
            continue;
        }
        let s = s.to_device(t.device()).to_kind(t.kind());
        if trainable.contains(&name) && t.is_floating_point() {
            let _ = t.lerp_(&s, 1.0 - decay);
        } else {
            t.copy_(&s);
        }
    }
}
