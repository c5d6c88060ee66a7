//! Indexing kernels and their adjoints: `index_select`/`index_add` pick and add back whole
//! slices along an axis, `gather`/`scatter_add` single elements.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};

use crate::Float;

/// The slices of `v` at `indices` along `axis`, in that order.
pub(crate) fn index_select<T: Float>(
    v: &ArrayViewD<'_, T>,
    axis: usize,
    indices: &[usize],
) -> ArrayD<T> {
    v.select(Axis(axis), indices)
}

/// Zeros of length `size` along `axis` with slice `k` of `v` added at `indices[k]`.
pub(crate) fn index_add<T: Float>(
    v: &ArrayViewD<'_, T>,
    axis: usize,
    indices: &[usize],
    size: usize,
) -> ArrayD<T> {
    let mut shape = v.shape().to_vec();
    shape[axis] = size;
    let mut out = ArrayD::zeros(IxDyn(&shape));
    for (k, &i) in indices.iter().enumerate() {
        let mut row = out.index_axis_mut(Axis(axis), i);
        row += &v.index_axis(Axis(axis), k);
    }
    out
}

/// `out[pos] = v[pos with index[pos] at axis]`, of `index`'s shape.
pub(crate) fn gather<T: Float>(
    v: &ArrayViewD<'_, T>,
    axis: usize,
    index: &ArrayD<usize>,
) -> ArrayD<T> {
    ArrayD::from_shape_fn(index.raw_dim(), |pos| {
        let mut source = pos.clone();
        source[axis] = index[&pos];
        v[source]
    })
}

/// Zeros of `shape` with `v[pos]` added at `pos with index[pos] at axis`.
pub(crate) fn scatter_add<T: Float>(
    v: &ArrayViewD<'_, T>,
    axis: usize,
    index: &ArrayD<usize>,
    shape: &[usize],
) -> ArrayD<T> {
    let mut out = ArrayD::zeros(IxDyn(shape));
    for (pos, &i) in index.indexed_iter() {
        let mut target = pos.clone();
        target[axis] = i;
        out[target] += v[pos];
    }
    out
}
