//! Communicators: how a data-parallel training run talks to its other processes.
//!
//! A [`Communicator`] is the handful of collective operations that data-parallel training
//! needs: the process's rank and the number of processes, an in-place all-reduce (sum) of a
//! flat buffer, a broadcast from one rank, and a barrier. Every process of the run calls
//! the same collectives in the same order; a call returns once every process has made it.
//!
//! [`SingleProcess`] is the communicator of an ordinary run (rank 0 of 1): every operation
//! is a no-op, and it needs nothing installed. The crate `tapegrad-distributed` implements
//! the trait over MPI.
//!
//! The trait has one method per element type so that it stays object-safe
//! (`Rc<dyn Communicator>`); [`all_reduce_sum`] and [`broadcast`] take any
//! [`Float`] element type and dispatch to them.
//!
//! ```
//! use tapegrad_nn::communicator::{all_reduce_sum, Communicator, SingleProcess};
//!
//! let comm = SingleProcess;
//! let mut grads = vec![0.5_f32, -1.0, 2.0];
//! all_reduce_sum(&comm, &mut grads)?;
//! assert_eq!(grads, [0.5, -1.0, 2.0]); // the sum over one process
//! assert_eq!((comm.rank(), comm.size()), (0, 1));
//! # Ok::<(), tapegrad_nn::communicator::CommError>(())
//! ```

use std::any::Any;
use std::fmt;

use tapegrad_autograd::Float;

/// What can go wrong in a collective operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommError {
    /// A broadcast named a root rank that does not exist.
    #[error("rank {root} cannot be the root of a broadcast among {size} process(es)")]
    InvalidRoot {
        /// The root asked for.
        root: usize,
        /// The number of processes.
        size: usize,
    },
    /// A buffer has more elements than one call of the backend can carry.
    #[error("{operation} of {len} elements: at most {max} fit in one call")]
    TooLarge {
        /// The operation (`"all-reduce"`, `"broadcast"`).
        operation: &'static str,
        /// The buffer's length.
        len: usize,
        /// The backend's limit.
        max: usize,
    },
    /// The buffers of the processes disagree (e.g. a broadcast message whose length the
    /// receiver did not expect).
    #[error("{operation}: the processes disagree: {detail}")]
    Mismatch {
        /// The operation.
        operation: &'static str,
        /// What differed.
        detail: String,
    },
    /// The backend reported an error.
    #[error("{operation} failed: {message}")]
    Backend {
        /// The operation.
        operation: &'static str,
        /// The backend's message.
        message: String,
    },
}

/// The collective operations of a data-parallel run, as seen by one of its processes.
///
/// Every process calls the same operations in the same order, with buffers of the same
/// length; each call returns when all processes have made it (a process that stops calling
/// blocks the others, which is why [`fit`](crate::model::Model::fit) turns a failure on any
/// rank into an error on every rank instead of leaving the others waiting).
///
/// Sums must come out bit-identical on every rank (MPI's reductions do: every rank receives
/// the same result), so that replicas that apply them never drift apart.
pub trait Communicator: fmt::Debug {
    /// This process's rank, in `0..size()`.
    fn rank(&self) -> usize;

    /// The number of processes.
    fn size(&self) -> usize;

    /// Whether this process is rank 0 (the one that prints and writes files).
    fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// Replaces `buf` on every rank by the elementwise sum of all ranks' `buf`.
    ///
    /// # Errors
    ///
    /// [`CommError::TooLarge`], [`CommError::Backend`].
    fn all_reduce_sum_f32(&self, buf: &mut [f32]) -> Result<(), CommError>;

    /// [`all_reduce_sum_f32`](Communicator::all_reduce_sum_f32) for `f64`.
    ///
    /// # Errors
    ///
    /// [`CommError::TooLarge`], [`CommError::Backend`].
    fn all_reduce_sum_f64(&self, buf: &mut [f64]) -> Result<(), CommError>;

    /// Copies rank `root`'s `buf` into every other rank's `buf` (of the same length).
    ///
    /// # Errors
    ///
    /// [`CommError::InvalidRoot`], [`CommError::TooLarge`], [`CommError::Backend`].
    fn broadcast_f32(&self, buf: &mut [f32], root: usize) -> Result<(), CommError>;

    /// [`broadcast_f32`](Communicator::broadcast_f32) for `f64`.
    ///
    /// # Errors
    ///
    /// [`CommError::InvalidRoot`], [`CommError::TooLarge`], [`CommError::Backend`].
    fn broadcast_f64(&self, buf: &mut [f64], root: usize) -> Result<(), CommError>;

    /// [`broadcast_f32`](Communicator::broadcast_f32) for bytes (messages, file contents).
    ///
    /// # Errors
    ///
    /// [`CommError::InvalidRoot`], [`CommError::TooLarge`], [`CommError::Backend`].
    fn broadcast_bytes(&self, buf: &mut [u8], root: usize) -> Result<(), CommError>;

    /// Returns when every rank has called it.
    ///
    /// # Errors
    ///
    /// [`CommError::Backend`].
    fn barrier(&self) -> Result<(), CommError>;

    /// Ends every process of the run with exit code `code`, now: the last resort when a
    /// rank cannot tell the others that it failed.
    fn abort(&self, code: i32) -> !;
}

/// The communicator of a run in one process: rank 0 of 1. Sums and broadcasts leave their
/// buffers as they are; nothing is sent anywhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SingleProcess;

impl SingleProcess {
    fn check_root(root: usize) -> Result<(), CommError> {
        if root == 0 {
            Ok(())
        } else {
            Err(CommError::InvalidRoot { root, size: 1 })
        }
    }
}

impl Communicator for SingleProcess {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_reduce_sum_f32(&self, _buf: &mut [f32]) -> Result<(), CommError> {
        Ok(())
    }

    fn all_reduce_sum_f64(&self, _buf: &mut [f64]) -> Result<(), CommError> {
        Ok(())
    }

    fn broadcast_f32(&self, _buf: &mut [f32], root: usize) -> Result<(), CommError> {
        Self::check_root(root)
    }

    fn broadcast_f64(&self, _buf: &mut [f64], root: usize) -> Result<(), CommError> {
        Self::check_root(root)
    }

    fn broadcast_bytes(&self, _buf: &mut [u8], root: usize) -> Result<(), CommError> {
        Self::check_root(root)
    }

    fn barrier(&self) -> Result<(), CommError> {
        Ok(())
    }

    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

/// [`Communicator::all_reduce_sum_f32`] or [`Communicator::all_reduce_sum_f64`], chosen by
/// the element type. (An element type other than `f32` and `f64` is summed in `f64`.) It
/// takes a `Vec` because a sized buffer is what can be downcast to `Vec<f32>` or `Vec<f64>`.
///
/// # Errors
///
/// Those of the communicator's method.
#[allow(
    clippy::ptr_arg,
    reason = "a `Vec` (sized) can be downcast to `Vec<f32>` / `Vec<f64>`"
)]
pub fn all_reduce_sum<T: Float, C: Communicator + ?Sized>(
    comm: &C,
    buf: &mut Vec<T>,
) -> Result<(), CommError> {
    let any: &mut dyn Any = buf;
    if let Some(buf) = any.downcast_mut::<Vec<f32>>() {
        return comm.all_reduce_sum_f32(buf);
    }
    if let Some(buf) = any.downcast_mut::<Vec<f64>>() {
        return comm.all_reduce_sum_f64(buf);
    }
    let mut wide: Vec<f64> = buf.iter().map(|&v| Float::to_f64(v)).collect();
    comm.all_reduce_sum_f64(&mut wide)?;
    for (v, w) in buf.iter_mut().zip(wide) {
        *v = T::from_f64(w);
    }
    Ok(())
}

/// [`Communicator::broadcast_f32`] or [`Communicator::broadcast_f64`], chosen by the
/// element type. (An element type other than `f32` and `f64` travels as `f64`.)
///
/// # Errors
///
/// Those of the communicator's method.
#[allow(
    clippy::ptr_arg,
    reason = "a `Vec` (sized) can be downcast to `Vec<f32>` / `Vec<f64>`"
)]
pub fn broadcast<T: Float, C: Communicator + ?Sized>(
    comm: &C,
    buf: &mut Vec<T>,
    root: usize,
) -> Result<(), CommError> {
    let any: &mut dyn Any = buf;
    if let Some(buf) = any.downcast_mut::<Vec<f32>>() {
        return comm.broadcast_f32(buf, root);
    }
    if let Some(buf) = any.downcast_mut::<Vec<f64>>() {
        return comm.broadcast_f64(buf, root);
    }
    let mut wide: Vec<f64> = buf.iter().map(|&v| Float::to_f64(v)).collect();
    comm.broadcast_f64(&mut wide, root)?;
    for (v, w) in buf.iter_mut().zip(wide) {
        *v = T::from_f64(w);
    }
    Ok(())
}

/// Sends a message (e.g. an error's text) from rank `root` to every rank: the length, then
/// the bytes. Every rank returns the root's message; `message` is read only on the root.
///
/// # Errors
///
/// Those of the communicator's broadcasts; [`CommError::Mismatch`] when the bytes are not
/// UTF-8 (they always are when every rank runs this function).
pub fn broadcast_message<C: Communicator + ?Sized>(
    comm: &C,
    message: &str,
    root: usize,
) -> Result<String, CommError> {
    let mut len = vec![message.len() as f64];
    comm.broadcast_f64(&mut len, root)?;
    let mut bytes = if comm.rank() == root {
        message.as_bytes().to_vec()
    } else {
        vec![0; len[0] as usize]
    };
    comm.broadcast_bytes(&mut bytes, root)?;
    String::from_utf8(bytes).map_err(|e| CommError::Mismatch {
        operation: "broadcast",
        detail: format!("the message is not UTF-8: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_process_leaves_buffers_and_checks_roots() {
        let comm = SingleProcess;
        let mut a = vec![1.0_f32, 2.0];
        let mut b = vec![3.0_f64];
        all_reduce_sum(&comm, &mut a).unwrap();
        all_reduce_sum(&comm, &mut b).unwrap();
        broadcast(&comm, &mut a, 0).unwrap();
        assert_eq!(a, [1.0, 2.0]);
        assert_eq!(b, [3.0]);
        assert!(matches!(
            broadcast(&comm, &mut b, 1),
            Err(CommError::InvalidRoot { root: 1, size: 1 })
        ));
        comm.barrier().unwrap();
        assert!(comm.is_root());
        assert_eq!(broadcast_message(&comm, "héllo", 0).unwrap(), "héllo");
    }

    #[test]
    fn dyn_communicator_dispatches() {
        let comm: std::rc::Rc<dyn Communicator> = std::rc::Rc::new(SingleProcess);
        let mut a = vec![1.0_f64];
        all_reduce_sum(&*comm, &mut a).unwrap();
        assert_eq!(a, [1.0]);
    }
}
