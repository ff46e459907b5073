//! The conditional families: class-conditional `cgan` (Mirza & Osindero 2014) and text-conditional `gan_cls`
//! (Reed et al. 2016, GAN-CLS / GAN-INT), sharing one training step.
//!
//! D judges three kinds of pair: (real image, matching condition) → real, (real image, mismatching condition)
//! → fake with weight w, (generated image, matching condition) → fake with weight 1 − w (GAN-CLS: w = 0.5; plain
//! CGAN: w = 0). With `heads: split`, D also has a real/fake head on the image alone, trained with its own
//! terms (real → real, generated → fake), and G is scored by both heads.
use crate::config::{CondModelConfig, Config, DataConfig, Init, ModelConfig, Noise};
use crate::error::{PipelineError, Result};
use crate::family::{Condition, Losses, Trainable};
use crate::feed::Feed;
use crate::judge::{accuracy_json, attribute_hits, eval_prompts, Judge};
use crate::text::{Captions, TextSide};
use ganzoo_data::captions::CaptionedImages;
use ganzoo_data::loader::Dataset;
use ganzoo_data::shapes::{CaptionedShapes, ShapeAttrs};
use ganzoo_data::Split;
use ganzoo_models::cond::{CondDiscriminator, CondGenerator, HeadDesign, Scores};
use ganzoo_models::losses::{clip_grad_norm, clip_weights, gradient_penalty, max_norm, Target};
use ganzoo_models::optim::Optimizer;
use ganzoo_models::rng::{derived_rng, randn, uniform};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Noise columns of the fixed sample grid (one row per class or prompt).
const GRID_COLS: i64 = 8;
/// Prompts (rows) of the fixed text sample grid.
const GRID_PROMPTS: usize = 8;

/// The training images and what conditions them.
enum Source {
    /// Class labels come with the items.
    Classes { dataset: Arc<dyn Dataset>, n_classes: i64 },
    /// Procedural captioned shapes (attributes known, so generated images can be judged).
    Shapes(Arc<CaptionedShapes>),
    /// Images with caption files.
    Captioned(Arc<CaptionedImages>),
}

impl Source {
    fn open(cfg: &Config) -> Result<Self> {
        Ok(match &cfg.data {
            DataConfig::Mnist { root, pad_to_32 } => {
                Source::Classes { dataset: Arc::new(crate::feed::open_mnist(root, *pad_to_32)?), n_classes: 10 }
            }
            DataConfig::ImageFolder(f) => {
                let folder = ganzoo_data::folder::ImageFolder::open(f)?;
                let n = folder.num_classes() as i64;
                if n < 2 {
                    return Err(PipelineError::Usage(format!(
                        "data.root: {} has {n} class folder(s); family cgan needs one subfolder per class (at least 2)",
                        f.root.display()
                    )));
                }
                Source::Classes { dataset: Arc::new(folder), n_classes: n }
            }
            DataConfig::Shapes(s) => Source::Shapes(Arc::new(CaptionedShapes::open(s, Split::Train, cfg.seed)?)),
            DataConfig::Captioned(c) => Source::Captioned(Arc::new(CaptionedImages::open(c, Split::Train)?)),
            other => return Err(PipelineError::Usage(format!("data.kind: {} has no labels or captions", other.kind()))),
        })
    }

    fn dataset(&self) -> Arc<dyn Dataset> {
        match self {
            Source::Classes { dataset, .. } => dataset.clone(),
            Source::Shapes(s) => s.clone(),
            Source::Captioned(c) => c.clone(),
        }
    }

    fn captions(&self) -> Captions {
        match self {
            Source::Classes { .. } => Captions::default(),
            Source::Shapes(s) => Captions::from_lists((0..s.len()).map(|i| s.captions(i))),
            Source::Captioned(c) => Captions::from_lists((0..c.len()).map(|i| c.captions(i).to_vec())),
        }
    }

    fn names(&self) -> Option<Vec<String>> {
        match self {
            Source::Captioned(c) => Some((0..c.len()).map(|i| c.name(i).to_string()).collect()),
            _ => None,
        }
    }
}

/// What conditions G and D.
enum Conditioner {
    Classes(i64),
    Text(Box<TextSide>),
}

/// The conditional family in training.
pub struct Cond {
    cfg: Config,
    m: CondModelConfig,
    device: Device,
    g_vs: VarStore,
    d_vs: VarStore,
    g: Box<dyn CondGenerator>,
    d: Box<dyn CondDiscriminator>,
    opt_g: Optimizer,
    opt_d: Optimizer,
    source: Source,
    cond: Conditioner,
    feed: Option<Feed>,
}

impl Cond {
    /// Builds networks, optimizers and the conditioner. `run_dir` holds (or receives) a trained tokenizer.
    pub fn new(cfg: &Config, device: Device, with_data: bool, run_dir: Option<&Path>) -> Result<Self> {
        let m = match &cfg.model {
            ModelConfig::Cgan(m) | ModelConfig::GanCls(m) => m,
            other => return Err(PipelineError::Runtime(format!("family {} is not conditional", other.family()))),
        };
        let source = Source::open(cfg)?;
        let cond = match (&source, &m.text) {
            (Source::Classes { n_classes, .. }, _) => Conditioner::Classes(*n_classes),
            (_, Some(t)) => {
                let names = source.names();
                Conditioner::Text(Box::new(TextSide::new(t, source.captions(), run_dir, names.as_deref(), device)?))
            }
            (_, None) => return Err(PipelineError::Usage("model.text: family gan_cls needs a text section".into())),
        };
        let cond_dim = match &cond {
            Conditioner::Classes(n) => *n,
            Conditioner::Text(t) => t.dim(),
        };
        let shape = cfg.data.shape();
        let g_vs = VarStore::new(device);
        let g = m.generator.build(&g_vs.root(), m.z_dim, cond_dim, &shape)?;
        let d_vs = VarStore::new(device);
        let d = m.discriminator.build(&d_vs.root(), cond_dim, &shape, m.heads, cfg.loss.spectral_norm)?;
        for (vs, stream) in [(&g_vs, "init_G"), (&d_vs, "init_D")] {
            let mut rng = derived_rng(cfg.seed, stream, 0);
            match m.init {
                Init::Dcgan => ganzoo_models::init::init_dcgan(vs, &mut rng),
                Init::Pytorch => ganzoo_models::init::init_default(vs, &mut rng),
            }
        }
        if cfg.loss.spectral_norm {
            ganzoo_models::spectral::warm_up(&d_vs, 15); // σ converged for the re-initialized weights
        }
        if let Some(net) = match &cond {
            Conditioner::Text(t) => t.trainable_net(),
            Conditioner::Classes(_) => None,
        } {
            net.reset_parameters(&mut derived_rng(cfg.seed, "init_T", 0)); // PyTorch's GRU / attention init
        }
        let opt_g = Optimizer::new(&g_vs, &cfg.train.g_optimizer);
        let opt_d = Optimizer::new(&d_vs, &cfg.train.d_optimizer);
        let feed = with_data.then(|| Feed::new(cfg, source.dataset()));
        Ok(Cond { cfg: cfg.clone(), m: m.clone(), device, g_vs, d_vs, g, d, opt_g, opt_d, source, cond, feed })
    }

    /// The optimizer of a text encoder trained jointly with D (none otherwise).
    fn text_optimizer(&mut self) -> Option<&mut Optimizer> {
        match &mut self.cond {
            Conditioner::Text(t) => t.optimizer_mut(),
            Conditioner::Classes(_) => None,
        }
    }

    fn text(&self) -> Option<&TextSide> {
        match &self.cond {
            Conditioner::Text(t) => Some(t),
            Conditioner::Classes(_) => None,
        }
    }

    fn noise(&self, rng_stream: &str, index: u64, n: i64) -> Tensor {
        self.draw_z(&mut derived_rng(self.cfg.seed, rng_stream, index), n)
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
                let mut rng = derived_rng(self.cfg.seed, "wrong_class", draw as u64);
                let wrong: Vec<i64> = y.iter().map(|&c| (c + rng.gen_range(1..*n)) % n).collect();
                Ok((self.one_hot(y, *n), self.one_hot(&wrong, *n)))
            }
            Conditioner::Text(t) => {
                let idx: Vec<usize> = y.iter().map(|&i| i as usize).collect();
                let right = t.batch(&idx, &mut derived_rng(self.cfg.seed, "captions", draw as u64), train)?; // (N, E)
                // Mismatching text: the batch's captions shifted by one image (the StackGAN PyTorch port's choice).
                let wrong = right.roll([1], [0]);
                Ok((right, wrong))
            }
        }
    }

    /// The adversarial terms of D for one batch.
    fn d_loss(&self, real: &Tensor, fake: &Tensor, right: &Tensor, wrong: &Tensor, losses: &mut Losses) -> Tensor {
        let adv = self.cfg.loss.adversarial;
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
        let adv = self.cfg.loss.adversarial;
        let s = self.d.forward_t(fake, c, true);
        match &s.uncond {
            Some(u) => adv.g_loss(&s.matched) + adv.g_loss(u),
            None => adv.g_loss(&s.matched),
        }
    }

    /// Contrastive pretraining of a trainable text encoder on (image, caption) pairs, then frozen.
    fn pretrain_text(&mut self) -> Result<Losses> {
        let Conditioner::Text(t) = &self.cond else { return Ok(Losses::new()) };
        let shape = self.cfg.data.shape();
        t.pretrain(self.source.dataset().as_ref(), shape.channels, shape.height, self.cfg.seed, self.cfg.train.batch_size)
    }

    /// Generates images for conditions `c` (N, cond_dim) from the noise stream `(stream, index)`.
    fn generate(&self, c: &Tensor, stream: &str, index: u64) -> Tensor {
        let z = self.noise(stream, index, c.size()[0]);
        tch::no_grad(|| self.g.forward_t(&z, c, false))
    }

    /// The rows of the fixed sample grid: conditions and a label for each.
    fn grid_conditions(&self) -> Result<(Tensor, Vec<String>)> {
        match (&self.cond, &self.source) {
            (Conditioner::Classes(n), _) => {
                let rows: Vec<i64> = (0..(*n).min(10)).collect();
                Ok((self.one_hot(&rows, *n), rows.iter().map(|r| format!("class {r}")).collect()))
            }
            (Conditioner::Text(t), source) => {
                let prompts: Vec<String> = match source {
                    Source::Shapes(_) => {
                        let all = ShapeAttrs::all();
                        let step = (all.len() / GRID_PROMPTS).max(1);
                        (0..GRID_PROMPTS).map(|k| all[(k * step + k) % all.len()].captions()[0].clone()).collect()
                    }
                    _ => {
                        let n = t.captions.per_image.len();
                        (0..GRID_PROMPTS.min(n)).map(|k| t.captions.unique[t.captions.per_image[k * n / GRID_PROMPTS.min(n)][0]].clone()).collect()
                    }
                };
                let c = match &t.encoder {
                    crate::text::Encoder::Precomputed { .. } => {
                        let n = t.captions.per_image.len();
                        let idx: Vec<usize> = (0..prompts.len()).map(|k| k * n / prompts.len()).collect();
                        t.batch(&idx, &mut derived_rng(self.cfg.seed, "grid_captions", 0), false)?
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
        let bs = self.cfg.train.batch_size;
        let mut feed = Feed::new(&self.cfg, self.source.dataset());
        let (real, y) = feed.next_labelled(0)?;
        let y = y.ok_or_else(|| PipelineError::Runtime("the dataset gave no labels".into()))?;
        let y: Vec<i64> = Vec::<i64>::try_from(&y).map_err(PipelineError::torch("reading labels"))?;
        let real = real.to_device(self.device);
        let (right, wrong) = self.conditions(&y, -1, false)?;
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
        let DataConfig::Mnist { pad_to_32, .. } = &self.cfg.data else {
            return Ok(serde_json::Value::Null);
        };
        let judge = Judge::digits(self.device)?;
        let per = (self.cfg.eval.samples as i64 / n_classes).max(1);
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
    fn judge_shapes(&self, shapes: &CaptionedShapes) -> Result<serde_json::Value> {
        let Some(t) = self.text() else { return Ok(serde_json::Value::Null) };
        let judge = Judge::shapes(shapes.config(), self.device)?;
        let all = ShapeAttrs::all();
        let per = (self.cfg.eval.samples / (2 * all.len())).max(1);
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
                let real = real_renders(&all, per, shapes.config().size as usize, self.cfg.seed, self.device);
                let (g, r) = (mean_pairwise_l1(&x, per as i64), mean_pairwise_l1(&real, per as i64));
                acc.insert("diversity".into(), json!(g));
                acc.insert("diversity_vs_real".into(), json!(g / r));
            }
            out.insert(key.into(), serde_json::Value::Object(acc));
        }
        Ok(serde_json::Value::Object(out))
    }

    /// Writes `n` images of one condition (a class or a prompt) as a grid.
    fn sample_condition(&self, n: usize, seed: u64, cond: &Condition, path: &Path) -> Result<()> {
        let c = match (cond, &self.cond) {
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
        };
        let c = c.repeat([n as i64, 1]); // (n, E)
        let z = self.draw_z(&mut derived_rng(seed, "sample", 0), n as i64);
        let x = tch::no_grad(|| self.g.forward_t(&z, &c, false));
        crate::plot::save_tensor_grid(&x, (n as f64).sqrt().ceil() as usize, path)
    }
}

fn scalar(t: &Tensor) -> f64 {
    t.double_value(&[])
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

fn mean(t: &Tensor) -> f64 {
    scalar(&t.mean(Kind::Float))
}

impl Trainable for Cond {
    fn stores(&self) -> Vec<(&'static str, &VarStore)> {
        let mut v = vec![("G", &self.g_vs), ("D", &self.d_vs)];
        if let Some((vs, _)) = self.text().and_then(|t| t.trainable()) {
            v.push(("T", vs));
        }
        v
    }

    fn optimizers(&self) -> Vec<(&'static str, &Optimizer)> {
        let mut v = vec![("opt_G", &self.opt_g), ("opt_D", &self.opt_d)];
        if let Some((_, Some(o))) = self.text().and_then(|t| t.trainable()) {
            v.push(("opt_T", o));
        }
        v
    }

    fn optimizers_mut(&mut self) -> Vec<(&'static str, &mut Optimizer)> {
        let mut v = vec![("opt_G", &mut self.opt_g), ("opt_D", &mut self.opt_d)];
        // Field by field (not text_optimizer()), so the borrows of opt_g / opt_d stay disjoint.
        if let Conditioner::Text(t) = &mut self.cond {
            if let Some(o) = t.optimizer_mut() {
                v.push(("opt_T", o));
            }
        }
        v
    }

    fn train_step(&mut self, step: i64) -> Result<Losses> {
        let mut losses = Losses::new();
        if step == 0 && self.text().is_some_and(|t| t.needs_pretraining()) {
            losses.extend(self.pretrain_text()?);
        }
        let (seed, bs, n_critic) = (self.cfg.seed, self.cfg.train.batch_size, self.cfg.train.n_critic);
        // Dropout masks (Mirza & Osindero's networks) come from (seed, step), so a resumed run draws the same.
        self.g.set_dropout_state(seed, step as u64);
        self.d.set_dropout_state(seed, step as u64);
        let mut last = None;
        for k in 0..n_critic {
            let draw = step * n_critic + k;
            let feed = self.feed.as_mut().ok_or_else(|| PipelineError::Runtime("no training data opened".into()))?;
            let (real, y) = feed.next_labelled(draw)?;
            let y = y.ok_or_else(|| PipelineError::Runtime("the dataset gave no labels".into()))?;
            let y: Vec<i64> = Vec::<i64>::try_from(&y).map_err(PipelineError::torch("reading labels"))?;
            let real = real.to_device(self.device);
            let (right, wrong) = self.conditions(&y, draw, true)?;
            let z = self.noise("z", draw as u64, bs);
            let fake = self.g.forward_t(&z, &right.detach(), true); // (N, C, H, W)
            self.opt_d.zero_grad();
            if let Some(o) = self.text_optimizer() {
                o.zero_grad();
            }
            let mut loss_d = self.d_loss(&real, &fake.detach(), &right, &wrong, &mut losses);
            if self.cfg.loss.gradient_penalty > 0.0 {
                let mut eps_shape = vec![bs];
                eps_shape.extend(std::iter::repeat_n(1, real.dim() - 1));
                let eps = uniform(&mut derived_rng(seed, "gp", draw as u64), &eps_shape, 0.0, 1.0, self.device);
                let (d, c) = (&self.d, right.detach());
                let critic = |x: &Tensor| {
                    let s = d.forward_t(x, &c, true);
                    match s.uncond {
                        Some(u) => s.matched + u,
                        None => s.matched,
                    }
                };
                let gp = gradient_penalty(&critic, &real, &fake, &eps)?;
                losses.insert("gp".into(), scalar(&gp));
                loss_d += gp * self.cfg.loss.gradient_penalty;
            }
            loss_d.backward();
            if let Some(c) = self.cfg.train.grad_clip {
                clip_grad_norm(&self.d_vs.trainable_variables(), c);
            }
            self.opt_d.step()?;
            if let Some(c) = self.cfg.train.max_norm {
                max_norm(&self.d_vs, c);
            }
            if let Some(o) = self.text_optimizer() {
                o.step()?; // a jointly trained text encoder learns from D's loss
            }
            if let Some(c) = self.cfg.loss.weight_clip {
                clip_weights(&self.d_vs, c);
            }
            losses.insert("loss_D".into(), scalar(&loss_d));
            last = Some((fake, z, right.detach(), draw));
        }
        let (fake, z, right, draw) = last.ok_or_else(|| PipelineError::Runtime("train.n_critic must be at least 1".into()))?;
        // D's weights need no gradient in the G step; its input does.
        self.d_vs.freeze();
        self.opt_g.zero_grad();
        let (fake, z) = if n_critic == 1 {
            (fake, z)
        } else {
            let z = self.noise("z_g", step as u64, bs);
            (self.g.forward_t(&z, &right, true), z)
        };
        let mut loss_g = self.g_adv(&fake, &right);
        if self.m.interpolation > 0.0 {
            // GAN-INT: conditions halfway between two captions' embeddings (β = 0.5) should look real too.
            let c_int = (&right + right.roll([1], [0])) * 0.5;
            let fake_int = self.g.forward_t(&self.noise("z_int", draw as u64, bs), &c_int, true);
            let l_int = self.g_adv(&fake_int, &c_int);
            losses.insert("loss_G_int".into(), scalar(&l_int));
            loss_g += l_int * self.m.interpolation;
        }
        if self.m.mode_seeking > 0.0 {
            // MSGAN: a second image of the same conditions from other noise must differ in proportion.
            let z2 = self.noise("z_ms", draw as u64, bs);
            let fake2 = self.g.forward_t(&z2, &right, true); // (N, C, H, W)
            let l_ms = ganzoo_models::losses::mode_seeking(&fake, &fake2, &z, &z2);
            losses.insert("loss_G_ms".into(), scalar(&l_ms));
            loss_g += l_ms * self.m.mode_seeking;
        }
        loss_g.backward();
        self.d_vs.unfreeze();
        if let Some(c) = self.cfg.train.grad_clip {
            clip_grad_norm(&self.g_vs.trainable_variables(), c);
        }
        self.opt_g.step()?;
        if let Some(c) = self.cfg.train.max_norm {
            max_norm(&self.g_vs, c);
        }
        losses.insert("loss_G".into(), scalar(&loss_g));
        Ok(losses)
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

    fn sample_with(&self, n: usize, seed: u64, cond: &Condition, path: &Path) -> Result<()> {
        self.sample_condition(n, seed, cond, path)
    }

    fn evaluate(&self) -> Result<serde_json::Value> {
        let mut out = serde_json::Map::new();
        out.insert("heads".into(), self.head_scores()?);
        match (&self.cond, &self.source) {
            (Conditioner::Classes(n), _) => {
                let j = self.judge_classes(*n)?;
                if !j.is_null() {
                    out.insert("class_accuracy".into(), j);
                }
            }
            (Conditioner::Text(_), Source::Shapes(s)) => {
                out.insert("attribute_accuracy".into(), self.judge_shapes(s)?);
            }
            _ => {}
        }
        Ok(serde_json::Value::Object(out))
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
            let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN) * 100.0;
            return format!(
                "attribute accuracy (training phrasing): shape {:.1}%, colour {:.1}%, size {:.1}%, background {:.1}%; unseen phrasing: shape {:.1}%, colour {:.1}%; images of one prompt differ {:.0}% as much as real ones; {heads}",
                f(s, "shape"), f(s, "colour"), f(s, "size"), f(s, "background"), f(u, "shape"), f(u, "colour"), f(s, "diversity_vs_real")
            );
        }
        heads
    }
}
