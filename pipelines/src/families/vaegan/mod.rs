//! The VAE-GAN family (Larsen et al. 2016): an encoder, one decoder that is both the VAE's decoder and the
//! GAN's generator, and a discriminator whose l-th layer gives the learned similarity; or, with
//! `plain_vae: true`, the same encoder and decoder trained as a plain VAE on pixels (no D), so the two are
//! comparable.
//!
//! One step (the paper's Algorithm 1, with the authors' code's choices where the paper is silent):
//! 1. z = μ(x) + σ(x)·ε, x̃ = Dec(z); prior samples x_p = Dec(z_p), z_p ~ N(0, I). The decoder pass that
//!    feeds the GAN terms takes z detached (the code's `ScaleGradient(0)`: no GAN gradient reaches the
//!    encoder).
//! 2. D: L_GAN = BCE(D(x), real) + BCE(D(x̃), fake) + BCE(D(x_p), fake) (the x̃ term only with
//!    `d_sees_reconstructions`); D learns from L_GAN only.
//! 3. Encoder: L_prior + L_llike with L_llike = Σ ½‖Dis_l(x̃) − Dis_l(x)‖² (Gaussian with σ = 1 in D's
//!    l-th layer features). Decoder: γ·∇L_llike + ∇(generator adversarial loss on x̃ and x_p), i.e. the
//!    paper's γ·L_llike − L_GAN. Both with D frozen.
//! 4. Equilibrium (the authors' code, optional): with real cost −log D(x) and fake cost −log(1 − D(·)) of the
//!    D pass, D is not updated when either is below `center − margin` (D too good) and the decoder is not
//!    updated when either is above `center + margin` (D too bad); when both would be skipped, both update.
//!
//! Networks: `E` (encoder), `Dec` (decoder = generator), `Dis` (discriminator, not in a plain VAE); each
//! its own optimizer: the encoder and decoder use `train.g_optimizer`, D `train.d_optimizer`.
mod config;

pub use config::{Equilibrium, VaeganModelConfig};
use crate::config::{DataConfig, Settings};
use crate::error::{PipelineError, Result};
use crate::family::{scalar, Batch, CriticInput, Ctx, Family, FamilyConfig, Compared, Images, Losses, MetricSet, Net, Phase, Reference, Role, Update};
use ganzoo_data::loader::Dataset;
use ganzoo_data::source::{Part, Source};
use ganzoo_data::unpaired::Split;
use ganzoo_data::DataError;
use ganzoo_models::losses::Target;
use ganzoo_models::rng::{derived_rng, randn};
use ganzoo_models::vaegan::{gaussian_nll, kl_divergence, reparameterize, VaeDecoder, VaeDiscriminator, VaeEncoder};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

impl FamilyConfig for VaeganModelConfig {
    fn problems(&self, _family: &'static str, s: &Settings, p: &mut Vec<String>) {
        self.check(s, p);
    }

    fn build(&self, _family: &'static str, s: &Settings, device: Device, with_data: bool, _run_dir: Option<&Path>) -> Result<Box<dyn Family>> {
        Ok(Box::new(VaeGan::new(s, self, device, with_data)?))
    }
}

/// One part of the run's images: the training images, or the held-out ones (the last `held_out` of data
/// without a test split of its own; captioned shapes use their test split).
pub fn open_part(s: &Settings, split: Split, held_out: usize) -> Result<Arc<dyn Dataset>> {
    let part = Part { split, paired: false, held_out };
    match ganzoo_data::open(&s.data, part, s.seed) {
        Ok(Source::Items(d)) => Ok(d),
        Ok(Source::Points { .. }) => Err(PipelineError::Usage(format!("data.kind: family vaegan needs images, got {}", s.data.kind()))),
        Err(DataError::Usage(m)) if held_out > 0 => Err(PipelineError::Usage(format!("model.held_out: {m}"))),
        Err(e) => Err(e.into()),
    }
}

/// The tensors of one VAE-GAN batch that D's update makes and G's update uses.
struct Pass {
    mu: Tensor,
    logvar: Tensor,
    z: Tensor,
    /// The decoder's images for the GAN terms (reconstructions of detached z, then prior samples), with graph.
    gen: Tensor,
    update_dec: bool,
}

/// The VAE-GAN (or plain VAE) in training.
pub struct VaeGan {
    s: Settings,
    m: VaeganModelConfig,
    device: Device,
    e_vs: VarStore,
    g_vs: VarStore,
    d_vs: Option<VarStore>,
    enc: VaeEncoder,
    dec: VaeDecoder,
    dis: Option<VaeDiscriminator>,
    source: Option<Source>,
    /// D's update's pass of each batch, for G's update; by draw.
    passes: HashMap<i64, Pass>,
}

impl VaeGan {
    pub fn new(s: &Settings, m: &VaeganModelConfig, device: Device, with_data: bool) -> Result<Self> {
        let shape = s.shape();
        let (c, size, net) = (shape.channels, shape.height, &m.networks);
        let (e_vs, g_vs) = (VarStore::new(device), VarStore::new(device));
        let enc = VaeEncoder::new(&e_vs.root(), net, c, size)?;
        let dec = VaeDecoder::new(&g_vs.root(), net, c, size)?;
        let (d_vs, dis) = if m.plain_vae {
            (None, None)
        } else {
            let vs = VarStore::new(device);
            let d = VaeDiscriminator::new(&vs.root(), net, c, size, s.loss.spectral_norm)?;
            (Some(vs), Some(d))
        };
        let mut stores = vec![("init_E", &e_vs), ("init_Dec", &g_vs)];
        if let Some(vs) = &d_vs {
            stores.push(("init_Dis", vs));
        }
        for (stream, vs) in &stores {
            m.init.apply(vs, s.seed, stream);
        }
        if let (Some(vs), true) = (&d_vs, s.loss.spectral_norm) {
            ganzoo_models::spectral::warm_up(vs, 15); // σ converged for the re-initialized weights
        }
        let source = if with_data { Some(Source::Items(open_part(s, Split::Train, m.held_out)?)) } else { None };
        Ok(VaeGan { s: s.clone(), m: m.clone(), device, e_vs, g_vs, d_vs, enc, dec, dis, source, passes: HashMap::new() })
    }

    fn z(&self, stream: &str, index: u64, n: i64) -> Tensor {
        randn(&mut derived_rng(self.s.seed, stream, index), &[n, self.m.networks.z_dim], self.device)
    }

    /// Decodes z (N, z_dim) in evaluation mode.
    pub fn decode(&self, z: &Tensor) -> Tensor {
        tch::no_grad(|| self.dec.forward_t(z, false)) // (N, C, S, S)
    }

    /// Dec(μ(x)) in evaluation mode: the reconstruction the authors show (z = μ at test time).
    pub fn reconstruct(&self, x: &Tensor) -> Tensor {
        tch::no_grad(|| self.dec.forward_t(&self.enc.forward_t(x, false).0, false)) // (N, C, S, S)
    }

    /// The first `n` held-out images (N, C, S, S) on the device.
    fn held_out_images(&self, n: usize) -> Result<Tensor> {
        let own_split = matches!(self.s.data, DataConfig::Shapes(_));
        let test = if own_split || self.m.held_out > 0 { Some(open_part(&self.s, Split::Test, self.m.held_out)?) } else { None };
        let n = test.as_ref().map_or(0, |t| n.min(t.len()));
        match test {
            Some(test) if n > 0 => stack(test.as_ref(), 0..n, self.s.seed).map(|t| t.to_device(self.device)),
            _ => Err(PipelineError::Usage("model.held_out: no held-out images to reconstruct; set it to at least 1".into())),
        }
    }

    /// Training images `0..n` (for the Fréchet distance's real-vs-real reference).
    fn train_images(&self, n: usize) -> Result<Tensor> {
        let train = open_part(&self.s, Split::Train, self.m.held_out)?;
        stack(train.as_ref(), 0..n.min(train.len()), self.s.seed).map(|t| t.to_device(self.device))
    }

    /// Reconstructions (input | reconstruction pairs) of held-out images above prior samples.
    fn picture(&self, z: &Tensor, path: &Path) -> Result<()> {
        let x = self.held_out_images(16)?;
        let rec = self.reconstruct(&x);
        let k = x.size()[0];
        let pairs = Tensor::stack(&[x, rec], 1).reshape([2 * k, -1]); // (2K, C·S·S): x0, r0, x1, r1, …
        let samples = self.decode(z);
        let s = samples.size();
        let all = Tensor::cat(&[pairs.reshape([2 * k, s[1], s[2], s[3]]), samples], 0); // (2K + M, C, S, S)
        crate::plot::save_tensor_grid(&all, 8, path)
    }
}

/// Items `range` of a dataset stacked into (N, C, H, W) on the CPU.
fn stack(ds: &dyn Dataset, range: std::ops::Range<usize>, seed: u64) -> Result<Tensor> {
    Ok(crate::feed::stack_items(ds, &range.collect::<Vec<_>>(), None, seed, "eval_item")?.0)
}

/// Mean image-gradient magnitude of images (N, C, H, W) in [-1, 1]: the mean over pixels of
/// √(∂x² + ∂y²) with forward differences; blurry images score low.
pub fn gradient_sharpness(x: &Tensor) -> f64 {
    let s = x.size();
    let (h, w) = (s[2], s[3]);
    let dx = x.narrow(3, 1, w - 1).narrow(2, 0, h - 1) - x.narrow(3, 0, w - 1).narrow(2, 0, h - 1); // (N, C, H-1, W-1)
    let dy = x.narrow(2, 1, h - 1).narrow(3, 0, w - 1) - x.narrow(2, 0, h - 1).narrow(3, 0, w - 1); // same
    scalar(&(dx.square() + dy.square()).sqrt().mean(Kind::Float))
}

/// MNIST digits as the 28×28 judge sees them (the 2-pixel padding of pad_to_32 cut away).
fn as_digits(x: &Tensor) -> Tensor {
    let s = x.size()[2];
    if s == 32 {
        x.narrow(2, 2, 28).narrow(3, 2, 28)
    } else {
        x.shallow_clone()
    }
}

impl Family for VaeGan {
    fn networks(&self) -> Vec<Net<'_>> {
        let t = &self.s.train;
        let mut v = vec![
            Net { name: "E", role: Role::Encoder, vs: &self.e_vs, opt: Some(("opt_E", t.g_optimizer.clone())) },
            Net { name: "Dec", role: Role::Generator, vs: &self.g_vs, opt: Some(("opt_Dec", t.g_optimizer.clone())) },
        ];
        if let Some(vs) = &self.d_vs {
            v.push(Net { name: "Dis", role: Role::Discriminator, vs, opt: Some(("opt_Dis", t.d_optimizer.clone())) });
        }
        v
    }

    /// A plain VAE has no discriminator: one update of the encoder and decoder.
    fn phases(&self) -> &'static [Phase] {
        if self.m.plain_vae {
            &[Phase::G]
        } else {
            &[Phase::D, Phase::G]
        }
    }

    fn train_source(&self) -> Option<Source> {
        self.source.clone()
    }

    fn begin_step(&mut self, _step: i64) -> Result<Losses> {
        self.passes.clear();
        Ok(Losses::new())
    }

    /// Steps 1, 2 and 4 of the module docs: the encoder and decoder passes, D's loss on real and generated
    /// images in one pass (batch-norm statistics over the joint batch, as the authors' code), the equilibrium.
    fn d_loss(&mut self, batch: &Batch, ctx: &Ctx) -> Result<Update> {
        let Some(dis) = self.dis.as_ref() else {
            return Err(PipelineError::Runtime("vaegan: no discriminator built".into()));
        };
        let adv = self.s.loss.adversarial;
        let x = &batch.x; // (N, C, S, S)
        let n = x.size()[0];
        let see_rec = self.m.d_sees_reconstructions;
        let (mu, logvar) = self.enc.forward_t(x, true); // (N, z) each
        let z = reparameterize(&mu, &logvar, &self.z("eps", batch.draw as u64, n)); // (N, z)
        let z_p = self.z("prior", batch.draw as u64, n); // (N, z)
        // The GAN's decoder pass: z detached (no GAN gradient into the encoder), and prior samples.
        let z_gan = if see_rec { Tensor::cat(&[z.detach(), z_p], 0) } else { z_p }; // (G, z), G = 2N or N
        let gen = self.dec.forward_t(&z_gan, true); // (G, C, S, S)
        let logits = dis.forward_t(&ctx.d_input(&Tensor::cat(&[x.shallow_clone(), gen.detach()], 0))?, true); // (N + G,)
        let (d_real, d_gen) = (logits.narrow(0, 0, n), logits.narrow(0, n, logits.size()[0] - n));
        let mut loss = adv.d_term(&d_real, Target::Real);
        let parts: Vec<Tensor> = if see_rec { vec![d_gen.narrow(0, 0, n), d_gen.narrow(0, n, n)] } else { vec![d_gen.shallow_clone()] };
        for part in &parts {
            loss += adv.d_term(part, Target::Fake);
        }
        // The equilibrium costs: mean −log D(x) and −log(1 − D(x̃ or x_p)) of this pass.
        let real_cost = scalar(&d_real.binary_cross_entropy_with_logits::<Tensor>(&d_real.ones_like(), None, None, tch::Reduction::Mean));
        let fake_cost = scalar(&d_gen.binary_cross_entropy_with_logits::<Tensor>(&d_gen.zeros_like(), None, None, tch::Reduction::Mean));
        let (mut update_d, mut update_dec) = (true, true);
        if let Some(e) = &self.m.equilibrium {
            if real_cost < e.center - e.margin || fake_cost < e.center - e.margin {
                update_d = false;
            }
            if real_cost > e.center + e.margin || fake_cost > e.center + e.margin {
                update_dec = false;
            }
            if !update_d && !update_dec {
                (update_d, update_dec) = (true, true);
            }
        }
        let mut logs = Losses::new();
        logs.insert("loss_D".into(), scalar(&loss));
        logs.insert("D_real_cost".into(), real_cost);
        logs.insert("D_fake_cost".into(), fake_cost);
        logs.insert("D_updated".into(), f64::from(u8::from(update_d)));
        let prior = gen.narrow(0, gen.size()[0] - n, n).detach(); // (N, C, S, S): the prior samples
        let mut u = Update::new(loss, logs);
        u.critics.push(CriticInput { d: "Dis", real: x.shallow_clone(), fake: prior, cond: None });
        if !update_d {
            u.hold.push("Dis");
        }
        self.passes.insert(batch.draw, Pass { mu, logvar, z, gen, update_dec });
        Ok(u)
    }

    /// Step 3 (VAE-GAN) with D frozen, or the plain VAE's ELBO on pixels.
    fn g_loss(&mut self, batch: &Batch, ctx: &Ctx) -> Result<Update> {
        let x = &batch.x; // (N, C, S, S)
        let n = x.size()[0];
        let mut logs = Losses::new();
        let Some(dis) = self.dis.as_ref() else {
            let (mu, logvar) = self.enc.forward_t(x, true); // (N, z) each
            let z = reparameterize(&mu, &logvar, &self.z("eps", batch.draw as u64, n));
            let x_rec = self.dec.forward_t(&z, true); // (N, C, S, S)
            let kl = kl_divergence(&mu, &logvar);
            let rec = gaussian_nll(&x_rec, x, self.m.recon_sigma);
            logs.insert("kl".into(), scalar(&kl));
            logs.insert("recon_nll".into(), scalar(&rec));
            logs.insert("pixel_mse".into(), scalar(&(&x_rec - x).square().mean(Kind::Float)));
            return Ok(Update::new(kl + rec, logs));
        };
        let adv = self.s.loss.adversarial;
        let pass = self.passes.remove(&batch.draw).ok_or_else(|| PipelineError::Runtime("vaegan: G's update before D's".into()))?;
        let x_rec = self.dec.forward_t(&pass.z, true); // (N, C, S, S)
        // The learned similarity compares D's features of x̃ and x without DiffAugment: it is a metric, not a
        // judgement of real against fake.
        let feats = dis.features_t(&Tensor::cat(&[x_rec, x.shallow_clone()], 0), true); // (2N, F)
        let llike = gaussian_nll(&feats.narrow(0, 0, n), &feats.narrow(0, n, n), self.m.recon_sigma);
        let kl = kl_divergence(&pass.mu, &pass.logvar);
        let d_on_gen = dis.forward_t(&ctx.d_input(&pass.gen)?, true); // (G,)
        let parts: Vec<Tensor> = if self.m.d_sees_reconstructions { vec![d_on_gen.narrow(0, 0, n), d_on_gen.narrow(0, n, n)] } else { vec![d_on_gen] };
        let mut loss_dec_gan = adv.g_loss(&parts[0]);
        for part in &parts[1..] {
            loss_dec_gan += adv.g_loss(part);
        }
        logs.insert("kl".into(), scalar(&kl));
        logs.insert("llike".into(), scalar(&llike));
        logs.insert("loss_Dec_gan".into(), scalar(&loss_dec_gan));
        logs.insert("Dec_updated".into(), f64::from(u8::from(pass.update_dec)));
        // E: ∇(L_prior + L_llike); Dec: γ·∇L_llike, then + ∇ of its GAN loss (z was detached: Dec only).
        let mut u = Update::new(kl + llike, logs);
        u.then.push((vec![("Dec", self.m.gamma)], loss_dec_gan));
        if !pass.update_dec {
            u.hold.push("Dec");
        }
        Ok(u)
    }

    fn critic(&self, _d: &str, x: &Tensor, _cond: Option<&Tensor>) -> Result<Tensor> {
        match &self.dis {
            Some(dis) => Ok(dis.forward_t(x, true)),
            None => Err(PipelineError::Runtime("a plain VAE has no discriminator".into())),
        }
    }

    fn write_samples(&self, path: &Path) -> Result<()> {
        self.picture(&self.z("fixed_z", 0, 32), path)
    }

    fn sample_to(&self, n: usize, seed: u64, path: &Path) -> Result<()> {
        let z = randn(&mut derived_rng(seed, "sample", 0), &[n as i64, self.m.networks.z_dim], self.device);
        let x = self.decode(&z);
        let ncol = (n as f64).sqrt().ceil() as usize;
        crate::plot::save_tensor_grid(&x, ncol, path)
    }

    fn evaluate(&self) -> Result<serde_json::Value> {
        let held = self.held_out_images(self.m.held_out.max(1))?;
        let n_held = held.size()[0];
        let (mut se, mut count) = (0.0, 0i64);
        let mut recs = Vec::new();
        for s in (0..n_held).step_by(256) {
            let b = held.narrow(0, s, 256.min(n_held - s));
            let r = self.reconstruct(&b);
            se += scalar(&(&r - &b).square().sum(Kind::Float));
            count += b.numel() as i64;
            recs.push(r);
        }
        let recs = Tensor::cat(&recs, 0);
        let mse = se / count as f64; // on [-1, 1]
        let n_samples = self.s.eval.samples as i64;
        let samples = Tensor::cat(
            &(0..n_samples).step_by(256).map(|s| self.decode(&self.z("eval", s as u64, 256.min(n_samples - s)))).collect::<Vec<_>>(),
            0,
        ); // (M, C, S, S)
        let mut out = serde_json::Map::new();
        out.insert("held_out_images".into(), json!(n_held));
        out.insert("recon_mse".into(), json!(mse));
        out.insert("recon_psnr".into(), json!(-10.0 * (mse / 4.0).max(1e-12).log10()));
        out.insert("prior_samples".into(), json!(n_samples));
        out.insert("sharpness_samples".into(), json!(gradient_sharpness(&samples)));
        out.insert("sharpness_reconstructions".into(), json!(gradient_sharpness(&recs)));
        out.insert("sharpness_real".into(), json!(gradient_sharpness(&held)));
        let mut protocol = format!(
            "reconstruction: Dec(μ(x)) of the {n_held} held-out images, evaluation mode; MSE on [-1,1], PSNR on [0,1]; sharpness: mean √(∂x²+∂y²) (forward differences on [-1,1]) of {n_samples} prior samples Dec(z), z ~ N(0, I), of the reconstructions and of the held-out images"
        );
        if let DataConfig::Mnist { .. } = self.s.data {
            let judge = crate::judge::Judge::digits(self.device)?;
            let f_real = judge.features(&as_digits(&held));
            let fd = crate::judge::frechet_distance(&f_real, &judge.features(&as_digits(&samples)))?;
            let f_train = judge.features(&as_digits(&self.train_images(n_held as usize)?));
            let floor = crate::judge::frechet_distance(&f_real, &f_train)?;
            out.insert("frechet_judge_samples".into(), json!(fd));
            out.insert("frechet_judge_recons".into(), json!(crate::judge::frechet_distance(&f_real, &judge.features(&as_digits(&recs)))?));
            out.insert("frechet_judge_real_floor".into(), json!(floor));
            protocol.push_str(&format!(
                "; Fréchet distance in the pooled features of {}, between the held-out digits and the prior samples (and the reconstructions); the floor compares the held-out digits with as many training digits",
                judge.describe()
            ));
        }
        out.insert("protocol".into(), json!(protocol));
        out.insert("model".into(), json!(if self.m.plain_vae { "plain VAE" } else { "VAE-GAN" }));
        Ok(serde_json::Value::Object(out))
    }

    fn metric_sets(&self, n: usize) -> Result<Vec<MetricSet<'_>>> {
        // The held-out images (the test split of data that has one, else the last model.held_out images, else
        // all of them) are the reference of both sets, and the inputs of the reconstructions.
        let reference = Reference { part: Part { split: Split::Test, paired: false, held_out: self.m.held_out }, domain: None };
        let held = open_part(&self.s, Split::Test, self.m.held_out)?;
        let prior = move |first: usize, len: usize| Ok(self.decode(&self.z("metrics", first as u64, len as i64)));
        let recon = move |first: usize, len: usize| {
            let idx: Vec<usize> = (first..first + len).collect();
            let x = crate::feed::stack_items(held.as_ref(), &idx, None, self.s.seed, "eval_item")?.0;
            Ok(self.reconstruct(&x.to_device(self.device)))
        };
        let n_recon = n.min(open_part(&self.s, Split::Test, self.m.held_out)?.len());
        Ok(vec![
            MetricSet { name: "prior samples".into(), how: "Dec(z), z ~ N(0, I)".into(), generated: Compared::Made(Images::new(n, prior)), reference },
            MetricSet { name: "reconstructions".into(), how: "Dec(μ(x)) of the reference images themselves".into(), generated: Compared::Made(Images::new(n_recon, recon)), reference },
        ])
    }

    fn summarize(&self, e: &serde_json::Value) -> String {
        let f = |k: &str| e[k].as_f64().unwrap_or(f64::NAN);
        let mut s = format!(
            "{}: held-out reconstruction MSE {:.4} (PSNR {:.2} dB); sharpness of prior samples {:.4} (real {:.4})",
            e["model"].as_str().unwrap_or(""),
            f("recon_mse"),
            f("recon_psnr"),
            f("sharpness_samples"),
            f("sharpness_real")
        );
        if e.get("frechet_judge_samples").is_some() {
            s.push_str(&format!("; judge-feature Fréchet distance of samples {:.3} (real-vs-real floor {:.3})", f("frechet_judge_samples"), f("frechet_judge_real_floor")));
        }
        s
    }
}

/// Grid file `reconstruct` writes into its output folder.
pub const RECONSTRUCTION_GRID: &str = "reconstructions.png";

/// Reconstructs every image of `input` into `output` (same names) and writes the input | reconstruction
/// grid `output/reconstructions.png` (up to 64 pairs, 4 pairs a row).
pub fn reconstruct_folder(fam: &VaeGan, input: &Path, output: &Path, skip_bad: bool, quiet: bool) -> Result<serde_json::Value> {
    let s = fam.s.shape();
    let mut pairs = Vec::new();
    let r = crate::imagemap::map_folder(input, output, Some(s.height), s.channels, skip_bad, quiet, "reconstructing", &[RECONSTRUCTION_GRID], |x| {
        let y = fam.reconstruct(&x.to_device(fam.device)).to_device(Device::Cpu); // (1, C, S, S)
        if pairs.len() < 128 {
            pairs.push(x.shallow_clone());
            pairs.push(y.shallow_clone());
        }
        Ok(y)
    })?;
    let mut out = r.json(output);
    if !pairs.is_empty() {
        let grid = output.join(RECONSTRUCTION_GRID);
        crate::plot::save_tensor_grid(&Tensor::cat(&pairs, 0), 8, &grid)?;
        out.insert("grid".into(), json!(grid.display().to_string()));
    }
    out.insert("reconstructed".into(), json!(r.done));
    Ok(serde_json::Value::Object(out))
}
