//! Process-wide allocator setting for training: keep freed activation buffers for reuse.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    fn mallopt(param: i32, value: i32) -> i32;
}

/// glibc hands large freed blocks back to the OS and maps fresh zeroed pages for the next step's activations:
/// 1.08 M page faults in 60 DCGAN steps and about 11 % of the step time (bench/README.md). Fixed mmap and
/// trim thresholds (32 MiB, 256 MiB) keep those buffers in the heap for reuse. Call once, early, from a binary;
/// elsewhere than glibc it does nothing.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        // SAFETY: mallopt only changes glibc's allocator parameters; called before the training threads start.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20);
            mallopt(M_TRIM_THRESHOLD, 256 << 20);
        }
    }
}
