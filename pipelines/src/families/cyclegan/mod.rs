//! The CycleGAN family (Zhu et al. 2017): unpaired translation between domains A and B.
//!
//! Names follow the reference implementation: G_A (the paper's G: A → B), G_B (F: B → A), D_A (D_Y, judges
//! B), D_B (D_X, judges A). One step: the generators' update (adversarial + cycle λ·‖F(G(a)) − a‖₁ +
//! identity λ·λ_idt·‖G(b) − b‖₁, eq. 3 and §5.2), then the discriminators' (each loss halved, fakes drawn from a
//! history pool of 50, Shrivastava et al. 2017). Each network has its own Adam: with per-parameter state
//! that equals the reference's one Adam over both generators (and over both discriminators).
mod config;

pub use config::CycleganModelConfig;
use crate::config::Settings;
use crate::error::{PipelineError, Result};
use crate::family::{scalar, Batch, CriticInput, Ctx, Family, FamilyConfig, Losses, Net, Phase, Role, Translate, Update};
use crate::translation::{domains, l1, two_domain_family_methods};
use ganzoo_data::source::{Part, Source};
use ganzoo_models::cyclegan::{PatchDiscriminator, ResnetGenerator};
use ganzoo_models::init::init_normal;
use ganzoo_models::losses::Target;
use ganzoo_models::rng::derived_rng;
use rand::Rng;
use std::collections::HashMap;
use std::path::Path;
use tch::nn::VarStore;
use tch::{Device, Tensor};

impl FamilyConfig for CycleganModelConfig {
    fn problems(&self, _family: &'static str, s: &Settings, p: &mut Vec<String>) {
        self.check(s, p);
    }

    fn build(&self, _family: &'static str, s: &Settings, device: Device, with_data: bool, _run_dir: Option<&Path>) -> Result<Box<dyn Family>> {
        Ok(Box::new(CycleGan::new(s, self, device, with_data)?))
    }
}

/// The reference's ImagePool: once full, each new image is returned with p = 0.5, otherwise it replaces a
/// random stored image, which is returned instead.
struct ImagePool {
    size: usize,
    images: Vec<Tensor>,
}

impl ImagePool {
    fn query(&mut self, batch: &Tensor, rng: &mut rand_chacha::ChaCha8Rng) -> Tensor {
        if self.size == 0 {
            return batch.shallow_clone();
        }
        let n = batch.size()[0];
        let mut out = Vec::with_capacity(n as usize);
        for i in 0..n {
            let img = batch.get(i).detach().copy(); // (C, H, W)
            if self.images.len() < self.size {
                self.images.push(img.shallow_clone());
                out.push(img);
            } else if rng.gen::<f64>() > 0.5 {
                let j = rng.gen_range(0..self.size);
                out.push(std::mem::replace(&mut self.images[j], img));
            } else {
                out.push(img);
            }
        }
        Tensor::stack(&out, 0) // (N, C, H, W)
    }

    fn state(&self, name: &str) -> Vec<(String, Tensor)> {
        if self.images.is_empty() {
            return Vec::new();
        }
        vec![(name.to_string(), Tensor::stack(&self.images, 0))]
    }

    fn load(&mut self, tensors: &HashMap<String, Tensor>, name: &str, device: Device) {
        self.images = match tensors.get(name) {
            Some(t) => (0..t.size()[0]).map(|i| t.get(i).to_device(device)).collect(),
            None => Vec::new(),
        };
    }
}

/// The CycleGAN family in training.
pub struct CycleGan {
    s: Settings,
    m: CycleganModelConfig,
    device: Device,
    stores: [VarStore; 4],
    g_a: ResnetGenerator,
    g_b: ResnetGenerator,
    d_a: PatchDiscriminator,
    d_b: PatchDiscriminator,
    pool_a: ImagePool,
    pool_b: ImagePool,
    source: Option<Source>,
    /// The translations of G's update (F(b), G(a)), detached, for D's update of the same batch; by draw.
    fakes: HashMap<i64, (Tensor, Tensor)>,
}

const NAMES: [&str; 4] = ["G_A", "G_B", "D_A", "D_B"];

impl CycleGan {
    pub fn new(s: &Settings, m: &CycleganModelConfig, device: Device, with_data: bool) -> Result<Self> {
        let c = s.shape().channels;
        let stores = [VarStore::new(device), VarStore::new(device), VarStore::new(device), VarStore::new(device)];
        let g_a = m.generator.build(&stores[0].root(), c, c)?;
        let g_b = m.generator.build(&stores[1].root(), c, c)?;
        let d_a = m.discriminator.build(&stores[2].root(), c, s.loss.spectral_norm)?;
        let d_b = m.discriminator.build(&stores[3].root(), c, s.loss.spectral_norm)?;
        for (vs, name) in stores.iter().zip(NAMES) {
            init_normal(vs, &mut derived_rng(s.seed, &format!("init_{name}"), 0), m.init_std);
        }
        if s.loss.spectral_norm {
            for vs in &stores[2..] {
                ganzoo_models::spectral::warm_up(vs, 15); // σ converged for the re-initialized weights
            }
        }
        let source = if with_data { Some(ganzoo_data::open(&s.data, Part::train(), s.seed)?) } else { None };
        let pool = || ImagePool { size: m.pool_size, images: Vec::new() };
        Ok(CycleGan { s: s.clone(), m: m.clone(), device, stores, g_a, g_b, d_a, d_b, pool_a: pool(), pool_b: pool(), source, fakes: HashMap::new() })
    }

    /// Translates a batch: `a2b` uses G_A, otherwise G_B; evaluation mode, no gradients.
    pub fn translate(&self, x: &Tensor, a2b: bool) -> Tensor {
        tch::no_grad(|| if a2b { self.g_a.forward_t(x, false) } else { self.g_b.forward_t(x, false) })
    }
}

impl Translate for CycleGan {
    fn translate(&self, x: &Tensor, a2b: bool) -> Tensor {
        CycleGan::translate(self, x, a2b)
    }
}

impl Family for CycleGan {
    fn networks(&self) -> Vec<Net<'_>> {
        let t = &self.s.train;
        let opt = |name, g: bool| Some((name, if g { t.g_optimizer.clone() } else { t.d_optimizer.clone() }));
        vec![
            Net { name: "G_A", role: Role::Generator, vs: &self.stores[0], opt: opt("opt_G_A", true) },
            Net { name: "G_B", role: Role::Generator, vs: &self.stores[1], opt: opt("opt_G_B", true) },
            Net { name: "D_A", role: Role::Discriminator, vs: &self.stores[2], opt: opt("opt_D_A", false) },
            Net { name: "D_B", role: Role::Discriminator, vs: &self.stores[3], opt: opt("opt_D_B", false) },
        ]
    }

    /// The reference's order: the generators' update, then the discriminators' on its translations.
    fn phases(&self) -> &'static [Phase] {
        &[Phase::G, Phase::D]
    }

    fn train_source(&self) -> Option<Source> {
        self.source.clone()
    }

    fn begin_step(&mut self, _step: i64) -> Result<Losses> {
        self.fakes.clear();
        Ok(Losses::new())
    }

    /// Adversarial + cycle λ·‖F(G(a)) − a‖₁ + identity λ·λ_idt·‖G(b) − b‖₁ (eq. 3 and §5.2).
    fn g_loss(&mut self, batch: &Batch, ctx: &Ctx) -> Result<Update> {
        let (real_a, real_b) = domains(&batch.x); // (N, C, H, W) each
        let adv = self.s.loss.adversarial;
        let (la, lb, li) = (self.m.lambda_a, self.m.lambda_b, self.m.lambda_identity);
        let mut logs = Losses::new();
        let fake_b = self.g_a.forward_t(&real_a, true); // G(a)
        let rec_a = self.g_b.forward_t(&fake_b, true); // F(G(a))
        let fake_a = self.g_b.forward_t(&real_b, true); // F(b)
        let rec_b = self.g_a.forward_t(&fake_a, true); // G(F(b))
        let mut loss = adv.g_loss(&self.d_a.forward_t(&ctx.d_input(&fake_b)?, true)) + adv.g_loss(&self.d_b.forward_t(&ctx.d_input(&fake_a)?, true));
        let cycle = l1(&rec_a, &real_a) * la + l1(&rec_b, &real_b) * lb;
        logs.insert("cycle_A".into(), scalar(&l1(&rec_a, &real_a)));
        logs.insert("cycle_B".into(), scalar(&l1(&rec_b, &real_b)));
        loss += &cycle;
        if li > 0.0 {
            let idt = l1(&self.g_a.forward_t(&real_b, true), &real_b) * (lb * li) + l1(&self.g_b.forward_t(&real_a, true), &real_a) * (la * li);
            logs.insert("idt".into(), scalar(&idt));
            loss += idt;
        }
        logs.insert("loss_G".into(), scalar(&loss));
        self.fakes.insert(batch.draw, (fake_a.detach(), fake_b.detach()));
        Ok(Update::new(loss, logs))
    }

    /// Each D on real images and on translations from its history pool; each loss halved.
    fn d_loss(&mut self, batch: &Batch, ctx: &Ctx) -> Result<Update> {
        let (real_a, real_b) = domains(&batch.x); // (N, C, H, W) each
        let adv = self.s.loss.adversarial;
        let (fake_a, fake_b) = match self.fakes.remove(&batch.draw) {
            Some(f) => f,
            None => tch::no_grad(|| (self.g_b.forward_t(&real_b, true), self.g_a.forward_t(&real_a, true))),
        };
        let seed = self.s.seed;
        let pooled_b = self.pool_b.query(&fake_b, &mut derived_rng(seed, "pool_B", batch.draw as u64));
        let pooled_a = self.pool_a.query(&fake_a, &mut derived_rng(seed, "pool_A", batch.draw as u64));
        let loss_d_a = (adv.d_term(&self.d_a.forward_t(&ctx.d_input(&real_b)?, true), Target::Real)
            + adv.d_term(&self.d_a.forward_t(&ctx.d_input(&pooled_b)?, true), Target::Fake))
            * 0.5;
        let loss_d_b = (adv.d_term(&self.d_b.forward_t(&ctx.d_input(&real_a)?, true), Target::Real)
            + adv.d_term(&self.d_b.forward_t(&ctx.d_input(&pooled_a)?, true), Target::Fake))
            * 0.5;
        let mut logs = Losses::new();
        logs.insert("loss_D_A".into(), scalar(&loss_d_a));
        logs.insert("loss_D_B".into(), scalar(&loss_d_b));
        let mut u = Update::new(loss_d_a + loss_d_b, logs);
        u.critics.push(CriticInput { d: "D_A", real: real_b, fake: pooled_b, cond: None });
        u.critics.push(CriticInput { d: "D_B", real: real_a, fake: pooled_a, cond: None });
        Ok(u)
    }

    fn critic(&self, d: &str, x: &Tensor, _cond: Option<&Tensor>) -> Result<Tensor> {
        match d {
            "D_A" => Ok(self.d_a.forward_t(x, true)),
            "D_B" => Ok(self.d_b.forward_t(x, true)),
            other => Err(PipelineError::Runtime(format!("cyclegan has no discriminator `{other}`"))),
        }
    }

    two_domain_family_methods!();

    fn extra_state(&self) -> Vec<(String, Tensor)> {
        let mut v = self.pool_a.state("pool_A");
        v.extend(self.pool_b.state("pool_B"));
        v
    }

    fn load_extra_state(&mut self, tensors: &HashMap<String, Tensor>) -> Result<()> {
        self.pool_a.load(tensors, "pool_A", self.device);
        self.pool_b.load(tensors, "pool_B", self.device);
        Ok(())
    }
}
