//! Reduction kernels: sums over axes (each run of adjacent axes in one contiguous pass) and
//! max/min over axes.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};
use smallvec::SmallVec;

use super::elementwise::PARALLEL_THRESHOLD;
use super::fork_join::halves;
use super::pool;
use crate::Float;
use crate::kernels::Dims;

/// The sum of every element of `v`.
#[inline]
pub(crate) fn sum_all<T: Float>(v: &ArrayViewD<'_, T>) -> T {
    match v.as_slice() {
        Some(s) => s.iter().copied().sum(),
        None => v.iter().copied().sum(),
    }
}

/// The sum of `v` over `axes` (in range, not empty); `keepdim` keeps them with length 1.
pub(crate) fn sum_axes<T: Float>(
    v: &ArrayViewD<'_, T>,
    axes: &[usize],
    keepdim: bool,
) -> ArrayD<T> {
    let ndim = v.ndim();
    if axes.len() == ndim {
        let total = sum_all(v);
        let shape: Dims = if keepdim {
            SmallVec::from_elem(1, ndim)
        } else {
            SmallVec::new()
        };
        return pool::filled(&shape, total);
    }
    let mut sorted = Dims::from_slice(axes);
    sorted.sort_unstable();
    sorted.dedup();
    let shape = Dims::from_slice(v.shape());
    // Reduce each run of adjacent axes, last run first, with a contiguous kernel; the
    // reduced axes stay as 1s until the end.
    let mut out = sum_run(
        &v.as_standard_layout().view(),
        &shape,
        run_of(&sorted, sorted.len() - 1),
    );
    let mut end = run_of(&sorted, sorted.len() - 1).0;
    while end > 0 {
        let run = run_of(&sorted[..end], end - 1);
        let current = Dims::from_slice(out.shape());
        let next = sum_run(&out.view(), &current, run);
        pool::recycle_array(std::mem::replace(&mut out, next));
        end = run.0;
    }
    let kept: Dims = if keepdim {
        Dims::from_slice(out.shape())
    } else {
        (0..ndim)
            .filter(|i| sorted.binary_search(i).is_err())
            .map(|i| shape[i])
            .collect()
    };
    out.into_shape_with_order(IxDyn(&kept))
        .expect("same element count")
}

/// The run of adjacent axes of `sorted` (sorted, deduplicated) that ends at position
/// `last`: its first position in `sorted`, and its first and last axis.
fn run_of(sorted: &[usize], last: usize) -> (usize, usize, usize) {
    let mut first = last;
    while first > 0 && sorted[first - 1] + 1 == sorted[first] {
        first -= 1;
    }
    (first, sorted[first], sorted[last])
}

/// Sums a standard-layout array over the adjacent axes `from..=to` of `run`, keeping them
/// as 1s: the array is read as `(outer, reduced, inner)` and each reduced row of `inner`
/// contiguous elements is added into its output row (a loop that vectorises, with no
/// temporary per row). From [`PARALLEL_THRESHOLD`] input elements the output is computed in
/// two halves side by side; each output element is summed in the same order either way.
fn sum_run<T: Float>(
    a: &ArrayViewD<'_, T>,
    shape: &[usize],
    (_, from, to): (usize, usize, usize),
) -> ArrayD<T> {
    let data = a.as_slice().expect("standard layout");
    let outer: usize = shape[..from].iter().product();
    let reduced: usize = shape[from..=to].iter().product();
    let inner: usize = shape[to + 1..].iter().product();
    let mut out = pool::zeros(outer * inner);
    let side_by_side = data.len() >= PARALLEL_THRESHOLD && out.len() >= 2;
    halves(&mut out, side_by_side, |start, part| {
        if inner == 1 {
            for (i, total) in part.iter_mut().enumerate() {
                let o = start + i;
                *total = sum_lanes(&data[o * reduced..(o + 1) * reduced]);
            }
            return;
        }
        // Output elements `start..start + part.len()`, row by row of `inner`.
        let (mut e, end) = (start, start + part.len());
        while e < end {
            let (o, c0) = (e / inner, e % inner);
            let c1 = inner.min(c0 + end - e);
            let row_out = &mut part[e - start..e - start + c1 - c0];
            let block = &data[o * reduced * inner..(o + 1) * reduced * inner];
            for row in block.chunks_exact(inner) {
                row_out
                    .iter_mut()
                    .zip(&row[c0..c1])
                    .for_each(|(t, &x)| *t += x);
            }
            e += c1 - c0;
        }
    });
    let mut kept = Dims::from_slice(shape);
    kept[from..=to].iter_mut().for_each(|d| *d = 1);
    ArrayD::from_shape_vec(IxDyn(&kept), out).expect("element count matches")
}

/// The sum of `xs` in [`LANES`] interleaved partial sums, added up at the end: independent
/// additions that the compiler vectorizes, where one running sum waits on each addition's
/// latency (a bias gradient sums every `H·W` plane of the output gradient this way).
fn sum_lanes<T: Float>(xs: &[T]) -> T {
    let (chunks, rest) = xs.as_chunks::<LANES>();
    let mut partial = [T::zero(); LANES];
    for chunk in chunks {
        for (p, &x) in partial.iter_mut().zip(chunk) {
            *p += x;
        }
    }
    let tail: T = rest.iter().copied().sum();
    partial.iter().copied().sum::<T>() + tail
}

/// Partial sums of [`sum_lanes`]: two AVX-512 vectors of `f32`.
const LANES: usize = 32;

/// The maximum (`is_max`) or minimum of `a` over `axes`; NaN propagates.
pub(crate) fn extremum<T: Float>(
    a: &ArrayD<T>,
    axes: &[usize],
    keepdim: bool,
    is_max: bool,
) -> ArrayD<T> {
    let pick = move |acc: T, &x: &T| {
        if is_max {
            if x > acc || x.is_nan() { x } else { acc }
        } else if x < acc || x.is_nan() {
            x
        } else {
            acc
        }
    };
    let init = if is_max {
        T::neg_infinity()
    } else {
        T::infinity()
    };
    let mut sorted = Dims::from_slice(axes);
    sorted.sort_unstable();
    let Some((&last, rest)) = sorted.split_last() else {
        return pool::copy(a);
    };
    let mut out = match (rest.is_empty(), a.as_slice()) {
        // One axis of a row-major array: the lanes are read in place, each folded in order
        // as `map_axis` folds it, into a buffer from the pool.
        (true, Some(data)) if !a.is_empty() => {
            let shape = a.shape();
            let len = shape[last];
            let inner: usize = shape[last + 1..].iter().product();
            let mut values = pool::vec(data.len() / len);
            for block in data.chunks_exact(len * inner) {
                values.extend(
                    (0..inner)
                        .map(|i| (0..len).fold(init, |acc, j| pick(acc, &block[j * inner + i]))),
                );
            }
            let kept: Dims = (0..shape.len())
                .filter(|&d| d != last)
                .map(|d| shape[d])
                .collect();
            ArrayD::from_shape_vec(IxDyn(&kept), values).expect("one value per lane")
        }
        _ => a.map_axis(Axis(last), |lane| lane.iter().fold(init, pick)),
    };
    for &axis in rest.iter().rev() {
        out = out.map_axis(Axis(axis), |lane| lane.iter().fold(init, pick));
    }
    if keepdim {
        for &axis in &sorted {
            out.insert_axis_inplace(Axis(axis));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, Axis, IxDyn};

    use super::sum_axes;
    use crate::kernels::testing::on_threads;

    /// Sums over leading, middle, trailing and paired axes of arrays large enough to be
    /// summed in two halves (the middle case cuts an output row in two) equal `sum_axis`
    /// (integer values, so every order of addition is exact), with the same bits on one and
    /// two threads for values that are not integers.
    #[test]
    fn large_sums_in_halves_match_sum_axis_on_any_thread_count() {
        let cases: [(&[usize], &[usize]); 4] = [
            (&[3, 40_000], &[0]),
            (&[5, 300, 70], &[1]),
            (&[4, 64, 16, 16], &[2, 3]),
            (&[4, 64, 16, 16], &[0, 2, 3]),
        ];
        for (shape, axes) in cases {
            let n: usize = shape.iter().product();
            let ints =
                ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(|i| (i % 7) as f64).collect())
                    .expect("n elements");
            let mut want = ints.clone();
            for &axis in axes.iter().rev() {
                want = want.sum_axis(Axis(axis));
            }
            let got = on_threads(2, || sum_axes(&ints.view(), axes, false));
            assert_eq!(got, want, "{shape:?} over {axes:?}");
            let reals = ArrayD::from_shape_vec(
                IxDyn(shape),
                (0..n)
                    .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 + 0.1)
                    .collect(),
            )
            .expect("n elements");
            let one = on_threads(1, || sum_axes(&reals.view(), axes, true));
            let two = on_threads(2, || sum_axes(&reals.view(), axes, true));
            assert_eq!(one, two, "{shape:?} over {axes:?}");
        }
    }
}
