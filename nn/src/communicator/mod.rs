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
use std::ops::Range;

use ndarray::{ArrayD, IxDyn};
use tapegrad_autograd::{Float, Grads, Param, ParamId};

/// What can go wrong in a collective operation.
#[derive(thiserror::Error)]
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

// ---------------------------------------------------------------------------------------
// Data-parallel training steps

/// The rows of the global batch `start..end` that rank `rank` trains on when each rank takes
/// `per_rank` consecutive rows of it: `start + rank·per_rank ..`, cut at `end` (fewer rows,
/// or none, in a short last batch).
///
/// ```
/// use tapegrad_nn::communicator::batch_rows;
/// assert_eq!(batch_rows(64, 96, 16, 1), 80..96);
/// assert_eq!(batch_rows(96, 100, 16, 1), 100..100); // the last batch has 4 rows
/// ```
pub fn batch_rows(start: usize, end: usize, per_rank: usize, rank: usize) -> Range<usize> {
    let lo = start.saturating_add(rank.saturating_mul(per_rank)).min(end);
    lo..lo.saturating_add(per_rank).min(end)
}

/// Rank `rank`'s contiguous share of `0..n` among `size` ranks (shares differ by at most
/// one row), e.g. for validation.
///
/// ```
/// use tapegrad_nn::communicator::shard;
/// assert_eq!((shard(10, 0, 3), shard(10, 1, 3), shard(10, 2, 3)), (0..3, 3..6, 6..10));
/// ```
pub fn shard(n: usize, rank: usize, size: usize) -> Range<usize> {
    let size = size.max(1);
    let at = |r: usize| ((n as u128 * r.min(size) as u128) / size as u128) as usize;
    at(rank)..at(rank + 1)
}

/// Copies rank 0's parameter values to every rank, in one broadcast of all of them (the
/// parameters must have the same shapes, in the same order, everywhere).
///
/// # Errors
///
/// Those of [`Communicator::broadcast_f32`].
pub fn broadcast_params<T: Float, C: Communicator + ?Sized>(
    comm: &C,
    params: &mut [&mut Param<T>],
) -> Result<(), CommError> {
    if comm.size() == 1 {
        return Ok(());
    }
    let mut flat: Vec<T> = params
        .iter()
        .flat_map(|p| p.value().iter().copied())
        .collect();
    broadcast(comm, &mut flat, 0)?;
    let mut offset = 0;
    for p in params.iter_mut() {
        let n = p.len();
        p.value_mut()
            .iter_mut()
            .zip(&flat[offset..offset + n])
            .for_each(|(d, &s)| *d = s);
        offset += n;
    }
    Ok(())
}

/// The lowest rank whose `failed` is true, the same on every rank (one all-reduce of
/// `size()` numbers); `None` when no rank failed.
///
/// # Errors
///
/// Those of [`Communicator::all_reduce_sum_f64`].
pub fn first_failed_rank<C: Communicator + ?Sized>(
    comm: &C,
    failed: bool,
) -> Result<Option<usize>, CommError> {
    let mut flags = vec![0.0_f64; comm.size()];
    if failed {
        flags[comm.rank()] = 1.0;
    }
    comm.all_reduce_sum_f64(&mut flags)?;
    Ok(flags.iter().position(|&f| f > 0.0))
}

/// The lowest rank that reports a `failure` and that rank's message, the same on every rank
/// (one all-reduce of `size()` numbers, then, only when some rank failed, a broadcast of
/// its message); `None` when no rank failed. Every rank must call it at the same point:
/// this is how a rank that fails tells the others, instead of leaving them waiting in a
/// collective.
///
/// ```
/// use tapegrad_nn::communicator::{first_failure, SingleProcess};
/// assert_eq!(first_failure(&SingleProcess, None)?, None);
/// assert_eq!(first_failure(&SingleProcess, Some("no data"))?, Some((0, "no data".into())));
/// # Ok::<(), tapegrad_nn::communicator::CommError>(())
/// ```
///
/// # Errors
///
/// Those of the communicator's all-reduce and broadcasts.
pub fn first_failure<C: Communicator + ?Sized>(
    comm: &C,
    failure: Option<&str>,
) -> Result<Option<(usize, String)>, CommError> {
    match first_failed_rank(comm, failure.is_some())? {
        None => Ok(None),
        Some(rank) => {
            let message = broadcast_message(comm, failure.unwrap_or_default(), rank)?;
            Ok(Some((rank, message)))
        }
    }
}

/// What all ranks trained on in one step, summed by [`GradientBuffer::reduce`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepTotals {
    /// Σ over ranks of (mean loss of the rank's rows × its rows).
    pub loss_sum: f64,
    /// Rows trained on, all ranks together.
    pub rows: usize,
    /// Ranks that reported a failure in this step.
    pub failed: usize,
}

impl StepTotals {
    /// The mean loss over all rows of the step (NaN without rows).
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum / self.rows as f64
    }
}

/// The one all-reduce of a data-parallel training step: the gradients of all parameters in
/// one contiguous buffer, then one "has a gradient" flag per parameter, then three words
/// (loss × rows, rows, failed), then, when built [`with_buffers`](GradientBuffer::with_buffers),
/// rank 0's module buffers (which every rank takes, so that replicas keep the same running
/// statistics).
///
/// Each rank [`pack`](GradientBuffer::pack)s the gradient of the mean loss over its own
/// rows, weighted by its number of rows; after [`reduce`](GradientBuffer::reduce),
/// [`grads`](GradientBuffer::grads) divides by the total, which gives every rank the
/// gradient of the mean loss over the whole global batch — what one process would compute
/// on it, up to rounding — even when the ranks had different numbers of rows.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::{Grads, Param};
/// use tapegrad_nn::communicator::{GradientBuffer, SingleProcess};
///
/// let w = Param::new("w", array![1.0_f64, 2.0].into_dyn());
/// let mut grads = Grads::new();
/// grads.insert(w.id(), array![0.5, -1.0].into_dyn());
///
/// let mut buffer = GradientBuffer::new(&[&w]);
/// buffer.pack(Some(&grads), 4, 0.25, false);
/// let totals = buffer.reduce(&SingleProcess)?;
/// assert_eq!((totals.rows, totals.failed, totals.mean_loss()), (4, 0, 0.25));
/// assert_eq!(buffer.grads(totals.rows)[&w], array![0.5, -1.0].into_dyn());
/// # Ok::<(), tapegrad_nn::communicator::CommError>(())
/// ```
#[derive(Debug, Clone)]
pub struct GradientBuffer<T> {
    buf: Vec<T>,
    /// Id, offset and shape of each parameter's gradient in `buf`.
    layout: Vec<(ParamId, usize, Vec<usize>)>,
    grads_len: usize,
}

impl<T: Float> GradientBuffer<T> {
    /// A buffer for the gradients of `params` (in this order, the same on every rank).
    pub fn new(params: &[&Param<T>]) -> Self {
        let mut layout = Vec::with_capacity(params.len());
        let mut offset = 0;
        for p in params {
            layout.push((p.id(), offset, p.shape().to_vec()));
            offset += p.len();
        }
        GradientBuffer {
            buf: vec![T::zero(); offset + layout.len() + 3],
            layout,
            grads_len: offset,
        }
    }

    /// Elements in one all-reduce (gradients, flags, the three words and the buffers).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the buffer holds nothing (never: it always has its three words).
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Fills the buffer with this rank's part of a step: `grads` (the gradients of the mean
    /// loss over its `rows` rows; `None` when it had no rows) times `rows`, `loss` (that
    /// mean loss) times `rows`, and whether the rank `failed`. Gradients of parameters that
    /// are not in the buffer are ignored; those missing from `grads` count as zero.
    pub fn pack(&mut self, grads: Option<&Grads<T>>, rows: usize, loss: f64, failed: bool) {
        let flags = self.grads_len;
        self.buf[..flags + self.layout.len() + 3].fill(T::zero());
        let weight = T::from_f64(rows as f64);
        if let Some(grads) = grads.filter(|_| rows > 0) {
            for (i, (id, offset, shape)) in self.layout.iter().enumerate() {
                if let Some(g) = grads.by_id(*id).filter(|g| g.shape() == shape.as_slice()) {
                    self.buf[*offset..*offset + g.len()]
                        .iter_mut()
                        .zip(g.iter())
                        .for_each(|(d, &s)| *d = s * weight);
                    self.buf[flags + i] = T::one();
                }
            }
        }
        let words = flags + self.layout.len();
        self.buf[words] = T::from_f64(if rows > 0 { loss * rows as f64 } else { 0.0 });
        self.buf[words + 1] = weight;
        self.buf[words + 2] = if failed { T::one() } else { T::zero() };
    }

    /// Sums the buffer over all ranks (one all-reduce) and returns the step's totals.
    ///
    /// # Errors
    ///
    /// Those of the communicator's all-reduce.
    pub fn reduce<C: Communicator + ?Sized>(&mut self, comm: &C) -> Result<StepTotals, CommError> {
        all_reduce_sum(comm, &mut self.buf)?;
        let words = self.grads_len + self.layout.len();
        Ok(StepTotals {
            loss_sum: Float::to_f64(self.buf[words]),
            rows: Float::to_f64(self.buf[words + 1]).round() as usize,
            failed: Float::to_f64(self.buf[words + 2]).round() as usize,
        })
    }

    /// The summed gradients divided by `rows` (the step's total), for the parameters that
    /// some rank had a gradient for.
    pub fn grads(&self, rows: usize) -> Grads<T> {
        let rows = T::from_f64(rows.max(1) as f64);
        let mut grads = Grads::new();
        for (i, (id, offset, shape)) in self.layout.iter().enumerate() {
            if self.buf[self.grads_len + i] > T::zero() {
                let n: usize = shape.iter().product();
                let values = self.buf[*offset..*offset + n]
                    .iter()
                    .map(|&v| v / rows)
                    .collect();
                if let Ok(g) = ArrayD::from_shape_vec(IxDyn(shape), values) {
                    grads.insert(*id, g);
                }
            }
        }
        grads
    }
}

mod buffers;

pub use buffers::broadcast_buffers;

#[cfg(test)]
mod tests;
