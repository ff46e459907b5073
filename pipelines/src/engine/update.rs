//! One training step of any family: the engine's side of every update.
//!
//! A step runs the family's phases in order (`Family::phases`: D then G, or G then D); the D update runs
//! `train.n_critic` times, each on fresh batches. An update on `train.accumulate` = k micro-batches: zero the
//! gradients of the networks it trains; for each micro-batch, the family's loss (under bf16 autocast with
//! `train.precision: bf16`) plus, in D updates, the gradient penalty and R1 on each D the family names, divided
//! by k and backpropagated (during G's, the networks of the D update are frozen); then per network: gradient
//! clipping, the optimizer step (unless the family holds it), max-norm, and in D updates weight clipping;
//! after G's update, the EMA of every generator and encoder. DiffAugment reaches D's inputs through
//! [`Ctx::d_input`]. So every regularizer is written once, here, and works in every family.
use crate::config::{Precision, Settings};
use crate::error::{PipelineError, Result};
use crate::family::{scalar, Batch, CriticInput, Ctx, Family, Losses, Phase};
use crate::dist::Place;
use crate::feed::Feed;
use ganzoo_torch_ext::ProcessGroup;
use ganzoo_models::augment::DiffAugment;
use ganzoo_models::losses::{clip_grad_norm, clip_weights, gradient_penalty, max_norm, r1_penalty};
use ganzoo_models::optim::Optimizer;
use ganzoo_models::rng::{derived_rng, uniform};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use tch::{Device, Kind, Tensor};

/// A trained network's optimizer.
struct Opt {
    net: &'static str,
    name: &'static str,
    phase: Phase,
    opt: Optimizer,
}

/// The exponential moving average of one network (Karras et al. 2018; Yazıcı et al. 2019): every variable's
/// average beside the live variable (parameters averaged, buffers such as batch-norm statistics copied).
struct Ema {
    net: &'static str,
    /// (name, live variable, its average, whether it is a parameter).
    vars: Vec<(String, Tensor, Tensor, bool)>,
}

impl Ema {
    fn update(&self, decay: f64) {
        tch::no_grad(|| {
            for (_, live, avg, param) in &self.vars {
                let mut avg = avg.shallow_clone();
                if *param && live.is_floating_point() {
                    let _ = avg.lerp_(live, 1.0 - decay);
                } else {
                    avg.copy_(live);
                }
            }
        });
    }

    /// Exchanges the live weights and the averages (twice restores them, bit for bit).
    fn swap(&self) {
        tch::no_grad(|| {
            for (_, live, avg, _) in &self.vars {
                let tmp = live.copy();
                live.shallow_clone().copy_(avg);
                avg.shallow_clone().copy_(&tmp);
            }
        });
    }
}

/// The engine's state across steps: optimizers, EMA copies, the feed and DiffAugment.
pub struct Trainer {
    s: Settings,
    device: Device,
    opts: Vec<Opt>,
    ema: Vec<Ema>,
    feed: Option<Feed>,
    augment: Option<DiffAugment>,
    /// This process's rank in a data-parallel job (torchrun's variables), and its process group once joined.
    place: Place,
    group: Option<ProcessGroup>,
}

impl Trainer {
    /// Optimizers for every network the family trains (`Net::opt`), EMA copies of its generators and
    /// encoders when `train.ema` is set (starting from their current weights), and the feed of its training
    /// data when it has some.
    pub fn new(fam: &dyn Family, s: &Settings, device: Device) -> Result<Self> {
        let mut opts = Vec::new();
        let mut ema = Vec::new();
        for n in fam.networks() {
            let Some((name, cfg)) = n.opt else { continue };
            let opt = Optimizer::new(n.vs, &cfg);
            if s.train.ema.is_some() && n.role.phase() == Phase::G {
                let params: BTreeSet<&str> = opt.params().map(|(k, _)| k).collect();
                let mut vars: Vec<_> = n.vs.variables().into_iter().collect();
                vars.sort_by(|a, b| a.0.cmp(&b.0));
                let vars = vars
                    .into_iter()
                    .map(|(k, t)| {
                        let avg = tch::no_grad(|| t.detach().copy());
                        let p = params.contains(k.as_str());
                        (k, t, avg, p)
                    })
                    .collect();
                ema.push(Ema { net: n.name, vars });
            }
            opts.push(Opt { net: n.name, name, phase: n.role.phase(), opt });
        }
        let place = crate::dist::place()?;
        if s.train.batch_size % place.world as i64 != 0 {
            return Err(PipelineError::Usage(format!(
                "train.batch_size: {} does not divide among WORLD_SIZE={} data-parallel ranks (it is the global batch)",
                s.train.batch_size, place.world
            )));
        }
        let feed = fam.train_source().map(|src| Feed::for_rank(src, &s.train, s.seed, device, place));
        let augment = (!s.train.diffaugment.is_empty()).then(|| DiffAugment { ops: s.train.diffaugment.clone() });
        Ok(Trainer { s: s.clone(), device, opts, ema, feed, augment, place, group: None })
    }

    /// This process's rank and the job's world size.
    pub fn place(&self) -> Place {
        self.place
    }

    /// In a data-parallel job, meets the other ranks and makes every rank's networks and EMA weights rank 0's
    /// (they start equal already, from the same seed or checkpoint: a check that costs one copy).
    pub fn join(&mut self, fam: &dyn Family) -> Result<()> {
        if self.place.world == 1 {
            return Ok(());
        }
        let mut group = crate::dist::join(self.place, std::time::Duration::from_secs(self.s.train.collective_timeout_s))?;
        let mut ts: Vec<Tensor> = fam.networks().iter().flat_map(|n| crate::checkpoint::named_vars(n.vs, n.name).into_iter().map(|(_, t)| t)).collect();
        ts.extend(self.ema.iter().flat_map(|e| e.vars.iter().map(|(_, _, avg, _)| avg.shallow_clone())));
        if let Err(e) = group.broadcast(&ts, 0) {
            return Err(crate::dist::collective_error(&mut group, "the broadcast of rank 0's weights", e));
        }
        self.group = Some(group);
        Ok(())
    }

    /// Rank 0's writes of step `step` (samples, checkpoint, evaluation) do not count against the collectives'
    /// timeout: rank 0 marks them done in the job's store, the other ranks wait for the mark (up to a day).
    pub fn rank0_writes(&mut self, step: i64) -> Result<()> {
        let Some(g) = self.group.as_mut() else { return Ok(()) };
        let key = format!("written/step{step}");
        let r = if self.place.rank == 0 { g.store_set(&key, "1") } else { g.store_wait(&key, std::time::Duration::from_secs(86_400)) };
        r.map_err(|e| PipelineError::Runtime(format!("{}: waiting for rank 0's writes of step {step} failed: {e} (rank 0 stopped?)", self.place)))
    }

    /// The mean of every rank's losses (each rank's are of its rows of the batch), so that all ranks log and
    /// judge the same numbers (a non-finite loss on one rank stops every rank).
    pub fn mean_losses(&mut self, losses: &mut Losses) -> Result<()> {
        let Some(g) = self.group.as_mut() else { return Ok(()) };
        let v: Vec<f64> = losses.values().copied().collect();
        let t = Tensor::from_slice(&v);
        if let Err(e) = g.all_reduce(&[t.shallow_clone()], true) {
            return Err(crate::dist::collective_error(g, "averaging the losses", e));
        }
        for (slot, x) in losses.values_mut().zip(Vec::<f64>::try_from(&t).unwrap_or(v)) {
            *slot = x;
        }
        Ok(())
    }

    /// Replaces the feed (benchmarks time the update on one fixed batch).
    pub fn with_feed(mut self, feed: Feed) -> Self {
        self.feed = Some(feed);
        self
    }

    /// Every optimizer with its checkpoint prefix.
    pub fn optimizers(&self) -> impl Iterator<Item = (&'static str, &Optimizer)> {
        self.opts.iter().map(|o| (o.name, &o.opt))
    }

    /// Sets every learning rate to its base times `factor` (the schedule).
    pub fn scale_lr(&mut self, factor: f64) {
        for o in &mut self.opts {
            let base = o.opt.base_lr();
            o.opt.set_lr(base * factor);
        }
    }

    /// Runs `f` with the EMA weights in the live networks (samples and evaluation), then restores them.
    pub fn with_ema<T>(&self, f: impl FnOnce() -> T) -> T {
        self.ema.iter().for_each(Ema::swap);
        let r = f();
        self.ema.iter().for_each(Ema::swap);
        r
    }

    /// Puts the EMA weights into the live networks for good (the run is over: its report evaluates them).
    pub fn keep_ema(&self) {
        self.ema.iter().for_each(Ema::swap);
    }

    /// Every tensor a checkpoint holds: networks (buffers included), optimizer state, EMA averages
    /// (`<net>_ema.<var>`) and the family's extra state (e.g. image pools).
    pub fn state(&self, fam: &dyn Family) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for n in fam.networks() {
            out.extend(crate::checkpoint::named_vars(n.vs, n.name));
        }
        for o in &self.opts {
            out.extend(o.opt.state_tensors(o.name));
        }
        for e in &self.ema {
            out.extend(e.vars.iter().map(|(k, _, avg, _)| (format!("{}_ema.{k}", e.net), avg.shallow_clone())));
        }
        out.extend(fam.extra_state());
        out
    }

    /// Loads networks, optimizer state, EMA averages and the family's extra state from checkpoint tensors.
    pub fn restore(&mut self, fam: &mut dyn Family, tensors: &HashMap<String, Tensor>, origin: &str) -> Result<()> {
        for n in fam.networks() {
            crate::checkpoint::restore_vars(n.vs, tensors, n.name, origin)?;
        }
        for o in &mut self.opts {
            o.opt.load_state(tensors, o.name)?;
        }
        for e in &self.ema {
            let mut missing = Vec::new();
            for (k, _, avg, _) in &e.vars {
                let key = format!("{}_ema.{k}", e.net);
                match tensors.get(&key) {
                    Some(t) if t.size() == avg.size() => tch::no_grad(|| avg.shallow_clone().copy_(t)),
                    _ => missing.push(key),
                }
            }
            if !missing.is_empty() {
                return Err(PipelineError::Runtime(format!("{origin}: no EMA weights for `{}` ({})", e.net, missing.join(", "))));
            }
        }
        // A rank above 0 takes its own state (image pools), which rank 0 saved as `rank<r>/<name>`.
        let prefix = format!("rank{}/", self.place.rank);
        if self.place.rank > 0 && tensors.keys().any(|k| k.starts_with(&prefix)) {
            let mut own: HashMap<String, Tensor> = tensors.iter().filter(|(k, _)| !k.starts_with("rank")).map(|(k, t)| (k.clone(), t.shallow_clone())).collect();
            for (k, t) in tensors.iter().filter_map(|(k, t)| k.strip_prefix(&prefix).map(|k| (k, t))) {
                own.insert(k.to_string(), t.shallow_clone());
            }
            return fam.load_extra_state(&own);
        }
        fam.load_extra_state(tensors)
    }

    /// In a data-parallel job, every rank's own state (the family's extra state, e.g. image pools) gathered on
    /// every rank, as `rank<r>/<name>` for ranks above 0 (rank 0 saves it beside its own). Empty for one process.
    pub fn gather_rank_state(&mut self, fam: &dyn Family) -> Result<Vec<(String, Tensor)>> {
        let Some(g) = self.group.as_mut() else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for (k, t) in fam.extra_state() {
            // Pools fill at the same rate on every rank (the same number of images a step): the same shapes.
            match g.all_gather(&t) {
                Ok(all) => out.extend((1..self.place.world).map(|r| (format!("rank{r}/{k}"), all.get(r as i64)))),
                Err(e) => return Err(crate::dist::collective_error(g, "gathering the ranks' image pools", e)),
            }
        }
        Ok(out)
    }

    /// One step (`step` counts from 0): the family's phases with every regularizer; returns what to log.
    pub fn step(&mut self, fam: &mut dyn Family, step: i64) -> Result<Losses> {
        let Place { rank, world } = self.place;
        // `train.sync_batch_norm`: the synchronized arithmetic, over the ranks (or in this one process alone).
        let _sync = self.s.train.sync_batch_norm.then(|| ganzoo_torch_ext::SyncBatchNormScope::enter(self.group.as_ref()));
        // Every batch-shaped random draw of the step is this rank's rows of one process's draw.
        ganzoo_models::rng::with_row_shard(rank, world, || self.step_rows(fam, step))
    }

    fn step_rows(&mut self, fam: &mut dyn Family, step: i64) -> Result<Losses> {
        let mut logs = fam.begin_step(step)?;
        let phases = fam.phases();
        // Batches of one D update (k) are drawn once; G's update reuses the last D update's (D first) or the
        // first (G first), so a step draws n_critic × accumulate batches, in order.
        let n_critic = if phases.contains(&Phase::D) { self.s.train.n_critic } else { 1 };
        let acc = self.s.train.accumulate;
        let mut held: Option<(i64, Vec<Batch>)> = None;
        for (i, &phase) in phases.iter().enumerate() {
            let ks: Vec<i64> = match phase {
                Phase::D => (0..n_critic).collect(),
                Phase::G if i == 0 => vec![0],
                Phase::G => vec![n_critic - 1],
            };
            for k in ks {
                if held.as_ref().map(|(hk, _)| *hk) != Some(k) {
                    let feed = self.feed.as_mut().ok_or_else(|| PipelineError::Runtime("no training data opened".into()))?;
                    let batches = (0..acc).map(|j| feed.next((step * n_critic + k) * acc + j)).collect::<Result<Vec<_>>>()?;
                    held = Some((k, batches));
                }
                let batches = &held.as_ref().expect("batches drawn above").1;
                self.update(fam, phase, step, batches, &mut logs)?;
            }
        }
        Ok(logs)
    }

    /// Runs `f` under bf16 autocast when `train.precision` asks for it.
    fn autocast<T>(&self, f: impl FnOnce() -> T) -> T {
        match self.s.train.precision {
            Precision::Fp32 => f(),
            Precision::Bf16 => ganzoo_models::autocast::with_bf16(self.device, f),
        }
    }

    /// One update of the networks of `phase` on `batches` (one per micro-batch).
    fn update(&mut self, fam: &mut dyn Family, phase: Phase, step: i64, batches: &[Batch], logs: &mut Losses) -> Result<()> {
        let mine: Vec<usize> = (0..self.opts.len()).filter(|&i| self.opts[i].phase == phase).collect();
        if mine.is_empty() {
            return Ok(()); // nothing of this update is trained here (e.g. every such network frozen)
        }
        // D's weights need no gradient in G's update; its inputs do.
        let frozen: Vec<usize> = if phase == Phase::G { (0..self.opts.len()).filter(|&i| self.opts[i].phase == Phase::D).collect() } else { vec![] };
        self.set_requires_grad(&frozen, false);
        let r = self.backward(fam, phase, step, batches, &mine, logs);
        self.set_requires_grad(&frozen, true);
        let hold = r?;
        if let Some(g) = self.group.as_mut() {
            // DDP's rule: every network's gradients averaged across ranks before its optimizer step.
            let grads: Vec<Tensor> = mine.iter().flat_map(|&i| self.opts[i].opt.params().map(|(_, p)| p.grad()).collect::<Vec<_>>()).filter(Tensor::defined).collect();
            if let Err(e) = g.all_reduce(&grads, true) {
                return Err(crate::dist::collective_error(g, "the gradient all-reduce", e));
            }
        }
        let (t, l) = (&self.s.train, &self.s.loss);
        for &i in &mine {
            let o = &mut self.opts[i];
            let params: Vec<Tensor> = o.opt.params().map(|(_, p)| p.shallow_clone()).collect();
            if let Some(c) = t.grad_clip {
                clip_grad_norm(&params, c);
            }
            if !hold.contains(o.net) {
                o.opt.step()?;
            }
            if let Some(c) = t.max_norm {
                max_norm(o.opt.params(), c);
            }
            if let (Some(c), Phase::D) = (l.weight_clip, phase) {
                clip_weights(&params, c);
            }
        }
        if phase == Phase::G {
            if let Some(decay) = t.ema {
                self.ema.iter().for_each(|e| e.update(decay));
            }
        }
        Ok(())
    }

    fn set_requires_grad(&self, which: &[usize], on: bool) {
        for &i in which {
            for (_, p) in self.opts[i].opt.params() {
                let _ = p.shallow_clone().set_requires_grad(on);
            }
        }
    }

    /// The backward passes of one update; returns the networks the family held back.
    fn backward(&mut self, fam: &mut dyn Family, phase: Phase, step: i64, batches: &[Batch], mine: &[usize], logs: &mut Losses) -> Result<BTreeSet<&'static str>> {
        let acc = batches.len();
        for &i in mine {
            self.opts[i].opt.zero_grad();
        }
        let mut hold = BTreeSet::new();
        // With several micro-batches each one's gradients are kept apart and summed here, so a family's
        // gradient scaling between its loss terms (`Update::then`) applies to its own micro-batch only.
        let mut sums: Vec<Option<Tensor>> = Vec::new();
        for (j, b) in batches.iter().enumerate() {
            if j > 0 {
                for &i in mine {
                    self.opts[i].opt.zero_grad();
                }
            }
            let ctx = Ctx { step, micro: j, phase, augment: self.augment.as_ref(), seed: self.s.seed, draw: b.draw };
            let upd = self.autocast(|| match phase {
                Phase::D => fam.d_loss(b, &ctx),
                Phase::G => fam.g_loss(b, &ctx),
            })?;
            let mut total = upd.loss;
            for c in &upd.critics {
                if let Some(p) = self.autocast(|| self.penalties(&*fam, c, &ctx, logs))? {
                    total += p;
                }
            }
            let scale = |t: Tensor| if acc > 1 { t / acc as f64 } else { t };
            scale(total).backward();
            for (scales, extra) in upd.then {
                tch::no_grad(|| {
                    for (net, f) in &scales {
                        for o in self.opts.iter().filter(|o| o.net == *net) {
                            for (_, p) in o.opt.params() {
                                let mut g = p.grad();
                                if g.defined() {
                                    let _ = g.g_mul_scalar_(*f);
                                }
                            }
                        }
                    }
                });
                scale(extra).backward();
            }
            if acc > 1 {
                let grads: Vec<Tensor> = mine.iter().flat_map(|&i| self.opts[i].opt.params().map(|(_, p)| p.grad()).collect::<Vec<_>>()).collect();
                if sums.is_empty() {
                    sums = grads.iter().map(|g| g.defined().then(|| tch::no_grad(|| g.copy()))).collect();
                } else {
                    for (s, g) in sums.iter_mut().zip(&grads) {
                        match (s.as_mut(), g.defined()) {
                            (Some(s), true) => tch::no_grad(|| {
                                let _ = s.g_add_(g);
                            }),
                            (None, true) => *s = Some(tch::no_grad(|| g.copy())),
                            _ => {}
                        }
                    }
                }
            }
            logs.extend(upd.logs);
            hold.extend(upd.hold);
        }
        if acc > 1 {
            let params: Vec<Tensor> = mine.iter().flat_map(|&i| self.opts[i].opt.params().map(|(_, p)| p.shallow_clone()).collect::<Vec<_>>()).collect();
            for (p, s) in params.iter().zip(&sums) {
                if let Some(s) = s {
                    tch::no_grad(|| p.grad().copy_(s));
                }
            }
        }
        Ok(hold)
    }

    /// The gradient penalty and R1 on one D's inputs (with their weights), logged as `gp` / `r1` (`gp_<D>` /
    /// `r1_<D>` for a family with several Ds).
    fn penalties(&self, fam: &dyn Family, c: &CriticInput, ctx: &Ctx, logs: &mut Losses) -> Result<Option<Tensor>> {
        let l = &self.s.loss;
        let mut total: Option<Tensor> = None;
        let mut add = |t: Tensor| total = Some(match total.take() {
            Some(s) => s + t,
            None => t,
        });
        let failed = RefCell::new(None);
        // D's score per sample at the held condition: patch maps and several scales are averaged per sample.
        let critic = |x: &Tensor| -> Tensor {
            let n = x.size()[0];
            match ctx.d_input(x).and_then(|xin| fam.critic(c.d, &xin, c.cond.as_ref())) {
                Ok(s) => s.reshape([n, -1]).mean_dim(1, false, s.kind()), // (N,)
                Err(e) => {
                    *failed.borrow_mut() = Some(e);
                    x.zeros_like().sum(Kind::Float) // no graph: the penalty call errors, then `failed` says why
                }
            }
        };
        let key = |what: &str| if c.d == "D" { what.to_string() } else { format!("{what}_{}", c.d) };
        if l.gradient_penalty > 0.0 {
            let real = &c.real;
            let mut eps_shape = vec![real.size()[0]];
            eps_shape.extend(std::iter::repeat_n(1, real.dim() - 1));
            let stream = if c.d == "D" { "gp".to_string() } else { format!("gp_{}", c.d) };
            let eps = uniform(&mut derived_rng(self.s.seed, &stream, ctx.draw as u64), &eps_shape, 0.0, 1.0, self.device);
            let gp = gradient_penalty(&critic, real, &c.fake, &eps).map_err(|e| failed.take().unwrap_or(e.into()))?;
            logs.insert(key("gp"), scalar(&gp));
            add(gp * l.gradient_penalty);
        }
        if l.r1 > 0.0 && step_due(ctx.step, l.r1_every) {
            let r1 = r1_penalty(&critic, &c.real).map_err(|e| failed.take().unwrap_or(e.into()))?;
            logs.insert(key("r1"), scalar(&r1));
            add(r1 * (l.r1 / 2.0 * l.r1_every as f64)); // γ/2 · E‖∇D(x)‖², ×k when lazy
        }
        Ok(total)
    }
}

/// Whether a lazy regularizer of period `every` runs at `step` (StyleGAN2: the first step, then every k-th).
fn step_due(step: i64, every: i64) -> bool {
    step % every.max(1) == 0
}
