//! bf16 autocast (`ganzoo_models::autocast`) on the CPU: ops on libtorch's lower-precision list return bf16
//! inside a region and Float outside, the thread's state is restored after a region (nested or not, and after
//! a panic), and a backward through an autocast forward gives Float gradients to Float parameters.

use ganzoo_models::autocast::{autocast_dtype, autocast_enabled, with_bf16};
use ganzoo_models::rng::{derived_rng, randn};
use tch::{Device, Kind, Tensor};

const CPU: Device = Device::Cpu;

fn conv(x: &Tensor, w: &Tensor) -> Tensor {
    x.conv2d(w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1) // (N, 4, H, W)
}

#[test]
fn conv_and_linear_run_in_bf16_inside_and_float_outside() {
    let mut rng = derived_rng(1, "autocast", 0);
    let x = randn(&mut rng, &[2, 3, 6, 6], CPU);
    let w = randn(&mut rng, &[4, 3, 3, 3], CPU);
    let (a, b) = (randn(&mut rng, &[5, 7], CPU), randn(&mut rng, &[2, 7], CPU));
    let (conv_in, lin_in, enabled_in, dtype_in) =
        with_bf16(CPU, || (conv(&x, &w), b.linear(&a, None::<Tensor>), autocast_enabled(CPU), autocast_dtype(CPU)));
    assert_eq!((conv_in.kind(), lin_in.kind()), (Kind::BFloat16, Kind::BFloat16));
    assert!(enabled_in);
    assert_eq!(dtype_in, Some(Kind::BFloat16));
    let (conv_out, lin_out) = (conv(&x, &w), b.linear(&a, None::<Tensor>));
    assert_eq!((conv_out.kind(), lin_out.kind()), (Kind::Float, Kind::Float));
    // bf16 keeps 8 bits of mantissa: the same numbers to about 1 %.
    let rel = (conv_in.to_kind(Kind::Float) - &conv_out).abs().max().double_value(&[])
        / conv_out.abs().max().double_value(&[]);
    assert!(rel > 0.0 && rel < 2e-2, "bf16 conv differs from the Float conv by {rel} (relative)");
}

#[test]
fn state_is_restored_after_nested_regions_and_after_a_panic() {
    assert!(!autocast_enabled(CPU));
    let before = autocast_dtype(CPU);
    assert_eq!(before, Some(Kind::BFloat16), "libtorch's CPU default");
    let x = Tensor::ones([1, 2], (Kind::Float, CPU));
    let w = Tensor::ones([3, 2], (Kind::Float, CPU));
    let kinds = with_bf16(CPU, || {
        let inner = with_bf16(CPU, || (x.linear(&w, None::<Tensor>).kind(), autocast_enabled(CPU)));
        // Still inside the outer region after the inner one closed.
        (inner, x.linear(&w, None::<Tensor>).kind(), autocast_enabled(CPU))
    });
    assert_eq!(kinds, ((Kind::BFloat16, true), Kind::BFloat16, true));
    assert!(!autocast_enabled(CPU));
    assert_eq!(autocast_dtype(CPU), before);
    assert_eq!(x.linear(&w, None::<Tensor>).kind(), Kind::Float);
    // A panic inside the region unwinds through it and still restores the state.
    let r = std::panic::catch_unwind(|| with_bf16(CPU, || panic!("inside the region")));
    assert!(r.is_err());
    assert!(!autocast_enabled(CPU));
    assert_eq!(autocast_dtype(CPU), before);
    // CUDA's state is separate from the CPU's and was never touched (no CUDA device needed to read it).
    assert!(!autocast_enabled(Device::Cuda(0)));
    assert_eq!(autocast_dtype(Device::Cuda(0)), Some(Kind::Half));
}

#[test]
fn backward_through_a_bf16_forward_gives_float_gradients() {
    let mut rng = derived_rng(2, "autocast", 0);
    let x = randn(&mut rng, &[2, 3, 5, 5], CPU);
    let w = randn(&mut rng, &[4, 3, 3, 3], CPU).set_requires_grad(true);
    let l = randn(&mut rng, &[1, 4 * 25], CPU).set_requires_grad(true);
    let loss = with_bf16(CPU, || {
        let h = conv(&x, &w).relu().flatten(1, -1); // (2, 100), bf16
        assert_eq!(h.kind(), Kind::BFloat16);
        h.linear(&l, None::<Tensor>).square().mean(Kind::Float) // (), Float
    });
    loss.backward();
    for (name, p) in [("conv weight", &w), ("linear weight", &l)] {
        let g = p.grad();
        assert!(g.defined(), "{name} has a gradient");
        assert_eq!(g.kind(), Kind::Float, "{name}");
        assert!(g.abs().sum(Kind::Float).double_value(&[]) > 0.0, "{name}");
    }
}

/// The gradient of a weight used twice in one bf16 region (D on real and on generated images).
fn twice_used_gradient() -> Vec<f32> {
    let mut rng = derived_rng(3, "autocast_twice", 0);
    let (a, b) = (randn(&mut rng, &[8, 16], CPU), randn(&mut rng, &[8, 16], CPU));
    let w = randn(&mut rng, &[16, 16], CPU).copy().set_requires_grad(true); // a leaf, not a view: cached casts
    let busy = Tensor::ones([128, 128], (Kind::Float, CPU));
    let loss = with_bf16(CPU, || {
        let first = a.linear(&w, None::<Tensor>).tanh(); // (8, 16), bf16
        // Work between the two uses, during which another thread's regions come and go.
        let _ = (0..20).fold(busy.shallow_clone(), |m, _| m.matmul(&busy) / 128.0);
        (first - b.linear(&w, None::<Tensor>).tanh()).square().mean(Kind::Float)
    });
    loss.backward();
    Vec::<f32>::try_from(w.grad().flatten(0, -1)).expect("gradient")
}

#[test]
fn a_region_repeats_bit_for_bit_while_another_thread_runs_regions() {
    // libtorch's cast cache is one per process and any thread's region end clears it: with it on, whether a
    // twice-used weight shares one cast depended on another thread's timing, and the gradient's rounding with it.
    tch::set_num_threads(1); // both threads run side by side on two cores
    let alone = twice_used_gradient();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let other = std::thread::spawn(move || {
        let x = Tensor::ones([4, 4], (Kind::Float, CPU));
        let w = Tensor::ones([4, 4], (Kind::Float, CPU)).set_requires_grad(true);
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            with_bf16(CPU, || x.linear(&w, None::<Tensor>).sum(Kind::Float)).backward();
        }
    });
    let busy: Vec<Vec<f32>> = (0..50).map(|_| twice_used_gradient()).collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    other.join().expect("the other thread");
    let differing = busy.iter().filter(|g| **g != alone).count();
    assert_eq!(differing, 0, "{differing} of {} bf16 regions depended on another thread's", busy.len());
}
