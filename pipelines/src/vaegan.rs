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
use crate::config::{Config, DataConfig, Init, ModelConfig};
use crate::error::{PipelineError, Result};
use crate::family::{Losses, Trainable};
use crate::feed::Feed;
use ganzoo_data::loader::{Dataset, Example};
use ganzoo_models::losses::{AdvLoss, Target};
use ganzoo_models::optim::Optimizer;
use ganzoo_models::rng::{derived_rng, randn};
use ganzoo_models::vaegan::{gaussian_nll, kl_divergence, reparameterize, VaeDecoder, VaeDiscriminator, VaeEncoder, VaeganNetConfig};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// VAE-GAN settings; defaults are the paper's (and the authors' code where the paper gives no number).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VaeganModelConfig {
    /// The three networks (the authors' 64×64 layout by default; `z_dim` 128).
    #[serde(default)]
    pub networks: VaeganNetConfig,
    /// γ: weight of L_llike against the GAN loss in the decoder's update (the brief and DESIGN: 1e-6; the
    /// authors' code passes `recon_vs_gan_weight` 1e-5 for CelebA, 5e-5 by default).
    #[serde(default = "default_gamma")]
    pub gamma: f64,
    /// Whether D also judges reconstructions Dec(Enc(x)) as fake, as the paper's L_GAN does (default). The
    /// authors' code feeds D Dec(z) for the encoded z and for prior samples (aegan.py with sample_z), so it
    /// does too; `false` leaves only prior samples.
    #[serde(default = "yes")]
    pub d_sees_reconstructions: bool,
    /// The authors' equilibrium trick (absent: off): skip D's update when it wins too clearly, the
    /// decoder's when it loses too clearly. Needs loss.adversarial minimax or non_saturating. Like `gamma`
    /// and `d_sees_reconstructions`, ignored by a plain VAE (so one `--set model.plain_vae=true` gives the
    /// comparison run).
    #[serde(default)]
    pub equilibrium: Option<Equilibrium>,
    /// Train a plain VAE instead: the same encoder and decoder, Gaussian likelihood on pixels, no D.
    #[serde(default)]
    pub plain_vae: bool,
    /// σ of the Gaussian likelihood: on D's features for the VAE-GAN (the authors: 1), on pixels in [-1, 1]
    /// for the plain VAE.
    #[serde(default = "one")]
    pub recon_sigma: f64,
    /// Images at the end of the (sorted) dataset kept out of training, for `ganzoo eval`'s reconstruction
    /// error and the real side of its Fréchet distance (MNIST: the last 1,000 digits, the digit judge's test
    /// set; CelebA sorted by file name: the last images of its test partition). Captioned shapes use their
    /// test split instead.
    #[serde(default = "default_held_out")]
    pub held_out: usize,
    /// How parameters are initialized.
    #[serde(default)]
    pub init: Init,
}

/// The authors' equilibrium band around the cost of an undecided D.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Equilibrium {
    /// Half-width of the band (the authors' CelebA run: 0.35).
    #[serde(default = "default_margin")]
    pub margin: f64,
    /// Centre of the band, about ln 2 (the authors: 0.68).
    #[serde(default = "default_center")]
    pub center: f64,
}

fn default_gamma() -> f64 {
    1e-6
}
fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}
fn default_held_out() -> usize {
    1000
}
fn default_margin() -> f64 {
    0.35
}
fn default_center() -> f64 {
    0.68
}

/// Every cross-field problem of a vaegan config, each naming its dotted key.
pub fn problems(cfg: &Config, m: &VaeganModelConfig, p: &mut Vec<String>) {
    if !matches!(cfg.data, DataConfig::Mnist { .. } | DataConfig::ImageFolder(_) | DataConfig::Shapes(_)) {
        p.push(format!("data.kind: family vaegan needs one domain of images (mnist, image_folder or shapes), got {}", cfg.data.kind()));
        return;
    }
    let s = cfg.data.shape();
    if s.height != s.width {
        p.push(format!("data: family vaegan needs square images, got {}×{}", s.height, s.width));
    }
    p.extend(m.networks.check(s.channels, s.height).into_iter().map(|e| format!("model.networks: {e}")));
    if matches!(cfg.data, DataConfig::Mnist { pad_to_32: false, .. }) {
        p.push("data.pad_to_32: family vaegan halves the image size three times; set pad_to_32: true for MNIST".into());
    }
    crate::config::non_negative(p, &[("model.gamma", m.gamma)]);
    if !(m.recon_sigma > 0.0 && m.recon_sigma.is_finite()) {
        p.push(format!("model.recon_sigma: must be positive, got {}", m.recon_sigma));
    }
    if let Some(e) = &m.equilibrium {
        if !(e.margin > 0.0 && e.margin.is_finite()) {
            p.push(format!("model.equilibrium.margin: must be positive, got {}", e.margin));
        }
        if !(e.center > 0.0 && e.center.is_finite()) {
            p.push(format!("model.equilibrium.center: must be positive, got {}", e.center));
        }
        if !matches!(cfg.loss.adversarial, AdvLoss::Minimax | AdvLoss::NonSaturating) {
            p.push("model.equilibrium: the band is on D's cross-entropy costs; it needs loss.adversarial minimax or non_saturating".into());
        }
    }
    if cfg.train.batch_size < 2 {
        p.push("train.batch_size: batch norm needs at least 2 images a batch".into());
    }
    if cfg.loss.weight_clip.is_some() || cfg.loss.gradient_penalty > 0.0 || cfg.loss.spectral_norm {
        p.push("loss: weight_clip, gradient_penalty and spectral_norm are not wired into family vaegan".into());
    }
    if cfg.train.n_critic != 1 {
        p.push("train.n_critic: family vaegan updates every network once per step".into());
    }
    for (key, set) in [("train.ema", cfg.train.ema.is_some()), ("train.grad_clip", cfg.train.grad_clip.is_some()), ("train.max_norm", cfg.train.max_norm.is_some())] {
        if set {
            p.push(format!("{key}: not wired into family vaegan; remove it"));
        }
    }
}

/// Items `start..start + len` of another dataset (the training part, or the held-out tail).
struct Subset {
    inner: Arc<dyn Dataset>,
    start: usize,
    len: usize,
}

impl Dataset for Subset {
    fn len(&self) -> usize {
        self.len
    }
    fn get(&self, index: usize, rng: &mut ChaCha8Rng) -> ganzoo_data::Result<Example> {
        if index >= self.len {
            return Err(ganzoo_data::DataError::Invalid(format!("index {index} out of {} items", self.len)));
        }
        self.inner.get(self.start + index, rng)
    }
    fn shape(&self) -> Vec<i64> {
        self.inner.shape()
    }
}

/// The run's images split into (training, held-out).
pub fn open_split(cfg: &Config, held_out: usize) -> Result<(Arc<dyn Dataset>, Arc<dyn Dataset>)> {
    let all: Arc<dyn Dataset> = match &cfg.data {
        DataConfig::Mnist { root, pad_to_32 } => Arc::new(crate::feed::open_mnist(root, *pad_to_32)?),
        DataConfig::ImageFolder(f) => Arc::new(ganzoo_data::folder::ImageFolder::open(f)?),
        DataConfig::Shapes(s) => {
            let open = |split| ganzoo_data::shapes::CaptionedShapes::open(s, split, cfg.seed);
            return Ok((Arc::new(open(ganzoo_data::Split::Train)?), Arc::new(open(ganzoo_data::Split::Test)?)));
        }
        other => return Err(PipelineError::Usage(format!("data.kind: family vaegan needs mnist, image_folder or shapes, got {}", other.kind()))),
    };
    let n = all.len();
    if held_out >= n {
        return Err(PipelineError::Usage(format!(
            "model.held_out: {held_out} held-out images leave none of the {n} images of the dataset for training; lower it"
        )));
    }
    let train = Arc::new(Subset { inner: all.clone(), start: 0, len: n - held_out });
    let test = Arc::new(Subset { inner: all, start: n - held_out, len: held_out });
    Ok((train, test))
}

/// The VAE-GAN (or plain VAE) in training.
pub struct VaeGan {
    cfg: Config,
    m: VaeganModelConfig,
    device: Device,
    e_vs: VarStore,
    g_vs: VarStore,
    d_vs: Option<VarStore>,
    enc: VaeEncoder,
    dec: VaeDecoder,
    dis: Option<VaeDiscriminator>,
    opts: Vec<Optimizer>,
    train: Option<Feed>,
}

const OPT_NAMES: [&str; 3] = ["opt_E", "opt_Dec", "opt_Dis"];

fn scalar(t: &Tensor) -> f64 {
    t.double_value(&[])
}

impl VaeGan {
    pub fn new(cfg: &Config, device: Device, with_data: bool) -> Result<Self> {
        let ModelConfig::Vaegan(m) = &cfg.model else {
            return Err(PipelineError::Runtime(format!("family {} is not vaegan", cfg.model.family())));
        };
        let s = cfg.data.shape();
        let (c, size, net) = (s.channels, s.height, &m.networks);
        let (e_vs, g_vs) = (VarStore::new(device), VarStore::new(device));
        let enc = VaeEncoder::new(&e_vs.root(), net, c, size)?;
        let dec = VaeDecoder::new(&g_vs.root(), net, c, size)?;
        let (d_vs, dis) = if m.plain_vae {
            (None, None)
        } else {
            let vs = VarStore::new(device);
            let d = VaeDiscriminator::new(&vs.root(), net, c, size)?;
            (Some(vs), Some(d))
        };
        let mut stores = vec![("init_E", &e_vs), ("init_Dec", &g_vs)];
        if let Some(vs) = &d_vs {
            stores.push(("init_Dis", vs));
        }
        for (stream, vs) in &stores {
            let mut rng = derived_rng(cfg.seed, stream, 0);
            match m.init {
                Init::Dcgan => ganzoo_models::init::init_dcgan(vs, &mut rng),
                Init::Pytorch => ganzoo_models::init::init_default(vs, &mut rng),
            }
        }
        let mut opts = vec![Optimizer::new(&e_vs, &cfg.train.g_optimizer), Optimizer::new(&g_vs, &cfg.train.g_optimizer)];
        if let Some(vs) = &d_vs {
            opts.push(Optimizer::new(vs, &cfg.train.d_optimizer));
        }
        let train = if with_data { Some(Feed::new(cfg, open_split(cfg, m.held_out)?.0)) } else { None };
        Ok(VaeGan { cfg: cfg.clone(), m: m.clone(), device, e_vs, g_vs, d_vs, enc, dec, dis, opts, train })
    }

    fn z(&self, stream: &str, index: u64, n: i64) -> Tensor {
        randn(&mut derived_rng(self.cfg.seed, stream, index), &[n, self.m.networks.z_dim], self.device)
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
        let (_, test) = open_split(&self.cfg, self.m.held_out)?;
        let n = n.min(test.len());
        if n == 0 {
            return Err(PipelineError::Usage("model.held_out: no held-out images to reconstruct; set it to at least 1".into()));
        }
        stack(test.as_ref(), 0..n, self.cfg.seed)
            .map(|t| t.to_device(self.device))
    }

    /// Training images `0..n` (for the Fréchet distance's real-vs-real reference).
    fn train_images(&self, n: usize) -> Result<Tensor> {
        let (train, _) = open_split(&self.cfg, self.m.held_out)?;
        stack(train.as_ref(), 0..n.min(train.len()), self.cfg.seed).map(|t| t.to_device(self.device))
    }

    fn vae_step(&mut self, x: &Tensor, step: i64) -> Result<Losses> {
        let n = x.size()[0];
        let (mu, logvar) = self.enc.forward_t(x, true); // (N, z) each
        let z = reparameterize(&mu, &logvar, &self.z("eps", step as u64, n));
        let x_rec = self.dec.forward_t(&z, true); // (N, C, S, S)
        let kl = kl_divergence(&mu, &logvar);
        let rec = gaussian_nll(&x_rec, x, self.m.recon_sigma);
        for o in &mut self.opts {
            o.zero_grad();
        }
        (&kl + &rec).backward();
        for o in &mut self.opts {
            o.step()?;
        }
        let mut l = Losses::new();
        l.insert("kl".into(), scalar(&kl));
        l.insert("recon_nll".into(), scalar(&rec));
        l.insert("pixel_mse".into(), scalar(&(&x_rec - x).square().mean(Kind::Float)));
        Ok(l)
    }

    /// One VAE-GAN step on the batch `x` (N, C, S, S) on the device, with the noise of step `step` (what
    /// `train_step` runs after drawing the batch; public for the step-time benchmark).
    pub fn vaegan_step(&mut self, x: &Tensor, step: i64) -> Result<Losses> {
        let Some(dis) = self.dis.as_ref() else {
            return Err(PipelineError::Runtime("vaegan: no discriminator built".into()));
        };
        let adv = self.cfg.loss.adversarial;
        let n = x.size()[0];
        let see_rec = self.m.d_sees_reconstructions;
        let (mu, logvar) = self.enc.forward_t(x, true); // (N, z) each
        let z = reparameterize(&mu, &logvar, &self.z("eps", step as u64, n)); // (N, z)
        let z_p = self.z("prior", step as u64, n); // (N, z)
        // The GAN's decoder pass: z detached (no GAN gradient into the encoder), and prior samples.
        let z_gan = if see_rec { Tensor::cat(&[z.detach(), z_p], 0) } else { z_p }; // (G, z), G = 2N or N
        let gen = self.dec.forward_t(&z_gan, true); // (G, C, S, S)

        // D on real and generated images in one pass (batch-norm statistics over the joint batch, as the code).
        let logits = dis.forward_t(&Tensor::cat(&[x.shallow_clone(), gen.detach()], 0), true); // (N + G,)
        let (d_real, d_gen) = (logits.narrow(0, 0, n), logits.narrow(0, n, logits.size()[0] - n));
        let mut loss_d = adv.d_term(&d_real, Target::Real);
        let parts: Vec<Tensor> = if see_rec { vec![d_gen.narrow(0, 0, n), d_gen.narrow(0, n, n)] } else { vec![d_gen.shallow_clone()] };
        for part in &parts {
            loss_d += adv.d_term(part, Target::Fake);
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
        if update_d {
            self.opts[2].zero_grad();
            loss_d.backward();
            self.opts[2].step()?;
        }

        // Encoder and decoder with D frozen.
        if let Some(vs) = self.d_vs.as_mut() {
            vs.freeze();
        }
        let x_rec = self.dec.forward_t(&z, true); // (N, C, S, S)
        let feats = dis.features_t(&Tensor::cat(&[x_rec, x.shallow_clone()], 0), true); // (2N, F)
        let llike = gaussian_nll(&feats.narrow(0, 0, n), &feats.narrow(0, n, n), self.m.recon_sigma);
        let kl = kl_divergence(&mu, &logvar);
        self.opts[0].zero_grad();
        self.opts[1].zero_grad();
        (&kl + &llike).backward(); // E: ∇(L_prior + L_llike); Dec: ∇L_llike, scaled to γ below
        tch::no_grad(|| {
            for v in self.g_vs.trainable_variables() {
                let mut g = v.grad();
                if g.defined() {
                    let _ = g.g_mul_scalar_(self.m.gamma);
                }
            }
        });
        let d_on_gen = dis.forward_t(&gen, true); // (G,)
        let parts: Vec<Tensor> = if see_rec { vec![d_on_gen.narrow(0, 0, n), d_on_gen.narrow(0, n, n)] } else { vec![d_on_gen] };
        let mut loss_dec_gan = adv.g_loss(&parts[0]);
        for part in &parts[1..] {
            loss_dec_gan += adv.g_loss(part);
        }
        loss_dec_gan.backward(); // Dec only: z was detached
        if let Some(vs) = self.d_vs.as_mut() {
            vs.unfreeze();
        }
        self.opts[0].step()?;
        if update_dec {
            self.opts[1].step()?;
        }
        let mut l = Losses::new();
        l.insert("loss_D".into(), scalar(&loss_d));
        l.insert("D_real_cost".into(), real_cost);
        l.insert("D_fake_cost".into(), fake_cost);
        l.insert("kl".into(), scalar(&kl));
        l.insert("llike".into(), scalar(&llike));
        l.insert("loss_Dec_gan".into(), scalar(&loss_dec_gan));
        l.insert("D_updated".into(), f64::from(u8::from(update_d)));
        l.insert("Dec_updated".into(), f64::from(u8::from(update_dec)));
        Ok(l)
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
    let mut items = Vec::with_capacity(range.len());
    for i in range {
        let ex = ds.get(i, &mut derived_rng(seed, "eval_item", i as u64))?;
        items.push(Tensor::from_slice(&ex.x).view(ex.shape.as_slice()));
    }
    if items.is_empty() {
        return Err(PipelineError::Usage("no images to evaluate".into()));
    }
    Ok(Tensor::stack(&items, 0))
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

impl Trainable for VaeGan {
    fn stores(&self) -> Vec<(&'static str, &VarStore)> {
        let mut v = vec![("E", &self.e_vs), ("Dec", &self.g_vs)];
        if let Some(vs) = &self.d_vs {
            v.push(("Dis", vs));
        }
        v
    }

    fn optimizers(&self) -> Vec<(&'static str, &Optimizer)> {
        OPT_NAMES.into_iter().zip(self.opts.iter()).collect()
    }

    fn optimizers_mut(&mut self) -> Vec<(&'static str, &mut Optimizer)> {
        OPT_NAMES.into_iter().zip(self.opts.iter_mut()).collect()
    }

    fn train_step(&mut self, step: i64) -> Result<Losses> {
        let feed = self.train.as_mut().ok_or_else(|| PipelineError::Runtime("no training data opened".into()))?;
        let x = feed.next(step)?.to_device(self.device); // (N, C, S, S)
        if self.m.plain_vae {
            self.vae_step(&x, step)
        } else {
            self.vaegan_step(&x, step)
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
        let n_samples = self.cfg.eval.samples as i64;
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
        if let DataConfig::Mnist { .. } = self.cfg.data {
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
pub fn reconstruct_folder(fam: &VaeGan, cfg: &Config, input: &Path, output: &Path, skip_bad: bool, quiet: bool) -> Result<serde_json::Value> {
    let s = cfg.data.shape();
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
