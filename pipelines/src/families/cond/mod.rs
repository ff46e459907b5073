//! The conditional families: class-conditional `cgan` (Mirza & Osindero 2014) and text-conditional `gan_cls`
//! (Reed et al. 2016, GAN-CLS / GAN-INT), sharing one training step.
//!
//! D judges three kinds of pair: (real image, matching condition) → real, (real image, mismatching condition)
//! → fake with weight w, (generated image, matching condition) → fake with weight 1 − w (GAN-CLS: w = 0.5; plain
//! CGAN: w = 0). With `heads: split`, D also has a real/fake head on the image alone, trained with its own
//! terms (real → real, generated → fake), and G is scored by both heads.
mod config;

pub use config::{CondModelConfig, Noise};
use crate::config::{DataConfig, Settings};
use crate::error::{PipelineError, Result};
use crate::family::{mean, scalar, Batch, Condition, CriticInput, Ctx, Family, FamilyConfig, Compared, Generate, Images, Losses, MetricSet, Net, Reference, Role, Update};
use crate::feed::Feed;
use crate::judge::{accuracy_json, attribute_hits, eval_prompts, Judge};
use crate::text::{captions_of, EvalCaptions, TextSide};
use ganzoo_data::loader::Dataset;
use ganzoo_data::shapes::{ShapeAttrs, ShapesConfig};
use ganzoo_data::source::{Part, Source};
use ganzoo_models::cond::{CondDiscriminator, CondGenerator, HeadDesign, Scores};
use ganzoo_models::losses::Target;
use ganzoo_models::rng::{derived_rng, randn, uniform};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Noise columns of the fixed sample grid (one row per class or prompt).
const GRID_COLS: i64 = 8;
/// Prompts (rows) of the fixed text sample grid.
const GRID_PROMPTS: usize = 8;

impl FamilyConfig for CondModelConfig {
    fn problems(&self, family: &'static str, s: &Settings, p: &mut Vec<String>) {
        self.check(family == "gan_cls", s, p);
    }

    fn build(&self, _family: &'static str, s: &Settings, device: Device, with_data: bool, run_dir: Option<&Path>) -> Result<Box<dyn Family>> {
        Ok(Box::new(Cond::new(s, self, device, with_data, run_dir)?))
    }
}

/// The training images: labels or captions come with them (opened even to sample: they hold the classes and
/// the captions the text encoder and grid prompts use).
fn open_training_images(s: &Settings) -> Result<Arc<dyn Dataset>> {
    match ganzoo_data::open(&s.data, Part::train(), s.seed)? {
        Source::Items(d) => Ok(d),
        Source::Points { .. } => Err(PipelineError::Usage(format!("data.kind: {} has no labels or captions", s.data.kind()))),
    }
}

/// What conditions G and D.
enum Conditioner {
    Classes(i64),
    Text(Box<TextSide>),
}

/// The conditional family in training.
pub struct Cond {
    s: Settings,
    m: CondModelConfig,
    device: Device,
    g_vs: VarStore,
    d_vs: VarStore,
    g: Box<dyn CondGenerator>,
    d: Box<dyn CondDiscriminator>,
    data: Arc<dyn Dataset>,
    cond: Conditioner,
    with_data: bool,
    /// D's update's (generated images, their z, matching conditions) of each batch for G's update; the images
    /// keep their graph when G reuses them (one D update per G update). By draw.
    cache: HashMap<i64, (Tensor, Tensor, Tensor)>,
}

impl Cond {
    /// Builds networks and the conditioner. `run_dir` holds (or receives) a trained tokenizer.
    pub fn new(s: &Settings, m: &CondModelConfig, device: Device, with_data: bool, run_dir: Option<&Path>) -> Result<Self> {
        let data = open_training_images(s)?;
        let cond = match &m.text {
            None => {
                let n = data.num_classes().unwrap_or(0) as i64;
                if n < 2 {
                    let at = match &s.data {
                        DataConfig::ImageFolder(f) => f.root.display().to_string(),
                        other => other.kind().to_string(),
                    };
                    return Err(PipelineError::Usage(format!("data.root: {at} has {n} class folder(s); family cgan needs one subfolder per class (at least 2)")));
                }
                Conditioner::Classes(n)
            }
            Some(t) => {
                let (captions, names) = captions_of(data.as_ref());
                Conditioner::Text(Box::new(TextSide::new(t, captions, run_dir, names.as_deref(), device)?))
            }
        };
        let cond_dim = match &cond {
            Conditioner::Classes(n) => *n,
            Conditioner::Text(t) => t.dim(),
        };
        let shape = s.shape();
        let g_vs = VarStore::new(device);
        let g = m.generator.build(&g_vs.root(), m.z_dim, cond_dim, &shape)?;
        let d_vs = VarStore::new(device);
        let d = m.discriminator.build(&d_vs.root(), cond_dim, &shape, m.heads, s.loss.spectral_norm)?;
        for (vs, stream) in [(&g_vs, "init_G"), (&d_vs, "init_D")] {
            m.init.apply(vs, s.seed, stream);
        }
        if s.loss.spectral_norm {
            ganzoo_models::spectral::warm_up(&d_vs, 15); // σ converged for the re-initialized weights
        }
        if let Some(net) = match &cond {
            Conditioner::Text(t) => t.trainable_net(),
            Conditioner::Classes(_) => None,
        } {
            net.reset_parameters(&mut derived_rng(s.seed, "init_T", 0)); // PyTorch's GRU / attention init
        }
        Ok(Cond { s: s.clone(), m: m.clone(), device, g_vs, d_vs, g, d, data, cond, with_data, cache: HashMap::new() })
    }

    /// Whether the data are the procedural captioned shapes (their attributes are known: grid prompts, judge).
    fn shapes(&self) -> Option<&ShapesConfig> {
        match &self.s.data {
            DataConfig::Shapes(c) => Some(c),
            _ => None,
        }
    }

    fn text(&self) -> Option<&TextSide> {
        match &self.cond {
            Conditioner::Text(t) => Some(t),
            Conditioner::Classes(_) => None,
        }
    }

    fn noise(&self, rng_stream: &str, index: u64, n: i64) -> Tensor {
        self.draw_z(&mut derived_rng(self.s.seed, rng_stream, index), n)
    }

    /// z (n, z_dim) from `model.noise`'s distribution.
    fn draw_z(&self, rng: &mut rand_chacha::ChaCha8Rng, n: i64) -> Tensor {
        match self.m.noise {
            Noise::Normal => randn(rng, &[n, self.m.z_dim], self.device),
            Noise::Uniform => uniform(rng, &[n, self.m.z_dim], -1.0, 1.0, self.device),
        }
    }

    fn one_hot(&self, labels: &[i64], n_classes: i64) -> Tensor {
        let y = Tensor::from_slice(labels).to_device(self.device);
        y.one_hot(n_classes).to_kind(Kind::Float) // (N, classes)
    }

    /// Matching and mismatching conditions of a batch (`y`: labels, or dataset indices for captioned data).
    fn conditions(&self, y: &[i64], draw: i64, train: bool) -> Result<(Tensor, Tensor)> {
        match &self.cond {
            Conditioner::Classes(n) => {
                use rand::Rng;
                let mut rng = derived_rng(self.s.seed, "wrong_class", draw as u64);
                let wrong: Vec<i64> = y.iter().map(|&c| (c + rng.gen_range(1..*n)) % n).collect();
                Ok((self.one_hot(y, *n), self.one_hot(&wrong, *n)))
            }
            Conditioner::Text(t) => {
                let idx: Vec<usize> = y.iter().map(|&i| i as usize).collect();
                let right = t.batch(&idx, &mut derived_rng(self.s.seed, "captions", draw as u64), train)?; // (N, E)
                // Mismatching text: the batch's captions shifted by one image (the StackGAN PyTorch port's choice).
                let wrong = right.roll([1], [0]);
                Ok((right, wrong))
            }
        }
    }

    /// The adversarial terms of D for one batch (`real` and `fake` as D sees them).
    fn d_terms(&self, real: &Tensor, fake: &Tensor, right: &Tensor, wrong: &Tensor, losses: &mut Losses) -> Tensor {
        let adv = self.s.loss.adversarial;
        let w = self.m.mismatch(self.text().is_some());
        let h_real = self.d.features(real, true);
        let s_rr = self.d.heads(&h_real, right, true);
        let s_fr = self.d.forward_t(fake, right, true);
        let mut loss = adv.d_term(&s_rr.matched, Target::Real) + adv.d_term(&s_fr.matched, Target::Fake) * (1.0 - w);
        losses.insert("D_real_match".into(), mean(&s_rr.matched));
        losses.insert("D_fake_match".into(), mean(&s_fr.matched));
        if w > 0.0 {
            let s_rw = self.d.heads(&h_real, wrong, true);
            loss += adv.d_term(&s_rw.matched, Target::Fake) * w;
            losses.insert("D_real_mismatch".into(), mean(&s_rw.matched));
        }
        if let (Some(ur), Some(uf)) = (&s_rr.uncond, &s_fr.uncond) {
            let l_unc = adv.d_term(ur, Target::Real) + adv.d_term(uf, Target::Fake);
            losses.insert("loss_D_uncond".into(), scalar(&l_unc));
            losses.insert("D_real_uncond".into(), mean(ur));
            losses.insert("D_fake_uncond".into(), mean(uf));
            loss += l_unc;
        }
        loss
    }

    /// G's adversarial loss on generated images with their conditions (both heads under `split`).
    fn g_adv(&self, fake: &Tensor, c: &Tensor) -> Tensor {
        let adv = self.s.loss.adversarial;
        let s = self.d.forward_t(fake, c, true);
        match &s.uncond {
            Some(u) => adv.g_loss(&s.matched) + adv.g_loss(u),
            None => adv.g_loss(&s.matched),
        }
    }

    /// Contrastive pretraining of a trainable text encoder on (image, caption) pairs, then frozen.
    fn pretrain_text(&mut self) -> Result<Losses> {
        let Conditioner::Text(t) = &self.cond else { return Ok(Losses::new()) };
        let shape = self.s.shape();
        t.pretrain(self.data.as_ref(), shape.channels, shape.height, self.s.seed, self.s.train.batch_size)
    }

    /// Generates images for conditions `c` (N, cond_dim) from the noise stream `(stream, index)`.
    fn generate(&self, c: &Tensor, stream: &str, index: u64) -> Tensor {
        let z = self.noise(stream, index, c.size()[0]);
        tch::no_grad(|| self.g.forward_t(&z, c, false))
    }

    /// The rows of the fixed sample grid: conditions and a label for each.
    fn grid_conditions(&self) -> Result<(Tensor, Vec<String>)> {
        match &self.cond {
            Conditioner::Classes(n) => {
                let rows: Vec<i64> = (0..(*n).min(10)).collect();
                Ok((self.one_hot(&rows, *n), rows.iter().map(|r| format!("class {r}")).collect()))
            }
            Conditioner::Text(t) => {
                let prompts: Vec<String> = match self.shapes() {
                    Some(_) => {
                        let all = ShapeAttrs::all();
                        let step = (all.len() / GRID_PROMPTS).max(1);
                        (0..GRID_PROMPTS).map(|k| all[(k * step + k) % all.len()].captions()[0].clone()).collect()
                    }
                    None => {
                        let n = t.captions.per_image.len();
                        (0..GRID_PROMPTS.min(n)).map(|k| t.captions.unique[t.captions.per_image[k * n / GRID_PROMPTS.min(n)][0]].clone()).collect()
                    }
                };
                let c = match &t.encoder {
                    crate::text::Encoder::Precomputed { .. } => {
                        let n = t.captions.per_image.len();
                        let idx: Vec<usize> = (0..prompts.len()).map(|k| k * n / prompts.len()).collect();
                        t.batch(&idx, &mut derived_rng(self.s.seed, "grid_captions", 0), false)?
                    }
                    _ => t.encode(&prompts.iter().map(String::as_str).collect::<Vec<_>>(), false, false)?,
                };
                Ok((c, prompts))
            }
        }
    }

    /// Writes a grid with one row per condition and `cols` noise columns (the same noise in every row).
    fn condition_grid(&self, c: &Tensor, cols: i64, stream: &str, path: &Path) -> Result<()> {
        let rows = c.size()[0];
        let z = self.noise(stream, 0, cols).repeat([rows, 1]); // (rows·cols, z)
        let cc = c.repeat_interleave_self_int(cols, 0, None); // (rows·cols, E)
        let x = tch::no_grad(|| self.g.forward_t(&z, &cc, false));
        crate::plot::save_tensor_grid(&x, cols as usize, path)
    }

    /// D's mean scores on (real, matching), (real, mismatching) and (generated, matching) pairs of one batch.
    fn head_scores(&self) -> Result<serde_json::Value> {
        let bs = self.s.train.batch_size;
        let b = Feed::new(Source::Items(self.data.clone()), &self.s.train, self.s.seed, self.device).next(0)?;
        let (right, wrong) = self.conditions(b.labels()?, -1, false)?;
        let real = b.x;
        let fake = self.generate(&right, "eval_heads", 0);
        let (rr, rw, fr) = tch::no_grad(|| {
            let h = self.d.features(&real, false);
            (self.d.heads(&h, &right, false), self.d.heads(&h, &wrong, false), self.d.forward_t(&fake, &right, false))
        });
        let head = |f: &dyn Fn(&Scores) -> Option<f64>| json!({ "real_matching": f(&rr), "real_mismatching": f(&rw), "generated": f(&fr) });
        Ok(json!({
            "protocol": format!("one batch of {bs} training images; raw scores (logits for the BCE losses), evaluation mode"),
            "match_head": head(&|s: &Scores| Some(mean(&s.matched))),
            "uncond_head": if self.m.heads == HeadDesign::Split { head(&|s: &Scores| s.uncond.as_ref().map(mean)) } else { serde_json::Value::Null },
        }))
    }

    /// Class-conditional accuracy of generated digits, judged by a classifier trained on real MNIST.
    fn judge_classes(&self, n_classes: i64) -> Result<serde_json::Value> {
        let DataConfig::Mnist { pad_to_32, .. } = &self.s.data else {
            return Ok(serde_json::Value::Null);
        };
        let judge = Judge::digits(self.device)?;
        let per = (self.s.eval.samples as i64 / n_classes).max(1);
        let labels: Vec<i64> = (0..n_classes).flat_map(|c| std::iter::repeat_n(c, per as usize)).collect();
        let mut x = self.generate(&self.one_hot(&labels, n_classes), "eval", 0);
        if *pad_to_32 {
            x = x.narrow(2, 2, 28).narrow(3, 2, 28);
        }
        let pred = judge.predict(&x)?; // (N, 1)
        let pred: Vec<i64> = Vec::<i64>::try_from(&pred.view([-1]).to_device(Device::Cpu)).map_err(PipelineError::torch("reading predictions"))?;
        let mut per_class = Vec::new();
        for c in 0..n_classes {
            let hits = (0..per as usize).filter(|&k| pred[c as usize * per as usize + k] == c).count();
            per_class.push(hits as f64 / per as f64);
        }
        let acc = per_class.iter().sum::<f64>() / n_classes as f64;
        Ok(json!({
            "protocol": format!("{per} generated digits per class, classified by {}", judge.describe()),
            "judge_held_out_accuracy": judge.held_out()[0],
            "accuracy": acc,
            "per_class_accuracy": per_class,
        }))
    }

    /// Attribute accuracy of images generated from prompts, judged by a classifier trained on real shapes.
    fn judge_shapes(&self, shapes: &ShapesConfig) -> Result<serde_json::Value> {
        let Some(t) = self.text() else { return Ok(serde_json::Value::Null) };
        let judge = Judge::shapes(shapes, self.device)?;
        let all = ShapeAttrs::all();
        let per = (self.s.eval.samples / (2 * all.len())).max(1);
        let mut out = serde_json::Map::new();
        out.insert("protocol".into(), json!(format!(
            "{per} images per prompt for each of the {} attribute combinations, one training phrasing and one unseen phrasing (synonyms) each; classified by {}",
            all.len(), judge.describe()
        )));
        out.insert("judge_held_out_accuracy".into(), json!(judge.held_out()));
        for (key, unseen) in [("seen_phrasing", false), ("unseen_phrasing", true)] {
            let prompts = eval_prompts(&all, unseen);
            let c = t.encode(&prompts.iter().map(String::as_str).collect::<Vec<_>>(), false, false)?; // (P, E)
            let c = c.repeat_interleave_self_int(per as i64, 0, None); // (P·per, E)
            let x = self.generate(&c, "eval", unseen as u64);
            let truth: Vec<[usize; 4]> = all.iter().flat_map(|a| std::iter::repeat_n(a.as_array(), per)).collect();
            let hits = attribute_hits(&judge, &x, &truth)?;
            let mut acc = accuracy_json(&hits, truth.len(), &prompts[0]);
            if per > 1 {
                // Does G use z? Images of one prompt should differ as much as real images of one combination
                // (whose shapes sit at random places and scales) do.
                let real = real_renders(&all, per, shapes.size as usize, self.s.seed, self.device);
                let (g, r) = (mean_pairwise_l1(&x, per as i64), mean_pairwise_l1(&real, per as i64));
                acc.insert("diversity".into(), json!(g));
                acc.insert("diversity_vs_real".into(), json!(g / r));
            }
            out.insert(key.into(), serde_json::Value::Object(acc));
        }
        Ok(serde_json::Value::Object(out))
    }

    /// Writes `n` images of each condition (a class or a prompt): one condition as a square grid, several as
    /// one row each, the same noise in every row.
    fn sample_conditions(&self, n: usize, seed: u64, conds: &[Condition], path: &Path) -> Result<()> {
        let rows = conds.iter().map(|cond| self.condition_of(cond)).collect::<Result<Vec<_>>>()?;
        let c = Tensor::cat(&rows, 0); // (rows, E)
        let z = self.draw_z(&mut derived_rng(seed, "sample", 0), n as i64);
        let (rows, n) = (c.size()[0], n as i64);
        let x = tch::no_grad(|| self.g.forward_t(&z.repeat([rows, 1]), &c.repeat_interleave_self_int(n, 0, None), false));
        let cols = if rows == 1 { (n as f64).sqrt().ceil() as i64 } else { n };
        crate::plot::save_tensor_grid(&x, cols as usize, path)
    }

    /// The conditioning vector (1, E) of a class or a prompt.
    fn condition_of(&self, cond: &Condition) -> Result<Tensor> {
        Ok(match (cond, &self.cond) {
            (Condition::Class(k), Conditioner::Classes(n_classes)) => {
                if *k < 0 || *k >= *n_classes {
                    return Err(PipelineError::Usage(format!("--class {k}: this run has classes 0 to {}", n_classes - 1)));
                }
                self.one_hot(&[*k], *n_classes)
            }
            (Condition::Prompt(p), Conditioner::Text(t)) => t.encode(&[p.as_str()], true, false)?,
            (Condition::Class(_), Conditioner::Text(_)) => {
                return Err(PipelineError::Usage("--class: this run is conditioned on text; use --prompt \"…\"".into()))
            }
            (Condition::Prompt(_), Conditioner::Classes(_)) => {
                return Err(PipelineError::Usage("--prompt: this run is conditioned on class labels; use --class N".into()))
            }
        })
    }
}

/// Mean L1 distance per pixel between the images of each group of `per` consecutive images in x
/// (G·per, C, H, W), over all pairs of a group, averaged over the groups.
fn mean_pairwise_l1(x: &Tensor, per: i64) -> f64 {
    let n = x.size()[0];
    let flat = x.reshape([n / per, per, -1]); // (G, per, D)
    let d = flat.size()[2] as f64;
    let dist = Tensor::cdist(&flat, &flat, 1.0, None::<i64>); // (G, per, per); zero diagonal
    scalar(&dist.sum(Kind::Double)) / ((n / per) as f64 * (per * (per - 1)) as f64 * d)
}

/// `per` real renders of every combination (random places and scales), in the order of `all`.
fn real_renders(all: &[ShapeAttrs], per: usize, size: usize, seed: u64, device: Device) -> Tensor {
    let mut rng = derived_rng(seed, "eval_real", 0);
    let mut data = Vec::with_capacity(all.len() * per * 3 * size * size);
    for a in all {
        for _ in 0..per {
            data.extend(ganzoo_data::shapes::render(a, size, &mut rng));
        }
    }
    Tensor::from_slice(&data).reshape([(all.len() * per) as i64, 3, size as i64, size as i64]).to_device(device)
}

impl Generate for Cond {
    fn generate(&self, z: &Tensor, c: &Tensor) -> Tensor {
        tch::no_grad(|| self.g.forward_t(z, c, false))
    }

    fn noise(&self) -> (i64, &'static str) {
        let what = match self.m.noise {
            Noise::Normal => "normal N(0, 1)",
            Noise::Uniform => "uniform on [-1, 1]",
        };
        (self.m.z_dim, what)
    }

    fn condition(&self) -> (i64, &'static str) {
        match &self.cond {
            Conditioner::Classes(n) => (*n, "one-hot class"),
            Conditioner::Text(t) => (t.dim(), "sentence vector (the text encoder's output)"),
        }
    }
}

impl Family for Cond {
    fn networks(&self) -> Vec<Net<'_>> {
        let t = &self.s.train;
        let mut v = vec![
            Net { name: "G", role: Role::Generator, vs: &self.g_vs, opt: Some(("opt_G", t.g_optimizer.clone())) },
            Net { name: "D", role: Role::Discriminator, vs: &self.d_vs, opt: Some(("opt_D", t.d_optimizer.clone())) },
        ];
        if let Some(text) = self.text() {
            if let Some(vs) = text.trainable() {
                // A jointly trained encoder learns from D's loss; a pretrained one is frozen after pretraining.
                v.push(Net { name: "T", role: Role::TextEncoder, vs, opt: text.joint_optimizer().map(|o| ("opt_T", o)) });
            }
        }
        v
    }

    fn train_source(&self) -> Option<Source> {
        self.with_data.then(|| Source::Items(self.data.clone()))
    }

    fn generator(&self) -> Option<&dyn Generate> {
        Some(self)
    }

    fn begin_step(&mut self, step: i64) -> Result<Losses> {
        self.cache.clear();
        let mut losses = Losses::new();
        if step == 0 && self.text().is_some_and(|t| t.needs_pretraining()) {
            losses.extend(self.pretrain_text()?);
        }
        // Dropout masks (Mirza & Osindero's networks) come from (seed, step), so a resumed run draws the same.
        self.g.set_dropout_state(self.s.seed, step as u64);
        self.d.set_dropout_state(self.s.seed, step as u64);
        Ok(losses)
    }

    fn d_loss(&mut self, batch: &Batch, ctx: &Ctx) -> Result<Update> {
        let real = &batch.x; // (N, C, H, W)
        let (right, wrong) = self.conditions(batch.labels()?, batch.draw, true)?;
        let z = self.noise("z", batch.draw as u64, real.size()[0]);
        // G's images keep their graph only when G's update reuses them (one D update per G update).
        let reuse = self.s.train.n_critic == 1;
        let fake = if reuse { self.g.forward_t(&z, &right.detach(), true) } else { tch::no_grad(|| self.g.forward_t(&z, &right.detach(), true)) }; // (N, C, H, W)
        let mut logs = Losses::new();
        let loss = self.d_terms(&ctx.d_input(real)?, &ctx.d_input(&fake.detach())?, &right, &wrong, &mut logs);
        logs.insert("loss_D".into(), scalar(&loss));
        let mut u = Update::new(loss, logs);
        u.critics.push(CriticInput { d: "D", real: real.shallow_clone(), fake: fake.detach(), cond: Some(right.detach()) });
        self.cache.insert(batch.draw, (fake, z, right.detach()));
        Ok(u)
    }

    fn g_loss(&mut self, batch: &Batch, ctx: &Ctx) -> Result<Update> {
        let (fake, z, right) = self.cache.remove(&batch.draw).ok_or_else(|| PipelineError::Runtime("cond: G's update before D's".into()))?;
        let mut logs = Losses::new();
        let bs = right.size()[0];
        let (fake, z) = if self.s.train.n_critic == 1 {
            (fake, z)
        } else {
            let z = self.noise("z_g", (ctx.step * self.s.train.accumulate + ctx.micro as i64) as u64, bs);
            (self.g.forward_t(&z, &right, true), z)
        };
        let mut loss = self.g_adv(&ctx.d_input(&fake)?, &right);
        if self.m.interpolation > 0.0 {
            // GAN-INT: conditions halfway between two captions' embeddings (β = 0.5) should look real too.
            let c_int = (&right + right.roll([1], [0])) * 0.5;
            let fake_int = self.g.forward_t(&self.noise("z_int", batch.draw as u64, bs), &c_int, true);
            let l_int = self.g_adv(&ctx.d_input(&fake_int)?, &c_int);
            logs.insert("loss_G_int".into(), scalar(&l_int));
            loss += l_int * self.m.interpolation;
        }
        if self.m.mode_seeking > 0.0 {
            // MSGAN: a second image of the same conditions from other noise must differ in proportion.
            let z2 = self.noise("z_ms", batch.draw as u64, bs);
            let fake2 = self.g.forward_t(&z2, &right, true); // (N, C, H, W)
            let l_ms = ganzoo_models::losses::mode_seeking(&fake, &fake2, &z, &z2);
            logs.insert("loss_G_ms".into(), scalar(&l_ms));
            loss += l_ms * self.m.mode_seeking;
        }
        logs.insert("loss_G".into(), scalar(&loss));
        Ok(Update::new(loss, logs))
    }

    /// Both heads' scores summed (matched + uncond under `split`), at the held condition.
    fn critic(&self, _d: &str, x: &Tensor, cond: Option<&Tensor>) -> Result<Tensor> {
        let c = cond.ok_or_else(|| PipelineError::Runtime("cond: the critic needs the condition".into()))?;
        Ok(self.d.forward_t(x, c, true).total())
    }

    fn write_samples(&self, path: &Path) -> Result<()> {
        let (c, labels) = self.grid_conditions()?;
        self.condition_grid(&c, GRID_COLS, "fixed_z", path)?;
        let txt = path.with_extension("txt");
        let body: String = labels.iter().enumerate().map(|(i, l)| format!("row {}: {l}\n", i + 1)).collect();
        crate::checkpoint::write_text_atomic(&txt, &body)
    }

    fn sample_to(&self, n: usize, seed: u64, path: &Path) -> Result<()> {
        // Without a condition: one row per grid condition, n/rows columns.
        let (c, _) = self.grid_conditions()?;
        let rows = c.size()[0].max(1);
        let cols = ((n as i64) / rows).max(1);
        let z = self.draw_z(&mut derived_rng(seed, "sample", 0), cols);
        let x = tch::no_grad(|| self.g.forward_t(&z.repeat([rows, 1]), &c.repeat_interleave_self_int(cols, 0, None), false));
        crate::plot::save_tensor_grid(&x, cols as usize, path)
    }

    fn sample_with(&self, n: usize, seed: u64, conds: &[Condition], path: &Path) -> Result<()> {
        self.sample_conditions(n, seed, conds, path)
    }

    fn evaluate(&self) -> Result<serde_json::Value> {
        let mut out = serde_json::Map::new();
        out.insert("heads".into(), self.head_scores()?);
        match (&self.cond, self.shapes()) {
            (Conditioner::Classes(n), _) => {
                let j = self.judge_classes(*n)?;
                if !j.is_null() {
                    out.insert("class_accuracy".into(), j);
                }
            }
            (Conditioner::Text(_), Some(shapes)) => {
                out.insert("attribute_accuracy".into(), self.judge_shapes(shapes)?);
            }
            _ => {}
        }
        Ok(serde_json::Value::Object(out))
    }

    fn metric_sets(&self, n: usize) -> Result<Vec<MetricSet<'_>>> {
        match &self.cond {
            Conditioner::Classes(k) => {
                // Classes in turn, so every class has n/k images (intra-class FID compares each class alone).
                let k = *k;
                let labels: Vec<i64> = (0..n as i64).map(|i| i % k).collect();
                let y = labels.clone();
                let draw = move |first: usize, len: usize| Ok(self.generate(&self.one_hot(&y[first..first + len], k), "metrics", first as u64));
                let generated = Images { count: n, draw: Box::new(draw), labels: Some(labels) };
                Ok(vec![MetricSet { name: "samples".into(), how: format!("G(z, y), y = each of the {k} classes in turn"), generated: Compared::Made(generated), reference: Reference::test() }])
            }
            Conditioner::Text(t) => {
                let caps = EvalCaptions::open(&self.s, t)?;
                let (how, reference) = (format!("G(z, φ(t)), {}", caps.how), caps.reference);
                let draw = move |first: usize, len: usize| Ok(self.generate(&caps.conditions(t, self.s.seed, first, len)?, "metrics", first as u64));
                Ok(vec![MetricSet { name: "samples".into(), how, generated: Compared::Made(Images::new(n, draw)), reference }])
            }
        }
    }

    fn summarize(&self, eval: &serde_json::Value) -> String {
        let h = &eval["heads"]["match_head"];
        let heads = format!(
            "D's match head: real-matching {:.2}, real-mismatching {:.2}, generated {:.2}",
            h["real_matching"].as_f64().unwrap_or(f64::NAN),
            h["real_mismatching"].as_f64().unwrap_or(f64::NAN),
            h["generated"].as_f64().unwrap_or(f64::NAN)
        );
        if let Some(a) = eval["class_accuracy"]["accuracy"].as_f64() {
            return format!("generated digits judged the asked class {:.1}% of the time; {heads}", a * 100.0);
        }
        let s = &eval["attribute_accuracy"]["seen_phrasing"];
        if s.is_object() {
            let u = &eval["attribute_accuracy"]["unseen_phrasing"];
            // A measure the evaluation could not make (too few samples: `eval.samples`) reads "n/a", not "NaN%".
            let f = |v: &serde_json::Value, k: &str| match v[k].as_f64().filter(|x| x.is_finite()) {
                Some(x) => format!("{:.1}%", x * 100.0),
                None => String::from("n/a (too few eval.samples)"),
            };
            return format!(
                "attribute accuracy (training phrasing): shape {}, colour {}, size {}, background {}; unseen phrasing: shape {}, colour {}; images of one prompt differ {} as much as real ones; {heads}",
                f(s, "shape"), f(s, "colour"), f(s, "size"), f(s, "background"), f(u, "shape"), f(u, "colour"), f(s, "diversity_vs_real")
            );
        }
        heads
    }
}
