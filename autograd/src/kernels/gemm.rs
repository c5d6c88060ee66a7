//! The matrix-product kernel under `matmul` and its backward (`G·Bᵀ`, `Aᵀ·G`).
//!
//! `f32` and `f64` go to the [`gemm`] crate (AVX2/AVX-512 micro-kernels chosen at run time,
//! always single-threaded; large products are cut in two halves, run on two threads when
//! there are two, with the same cut whatever the thread count, so the bits of every result
//! do not depend on it); any other [`Float`] falls back to ndarray's
//! `general_mat_mul`. Both read the operands through their strides, so a transposed view
//! is multiplied without a copy.

use std::any::TypeId;
use std::mem::MaybeUninit;

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis, linalg::general_mat_mul};

use crate::Float;

/// Products with at least this many multiply-adds (`m·k·n`) use two threads; smaller ones
/// run on the calling thread, where the split costs more than it saves. Chosen by same-process
/// A/B runs of whole training steps of the 784-256-128-10 MLP (`nn/examples/mlp_profile`,
/// batches 32 and 128), where 2²⁰ was fastest of 2¹⁹–2²³.
pub(crate) const PARALLEL_MATMUL_THRESHOLD: usize = 1 << 20;

fn is_gemm_type<T: Float>() -> bool {
    TypeId::of::<T>() == TypeId::of::<f32>() || TypeId::of::<T>() == TypeId::of::<f64>()
}

/// How a product is decomposed. It depends on the product's size only, never on the
/// number of threads: every output element is then summed in the same order (by the same
/// single-threaded `gemm` call over the same operand block), so results are bit for bit the
/// same with one thread (`RAYON_NUM_THREADS=1`, a one-thread pool) or two. The `gemm`
/// crate's own rayon threading is never used: it picks its blocking from the thread count.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Threading {
    /// One single-threaded product.
    One,
    /// Two halves of the output, one single-threaded product each, run by
    /// [`super::fork_join::join`]: side by side on two threads, one after the other on one.
    Halves,
}

fn threading(multiply_adds: usize) -> Threading {
    if multiply_adds < PARALLEL_MATMUL_THRESHOLD {
        Threading::One
    } else {
        Threading::Halves
    }
}

/// Whether two independent products of `multiply_adds` each (the two gradients of one
/// matrix product) should run side by side, one per thread: when each alone stays on one
/// thread but together they reach [`PARALLEL_MATMUL_THRESHOLD`] (e.g. two products of
/// 0.79 M multiply-adds). Each product is computed the same way either way (one
/// single-threaded product), so this choice does not change any bit of the results.
pub(crate) fn pair_in_parallel(multiply_adds: usize) -> bool {
    threading(multiply_adds) == Threading::One && threading(2 * multiply_adds) != Threading::One
}

/// `a · b` as a new row-major `m × n` array (`a` is `m × k`, `b` is `k × n`, any strides):
/// the one place that picks the kernel — the textbook loop up to [`SMALL_MATMUL`]
/// multiply-adds, the `gemm` crate for larger `f32`/`f64` products (threaded by size), ndarray
/// for other element types.
///
/// For `f32` and `f64` the output is not zero-filled first: the kernel overwrites every
/// element. Zero-filling the 784 × 256 weight gradient of the MLP benchmark cost 8 % of a
/// batch-32 training step (`perf`, `nn/examples/mlp_profile 32`).
pub(crate) fn mat_mul_new<T: Float>(a: &ArrayView2<'_, T>, b: &ArrayView2<'_, T>) -> Array2<T> {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    assert!(
        k == k2,
        "matmul: shapes {:?} and {:?} are incompatible (inner dimensions {k} and {k2} differ)",
        a.shape(),
        b.shape()
    );
    if m * n * k <= SMALL_MATMUL {
        return small_matmul(a, b);
    }
    if !is_gemm_type::<T>() {
        let mut out = Array2::zeros((m, n));
        mat_mul_into(a, b, &mut out.view_mut());
        return out;
    }
    let mut out = Array2::<T>::uninit((m, n));
    write_product_threaded(a, b, out.view_mut());
    // SAFETY: every element of `out` has been written: `write_product_threaded` writes every
    // element of the view it is given (its doc; the test
    // `threaded_writes_cover_a_nan_filled_output` checks it on NaN-filled outputs at the
    // sizes of each threading), and it was given the whole of `out`.
    unsafe { out.assume_init() }
}

/// Writes `a · b` into every element of `out` (possibly uninitialised, `m × n`), threaded
/// by size (see [`Threading`]). `T` must be `f32` or `f64`.
fn write_product_threaded<T: Float>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    out: ArrayViewMut2<'_, MaybeUninit<T>>,
) {
    let (m, k, n) = product_dims(a, b, out.dim());
    in_halves(m * k * n, a, b, out, |a, b, out| {
        write_product(a, b, out, gemm::Parallelism::None);
    });
}

/// Runs `product(a, b, out)` on the whole product, or, from [`PARALLEL_MATMUL_THRESHOLD`]
/// multiply-adds on, on the two halves of the output's longer side (and the operand it comes
/// from), through [`super::fork_join::join`]. The decomposition depends on the shapes only
/// (see [`Threading`]), so the results do not depend on the number of threads.
fn in_halves<T: Float, E: Send>(
    multiply_adds: usize,
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    mut out: ArrayViewMut2<'_, E>,
    product: impl Fn(&ArrayView2<'_, T>, &ArrayView2<'_, T>, &mut ArrayViewMut2<'_, E>) + Sync,
) {
    if threading(multiply_adds) == Threading::One {
        product(a, b, &mut out);
        return;
    }
    let (m, n) = out.dim();
    let axis = if n >= m { Axis(1) } else { Axis(0) };
    let half = out.len_of(axis) / 2;
    let (mut first, mut second) = out.split_at(axis, half);
    let ((a1, b1), (a2, b2)) = if axis == Axis(1) {
        let (b1, b2) = b.view().split_at(Axis(1), half);
        ((a.view(), b1), (a.view(), b2))
    } else {
        let (a1, a2) = a.view().split_at(Axis(0), half);
        ((a1, b.view()), (a2, b.view()))
    };
    let product = &product;
    super::fork_join::join(
        || product(&a1, &b1, &mut first),
        || product(&a2, &b2, &mut second),
    );
}

/// Products of at most this many multiply-adds skip the blocked GEMM kernel, whose
/// packing buffers and dispatch cost more than the arithmetic at these sizes.
const SMALL_MATMUL: usize = 4096;

/// The matrix product by the textbook loop (any strides), for tiny operands such as a
/// one-unit `Dense` layer over a handful of samples.
fn small_matmul<T: Float>(a: &ArrayView2<'_, T>, b: &ArrayView2<'_, T>) -> Array2<T> {
    let (m, n) = (a.dim().0, b.dim().1);
    let mut out = vec![T::zero(); m * n];
    small_matmul_add(a, b, &mut out);
    Array2::from_shape_vec((m, n), out).expect("element count matches")
}

/// `out += a · b` by the textbook loop, `out` an `m × n` row-major buffer.
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

/// `a · b + bias` (`bias`, of length `n`, added to every row) as a new row-major `m × n`
/// array. The output starts as copies of the bias row and the product is added to it in the
/// kernel's output pass (`gemm` reads the destination it writes), so the bias costs neither
/// an array nor a pass of its own. Threaded like [`mat_mul_new`], with the same
/// decomposition.
#[track_caller]
pub(crate) fn mat_mul_bias_new<T: Float>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    bias: &[T],
) -> Array2<T> {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    assert!(
        k == k2 && bias.len() == n,
        "linear: shapes {:?}, {:?} and bias ({},) are incompatible",
        a.shape(),
        b.shape(),
        bias.len()
    );
    let mut data = Vec::with_capacity(m * n);
    for _ in 0..m {
        data.extend_from_slice(bias);
    }
    let mut out = Array2::from_shape_vec((m, n), data).expect("m rows of n");
    if m * n * k <= SMALL_MATMUL || k == 0 {
        small_matmul_add(a, b, out.as_slice_mut().expect("row-major"));
        return out;
    }
    if !is_gemm_type::<T>() {
        general_mat_mul(T::one(), a, b, T::one(), &mut out);
        return out;
    }
    in_halves(m * k * n, a, b, out.view_mut(), |a, b, out| {
        gemm_into_initialised(a, b, out, Destination::Add);
    });
    out
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

/// Writes `a · b` into every element of `out` (possibly uninitialised; `m × n`, any strides),
/// through the `gemm` crate. `T` must be `f32` or `f64`.
fn write_product<T: Float>(
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
/// `gemm` crate: one part of [`in_halves`]. `T` must be `f32` or `f64` and `k > 0` (the
/// callers check both); an empty part does nothing.
fn gemm_into_initialised<T: Float>(
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
    in_halves(multiply_adds, a, b, out.view_mut(), |a, b, out| {
        gemm_into_initialised(a, b, out, destination);
    });
}

/// What [`gemm_f32_f64`] does with its output block.
#[derive(Clone, Copy, PartialEq)]
enum Destination {
    /// `out = a · b`: the previous contents are neither read nor required to be initialised.
    Overwrite,
    /// `out += a · b`: the previous contents are read (and must be initialised).
    Add,
}

/// `out = a · b` or `out += a · b` through [`gemm::gemm`], for `T` = `f32` or `f64` with
/// shapes already checked.
///
/// The crate's `f32`/`f64` matrix products above [`SMALL_MATMUL`] all end here
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

    /// Small, medium (single-threaded), cut in halves by rows (`m > n`) and by columns
    /// (410³ too, once threaded by the gemm crate), and a one-row product in the halves range
    /// (its first half is empty).
    const SIZES: [(usize, usize, usize); 10] = [
        (3, 5, 4),
        (1, 7, 1),
        (70, 90, 60),
        (100, 100, 104),
        (64, 128, 128),
        (210, 250, 170),
        (110, 250, 330),
        (330, 250, 110),
        (410, 410, 410),
        (1, 1 << 23, 1),
    ];

    /// Runs `f` on a pool of two threads, so the threaded paths run whatever the machine.
    fn on_two_threads(f: impl FnOnce() + Send) {
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("a pool of two threads")
            .install(f);
    }

    #[test]
    fn the_sizes_reach_every_threading() {
        on_two_threads(|| {
            let kinds: Vec<Threading> = SIZES
                .iter()
                .map(|&(m, k, n)| threading(m * k * n))
                .collect();
            assert_eq!(
                kinds,
                [
                    Threading::One,
                    Threading::One,
                    Threading::One,
                    Threading::One,
                    Threading::Halves,
                    Threading::Halves,
                    Threading::Halves,
                    Threading::Halves,
                    Threading::Halves,
                    Threading::Halves,
                ]
            );
        });
    }

    #[test]
    fn threaded_writes_cover_a_nan_filled_output() {
        on_two_threads(|| {
            for &(m, k, n) in &SIZES {
                let (a, b) = (filled(m, k, 0.1), filled(k, n, 0.2));
                let want = naive(&a.view(), &b.view());
                let mut out = Array2::from_elem((m, n), MaybeUninit::new(f64::NAN));
                write_product_threaded(&a.view(), &b.view(), out.view_mut());
                let (a32, b32) = (a.mapv(|v| v as f32), b.mapv(|v| v as f32));
                let mut out32 = Array2::from_elem((m, n), MaybeUninit::new(f32::NAN));
                write_product_threaded(&a32.view(), &b32.view(), out32.view_mut());
                for ((got, got32), w) in out.iter().zip(&out32).zip(&want) {
                    // SAFETY: every element was initialised (to NaN) before the call.
                    let (got, got32) = unsafe { (got.assume_init(), got32.assume_init()) };
                    assert!((got - w).abs() < 1e-9, "{m}×{k}×{n}: {got} vs {w}");
                    assert!(
                        (f64::from(got32) - w).abs() < 1e-5 * k as f64,
                        "f32 {m}×{k}×{n}: {got32} vs {w}"
                    );
                }
            }
        });
    }

    #[test]
    fn matches_the_naive_product_for_every_layout() {
        // All but the 1 × 2²³ × 1 product (its six layouts would build 64 MB operands each;
        // `threaded_writes_cover_a_nan_filled_output` covers it).
        on_two_threads(|| every_layout(&SIZES[..SIZES.len() - 1]));
    }

    fn every_layout(sizes: &[(usize, usize, usize)]) {
        for &(m, k, n) in sizes {
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
                // The fresh output of `mat_mul_new` is never zero-filled: every element
                // must come from the product (a NaN-filled output above shows the kernel
                // reads none of it).
                let fresh = mat_mul_new(&x, &y);
                assert_eq!(fresh.dim(), (m, n));
                for (g, w) in fresh.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-9, "new {m}×{k}×{n}: {g} vs {w}");
                }
                let (x32, y32) = (x.mapv(|v| v as f32), y.mapv(|v| v as f32));
                let mut got32 = Array2::<f32>::from_elem((m, n), f32::NAN);
                mat_mul_into(&x32.view(), &y32.view(), &mut got32.view_mut());
                let fresh32 = mat_mul_new(&x32.view(), &y32.view());
                let tol = 1e-5 * k as f64;
                for ((g, f), w) in got32.iter().zip(&fresh32).zip(&want) {
                    assert!(
                        (f64::from(*g) - w).abs() < tol && (f64::from(*f) - w).abs() < tol,
                        "f32 {m}×{k}×{n}: {g}, {f} vs {w}"
                    );
                }
            }
        }
    }

    /// Runs `f` on a pool of `threads` threads.
    fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool")
            .install(f)
    }

    #[test]
    fn products_are_bit_identical_on_one_and_two_threads() {
        // Every threading, both axes of the halves, odd sizes, transposed operands and an
        // existing (column-major) output; f32 and f64.
        let shapes = [
            (7, 300, 9),
            (64, 128, 128),
            (128, 784, 256),
            (256, 128, 784),
            (33, 1000, 65),
            (301, 97, 203),
            (410, 410, 410),
            (1, 1 << 20, 3),
        ];
        let run = |threads: usize| {
            on_threads(threads, || {
                let mut bits: Vec<Vec<u64>> = Vec::new();
                for &(m, k, n) in &shapes {
                    let (a, b) = (filled(m, k, 0.3), filled(k, n, 0.7));
                    let a_t = filled(k, m, 0.3).reversed_axes();
                    let (a32, b32) = (a.mapv(|v| v as f32), b.mapv(|v| v as f32));
                    bits.push(
                        mat_mul_new(&a.view(), &b.view())
                            .iter()
                            .map(|v| v.to_bits())
                            .collect(),
                    );
                    bits.push(
                        mat_mul_new(&a_t.view(), &b.view())
                            .iter()
                            .map(|v| v.to_bits())
                            .collect(),
                    );
                    bits.push(
                        mat_mul_new(&a32.view(), &b32.view())
                            .iter()
                            .map(|v| u64::from(v.to_bits()))
                            .collect(),
                    );
                    let mut out = Array2::<f32>::zeros((m, n).f());
                    mat_mul_into(&a32.view(), &b32.view(), &mut out.view_mut());
                    bits.push(out.iter().map(|v| u64::from(v.to_bits())).collect());
                }
                bits
            })
        };
        let (one, two) = (run(1), run(2));
        for (i, (x, y)) in one.iter().zip(&two).enumerate() {
            assert!(
                x == y,
                "product {i} ({:?}) differs between 1 and 2 threads",
                shapes[i / 4]
            );
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
