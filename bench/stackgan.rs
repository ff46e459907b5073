//! `stackgan`: one StackGAN training step of Stage-I (64×64) and of Stage-II (256×256 on a frozen Stage-I G) at
//! the authors' birds widths, ours (models/src/stackgan.rs with our Adam) against bench/stackgan_step.py (the same
//! networks, imported from models/golden/stackgan_golden.py, and the same step in PyTorch), alternating rounds.
//!
//! The step (the authors' trainer): x and the text embeddings e (random, 1024-d, standing in for CUB's
//! char-CNN-RNN embeddings) sliced from a CPU pool of 4 batches and copied to the device; e_wrong = e shifted by
//! one in the batch; z, ε ~ N(0, 1); fake, μ, log σ = G1(z, e, ε) (stage 2: G2(G1(z, e, ε₁) in evaluation mode
//! without gradients, e, ε₂)); D loss = BCE(D(x, e), 1) + ½(BCE(D(x, e_wrong), 0) + BCE(D(fake.detach(), e), 0))
//! with x's features computed once; Adam on D; D frozen, G loss = BCE(D(fake, e), 1) + 2·KL; Adam on G.
//! Peak memory: the PyTorch script's peak RSS, and ours as this process's peak RSS (VmHWM) after the stage's
//! rounds (stage 1 runs first, so stage 2's figure is the larger of the two).
use crate::device;
use crate::{header_columns, legend, loadavg, machine, python, row_columns, Opts, Samples};
use anyhow::Result;
use ganzoo_models::cond::CondDiscriminator;
use ganzoo_models::losses::{AdvLoss, Target};
use ganzoo_models::nets::count_parameters;
use ganzoo_models::optim::{Optimizer, OptimizerConfig};
use ganzoo_models::rng::{derived_rng, randn};
use ganzoo_models::stackgan::{kl_loss, Stage1Generator, Stage2Generator, StackDOptions, StackDiscriminator, StackGanNetConfig};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const EMB_DIM: i64 = 1024;
const POOL: i64 = 4;
const BCE: AdvLoss = AdvLoss::NonSaturating;

pub struct Step {
    g1_vs: VarStore,
    g1: Stage1Generator,
    g2: Option<(VarStore, Stage2Generator)>,
    d_vs: VarStore,
    d: StackDiscriminator,
    opt_g: Optimizer,
    opt_d: Optimizer,
    images: Tensor,
    emb: Tensor,
    batch: i64,
    device: Device,
    cfg: StackGanNetConfig,
}

impl Step {
    /// Stage `stage` (1 or 2) at the birds widths on `device`, DCGAN init from seed 0.
    pub fn new(stage: u8, batch: i64, device: Device) -> Result<Self> {
        let cfg = StackGanNetConfig::default();
        let g1_vs = VarStore::new(device);
        let g1 = Stage1Generator::new(&g1_vs.root(), &cfg, EMB_DIM)?;
        let g2 = if stage == 2 {
            let vs = VarStore::new(device);
            let g = Stage2Generator::new(&vs.root(), &cfg, EMB_DIM)?;
            Some((vs, g))
        } else {
            None
        };
        let d_vs = VarStore::new(device);
        let d = StackDiscriminator::new(&d_vs.root(), &cfg, EMB_DIM, &StackDOptions::default(), stage == 2)?;
        ganzoo_models::init::init_dcgan(&g1_vs, &mut derived_rng(0, "init_G1", 0));
        ganzoo_models::init::init_dcgan(&d_vs, &mut derived_rng(0, "init_D", 0));
        if let Some((vs, _)) = &g2 {
            ganzoo_models::init::init_dcgan(vs, &mut derived_rng(0, "init_G2", 0));
        }
        let mut g1_vs = g1_vs;
        if g2.is_some() {
            g1_vs.freeze();
        }
        let adam = OptimizerConfig::Adam { lr: 2e-4, betas: (0.5, 0.999), eps: 1e-8, weight_decay: 0.0 };
        let opt_g = Optimizer::new(g2.as_ref().map_or(&g1_vs, |(vs, _)| vs), &adam);
        let opt_d = Optimizer::new(&d_vs, &adam);
        tch::manual_seed(0);
        let size = if stage == 2 { cfg.stage2_size() } else { cfg.stage1_size };
        let images = Tensor::rand([POOL * batch, 3, size, size], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let emb = Tensor::randn([POOL * batch, EMB_DIM], (Kind::Float, Device::Cpu));
        Ok(Step { g1_vs, g1, g2, d_vs, d, opt_g, opt_d, images, emb, batch, device, cfg })
    }

    /// Parameters of the trained G and D.
    pub fn counts(&self) -> (i64, i64) {
        (count_parameters(self.g2.as_ref().map_or(&self.g1_vs, |(vs, _)| vs)), count_parameters(&self.d_vs))
    }

    /// One training step; returns (loss_D, loss_G).
    pub fn step(&mut self, s: i64) -> Result<(f64, f64)> {
        let (n, dev, ef) = (self.batch, self.device, self.cfg.ef_dim);
        let start = (s % POOL) * n;
        let x = self.images.narrow(0, start, n).to_device(dev); // (N, 3, S, S)
        let e = self.emb.narrow(0, start, n).to_device(dev); // (N, 1024)
        let e_wrong = e.roll([1], [0]); // (N, 1024)
        let mut rng = derived_rng(0, "noise", s as u64);
        let z = randn(&mut rng, &[n, self.cfg.z_dim], dev); // (N, 100)
        let e1 = randn(&mut rng, &[n, ef], dev); // (N, 128)
        let (fake, mu, ls) = match &self.g2 {
            None => self.g1.forward_t(&z, &e, &e1, true), // (N, 3, 64, 64)
            Some((_, g2)) => {
                let x1 = tch::no_grad(|| self.g1.forward_t(&z, &e, &e1, false).0); // (N, 3, 64, 64)
                g2.forward_t(&x1, &e, &randn(&mut rng, &[n, ef], dev), true) // (N, 3, 256, 256)
            }
        };
        self.opt_d.zero_grad();
        let h = self.d.features(&x, true); // (N, 512, 4, 4)
        let s_right = self.d.heads(&h, &e, true).matched; // (N,)
        let s_wrong = self.d.heads(&h, &e_wrong, true).matched; // (N,)
        let s_fake = self.d.forward_t(&fake.detach(), &e, true).matched; // (N,)
        let loss_d = BCE.d_term(&s_right, Target::Real) + (BCE.d_term(&s_wrong, Target::Fake) + BCE.d_term(&s_fake, Target::Fake)) * 0.5;
        loss_d.backward();
        self.opt_d.step()?;
        self.d_vs.freeze();
        self.opt_g.zero_grad();
        let loss_g = BCE.g_loss(&self.d.forward_t(&fake, &e, true).matched) + kl_loss(&mu, &ls) * 2.0;
        loss_g.backward();
        self.d_vs.unfreeze();
        self.opt_g.step()?;
        Ok((loss_d.double_value(&[]), loss_g.double_value(&[])))
    }
}

/// This process's peak resident memory in MB (Linux VmHWM).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())))
        .flatten()
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// `stackgan`: step time of Stage-I and Stage-II, ours vs PyTorch, alternating rounds per thread count.
pub fn run(o: &Opts) -> Result<()> {
    crate::check_python()?;
    println!(
        "== stackgan: StackGAN (Zhang et al. 2017) steps at the birds widths (z 100, text 1024 → CA 128, GF_DIM 128, DF_DIM 64, 4 residual blocks), \
         batch {}, joint D, KL weight 2, Adam 2e-4 (0.5, 0.999); {} warm-up + {} timed steps per measurement, {} alternating rounds; medians",
        o.sg_batch, o.warmup, o.steps, o.rounds
    );
    println!("   machine: {}; PyTorch side: {}", machine(), python().display());
    println!("   {}", device::setup(o.device));
    for &stage in &o.sg_stages {
        let (g, d) = Step::new(stage, 2, Device::Cpu)?.counts();
        println!("   stage {stage} ({} px): trained G {g}, D {d} parameters (asserted equal by the PyTorch script)", if stage == 1 { 64 } else { 256 });
        println!("{:>7} | {} | peak RSS MB ours / torch", "threads", header_columns(o));
        for &t in &o.threads {
            let mut s = Samples::default();
            let la0 = loadavg();
            let mut torch_rss = 0.0f64;
            for _ in 0..o.rounds {
                tch::set_num_threads(t);
                let mut m = Step::new(stage, o.sg_batch, o.device)?;
                s.ours.push(device::time_steps(o.device, false, o.warmup, o.steps, |i| m.step(i).map(|_| ()))?);
                drop(m);
                let mut args: Vec<String> = vec!["--stage".into(), stage.to_string(), "--threads".into(), t.to_string(), "--batch".into(), o.sg_batch.to_string()];
                args.extend(["--warmup".into(), o.warmup.to_string(), "--steps".into(), o.steps.to_string()]);
                args.extend(["--expect-g-params".into(), g.to_string(), "--expect-d-params".into(), d.to_string()]);
                let (ms, out) = crate::run_step_script("bench/stackgan_step.py", &args, &o.torch_args(None))?;
                s.theirs.push(ms);
                let rss = out.lines().find_map(|l| l.strip_prefix("peak_rss_mb:")).and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or(f64::NAN);
                torch_rss = torch_rss.max(rss);
            }
            println!("{:>7} | {} | {:.0} / {:.0}; load {} -> {}", t, row_columns(o, &s, 0), peak_rss_mb(), torch_rss, la0, loadavg());
        }
    }
    legend(o);
    Ok(())
}
