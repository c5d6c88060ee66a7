//! Keeping freed buffers in the process heap, so a training step does not fault its memory
//! in again.
//!
//! A step allocates its activations, gradients and workspaces afresh (about 25 MB for the
//! Fashion-MNIST CNN at batch 32) and frees them when its tape is dropped. glibc's default
//! policy gives that memory back to the operating system at once: buffers from 128 KiB
//! upwards are `mmap`ed and unmapped one by one, and a free stretch at the top of the heap
//! is trimmed. The next step then takes a page fault for every 4 KiB it touches, which
//! under that policy is a third of the CNN step's time (`benches/README.md`).
//!
//! [`keep_freed_memory`] therefore asks glibc, once per process, to serve buffers up to
//! 32 MiB (the largest threshold it accepts) from the heap and never to trim the heap on
//! its own. The peak memory is unchanged — it is the peak of a step either way — but the
//! memory stays with the process after the peak, as a caching allocator keeps it.
//! [`release_freed_memory`] hands the free part back on request.
//!
//! Nothing is changed when the process already chose: the environment sets `GLIBC_TUNABLES`
//! or any `MALLOC_*_` variable, or `TAPEGRAD_KEEP_FREED_MEMORY=0`. Under another allocator
//! (a `#[global_allocator]` such as mimalloc or jemalloc, or a non-glibc target) the calls
//! only tune glibc's unused heap, or do nothing.

/// The largest `M_MMAP_THRESHOLD` glibc accepts on 64-bit targets: half its 64 MiB heap.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Asks the allocator, once per process, to keep freed buffers for reuse (module doc).
/// The first [`Tape::new`](crate::Tape::new) calls it; later calls cost one atomic load.
pub fn keep_freed_memory() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if process_chose_its_allocator_policy() {
            return;
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: `mallopt` only sets two of glibc's allocator parameters; it is safe to
        // call at any time from any thread (glibc takes its arena locks). A rejected value
        // leaves the default in place, which is only slower.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            // -1: never trim the heap by itself (mallopt(3)).
            libc::mallopt(libc::M_TRIM_THRESHOLD, -1);
        }
    });
}

/// Whether the environment already sets the allocator's policy, or opts out of ours.
fn process_chose_its_allocator_policy() -> bool {
    std::env::var_os("TAPEGRAD_KEEP_FREED_MEMORY").is_some_and(|v| v == "0")
        || std::env::var_os("GLIBC_TUNABLES").is_some()
        || std::env::vars_os().any(|(name, _)| {
            let name = name.to_string_lossy();
            name.starts_with("MALLOC_") && name.ends_with('_')
        })
}

/// Gives the heap's free memory back to the operating system (glibc's `malloc_trim(0)`),
/// for a process that is done training and wants its footprint down; a no-op elsewhere.
/// Returns whether any memory was released.
pub fn release_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` walks glibc's arenas under their locks and only unmaps or
    // advises pages that are free; no live allocation is touched.
    unsafe {
        libc::malloc_trim(0) == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::{keep_freed_memory, process_chose_its_allocator_policy};

    /// The calling thread's minor page faults so far.
    fn thread_minor_faults() -> i64 {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `getrusage` writes the whole struct on success, checked before reading.
        let usage = unsafe {
            assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()), 0);
            usage.assume_init()
        };
        usage.ru_minflt
    }

    /// Allocates 16 MiB, writes every page, frees it.
    fn touch_16_mib() {
        let mut buffer = Vec::<u8>::with_capacity(16 << 20);
        buffer.extend((0..16 << 20).map(|i| (i >> 12) as u8));
        std::hint::black_box(&buffer);
    }

    #[test]
    fn a_freed_buffer_comes_back_without_page_faults() {
        if process_chose_its_allocator_policy() {
            return;
        }
        keep_freed_memory();
        touch_16_mib();
        let before = thread_minor_faults();
        touch_16_mib();
        let faults = thread_minor_faults() - before;
        // glibc's default unmaps the buffer when it is freed: 4,096 faults the second time.
        assert!(
            faults < 256,
            "{faults} page faults for a 16 MiB buffer freed and allocated again"
        );
    }
}
