//! The pix2pix family (Isola et al. 2017): paired translation A → B with a conditional GAN.
//!
//! Names follow the reference implementation: G (U-Net, A → B) and D (PatchGAN on the pair (A, B) stacked along
//! the channels, the conditional discriminator of eq. 1). One step in the reference's order: G translates the
//! batch once; D's update on (a, b) as real and (a, G(a)) detached as fake, its loss halved; then G's update on
//! the same translation: adversarial + λ·‖G(a) − b‖₁ (eq. 4, λ = 100). G's dropout is its noise (§3.1), drawn
//! from the run's seed and the batch, so a resumed run draws what an uninterrupted one does.
mod config;

pub use config::{Inference, Pix2pixModelConfig};
use crate::config::Settings;
use crate::error::{PipelineError, Result};
use crate::family::{scalar, Batch, CriticInput, Ctx, Family, FamilyConfig, Losses, Net, Role, Translate, Update};
use crate::translation::{domains, l1, two_domain_family_methods};
use ganzoo_data::source::{Part, Source};
use ganzoo_models::cyclegan::PatchDiscriminator;
use ganzoo_models::init::init_normal;
use ganzoo_models::losses::Target;
use ganzoo_models::pix2pix::{Run, UnetGenerator};
use ganzoo_models::rng::derived_rng;
use std::collections::HashMap;
use std::path::Path;
use tch::nn::VarStore;
use tch::{Device, Tensor};

impl FamilyConfig for Pix2pixModelConfig {
    fn problems(&self, _family: &'static str, s: &Settings, p: &mut Vec<String>) {
        self.check(s, p);
    }

    fn build(&self, _family: &'static str, s: &Settings, device: Device, with_data: bool, _run_dir: Option<&Path>) -> Result<Box<dyn Family>> {
        Ok(Box::new(Pix2pix::new(s, self, device, with_data)?))
    }
}

/// The pix2pix family in training.
pub struct Pix2pix {
    s: Settings,
    m: Pix2pixModelConfig,
    device: Device,
    stores: [VarStore; 2],
    g: UnetGenerator,
    d: PatchDiscriminator,
    source: Option<Source>,
    /// G(a) of D's update, with its graph, for G's update of the same batch (the reference translates once a
    /// step); by draw.
    fakes: HashMap<i64, Tensor>,
}

const NAMES: [&str; 2] = ["G", "D"];

/// What D judges: the input and an output stacked along the channels, (N, 2C, H, W).
fn pair(a: &Tensor, b: &Tensor) -> Tensor {
    Tensor::cat(&[a, b], 1)
}

impl Pix2pix {
    pub fn new(s: &Settings, m: &Pix2pixModelConfig, device: Device, with_data: bool) -> Result<Self> {
        let c = s.shape().channels;
        let stores = [VarStore::new(device), VarStore::new(device)];
        let g = m.generator.build(&stores[0].root(), c, c)?;
        let d = m.discriminator.build(&stores[1].root(), 2 * c, s.loss.spectral_norm)?;
        for (vs, name) in stores.iter().zip(NAMES) {
            init_normal(vs, &mut derived_rng(s.seed, &format!("init_{name}"), 0), m.init_std);
        }
        if s.loss.spectral_norm {
            ganzoo_models::spectral::warm_up(&stores[1], 15); // σ converged for the re-initialized weights
        }
        let train = Part { paired: true, ..Part::train() };
        let source = if with_data { Some(ganzoo_data::open(&s.data, train, s.seed)?) } else { None };
        Ok(Pix2pix { s: s.clone(), m: m.clone(), device, stores, g, d, source, fakes: HashMap::new() })
    }

    /// G(a) of a training batch, with dropout noise drawn for the batch.
    fn fake(&self, a: &Tensor, draw: i64) -> Tensor {
        self.g.forward(a, Run::Train, Some(&mut derived_rng(self.s.seed, "dropout_G", draw as u64))) // (N, C, H, W)
    }
}

impl Translate for Pix2pix {
    /// A → B by G, as `model.inference` says: the paper's way image by image, or evaluation mode.
    fn translate(&self, x: &Tensor, _a2b: bool) -> Tensor {
        tch::no_grad(|| match self.m.inference {
            Inference::Eval => self.g.forward(x, Run::Eval, None),
            Inference::Paper => {
                let outs: Vec<Tensor> = (0..x.size()[0])
                    .map(|i| {
                        let mut noise = derived_rng(self.s.seed, "dropout_test", i as u64);
                        self.g.forward(&x.narrow(0, i, 1), Run::Test, Some(&mut noise)) // (1, C, H, W)
                    })
                    .collect();
                Tensor::cat(&outs, 0) // (N, C, H, W)
            }
        })
    }

    fn both_ways(&self) -> bool {
        false
    }

    fn side_multiple(&self) -> i64 {
        self.m.generator.side_multiple()
    }
}

impl Family for Pix2pix {
    fn networks(&self) -> Vec<Net<'_>> {
        let t = &self.s.train;
        vec![
            Net { name: "G", role: Role::Generator, vs: &self.stores[0], opt: Some(("opt_G", t.g_optimizer.clone())) },
            Net { name: "D", role: Role::Discriminator, vs: &self.stores[1], opt: Some(("opt_D", t.d_optimizer.clone())) },
        ]
    }

    fn train_source(&self) -> Option<Source> {
        self.source.clone()
    }

    fn begin_step(&mut self, _step: i64) -> Result<Losses> {
        self.fakes.clear();
        Ok(Losses::new())
    }

    /// ½·(ℓ(D(a, b), real) + ℓ(D(a, G(a)), fake)), G(a) detached (the reference's backward_D).
    fn d_loss(&mut self, batch: &Batch, ctx: &Ctx) -> Result<Update> {
        let (real_a, real_b) = domains(&batch.x); // (N, C, H, W) each
        let adv = self.s.loss.adversarial;
        let fake_b = match self.fakes.get(&batch.draw) {
            Some(f) => f.shallow_clone(),
            None => {
                let f = self.fake(&real_a, batch.draw);
                self.fakes.insert(batch.draw, f.shallow_clone());
                f
            }
        };
        let (real, fake) = (pair(&real_a, &real_b), pair(&real_a, &fake_b.detach())); // (N, 2C, H, W) each
        let d_real = self.d.forward_t(&ctx.d_input(&real)?, true); // (N, 1, H', W')
        let d_fake = self.d.forward_t(&ctx.d_input(&fake)?, true); // same
        let loss = (adv.d_term(&d_fake, Target::Fake) + adv.d_term(&d_real, Target::Real)) * 0.5;
        let mut logs = Losses::new();
        logs.insert("loss_D".into(), scalar(&loss));
        logs.insert("D_real".into(), scalar(&d_real.mean(tch::Kind::Float)));
        logs.insert("D_fake".into(), scalar(&d_fake.mean(tch::Kind::Float)));
        let mut u = Update::new(loss, logs);
        u.critics.push(CriticInput { d: "D", real, fake, cond: None });
        Ok(u)
    }

    /// ℓ(D(a, G(a)), real) + λ·‖G(a) − b‖₁ (eq. 4; the reference's backward_G).
    fn g_loss(&mut self, batch: &Batch, ctx: &Ctx) -> Result<Update> {
        let (real_a, real_b) = domains(&batch.x); // (N, C, H, W) each
        let fake_b = match self.fakes.remove(&batch.draw) {
            Some(f) => f,
            None => self.fake(&real_a, batch.draw),
        };
        let gan = self.s.loss.adversarial.g_loss(&self.d.forward_t(&ctx.d_input(&pair(&real_a, &fake_b))?, true));
        let rec = l1(&fake_b, &real_b);
        let loss = &gan + &rec * self.m.lambda_l1;
        let mut logs = Losses::new();
        logs.insert("G_GAN".into(), scalar(&gan));
        logs.insert("G_L1".into(), scalar(&rec));
        logs.insert("loss_G".into(), scalar(&loss));
        Ok(Update::new(loss, logs))
    }

    fn critic(&self, d: &str, x: &Tensor, _cond: Option<&Tensor>) -> Result<Tensor> {
        match d {
            "D" => Ok(self.d.forward_t(x, true)),
            other => Err(PipelineError::Runtime(format!("pix2pix has no discriminator `{other}`"))),
        }
    }

    two_domain_family_methods!();
}
