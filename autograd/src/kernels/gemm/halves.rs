//! How a product is decomposed: one single-threaded product, or two halves of the output
//! run side by side, chosen by the product's size only.

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

use crate::Float;

/// Products with at least this many multiply-adds (`m·k·n`) use two threads; smaller ones
/// run on the calling thread, where the split costs more than it saves. Chosen by same-process
/// A/B runs of whole training steps of the 784-256-128-10 MLP (`nn/examples/mlp_profile`,
/// batches 32 and 128), where 2²⁰ was fastest of 2¹⁹–2²³.
pub(crate) const PARALLEL_MATMUL_THRESHOLD: usize = 1 << 20;

/// How a product is decomposed. It depends on the product's size only, never on the
/// number of threads: every output element is then summed in the same order (by the same
/// single-threaded `gemm` call over the same operand block), so results are bit for bit the
/// same with one thread (`RAYON_NUM_THREADS=1`, a one-thread pool) or two. The `gemm`
/// crate's own rayon threading is never used: it picks its blocking from the thread count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Threading {
    /// One single-threaded product.
    One,
    /// Two halves of the output, one single-threaded product each, run by
    /// [`crate::kernels::fork_join::join`]: side by side on two threads, one after the
    /// other on one.
    Halves,
}

pub(super) fn threading(multiply_adds: usize) -> Threading {
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

/// Runs `product(a, b, out, first_column)` on the whole product, or, from
/// [`PARALLEL_MATMUL_THRESHOLD`] multiply-adds on, on the two halves of the output's longer
/// side (and the operand it comes from), through [`crate::kernels::fork_join::join`];
/// `first_column` is the index of `out`'s first column in the whole output. The
/// decomposition depends on the shapes only (see [`Threading`]), so the results do not
/// depend on the number of threads.
pub(super) fn in_halves<T: Float, E: Send>(
    multiply_adds: usize,
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    mut out: ArrayViewMut2<'_, E>,
    product: impl Fn(&ArrayView2<'_, T>, &ArrayView2<'_, T>, &mut ArrayViewMut2<'_, E>, usize) + Sync,
) {
    if threading(multiply_adds) == Threading::One {
        product(a, b, &mut out, 0);
        return;
    }
    let (m, n) = out.dim();
    let axis = if n >= m { Axis(1) } else { Axis(0) };
    let half = out.len_of(axis) / 2;
    let (mut first, mut second) = out.split_at(axis, half);
    let second_column = if axis == Axis(1) { half } else { 0 };
    let ((a1, b1), (a2, b2)) = if axis == Axis(1) {
        let (b1, b2) = b.view().split_at(Axis(1), half);
        ((a.view(), b1), (a.view(), b2))
    } else {
        let (a1, a2) = a.view().split_at(Axis(0), half);
        ((a1, b.view()), (a2, b.view()))
    };
    let product = &product;
    crate::kernels::fork_join::join(
        || product(&a1, &b1, &mut first, 0),
        || product(&a2, &b2, &mut second, second_column),
    );
}
