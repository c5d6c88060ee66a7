//! The calls into the `gemm` crate: raw pointers and strides of ndarray views, with the
//! invariants each call relies on.

use std::mem::MaybeUninit;

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{is_gemm_type, product_dims};
use crate::Float;

/// Writes `a · b` into every element of `out` (possibly uninitialised; `m × n`, any strides),
/// through the `gemm` crate. `T` must be `f32` or `f64`.
pub(super) fn write_product<T: Float>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    out: &mut ArrayViewMut2<'_, MaybeUninit<T>>,
    parallelism: gemm::Parallelism,
) {
    assert!(is_gemm_type::<T>(), "write_product: only f32 and f64");
    let (m, k, n) = product_dims(a, b, out.dim());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        out.fill(MaybeUninit::new(T::zero()));
        return;
    }
    let (out_rs, out_cs) = (out.strides()[0], out.strides()[1]);
    // `MaybeUninit<T>` has `T`'s layout.
    let out_ptr = out.as_mut_ptr().cast::<T>();
    // SAFETY: `T` is f32/f64 and m, n, k > 0 (checked above); the pointer and strides are
    // those of `out`, an m × n mutable view borrowed for the call: valid for writes,
    // aliasing neither input, no two elements overlapping (a mutable view never has zero
    // or repeated strides). Its contents may be uninitialised: none is read.
    unsafe {
        gemm_f32_f64(
            a,
            b,
            out_ptr,
            out_rs,
            out_cs,
            parallelism,
            Destination::Overwrite,
        )
    }
}

/// `out = a · b` (`Overwrite`) or `out += a · b` (`Add`) on the calling thread, through the
/// `gemm` crate: one part of [`super::halves::in_halves`]. `T` must be `f32` or `f64` and
/// `k > 0` (the callers check both); an empty part does nothing.
pub(super) fn gemm_into_initialised<T: Float>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    out: &mut ArrayViewMut2<'_, T>,
    destination: Destination,
) {
    if out.is_empty() {
        return;
    }
    let (out_rs, out_cs) = (out.strides()[0], out.strides()[1]);
    // SAFETY: `T` is f32/f64 and m, n, k > 0 for this part (k checked by the callers, an
    // empty part returned); the pointer and strides are those of `out`, a mutable view of
    // initialised elements borrowed for the call: valid for reads and writes, aliasing
    // neither input, no two elements overlapping (a mutable view never has zero or
    // repeated strides).
    unsafe {
        gemm_f32_f64(
            a,
            b,
            out.as_mut_ptr(),
            out_rs,
            out_cs,
            gemm::Parallelism::None,
            destination,
        );
    }
}

/// What [`gemm_f32_f64`] does with its output block.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Destination {
    /// `out = a · b`: the previous contents are neither read nor required to be initialised.
    Overwrite,
    /// `out += a · b`: the previous contents are read (and must be initialised).
    Add,
}

/// `out = a · b` or `out += a · b` through [`gemm::gemm`], for `T` = `f32` or `f64` with
/// shapes already checked.
///
/// The crate's `f32`/`f64` matrix products above [`super::SMALL_MATMUL`] all end here
/// (`benches/README.md` compares it with ndarray's `general_mat_mul`).
///
/// # Safety
///
/// `T` is `f32` or `f64`; `m, n, k` (from `a` and `b`) are all positive; `out_ptr` with row
/// stride `out_rs` and column stride `out_cs` (in elements) addresses an `m × n` block that
/// is valid for writes for the whole call, overlaps neither `a` nor `b`, and maps no two
/// `(i, j)` to the same element. With [`Destination::Overwrite`] its previous contents may
/// be uninitialised (every element is written, none read); with [`Destination::Add`] they
/// are read, so they must be initialised and valid for reads.
unsafe fn gemm_f32_f64<T: Float>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    out_ptr: *mut T,
    out_rs: isize,
    out_cs: isize,
    parallelism: gemm::Parallelism,
    destination: Destination,
) {
    let ((m, k), n) = (a.dim(), b.dim().1);
    debug_assert!(b.dim().0 == k && m > 0 && n > 0 && k > 0);
    debug_assert!(is_gemm_type::<T>());
    let (a_rs, a_cs) = (a.strides()[0], a.strides()[1]);
    let (b_rs, b_cs) = (b.strides()[0], b.strides()[1]);
    let read_dst = destination == Destination::Add;
    // SAFETY (with the function's contract):
    // - `T` is `f32` or `f64`, the types for which `gemm::gemm` reinterprets `T` without
    //   panicking;
    // - each input pointer is that of element `[0, 0]` of an ndarray view (`as_ptr` is the
    //   logical first element even for negative strides), and the strides are ndarray's
    //   own, in elements (not bytes), row stride then column stride: every element
    //   `p + i·rs + j·cs` with `i < rows`, `j < cols` is inside the view's allocation,
    //   which the borrows keep alive for the call;
    // - the output block is valid for writes, aliases neither input and has no overlapping
    //   elements (the contract), so no element is written twice concurrently;
    // - with `Overwrite`, `read_dst` is false: the output's previous contents are neither
    //   read nor required to be initialised (`alpha` is then ignored), and `beta` = 1 gives
    //   `out = a·b`, every element written; with `Add`, `read_dst` is true and `alpha` =
    //   `beta` = 1 give `out = out + a·b`, reading the initialised contents (the contract).
    unsafe {
        gemm::gemm::<T>(
            m,
            n,
            k,
            out_ptr,
            out_cs,
            out_rs,
            read_dst,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            if read_dst { T::one() } else { T::zero() },
            T::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
}
