//! The batched matrix product over the last two axes, broadcasting batch axes; each 2-D
//! product goes to [`super::gemm`].

use ndarray::{ArrayD, ArrayViewD, ArrayViewMut3, Axis, CowArray, Ix2, IxDyn};
use smallvec::SmallVec;

use super::gemm::{mat_mul_fill, mat_mul_into};
use super::movement::{broadcast_shape, standard_copy};
use super::pool;
use crate::Float;
use crate::kernels::Dims;

/// Matrix product over the last two axes, broadcasting batch axes; either operand may
/// be a transposed view (no copy for 2-D).
#[track_caller]
pub(crate) fn matmul<T: Float>(a: ArrayViewD<'_, T>, b: ArrayViewD<'_, T>) -> ArrayD<T> {
    let mut data = pool::vec(product_len(&a, &b));
    let shape = matmul_fill(a, b, &mut data);
    ArrayD::from_shape_vec(IxDyn(&shape), data).expect("one element per index")
}

/// The number of elements of `a · b` (shapes checked by [`matmul_fill`]).
pub(crate) fn product_len<T>(a: &ArrayViewD<'_, T>, b: &ArrayViewD<'_, T>) -> usize {
    let (ra, rb) = (a.ndim(), b.ndim());
    if ra < 2 || rb < 2 {
        return 0;
    }
    let (a_batch, b_batch) = (&a.shape()[..ra - 2], &b.shape()[..rb - 2]);
    let axes = a_batch.len().max(b_batch.len());
    let at = |s: &[usize], i: usize| (i + s.len()).checked_sub(axes).map_or(1, |j| s[j]);
    let count: usize = (0..axes)
        .map(|i| at(a_batch, i).max(at(b_batch, i)))
        .product();
    count * a.shape()[ra - 2] * b.shape()[rb - 1]
}

/// [`matmul`] into `data`, an empty vector with room for the product's elements (taken by
/// the caller, so that a product run on a helper thread fills a buffer of the caller's
/// pool): on return it holds them in row-major order; returns the product's shape.
#[track_caller]
pub(crate) fn matmul_fill<T: Float>(
    a: ArrayViewD<'_, T>,
    b: ArrayViewD<'_, T>,
    data: &mut Vec<T>,
) -> Dims {
    assert!(
        a.ndim() >= 2 && b.ndim() >= 2,
        "matmul: the batched kernel needs two operands of at least 2 dimensions, got shapes {:?} and {:?}",
        a.shape(),
        b.shape()
    );
    let (ra, rb) = (a.ndim(), b.ndim());
    let (m, k) = (a.shape()[ra - 2], a.shape()[ra - 1]);
    let (k2, n) = (b.shape()[rb - 2], b.shape()[rb - 1]);
    assert!(
        k == k2,
        "matmul: shapes {:?} and {:?} are incompatible (inner dimensions {k} and {k2} differ)",
        a.shape(),
        b.shape()
    );
    if ra == 2 && rb == 2 {
        let a2 = a.into_dimensionality::<Ix2>().expect("2-D");
        let b2 = b.into_dimensionality::<Ix2>().expect("2-D");
        mat_mul_fill(&a2, &b2, data);
        return SmallVec::from_slice(&[m, n]);
    }
    let batch = broadcast_shape("matmul", &a.shape()[..ra - 2], &b.shape()[..rb - 2]);
    let with = |tail: [usize; 2]| -> Dims {
        let mut s = batch.clone();
        s.extend_from_slice(&tail);
        s
    };
    let a_b = a
        .broadcast(IxDyn(&with([m, k])))
        .expect("batch shapes checked");
    let b_b = b
        .broadcast(IxDyn(&with([k, n])))
        .expect("batch shapes checked");
    let count: usize = batch.iter().product();
    let a_copy = (!batch_merges(&a_b)).then(|| standard_copy(&a_b));
    let b_copy = (!batch_merges(&b_b)).then(|| standard_copy(&b_b));
    let a3 = match &a_copy {
        Some(copy) => copy
            .view()
            .into_shape_with_order((count, m, k))
            .map(CowArray::from),
        None => a_b.to_shape((count, m, k)),
    };
    let b3 = match &b_copy {
        Some(copy) => copy
            .view()
            .into_shape_with_order((count, k, n))
            .map(CowArray::from),
        None => b_b.to_shape((count, k, n)),
    };
    let (a3, b3) = (
        a3.expect("same element count"),
        b3.expect("same element count"),
    );
    data.resize(count * m * n, T::zero());
    let mut out = ArrayViewMut3::from_shape((count, m, n), &mut data[..]).expect("count · m · n");
    for i in 0..count {
        mat_mul_into(
            &a3.index_axis(Axis(0), i),
            &b3.index_axis(Axis(0), i),
            &mut out.index_axis_mut(Axis(0), i),
        );
    }
    for copy in [a_copy, b_copy].into_iter().flatten() {
        pool::recycle_array(copy);
    }
    with([m, n])
}

/// Whether the batch axes of `v` (all but the last two) merge into one without a copy (the
/// test of ndarray's `to_shape`): each axis longer than 1 steps over the block of the next
/// one longer than 1. Such a view is read in place; any other is copied in row-major order
/// into a buffer from the pool first, as `to_shape` would copy it, so each matrix handed to
/// the product kernel has the strides it would have after `to_shape`.
fn batch_merges<T>(v: &ArrayViewD<'_, T>) -> bool {
    if v.is_empty() {
        return true;
    }
    let batch = v.ndim() - 2;
    let axes: SmallVec<[(usize, isize); 4]> = v.shape()[..batch]
        .iter()
        .zip(&v.strides()[..batch])
        .filter(|(len, _)| **len > 1)
        .map(|(&len, &stride)| (len, stride))
        .collect();
    axes.windows(2).all(|w| w[0].1 == w[1].0 as isize * w[1].1)
}

/// The view with its last two axes swapped (a transpose without a copy).
pub(crate) fn swap_last_two<T>(v: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
    let nd = v.ndim();
    let mut v = v;
    v.swap_axes(nd - 1, nd - 2);
    v
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, ArrayView2};

    use super::matmul;

    fn naive(a: &ArrayView2<'_, f64>, b: &ArrayView2<'_, f64>) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols()).map(|p| a[[i, p]] * b[[p, j]]).sum()
        })
    }

    #[test]
    fn matmul_views_match_the_naive_product_on_both_sides_of_the_small_size_cutoff() {
        // (2, 3, 4) and (6, 1, 1) take the textbook loop; (20, 30, 10) the GEMM kernel.
        for &(m, k, n) in &[(2, 3, 4), (6, 1, 1), (1, 1, 1), (20, 30, 10), (0, 3, 2)] {
            let a = Array2::from_shape_fn((m, k), |(i, j)| (i * 7 + j * 3) as f64 * 0.1 - 1.0);
            let b = Array2::from_shape_fn((k, n), |(i, j)| (i * 5 + j * 2) as f64 * 0.2 - 0.7);
            let (at, bt) = (a.t().to_owned(), b.t().to_owned());
            let want = naive(&a.view(), &b.view());
            // Plain, and with either operand a transposed view of a stored transpose.
            for (x, y) in [
                (a.view(), b.view()),
                (at.t(), b.view()),
                (a.view(), bt.t()),
                (at.t(), bt.t()),
            ] {
                let got = matmul(x.into_dyn(), y.into_dyn());
                assert_eq!(got.shape(), &[m, n]);
                let err = (&got - &want.view().into_dyn())
                    .iter()
                    .fold(0.0_f64, |e, d| e.max(d.abs()));
                assert!(err < 1e-9, "({m}, {k}, {n}): error {err}");
            }
        }
    }
}
