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
