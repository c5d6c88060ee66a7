//! The batched matrix product over the last two axes, broadcasting batch axes; each 2-D
//! product goes to [`super::gemm`].

use ndarray::{ArrayD, ArrayViewD, Axis, Ix2, IxDyn};

use super::gemm::{mat_mul_into, mat_mul_new};
use super::movement::broadcast_shape;
use crate::Float;

/// Matrix product over the last two axes, broadcasting batch axes; either operand may
/// be a transposed view (no copy for 2-D).
#[track_caller]
pub(crate) fn matmul<T: Float>(a: ArrayViewD<'_, T>, b: ArrayViewD<'_, T>) -> ArrayD<T> {
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
        return mat_mul_new(&a2, &b2).into_dyn();
    }
    let batch = broadcast_shape("matmul", &a.shape()[..ra - 2], &b.shape()[..rb - 2]);
    let count: usize = batch.iter().product();
    let with = |tail: [usize; 2]| -> Vec<usize> {
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
    let a3 = a_b.to_shape((count, m, k)).expect("same element count");
    let b3 = b_b.to_shape((count, k, n)).expect("same element count");
    let mut out = ndarray::Array3::<T>::zeros((count, m, n));
    for i in 0..count {
        mat_mul_into(
            &a3.index_axis(Axis(0), i),
            &b3.index_axis(Axis(0), i),
            &mut out.index_axis_mut(Axis(0), i),
        );
    }
    out.into_shape_with_order(IxDyn(&with([m, n])))
        .expect("same element count")
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
