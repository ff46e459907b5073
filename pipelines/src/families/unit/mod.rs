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
mod config;

pub use config::UnitModelConfig;
use crate::config::Settings;
use crate::error::{PipelineError, Result};
use crate::family::{scalar, Batch, CriticInput, Ctx, Family, FamilyConfig, Losses, Net, Role, Translate, Update};
use crate::translation::{domains, l1, two_domain_family_methods};
use ganzoo_data::source::{Part, Source};
use ganzoo_models::init::init_normal;
use ganzoo_models::losses::{AdvLoss, Target};
use ganzoo_models::rng::{derived_rng, randn};
use ganzoo_models::unit::{init_generators, kl_unit_variance, Domain, MsImageDis, UnitGenerators};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::path::Path;
use tch::nn::VarStore;
use tch::{Device, Tensor};

impl FamilyConfig for UnitModelConfig {
    fn problems(&self, _family: &'static str, s: &Settings, p: &mut Vec<String>) {
        self.check(s, p);
    }

    fn build(&self, _family: &'static str, s: &Settings, device: Device, with_data: bool, _run_dir: Option<&Path>) -> Result<Box<dyn Family>> {
        Ok(Box::new(Unit::new(s, self, device, with_data)?))
    }
}

/// The UNIT family in training.
pub struct Unit {
    s: Settings,
    m: UnitModelConfig,
    device: Device,
    /// G (both domains' encoders and decoders and the shared blocks), D_A, D_B.
    stores: [VarStore; 3],
    g: UnitGenerators,
    d_a: MsImageDis,
    d_b: MsImageDis,
    source: Option<Source>,
    /// The latent-noise stream of each batch: D's update draws first, G's continues it; by draw.
    noise: HashMap<i64, ChaCha8Rng>,
}

const NAMES: [&str; 3] = ["G", "D_A", "D_B"];

/// Σ over D's scales of the D loss term for `target`.
fn d_terms(adv: AdvLoss, scores: &[Tensor], target: Target) -> Tensor {
    scores.iter().map(|s| adv.d_term(s, target)).reduce(|a, b| a + b).unwrap_or_else(|| Tensor::from(0f32))
}

/// Σ over D's scales of the generator loss.
fn g_terms(adv: AdvLoss, scores: &[Tensor]) -> Tensor {
    scores.iter().map(|s| adv.g_loss(s)).reduce(|a, b| a + b).unwrap_or_else(|| Tensor::from(0f32))
}

impl Unit {
    pub fn new(s: &Settings, m: &UnitModelConfig, device: Device, with_data: bool) -> Result<Self> {
        let shape = s.shape();
        let stores = [VarStore::new(device), VarStore::new(device), VarStore::new(device)];
        let g = UnitGenerators::new(&stores[0].root(), &m.generator, shape.channels, shape.height)?;
        let sn = s.loss.spectral_norm;
        let d_a = MsImageDis::new(&stores[1].root(), &m.discriminator, shape.channels, shape.height, sn)?;
        let d_b = MsImageDis::new(&stores[2].root(), &m.discriminator, shape.channels, shape.height, sn)?;
        init_generators(&stores[0], &mut derived_rng(s.seed, "init_G", 0));
        for (vs, name) in stores[1..].iter().zip(&NAMES[1..]) {
            init_normal(vs, &mut derived_rng(s.seed, &format!("init_{name}"), 0), m.d_init_std);
            if sn {
                ganzoo_models::spectral::warm_up(vs, 15); // σ converged for the re-initialized weights
            }
        }
        let source = if with_data { Some(ganzoo_data::open(&s.data, Part::train(), s.seed)?) } else { None };
        Ok(Unit { s: s.clone(), m: m.clone(), device, stores, g, d_a, d_b, source, noise: HashMap::new() })
    }

    /// The latent noise stream of a batch (seeded by its draw, so a resumed run draws the same).
    fn rng(&mut self, draw: i64) -> &mut ChaCha8Rng {
        let seed = self.s.seed;
        self.noise.entry(draw).or_insert_with(|| derived_rng(seed, "unit_noise", draw as u64))
    }

    fn d(&self, which: Domain) -> &MsImageDis {
        match which {
            Domain::A => &self.d_a,
            Domain::B => &self.d_b,
        }
    }
}

/// N(0, I) noise shaped like a latent (N, L, h, w).
fn noise(rng: &mut ChaCha8Rng, like: &Tensor) -> Tensor {
    randn(rng, &like.size(), like.device())
}

impl Translate for Unit {
    fn translate(&self, x: &Tensor, a2b: bool) -> Tensor {
        let (from, to) = if a2b { (Domain::A, Domain::B) } else { (Domain::B, Domain::A) };
        tch::no_grad(|| self.g.translate(x, from, to)) // (N, C, H, W)
    }
}

impl Family for Unit {
    fn networks(&self) -> Vec<Net<'_>> {
        let t = &self.s.train;
        vec![
            Net { name: "G", role: Role::Generator, vs: &self.stores[0], opt: Some(("opt_G", t.g_optimizer.clone())) },
            Net { name: "D_A", role: Role::Discriminator, vs: &self.stores[1], opt: Some(("opt_D_A", t.d_optimizer.clone())) },
            Net { name: "D_B", role: Role::Discriminator, vs: &self.stores[2], opt: Some(("opt_D_B", t.d_optimizer.clone())) },
        ]
    }

    fn train_source(&self) -> Option<Source> {
        self.source.clone()
    }

    fn begin_step(&mut self, _step: i64) -> Result<Losses> {
        self.noise.clear();
        Ok(Losses::new())
    }

    /// 1. The discriminators, on translations made without gradients.
    fn d_loss(&mut self, batch: &Batch, ctx: &Ctx) -> Result<Update> {
        let (real_a, real_b) = domains(&batch.x); // (N, C, H, W) each
        let (adv, w) = (self.s.loss.adversarial, self.m.gan_w);
        let (mu_a, mu_b) = tch::no_grad(|| (self.g.encode(&real_a, Domain::A), self.g.encode(&real_b, Domain::B))); // (N, L, h, w)
        let rng = self.rng(batch.draw);
        let (e_a, e_b) = (noise(rng, &mu_a), noise(rng, &mu_b));
        let (fake_a, fake_b) = tch::no_grad(|| (self.g.decode(&(&mu_b + e_b), Domain::A), self.g.decode(&(&mu_a + e_a), Domain::B))); // B → A, A → B
        let loss_d_a = (d_terms(adv, &self.d_a.forward(&ctx.d_input(&fake_a)?), Target::Fake) + d_terms(adv, &self.d_a.forward(&ctx.d_input(&real_a)?), Target::Real)) * w;
        let loss_d_b = (d_terms(adv, &self.d_b.forward(&ctx.d_input(&fake_b)?), Target::Fake) + d_terms(adv, &self.d_b.forward(&ctx.d_input(&real_b)?), Target::Real)) * w;
        let mut logs = Losses::new();
        logs.insert("loss_D_A".into(), scalar(&loss_d_a));
        logs.insert("loss_D_B".into(), scalar(&loss_d_b));
        let mut u = Update::new(loss_d_a + loss_d_b, logs);
        u.critics.push(CriticInput { d: "D_A", real: real_a, fake: fake_a, cond: None });
        u.critics.push(CriticInput { d: "D_B", real: real_b, fake: fake_b, cond: None });
        Ok(u)
    }

    /// 2. Encoders and decoders (the engine keeps the discriminators frozen).
    fn g_loss(&mut self, batch: &Batch, ctx: &Ctx) -> Result<Update> {
        let (real_a, real_b) = domains(&batch.x); // (N, C, H, W) each
        let adv = self.s.loss.adversarial;
        let m = self.m.clone();
        let mut rng = self.noise.remove(&batch.draw).unwrap_or_else(|| derived_rng(self.s.seed, "unit_noise_g", batch.draw as u64));
        let mut logs = Losses::new();
        let mu_a = self.g.encode(&real_a, Domain::A); // (N, L, h, w)
        let mu_b = self.g.encode(&real_b, Domain::B);
        let z_a = &mu_a + noise(&mut rng, &mu_a);
        let z_b = &mu_b + noise(&mut rng, &mu_b);
        let rec_a = self.g.decode(&z_a, Domain::A); // (N, C, H, W)
        let rec_b = self.g.decode(&z_b, Domain::B);
        let ba = self.g.decode(&z_b, Domain::A);
        let ab = self.g.decode(&z_a, Domain::B);
        let mu_b_rec = self.g.encode(&ba, Domain::A); // B's content, recovered from its A translation
        let mu_a_rec = self.g.encode(&ab, Domain::B);
        let gan = (g_terms(adv, &self.d(Domain::A).forward(&ctx.d_input(&ba)?)), g_terms(adv, &self.d(Domain::B).forward(&ctx.d_input(&ab)?)));
        let recon = (l1(&rec_a, &real_a), l1(&rec_b, &real_b));
        let kl = (kl_unit_variance(&mu_a), kl_unit_variance(&mu_b));
        let kl_cyc = (kl_unit_variance(&mu_a_rec), kl_unit_variance(&mu_b_rec));
        let mut loss = (&gan.0 + &gan.1) * m.gan_w
            + (&recon.0 + &recon.1) * m.recon_x_w
            + (&kl.0 + &kl.1) * m.recon_kl_w
            + (&kl_cyc.0 + &kl_cyc.1) * m.recon_kl_cyc_w;
        if m.recon_x_cyc_w > 0.0 {
            let aba = self.g.decode(&(&mu_a_rec + noise(&mut rng, &mu_a_rec)), Domain::A);
            let bab = self.g.decode(&(&mu_b_rec + noise(&mut rng, &mu_b_rec)), Domain::B);
            let cyc = (l1(&aba, &real_a), l1(&bab, &real_b));
            loss += (&cyc.0 + &cyc.1) * m.recon_x_cyc_w;
            logs.insert("cycle_A".into(), scalar(&cyc.0));
            logs.insert("cycle_B".into(), scalar(&cyc.1));
        }
        for (k, v) in [
            ("gan_A", &gan.0),
            ("gan_B", &gan.1),
            ("recon_A", &recon.0),
            ("recon_B", &recon.1),
            ("kl_A", &kl.0),
            ("kl_B", &kl.1),
            ("kl_cycle_A", &kl_cyc.0),
            ("kl_cycle_B", &kl_cyc.1),
            ("loss_G", &loss),
        ] {
            logs.insert(k.into(), scalar(v));
        }
        Ok(Update::new(loss, logs))
    }

    /// The sum over D's scales of each sample's mean patch score.
    fn critic(&self, d: &str, x: &Tensor, _cond: Option<&Tensor>) -> Result<Tensor> {
        let scores = match d {
            "D_A" => self.d_a.forward(x),
            "D_B" => self.d_b.forward(x),
            other => return Err(PipelineError::Runtime(format!("unit has no discriminator `{other}`"))),
        };
        let n = x.size()[0];
        Ok(scores.iter().map(|s| s.reshape([n, -1]).mean_dim(1, false, s.kind())).reduce(|a, b| a + b).unwrap_or_else(|| x.zeros_like().sum(tch::Kind::Float))) // (N,)
    }

    two_domain_family_methods!();

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
