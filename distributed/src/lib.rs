//! # tapegrad-distributed
//!
//! Data-parallel training across processes and machines, over MPI: [`MpiCommunicator`]
//! implements tapegrad-nn's [`Communicator`] on MPI's world communicator (through the `mpi`
//! crate, over the system's MPI library, e.g. Open MPI).
//!
//! Start the program with `mpirun` (one process per rank; `mpirun --hostfile hosts -np 8`
//! across machines), create one communicator per process, and hand it to `fit`:
//!
//! ```no_run
//! use std::rc::Rc;
//! use tapegrad_distributed::MpiCommunicator;
//! use tapegrad_nn::communicator::Communicator;
//!
//! let comm = Rc::new(MpiCommunicator::init()?);
//! if comm.is_root() {
//!     println!("{} processes", comm.size());
//! }
//! # Ok::<(), tapegrad_distributed::InitError>(())
//! ```
//!
//! MPI is finalized when the last reference to the communicator is dropped; a process can
//! initialize MPI once.
//!
//! The communicator times its own MPI calls ([`MpiCommunicator::stats`]), so a program can
//! report how much of a training step went to communication.
#![warn(missing_docs)]

use std::cell::{Cell, RefCell};
use std::fmt;
use std::time::{Duration, Instant};

use mpi::Threading;
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator as _, CommunicatorCollectives, Root};
use tapegrad_nn::communicator::{CommError, Communicator};

pub use tapegrad_nn::communicator;

/// Why MPI could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// MPI was already initialized in this process (it can be once).
    #[error("MPI is already initialized in this process")]
    AlreadyInitialized,
    /// The MPI library offers less thread support than training needs (MPI is called from
    /// the main thread only, while compute threads run: `MPI_THREAD_FUNNELED`).
    #[error("the MPI library supports threads only at level {provided:?}; training needs Funneled")]
    Threading {
        /// The level the library provided.
        provided: Threading,
    },
}

/// Call counts, bytes and time spent in one kind of MPI call.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OpStats {
    /// Number of calls.
    pub calls: u64,
    /// Bytes in the buffers passed (per process, not on the wire).
    pub bytes: u64,
    /// Wall-clock time inside the calls, waiting for the other ranks included.
    pub time: Duration,
}

impl OpStats {
    /// Mean time per call (zero without calls).
    pub fn mean(&self) -> Duration {
        if self.calls == 0 {
            Duration::ZERO
        } else {
            self.time / self.calls as u32
        }
    }
}

/// The timings of an [`MpiCommunicator`]'s calls since it was created (or since
/// [`MpiCommunicator::reset_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CommStats {
    /// All-reduces (sum).
    pub all_reduce: OpStats,
    /// Broadcasts.
    pub broadcast: OpStats,
    /// Barriers.
    pub barrier: OpStats,
}

/// MPI's world communicator as a tapegrad [`Communicator`]: every process started by
/// `mpirun` is one rank.
///
/// All-reduces sum in the element type (`MPI_SUM` on `MPI_FLOAT` / `MPI_DOUBLE`), and
/// every rank receives the same bits. The `mpi` crate has no in-place all-reduce, so the
/// buffer is first copied to a scratch buffer kept between calls (one `memcpy`, about
/// 0.1 ms for a million `f32`, small beside the reduction itself).
pub struct MpiCommunicator {
    world: SimpleCommunicator,
    scratch_f32: RefCell<Vec<f32>>,
    scratch_f64: RefCell<Vec<f64>>,
    stats: Cell<CommStats>,
    // Dropped last: finalizes MPI.
    _universe: Universe,
}

impl fmt::Debug for MpiCommunicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MpiCommunicator")
            .field("rank", &self.rank())
            .field("size", &self.size())
            .finish_non_exhaustive()
    }
}

/// The largest buffer one MPI call takes (counts are C `int`s).
const MAX_COUNT: usize = i32::MAX as usize;

fn check_len(operation: &'static str, len: usize) -> Result<(), CommError> {
    if len > MAX_COUNT {
        Err(CommError::TooLarge {
            operation,
            len,
            max: MAX_COUNT,
        })
    } else {
        Ok(())
    }
}

impl MpiCommunicator {
    /// Initializes MPI (thread level `MPI_THREAD_FUNNELED`: compute threads may run, only
    /// the main thread calls MPI) and returns the world communicator.
    ///
    /// Run under `mpirun`; started directly, the program is a world of one process.
    ///
    /// # Errors
    ///
    /// [`InitError::AlreadyInitialized`], [`InitError::Threading`].
    pub fn init() -> Result<Self, InitError> {
        let (universe, provided) = mpi::initialize_with_threading(Threading::Funneled)
            .ok_or(InitError::AlreadyInitialized)?;
        if provided < Threading::Funneled {
            return Err(InitError::Threading { provided });
        }
        let world = universe.world();
        Ok(MpiCommunicator {
            world,
            scratch_f32: RefCell::new(Vec::new()),
            scratch_f64: RefCell::new(Vec::new()),
            stats: Cell::new(CommStats::default()),
            _universe: universe,
        })
    }

    /// The timings of the MPI calls made through this communicator.
    pub fn stats(&self) -> CommStats {
        self.stats.get()
    }

    /// Sets the timings back to zero.
    pub fn reset_stats(&self) {
        self.stats.set(CommStats::default());
    }

    /// The name of the processor (host) this rank runs on.
    pub fn processor_name(&self) -> String {
        mpi::environment::processor_name().unwrap_or_else(|_| "unknown".to_string())
    }

    fn record(&self, pick: fn(&mut CommStats) -> &mut OpStats, bytes: usize, start: Instant) {
        let elapsed = start.elapsed();
        let mut stats = self.stats.get();
        let op = pick(&mut stats);
        op.calls += 1;
        op.bytes += bytes as u64;
        op.time += elapsed;
        self.stats.set(stats);
    }

    fn check_root(&self, root: usize) -> Result<i32, CommError> {
        let size = self.size();
        if root < size {
            // `size` came from an `int`, so `root` fits one.
            Ok(root as i32)
        } else {
            Err(CommError::InvalidRoot { root, size })
        }
    }

    fn all_reduce<T>(&self, buf: &mut [T], scratch: &RefCell<Vec<T>>) -> Result<(), CommError>
    where
        T: Copy + mpi::datatype::Equivalence,
    {
        check_len("all-reduce", buf.len())?;
        if self.size() == 1 || buf.is_empty() {
            return Ok(());
        }
        let start = Instant::now();
        let mut scratch = scratch.borrow_mut();
        scratch.clear();
        scratch.extend_from_slice(buf);
        self.world
            .all_reduce_into(&scratch[..], buf, SystemOperation::sum());
        self.record(|s| &mut s.all_reduce, std::mem::size_of_val(buf), start);
        Ok(())
    }

    fn bcast<T>(&self, buf: &mut [T], root: usize) -> Result<(), CommError>
    where
        T: mpi::datatype::Equivalence,
    {
        let root = self.check_root(root)?;
        check_len("broadcast", buf.len())?;
        if self.size() == 1 || buf.is_empty() {
            return Ok(());
        }
        let start = Instant::now();
        self.world.process_at_rank(root).broadcast_into(buf);
        self.record(|s| &mut s.broadcast, std::mem::size_of_val(buf), start);
        Ok(())
    }
}

impl Communicator for MpiCommunicator {
    fn rank(&self) -> usize {
        // MPI ranks are non-negative.
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn all_reduce_sum_f32(&self, buf: &mut [f32]) -> Result<(), CommError> {
        self.all_reduce(buf, &self.scratch_f32)
    }

    fn all_reduce_sum_f64(&self, buf: &mut [f64]) -> Result<(), CommError> {
        self.all_reduce(buf, &self.scratch_f64)
    }

    fn broadcast_f32(&self, buf: &mut [f32], root: usize) -> Result<(), CommError> {
        self.bcast(buf, root)
    }

    fn broadcast_f64(&self, buf: &mut [f64], root: usize) -> Result<(), CommError> {
        self.bcast(buf, root)
    }

    fn broadcast_bytes(&self, buf: &mut [u8], root: usize) -> Result<(), CommError> {
        self.bcast(buf, root)
    }

    fn barrier(&self) -> Result<(), CommError> {
        let start = Instant::now();
        self.world.barrier();
        self.record(|s| &mut s.barrier, 0, start);
        Ok(())
    }

    fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}
