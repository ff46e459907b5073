//! CUT and FastCUT (Park, Efros, Zhang & Zhu 2020): unpaired translation A → B with one generator, an
//! adversarial loss and PatchNCE, a contrastive loss between patches of the input and the same patches of its
//! translation, in G's own encoder features through the MLP heads of F.
//!
//! One step in the authors' order (`cut_model.py`, `optimize_parameters`): G translates the batch once (with
//! `nce_idt` the B images too, for the identity term); D's update on real B and the translations detached,
//! LSGAN, halved; then G's and F's update (D frozen): λ_GAN·ℓ(D(G(a)), real) + PatchNCE(a, G(a)), averaged with
//! PatchNCE(b, G(b)) when `nce_idt`. PatchNCE at each of `nce_layers` samples `num_patches` positions (the same
//! for both images of a pair, fresh for every call, drawn from the seed and the batch), takes the positive from
//! the input and the negatives from the other positions of the same image (eq. 2 and 5), and averages over the
//! layers. FastCUT's flip-equivariance flips a step's inputs with probability ½ and the query features back.
//!
//! Deviation: the reference creates F's heads lazily at its first forward; here they are built from the config
//! (the channels of the tapped layers), with the same names and initialization.
mod config;

pub use config::CutModelConfig;
use crate::config::Settings;
use crate::error::{PipelineError, Result};
use crate::family::{scalar, Batch, CriticInput, Ctx, Family, FamilyConfig, Losses, Net, Role, Translate, Update};
use crate::translation::{domains, two_domain_family_methods};
use ganzoo_data::source::{Part, Source};
use ganzoo_models::cut::{patch_ids, patch_nce, PatchSampler};
use ganzoo_models::cyclegan::{PatchDiscriminator, ResnetGenerator};
use ganzoo_models::init::init_xavier_normal;
use ganzoo_models::losses::Target;
use ganzoo_models::rng::derived_rng;
use rand::Rng;
use std::collections::HashMap;
use std::path::Path;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

impl FamilyConfig for CutModelConfig {
    fn problems(&self, _family: &'static str, s: &Settings, p: &mut Vec<String>) {
        self.check(s, p);
    }

    fn build(&self, _family: &'static str, s: &Settings, device: Device, with_data: bool, _run_dir: Option<&Path>) -> Result<Box<dyn Family>> {
        Ok(Box::new(Cut::new(s, self, device, with_data)?))
    }
}

/// What G's single translation of a step leaves for the two updates.
struct Forward {
    /// G(a) (with its graph).
    fake_b: Tensor,
    /// G(b), for the identity term.
    idt_b: Option<Tensor>,
    /// Whether the step's inputs were flipped (flip-equivariance).
    flipped: bool,
}

/// The CUT family in training.
pub struct Cut {
    s: Settings,
    m: CutModelConfig,
    device: Device,
    stores: [VarStore; 3],
    g: ResnetGenerator,
    f: PatchSampler,
    d: PatchDiscriminator,
    source: Option<Source>,
    forwards: HashMap<i64, Forward>,
}

const NAMES: [&str; 3] = ["G", "F", "D"];

impl Cut {
    pub fn new(s: &Settings, m: &CutModelConfig, device: Device, with_data: bool) -> Result<Self> {
        let c = s.shape().channels;
        let stores = [VarStore::new(device), VarStore::new(device), VarStore::new(device)];
        let g = m.generator.build(&stores[0].root(), c, c)?;
        let f = PatchSampler::new(&stores[1].root(), &m.tap_channels(c), m.netf_nc)?;
        let d = m.discriminator.build(&stores[2].root(), c, s.loss.spectral_norm)?;
        for (vs, name) in stores.iter().zip(NAMES) {
            init_xavier_normal(vs, &mut derived_rng(s.seed, &format!("init_{name}"), 0), m.init_gain);
        }
        if s.loss.spectral_norm {
            ganzoo_models::spectral::warm_up(&stores[2], 15); // σ converged for the re-initialized weights
        }
        let source = if with_data { Some(ganzoo_data::open(&s.data, Part::train(), s.seed)?) } else { None };
        Ok(Cut { s: s.clone(), m: m.clone(), device, stores, g, f, d, source, forwards: HashMap::new() })
    }

    /// G's translation of a training batch: a (and b with `nce_idt`), flipped left-right on a seeded coin with
    /// flip-equivariance.
    fn forward(&self, a: &Tensor, b: &Tensor, draw: i64) -> Forward {
        let real = if self.m.nce_idt { Tensor::cat(&[a, b], 0) } else { a.shallow_clone() }; // (N or 2N, C, H, W)
        let flipped = self.m.flip_equivariance && derived_rng(self.s.seed, "flip_equivariance", draw as u64).gen_bool(0.5);
        let real = if flipped { real.flip([3]) } else { real };
        let fake = self.g.forward_t(&real, true); // same
        let n = a.size()[0];
        let idt_b = self.m.nce_idt.then(|| fake.narrow(0, n, n));
        Forward { fake_b: fake.narrow(0, 0, n), idt_b, flipped }
    }

    /// PatchNCE of translations `tgt` against their inputs `src` (the CUT code's `calculate_NCE_loss`): the mean
    /// over `nce_layers` of λ_NCE · the mean patch loss; positions drawn from `stream`.
    fn nce(&self, src: &Tensor, tgt: &Tensor, flipped: bool, stream: &str, draw: i64) -> Result<Tensor> {
        let layers = &self.m.nce_layers;
        let mut q = self.g.features(tgt, layers, true)?; // per layer (N, C_l, H_l, W_l)
        if flipped {
            q = q.iter().map(|t| t.flip([3])).collect();
        }
        let k = self.g.features(src, layers, true)?;
        let mut rng = derived_rng(self.s.seed, stream, draw as u64);
        let ids: Vec<Tensor> = k.iter().map(|t| patch_ids(&mut rng, t.size()[2] * t.size()[3], self.m.num_patches)).collect();
        let (fq, fk) = (self.f.forward(&q, &ids)?, self.f.forward(&k, &ids)?); // per layer (N·P_l, nc)
        let n = src.size()[0];
        let mut total = Tensor::zeros([], (Kind::Float, src.device()));
        for (q, k) in fq.iter().zip(&fk) {
            total += patch_nce(q, k, n, self.m.nce_t).mean(Kind::Float) * self.m.lambda_nce;
        }
        Ok(total / layers.len().max(1) as f64)
    }
}

impl Translate for Cut {
    fn translate(&self, x: &Tensor, _a2b: bool) -> Tensor {
        tch::no_grad(|| self.g.forward_t(x, false))
    }

    fn both_ways(&self) -> bool {
        false
    }
}

impl Family for Cut {
    fn networks(&self) -> Vec<Net<'_>> {
        let t = &self.s.train;
        vec![
            Net { name: "G", role: Role::Generator, vs: &self.stores[0], opt: Some(("opt_G", t.g_optimizer.clone())) },
            // F is trained with G, by G's optimizer settings (the CUT code's optimizer_F).
            Net { name: "F", role: Role::Encoder, vs: &self.stores[1], opt: Some(("opt_F", t.g_optimizer.clone())) },
            Net { name: "D", role: Role::Discriminator, vs: &self.stores[2], opt: Some(("opt_D", t.d_optimizer.clone())) },
        ]
    }

    fn train_source(&self) -> Option<Source> {
        self.source.clone()
    }

    fn begin_step(&mut self, _step: i64) -> Result<Losses> {
        self.forwards.clear();
        Ok(Losses::new())
    }

    /// ½·(ℓ(D(G(a)), fake) + ℓ(D(b), real)), G(a) detached (the CUT code's compute_D_loss).
    fn d_loss(&mut self, batch: &Batch, ctx: &Ctx) -> Result<Update> {
        let (real_a, real_b) = domains(&batch.x); // (N, C, H, W) each
        if !self.forwards.contains_key(&batch.draw) {
            let f = self.forward(&real_a, &real_b, batch.draw);
            self.forwards.insert(batch.draw, f);
        }
        let fake = self.forwards[&batch.draw].fake_b.detach();
        let adv = self.s.loss.adversarial;
        let d_fake = self.d.forward_t(&ctx.d_input(&fake)?, true); // (N, 1, H', W')
        let d_real = self.d.forward_t(&ctx.d_input(&real_b)?, true); // same
        let loss = (adv.d_term(&d_fake, Target::Fake) + adv.d_term(&d_real, Target::Real)) * 0.5;
        let mut logs = Losses::new();
        logs.insert("loss_D".into(), scalar(&loss));
        logs.insert("D_real".into(), scalar(&d_real.mean(Kind::Float)));
        logs.insert("D_fake".into(), scalar(&d_fake.mean(Kind::Float)));
        let mut u = Update::new(loss, logs);
        u.critics.push(CriticInput { d: "D", real: real_b, fake, cond: None });
        Ok(u)
    }

    /// λ_GAN·ℓ(D(G(a)), real) + PatchNCE(a, G(a)) (averaged with PatchNCE(b, G(b)) when `nce_idt`).
    fn g_loss(&mut self, batch: &Batch, ctx: &Ctx) -> Result<Update> {
        let (real_a, real_b) = domains(&batch.x); // (N, C, H, W) each
        let fw = match self.forwards.remove(&batch.draw) {
            Some(f) => f,
            None => self.forward(&real_a, &real_b, batch.draw),
        };
        let mut logs = Losses::new();
        let mut loss = Tensor::zeros([], (Kind::Float, real_a.device()));
        if self.m.lambda_gan > 0.0 {
            let gan = self.s.loss.adversarial.g_loss(&self.d.forward_t(&ctx.d_input(&fw.fake_b)?, true)) * self.m.lambda_gan;
            logs.insert("G_GAN".into(), scalar(&gan));
            loss += gan;
        }
        if self.m.lambda_nce > 0.0 {
            let nce = self.nce(&real_a, &fw.fake_b, fw.flipped, "patches", batch.draw)?;
            logs.insert("NCE".into(), scalar(&nce));
            match &fw.idt_b {
                Some(idt) => {
                    let nce_y = self.nce(&real_b, idt, fw.flipped, "patches_idt", batch.draw)?;
                    logs.insert("NCE_Y".into(), scalar(&nce_y));
                    loss += (nce + nce_y) * 0.5;
                }
                None => loss += nce,
            }
        }
        logs.insert("loss_G".into(), scalar(&loss));
        Ok(Update::new(loss, logs))
    }

    fn critic(&self, d: &str, x: &Tensor, _cond: Option<&Tensor>) -> Result<Tensor> {
        match d {
            "D" => Ok(self.d.forward_t(x, true)),
            other => Err(PipelineError::Runtime(format!("cut has no discriminator `{other}`"))),
        }
    }

    two_domain_family_methods!();
}
