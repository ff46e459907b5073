//! `gan_cls`: one GAN-CLS training step (Reed et al. 2016) at 64×64, ours (models/src/cond.rs networks with
//! our Adam) against bench/gan_cls_step.py (the same networks and step in PyTorch), alternating rounds.
//!
//! The step, as `main_cls_int.lua` without the GAN-INT term: images x, the right text embeddings e (random, dim
//! 1024, standing in for CUB's precomputed char-CNN-RNN embeddings) and the wrong ones (e shifted by one in the
//! batch, as the StackGAN port draws them); z ~ N(0, 1) (100); fake = G(z, e);
//! D loss = BCE(D(x, e), 1) + 0.5·(BCE(D(x, e_wrong), 0) + BCE(D(fake.detach(), e), 0)) with D's image features of
//! x computed once for both texts; Adam step on D; D frozen, G loss = BCE(D(fake, e), 1); Adam step on G; both
//! losses read back. Adam 2e-4 (0.5, 0.999). Inputs: a CPU pool of 4 batches of random images in [-1, 1] and
//! embeddings, one batch sliced and copied to the device each step (as a data feed would).
use crate::device::{self, to_channels_last, vs_channels_last};
use crate::{header_columns, legend, loadavg, machine, print_setup, python, row_columns, Opts, Samples};
use anyhow::Result;
use ganzoo_models::cond::{CondDcganDConfig, CondDcganGConfig, CondDiscriminator, CondDiscriminatorConfig, CondGenerator, CondGeneratorConfig, HeadDesign};
use ganzoo_models::losses::{AdvLoss, Target};
use ganzoo_models::nets::{count_parameters, DataShape};
use ganzoo_models::optim::{Optimizer, OptimizerConfig};
use ganzoo_models::rng::{derived_rng, randn};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const Z_DIM: i64 = 100;
const EMB_DIM: i64 = 1024;
const SIZE: i64 = 64;
/// Batches in the input pool.
const POOL: i64 = 4;
/// GAN-CLS's loss: BCE with logits (the library's non-saturating loss; G's term is BCE against "real").
const BCE: AdvLoss = AdvLoss::NonSaturating;

pub struct GanCls {
    g_vs: VarStore,
    d_vs: VarStore,
    g: Box<dyn CondGenerator>,
    d: Box<dyn CondDiscriminator>,
    opt_g: Optimizer,
    opt_d: Optimizer,
    images: Tensor,
    emb: Tensor,
    batch: i64,
    device: Device,
    channels_last: bool,
}

impl GanCls {
    /// GAN-CLS G (ngf 128, text → 128) and D (ndf 64, text → 128 + BN, joint head) at 64×64×3 on `device`,
    /// DCGAN init from seed 0; channels-last parameters (before the optimizers exist) when asked.
    pub fn new(batch: i64, device: Device, channels_last: bool) -> Result<Self> {
        let shape = DataShape { channels: 3, height: SIZE, width: SIZE };
        let (g_vs, d_vs) = (VarStore::new(device), VarStore::new(device));
        let g = CondGeneratorConfig::Dcgan(CondDcganGConfig::default()).build(&g_vs.root(), Z_DIM, EMB_DIM, &shape)?;
        let d = CondDiscriminatorConfig::Dcgan(CondDcganDConfig::default()).build(&d_vs.root(), EMB_DIM, &shape, HeadDesign::Joint, false)?;
        ganzoo_models::init::init_dcgan(&g_vs, &mut derived_rng(0, "init_G", 0));
        ganzoo_models::init::init_dcgan(&d_vs, &mut derived_rng(0, "init_D", 0));
        if channels_last {
            vs_channels_last(&g_vs);
            vs_channels_last(&d_vs);
        }
        let adam = OptimizerConfig::Adam { lr: 2e-4, betas: (0.5, 0.999), eps: 1e-8, weight_decay: 0.0 };
        let (opt_g, opt_d) = (Optimizer::new(&g_vs, &adam), Optimizer::new(&d_vs, &adam));
        tch::manual_seed(0);
        let images = Tensor::rand([POOL * batch, 3, SIZE, SIZE], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let emb = Tensor::randn([POOL * batch, EMB_DIM], (Kind::Float, Device::Cpu));
        Ok(GanCls { g_vs, d_vs, g, d, opt_g, opt_d, images, emb, batch, device, channels_last })
    }

    pub fn counts(&self) -> (i64, i64) {
        (count_parameters(&self.g_vs), count_parameters(&self.d_vs))
    }

    /// One training step; returns (loss_D, loss_G).
    pub fn step(&mut self, s: i64) -> Result<(f64, f64)> {
        let (n, dev) = (self.batch, self.device);
        let start = (s % POOL) * n;
        let mut x = self.images.narrow(0, start, n).to_device(dev); // (N, 3, 64, 64)
        if self.channels_last {
            x = to_channels_last(&x);
        }
        let e = self.emb.narrow(0, start, n).to_device(dev); // (N, 1024)
        let e_wrong = e.roll([1], [0]); // (N, 1024): another image's text
        let z = randn(&mut derived_rng(0, "z", s as u64), &[n, Z_DIM], dev); // (N, 100)
        let fake = self.g.forward_t(&z, &e, true); // (N, 3, 64, 64)

        self.opt_d.zero_grad();
        let h_real = self.d.features(&x, true); // (N, 512, 4, 4)
        let s_right = self.d.heads(&h_real, &e, true).matched; // (N,)
        let s_wrong = self.d.heads(&h_real, &e_wrong, true).matched; // (N,)
        let s_fake = self.d.forward_t(&fake.detach(), &e, true).matched; // (N,)
        let loss_d = BCE.d_term(&s_right, Target::Real) + (BCE.d_term(&s_wrong, Target::Fake) + BCE.d_term(&s_fake, Target::Fake)) * 0.5;
        loss_d.backward();
        self.opt_d.step()?;

        self.d_vs.freeze();
        self.opt_g.zero_grad();
        let loss_g = BCE.g_loss(&self.d.forward_t(&fake, &e, true).matched); // BCE against "real"
        loss_g.backward();
        self.d_vs.unfreeze();
        self.opt_g.step()?;
        Ok((loss_d.double_value(&[]), loss_g.double_value(&[])))
    }
}

fn ours_ms(o: &Opts, threads: i32) -> Result<(f64, f64)> {
    tch::set_num_threads(threads);
    let mut m = GanCls::new(o.gc_batch, o.device, o.channels_last)?;
    device::time_steps(o.device, o.ours_in_bf16(), o.warmup, o.steps, |s| m.step(s).map(|_| ()))
}

fn pytorch_ms(o: &Opts, threads: i32, g: i64, d: i64, scope: Option<&str>) -> Result<((f64, f64), String)> {
    let mut args: Vec<String> = vec!["--threads".into(), threads.to_string(), "--batch".into(), o.gc_batch.to_string()];
    args.extend(["--warmup".into(), o.warmup.to_string(), "--steps".into(), o.steps.to_string()]);
    args.extend(["--expect-g-params".into(), g.to_string(), "--expect-d-params".into(), d.to_string()]);
    crate::run_step_script("bench/gan_cls_step.py", &args, &o.torch_args(scope))
}

/// `gan_cls`: step time, ours vs PyTorch, alternating rounds per thread count.
pub fn run(o: &Opts) -> Result<()> {
    crate::check_python()?;
    println!(
        "== gan_cls: GAN-CLS (Reed et al. 2016) step at 64×64×3, batch {}, G ngf 128 (4×4×1024, extra layers), D ndf 64, text 1024 → 128, z 100, \
         3 D pairs (right / wrong text / fake), Adam 2e-4 (0.5, 0.999); {} warm-up + {} timed steps per measurement, {} alternating rounds; medians",
        o.gc_batch, o.warmup, o.steps, o.rounds
    );
    println!("   machine: {}; PyTorch side: {}", machine(), python().display());
    println!("   {}", device::setup(o.device));
    let (g, d) = GanCls::new(2, Device::Cpu, false)?.counts();
    println!("   parameters: G {g}, D {d} (asserted equal by the PyTorch script)");
    println!("{:>7} | {}", "threads", header_columns(o));
    let scope = if o.bf16 { Some("step") } else { None };
    for &t in &o.threads {
        let mut s = Samples::default();
        let la0 = loadavg();
        for r in 0..o.rounds {
            s.ours.push(ours_ms(o, t)?);
            let (pms, out) = pytorch_ms(o, t, g, d, scope)?;
            if r == 0 && t == o.threads[0] {
                print_setup(&out);
            }
            s.theirs.push(pms);
            if o.bf16 {
                s.theirs_fwd.push(pytorch_ms(o, t, g, d, Some("forward"))?.0);
            }
        }
        println!("{:>7} | {}; load {} -> {}", t, row_columns(o, &s, 1), la0, loadavg());
    }
    legend(o);
    Ok(())
}
