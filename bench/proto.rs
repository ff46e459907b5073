//! `proto`: our DCGAN train step re-built inside bench/ (same networks, loss, procedure and data loader as
//! `Gan::train_step` for configs/papers/dcgan_mnist.yaml), with candidate speed fixes switchable, timed in
//! alternating rounds against the unchanged `Gan::train_step`. Nothing here changes the library.
//!
//! Variants:
//! * `leaky`: `max` = `h.maximum(&(&h * 0.2))` (models/src/dcgan.rs today); `prelu` = `h.prelu(0.2)`, one
//!   fused kernel forward and backward (tch 0.24 exposes `leaky_relu` only with slope 0.01).
//! * `adam`: `ours` = models/src/optim.rs today (7 temporaries per parameter); `lean` = torch.optim.Adam's
//!   single-tensor sequence with tch's ops: `lerp_`, `mul_` + `addcmul_`, `sqrt` then in-place `div_`/`add_`,
//!   `addcdiv_` (3 temporaries).
use crate::{cpu_seconds, dcgan_config, loadavg, median, Opts};
use anyhow::Result;
use ganzoo_data::loader::{BatchIter, Loader, LoaderConfig};
use ganzoo_models::rng::{derived_rng, randn};
use ganzoo_pipelines::family::Trainable;
use ganzoo_pipelines::gan::Gan;
use std::sync::Arc;
use std::time::Instant;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Reduction, Tensor};

#[derive(Clone, Copy, PartialEq)]
enum Leaky {
    Max,
    Prelu,
}
#[derive(Clone, Copy, PartialEq)]
enum Adam {
    Ours,
    Lean,
}

struct Net {
    vs: nn::VarStore,
    convs: Vec<Box<dyn ModuleT>>,
    bns: Vec<Option<nn::BatchNorm>>,
}

fn bn(p: nn::Path, c: i64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig { ws_init: nn::Init::Const(1.0), bs_init: nn::Init::Const(0.0), ..Default::default() };
    nn::batch_norm2d(p, c, cfg)
}

fn generator() -> Net {
    let vs = nn::VarStore::new(Device::Cpu);
    let r = vs.root();
    let ct = |i: &str, a, b, k, s, p| -> Box<dyn ModuleT> {
        let cfg = nn::ConvTransposeConfig { stride: s, padding: p, bias: false, ..Default::default() };
        Box::new(nn::conv_transpose2d(&r / i, a, b, k, cfg))
    };
    let convs = vec![ct("c0", 100, 128, 7, 1, 0), ct("c1", 128, 64, 4, 2, 1), ct("c2", 64, 1, 4, 2, 1)];
    let bns = vec![Some(bn(&r / "b0", 128)), Some(bn(&r / "b1", 64)), None];
    init(&vs);
    Net { vs, convs, bns }
}

fn discriminator() -> Net {
    let vs = nn::VarStore::new(Device::Cpu);
    let r = vs.root();
    let c = |i: &str, a, b, k, s, p| -> Box<dyn ModuleT> {
        let cfg = nn::ConvConfig { stride: s, padding: p, bias: false, ..Default::default() };
        Box::new(nn::conv2d(&r / i, a, b, k, cfg))
    };
    let convs = vec![c("c0", 1, 64, 4, 2, 1), c("c1", 64, 128, 4, 2, 1), c("c2", 128, 1, 7, 1, 0)];
    let bns = vec![None, Some(bn(&r / "b1", 128)), None];
    init(&vs);
    Net { vs, convs, bns }
}

fn init(vs: &nn::VarStore) {
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            if t.dim() > 1 {
                let _ = t.normal_(0.0, 0.02);
            } else if name.ends_with("weight") {
                let _ = t.normal_(1.0, 0.02);
            }
        }
    });
}

fn g_forward(g: &Net, z: &Tensor) -> Tensor {
    let n = z.size()[0];
    let mut h = z.reshape([n, 100, 1, 1]);
    for i in 0..2 {
        h = g.convs[i].forward_t(&h, true);
        h = g.bns[i].as_ref().unwrap().forward_t(&h, true).relu();
    }
    g.convs[2].forward_t(&h, true).tanh()
}

fn d_forward(d: &Net, x: &Tensor, leaky: Leaky, slope: &Tensor) -> Tensor {
    let n = x.size()[0];
    let mut h = x.shallow_clone();
    for i in 0..2 {
        h = d.convs[i].forward_t(&h, true);
        if let Some(b) = &d.bns[i] {
            h = b.forward_t(&h, true);
        }
        h = match leaky {
            Leaky::Max => h.maximum(&(&h * 0.2)),
            Leaky::Prelu => h.prelu(slope),
        };
    }
    d.convs[2].forward_t(&h, true).reshape([n])
}

struct Opt {
    params: Vec<(Tensor, Tensor, Tensor)>,
    t: i64,
    kind: Adam,
}

impl Opt {
    fn new(vs: &nn::VarStore, kind: Adam) -> Self {
        let params = vs.trainable_variables().into_iter().map(|p| (p.zeros_like(), p.zeros_like(), p)).collect();
        Opt { params, t: 0, kind }
    }
    fn zero_grad(&mut self) {
        for (_, _, p) in &mut self.params {
            p.zero_grad();
        }
    }
    fn step(&mut self) {
        let (lr, b1, b2, eps) = (2e-4, 0.5f64, 0.999f64, 1e-8);
        self.t += 1;
        let t = self.t as f64;
        let (bc1, bc2) = (1.0 - b1.powf(t), 1.0 - b2.powf(t));
        let step_size = lr / bc1;
        let _g = tch::no_grad_guard();
        for (m, v, p) in &mut self.params {
            let g = p.grad();
            let _ = m.lerp_(&g, 1.0 - b1);
            match self.kind {
                Adam::Ours => {
                    let _ = v.g_mul_scalar_(b2);
                    let _ = v.g_add_(&(&g * &g * (1.0 - b2)));
                    let denom = v.sqrt() / bc2.sqrt() + eps;
                    let _ = p.g_add_(&(&*m * (-step_size) / denom));
                }
                Adam::Lean => {
                    let _ = v.g_mul_scalar_(b2);
                    let _ = v.addcmul_(&(&g * (1.0 - b2)), &g);
                    let mut denom = v.sqrt();
                    let _ = denom.g_div_scalar_(bc2.sqrt());
                    let _ = denom.g_add_scalar_(eps);
                    let _ = p.addcdiv_(&(&*m * (-step_size)), &denom);
                }
            }
        }
    }
}

fn bce(s: &Tensor, one: bool) -> Tensor {
    let t = if one { s.ones_like() } else { s.zeros_like() };
    s.binary_cross_entropy_with_logits::<Tensor>(&t, None, None, Reduction::Mean)
}

struct Proto {
    g: Net,
    d: Net,
    og: Opt,
    od: Opt,
    leaky: Leaky,
    slope: Tensor,
    iter: BatchIter,
    _loader: Loader,
}

impl Proto {
    fn new(leaky: Leaky, adam: Adam, batch: i64) -> Result<Self> {
        let ds = ganzoo_data::mnist::Mnist::open(&crate::cache_dir().join("mnist"), false)?;
        let lc = LoaderConfig { batch_size: batch as usize, workers: 0, prefetch: 2, drop_last: true, seed: 0 };
        let loader = Loader::new(Arc::new(ds), lc);
        let iter = loader.iter_from(0, 0);
        let (g, d) = (generator(), discriminator());
        let (og, od) = (Opt::new(&g.vs, adam), Opt::new(&d.vs, adam));
        Ok(Proto { g, d, og, od, leaky, slope: Tensor::from_slice(&[0.2f32]), iter, _loader: loader })
    }

    /// The same sequence as `Gan::train_step` with n_critic 1 and the non-saturating loss.
    fn step(&mut self, step: i64, batch: i64) -> Result<f64> {
        let real = self.iter.next().ok_or_else(|| anyhow::anyhow!("loader stopped"))??.x;
        let z = randn(&mut derived_rng(0, "z", step as u64), &[batch, 100], Device::Cpu);
        let f = g_forward(&self.g, &z);
        let fake = f.detach();
        self.od.zero_grad();
        let dr = d_forward(&self.d, &real, self.leaky, &self.slope);
        let df = d_forward(&self.d, &fake, self.leaky, &self.slope);
        let loss_d = bce(&dr, true) + bce(&df, false);
        loss_d.backward();
        self.od.step();
        let mut acc = loss_d.double_value(&[]) + dr.mean(Kind::Float).double_value(&[]) + df.mean(Kind::Float).double_value(&[]);
        self.d.vs.freeze();
        self.og.zero_grad();
        let loss_g = bce(&d_forward(&self.d, &f, self.leaky, &self.slope), true);
        loss_g.backward();
        self.d.vs.unfreeze();
        self.og.step();
        acc += loss_g.double_value(&[]);
        Ok(acc)
    }
}

fn time_proto(leaky: Leaky, adam: Adam, o: &Opts) -> Result<(f64, f64)> {
    let mut p = Proto::new(leaky, adam, o.batch)?;
    for s in 0..o.warmup {
        p.step(s as i64, o.batch)?;
    }
    let (t0, c0) = (Instant::now(), cpu_seconds());
    for s in 0..o.steps {
        p.step((o.warmup + s) as i64, o.batch)?;
    }
    let n = o.steps as f64;
    Ok((t0.elapsed().as_secs_f64() * 1000.0 / n, (cpu_seconds() - c0) * 1000.0 / n))
}

fn time_gan(threads: i32, o: &Opts, extra: &[String]) -> Result<(f64, f64)> {
    let mut cfg_over = vec![];
    cfg_over.extend_from_slice(extra);
    let cfg = if extra.is_empty() {
        dcgan_config(threads, o.batch, Device::Cpu)?
    } else {
        let config = crate::root().join("configs/papers/dcgan_mnist.yaml");
        let mut ov = vec![
            format!("threads={threads}"),
            format!("train.batch_size={}", o.batch),
            format!("data.root={}", crate::cache_dir().join("mnist").display()),
        ];
        ov.extend(cfg_over);
        ganzoo_pipelines::run::load_config(&config, &ov)?.config
    };
    let mut gan = Gan::new(&cfg, Device::Cpu, true)?;
    for s in 0..o.warmup {
        gan.train_step(s as i64)?;
    }
    let (t0, c0) = (Instant::now(), cpu_seconds());
    for s in 0..o.steps {
        gan.train_step((o.warmup + s) as i64)?;
    }
    let n = o.steps as f64;
    Ok((t0.elapsed().as_secs_f64() * 1000.0 / n, (cpu_seconds() - c0) * 1000.0 / n))
}

pub fn run(o: &Opts) -> Result<()> {
    println!(
        "== proto: Gan::train_step vs the same step re-built in bench/proto.rs with candidate fixes; batch {}, {}+{} steps, {} alternating rounds, medians",
        o.batch, o.warmup, o.steps, o.rounds
    );
    for &t in &o.threads {
        tch::set_num_threads(t);
        let names = [
            "Gan::train_step (library, as is)",
            "Gan::train_step, train.workers=1",
            "proto: leaky max,   adam ours (= library)",
            "proto: leaky prelu, adam ours",
            "proto: leaky max,   adam lean",
            "proto: leaky prelu, adam lean",
        ];
        let mut res: Vec<Vec<(f64, f64)>> = vec![vec![]; names.len()];
        let la0 = loadavg();
        for _ in 0..o.rounds {
            res[0].push(time_gan(t, o, &[])?);
            res[1].push(time_gan(t, o, &["train.workers=1".to_string()])?);
            res[2].push(time_proto(Leaky::Max, Adam::Ours, o)?);
            res[3].push(time_proto(Leaky::Prelu, Adam::Ours, o)?);
            res[4].push(time_proto(Leaky::Max, Adam::Lean, o)?);
            res[5].push(time_proto(Leaky::Prelu, Adam::Lean, o)?);
        }
        let wall = |r: &[(f64, f64)]| median(&r.iter().map(|x| x.0).collect::<Vec<_>>());
        let cpu = |r: &[(f64, f64)]| median(&r.iter().map(|x| x.1).collect::<Vec<_>>());
        let (bw, bc) = (wall(&res[0]), cpu(&res[0]));
        println!("-- {t} thread(s); load {la0} -> {}", loadavg());
        for (n, r) in names.iter().zip(&res) {
            let all = r.iter().map(|x| format!("{:.0}/{:.0}", x.0, x.1)).collect::<Vec<_>>().join(" ");
            println!(
                "   {n:<42} wall {:>7.1} ms ({:+6.1}%)  CPU {:>7.1} ms ({:+6.1}%)  rounds wall/CPU: {all}",
                wall(r),
                (wall(r) / bw - 1.0) * 100.0,
                cpu(r),
                (cpu(r) / bc - 1.0) * 100.0
            );
        }
    }
    Ok(())
}
