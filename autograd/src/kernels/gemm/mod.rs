//! The matrix-product kernel under `matmul` and its backward (`G·Bᵀ`, `Aᵀ·G`).
//!
//! `f32` and `f64` go to the [`gemm`] crate (AVX2/AVX-512 micro-kernels chosen at run time,
//! always single-threaded; large products are cut in two halves, run on two threads when
//! there are two, with the same cut whatever the thread count, so the bits of every result
//! do not depend on it); any other [`Float`] falls back to ndarray's
//! `general_mat_mul`. Both read the operands through their strides, so a transposed view
//! is multiplied without a copy.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the entry points (fresh or existing output; a dense layer, its bias and ReLU applied to each part as it is finished) and the textbook loop |
//! | `halves.rs` | the decomposition by size: one product, or two halves on two threads |
//! | `raw.rs` | the calls into the `gemm` crate (the `unsafe` part) |

mod halves;
mod raw;
#[cfg(test)]
mod tests;

use std::any::TypeId;
use std::mem::MaybeUninit;

use ndarray::{Array2, ArrayView2, ArrayViewMut2, linalg::general_mat_mul};

use super::pool;
use crate::Float;
use halves::in_halves;
pub(crate) use halves::{PARALLEL_MATMUL_THRESHOLD, pair_in_parallel};
use raw::{Destination, gemm_into_initialised, write_product};

fn is_gemm_type<T: Float>() -> bool {
    TypeId::of::<T>() == TypeId::of::<f32>() || TypeId::of::<T>() == TypeId::of::<f64>()
}

/// `a · b` as a new row-major `m × n` array ([`mat_mul_fill`] into a buffer from the pool).
#[cfg(test)]
pub(crate) fn mat_mul_new<T: Float>(a: &ArrayView2<'_, T>, b: &ArrayView2<'_, T>) -> Array2<T> {
    product_then(a, b, |_, _| {})
}

/// [`mat_mul_fill`] into a buffer from the pool, each part of the output then passed to `finish(part, first_column)` by
/// the thread that computed it, right after its product (`first_column`: the part's first
/// column in the whole output). The parts are those of [`halves::in_halves`] for the `gemm`
/// kernel, and the whole output otherwise.
fn product_then<T: Float>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    finish: impl Fn(ArrayViewMut2<'_, T>, usize) + Sync,
) -> Array2<T> {
    let mut data = pool::vec(a.nrows() * b.ncols());
    product_fill(a, b, &mut data, finish);
    Array2::from_shape_vec((a.nrows(), b.ncols()), data).expect("m · n elements")
}

/// `a · b` (`a` is `m × k`, `b` is `k × n`, any strides) into `data`, an empty vector with
/// room for its `m · n` elements (taken by the caller, so that a product run on a helper
/// thread writes into a buffer of the caller's pool): on return it holds them, row-major.
/// The one place that picks the kernel — the textbook loop up to [`SMALL_MATMUL`]
/// multiply-adds, the `gemm` crate for larger `f32`/`f64` products (threaded by size),
/// ndarray for other element types.
///
/// For `f32` and `f64` the output is not zero-filled first: the kernel overwrites every
/// element. Zero-filling the 784 × 256 weight gradient of the MLP benchmark cost 8 % of a
/// batch-32 training step (`perf`, `nn/examples/mlp_profile 32`).
pub(crate) fn mat_mul_fill<T: Float>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    data: &mut Vec<T>,
) {
    product_fill(a, b, data, |_, _| {});
}

/// [`product_then`] into `data` (see [`mat_mul_fill`]).
fn product_fill<T: Float>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    data: &mut Vec<T>,
    finish: impl Fn(ArrayViewMut2<'_, T>, usize) + Sync,
) {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    assert!(
        k == k2,
        "matmul: shapes {:?} and {:?} are incompatible (inner dimensions {k} and {k2} differ)",
        a.shape(),
        b.shape()
    );
    assert!(
        data.is_empty(),
        "mat_mul_fill: the output vector is not empty"
    );
    if m * n * k <= SMALL_MATMUL || !is_gemm_type::<T>() {
        data.resize(m * n, T::zero());
        let mut out = ArrayViewMut2::from_shape((m, n), &mut data[..]).expect("m · n elements");
        if m * n * k <= SMALL_MATMUL {
            small_matmul_add(a, b, out.as_slice_mut().expect("row-major"));
        } else {
            mat_mul_into(a, b, &mut out);
        }
        finish(out, 0);
        return;
    }
    data.reserve(m * n);
    let out = ArrayViewMut2::from_shape((m, n), &mut data.spare_capacity_mut()[..m * n])
        .expect("m · n elements");
    write_product_threaded(a, b, out, finish);
    // SAFETY: every element of the first `m · n` of `data` has been written:
    // `write_product_threaded` writes every element of the view it is given (its doc; the
    // test `threaded_writes_cover_a_nan_filled_output` checks it on NaN-filled outputs at
    // the sizes of each threading), and it was given a row-major view of all of them.
    unsafe { data.set_len(m * n) };
}

/// Writes `a · b` into every element of `out` (possibly uninitialised, `m × n`), threaded
/// by size (see [`halves::Threading`]), and passes each part, once written, to
/// `finish(part, first_column)` on the thread that wrote it. `T` must be `f32` or `f64`.
fn write_product_threaded<T: Float>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    out: ArrayViewMut2<'_, MaybeUninit<T>>,
    finish: impl Fn(ArrayViewMut2<'_, T>, usize) + Sync,
) {
    let (m, k, n) = product_dims(a, b, out.dim());
    in_halves(m * k * n, a, b, out, |a, b, out, first_column| {
        write_product(a, b, out, gemm::Parallelism::None);
        // SAFETY: `write_product` writes every element of the view it is given.
        finish(unsafe { out.view_mut().assume_init() }, first_column);
    });
}

/// Products of at most this many multiply-adds skip the blocked GEMM kernel, whose
/// packing buffers and dispatch cost more than the arithmetic at these sizes.
const SMALL_MATMUL: usize = 4096;

/// `out += a · b` by the textbook loop (any strides), `out` an `m × n` row-major buffer: the
/// product of tiny operands such as a one-unit `Dense` layer over a handful of samples.
fn small_matmul_add<T: Float>(a: &ArrayView2<'_, T>, b: &ArrayView2<'_, T>, out: &mut [T]) {
    let (k, n) = b.dim();
    if n > 0 {
        for (i, row) in out.chunks_exact_mut(n).enumerate() {
            for p in 0..k {
                let x = a[[i, p]];
                row.iter_mut().zip(b.row(p)).for_each(|(o, &y)| *o += x * y);
            }
        }
    }
}

/// A dense layer's forward, `a · b + bias` (`bias`, of length `n`, added to every row) and
/// then ReLU if `relu`, as a new row-major `m × n` array.
///
/// For `f32` and `f64` each part of the output (the decomposition of [`mat_mul_new`]) is
/// finished by the thread that computes it, right after its product, while it is in that
/// core's cache: one pass adds the bias and applies ReLU. The bias is added to the finished
/// product, as the recorded `matmul` then `+` do, so the value is the same bits with or
/// without gradient recording. (Filling the output with the bias first, for the kernel to
/// add the product to, would cost a pass of stores to memory no core has in cache;
/// `benches/README.md` has the figures.)
#[track_caller]
pub(crate) fn linear_new<T: Float>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    bias: Option<&[T]>,
    relu: bool,
) -> Array2<T> {
    let ((_, k), (k2, n)) = (a.dim(), b.dim());
    assert!(
        k == k2 && bias.is_none_or(|bias| bias.len() == n),
        "linear: shapes {:?}, {:?} and bias {:?} are incompatible",
        a.shape(),
        b.shape(),
        bias.map(<[T]>::len)
    );
    product_then(a, b, |mut part, first_column| {
        let bias = bias.map(|bias| &bias[first_column..first_column + part.ncols()]);
        for mut row in part.rows_mut() {
            let row = row
                .as_slice_mut()
                .expect("a part of a row-major array has contiguous rows");
            add_bias_relu(row, bias, relu);
        }
    })
}

/// `row += bias` (if any), then ReLU (if `relu`), element by element in one pass.
fn add_bias_relu<T: Float>(row: &mut [T], bias: Option<&[T]>, relu: bool) {
    use crate::kernels::elementwise::{relu as relu_of, relu_in_place};
    match (bias, relu) {
        (Some(bias), true) => row
            .iter_mut()
            .zip(bias)
            .for_each(|(y, &b)| *y = relu_of(*y + b)),
        (Some(bias), false) => row.iter_mut().zip(bias).for_each(|(y, &b)| *y += b),
        (None, true) => relu_in_place(row),
        (None, false) => {}
    }
}

/// `(m, k, n)` of the product `a · b` into an output of shape `out`, checked.
#[track_caller]
fn product_dims<T>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    out: (usize, usize),
) -> (usize, usize, usize) {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    assert!(
        k == k2 && out == (m, n),
        "matmul: shapes {:?} and {:?} are incompatible with the output shape {out:?}",
        a.shape(),
        b.shape(),
    );
    (m, k, n)
}

/// `out = a · b` (`a` is `m × k`, `b` is `k × n`, `out` is `m × n`), overwriting `out`.
///
/// Any strides are accepted (transposed and broadcast views included); the shapes must
/// agree (checked by the callers, which name the op and both shapes).
pub(crate) fn mat_mul_into<T: Float>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    out: &mut ArrayViewMut2<'_, T>,
) {
    write_into(a, b, out, true, Destination::Overwrite);
}

/// [`mat_mul_into`] on the calling thread whatever the size, for kernels that run their
/// products side by side themselves (convolution over chunks of images).
pub(crate) fn mat_mul_into_this_thread<T: Float>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    out: &mut ArrayViewMut2<'_, T>,
) {
    write_into(a, b, out, false, Destination::Overwrite);
}

/// `out += a · b`, threaded by size like [`mat_mul_into`]: the product added in the
/// kernel's output pass (a convolution's bias, written into the output first).
pub(crate) fn mat_mul_add_into<T: Float>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    out: &mut ArrayViewMut2<'_, T>,
) {
    write_into(a, b, out, true, Destination::Add);
}

/// [`mat_mul_add_into`] on the calling thread whatever the size.
pub(crate) fn mat_mul_add_into_this_thread<T: Float>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    out: &mut ArrayViewMut2<'_, T>,
) {
    write_into(a, b, out, false, Destination::Add);
}

/// `out = a · b` or `out += a · b`, in halves from [`PARALLEL_MATMUL_THRESHOLD`] on if
/// `threaded`.
fn write_into<T: Float>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    out: &mut ArrayViewMut2<'_, T>,
    threaded: bool,
    destination: Destination,
) {
    let (m, k, n) = product_dims(a, b, out.dim());
    if m == 0 || n == 0 {
        return;
    }
    let beta = match destination {
        Destination::Overwrite => T::zero(),
        Destination::Add => T::one(),
    };
    if k == 0 {
        if destination == Destination::Overwrite {
            out.fill(T::zero());
        }
        return;
    }
    if !is_gemm_type::<T>() {
        general_mat_mul(T::one(), a, b, beta, out);
        return;
    }
    // The same decomposition as a fresh output's (the halves are views of any layout).
    let multiply_adds = if threaded { m * k * n } else { 0 };
    in_halves(multiply_adds, a, b, out.view_mut(), |a, b, out, _| {
        gemm_into_initialised(a, b, out, destination);
    });
}
