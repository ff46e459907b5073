//! The UNIT family (Liu, Breuel & Kautz 2017, "Unsupervised Image-to-Image Translation Networks"): a VAE-GAN
//! per domain whose last encoder and first decoder blocks are shared, so that both domains map into one
//! latent space; x_A → EN_A → DE_B translates.
//!
//! Names: EN_A, DE_A (the paper's E_1, G_1), EN_B, DE_B (E_2, G_2), D_A and D_B (D_1 judges domain A, D_2
//! domain B). One step follows the authors' `trainer.py`, on one batch of A and one of B:
//! 1. D update: z_A = μ_A + ε, z_B = μ_B + ε'; D_A judges A real and DE_A(z_B) fake, D_B judges B real and
//!    DE_B(z_A) fake; loss gan_w · Σ_scales (both D losses). Fakes made without gradients.
//! 2. Generator update with D frozen (fresh noise): within-domain reconstructions DE_A(z_A), DE_B(z_B);
//!    translations DE_B(z_A), DE_A(z_B); their re-encodings μ_A' = EN_B(DE_B(z_A)), μ_B' = EN_A(DE_A(z_B));
//!    cycle reconstructions DE_A(μ_A' + ε), DE_B(μ_B' + ε). Loss (eq. 7 and the code's weights):
//!    gan_w·(L_GAN on both translations) + recon_x_w·(L1 of both reconstructions) + recon_kl_w·(mean μ_A² +
//!    mean μ_B²) + recon_x_cyc_w·(L1 of both cycles) + recon_kl_cyc_w·(mean μ_A'² + mean μ_B'²).
//!
//! The generators are one store `G` (`gen_a.*`, `gen_b.*`, `shared.*`) with one optimizer, as the reference's
//! `gen_opt` over both; D_A and D_B have a store and optimizer each (Adam's state is per parameter, so this
//! equals the reference's one `dis_opt`). The latent noise comes from a seeded stream per step, so a resumed
//! run equals an uninterrupted one bit for bit.
use crate::config::{Config, ModelConfig};
use crate::error::{PipelineError, Result};
use crate::family::{Losses, Trainable};
use crate::feed::Feed;
use crate::translation::{evaluate, grid, l1, open_domains, scalar, summarize, test_pairs, Translate};
use ganzoo_data::unpaired::Split;
use ganzoo_models::init::init_normal;
use ganzoo_models::losses::{AdvLoss, Target};
use ganzoo_models::optim::Optimizer;
use ganzoo_models::rng::{derived_rng, randn};
use ganzoo_models::unit::{init_generators, kl_unit_variance, Domain, MsImageDis, UnitDiscriminatorConfig, UnitGeneratorConfig, UnitGenerators};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::nn::VarStore;
use tch::{Device, Tensor};

/// Test pairs shown in the sample grid.
const GRID_ROWS: usize = 4;

/// UNIT settings; defaults are the authors' (configs/unit_*.yaml of mingyuliutw/UNIT), except the weight
/// sharing, which follows the paper (the authors' current code shares nothing: `shared_*_blocks: 0`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UnitModelConfig {
    /// Encoders and decoders: dim 64, n_downsample 2, n_res 4, 1 shared encoder block and 1 shared decoder
    /// block, reflection padding.
    #[serde(default)]
    pub generator: UnitGeneratorConfig,
    /// Multi-scale PatchGAN per domain: dim 64, n_layer 4, 3 scales, no norm, reflection padding.
    #[serde(default)]
    pub discriminator: UnitDiscriminatorConfig,
    /// λ0: weight of the adversarial terms (the code's gan_w: 1).
    #[serde(default = "one")]
    pub gan_w: f64,
    /// λ2: weight of the within-domain L1 reconstruction (recon_x_w: 10).
    #[serde(default = "ten")]
    pub recon_x_w: f64,
    /// λ1: weight of the KL term mean(μ²) of both encodings (recon_kl_w: 0.01).
    #[serde(default = "hundredth")]
    pub recon_kl_w: f64,
    /// λ4: weight of the cycle L1 reconstruction A → B → A and B → A → B (recon_x_cyc_w: 10).
    #[serde(default = "ten")]
    pub recon_x_cyc_w: f64,
    /// λ3: weight of the KL term of the re-encoded translations (recon_kl_cyc_w: 0.01).
    #[serde(default = "hundredth")]
    pub recon_kl_cyc_w: f64,
    /// Standard deviation of D's initial weights (the reference's `gaussian` init: 0.02); G uses He
    /// (kaiming, fan_in) initialization as the authors' `init: kaiming`.
    #[serde(default = "default_d_init_std")]
    pub d_init_std: f64,
}

fn one() -> f64 {
    1.0
}
fn ten() -> f64 {
    10.0
}
fn hundredth() -> f64 {
    0.01
}
fn default_d_init_std() -> f64 {
    0.02
}

/// Every cross-field problem of a unit config, each naming its dotted key.
pub fn problems(cfg: &Config, m: &UnitModelConfig, p: &mut Vec<String>) {
    if !cfg.data.is_two_domain() {
        p.push(format!("data.kind: family unit needs two domains (unpaired or shapes2), got {}", cfg.data.kind()));
        return;
    }
    let s = cfg.data.shape();
    p.extend(m.generator.check(s.channels, s.height).into_iter().map(|e| format!("model.generator: {e}")));
    p.extend(m.discriminator.check(s.channels, s.height).into_iter().map(|e| format!("model.discriminator: {e}")));
    crate::config::non_negative(
        p,
        &[
            ("model.gan_w", m.gan_w),
            ("model.recon_x_w", m.recon_x_w),
            ("model.recon_kl_w", m.recon_kl_w),
            ("model.recon_x_cyc_w", m.recon_x_cyc_w),
            ("model.recon_kl_cyc_w", m.recon_kl_cyc_w),
        ],
    );
    if !(m.d_init_std > 0.0 && m.d_init_std.is_finite()) {
        p.push(format!("model.d_init_std: must be positive, got {}", m.d_init_std));
    }
    if cfg.loss.weight_clip.is_some() || cfg.loss.gradient_penalty > 0.0 || cfg.loss.spectral_norm {
        p.push("loss: weight_clip, gradient_penalty and spectral_norm are not wired into family unit; choose loss.adversarial (lsgan as the authors)".into());
    }
    if cfg.train.n_critic != 1 {
        p.push("train.n_critic: family unit updates D and the generators once per step".into());
    }
    for (key, set) in [("train.ema", cfg.train.ema.is_some()), ("train.grad_clip", cfg.train.grad_clip.is_some()), ("train.max_norm", cfg.train.max_norm.is_some())] {
        if set {
            p.push(format!("{key}: not wired into family unit; remove it"));
        }
    }
}

/// The UNIT family in training.
pub struct Unit {
    cfg: Config,
    m: UnitModelConfig,
    device: Device,
    /// G (both domains' encoders and decoders and the shared blocks), D_A, D_B.
    stores: [VarStore; 3],
    g: UnitGenerators,
    d_a: MsImageDis,
    d_b: MsImageDis,
    opts: Vec<Optimizer>,
    train: Option<Feed>,
}

const NAMES: [&str; 3] = ["G", "D_A", "D_B"];
const OPT_NAMES: [&str; 3] = ["opt_G", "opt_D_A", "opt_D_B"];

/// Σ over D's scales of the D loss term for `target`.
fn d_terms(adv: AdvLoss, scores: &[Tensor], target: Target) -> Tensor {
    scores.iter().map(|s| adv.d_term(s, target)).reduce(|a, b| a + b).unwrap_or_else(|| Tensor::from(0f32))
}

/// Σ over D's scales of the generator loss.
fn g_terms(adv: AdvLoss, scores: &[Tensor]) -> Tensor {
    scores.iter().map(|s| adv.g_loss(s)).reduce(|a, b| a + b).unwrap_or_else(|| Tensor::from(0f32))
}

impl Unit {
    pub fn new(cfg: &Config, device: Device, with_data: bool) -> Result<Self> {
        let ModelConfig::Unit(m) = &cfg.model else {
            return Err(PipelineError::Runtime(format!("family {} is not unit", cfg.model.family())));
        };
        let s = cfg.data.shape();
        let stores = [VarStore::new(device), VarStore::new(device), VarStore::new(device)];
        let g = UnitGenerators::new(&stores[0].root(), &m.generator, s.channels, s.height)?;
        let d_a = MsImageDis::new(&stores[1].root(), &m.discriminator, s.channels, s.height)?;
        let d_b = MsImageDis::new(&stores[2].root(), &m.discriminator, s.channels, s.height)?;
        init_generators(&stores[0], &mut derived_rng(cfg.seed, "init_G", 0));
        for (vs, name) in stores[1..].iter().zip(&NAMES[1..]) {
            init_normal(vs, &mut derived_rng(cfg.seed, &format!("init_{name}"), 0), m.d_init_std);
        }
        let opts = stores
            .iter()
            .zip([&cfg.train.g_optimizer, &cfg.train.d_optimizer, &cfg.train.d_optimizer])
            .map(|(vs, o)| Optimizer::new(vs, o))
            .collect();
        let train = if with_data { Some(Feed::new(cfg, open_domains(cfg, Split::Train, false)?)) } else { None };
        Ok(Unit { cfg: cfg.clone(), m: m.clone(), device, stores, g, d_a, d_b, opts, train })
    }

    fn next_batch(&mut self, step: i64) -> Result<(Tensor, Tensor)> {
        let feed = self.train.as_mut().ok_or_else(|| PipelineError::Runtime("no training data opened".into()))?;
        let x = feed.next(step)?.to_device(self.device); // (N, 2, C, H, W)
        Ok((x.select(1, 0), x.select(1, 1)))
    }

    /// One UNIT step on a batch of A and one of B, (N, C, H, W) each in [-1, 1] (the family's training step
    /// after the data; public for bench/unit.rs).
    pub fn unit_step(&mut self, real_a: &Tensor, real_b: &Tensor, step: i64) -> Result<Losses> {
        let adv = self.cfg.loss.adversarial;
        let m = self.m.clone();
        let mut rng = derived_rng(self.cfg.seed, "unit_noise", step as u64);
        let mut losses = Losses::new();

        // 1. Discriminators, on translations made without gradients.
        let (fake_a, fake_b) = tch::no_grad(|| {
            let mu_a = self.g.encode(real_a, Domain::A); // (N, L, h, w)
            let mu_b = self.g.encode(real_b, Domain::B);
            let z_a = &mu_a + self.noise(&mut rng, &mu_a);
            let z_b = &mu_b + self.noise(&mut rng, &mu_b);
            (self.g.decode(&z_b, Domain::A), self.g.decode(&z_a, Domain::B)) // B → A, A → B
        });
        let loss_d_a = (d_terms(adv, &self.d_a.forward(&fake_a), Target::Fake) + d_terms(adv, &self.d_a.forward(real_a), Target::Real)) * m.gan_w;
        let loss_d_b = (d_terms(adv, &self.d_b.forward(&fake_b), Target::Fake) + d_terms(adv, &self.d_b.forward(real_b), Target::Real)) * m.gan_w;
        for o in &mut self.opts[1..] {
            o.zero_grad();
        }
        (&loss_d_a + &loss_d_b).backward();
        for o in &mut self.opts[1..] {
            o.step()?;
        }

        // 2. Encoders and decoders, with the discriminators frozen.
        self.stores[1].freeze();
        self.stores[2].freeze();
        let mu_a = self.g.encode(real_a, Domain::A); // (N, L, h, w)
        let mu_b = self.g.encode(real_b, Domain::B);
        let z_a = &mu_a + self.noise(&mut rng, &mu_a);
        let z_b = &mu_b + self.noise(&mut rng, &mu_b);
        let rec_a = self.g.decode(&z_a, Domain::A); // (N, C, H, W)
        let rec_b = self.g.decode(&z_b, Domain::B);
        let ba = self.g.decode(&z_b, Domain::A);
        let ab = self.g.decode(&z_a, Domain::B);
        let mu_b_rec = self.g.encode(&ba, Domain::A); // B's content, recovered from its A translation
        let mu_a_rec = self.g.encode(&ab, Domain::B);
        let gan = (g_terms(adv, &self.d_a.forward(&ba)), g_terms(adv, &self.d_b.forward(&ab)));
        let recon = (l1(&rec_a, real_a), l1(&rec_b, real_b));
        let kl = (kl_unit_variance(&mu_a), kl_unit_variance(&mu_b));
        let kl_cyc = (kl_unit_variance(&mu_a_rec), kl_unit_variance(&mu_b_rec));
        let mut loss_g = (&gan.0 + &gan.1) * m.gan_w
            + (&recon.0 + &recon.1) * m.recon_x_w
            + (&kl.0 + &kl.1) * m.recon_kl_w
            + (&kl_cyc.0 + &kl_cyc.1) * m.recon_kl_cyc_w;
        if m.recon_x_cyc_w > 0.0 {
            let aba = self.g.decode(&(&mu_a_rec + self.noise(&mut rng, &mu_a_rec)), Domain::A);
            let bab = self.g.decode(&(&mu_b_rec + self.noise(&mut rng, &mu_b_rec)), Domain::B);
            let cyc = (l1(&aba, real_a), l1(&bab, real_b));
            loss_g += (&cyc.0 + &cyc.1) * m.recon_x_cyc_w;
            losses.insert("cycle_A".into(), scalar(&cyc.0));
            losses.insert("cycle_B".into(), scalar(&cyc.1));
        }
        self.opts[0].zero_grad();
        loss_g.backward();
        self.opts[0].step()?;
        self.stores[1].unfreeze();
        self.stores[2].unfreeze();

        for (k, v) in [
            ("gan_A", &gan.0),
            ("gan_B", &gan.1),
            ("recon_A", &recon.0),
            ("recon_B", &recon.1),
            ("kl_A", &kl.0),
            ("kl_B", &kl.1),
            ("kl_cycle_A", &kl_cyc.0),
            ("kl_cycle_B", &kl_cyc.1),
            ("loss_G", &loss_g),
            ("loss_D_A", &loss_d_a),
            ("loss_D_B", &loss_d_b),
        ] {
            losses.insert(k.into(), scalar(v));
        }
        Ok(losses)
    }

    fn noise(&self, rng: &mut ChaCha8Rng, like: &Tensor) -> Tensor {
        randn(rng, &like.size(), self.device) // (N, L, h, w) ~ N(0, I)
    }
}

impl Translate for Unit {
    fn translate(&self, x: &Tensor, a2b: bool) -> Tensor {
        let (from, to) = if a2b { (Domain::A, Domain::B) } else { (Domain::B, Domain::A) };
        tch::no_grad(|| self.g.translate(x, from, to)) // (N, C, H, W)
    }
}

impl Trainable for Unit {
    fn stores(&self) -> Vec<(&'static str, &VarStore)> {
        NAMES.iter().copied().zip(self.stores.iter()).collect()
    }

    fn optimizers(&self) -> Vec<(&'static str, &Optimizer)> {
        OPT_NAMES.into_iter().zip(self.opts.iter()).collect()
    }

    fn optimizers_mut(&mut self) -> Vec<(&'static str, &mut Optimizer)> {
        OPT_NAMES.into_iter().zip(self.opts.iter_mut()).collect()
    }

    fn train_step(&mut self, step: i64) -> Result<Losses> {
        let (real_a, real_b) = self.next_batch(step)?; // (N, C, H, W) each
        self.unit_step(&real_a, &real_b, step)
    }

    fn write_samples(&self, path: &Path) -> Result<()> {
        let (a, b) = test_pairs(&self.cfg, self.device, GRID_ROWS)?;
        grid(self, &a, &b, path)
    }

    fn sample_to(&self, n: usize, _seed: u64, path: &Path) -> Result<()> {
        let (a, b) = test_pairs(&self.cfg, self.device, n)?;
        grid(self, &a, &b, path)
    }

    fn evaluate(&self) -> Result<serde_json::Value> {
        evaluate(&self.cfg, self.device, self)
    }

    fn summarize(&self, e: &serde_json::Value) -> String {
        summarize(e)
    }

    fn translator(&self) -> Option<&dyn Translate> {
        Some(self)
    }

    /// Per part: each domain's private encoder and decoder layers, the shared blocks once, and the two Ds.
    fn parameter_counts(&self) -> Vec<(&'static str, i64)> {
        let vars: Vec<(String, Tensor)> = self.stores[0].variables().into_iter().collect();
        let part = |prefix: &str| vars.iter().filter(|(n, _)| n.starts_with(prefix)).map(|(_, t)| t.numel() as i64).sum::<i64>();
        let mut out: Vec<(&'static str, i64)> = [
            ("EN_A", "gen_a.enc."),
            ("DE_A", "gen_a.dec."),
            ("EN_B", "gen_b.enc."),
            ("DE_B", "gen_b.dec."),
            ("EN_shared", "shared.enc."),
            ("DE_shared", "shared.dec."),
        ]
        .into_iter()
        .map(|(name, prefix)| (name, part(prefix)))
        .collect();
        out.push(("G_total", vars.iter().map(|(_, t)| t.numel() as i64).sum()));
        for (name, vs) in NAMES[1..].iter().zip(&self.stores[1..]) {
            out.push((name, ganzoo_models::nets::count_parameters(vs)));
        }
        out
    }
}
