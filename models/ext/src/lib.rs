//! The libtorch calls ganzoo needs and tch 0.24 does not bind, through a small C++ shim (`src/shim.cpp`, built
//! against the libtorch torch-sys links): [`leaky_relu`] with its slope, the autocast state ([`autocast`]),
//! and data parallelism on libtorch's own distributed engine, c10d ([`ProcessGroup`]: a `TCPStore`
//! rendezvous, a Gloo process group, bucketed all-reduce, broadcast, all-gather, barrier, every collective with
//! a timeout). C++ exceptions never cross into Rust: each call returns them as an [`Error`].
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::time::Duration;
use tch::Tensor;
use torch_sys::C_tensor;

mod ffi {
    use super::*;
    extern "C" {
        pub fn gz_free_string(s: *mut c_char);
        pub fn gz_leaky_relu(x: *const C_tensor, slope: f64, err: *mut *mut c_char) -> *mut C_tensor;
        pub fn gz_autocast_dtype(device_type: c_int, err: *mut *mut c_char) -> c_int;
        pub fn gz_set_autocast_dtype(device_type: c_int, dtype: c_int, err: *mut *mut c_char) -> c_int;
        pub fn gz_autocast_enabled(device_type: c_int, err: *mut *mut c_char) -> c_int;
        pub fn gz_set_autocast_enabled(device_type: c_int, on: c_int, err: *mut *mut c_char) -> c_int;
        pub fn gz_autocast_cache_enabled() -> c_int;
        pub fn gz_set_autocast_cache_enabled(on: c_int);
        pub fn gz_has_gloo() -> c_int;
    }
    #[cfg(ganzoo_gloo)]
    extern "C" {
        #[allow(clippy::too_many_arguments)]
        pub fn gz_group_new(
            host: *const c_char,
            port: c_int,
            rank: c_int,
            world: c_int,
            timeout_ms: i64,
            agent_store: c_int,
            prefix: *const c_char,
            iface: *const c_char,
            err: *mut *mut c_char,
        ) -> *mut c_void;
        pub fn gz_group_free(g: *mut c_void);
        pub fn gz_all_reduce(g: *mut c_void, ts: *mut *mut C_tensor, n: c_int, average: c_int, bucket: i64, err: *mut *mut c_char) -> c_int;
        pub fn gz_broadcast(g: *mut c_void, ts: *mut *mut C_tensor, n: c_int, root: c_int, err: *mut *mut c_char) -> c_int;
        pub fn gz_all_gather(g: *mut c_void, input: *const C_tensor, err: *mut *mut c_char) -> *mut C_tensor;
        pub fn gz_barrier(g: *mut c_void, err: *mut *mut c_char) -> c_int;
        pub fn gz_store_set(g: *mut c_void, key: *const c_char, value: *const c_char, err: *mut *mut c_char) -> c_int;
        pub fn gz_store_get(g: *mut c_void, key: *const c_char, err: *mut *mut c_char) -> *mut c_char;
        pub fn gz_store_wait(g: *mut c_void, key: *const c_char, timeout_ms: i64, err: *mut *mut c_char) -> c_int;
        #[allow(clippy::too_many_arguments)]
        pub fn gz_sync_batch_norm(
            g: *mut c_void,
            x: *const C_tensor,
            w: *const C_tensor,
            b: *const C_tensor,
            running_mean: *const C_tensor,
            running_var: *const C_tensor,
            momentum: f64,
            eps: f64,
            err: *mut *mut c_char,
        ) -> *mut C_tensor;
    }
}

/// A libtorch failure, with libtorch's message (its first line; the C++ backtrace is left out).
#[derive(Debug, Clone, PartialEq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Takes a string the shim allocated.
fn take(p: *mut c_char) -> String {
    // SAFETY: `p` is a NUL-terminated string malloc'ed by the shim, freed once here.
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    unsafe { ffi::gz_free_string(p) };
    s
}

/// Calls `f` with an error slot; an error the shim set becomes `Err` (its first line).
fn call<T>(f: impl FnOnce(*mut *mut c_char) -> T) -> Result<T, Error> {
    let mut err: *mut c_char = std::ptr::null_mut();
    let out = f(&mut err);
    if err.is_null() {
        Ok(out)
    } else {
        let msg = take(err);
        let first = msg.split("\nException raised from").next().unwrap_or(&msg).trim_end();
        Err(Error(first.lines().next().unwrap_or(first).to_string()))
    }
}

/// `torch.nn.functional.leaky_relu(x, slope)`: libtorch's kernel, forward and backward.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Tensor {
    let p = call(|e| unsafe { ffi::gz_leaky_relu(x.as_ptr(), slope, e) }).unwrap_or_else(|e| panic!("leaky_relu: {e}"));
    // SAFETY: a new at::Tensor the shim allocated; the Tensor owns it from here.
    unsafe { Tensor::from_ptr(p) }
}

/// libtorch's thread-local autocast state, by `c10::DeviceType` and `c10::ScalarType` codes.
pub mod autocast {
    use super::*;
    /// The dtype autocast uses on this device type, on this thread.
    pub fn dtype(device_type: i32) -> i32 {
        call(|e| unsafe { ffi::gz_autocast_dtype(device_type, e) }).unwrap_or(-1)
    }
    pub fn set_dtype(device_type: i32, dtype: i32) {
        let _ = call(|e| unsafe { ffi::gz_set_autocast_dtype(device_type, dtype, e) });
    }
    pub fn enabled(device_type: i32) -> bool {
        call(|e| unsafe { ffi::gz_autocast_enabled(device_type, e) }).is_ok_and(|v| v == 1)
    }
    pub fn set_enabled(device_type: i32, on: bool) {
        let _ = call(|e| unsafe { ffi::gz_set_autocast_enabled(device_type, on as c_int, e) });
    }
    pub fn cache_enabled() -> bool {
        unsafe { ffi::gz_autocast_cache_enabled() == 1 }
    }
    pub fn set_cache_enabled(on: bool) {
        unsafe { ffi::gz_set_autocast_cache_enabled(on as c_int) }
    }
}

/// Whether this build has c10d's Gloo process group (it needs gloo's headers at build time).
pub fn has_gloo() -> bool {
    unsafe { ffi::gz_has_gloo() == 1 }
}

/// Where and how the ranks of a job meet (torchrun's variables: `MASTER_ADDR`, `MASTER_PORT`, `RANK`,
/// `WORLD_SIZE`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendezvous {
    pub host: String,
    pub port: u16,
    pub rank: usize,
    pub world: usize,
    /// Whether torchrun's agent already hosts the store (`TORCHELASTIC_USE_AGENT_STORE=True`); otherwise rank 0
    /// hosts it.
    pub agent_store: bool,
    /// Keys of this job in the store (torchrun restarts count up: `TORCHELASTIC_RESTART_COUNT`).
    pub prefix: String,
    /// The network interface Gloo binds to (`GLOO_SOCKET_IFNAME`); empty: this host's name, else loopback.
    pub interface: String,
    /// Every collective fails after this long.
    pub timeout: Duration,
}

/// A c10d Gloo process group: this process is one rank of `world`.
pub struct ProcessGroup {
    ptr: *mut c_void,
    pub rank: usize,
    pub world: usize,
}

// SAFETY: c10d's ProcessGroupGloo is safe to call from any thread (one call at a time here: &mut self).
unsafe impl Send for ProcessGroup {}

/// DDP's default bucket: 25 MiB.
pub const BUCKET_BYTES: i64 = 25 << 20;

fn cstr(s: &str) -> CString {
    CString::new(s.replace('\0', "")).expect("NULs removed")
}

/// Raw tensor handles of `ts` for the shim (which writes through them in place).
fn handles(ts: &[Tensor]) -> Vec<*mut C_tensor> {
    ts.iter().map(|t| t.as_ptr() as *mut C_tensor).collect()
}

#[cfg(ganzoo_gloo)]
impl ProcessGroup {
    /// Meets the other ranks (waits up to the timeout for them) and opens the Gloo process group.
    pub fn new(r: &Rendezvous) -> Result<ProcessGroup, Error> {
        let (host, prefix, iface) = (cstr(&r.host), cstr(&r.prefix), cstr(&r.interface));
        let ms = r.timeout.as_millis().min(i64::MAX as u128) as i64;
        let ptr = call(|e| unsafe {
            ffi::gz_group_new(host.as_ptr(), r.port as c_int, r.rank as c_int, r.world as c_int, ms, r.agent_store as c_int, prefix.as_ptr(), iface.as_ptr(), e)
        })?;
        Ok(ProcessGroup { ptr, rank: r.rank, world: r.world })
    }

    /// Sums the tensors across ranks in place (`average`: divides by the world size), in flat buckets of at most
    /// [`BUCKET_BYTES`]; the tensors must share one dtype and device.
    pub fn all_reduce(&mut self, ts: &[Tensor], average: bool) -> Result<(), Error> {
        let mut h = handles(ts);
        call(|e| unsafe { ffi::gz_all_reduce(self.ptr, h.as_mut_ptr(), h.len() as c_int, average as c_int, BUCKET_BYTES, e) }).map(drop)
    }

    /// Copies rank `root`'s tensors into every rank's, in place.
    pub fn broadcast(&mut self, ts: &[Tensor], root: usize) -> Result<(), Error> {
        let mut h = handles(ts);
        call(|e| unsafe { ffi::gz_broadcast(self.ptr, h.as_mut_ptr(), h.len() as c_int, root as c_int, e) }).map(drop)
    }

    /// Every rank's `t` (the same shape on each), stacked: shape `[world, ...]`.
    pub fn all_gather(&mut self, t: &Tensor) -> Result<Tensor, Error> {
        let p = call(|e| unsafe { ffi::gz_all_gather(self.ptr, t.as_ptr(), e) })?;
        // SAFETY: a new at::Tensor the shim allocated.
        Ok(unsafe { Tensor::from_ptr(p) })
    }

    /// Waits until every rank got here.
    pub fn barrier(&mut self) -> Result<(), Error> {
        call(|e| unsafe { ffi::gz_barrier(self.ptr, e) }).map(drop)
    }

    /// Sets `key` in the job's store.
    pub fn store_set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        let (k, v) = (cstr(key), cstr(value));
        call(|e| unsafe { ffi::gz_store_set(self.ptr, k.as_ptr(), v.as_ptr(), e) }).map(drop)
    }

    /// The value of `key` in the job's store, `None` when no rank set it.
    pub fn store_get(&mut self, key: &str) -> Result<Option<String>, Error> {
        let k = cstr(key);
        let p = call(|e| unsafe { ffi::gz_store_get(self.ptr, k.as_ptr(), e) })?;
        Ok((!p.is_null()).then(|| take(p)))
    }

    /// Waits until some rank sets `key` in the job's store, at most `timeout` (not the collectives' timeout).
    pub fn store_wait(&mut self, key: &str, timeout: Duration) -> Result<(), Error> {
        let k = cstr(key);
        let ms = timeout.as_millis().min(i64::MAX as u128) as i64;
        call(|e| unsafe { ffi::gz_store_wait(self.ptr, k.as_ptr(), ms, e) }).map(drop)
    }
}

thread_local! {
    /// Whether this thread's batch norms use the synchronized arithmetic, and over which group (null: one
    /// process) ([`SyncBatchNormScope`]).
    static SYNC_BN: std::cell::Cell<Option<*mut c_void>> = const { std::cell::Cell::new(None) };
}

/// Whether batch norms in training mode on this thread use [`sync_batch_norm`].
pub fn sync_batch_norm_active() -> bool {
    SYNC_BN.with(|c| c.get().is_some())
}

/// Batch norm in training mode over every rank's rows (torch.nn.SyncBatchNorm), inside a
/// [`SyncBatchNormScope`]: statistics of the whole global batch (float64 per-rank mean and M2, combined in rank
/// order), running statistics updated in place, and a backward that sums the per-channel terms over ranks. In a
/// scope without a group (one process) the same arithmetic with nothing to exchange, so that one process and N
/// ranks compute the same numbers.
#[allow(clippy::too_many_arguments)]
pub fn sync_batch_norm(x: &Tensor, w: &Tensor, b: &Tensor, running_mean: &Tensor, running_var: &Tensor, momentum: f64, eps: f64) -> Result<Tensor, Error> {
    let Some(g) = SYNC_BN.with(|c| c.get()) else {
        return Err(Error("sync_batch_norm outside a SyncBatchNormScope".into()));
    };
    #[cfg(ganzoo_gloo)]
    {
        let p = call(|e| unsafe {
            ffi::gz_sync_batch_norm(g, x.as_ptr(), w.as_ptr(), b.as_ptr(), running_mean.as_ptr(), running_var.as_ptr(), momentum, eps, e)
        })?;
        // SAFETY: a new at::Tensor the shim allocated.
        Ok(unsafe { Tensor::from_ptr(p) })
    }
    #[cfg(not(ganzoo_gloo))]
    {
        let _ = (g, x, w, b, running_mean, running_var, momentum, eps);
        Err(Error(ProcessGroup::MISSING.into()))
    }
}

/// While it lives, this thread's batch norms in training use [`sync_batch_norm`] (`train.sync_batch_norm`);
/// dropping it restores what was before.
pub struct SyncBatchNormScope(Option<*mut c_void>);

impl SyncBatchNormScope {
    /// Over `group`'s ranks, or, without one, in this process alone.
    /// The group must outlive the scope and every backward through what ran inside it.
    pub fn enter(group: Option<&ProcessGroup>) -> SyncBatchNormScope {
        let ptr = group.map_or(std::ptr::null_mut(), |g| g.ptr);
        SyncBatchNormScope(SYNC_BN.with(|c| c.replace(Some(ptr))))
    }
}

impl Drop for SyncBatchNormScope {
    fn drop(&mut self) {
        SYNC_BN.with(|c| c.set(self.0));
    }
}

#[cfg(not(ganzoo_gloo))]
impl ProcessGroup {
    const MISSING: &'static str = "this ganzoo was built without gloo's headers, so without data-parallel training; \
                                   run `bash .ci/dev quickstart` (it unpacks them into .venv/gloo) and build again";
    pub fn new(_: &Rendezvous) -> Result<ProcessGroup, Error> {
        Err(Error(Self::MISSING.into()))
    }
    pub fn all_reduce(&mut self, _: &[Tensor], _: bool) -> Result<(), Error> {
        Err(Error(Self::MISSING.into()))
    }
    pub fn broadcast(&mut self, _: &[Tensor], _: usize) -> Result<(), Error> {
        Err(Error(Self::MISSING.into()))
    }
    pub fn all_gather(&mut self, _: &Tensor) -> Result<Tensor, Error> {
        Err(Error(Self::MISSING.into()))
    }
    pub fn barrier(&mut self) -> Result<(), Error> {
        Err(Error(Self::MISSING.into()))
    }
    pub fn store_set(&mut self, _: &str, _: &str) -> Result<(), Error> {
        Err(Error(Self::MISSING.into()))
    }
    pub fn store_get(&mut self, _: &str) -> Result<Option<String>, Error> {
        Err(Error(Self::MISSING.into()))
    }
    pub fn store_wait(&mut self, _: &str, _: Duration) -> Result<(), Error> {
        Err(Error(Self::MISSING.into()))
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        #[cfg(ganzoo_gloo)]
        // SAFETY: the group the shim allocated, freed once.
        unsafe {
            ffi::gz_group_free(self.ptr)
        };
    }
}
