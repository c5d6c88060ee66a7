//! The batched linear solve `X = A⁻¹ B` over the last two axes, broadcasting batch axes:
//! Gaussian elimination with partial pivoting (LAPACK `getrf`'s row choice, unblocked)
//! applied to the right-hand sides as it goes, then back substitution.

use ndarray::{Array3, ArrayD, ArrayView2, ArrayViewD, Axis, IxDyn};

use super::movement::broadcast_shape;
use super::pool::{self, PooledVec};
use crate::Float;
use crate::kernels::Dims;

/// `X` with `A X = B` for every matrix of the batch: `a` is `[*, n, n]` and `b` `[*, n, k]`,
/// their batch axes broadcast; either may be a transposed view. A matrix with a zero pivot
/// (singular, exactly or after rounding, where LAPACK reports `info > 0`) gives a solution
/// of NaN: a numeric domain error, as `ln` of a negative number.
#[track_caller]
pub(crate) fn solve<T: Float>(a: ArrayViewD<'_, T>, b: ArrayViewD<'_, T>) -> ArrayD<T> {
    let (ra, rb) = (a.ndim(), b.ndim());
    assert!(
        ra >= 2 && rb >= 2 && a.shape()[ra - 1] == a.shape()[ra - 2],
        "solve: the batched kernel needs a square matrix and a matrix of right-hand sides, got shapes {:?} and {:?}",
        a.shape(),
        b.shape()
    );
    let n = a.shape()[ra - 1];
    let (n2, k) = (b.shape()[rb - 2], b.shape()[rb - 1]);
    assert!(
        n == n2,
        "solve: shapes {:?} and {:?} are incompatible ({n} equations, {n2} rows of right-hand sides)",
        a.shape(),
        b.shape()
    );
    let batch = broadcast_shape("solve", &a.shape()[..ra - 2], &b.shape()[..rb - 2]);
    let count: usize = batch.iter().product();
    let with = |tail: [usize; 2]| -> Dims {
        let mut s = batch.clone();
        s.extend_from_slice(&tail);
        s
    };
    let a_b = a
        .broadcast(IxDyn(&with([n, n])))
        .expect("batch shapes checked");
    let b_b = b
        .broadcast(IxDyn(&with([n, k])))
        .expect("batch shapes checked");
    let a3 = a_b.to_shape((count, n, n)).expect("same element count");
    let b3 = b_b.to_shape((count, n, k)).expect("same element count");
    let mut out =
        Array3::from_shape_vec((count, n, k), pool::zeros(count * n * k)).expect("count · n · k");
    // One buffer for the factors, reused by every matrix of the batch.
    let mut lu = PooledVec::with_capacity(n * n);
    for (i, mut x) in out.axis_iter_mut(Axis(0)).enumerate() {
        fill_row_major(&mut lu, a3.index_axis(Axis(0), i));
        x.assign(&b3.index_axis(Axis(0), i));
        let x = x.as_slice_mut().expect("a row-major matrix of the output");
        if !solve_in_place(&mut lu, x, n, k) {
            x.fill(T::nan());
        }
    }
    out.into_shape_with_order(IxDyn(&with([n, k])))
        .expect("same element count")
}

/// `buffer` set to the elements of `m` in row-major order.
fn fill_row_major<T: Float>(buffer: &mut Vec<T>, m: ArrayView2<'_, T>) {
    buffer.clear();
    buffer.extend(m.iter().copied());
}

/// Solves `A X = B` in place: `lu` holds `A` (`n × n`, row-major) and is overwritten by
/// the eliminated upper triangle and the multipliers; `x` holds `B` (`n × k`, row-major) and
/// is overwritten by `X`. Returns `false`, with `x` unspecified, if a pivot is zero.
fn solve_in_place<T: Float>(lu: &mut [T], x: &mut [T], n: usize, k: usize) -> bool {
    for col in 0..n {
        // Partial pivoting: the first row at or below `col` with the largest magnitude in
        // this column (LAPACK's `idamax`), so every multiplier is at most 1 in magnitude.
        let mut pivot_row = col;
        for r in col + 1..n {
            if lu[r * n + col].abs() > lu[pivot_row * n + col].abs() {
                pivot_row = r;
            }
        }
        let pivot = lu[pivot_row * n + col];
        if pivot == T::zero() {
            return false;
        }
        if pivot_row != col {
            swap_rows(lu, n, col, pivot_row);
            swap_rows(x, k, col, pivot_row);
        }
        // Row r -= (a_rc / pivot) · row col, for every row below, in `lu` and in `x`.
        let (upper, lower) = lu.split_at_mut((col + 1) * n);
        let pivot_lu = &upper[col * n..];
        let (x_upper, x_lower) = x.split_at_mut((col + 1) * k);
        let pivot_x = &x_upper[col * k..];
        for (row, row_x) in lower.chunks_exact_mut(n).zip(x_lower.chunks_exact_mut(k)) {
            let factor = row[col] / pivot;
            row[col] = factor;
            for (v, &p) in row[col + 1..].iter_mut().zip(&pivot_lu[col + 1..]) {
                *v -= factor * p;
            }
            for (v, &p) in row_x.iter_mut().zip(pivot_x) {
                *v -= factor * p;
            }
        }
    }
    // Back substitution: x_r = (x_r − Σ_{c>r} u_rc x_c) / u_rr, from the last row up.
    for r in (0..n).rev() {
        let (x_upper, x_lower) = x.split_at_mut((r + 1) * k);
        let row_x = &mut x_upper[r * k..];
        for (c, solved) in (r + 1..n).zip(x_lower.chunks_exact(k)) {
            let u = lu[r * n + c];
            for (v, &s) in row_x.iter_mut().zip(solved) {
                *v -= u * s;
            }
        }
        let diagonal = lu[r * n + r];
        for v in row_x.iter_mut() {
            *v /= diagonal;
        }
    }
    true
}

/// Swaps rows `i < j` of a row-major matrix with rows of length `len`.
fn swap_rows<T>(m: &mut [T], len: usize, i: usize, j: usize) {
    let (top, bottom) = m.split_at_mut(j * len);
    top[i * len..(i + 1) * len].swap_with_slice(&mut bottom[..len]);
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, ArrayD, IxDyn, array};

    use super::solve;
    use crate::kernels::matmul::matmul;

    /// The largest |A X − B| over the batch.
    fn residual(a: &ArrayD<f64>, x: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
        let ax = matmul(a.view(), x.view());
        (&ax - b).iter().fold(0.0_f64, |e, d| e.max(d.abs()))
    }

    #[test]
    fn solutions_satisfy_the_system_with_row_swaps_transposed_views_and_broadcast_batches() {
        // A zero in the top-left corner: elimination must swap rows to proceed.
        let a = array![[0.0, 2.0, 1.0], [1.0, 1.0, 0.0], [3.0, -1.0, 4.0]].into_dyn();
        let b = array![[1.0, -2.0], [0.5, 3.0], [2.0, 0.0]].into_dyn();
        let x = solve(a.view(), b.view());
        assert_eq!(x.shape(), &[3, 2]);
        assert!(residual(&a, &x, &b) < 1e-14);
        // Aᵀ as a view with swapped axes, solved without a copy of its own.
        let at = a.t().to_owned();
        let xt = solve(a.t().into_dyn(), b.view());
        assert!(residual(&at, &xt, &b) < 1e-14);
        // One A shared by a batch of 2 × 2 right-hand sides, and a batch of two A's.
        let bb = ArrayD::from_shape_fn(IxDyn(&[2, 3, 2]), |d| (d[0] + 2 * d[1] + d[2]) as f64);
        let xb = solve(a.view(), bb.view());
        assert_eq!(xb.shape(), &[2, 3, 2]);
        assert!(residual(&a, &xb, &bb) < 1e-13);
        let ab = ndarray::stack![ndarray::Axis(0), a.view(), at.view()].into_dyn();
        let xab = solve(ab.view(), bb.view());
        assert!(residual(&ab, &xab, &bb) < 1e-13);
    }

    #[test]
    fn a_zero_pivot_gives_nan_for_that_matrix_only() {
        // The second row is twice the first: elimination leaves a zero pivot.
        let singular = array![[1.0_f64, 2.0], [2.0, 4.0]];
        let regular = Array2::from_diag(&array![2.0, 4.0]);
        let a = ndarray::stack![ndarray::Axis(0), singular.view(), regular.view()].into_dyn();
        let b = ArrayD::from_elem(IxDyn(&[2, 2, 1]), 1.0);
        let x = solve(a.view(), b.view());
        assert!(x.index_axis(ndarray::Axis(0), 0).iter().all(|v| v.is_nan()));
        assert_eq!(
            x.index_axis(ndarray::Axis(0), 1),
            array![[0.5], [0.25]].into_dyn()
        );
    }

    #[test]
    fn f32_and_empty_systems() {
        let a = array![[4.0_f32, 1.0], [2.0, 3.0]].into_dyn();
        let b = array![[1.0_f32], [2.0]].into_dyn();
        let x = solve(a.view(), b.view());
        // 4x + y = 1, 2x + 3y = 2: x = 0.1, y = 0.6.
        assert!((x[[0, 0]] - 0.1).abs() < 1e-6 && (x[[1, 0]] - 0.6).abs() < 1e-6);
        let empty = solve(
            ArrayD::<f64>::zeros(IxDyn(&[0, 0])).view(),
            ArrayD::zeros(IxDyn(&[0, 3])).view(),
        );
        assert_eq!(empty.shape(), &[0, 3]);
    }
}
