//! The `stackgan` family (Zhang et al. 2017): Stage-I (G1, D1 at s×s) or Stage-II (G2, D2 at 4s×4s on a
//! frozen, trained G1), chosen by `model.stage`; the two stages run as a pipeline (see [`crate::pipeline`]).
//!
//! As the authors' code (`stageII/trainer.py`): D loss = real + w·wrong + (1 − w)·fake with w = 0.5, i.e.
//! real + (wrong + fake)/2, all sigmoid cross-entropies; G loss = the adversarial term + `kl_weight` (2) ×
//! KL(N(μ, σ²) ‖ N(0, I)); each stage has its own conditioning augmentation. The mismatching pairs are real
//! images with the batch's text shifted by one image (the TF code draws other real images instead; both pair a
//! real image with a description of another). Stage-I sees the data downscaled by 4 (the TF code resizes its
//! 256 images to 64). With `heads: split`, D also has a real/fake head on the image alone, trained real →
//! real, generated → fake, and G is scored by both heads.
mod config;

pub use config::StackGanModelConfig;
use crate::config::{DataConfig, Settings};
use crate::error::{PipelineError, Result};
use crate::family::{indices, mean, scalar, Batch, Condition, CriticInput, Ctx, Family, FamilyConfig, Compared, Images, Losses, MetricSet, Net, Role, Update};
use crate::feed::Feed;
use crate::judge::{accuracy_json, attribute_hits, eval_prompts, Judge};
use crate::text::{captions_of, Encoder, EvalCaptions, TextSide};
use ganzoo_data::loader::Dataset;
use ganzoo_data::shapes::{ShapeAttrs, ShapesConfig};
use ganzoo_data::source::{Part, Source};
use ganzoo_models::cond::{CondDiscriminator, HeadDesign, Scores};
use ganzoo_models::losses::Target;
use ganzoo_models::rng::{derived_rng, randn};
use ganzoo_models::stackgan::{kl_loss, Stage1Generator, Stage2Generator, StackDOptions, StackDiscriminator};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

impl FamilyConfig for StackGanModelConfig {
    fn problems(&self, _family: &'static str, s: &Settings, p: &mut Vec<String>) {
        self.check(s, p);
    }

    fn build(&self, _family: &'static str, s: &Settings, device: Device, with_data: bool, run_dir: Option<&Path>) -> Result<Box<dyn Family>> {
        Ok(Box::new(StackGan::new(s, self, device, with_data, run_dir)?))
    }
}

/// Prompts (rows) and noise columns of the fixed sample grid.
const GRID_PROMPTS: usize = 8;
const GRID_COLS: i64 = 8;
/// Images generated per forward pass outside training.
const GEN_CHUNK: usize = 128;

/// What D's update made from a batch, for G's update: (generated images, μ, log σ, the Stage-I images a
/// Stage-II G refined, z, matching text).
type Pass = (Tensor, Tensor, Tensor, Option<Tensor>, Tensor, Tensor);

/// The StackGAN family in training (one stage).
pub struct StackGan {
    s: Settings,
    m: StackGanModelConfig,
    device: Device,
    g1_vs: VarStore,
    g1: Stage1Generator,
    /// Stage-II G (stage 2 only).
    g2: Option<(VarStore, Stage2Generator)>,
    /// The trained stage's D (D1 or D2).
    d_vs: VarStore,
    d: StackDiscriminator,
    data: Arc<dyn Dataset>,
    text: TextSide,
    with_data: bool,
    /// Networks a pipeline froze after taking them from an earlier stage.
    frozen: Vec<String>,
    /// D's update's pass of each batch; the images keep their graph when G's update reuses them. By draw.
    passes: HashMap<i64, Pass>,
}

impl StackGan {
    pub fn new(s: &Settings, m: &StackGanModelConfig, device: Device, with_data: bool, run_dir: Option<&Path>) -> Result<Self> {
        let data = match ganzoo_data::open(&s.data, Part::train(), s.seed)? {
            Source::Items(d) if s.data.has_captions() => d,
            _ => return Err(PipelineError::Usage(format!("data.kind: {} has no captions", s.data.kind()))),
        };
        let (captions, names) = captions_of(data.as_ref());
        let text = TextSide::new(&m.text, captions, run_dir, names.as_deref(), device)?;
        let t_dim = text.dim();
        let g1_vs = VarStore::new(device);
        let g1 = Stage1Generator::new(&g1_vs.root(), &m.net, t_dim)?;
        let stage2 = m.stage == 2;
        let g2 = if stage2 {
            let vs = VarStore::new(device);
            let g = Stage2Generator::new(&vs.root(), &m.net, t_dim)?;
            Some((vs, g))
        } else {
            None
        };
        let d_vs = VarStore::new(device);
        let d_opts = StackDOptions {
            heads: m.heads,
            conditioning: m.d_conditioning,
            batch_norm: m.d_batch_norm,
            spectral_norm: s.loss.spectral_norm,
        };
        let d = StackDiscriminator::new(&d_vs.root(), &m.net, t_dim, &d_opts, stage2)?;
        let mut stores = vec![(&g1_vs, "init_G1"), (&d_vs, if stage2 { "init_D2" } else { "init_D1" })];
        if let Some((vs, _)) = &g2 {
            stores.push((vs, "init_G2"));
        }
        for (vs, stream) in stores {
            m.init.apply(vs, s.seed, stream);
        }
        if s.loss.spectral_norm {
            ganzoo_models::spectral::warm_up(&d_vs, 15); // σ converged for the re-initialized weights
        }
        Ok(StackGan { s: s.clone(), m: m.clone(), device, g1_vs, g1, g2, d_vs, d, data, text, with_data, frozen: vec![], passes: HashMap::new() })
    }

    /// The procedural shapes' settings, when the data are those (their attributes are known).
    fn shapes(&self) -> Option<&ShapesConfig> {
        match &self.s.data {
            DataConfig::Shapes(c) => Some(c),
            _ => None,
        }
    }

    fn d_name(&self) -> &'static str {
        if self.stage2() {
            "D2"
        } else {
            "D1"
        }
    }

    fn stage2(&self) -> bool {
        self.g2.is_some()
    }

    fn randn(&self, stream: &str, index: u64, shape: &[i64]) -> Tensor {
        randn(&mut derived_rng(self.s.seed, stream, index), shape, self.device)
    }

    /// The data at Stage-I resolution: 4×4 average pooling (the TF code resizes bilinearly).
    fn downscale(x: &Tensor) -> Tensor {
        let h = x.size()[2];
        resize(x, h / 4) // (N, 3, H/4, W/4)
    }

    /// Stage-I images (s) and, in stage 2, Stage-II images (4s), without gradients, in evaluation mode, for
    /// text embeddings `c` (N, E); `tile` noise draws from `(seed, stream)` repeated over the N rows (N: all
    /// distinct; a grid's column count: the same noise in every row).
    fn generate(&self, c: &Tensor, seed: u64, stream: &str, tile: i64) -> (Tensor, Option<Tensor>) {
        let n = c.size()[0];
        let (ef, k) = (self.m.net.ef_dim, tile.clamp(1, n.max(1)));
        let reps = (n + k - 1) / k;
        let mut rng = derived_rng(seed, stream, 0);
        let mut draw = |d: i64| randn(&mut rng, &[k, d], self.device).repeat([reps, 1]).narrow(0, 0, n); // (N, d)
        let z = draw(self.m.net.z_dim);
        let e1 = draw(ef);
        let e2 = draw(ef);
        // In chunks, so evaluating thousands of Stage-II images does not hold all their activations at once.
        let (mut x1s, mut x2s) = (Vec::new(), Vec::new());
        tch::no_grad(|| {
            for start in (0..n).step_by(GEN_CHUNK) {
                let len = GEN_CHUNK.min((n - start) as usize) as i64;
                let part = |t: &Tensor| t.narrow(0, start, len);
                let (x1, _, _) = self.g1.forward_t(&part(&z), &part(c), &part(&e1), false); // (len, 3, s, s)
                if let Some((_, g)) = &self.g2 {
                    x2s.push(g.forward_t(&x1, &part(c), &part(&e2), false).0); // (len, 3, 4s, 4s)
                }
                x1s.push(x1);
            }
        });
        (Tensor::cat(&x1s, 0), (!x2s.is_empty()).then(|| Tensor::cat(&x2s, 0)))
    }

    /// Images for the standard metrics: Stage-I, or Stage-II of the same Stage-I images, for conditions `c`
    /// (N, E), with noise and CA draws from `("metrics", first)`, in evaluation mode.
    fn metric_images(&self, c: &Tensor, first: usize, stage2: bool) -> Tensor {
        let n = c.size()[0];
        let mut rng = derived_rng(self.s.seed, "metrics", first as u64);
        let z = randn(&mut rng, &[n, self.m.net.z_dim], self.device);
        let e1 = randn(&mut rng, &[n, self.m.net.ef_dim], self.device);
        let e2 = randn(&mut rng, &[n, self.m.net.ef_dim], self.device);
        tch::no_grad(|| {
            let x1 = self.g1.forward_t(&z, c, &e1, false).0; // (N, 3, s, s)
            match (&self.g2, stage2) {
                (Some((_, g)), true) => g.forward_t(&x1, c, &e2, false).0, // (N, 3, 4s, 4s)
                _ => x1,
            }
        })
    }

    /// Writes images of conditions `c` (N, E), `cols` per row: Stage-I alone, or in stage 2 each Stage-I
    /// image (nearest-upscaled to 4s) beside its Stage-II image.
    fn write_grid(&self, c: &Tensor, cols: i64, seed: u64, stream: &str, tile: i64, path: &Path) -> Result<()> {
        let (x1, x2) = self.generate(c, seed, stream, tile);
        match x2 {
            None => crate::plot::save_tensor_grid(&x1, cols as usize, path),
            Some(x2) => {
                let s = x2.size()[2];
                let up = x1.upsample_nearest2d([s, s], None, None); // (N, 3, 4s, 4s)
                let pairs = Tensor::stack(&[up, x2], 1).view([-1, 3, s, s]); // (2N, 3, 4s, 4s): I, II, I, II, …
                crate::plot::save_tensor_grid(&pairs, 2 * cols as usize, path)
            }
        }
    }

    /// The trained stage's images of noise `z` and text `c` in training mode, with CA noise drawn from streams
    /// `ca1`/`ca2` + `suffix`: (fake, μ, log σ, and in stage 2 the frozen Stage-I images it refines).
    fn train_fake(&self, z: &Tensor, c: &Tensor, suffix: &str, step: i64) -> (Tensor, Tensor, Tensor, Option<Tensor>) {
        let shape = [z.size()[0], self.m.net.ef_dim];
        let e1 = self.randn(&format!("ca1{suffix}"), step as u64, &shape);
        match &self.g2 {
            None => {
                let (fake, mu, ls) = self.g1.forward_t(z, c, &e1, true);
                (fake, mu, ls, None)
            }
            Some((_, g2)) => {
                let x1 = tch::no_grad(|| self.g1.forward_t(z, c, &e1, false).0); // frozen Stage-I, (N, 3, s, s)
                let (fake, mu, ls) = g2.forward_t(&x1, c, &self.randn(&format!("ca2{suffix}"), step as u64, &shape), true);
                (fake, mu, ls, Some(x1))
            }
        }
    }

    /// Embeddings of the fixed grid's prompts and the prompts (training images' descriptions).
    fn grid_conditions(&self) -> Result<(Tensor, Vec<String>)> {
        let t = &self.text;
        let n = t.captions.per_image.len();
        let rows = GRID_PROMPTS.min(n);
        let idx: Vec<usize> = (0..rows).map(|k| k * n / rows).collect();
        let prompts: Vec<String> = match self.shapes() {
            Some(_) => {
                let all = ShapeAttrs::all();
                let step = (all.len() / GRID_PROMPTS).max(1);
                (0..GRID_PROMPTS).map(|k| all[(k * step + k) % all.len()].captions()[0].clone()).collect()
            }
            None => idx.iter().map(|&i| t.captions.unique[t.captions.per_image[i][0]].clone()).collect(),
        };
        let c = match &t.encoder {
            Encoder::Precomputed { .. } => t.batch(&idx, &mut derived_rng(self.s.seed, "grid_captions", 0), false)?,
            _ => t.encode(&prompts.iter().map(String::as_str).collect::<Vec<_>>(), false, false)?,
        };
        let labels = match &t.encoder {
            Encoder::Precomputed { .. } => idx.iter().map(|i| format!("the captions of training image {i}")).collect(),
            _ => prompts,
        };
        Ok((c, labels))
    }

    /// D's loss on one batch (`real` and `fake` as D sees them); D's mean scores go to `losses`.
    fn d_terms(&self, real: &Tensor, fake: &Tensor, right: &Tensor, wrong: &Tensor, losses: &mut Losses) -> Tensor {
        let adv = self.s.loss.adversarial;
        let w = self.m.mismatch_weight;
        let h = self.d.features(real, true);
        let rr = self.d.heads(&h, right, true);
        let rw = self.d.heads(&h, wrong, true);
        let fr = self.d.forward_t(fake, right, true);
        let loss = adv.d_term(&rr.matched, Target::Real)
            + adv.d_term(&rw.matched, Target::Fake) * w
            + adv.d_term(&fr.matched, Target::Fake) * (1.0 - w);
        losses.insert("D_real_match".into(), mean(&rr.matched));
        losses.insert("D_real_mismatch".into(), mean(&rw.matched));
        losses.insert("D_fake_match".into(), mean(&fr.matched));
        match (&rr.uncond, &fr.uncond) {
            (Some(ur), Some(uf)) => {
                let l = adv.d_term(ur, Target::Real) + adv.d_term(uf, Target::Fake);
                losses.insert("loss_D_uncond".into(), scalar(&l));
                losses.insert("D_real_uncond".into(), mean(ur));
                losses.insert("D_fake_uncond".into(), mean(uf));
                loss + l
            }
            _ => loss,
        }
    }

    /// D's mean raw scores on one batch of training images, in evaluation mode.
    fn head_scores(&self) -> Result<serde_json::Value> {
        let b = Feed::new(Source::Items(self.data.clone()), &self.s.train, self.s.seed, self.device).next(0)?;
        let idx = indices(&b)?;
        let real = b.x;
        let real = if self.stage2() { real } else { Self::downscale(&real) };
        let right = self.text.batch(&idx, &mut derived_rng(self.s.seed, "eval_captions", 0), false)?;
        let wrong = right.roll([1], [0]);
        let (x1, x2) = self.generate(&right, self.s.seed, "eval_heads", idx.len() as i64);
        let fake = x2.unwrap_or(x1);
        let (rr, rw, fr) = tch::no_grad(|| {
            let h = self.d.features(&real, false);
            (self.d.heads(&h, &right, false), self.d.heads(&h, &wrong, false), self.d.forward_t(&fake, &right, false))
        });
        let head = |f: &dyn Fn(&Scores) -> Option<f64>| json!({ "real_matching": f(&rr), "real_mismatching": f(&rw), "generated": f(&fr) });
        Ok(json!({
            "protocol": format!("D{} on one batch of {} training images; raw scores (logits for the BCE losses), evaluation mode", if self.stage2() { 2 } else { 1 }, idx.len()),
            "match_head": head(&|s: &Scores| Some(mean(&s.matched))),
            "uncond_head": if self.m.heads == HeadDesign::Split { head(&|s: &Scores| s.uncond.as_ref().map(mean)) } else { serde_json::Value::Null },
        }))
    }

    /// Attribute accuracy of Stage-I images and (stage 2) of Stage-II images downscaled to Stage-I size, for
    /// the 114 attribute combinations, judged by a classifier trained on real shapes at Stage-I size.
    fn judge_shapes(&self, shapes: &ShapesConfig) -> Result<serde_json::Value> {
        // The judge works at Stage-I size (at least 32: its classifier needs 28 pixels or more).
        let s = self.m.net.stage1_size.max(32);
        let judge = Judge::shapes(&ShapesConfig { size: s, ..shapes.clone() }, self.device)?;
        let all = ShapeAttrs::all();
        let per = (self.s.eval.samples / (2 * all.len())).max(1);
        let mut out = serde_json::Map::new();
        out.insert("protocol".into(), json!(format!(
            "{per} images per prompt for each of the {n} attribute combinations, one training phrasing and one unseen phrasing (synonyms) each; Stage-I images ({s1} px) and Stage-II images ({big} px) brought to {s}×{s} (average pooling down, nearest-neighbour up); classified by {j}",
            n = all.len(), s1 = self.m.net.stage1_size, big = 4 * self.m.net.stage1_size, j = judge.describe()
        )));
        out.insert("judge_held_out_accuracy".into(), json!(judge.held_out()));
        let mut kept = serde_json::Map::new();
        for (key, unseen) in [("seen_phrasing", false), ("unseen_phrasing", true)] {
            let prompts = eval_prompts(&all, unseen);
            let c = self.text.encode(&prompts.iter().map(String::as_str).collect::<Vec<_>>(), false, false)?; // (P, E)
            let c = c.repeat_interleave_self_int(per as i64, 0, None); // (P·per, E)
            let (x1, x2) = self.generate(&c, self.s.seed, if unseen { "eval_unseen" } else { "eval_seen" }, c.size()[0]);
            let truth: Vec<[usize; 4]> = all.iter().flat_map(|a| std::iter::repeat_n(a.as_array(), per)).collect();
            let hits1 = attribute_hits(&judge, &resize(&x1, s), &truth)?;
            let mut stage = serde_json::Map::new();
            stage.insert("stage1".into(), accuracy_json(&hits1, truth.len(), &prompts[0]).into());
            if let Some(x2) = x2 {
                let hits2 = attribute_hits(&judge, &resize(&x2, s), &truth)?;
                stage.insert("stage2".into(), accuracy_json(&hits2, truth.len(), &prompts[0]).into());
                // Of the images whose Stage-I picture was judged right on all four attributes, the share whose
                // Stage-II picture still is.
                let both = hits1.iter().zip(&hits2).filter(|(a, b)| a.iter().all(|&o| o) && b.iter().all(|&o| o)).count();
                let right1 = hits1.iter().filter(|a| a.iter().all(|&o| o)).count();
                kept.insert(key.into(), json!(if right1 > 0 { both as f64 / right1 as f64 } else { f64::NAN }));
            }
            out.insert(key.into(), serde_json::Value::Object(stage));
        }
        if !kept.is_empty() {
            out.insert("stage2_keeps_stage1_all_four".into(), serde_json::Value::Object(kept));
        }
        Ok(serde_json::Value::Object(out))
    }
}

/// Square images (N, C, H, H) brought to `size`: average pooling when H is a multiple, else nearest neighbour.
fn resize(x: &Tensor, size: i64) -> Tensor {
    let h = x.size()[2];
    if h == size {
        x.shallow_clone()
    } else if h > size && h % size == 0 {
        let k = h / size;
        x.avg_pool2d([k, k], [k, k], [0, 0], false, true, None) // (N, C, size, size)
    } else {
        x.upsample_nearest2d([size, size], None, None) // (N, C, size, size)
    }
}

impl Family for StackGan {
    fn networks(&self) -> Vec<Net<'_>> {
        let t = &self.s.train;
        let (g, d) = (Some(("opt_G", t.g_optimizer.clone())), Some(("opt_D", t.d_optimizer.clone())));
        let mut v = match &self.g2 {
            None => vec![
                Net { name: "G1", role: Role::Generator, vs: &self.g1_vs, opt: g },
                Net { name: "D1", role: Role::Discriminator, vs: &self.d_vs, opt: d },
            ],
            // Stage-II trains G2 and D2 on a frozen Stage-I.
            Some((vs, _)) => vec![
                Net { name: "G1", role: Role::Generator, vs: &self.g1_vs, opt: None },
                Net { name: "G2", role: Role::Generator, vs, opt: g },
                Net { name: "D2", role: Role::Discriminator, vs: &self.d_vs, opt: d },
            ],
        };
        if let Some(vs) = self.text.trainable() {
            v.push(Net { name: "T", role: Role::TextEncoder, vs, opt: None }); // pretrained, then frozen
        }
        v
    }

    fn train_source(&self) -> Option<Source> {
        self.with_data.then(|| Source::Items(self.data.clone()))
    }

    fn freeze(&mut self, nets: &[String]) -> Result<()> {
        for n in nets {
            match (n.as_str(), self.stage2(), &mut self.text.encoder) {
                ("G1", true, _) => self.g1_vs.freeze(),
                ("T", _, Encoder::Trainable { vs, .. }) => {
                    vs.freeze();
                    self.text.invalidate(); // the table is rebuilt from the taken weights
                }
                (other, _, _) => {
                    return Err(PipelineError::Usage(format!(
                        "freeze: family stackgan (model.stage {}) can freeze G1 in stage 2 and a trainable text encoder T; `{other}` is trained here",
                        self.m.stage
                    )))
                }
            }
            self.frozen.push(n.clone());
        }
        Ok(())
    }

    fn begin_step(&mut self, step: i64) -> Result<Losses> {
        self.passes.clear();
        let taken = |n: &str| self.frozen.iter().any(|f| f == n);
        let trainable_text = self.text.trainable().is_some();
        if step == 0 && self.stage2() && (!taken("G1") || (trainable_text && !taken("T"))) {
            return Err(PipelineError::Usage(format!(
                "model.stage: 2 trains Stage-II on a trained, frozen Stage-I: run it as a stage of a pipeline with `init_from: {{G1: <stage-I stage>{}}}` and `freeze: [G1{}]`",
                if trainable_text { ", T: <stage-I stage>" } else { "" },
                if trainable_text { ", T" } else { "" }
            )));
        }
        let mut losses = Losses::new();
        if step == 0 && self.text.needs_pretraining() && !taken("T") {
            let shape = self.s.shape();
            let l = self.text.pretrain(self.data.as_ref(), shape.channels, self.m.net.stage1_size, self.s.seed, self.s.train.batch_size)?;
            losses.extend(l);
        }
        Ok(losses)
    }

    fn d_loss(&mut self, batch: &Batch, ctx: &Ctx) -> Result<Update> {
        let idx = indices(batch)?;
        let real = &batch.x; // (N, 3, 4s, 4s)
        let right = self.text.batch(&idx, &mut derived_rng(self.s.seed, "captions", batch.draw as u64), true)?; // (N, E)
        let wrong = right.roll([1], [0]); // another image's description
        let z = self.randn("z", batch.draw as u64, &[real.size()[0], self.m.net.z_dim]);
        // G's images keep their graph only when G's update reuses them (one D update per G update).
        let reuse = self.s.train.n_critic == 1;
        let (fake, mu, ls, x1) = if reuse { self.train_fake(&z, &right, "", batch.draw) } else { tch::no_grad(|| self.train_fake(&z, &right, "", batch.draw)) };
        let real = if self.stage2() { real.shallow_clone() } else { Self::downscale(real) };
        let mut logs = Losses::new();
        let loss = self.d_terms(&ctx.d_input(&real)?, &ctx.d_input(&fake.detach())?, &right, &wrong, &mut logs);
        logs.insert("loss_D".into(), scalar(&loss));
        let mut u = Update::new(loss, logs);
        u.critics.push(CriticInput { d: self.d_name(), real, fake: fake.detach(), cond: Some(right.shallow_clone()) });
        self.passes.insert(batch.draw, (fake, mu, ls, x1, z, right));
        Ok(u)
    }

    fn g_loss(&mut self, batch: &Batch, ctx: &Ctx) -> Result<Update> {
        let (fake, mu, ls, x1, z, right) = self.passes.remove(&batch.draw).ok_or_else(|| PipelineError::Runtime("stackgan: G's update before D's".into()))?;
        let (fake, mu, ls, x1, z) = if self.s.train.n_critic == 1 {
            (fake, mu, ls, x1, z)
        } else {
            let index = ctx.step * self.s.train.accumulate + ctx.micro as i64;
            let z = self.randn("z_g", index as u64, &z.size());
            let (fake, mu, ls, x1) = self.train_fake(&z, &right, "_g", index);
            (fake, mu, ls, x1, z)
        };
        let mut logs = Losses::new();
        let adv = self.s.loss.adversarial;
        let s = self.d.forward_t(&ctx.d_input(&fake)?, &right, true);
        let mut loss = adv.g_loss(&s.matched);
        if let Some(u) = &s.uncond {
            loss += adv.g_loss(u);
        }
        if self.m.mode_seeking > 0.0 {
            let z2 = self.randn("z_ms", batch.draw as u64, &z.size());
            let fake2 = self.train_fake(&z2, &right, "_ms", batch.draw).0;
            let l_ms = ganzoo_models::losses::mode_seeking(&fake, &fake2, &z, &z2);
            logs.insert("loss_G_ms".into(), scalar(&l_ms));
            loss += l_ms * self.m.mode_seeking;
        }
        let kl = kl_loss(&mu, &ls);
        logs.insert("kl".into(), scalar(&kl));
        loss += kl * self.m.kl_weight;
        if let (Some(x1), true) = (&x1, self.m.stage2_consistency > 0.0) {
            let l = (Self::downscale(&fake) - x1).abs().mean(Kind::Float);
            logs.insert("loss_G_consistency".into(), scalar(&l));
            loss += l * self.m.stage2_consistency;
        }
        logs.insert("loss_G".into(), scalar(&loss));
        Ok(Update::new(loss, logs))
    }

    /// Both heads' scores summed (matched + uncond under `split`), at the held text.
    fn critic(&self, _d: &str, x: &Tensor, cond: Option<&Tensor>) -> Result<Tensor> {
        let c = cond.ok_or_else(|| PipelineError::Runtime("stackgan: the critic needs the text".into()))?;
        Ok(self.d.forward_t(x, c, true).total())
    }

    fn write_samples(&self, path: &Path) -> Result<()> {
        let (c, labels) = self.grid_conditions()?;
        let cc = c.repeat_interleave_self_int(GRID_COLS, 0, None); // (rows·cols, E)
        self.write_grid(&cc, GRID_COLS, self.s.seed, "fixed_z", GRID_COLS, path)?; // the same noise in every row
        let body: String = labels.iter().enumerate().map(|(i, l)| format!("row {}: {l}\n", i + 1)).collect();
        let note = if self.stage2() { "each Stage-I image (left, upscaled) beside its Stage-II image\n" } else { "" };
        crate::checkpoint::write_text_atomic(&path.with_extension("txt"), &format!("{note}{body}"))
    }

    fn sample_to(&self, n: usize, seed: u64, path: &Path) -> Result<()> {
        let (c, _) = self.grid_conditions()?;
        let rows = c.size()[0].max(1);
        let cols = ((n as i64) / rows).max(1);
        self.write_grid(&c.repeat_interleave_self_int(cols, 0, None), cols, seed, "sample", cols, path)
    }

    fn sample_with(&self, n: usize, seed: u64, conds: &[Condition], path: &Path) -> Result<()> {
        let prompts = conds
            .iter()
            .map(|c| match c {
                Condition::Prompt(p) => Ok(p.as_str()),
                Condition::Class(_) => Err(PipelineError::Usage("--class: this run is conditioned on text; use --prompt \"…\"".into())),
            })
            .collect::<Result<Vec<_>>>()?;
        let n = n as i64;
        let c = self.text.encode(&prompts, true, false)?.repeat_interleave_self_int(n, 0, None); // (rows·n, E)
        let cols = if prompts.len() == 1 { (n as f64).sqrt().ceil() as i64 } else { n };
        self.write_grid(&c, cols, seed, "sample", n, path)
    }

    fn evaluate(&self) -> Result<serde_json::Value> {
        let mut out = serde_json::Map::new();
        out.insert("stage".into(), json!(self.m.stage));
        out.insert("heads".into(), self.head_scores()?);
        if let Some(shapes) = self.shapes() {
            out.insert("attribute_accuracy".into(), self.judge_shapes(shapes)?);
        }
        Ok(serde_json::Value::Object(out))
    }

    fn metric_sets(&self, n: usize) -> Result<Vec<MetricSet<'_>>> {
        let caps = std::rc::Rc::new(EvalCaptions::open(&self.s, &self.text)?);
        let stages: &[(&str, bool)] = if self.stage2() { &[("Stage-II", true), ("Stage-I", false)] } else { &[("Stage-I", false)] };
        Ok(stages
            .iter()
            .map(|&(name, stage2)| {
                let c = caps.clone();
                let draw = move |first: usize, len: usize| Ok(self.metric_images(&c.conditions(&self.text, self.s.seed, first, len)?, first, stage2));
                MetricSet { name: name.into(), how: format!("{name} images, {}", caps.how), generated: Compared::Made(Images::new(n, draw)), reference: caps.reference }
            })
            .collect())
    }

    fn summarize(&self, eval: &serde_json::Value) -> String {
        let h = &eval["heads"]["match_head"];
        let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
        let heads = format!(
            "D's match head: real-matching {:.2}, real-mismatching {:.2}, generated {:.2}",
            f(&h["real_matching"]), f(&h["real_mismatching"]), f(&h["generated"])
        );
        let a = &eval["attribute_accuracy"]["seen_phrasing"];
        if !a.is_object() {
            return heads;
        }
        let line = |v: &serde_json::Value| {
            format!(
                "shape {:.1}%, colour {:.1}%, size {:.1}%, background {:.1}%, all four {:.1}%",
                f(&v["shape"]) * 100.0, f(&v["colour"]) * 100.0, f(&v["size"]) * 100.0, f(&v["background"]) * 100.0, f(&v["all_four"]) * 100.0
            )
        };
        let mut s = format!("Stage-I attribute accuracy (training phrasing): {}", line(&a["stage1"]));
        if a["stage2"].is_object() {
            s.push_str(&format!(
                "; Stage-II: {}; Stage-II keeps {:.1}% of Stage-I's all-four hits",
                line(&a["stage2"]),
                f(&eval["attribute_accuracy"]["stage2_keeps_stage1_all_four"]["seen_phrasing"]) * 100.0
            ));
        }
        format!("{s}; {heads}")
    }
}
