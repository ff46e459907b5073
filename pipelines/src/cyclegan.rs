//! The CycleGAN family (Zhu et al. 2017): unpaired translation between domains A and B.
//!
//! Names follow the reference implementation: G_A (the paper's G: A → B), G_B (F: B → A), D_A (D_Y, judges
//! B), D_B (D_X, judges A). One step: the generators' update (adversarial + cycle λ·‖F(G(a)) − a‖₁ +
//! identity λ·λ_idt·‖G(b) − b‖₁, eq. 3 and §5.2), then the discriminators' (each loss halved, fakes drawn from a
//! history pool of 50, Shrivastava et al. 2017). Each network has its own Adam: with per-parameter state
//! that equals the reference's one Adam over both generators (and over both discriminators).
use crate::config::{Config, CycleganModelConfig, ModelConfig};
use crate::error::{PipelineError, Result};
use crate::family::{Losses, Trainable};
use crate::feed::Feed;
use crate::translation::{evaluate, grid, l1, scalar, summarize, test_pairs, Translate};
pub use crate::translation::open_domains;
use ganzoo_data::unpaired::Split;
use ganzoo_models::cyclegan::{PatchDiscriminator, ResnetGenerator};
use ganzoo_models::init::init_normal;
use ganzoo_models::losses::Target;
use ganzoo_models::optim::Optimizer;
use ganzoo_models::rng::derived_rng;
use rand::Rng;
use std::collections::HashMap;
use std::path::Path;
use tch::nn::VarStore;
use tch::{Device, Tensor};

/// Test pairs shown in the sample grid.
const GRID_ROWS: usize = 4;

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
    cfg: Config,
    m: CycleganModelConfig,
    device: Device,
    stores: [VarStore; 4],
    g_a: ResnetGenerator,
    g_b: ResnetGenerator,
    d_a: PatchDiscriminator,
    d_b: PatchDiscriminator,
    opts: Vec<Optimizer>,
    pool_a: ImagePool,
    pool_b: ImagePool,
    train: Option<Feed>,
}

const NAMES: [&str; 4] = ["G_A", "G_B", "D_A", "D_B"];

impl CycleGan {
    pub fn new(cfg: &Config, device: Device, with_data: bool) -> Result<Self> {
        let ModelConfig::Cyclegan(m) = &cfg.model else {
            return Err(PipelineError::Runtime(format!("family {} is not cyclegan", cfg.model.family())));
        };
        let c = cfg.data.shape().channels;
        let stores = [VarStore::new(device), VarStore::new(device), VarStore::new(device), VarStore::new(device)];
        let g_a = m.generator.build(&stores[0].root(), c, c)?;
        let g_b = m.generator.build(&stores[1].root(), c, c)?;
        let d_a = m.discriminator.build(&stores[2].root(), c)?;
        let d_b = m.discriminator.build(&stores[3].root(), c)?;
        for (vs, name) in stores.iter().zip(NAMES) {
            init_normal(vs, &mut derived_rng(cfg.seed, &format!("init_{name}"), 0), m.init_std);
        }
        let opts = stores
            .iter()
            .zip([&cfg.train.g_optimizer, &cfg.train.g_optimizer, &cfg.train.d_optimizer, &cfg.train.d_optimizer])
            .map(|(vs, o)| Optimizer::new(vs, o))
            .collect();
        let train = if with_data { Some(Feed::new(cfg, open_domains(cfg, Split::Train, false)?)) } else { None };
        let pool = || ImagePool { size: m.pool_size, images: Vec::new() };
        Ok(CycleGan { cfg: cfg.clone(), m: m.clone(), device, stores, g_a, g_b, d_a, d_b, opts, pool_a: pool(), pool_b: pool(), train })
    }

    fn next_batch(&mut self, step: i64) -> Result<(Tensor, Tensor)> {
        let feed = self.train.as_mut().ok_or_else(|| PipelineError::Runtime("no training data opened".into()))?;
        let x = feed.next(step)?.to_device(self.device); // (N, 2, C, H, W)
        Ok((x.select(1, 0), x.select(1, 1)))
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

impl Trainable for CycleGan {
    fn stores(&self) -> Vec<(&'static str, &VarStore)> {
        NAMES.iter().copied().zip(self.stores.iter()).collect()
    }

    fn optimizers(&self) -> Vec<(&'static str, &Optimizer)> {
        ["opt_G_A", "opt_G_B", "opt_D_A", "opt_D_B"].into_iter().zip(self.opts.iter()).collect()
    }

    fn optimizers_mut(&mut self) -> Vec<(&'static str, &mut Optimizer)> {
        ["opt_G_A", "opt_G_B", "opt_D_A", "opt_D_B"].into_iter().zip(self.opts.iter_mut()).collect()
    }

    fn train_step(&mut self, step: i64) -> Result<Losses> {
        let (real_a, real_b) = self.next_batch(step)?; // (N, C, H, W) each
        let adv = self.cfg.loss.adversarial;
        let (la, lb, li) = (self.m.lambda_a, self.m.lambda_b, self.m.lambda_identity);
        let mut losses = Losses::new();

        // Generators, with the discriminators' weights frozen.
        self.stores[2].freeze();
        self.stores[3].freeze();
        let fake_b = self.g_a.forward_t(&real_a, true); // G(a)
        let rec_a = self.g_b.forward_t(&fake_b, true); // F(G(a))
        let fake_a = self.g_b.forward_t(&real_b, true); // F(b)
        let rec_b = self.g_a.forward_t(&fake_a, true); // G(F(b))
        let mut loss_g = adv.g_loss(&self.d_a.forward_t(&fake_b, true)) + adv.g_loss(&self.d_b.forward_t(&fake_a, true));
        let cycle = l1(&rec_a, &real_a) * la + l1(&rec_b, &real_b) * lb;
        losses.insert("cycle_A".into(), scalar(&l1(&rec_a, &real_a)));
        losses.insert("cycle_B".into(), scalar(&l1(&rec_b, &real_b)));
        loss_g += &cycle;
        if li > 0.0 {
            let idt = l1(&self.g_a.forward_t(&real_b, true), &real_b) * (lb * li)
                + l1(&self.g_b.forward_t(&real_a, true), &real_a) * (la * li);
            losses.insert("idt".into(), scalar(&idt));
            loss_g += idt;
        }
        for o in &mut self.opts[..2] {
            o.zero_grad();
        }
        loss_g.backward();
        for o in &mut self.opts[..2] {
            o.step()?;
        }
        self.stores[2].unfreeze();
        self.stores[3].unfreeze();

        // Discriminators on real images and on fakes from the history pools; each loss halved.
        let seed = self.cfg.seed;
        let pooled_b = self.pool_b.query(&fake_b.detach(), &mut derived_rng(seed, "pool_B", step as u64));
        let pooled_a = self.pool_a.query(&fake_a.detach(), &mut derived_rng(seed, "pool_A", step as u64));
        let loss_d_a = (adv.d_term(&self.d_a.forward_t(&real_b, true), Target::Real)
            + adv.d_term(&self.d_a.forward_t(&pooled_b, true), Target::Fake))
            * 0.5;
        let loss_d_b = (adv.d_term(&self.d_b.forward_t(&real_a, true), Target::Real)
            + adv.d_term(&self.d_b.forward_t(&pooled_a, true), Target::Fake))
            * 0.5;
        for o in &mut self.opts[2..] {
            o.zero_grad();
        }
        (&loss_d_a + &loss_d_b).backward();
        for o in &mut self.opts[2..] {
            o.step()?;
        }
        losses.insert("loss_G".into(), scalar(&loss_g));
        losses.insert("loss_D_A".into(), scalar(&loss_d_a));
        losses.insert("loss_D_B".into(), scalar(&loss_d_b));
        Ok(losses)
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
