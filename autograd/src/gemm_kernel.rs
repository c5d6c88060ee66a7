//! The matrix-product kernel under `matmul` and its backward (`G·Bᵀ`, `Aᵀ·G`).
//!
//! `f32` and `f64` go to the [`gemm`] crate (AVX2/AVX-512 micro-kernels chosen at run time,
//! threaded with rayon for large products); any other [`Float`] falls back to ndarray's
//! `general_mat_mul`. Both read the operands through their strides, so a transposed view
//! is multiplied without a copy.

use std::any::TypeId;

use ndarray::{linalg::general_mat_mul, ArrayView2, ArrayViewMut2};

use crate::Float;

/// Products with at least this many multiply-adds (`m·k·n`) are split across rayon's
/// threads; smaller ones run on the calling thread, where the split costs more than it saves.
pub(crate) const PARALLEL_MATMUL_THRESHOLD: usize = 1 << 18;

/// `out = a · b` (`a` is `m × k`, `b` is `k × n`, `out` is `m × n`), overwriting `out`.
///
/// Any strides are accepted (transposed and broadcast views included); the shapes must
/// agree (checked by the callers, which name the op and both shapes).
pub(crate) fn mat_mul_into<T: Float>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    out: &mut ArrayViewMut2<'_, T>,
) {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    assert!(
        k == k2 && out.dim() == (m, n),
        "matmul: shapes {:?} and {:?} are incompatible with the output shape {:?}",
        a.shape(),
        b.shape(),
        out.shape()
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        out.fill(T::zero());
        return;
    }
    let is_gemm_type =
        TypeId::of::<T>() == TypeId::of::<f32>() || TypeId::of::<T>() == TypeId::of::<f64>();
    if !is_gemm_type {
        general_mat_mul(T::one(), a, b, T::zero(), out);
        return;
    }
    let parallelism = if m * k * n >= PARALLEL_MATMUL_THRESHOLD {
        match rayon::current_num_threads() {
            0 | 1 => gemm::Parallelism::None,
            threads => gemm::Parallelism::Rayon(threads),
        }
    } else {
        gemm::Parallelism::None
    };
    gemm_f32_f64(a, b, out, parallelism);
}

/// `out = a · b` through [`gemm::gemm`], for `T` = `f32` or `f64` with shapes already
/// checked.
///
/// This is the crate's one `unsafe` block for matrix products. It replaced ndarray's
/// single-threaded `general_mat_mul` (the `matrixmultiply` crate): on the 2-core AVX-512
/// test machine, `cargo bench --bench ops -- matmul` went from 65 to ~250 GFLOP/s at
/// 128×784×256 and from 67 to ~300 GFLOP/s at 1024³ (f32, 2 threads).
fn gemm_f32_f64<T: Float>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    out: &mut ArrayViewMut2<'_, T>,
    parallelism: gemm::Parallelism,
) {
    let ((m, k), n) = (a.dim(), b.dim().1);
    debug_assert!(b.dim().0 == k && out.dim() == (m, n));
    debug_assert!(
        TypeId::of::<T>() == TypeId::of::<f32>() || TypeId::of::<T>() == TypeId::of::<f64>()
    );
    let (a_rs, a_cs) = (a.strides()[0], a.strides()[1]);
    let (b_rs, b_cs) = (b.strides()[0], b.strides()[1]);
    let (out_rs, out_cs) = (out.strides()[0], out.strides()[1]);
    let out_ptr = out.as_mut_ptr();
    // SAFETY:
    // - `T` is `f32` or `f64` (checked by the caller through `TypeId`), the types for which
    //   `gemm::gemm` reinterprets `T` without panicking;
    // - each pointer is that of element `[0, 0]` of an ndarray view (`as_ptr` is the
    //   logical first element even for negative strides), and the strides are ndarray's
    //   own, in elements (not bytes), row stride then column stride: every element
    //   `p + i·rs + j·cs` with `i < rows`, `j < cols` is inside the view's allocation,
    //   which the borrows keep alive for the call;
    // - the dimensions passed are the views' own (`a`: m × k, `b`: k × n, `out`: m × n);
    // - `out` is a mutable borrow, so it aliases neither `a` nor `b`, and a mutable view
    //   never has overlapping elements (zero or repeated strides), so no element is
    //   written twice concurrently;
    // - `read_dst` is false: `out`'s previous contents are neither read nor required to be
    //   initialised to anything (`alpha` is then ignored); `beta` = 1 gives `out = a·b`.
    unsafe {
        gemm::gemm::<T>(
            m,
            n,
            k,
            out_ptr,
            out_cs,
            out_rs,
            false,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            T::zero(),
            T::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, ShapeBuilder};

    fn naive(a: &ArrayView2<'_, f64>, b: &ArrayView2<'_, f64>) -> Array2<f64> {
        let (m, k) = a.dim();
        let n = b.dim().1;
        Array2::from_shape_fn((m, n), |(i, j)| (0..k).map(|p| a[[i, p]] * b[[p, j]]).sum())
    }

    fn filled(rows: usize, cols: usize, seed: f64) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            ((i * 31 + j * 17) as f64 * 0.37 + seed).sin()
        })
    }

    #[test]
    fn matches_the_naive_product_for_every_layout() {
        // Small (single-threaded) and large enough to be split across threads.
        for &(m, k, n) in &[(3, 5, 4), (1, 7, 1), (70, 90, 60)] {
            let a = filled(m, k, 0.1);
            let b = filled(k, n, 0.2);
            let a_t = filled(k, m, 0.1).reversed_axes(); // column-major m × k
            let b_t = filled(n, k, 0.2).reversed_axes();
            let a_f = Array2::from_shape_vec((m, k).f(), a.t().iter().copied().collect())
                .expect("m·k elements");
            let neg = a.slice(ndarray::s![..;-1, ..]);
            for (x, y) in [
                (a.view(), b.view()),
                (a_t.view(), b.view()),
                (a.view(), b_t.view()),
                (a_t.view(), b_t.view()),
                (a_f.view(), b.view()),
                (neg, b.view()),
            ] {
                let want = naive(&x, &y);
                let mut got = Array2::<f64>::from_elem((m, n), f64::NAN);
                mat_mul_into(&x, &y, &mut got.view_mut());
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-9, "{m}×{k}×{n}: {g} vs {w}");
                }
                let (x32, y32) = (x.mapv(|v| v as f32), y.mapv(|v| v as f32));
                let mut got32 = Array2::<f32>::zeros((m, n));
                mat_mul_into(&x32.view(), &y32.view(), &mut got32.view_mut());
                for (g, w) in got32.iter().zip(&want) {
                    assert!(
                        (f64::from(*g) - w).abs() < 1e-3,
                        "f32 {m}×{k}×{n}: {g} vs {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn broadcast_operands_and_empty_inner_dimension() {
        let row = ndarray::arr1(&[1.0, 2.0, 3.0]);
        let a = row.broadcast((4, 3)).expect("broadcast a row");
        let b = filled(3, 2, 0.5);
        let mut got = Array2::<f64>::zeros((4, 2));
        mat_mul_into(&a, &b.view(), &mut got.view_mut());
        let want = naive(&a, &b.view());
        assert!(got.iter().zip(&want).all(|(g, w)| (g - w).abs() < 1e-12));

        let (a, b) = (Array2::<f32>::zeros((2, 0)), Array2::<f32>::zeros((0, 3)));
        let mut out = Array2::<f32>::from_elem((2, 3), 7.0);
        mat_mul_into(&a.view(), &b.view(), &mut out.view_mut());
        assert!(out.iter().all(|&v| v == 0.0));
    }
}
