//! Indexing kernels and their adjoints: `index_select`/`index_add` pick and add back whole
//! slices along an axis, `gather`/`scatter_add` single elements.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};

use smallvec::SmallVec;

use super::elementwise::PARALLEL_THRESHOLD;
use super::pool;
use super::zeroed_blocks::zeroed_blocks;
use crate::Float;

/// The slices of `v` at `indices` along `axis`, in that order: runs copied from a row-major
/// `v` into a buffer from the pool, ndarray's `select` otherwise.
pub(crate) fn index_select<T: Float>(
    v: &ArrayViewD<'_, T>,
    axis: usize,
    indices: &[usize],
) -> ArrayD<T> {
    let (Some(data), false) = (v.as_slice(), v.is_empty()) else {
        return v.select(Axis(axis), indices);
    };
    let shape = v.shape();
    let (len, inner) = (shape[axis], shape[axis + 1..].iter().product::<usize>());
    if let Some(&bad) = indices.iter().find(|&&i| i >= len) {
        panic!("index_select: index {bad} is out of bounds for axis {axis} of shape {shape:?}");
    }
    let mut out = pool::vec(data.len() / len * indices.len());
    for block in data.chunks_exact(len * inner) {
        for &i in indices {
            out.extend_from_slice(&block[i * inner..(i + 1) * inner]);
        }
    }
    let mut out_shape = SmallVec::<[usize; 4]>::from_slice(shape);
    out_shape[axis] = indices.len();
    ArrayD::from_shape_vec(IxDyn(&out_shape), out).expect("one run per index and block")
}

/// Zeros of length `size` along `axis` with slice `k` of `v` added at `indices[k]`.
pub(crate) fn index_add<T: Float>(
    v: &ArrayViewD<'_, T>,
    axis: usize,
    indices: &[usize],
    size: usize,
) -> ArrayD<T> {
    let mut shape = SmallVec::<[usize; 4]>::from_slice(v.shape());
    shape[axis] = size;
    let mut out = pool::filled(&shape, T::zero());
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
    if let Some(lanes) = Lanes::of(v.shape(), v.as_slice(), axis, index) {
        let (src, idx) = (lanes.source, lanes.index);
        let inner = lanes.inner;
        let mut out = pool::vec(idx.len());
        for (o, block) in idx.chunks_exact(lanes.picked * inner).enumerate() {
            let plane = &src[o * lanes.len * inner..(o + 1) * lanes.len * inner];
            for row in block.chunks_exact(inner) {
                out.extend(row.iter().enumerate().map(|(e, &i)| plane[i * inner + e]));
            }
        }
        return ArrayD::from_shape_vec(index.raw_dim(), out).expect("one element per index");
    }
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
    let values = v.as_slice().filter(|_| v.shape() == index.shape());
    if let Some(lanes) = Lanes::of(shape, values, axis, index) {
        // The same additions in the same order as the general loop below, plane by plane,
        // each plane zeroed just before its additions; from `PARALLEL_THRESHOLD` elements
        // on, the planes in two halves side by side (each plane's additions stay in order:
        // the same results either way).
        let (inner, block) = (lanes.inner, lanes.picked * lanes.inner);
        let plane_len = lanes.len * inner;
        let total = shape.iter().product::<usize>();
        let planes = total / plane_len.max(1);
        let mid = (total >= PARALLEL_THRESHOLD && planes >= 2).then_some(planes / 2);
        let data = zeroed_blocks(
            planes,
            plane_len,
            mid,
            || (),
            |(), o, plane: &mut [T]| {
                let idx = &lanes.index[o * block..(o + 1) * block];
                let vals = &lanes.source[o * block..(o + 1) * block];
                for (row, row_vals) in idx.chunks_exact(inner).zip(vals.chunks_exact(inner)) {
                    for (e, (&i, &x)) in row.iter().zip(row_vals).enumerate() {
                        plane[i * inner + e] += x;
                    }
                }
            },
        );
        return ArrayD::from_shape_vec(IxDyn(shape), data).expect("planes · plane elements");
    }
    let mut out = pool::filled(shape, T::zero());
    for (pos, &i) in index.indexed_iter() {
        let mut target = pos.clone();
        target[axis] = i;
        out[target] += v[pos];
    }
    out
}

/// `gather`/`scatter_add` with every array contiguous in row-major order and `index` as
/// large as the indexed array on every axis but `axis`: seen as `[outer, len, inner]` (the
/// indexed array) and `[outer, picked, inner]` (`index` and the values), element
/// `(o, j, i)` of the index addresses element `(o, index, i)`.
struct Lanes<'a, T> {
    /// The values read: the gathered array, or the scattered values (of `index`'s shape).
    source: &'a [T],
    index: &'a [usize],
    /// The indexed array's length along `axis`.
    len: usize,
    /// `index`'s length along `axis`.
    picked: usize,
    /// The product of the axes after `axis` (at least 1).
    inner: usize,
}

impl<'a, T> Lanes<'a, T> {
    /// The contiguous layout, if `source` is contiguous (`None` otherwise) and `index` is
    /// row-major and fits `shape` (the indexed array's) as described above.
    fn of(
        shape: &[usize],
        source: Option<&'a [T]>,
        axis: usize,
        index: &'a ArrayD<usize>,
    ) -> Option<Self> {
        let matches = index.ndim() == shape.len()
            && index
                .shape()
                .iter()
                .zip(shape)
                .enumerate()
                .all(|(d, (i, s))| d == axis || i == s);
        let (source, index_slice) = (source?, index.as_slice()?);
        if !matches || index.is_empty() {
            return None;
        }
        Some(Lanes {
            source,
            index: index_slice,
            len: shape[axis],
            picked: index.shape()[axis],
            inner: shape[axis + 1..].iter().product(),
        })
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, IxDyn, ShapeBuilder};

    use super::{gather, scatter_add};

    /// A deterministic array of `shape`, and the same array laid out column-major.
    fn filled(shape: &[usize]) -> (ArrayD<f64>, ArrayD<f64>) {
        let count = shape.iter().product::<usize>();
        let values = (0..count).map(|i| ((i * 37 % 101) as f64 * 0.31).sin());
        let a = ArrayD::from_shape_vec(IxDyn(shape), values.collect()).expect("element count");
        let mut f = ArrayD::zeros(IxDyn(shape).f());
        f.assign(&a);
        assert!(f.as_slice().is_none() && a.as_slice().is_some());
        (a, f)
    }

    fn bits(a: &ArrayD<f64>) -> Vec<u64> {
        a.iter().map(|x| x.to_bits()).collect()
    }

    /// The contiguous paths agree bit for bit with the general loops (reached through
    /// column-major operands), on every axis, with fewer, as many and more indices than
    /// the axis is long (repeats adding up), on small arrays and on one large enough for
    /// `scatter_add`'s two halves of planes (an odd number of them).
    #[test]
    fn contiguous_and_general_paths_agree() {
        for shape in [[3, 4, 5], [7, 96, 101]] {
            agree_on(shape);
        }
    }

    fn agree_on(shape: [usize; 3]) {
        for axis in 0..3 {
            for picked in [1, shape[axis], 2 * shape[axis]] {
                let mut index_shape = shape;
                index_shape[axis] = picked;
                let count: usize = index_shape.iter().product();
                let index = ArrayD::from_shape_vec(
                    IxDyn(&index_shape),
                    (0..count).map(|i| i * 7 % shape[axis]).collect(),
                )
                .expect("element count");
                let (v, v_f) = filled(&shape);
                let fast = gather(&v.view(), axis, &index);
                assert_eq!(bits(&fast), bits(&gather(&v_f.view(), axis, &index)));
                let (g, g_f) = filled(&index_shape);
                let fast = scatter_add(&g.view(), axis, &index, &shape);
                let general = scatter_add(&g_f.view(), axis, &index, &shape);
                assert_eq!(bits(&fast), bits(&general));
            }
        }
    }
}
