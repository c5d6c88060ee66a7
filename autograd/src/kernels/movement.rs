//! Movement kernels: broadcast shapes, and the zero padding that is the adjoint of a slice.

use ndarray::{ArrayD, ArrayViewD, Axis, Slice};
use smallvec::SmallVec;

use super::pool;
use crate::Float;
use crate::kernels::Dims;

/// The NumPy broadcast of two shapes; panics naming `op` and both shapes when they are
/// incompatible.
#[track_caller]
pub(crate) fn broadcast_shape(op: &str, a: &[usize], b: &[usize]) -> Dims {
    let n = a.len().max(b.len());
    let mut out = SmallVec::from_elem(0, n);
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            panic!(
                "{op}: shapes {a:?} and {b:?} cannot be broadcast together{}",
                crate::scope::scope_suffix()
            );
        };
    }
    out
}

/// Elements `start..end` of `v` along `axis`, copied (in standard layout).
pub(crate) fn slice<T: Float>(
    v: &ArrayViewD<'_, T>,
    axis: usize,
    start: usize,
    end: usize,
) -> ArrayD<T> {
    standard_copy(&v.slice_axis(Axis(axis), Slice::from(start..end)))
}

/// `v` copied into a new array of standard (row-major) layout, in a buffer from the pool:
/// one `memcpy` when `v` is contiguous in row-major order, else a copy that runs along
/// `v`'s last axis (`assign`); `to_owned` visits a strided view element by element through
/// its index, measured 8 % of a Transformer step when heads are split and merged.
pub(crate) fn standard_copy<T: Float>(v: &ArrayViewD<'_, T>) -> ArrayD<T> {
    if let Some(slice) = v.as_slice() {
        return pool::from_slice(v.shape(), slice);
    }
    let mut out = pool::filled(v.shape(), T::zero());
    out.assign(v);
    out
}

/// `v` placed at `start` along `axis` in zeros of length `len` there.
pub(crate) fn pad<T: Float>(
    v: &ArrayViewD<'_, T>,
    axis: usize,
    start: usize,
    len: usize,
) -> ArrayD<T> {
    let mut shape = SmallVec::<[usize; 4]>::from_slice(v.shape());
    let width = shape[axis];
    shape[axis] = len;
    let mut out = pool::filled(&shape, T::zero());
    out.slice_axis_mut(Axis(axis), Slice::from(start..start + width))
        .assign(v);
    out
}
