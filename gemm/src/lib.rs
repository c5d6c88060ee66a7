//! `gemm::gemm` of the [gemm](https://crates.io/crates/gemm) crate 0.19 for `f32` and `f64`
//! only, so that its complex kernels (gemm-c32, gemm-c64) are not compiled. The argument
//! normalisation below is gemm 0.19.0's `gemm::gemm` (MIT licence, Sarah El Kazdadi),
//! unchanged; the dispatch calls the same `gemm_f32` / `gemm_f64` entry points as
//! gemm's. Results are therefore bit-identical to `gemm::gemm` for these two types.
//!
//! `tapegrad-autograd` depends on this crate under the name `gemm` (see the workspace
//! `Cargo.toml`), so its call sites read `gemm::gemm::<T>(…)` and `gemm::Parallelism`.

use core::any::TypeId;

pub use gemm_common::Parallelism;

/// dst := alpha×dst + beta×lhs×rhs, as gemm 0.19's `gemm::gemm`.
///
/// # Safety
///
/// As for gemm 0.19's `gemm::gemm`: the pointers with their strides address `m × n`
/// (`dst`), `m × k` (`lhs`) and `k × n` (`rhs`) blocks valid for the call, `dst` valid for
/// writes, aliasing neither input, with no two elements at the same address.
///
/// # Panics
///
/// Panics if `T` is not `f32` or `f64`.
#[allow(clippy::too_many_arguments)]
#[inline]
pub unsafe fn gemm<T: 'static>(
    m: usize,
    n: usize,
    k: usize,
    mut dst: *mut T,
    dst_cs: isize,
    dst_rs: isize,
    read_dst: bool,
    lhs: *const T,
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: *const T,
    rhs_cs: isize,
    rhs_rs: isize,
    alpha: T,
    beta: T,
    conj_dst: bool,
    conj_lhs: bool,
    conj_rhs: bool,
    parallelism: Parallelism,
) {
    // Conjugation has no effect on real numbers (gemm passes `false` to the real kernels).
    let _ = (conj_dst, conj_lhs, conj_rhs);

    // We want to transpose if the destination is column-oriented, since the microkernel
    // prefers column major matrices.
    let do_transpose = dst_cs.abs() < dst_rs.abs();

    let (
        m,
        n,
        mut dst_cs,
        mut dst_rs,
        mut lhs,
        mut lhs_cs,
        mut lhs_rs,
        mut rhs,
        mut rhs_cs,
        mut rhs_rs,
    ) = if do_transpose {
        (
            n, m, dst_rs, dst_cs, rhs, rhs_rs, rhs_cs, lhs, lhs_rs, lhs_cs,
        )
    } else {
        (
            m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs,
        )
    };

    if dst_rs < 0 && m > 0 {
        dst = dst.wrapping_offset((m - 1) as isize * dst_rs);
        dst_rs = -dst_rs;
        lhs = lhs.wrapping_offset((m - 1) as isize * lhs_rs);
        lhs_rs = -lhs_rs;
    }

    if dst_cs < 0 && n > 0 {
        dst = dst.wrapping_offset((n - 1) as isize * dst_cs);
        dst_cs = -dst_cs;
        rhs = rhs.wrapping_offset((n - 1) as isize * rhs_cs);
        rhs_cs = -rhs_cs;
    }

    if lhs_cs < 0 && k > 0 {
        lhs = lhs.wrapping_offset((k - 1) as isize * lhs_cs);
        lhs_cs = -lhs_cs;
        rhs = rhs.wrapping_offset((k - 1) as isize * rhs_rs);
        rhs_rs = -rhs_rs;
    }

    // SAFETY: `T` is checked to be `f64` (or `f32`) before each cast, so the pointers and
    // values are reinterpreted as their own type; the caller upholds the kernel's contract
    // (this function's), which the normalisation above preserves (it only re-expresses the
    // same blocks with non-negative strides), as in gemm's own `gemm::gemm`.
    unsafe {
        if TypeId::of::<T>() == TypeId::of::<f64>() {
            gemm_f64::gemm::f64::get_gemm_fn()(
                m,
                n,
                k,
                dst as *mut f64,
                dst_cs,
                dst_rs,
                read_dst,
                lhs as *mut f64,
                lhs_cs,
                lhs_rs,
                rhs as *mut f64,
                rhs_cs,
                rhs_rs,
                *(&alpha as *const T as *const f64),
                *(&beta as *const T as *const f64),
                false,
                false,
                false,
                parallelism,
            )
        } else if TypeId::of::<T>() == TypeId::of::<f32>() {
            gemm_f32::gemm::f32::get_gemm_fn()(
                m,
                n,
                k,
                dst as *mut f32,
                dst_cs,
                dst_rs,
                read_dst,
                lhs as *mut f32,
                lhs_cs,
                lhs_rs,
                rhs as *mut f32,
                rhs_cs,
                rhs_rs,
                *(&alpha as *const T as *const f32),
                *(&beta as *const T as *const f32),
                false,
                false,
                false,
                parallelism,
            )
        } else {
            panic!("tapegrad-gemm: only f32 and f64");
        }
    }
}
