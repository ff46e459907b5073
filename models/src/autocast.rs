//! bf16 automatic mixed precision: runs a closure under libtorch's autocast with dtype bfloat16, as
//! `with torch.autocast(device_type, dtype=torch.bfloat16):` does in PyTorch.
//!
//! tch 0.24's `tch::autocast(enabled, f)` switches autocast on only for CUDA and leaves its dtype at
//! libtorch's CUDA default, fp16 (which needs a gradient scaler tch does not have). libtorch exports the
//! setters and getters that torch.autocast's Python binding calls, `at::autocast::set_autocast_dtype(DeviceType,
//! ScalarType)`, `get_autocast_dtype`, `is_autocast_enabled` and `set_autocast_enabled`, from libtorch_cpu.so;
//! ganzoo calls them through its C++ shim (models/ext), with `c10::DeviceType` and `c10::ScalarType` codes.
//! The nesting counter and the cast cache come from torch-sys.
//!
//! All of this state is thread-local in libtorch (as PyTorch's autocast is per thread): a region affects the
//! calling thread only. Under autocast, ops on libtorch's lower-precision list (convolutions, linear, matmul,
//! ...) run in bf16 and return bf16; the casts are part of the graph, so a backward gives every Float
//! parameter a Float gradient and optimizers keep Float master weights.

use tch::{Device, Kind};

/// `c10::DeviceType::CPU`.
const DT_CPU: i8 = 0;
/// `c10::DeviceType::CUDA`.
const DT_CUDA: i8 = 1;
/// `c10::ScalarType::BFloat16`.
const ST_BFLOAT16: i8 = 15;

/// libtorch's autocast state, through the shim (models/ext).
mod ffi {
    use ganzoo_torch_ext::autocast as a;
    pub fn get_autocast_dtype(device_type: i8) -> i8 {
        a::dtype(device_type.into()) as i8
    }
    pub fn set_autocast_dtype(device_type: i8, dtype: i8) {
        a::set_dtype(device_type.into(), dtype.into())
    }
    pub fn is_autocast_enabled(device_type: i8) -> bool {
        a::enabled(device_type.into())
    }
    pub fn set_autocast_enabled(device_type: i8, enabled: bool) {
        a::set_enabled(device_type.into(), enabled)
    }
    pub fn is_autocast_cache_enabled() -> bool {
        a::cache_enabled()
    }
    pub fn set_autocast_cache_enabled(enabled: bool) {
        a::set_cache_enabled(enabled)
    }
}

/// The `c10::DeviceType` autocast keys its state by: CUDA for any CUDA device, else CPU.
fn device_type(d: Device) -> i8 {
    match d {
        Device::Cuda(_) => DT_CUDA,
        _ => DT_CPU,
    }
}

/// The `c10::ScalarType` codes of the dtypes autocast can use, as tch kinds (others give `None`).
fn kind_of(code: i8) -> Option<Kind> {
    match code {
        5 => Some(Kind::Half),
        6 => Some(Kind::Float),
        7 => Some(Kind::Double),
        15 => Some(Kind::BFloat16),
        _ => None,
    }
}

/// The dtype autocast uses on `d`'s device type on this thread (libtorch's defaults: CPU BFloat16, CUDA
/// Half; `None` for a dtype with no tch kind).
pub fn autocast_dtype(d: Device) -> Option<Kind> {
    kind_of(ffi::get_autocast_dtype(device_type(d)))
}

/// Whether autocast is on for `d`'s device type on this thread.
pub fn autocast_enabled(d: Device) -> bool {
    ffi::is_autocast_enabled(device_type(d))
}

/// An open bf16 autocast region; dropping it closes the region and restores what was there before, also
/// when the closure inside [`with_bf16`] panics.
struct Bf16Region {
    device_type: i8,
    prev_dtype: i8,
    prev_enabled: bool,
    prev_cache: bool,
}

impl Bf16Region {
    fn enter(d: Device) -> Self {
        let dt = device_type(d);
        // SAFETY: thread-local setters and getters of libtorch's autocast state, called with a valid
        // DeviceType and ScalarType; `increment_nesting` is paired with the decrement in `drop`.
        unsafe {
            let region = Bf16Region {
                device_type: dt,
                prev_dtype: ffi::get_autocast_dtype(dt),
                prev_enabled: ffi::is_autocast_enabled(dt),
                prev_cache: ffi::is_autocast_cache_enabled(),
            };
            ffi::set_autocast_dtype(dt, ST_BFLOAT16);
            ffi::set_autocast_enabled(dt, true);
            // No cast cache: libtorch keeps one process-wide cache of weight casts that any thread's region end
            // clears, so with two threads training a weight used twice in a region would share one cast (its
            // gradients summed in bf16) or get two (summed in fp32) depending on the other thread's timing, and
            // runs would not repeat bit for bit. Without the cache every use casts afresh, in every thread.
            ffi::set_autocast_cache_enabled(false);
            torch_sys::at_autocast_increment_nesting();
            region
        }
    }
}

impl Drop for Bf16Region {
    fn drop(&mut self) {
        // SAFETY: as in `enter`. The cast cache (bf16 copies of weights reused within a region) is cleared
        // when the outermost region ends, as torch.autocast's __exit__ does.
        unsafe {
            if torch_sys::at_autocast_decrement_nesting() == 0 {
                torch_sys::at_autocast_clear_cache();
            }
            ffi::set_autocast_enabled(self.device_type, self.prev_enabled);
            ffi::set_autocast_dtype(self.device_type, self.prev_dtype);
            ffi::set_autocast_cache_enabled(self.prev_cache);
        }
    }
}

/// Runs `f` under bf16 autocast on `d`'s device type (CPU or CUDA), as
/// `with torch.autocast(d.type, dtype=torch.bfloat16): f()`: autocast is switched on with dtype bfloat16,
/// the nesting level is raised, and on return (or panic) the cast cache is cleared if this was the
/// outermost region and the previous enabled flag and dtype are restored. Regions nest.
///
/// Only the calling thread is affected (libtorch's cast cache, the one process-wide part, is switched off inside
/// the region: see `Bf16Region::enter`). Put the forward passes and the loss inside, and call `backward`
/// inside or outside (as PyTorch recommends, outside); gradients of Float parameters are Float.
pub fn with_bf16<T>(d: Device, f: impl FnOnce() -> T) -> T {
    let _region = Bf16Region::enter(d);
    f()
}
