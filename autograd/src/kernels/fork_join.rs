//! Fork-join on two threads, with a helper thread that spins between jobs.
//!
//! tapegrad's own kernels split their largest work in two and run the halves side by side
//! with [`join`]: a matrix product's two output halves, a product's two gradients, an
//! optimizer's update of a large parameter. Custom kernels can do the same.
//!
//! Why not `rayon::join`: rayon's workers go to sleep on a futex a few microseconds after
//! they run out of work; on a virtual machine a sleeping virtual CPU is halted, and waking
//! it is slow: on the 2-vCPU KVM guest the benchmarks run on, after a gap like the one
//! between two products of a training step, the second half of a `rayon::join` starts late,
//! and at times not before the calling thread has finished its own half (figures in
//! `benches/README.md`, "The helper thread").
//!
//! The helper here does what OpenMP runtimes do (`KMP_BLOCKTIME`, `GOMP_SPINCOUNT`): after a
//! job it keeps polling for the next one for 5 ms, yielding its CPU to any other runnable
//! thread every few polls, and only then parks. It starts a job within about a microsecond
//! of its posting, and the batch-128 training step of the 784-256-128-10 MLP
//! (`nn/examples/mlp_profile`) runs faster with it than with `rayon::join`
//! (`benches/README.md`).
//!
//! There is one helper per process, started by the first [`join`] that needs it. A call
//! that finds it busy (another thread's join, or a join from inside a helper job) falls
//! back to `rayon::join`; a call made where rayon has one thread (`RAYON_NUM_THREADS=1`, or
//! inside a one-thread pool) runs both closures on the calling thread.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long the helper keeps polling for work after its last job before it parks (the
/// 5 ms of the module documentation).
///
/// Products inside one training step come every 0.05–1 ms; steps follow each other with
/// the same gaps. 5 ms covers them, and bounds the CPU time spent polling once training
/// stops. Polling yields the CPU to any other runnable thread, so it costs the other
/// threads of the process little.
const SPIN_TIME: Duration = Duration::from_millis(5);

/// Polls between two checks of the clock (and two `yield_now`) while the helper waits; a
/// power of two (the loops test `polls & (POLLS_PER_YIELD - 1)`).
const POLLS_PER_YIELD: u32 = 64;

/// No job; a caller may claim the helper.
const IDLE: u8 = 0;
/// A caller owns the helper and is writing its job into the slot.
const CLAIMED: u8 = 1;
/// The job is in the slot; the helper may take and run it.
const POSTED: u8 = 2;
/// The helper has run the job and will not touch it again; the caller reads the result and
/// sets `IDLE`.
const DONE: u8 = 3;

/// A job the helper can run: a closure and the slot for its result, on the caller's stack.
trait Job: Sync {
    /// Runs the closure once, catching a panic into the result slot.
    fn run(&self);
}

/// The closure handed to the helper and, once it ran, its outcome (or its panic).
struct StackJob<'a> {
    f: Mutex<Option<&'a mut (dyn FnMut() + Send)>>,
    result: Mutex<Option<thread::Result<()>>>,
}

impl Job for StackJob<'_> {
    fn run(&self) {
        let f = lock(&self.f).take().expect("a posted job runs once");
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        *lock(&self.result) = Some(result);
    }
}

/// What the calling thread and the helper share.
struct Shared {
    state: AtomicU8,
    /// Set by the helper just before it parks, cleared when it wakes.
    parked: AtomicBool,
    /// The posted job. It borrows the caller's stack: see the SAFETY comment in [`join`].
    job: Mutex<Option<&'static dyn Job>>,
}

static SHARED: Shared = Shared {
    state: AtomicU8::new(IDLE),
    parked: AtomicBool::new(false),
    job: Mutex::new(None),
};

/// The helper thread's handle (to unpark it), or `None` if it could not be spawned.
static HELPER: OnceLock<Option<Thread>> = OnceLock::new();

thread_local! {
    static IS_HELPER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Locks a mutex that is never held while user code runs, so never poisoned in practice;
/// a poisoned one still holds consistent data (an `Option` swapped whole).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn helper() -> Option<&'static Thread> {
    HELPER
        .get_or_init(|| {
            thread::Builder::new()
                .name("tapegrad-helper".into())
                .spawn(helper_loop)
                .ok()
                .map(|handle| handle.thread().clone())
        })
        .as_ref()
}

/// Aborts the process if the helper thread unwinds: a caller may be waiting for its `DONE`,
/// and would otherwise wait for ever. (Jobs run under `catch_unwind`; only a broken
/// invariant of this module could unwind here.)
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        if thread::panicking() {
            std::process::abort();
        }
    }
}

fn helper_loop() {
    let _abort_on_unwind = AbortOnUnwind;
    IS_HELPER.with(|h| h.set(true));
    loop {
        wait_for_post();
        let job = lock(&SHARED.job)
            .take()
            .expect("a posted job is in the slot");
        job.run();
        // After this store the helper does not touch `job` again (see `join`).
        SHARED.state.store(DONE, Ordering::Release);
    }
}

/// Polls for a posted job for [`SPIN_TIME`], yielding every [`POLLS_PER_YIELD`] polls, then
/// parks until a caller unparks it; repeats until a job is posted.
fn wait_for_post() {
    let mut since = Instant::now();
    let mut polls = 0_u32;
    loop {
        if SHARED.state.load(Ordering::Acquire) == POSTED {
            return;
        }
        polls = polls.wrapping_add(1);
        if polls & (POLLS_PER_YIELD - 1) != 0 {
            std::hint::spin_loop();
            continue;
        }
        if since.elapsed() < SPIN_TIME {
            thread::yield_now();
            continue;
        }
        // Either this load sees the caller's `POSTED`, or the caller's load of `parked`
        // sees `true` and unparks (both sides use SeqCst); an unpark before `park` makes
        // `park` return at once.
        SHARED.parked.store(true, Ordering::SeqCst);
        if SHARED.state.load(Ordering::SeqCst) != POSTED {
            thread::park();
        }
        SHARED.parked.store(false, Ordering::SeqCst);
        since = Instant::now();
    }
}

/// Runs `a` on the calling thread and `b` on the helper thread, and returns both results
/// once both have finished. A panic in either is resumed on the calling thread after both
/// have finished.
///
/// Where rayon has a single thread (`RAYON_NUM_THREADS=1`, or inside a one-thread pool)
/// both run on the calling thread, `a` first. When the helper is busy (another thread's
/// join, or a join from inside a helper job) or could not be started, this is
/// `rayon::join`.
///
/// `b` runs on the helper, outside any rayon pool the caller installed: rayon work that `b`
/// starts goes to the global pool, and a pool's `start_handler` (floating-point flags set
/// per thread, say) does not apply to it.
///
/// ```
/// use tapegrad_autograd::fork_join::join;
///
/// let mut data: Vec<f32> = (0..100_000).map(|i| i as f32).collect();
/// let (left, right) = data.split_at_mut(50_000);
/// let scale = |half: &mut [f32]| half.iter_mut().for_each(|x| *x *= 0.5);
/// join(|| scale(left), || scale(right));
/// assert_eq!(data[99_999], 49_999.5);
/// ```
pub fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    // The closures and their results are reached through `dyn FnMut`, so the machinery of
    // `join_erased` (the helper's job, rayon's fallback) is compiled once, not once per pair
    // of closures in every crate that joins: a kernel pays one indirect call per half.
    let (mut a, mut b) = (Some(a), Some(b));
    let (mut ra, mut rb) = (None, None);
    join_erased(&mut || ra = a.take().map(|a| a()), &mut || {
        rb = b.take().map(|b| b())
    });
    (
        ra.expect("`a` ran: join_erased returns after both"),
        rb.expect("`b` ran: join_erased returns after both"),
    )
}

/// [`join`] of two closures that run once each and keep their results themselves.
fn join_erased(a: &mut (dyn FnMut() + Send), b: &mut (dyn FnMut() + Send)) {
    if rayon::current_num_threads() < 2 {
        // Like `rayon::join` on one thread: `b` runs even if `a` panicked.
        let ra = panic::catch_unwind(AssertUnwindSafe(&mut *a));
        let rb = panic::catch_unwind(AssertUnwindSafe(&mut *b));
        resume_if_panicked(ra);
        resume_if_panicked(rb);
        return;
    }
    let Some(helper) = helper() else {
        rayon::join(a, b);
        return;
    };
    if IS_HELPER.with(|h| h.get())
        || SHARED
            .state
            .compare_exchange(IDLE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    {
        rayon::join(a, b);
        return;
    }
    let job = StackJob {
        f: Mutex::new(Some(b)),
        result: Mutex::new(None),
    };
    let borrowed: &(dyn Job + '_) = &job;
    // SAFETY: the helper reads `job` only between the `POSTED` store below and its `DONE`
    // store, and this function neither returns nor unwinds before it has seen `DONE`
    // (`a` runs under `catch_unwind`, and the wait below cannot panic), so `job` outlives
    // every use of this reference. The slot is emptied by the helper before it runs the
    // job, so no copy of the reference survives either.
    let posted: &'static dyn Job =
        unsafe { std::mem::transmute::<&(dyn Job + '_), &'static dyn Job>(borrowed) };
    *lock(&SHARED.job) = Some(posted);
    SHARED.state.store(POSTED, Ordering::SeqCst);
    if SHARED.parked.load(Ordering::SeqCst) {
        helper.unpark();
    }
    let ra = panic::catch_unwind(AssertUnwindSafe(a));
    wait_for_done();
    let rb = lock(&job.result)
        .take()
        .expect("the helper stores a result before DONE");
    SHARED.state.store(IDLE, Ordering::Release);
    resume_if_panicked(ra);
    resume_if_panicked(rb);
}

/// Runs `work(start, part)` over `a`: with `side_by_side`, on its two halves (split at the
/// middle) side by side through [`join`], else on the whole slice on the calling thread.
/// `part` is `a[start..start + part.len()]`, and the parts cover `a` once.
pub(crate) fn halves<A: Send>(
    a: &mut [A],
    side_by_side: bool,
    work: impl Fn(usize, &mut [A]) + Sync,
) {
    if side_by_side {
        in_two_halves(a, &work);
    } else {
        work(0, a);
    }
}

/// The side-by-side case of [`halves`], with `work` behind a reference: it is compiled once
/// per element type rather than once per kernel, for one indirect call per half.
#[inline(never)]
fn in_two_halves<A: Send>(a: &mut [A], work: &(dyn Fn(usize, &mut [A]) + Sync)) {
    let mid = a.len() / 2;
    let (first, second) = a.split_at_mut(mid);
    join(|| work(0, first), || work(mid, second));
}

/// Spins until the helper has stored `DONE`, yielding now and then in case the helper is
/// waiting for this CPU.
fn wait_for_done() {
    let mut polls = 0_u32;
    while SHARED.state.load(Ordering::Acquire) != DONE {
        polls = polls.wrapping_add(1);
        if polls & (POLLS_PER_YIELD - 1) == 0 {
            thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

fn resume_if_panicked<R>(r: Result<R, Box<dyn Any + Send>>) -> R {
    r.unwrap_or_else(|payload| panic::resume_unwind(payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn both_sides_run_and_return_their_results() {
        let data: Vec<u64> = (1..=1000).collect();
        let (left, right) = data.split_at(500);
        for _ in 0..100 {
            let (a, b) = join(|| left.iter().sum::<u64>(), || right.iter().sum::<u64>());
            assert_eq!(a + b, 500_500);
            assert_eq!(a, 125_250);
        }
    }

    #[test]
    fn b_may_write_borrowed_data() {
        let mut out = [0_u64; 2];
        let (first, second) = out.split_at_mut(1);
        join(|| first[0] = 1, || second[0] = 2);
        assert_eq!(out, [1, 2]);
    }

    fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool")
            .install(f)
    }

    fn helper_runs(b_name: Option<String>) -> bool {
        b_name.as_deref() == Some("tapegrad-helper")
    }

    #[test]
    fn b_runs_on_the_helper_thread() {
        // Other tests may hold the helper for a moment (then `join` falls back to rayon,
        // which may run `b` on the calling thread): retry until the helper took a job.
        let took = in_pool(2, || {
            let start = Instant::now();
            loop {
                let (_, name) = join(|| (), || thread::current().name().map(str::to_owned));
                if helper_runs(name) || start.elapsed().as_secs() > 10 {
                    break start.elapsed().as_secs() <= 10;
                }
            }
        });
        assert!(took, "the helper never ran a job");
    }

    #[test]
    fn one_rayon_thread_means_both_run_on_the_calling_thread_in_order() {
        let caller = thread::current().id();
        let order = Mutex::new(Vec::new());
        let (a, b) = in_pool(1, || {
            join(
                || {
                    lock(&order).push('a');
                    thread::current().id()
                },
                || {
                    lock(&order).push('b');
                    thread::current().id()
                },
            )
        });
        // `install` runs the closure on the pool's one worker, not on this thread.
        assert_ne!(a, caller);
        assert_eq!(a, b);
        assert_eq!(*lock(&order), ['a', 'b']);
    }

    #[test]
    fn a_panic_on_either_side_reaches_the_caller_after_both_finished() {
        for threads in [2, 1] {
            in_pool(threads, panics_reach_the_caller_after_both_finished);
        }
    }

    fn panics_reach_the_caller_after_both_finished() {
        for helper_panics in [false, true] {
            let finished = AtomicUsize::new(0);
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
                join(
                    || {
                        finished.fetch_add(1, Ordering::SeqCst);
                        assert!(helper_panics, "caller side");
                    },
                    || {
                        thread::sleep(Duration::from_millis(20));
                        finished.fetch_add(1, Ordering::SeqCst);
                        assert!(!helper_panics, "helper side");
                    },
                )
            }));
            let message = outcome.expect_err("the panic is resumed");
            let message = message
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| message.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let side = if helper_panics {
                "helper side"
            } else {
                "caller side"
            };
            assert!(message.contains(side), "{message}");
            assert_eq!(finished.load(Ordering::SeqCst), 2);
        }
        // The helper is usable again.
        assert_eq!(join(|| 1, || 2), (1, 2));
    }

    #[test]
    fn concurrent_and_nested_joins_fall_back_and_stay_correct() {
        let total = AtomicUsize::new(0);
        thread::scope(|s| {
            for t in 0..4 {
                let total = &total;
                s.spawn(move || {
                    for i in 0..200 {
                        let (a, b) =
                            join(|| t * 1000 + i, || join(|| 1, || 2).0 + join(|| 3, || 4).1);
                        total.fetch_add(a + b, Ordering::SeqCst);
                    }
                });
            }
        });
        let expected: usize = (0..4)
            .flat_map(|t| (0..200).map(move |i| t * 1000 + i + 5))
            .sum();
        assert_eq!(total.load(Ordering::SeqCst), expected);
    }

    #[test]
    fn a_parked_helper_is_woken() {
        in_pool(2, || {
            // Other tests may keep the helper busy for a while: wait until it has parked
            // (it does so 5 ms after its last job), then until a join reaches it.
            let deadline = Instant::now() + Duration::from_secs(20);
            join(|| (), || ());
            while !SHARED.parked.load(Ordering::SeqCst) {
                assert!(Instant::now() < deadline, "the helper never parked");
                thread::sleep(Duration::from_millis(1));
            }
            loop {
                let (_, name) = join(|| (), || thread::current().name().map(str::to_owned));
                if helper_runs(name) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the parked helper never ran a job"
                );
            }
        });
    }
}
