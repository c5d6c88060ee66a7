//! A counting allocator for the test binary that includes this file (the autograd suite,
//! and the nn suite through `#[path]`): every allocation is forwarded to `System` and
//! counted, process-wide (live bytes) and per thread (live bytes, allocations made, bytes
//! allocated). Tests run in parallel threads, so assertions read the counters of the thread
//! that does the work: a test whose kernels could run on a second thread runs them in a
//! one-thread rayon pool ([`on_one_thread`]), where tapegrad's fork-join runs both halves on
//! the calling thread.
//!
//! [`start_attributing`] / [`stop_attributing`] also sort a stretch's allocations by
//! origin: those made inside the `gemm` crate (reached only through `tapegrad-gemm`'s
//! `gemm/src/lib.rs`, found in each allocation's backtrace: the test profile keeps line
//! tables), and all the others. The gemm crate's share depends on the CPU (its blocking
//! follows the cache sizes and the vector width), the rest does not.
//!
//! Installed with `#[global_allocator]` by the binary's `main.rs`; no other module may
//! declare one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Forwards to `System`, counting.
pub(crate) struct CountingAllocator;

/// Live heap bytes of the whole process.
pub(crate) static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
    static THREAD_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static THREAD_ALLOCATED_BYTES: Cell<u64> = const { Cell::new(0) };
    /// Whether this thread's allocations are being attributed ([`start_attributing`]).
    static ATTRIBUTING: Cell<bool> = const { Cell::new(false) };
    /// Set while a backtrace is taken: the allocations that makes are not counted.
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    /// The size and backtrace of each allocation attributed so far.
    static ORIGINS: RefCell<Vec<(u64, Backtrace)>> = const { RefCell::new(Vec::new()) };
}

/// Records an allocation of `size` bytes (`allocation`: an `alloc` or a `realloc`) or a
/// release (`size` negative).
fn record(delta: isize, allocation: bool) {
    if CAPTURING.try_with(Cell::get).unwrap_or(true) {
        return;
    }
    if delta >= 0 {
        LIVE_BYTES.fetch_add(delta as usize, Ordering::Relaxed);
    } else {
        LIVE_BYTES.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
    }
    let _ = THREAD_LIVE_BYTES.try_with(|bytes| bytes.set(bytes.get() + delta));
    if allocation {
        let _ = THREAD_ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        let _ = THREAD_ALLOCATED_BYTES.try_with(|n| n.set(n.get() + delta.max(0) as u64));
        if ATTRIBUTING.try_with(Cell::get).unwrap_or(false) {
            CAPTURING.with(|c| c.set(true));
            let trace = Backtrace::force_capture();
            ORIGINS.with(|o| o.borrow_mut().push((delta.max(0) as u64, trace)));
            CAPTURING.with(|c| c.set(false));
        }
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s
// contract; the counting touches only atomics and thread-locals (`try_with`, so it never
// panics during thread teardown) and never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            record(layout.size() as isize, true);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            record(layout.size() as isize, true);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: `p` was allocated by `System` with `layout` (every allocation goes through it).
        unsafe { System.dealloc(p, layout) };
        record(-(layout.size() as isize), false);
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`.
        let q = unsafe { System.realloc(p, layout, new_size) };
        if !q.is_null() {
            record(-(layout.size() as isize), false);
            record(new_size as isize, true);
        }
        q
    }
}

/// Live heap bytes allocated (and not freed) by the current thread.
pub(crate) fn thread_live_bytes() -> isize {
    THREAD_LIVE_BYTES.with(Cell::get)
}

/// What the current thread has allocated so far: allocations (`alloc`, `alloc_zeroed` and
/// `realloc` calls) and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Allocated {
    pub(crate) count: u64,
    pub(crate) bytes: u64,
}

impl Allocated {
    /// The current thread's totals.
    pub(crate) fn now() -> Self {
        Allocated {
            count: THREAD_ALLOCATIONS.with(Cell::get),
            bytes: THREAD_ALLOCATED_BYTES.with(Cell::get),
        }
    }

    /// What was allocated between `earlier` and `self`.
    pub(crate) fn since(self, earlier: Allocated) -> Allocated {
        Allocated {
            count: self.count - earlier.count,
            bytes: self.bytes - earlier.bytes,
        }
    }
}

/// The current thread's allocations during each of `steps` calls of `step`.
pub(crate) fn per_step(steps: usize, mut step: impl FnMut()) -> Vec<Allocated> {
    let mut counts = Vec::with_capacity(steps);
    for _ in 0..steps {
        let before = Allocated::now();
        step();
        counts.push(Allocated::now().since(before));
    }
    counts
}

/// The allocations of a stretch by origin ([`stop_attributing`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Origins {
    /// Made inside the `gemm` crate (its packing buffers and flags, one set per product).
    pub(crate) gemm: Allocated,
    /// All the others.
    pub(crate) rest: Allocated,
}

/// Starts recording a backtrace of each allocation the current thread makes.
pub(crate) fn start_attributing() {
    ORIGINS.with(|o| o.borrow_mut().clear());
    ATTRIBUTING.with(|a| a.set(true));
}

/// Stops recording and sorts what was recorded since [`start_attributing`] by origin.
pub(crate) fn stop_attributing() -> Origins {
    ATTRIBUTING.with(|a| a.set(false));
    CAPTURING.with(|c| c.set(true));
    let origins = ORIGINS.with(|o| std::mem::take(&mut *o.borrow_mut()));
    let mut sorted = Origins::default();
    for (bytes, trace) in &origins {
        let side = if trace.to_string().contains("/gemm/src/lib.rs") {
            &mut sorted.gemm
        } else {
            &mut sorted.rest
        };
        side.count += 1;
        side.bytes += bytes;
    }
    drop(origins);
    CAPTURING.with(|c| c.set(false));
    sorted
}

/// The allocations of one call of `step`, by origin.
pub(crate) fn attributed(step: impl FnOnce()) -> Origins {
    start_attributing();
    step();
    stop_attributing()
}

/// Runs `f` on a one-thread rayon pool: every kernel's work, both halves of a fork-join
/// included, runs on that thread, so its counters see all of it.
pub(crate) fn on_one_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool")
        .install(f)
}
