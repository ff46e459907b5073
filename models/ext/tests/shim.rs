//! The shim against PyTorch (leaky_relu, golden/leaky_relu_golden.py) and c10d's Gloo process group with two
//! ranks on two threads of this process, meeting on loopback.
use ganzoo_torch_ext::{has_gloo, leaky_relu, ProcessGroup, Rendezvous};
use std::time::{Duration, Instant};
use tch::{Kind, Tensor};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/leaky_relu_golden.safetensors");

fn golden() -> std::collections::HashMap<String, Tensor> {
    Tensor::read_safetensors(GOLDEN).unwrap().into_iter().collect()
}

/// Largest |a − b| relative to max(|b|, 1e-3).
fn rel(a: &Tensor, b: &Tensor) -> f64 {
    ((a - b).abs() / b.abs().clamp_min(1e-3)).max().double_value(&[])
}

#[test]
fn leaky_relu_matches_pytorch_forward_backward_and_double_backward() {
    let g = golden();
    for s in [0.2, 0.01] {
        let x = g["x"].set_requires_grad(true);
        let y = leaky_relu(&x, s);
        assert!(rel(&y, &g[&format!("y_{s}")]) < 1e-6, "forward, slope {s}");
        let grad = Tensor::run_backward(&[(&y * &g["w"]).sum(Kind::Float)], &[&x], false, false).remove(0);
        assert!(rel(&grad, &g[&format!("grad_{s}")]) < 1e-6, "backward, slope {s}");
        let x2 = g["x"].set_requires_grad(true);
        let d = Tensor::run_backward(&[leaky_relu(&x2, s).square().sum(Kind::Float)], &[&x2], true, true).remove(0);
        let gp = Tensor::run_backward(&[d.square().sum(Kind::Float)], &[&x2], false, false).remove(0);
        assert!(rel(&gp, &g[&format!("gp_{s}")]) < 1e-6, "double backward, slope {s}");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn rendezvous(port: u16, rank: usize, world: usize, timeout: Duration) -> Rendezvous {
    Rendezvous {
        host: "127.0.0.1".into(),
        port,
        rank,
        world,
        agent_store: false,
        prefix: "test/".into(),
        interface: "lo".into(),
        timeout,
    }
}

/// Runs `f(rank, group)` on `world` threads, one rank each; returns their results in rank order.
fn ranks<T: Send + 'static>(world: usize, timeout: Duration, f: fn(usize, &mut ProcessGroup) -> T) -> Vec<T> {
    let port = free_port();
    let handles: Vec<_> = (0..world)
        .map(|r| {
            std::thread::spawn(move || {
                let mut pg = ProcessGroup::new(&rendezvous(port, r, world, timeout)).unwrap();
                f(r, &mut pg)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn two_ranks_all_reduce_broadcast_gather_and_meet() {
    if !has_gloo() {
        eprintln!("skipped: built without gloo's headers");
        return;
    }
    let out = ranks(2, Duration::from_secs(60), |r, pg| {
        // Two tensors in one bucket and one larger than a bucket (25 MiB of f32 = 6.5 M values).
        let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0]).g_mul_scalar((r + 1) as f64);
        let b = Tensor::ones([2, 2], (Kind::Float, tch::Device::Cpu)).g_mul_scalar(10.0 * r as f64);
        let big = Tensor::full([7_000_000], (r + 1) as f64, (Kind::Float, tch::Device::Cpu));
        pg.all_reduce(&[a.shallow_clone(), b.shallow_clone(), big.shallow_clone()], false).unwrap();
        let avg = Tensor::from_slice(&[r as f32 * 4.0]);
        pg.all_reduce(&[avg.shallow_clone()], true).unwrap();
        let w = Tensor::from_slice(&[r as f32 + 0.5, -1.0]);
        pg.broadcast(&[w.shallow_clone()], 1).unwrap();
        let gathered = pg.all_gather(&Tensor::from_slice(&[r as i64, 7])).unwrap();
        if r == 1 {
            pg.store_set("hello", "from rank 1").unwrap();
        }
        pg.barrier().unwrap();
        let note = pg.store_get("hello").unwrap();
        let missing = pg.store_get("nothing").unwrap();
        (Vec::<f32>::try_from(&a).unwrap(), Vec::<f32>::try_from(&b.flatten(0, -1)).unwrap(), big.mean(Kind::Float).double_value(&[]), avg.double_value(&[0]), Vec::<f32>::try_from(&w).unwrap(), Vec::<i64>::try_from(&gathered.flatten(0, -1)).unwrap(), note, missing)
    });
    for o in &out {
        assert_eq!(o.0, [3.0, 6.0, 9.0]);
        assert_eq!(o.1, [10.0; 4]);
        assert_eq!(o.2, 3.0);
        assert_eq!(o.3, 2.0);
        assert_eq!(o.4, [1.5, -1.0]);
        assert_eq!(o.5, [0, 7, 1, 7]);
        assert_eq!(o.6.as_deref(), Some("from rank 1"));
        assert_eq!(o.7, None);
    }
}

#[test]
fn a_rank_that_never_comes_makes_the_collective_fail_within_the_timeout() {
    if !has_gloo() {
        eprintln!("skipped: built without gloo's headers");
        return;
    }
    let t0 = Instant::now();
    let out = ranks(2, Duration::from_secs(3), |r, pg| {
        if r == 1 {
            std::thread::sleep(Duration::from_secs(6)); // hangs past the timeout, then leaves
            return Ok(());
        }
        pg.all_reduce(&[Tensor::from_slice(&[1.0f32])], false).map_err(|e| e.to_string())
    });
    let err = out[0].clone().unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert!(err.to_lowercase().contains("timed out") || err.to_lowercase().contains("timeout"), "{err}");
}

#[test]
fn sync_batch_norm_over_two_ranks_is_batch_norm_over_the_whole_batch() {
    if !has_gloo() {
        eprintln!("skipped: built without gloo's headers");
        return;
    }
    // The whole batch (6, 3, 4, 5), a loss weight per element; each rank takes 3 rows.
    let (x, lw) = ganzoo_torch_ext_test_data();
    // One process: libtorch's batch norm, momentum 0.1, eps 1e-5.
    let w = Tensor::from_slice(&[1.5f32, 0.5, -1.0]).set_requires_grad(true);
    let b = Tensor::from_slice(&[0.1f32, 0.2, 0.3]).set_requires_grad(true);
    let xr = x.set_requires_grad(true);
    let (rm, rv) = (Tensor::zeros([3], (Kind::Float, tch::Device::Cpu)), Tensor::ones([3], (Kind::Float, tch::Device::Cpu)));
    let y = Tensor::batch_norm(&xr, Some(&w), Some(&b), Some(&rm), Some(&rv), true, 0.1, 1e-5, false);
    let loss = (&y * &lw).sum(Kind::Float) / 6.0;
    let g = Tensor::run_backward(&[loss], &[&xr, &w, &b], false, false);
    let want: Vec<Vec<f32>> = [&y.detach(), &g[0], &g[1], &g[2], &rm, &rv].iter().map(|t| Vec::<f32>::try_from(&t.flatten(0, -1)).unwrap()).collect();
    let out = ranks(2, Duration::from_secs(60), |r, pg| {
        let (x, lw) = ganzoo_torch_ext_test_data();
        let rows = |t: &Tensor| t.narrow(0, 3 * r as i64, 3).copy();
        let (x, lw) = (rows(&x).set_requires_grad(true), rows(&lw));
        let w = Tensor::from_slice(&[1.5f32, 0.5, -1.0]).set_requires_grad(true);
        let b = Tensor::from_slice(&[0.1f32, 0.2, 0.3]).set_requires_grad(true);
        let (rm, rv) = (Tensor::zeros([3], (Kind::Float, tch::Device::Cpu)), Tensor::ones([3], (Kind::Float, tch::Device::Cpu)));
        let scope = ganzoo_torch_ext::SyncBatchNormScope::enter(Some(pg));
        let y = ganzoo_torch_ext::sync_batch_norm(&x, &w, &b, &rm, &rv, 0.1, 1e-5).unwrap();
        let loss = (&y * &lw).sum(Kind::Float) / 3.0; // this rank's mean
        let mut g = Tensor::run_backward(&[loss], &[&x, &w, &b], false, false);
        drop(scope);
        // As the engine does: the parameters' gradients averaged over ranks; x's is this rank's share × 2.
        pg.all_reduce(&[g[1].shallow_clone(), g[2].shallow_clone()], true).unwrap();
        g[0] = &g[0] / 2.0;
        [&y.detach(), &g[0], &g[1], &g[2], &rm, &rv].iter().map(|t| Vec::<f32>::try_from(&t.flatten(0, -1)).unwrap()).collect::<Vec<_>>()
    });
    let names = ["y", "dx", "dw", "db", "running_mean", "running_var"];
    for (i, name) in names.iter().enumerate() {
        let got: Vec<f32> = if i <= 1 { [out[0][i].clone(), out[1][i].clone()].concat() } else { out[0][i].clone() };
        let scale = want[i].iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        let err = got.iter().zip(&want[i]).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(err <= 1e-5 * scale, "{name}: max |Δ| {err:e} against {scale:e}");
        if i > 1 {
            assert_eq!(out[0][i], out[1][i], "{name} equal on both ranks");
        }
    }
}

/// A fixed batch (6, 3, 4, 5) and loss weights of the same shape.
fn ganzoo_torch_ext_test_data() -> (Tensor, Tensor) {
    let n = 6 * 3 * 4 * 5;
    let x: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) * (1.0 + (i % 3) as f32)).collect();
    let lw: Vec<f32> = (0..n).map(|i| (i * 53 % 97) as f32 / 48.0 - 1.0).collect();
    (Tensor::from_slice(&x).view([6, 3, 4, 5]), Tensor::from_slice(&lw).view([6, 3, 4, 5]))
}

#[test]
fn sync_batch_norm_twice_in_one_loss_with_a_conv_before_it() {
    if !has_gloo() {
        return;
    }
    let conv_w = || Tensor::from_slice(&(0..3 * 3 * 3 * 3).map(|i| ((i * 29 % 31) as f32 / 15.0 - 1.0) * 0.3).collect::<Vec<f32>>()).view([3, 3, 3, 3]);
    let loss_of = |x1: &Tensor, x2: &Tensor, lw: &Tensor, cw: &Tensor, bn: &dyn Fn(&Tensor) -> Tensor, n: f64| {
        let f = |x: &Tensor| bn(&x.conv2d(cw, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1)).leaky_relu();
        ((f(x1) * lw).sum(Kind::Float) + (f(x2) * lw).square().sum(Kind::Float)) / n
    };
    let (x, lw) = ganzoo_torch_ext_test_data();
    let x2 = (&x * 0.7).sin();
    let cw = conv_w().set_requires_grad(true);
    let (w, b) = (Tensor::from_slice(&[1.5f32, 0.5, -1.0]), Tensor::from_slice(&[0.1f32, 0.2, 0.3]));
    let bn = |t: &Tensor| Tensor::batch_norm(t, Some(&w), Some(&b), None::<&Tensor>, None::<&Tensor>, true, 0.1, 1e-5, false);
    let want = Tensor::run_backward(&[loss_of(&x, &x2, &lw, &cw, &bn, 6.0)], &[&cw], false, false).remove(0);
    let out = ranks(2, Duration::from_secs(60), |r, pg| {
        let (x, lw) = ganzoo_torch_ext_test_data();
        let x2 = (&x * 0.7).sin();
        let rows = |t: &Tensor| t.narrow(0, 3 * r as i64, 3).copy();
        let cw = Tensor::from_slice(&(0..3 * 3 * 3 * 3).map(|i| ((i * 29 % 31) as f32 / 15.0 - 1.0) * 0.3).collect::<Vec<f32>>()).view([3, 3, 3, 3]).set_requires_grad(true);
        let (w, b) = (Tensor::from_slice(&[1.5f32, 0.5, -1.0]), Tensor::from_slice(&[0.1f32, 0.2, 0.3]));
        let (rm, rv) = (Tensor::zeros([3], (Kind::Float, tch::Device::Cpu)), Tensor::ones([3], (Kind::Float, tch::Device::Cpu)));
        let _scope = ganzoo_torch_ext::SyncBatchNormScope::enter(Some(pg));
        let f = |x: &Tensor| ganzoo_torch_ext::sync_batch_norm(&x.conv2d(&cw, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1), &w, &b, &rm, &rv, 0.1, 1e-5).unwrap().leaky_relu();
        let loss = ((f(&rows(&x)) * rows(&lw)).sum(Kind::Float) + (f(&rows(&x2)) * rows(&lw)).square().sum(Kind::Float)) / 3.0;
        let g = Tensor::run_backward(&[loss], &[&cw], false, false).remove(0);
        pg.all_reduce(&[g.shallow_clone()], true).unwrap();
        Vec::<f32>::try_from(&g.flatten(0, -1)).unwrap()
    });
    let want = Vec::<f32>::try_from(&want.flatten(0, -1)).unwrap();
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = out[0].iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(err <= 1e-5 * scale, "conv weight gradient: max |Δ| {err:e} against {scale:e}");
}
