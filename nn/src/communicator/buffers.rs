//! Module buffers (BatchNorm's running statistics) in a data-parallel run: every rank keeps
//! rank 0's, as PyTorch's `DistributedDataParallel(broadcast_buffers=True)` does.
//!
//! Each rank's forward pass updates its buffers from its own rows, so without this the
//! replicas' running statistics drift apart while their parameters stay identical. Rank
//! 0's buffers are copied to every rank once before training ([`broadcast_buffers`]) and
//! after every step's forward pass, inside the step's all-reduce
//! ([`GradientBuffer::with_buffers`]): the other ranks add zeros, so the sum is rank 0's
//! value, bit for bit, and no collective is added to the step.

use ndarray::{ArrayD, IxDyn};
use tapegrad_autograd::Float;

use super::{CommError, Communicator, GradientBuffer, broadcast};
use crate::buffer::Buffer;

/// Copies rank 0's buffer values to every rank, in one broadcast of all of them (the
/// buffers must have the same shapes, in the same order, everywhere). Nothing is sent on
/// one process or without buffers.
///
/// ```
/// use ndarray::array;
/// use tapegrad_nn::communicator::{broadcast_buffers, SingleProcess};
/// use tapegrad_nn::Buffer;
///
/// let mean = Buffer::new("bn.running_mean", array![0.5_f32, -0.5].into_dyn());
/// broadcast_buffers(&SingleProcess, &[&mean])?; // rank 0 of 1 keeps its own
/// assert_eq!(*mean.value(), array![0.5_f32, -0.5].into_dyn());
/// # Ok::<(), tapegrad_nn::communicator::CommError>(())
/// ```
///
/// # Errors
///
/// Those of [`Communicator::broadcast_f32`].
pub fn broadcast_buffers<T: Float, C: Communicator + ?Sized>(
    comm: &C,
    buffers: &[&Buffer<T>],
) -> Result<(), CommError> {
    if comm.size() == 1 || buffers.is_empty() {
        return Ok(());
    }
    let mut flat: Vec<T> = buffers
        .iter()
        .flat_map(|b| b.value().iter().copied().collect::<Vec<_>>())
        .collect();
    broadcast(comm, &mut flat, 0)?;
    set_values(buffers, &flat);
    Ok(())
}

/// Replaces each buffer's value by its next `len()` values of `flat`, in order.
fn set_values<T: Float>(buffers: &[&Buffer<T>], flat: &[T]) {
    let mut offset = 0;
    for b in buffers {
        let (shape, n) = (b.shape(), b.len());
        if let Some(values) = flat.get(offset..offset + n)
            && let Ok(value) = ArrayD::from_shape_vec(IxDyn(&shape), values.to_vec())
        {
            b.set(value);
        }
        offset += n;
    }
}

impl<T: Float> GradientBuffer<T> {
    /// This buffer, extended to carry `buffers` (a module's, in the same order on every
    /// rank) in the same all-reduce: [`pack_buffers`](GradientBuffer::pack_buffers) on
    /// every rank before [`reduce`](GradientBuffer::reduce), then
    /// [`unpack_buffers`](GradientBuffer::unpack_buffers) gives every rank rank 0's values.
    ///
    /// ```
    /// use ndarray::array;
    /// use tapegrad_autograd::Param;
    /// use tapegrad_nn::communicator::{GradientBuffer, SingleProcess};
    /// use tapegrad_nn::Buffer;
    ///
    /// let w = Param::new("w", array![1.0_f32, 2.0].into_dyn());
    /// let mean = Buffer::new("bn.running_mean", array![0.25_f32].into_dyn());
    /// let mut step = GradientBuffer::new(&[&w]).with_buffers(&[&mean]);
    /// assert_eq!(step.len(), 2 + 1 + 3 + 1); // gradients, flag, three words, buffer
    ///
    /// step.pack(None, 0, 0.0, false);
    /// step.pack_buffers(&[&mean], 0); // rank 0 sends its values, the others zeros
    /// step.reduce(&SingleProcess)?;
    /// mean.set(array![9.0].into_dyn());
    /// step.unpack_buffers(&[&mean]);
    /// assert_eq!(*mean.value(), array![0.25_f32].into_dyn());
    /// # Ok::<(), tapegrad_nn::communicator::CommError>(())
    /// ```
    pub fn with_buffers(mut self, buffers: &[&Buffer<T>]) -> Self {
        let len: usize = buffers.iter().map(|b| b.len()).sum();
        self.buf.resize(self.buffers_at() + len, T::zero());
        self
    }

    /// Where the buffers start in the all-reduce: after the gradients, the flags and the
    /// three words.
    fn buffers_at(&self) -> usize {
        self.grads_len + self.layout.len() + 3
    }

    /// Writes this rank's part of the buffers into the all-reduce: their values on rank 0,
    /// zeros on every other `rank` (so that the sum is rank 0's values). `buffers` are those
    /// given to [`with_buffers`](GradientBuffer::with_buffers), in the same order.
    pub fn pack_buffers(&mut self, buffers: &[&Buffer<T>], rank: usize) {
        let at = self.buffers_at();
        let region = &mut self.buf[at..];
        region.fill(T::zero());
        if rank != 0 {
            return;
        }
        let values = buffers
            .iter()
            .flat_map(|b| b.value().iter().copied().collect::<Vec<_>>());
        region.iter_mut().zip(values).for_each(|(d, s)| *d = s);
    }

    /// After [`reduce`](GradientBuffer::reduce): sets `buffers` (those given to
    /// [`with_buffers`](GradientBuffer::with_buffers), in the same order) to rank 0's
    /// values.
    pub fn unpack_buffers(&self, buffers: &[&Buffer<T>]) {
        set_values(buffers, &self.buf[self.buffers_at()..]);
    }
}
