//! Array kernels of 2-D pooling (PyTorch's `max_pool2d` and `avg_pool2d`), with no tape.
//!
//! Max pooling returns the maxima and the position of each ([`max_pool2d_argmax`]), whose
//! scatter-add (which accumulates where windows overlap) is max pooling's gradient, so no
//! backward kernel is needed; without a gradient to carry back, the maxima alone
//! ([`max_pool2d_values`]).
//! Average pooling is linear: [`avg_pool2d_forward`] and its adjoint [`avg_pool2d_backward`].

use std::fmt;
use std::mem::MaybeUninit;

use ndarray::{Array4, ArrayView4};

use super::elementwise::PARALLEL_THRESHOLD;
use super::fork_join::join;
use super::pool;
use crate::Float;

/// Kernel, stride, padding and rounding of a 2-D pooling, with the input and output sizes
/// they were checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pool2dGeometry {
    /// Window height and width.
    pub(crate) kernel: [usize; 2],
    /// Step between windows, `[h, w]`.
    pub(crate) stride: [usize; 2],
    /// Padding on each side, `[h, w]` (−∞ for max pooling, zeros for average pooling).
    pub(crate) padding: [usize; 2],
    /// Whether the output size rounds up (PyTorch's `ceil_mode`); floor otherwise.
    pub(crate) ceil_mode: bool,
    /// Input height and width.
    pub(crate) input_hw: [usize; 2],
    /// Output height and width.
    pub(crate) output_hw: [usize; 2],
}

/// Why a pooling's shape or parameters are invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pool2dError {
    /// The input is not `[N, C, H, W]`.
    InputRank(Vec<usize>),
    /// The input has a zero height or width.
    EmptyInput(Vec<usize>),
    /// The kernel has a zero height or width.
    ZeroKernel([usize; 2]),
    /// A stride is zero.
    ZeroStride([usize; 2]),
    /// The padding exceeds half the kernel along an axis (PyTorch's rule).
    PaddingTooLarge {
        /// The padding.
        padding: [usize; 2],
        /// The kernel.
        kernel: [usize; 2],
    },
    /// The output would have no rows or columns.
    OutputTooSmall {
        /// `"height"` or `"width"`.
        axis: &'static str,
        /// The input's size along that axis.
        input: usize,
    },
}

impl fmt::Display for Pool2dError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InputRank(shape) => write!(f, "input {shape:?} is not [N, C, H, W]"),
            Self::EmptyInput(shape) => write!(f, "input {shape:?} has an empty plane"),
            Self::ZeroKernel(k) => write!(f, "kernel size {k:?} has a zero"),
            Self::ZeroStride(s) => write!(f, "stride {s:?} has a zero"),
            Self::PaddingTooLarge { padding, kernel } => write!(
                f,
                "padding {padding:?} exceeds half the kernel size {kernel:?}"
            ),
            Self::OutputTooSmall { axis, input } => {
                write!(
                    f,
                    "the output's {axis} would be empty (input {axis} {input})"
                )
            }
        }
    }
}

impl Pool2dGeometry {
    /// Checks a pooling of an input of shape `[N, C, H, W]` and returns its geometry and the
    /// output shape `[N, C, OH, OW]` (PyTorch's sizes: `OH = (H + 2p − k) / s + 1`, rounded up
    /// in ceil mode unless the last window would start in the bottom padding). `stride`
    /// `None` is the kernel size.
    pub(crate) fn new(
        x_shape: &[usize],
        kernel: [usize; 2],
        stride: Option<[usize; 2]>,
        padding: [usize; 2],
        ceil_mode: bool,
    ) -> Result<(Self, [usize; 4]), Pool2dError> {
        let &[n, c, h, w] = x_shape else {
            return Err(Pool2dError::InputRank(x_shape.to_vec()));
        };
        let stride = stride.unwrap_or(kernel);
        if kernel.contains(&0) {
            return Err(Pool2dError::ZeroKernel(kernel));
        }
        if stride.contains(&0) {
            return Err(Pool2dError::ZeroStride(stride));
        }
        if padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2 {
            return Err(Pool2dError::PaddingTooLarge { padding, kernel });
        }
        if h == 0 || w == 0 {
            return Err(Pool2dError::EmptyInput(x_shape.to_vec()));
        }
        let mut output_hw = [0; 2];
        for (axis, name) in ["height", "width"].into_iter().enumerate() {
            let (input, k, s, p) = ([h, w][axis], kernel[axis], stride[axis], padding[axis]);
            let span = (input + 2 * p) as isize - k as isize;
            let rounding = if ceil_mode { s as isize - 1 } else { 0 };
            let mut out = (span + rounding).div_euclid(s as isize) + 1;
            // Ceil mode: the last window must start inside the input or its top padding.
            if ceil_mode && out > 0 && (out as usize - 1) * s >= input + p {
                out -= 1;
            }
            if out < 1 {
                return Err(Pool2dError::OutputTooSmall { axis: name, input });
            }
            output_hw[axis] = out as usize;
        }
        let geometry = Self {
            kernel,
            stride,
            padding,
            ceil_mode,
            input_hw: [h, w],
            output_hw,
        };
        Ok((geometry, [n, c, output_hw[0], output_hw[1]]))
    }

    /// Rows `lo..hi` of the input (clipped) that window `o` covers along `axis`, and the
    /// window's size counting padding (clipped to the padded input, as PyTorch counts it).
    #[inline]
    fn window(&self, axis: usize, o: usize) -> (usize, usize, usize) {
        let (input, k, p) = (self.input_hw[axis], self.kernel[axis], self.padding[axis]);
        let start = o * self.stride[axis]; // in padded coordinates
        let end = (start + k).min(input + 2 * p);
        let padded_size = end - start;
        (
            start.saturating_sub(p),
            (end - p).min(input).max(start.saturating_sub(p)),
            padded_size,
        )
    }

    #[track_caller]
    fn check_input(&self, shape: &[usize]) {
        assert!(
            shape.len() == 4 && shape[2..] == self.input_hw,
            "pool2d kernel: input {shape:?} does not match the geometry's {:?}",
            self.input_hw
        );
    }
}

/// Max pooling with −∞ padding: the maxima and, for each, its flat index `h·W + w` in its
/// `(n, c)` input plane (never a padding position). Ties go to the first maximum in
/// row-major window order; a NaN in the window wins (the last NaN, as PyTorch's CPU kernel).
pub(crate) fn max_pool2d_argmax<T: Float>(
    x: ArrayView4<'_, T>,
    g: &Pool2dGeometry,
) -> (Array4<T>, Array4<usize>) {
    let (values, indices) = max_pool2d::<T, true>(x, g);
    (values, indices.expect("indices asked for"))
}

/// [`max_pool2d_argmax`]'s maxima alone, for a forward pass that records no gradient.
pub(crate) fn max_pool2d_values<T: Float>(x: ArrayView4<'_, T>, g: &Pool2dGeometry) -> Array4<T> {
    max_pool2d::<T, false>(x, g).0
}

/// The maxima, and their flat indices if `INDEX`.
fn max_pool2d<T: Float, const INDEX: bool>(
    x: ArrayView4<'_, T>,
    g: &Pool2dGeometry,
) -> (Array4<T>, Option<Array4<usize>>) {
    g.check_input(x.shape());
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let [h, w] = g.input_hw;
    let [oh, ow] = g.output_hw;
    // The outputs are allocated without a fill: every kernel below writes each maximum and
    // each index of its planes exactly once.
    let len = n * c * oh * ow;
    let mut values: Vec<T> = pool::vec(len);
    let mut indices: Vec<usize> = pool::vec(if INDEX { len } else { 0 });
    if len > 0 {
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout");
        let vals = &mut values.spare_capacity_mut()[..len];
        let idxs = &mut indices.spare_capacity_mut()[..if INDEX { len } else { 0 }];
        // The planes in two halves side by side from `PARALLEL_THRESHOLD` input elements on
        // (each output element depends on its window only: the same results either way).
        let planes = n * c;
        if xs.len() >= PARALLEL_THRESHOLD && planes >= 2 {
            let mid = planes / 2;
            let (xs1, xs2) = xs.split_at(mid * h * w);
            let (vals1, vals2) = vals.split_at_mut(mid * oh * ow);
            let (idxs1, idxs2) = idxs.split_at_mut(if INDEX { mid * oh * ow } else { 0 });
            join(
                || max_planes::<T, INDEX>(xs1, g, vals1, idxs1),
                || max_planes::<T, INDEX>(xs2, g, vals2, idxs2),
            );
        } else {
            max_planes::<T, INDEX>(xs, g, vals, idxs);
        }
        // SAFETY: the halves (or the one call) cover all `n · c` planes, and `max_planes`
        // writes all `oh · ow` maxima of each plane, and their indices if `INDEX`, so the
        // first `len` elements of both vectors are initialized.
        unsafe {
            values.set_len(len);
            if INDEX {
                indices.set_len(len);
            }
        }
    }
    let shape = (n, c, oh, ow);
    let values = Array4::from_shape_vec(shape, values).expect("n · c · oh · ow maxima");
    let indices =
        INDEX.then(|| Array4::from_shape_vec(shape, indices).expect("n · c · oh · ow indices"));
    (values, indices)
}

/// Max pooling of the planes `xs` (`H·W` each) into `vals` (`OH·OW` each) and, if `INDEX`,
/// their indices into `idxs`: every element of both is written.
fn max_planes<T: Float, const INDEX: bool>(
    xs: &[T],
    g: &Pool2dGeometry,
    vals: &mut [MaybeUninit<T>],
    idxs: &mut [MaybeUninit<usize>],
) {
    let [h, w] = g.input_hw;
    let [oh, ow] = g.output_hw;
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    // Without padding and with every window inside the input (the usual pooling by 2),
    // windows are pooled row by row with no clipping; the kernel sizes of the common
    // 2×2 and 3×3 windows are constants there, so their taps unroll.
    let inside = g.padding == [0, 0] && (oh - 1) * sh + kh <= h && (ow - 1) * sw + kw <= w;
    let planes = xs.chunks_exact(h * w).zip(vals.chunks_exact_mut(oh * ow));
    for (p, (plane, vals)) in planes.enumerate() {
        let idxs = if INDEX {
            &mut idxs[p * oh * ow..][..oh * ow]
        } else {
            &mut []
        };
        if inside && g.kernel == [2, 2] && g.stride == [2, 2] {
            max_2x2::<T, INDEX>(plane, (w, ow), vals, idxs);
            continue;
        }
        if inside {
            let steps = (w, [sh, sw], ow);
            match g.kernel {
                [3, 3] => max_inside::<T, INDEX>(plane, steps, [3, 3], vals, idxs),
                kernel => max_inside::<T, INDEX>(plane, steps, kernel, vals, idxs),
            }
            continue;
        }
        for o in 0..oh * ow {
            let (h0, h1, _) = g.window(0, o / ow);
            let (w0, w1, _) = g.window(1, o % ow);
            let (best, index) = max_window(plane, w, (h0, h1), (w0, w1));
            vals[o].write(best);
            if INDEX {
                idxs[o].write(index);
            }
        }
    }
}

/// Whether `v` replaces the running maximum `best`: larger, or NaN (so the first maximum
/// wins ties and the last NaN wins over numbers, as in PyTorch's CPU kernel).
#[inline(always)]
fn replaces<T: Float>(v: T, best: T) -> bool {
    // `|`, not `||`: both comparisons always, so no branch (NaN is the value unequal to
    // itself).
    #[allow(clippy::eq_op)]
    let nan = v != v;
    (v > best) | nan
}

/// The maximum of one window, rows `h0..h1` and columns `w0..w1` of a plane of width `w`,
/// and its flat index; the first element's index if all are −∞.
#[inline]
fn max_window<T: Float>(
    plane: &[T],
    w: usize,
    (h0, h1): (usize, usize),
    (w0, w1): (usize, usize),
) -> (T, usize) {
    let mut best = T::neg_infinity();
    let mut best_index = h0 * w + w0;
    for ih in h0..h1 {
        for (p, &v) in plane.iter().enumerate().take(ih * w + w1).skip(ih * w + w0) {
            if replaces(v, best) {
                best = v;
                best_index = p;
            }
        }
    }
    (best, best_index)
}

/// Pooling by 2 (2×2 windows, stride 2, all inside the plane of width `w`; `ow` windows a
/// row), output row by
/// output row: the two input rows as pairs, each window's maximum the larger of its top
/// pair's and its bottom pair's (the same choice as the row-major scan: a right or lower
/// element wins only if larger or NaN). Branch-free, so the compiler vectorizes it; ReLU
/// outputs tie half the time, where branches mispredict.
#[inline(always)]
fn max_2x2<T: Float, const INDEX: bool>(
    plane: &[T],
    (w, ow): (usize, usize),
    vals: &mut [MaybeUninit<T>],
    idxs: &mut [MaybeUninit<usize>],
) {
    for (r, row_vals) in vals.chunks_exact_mut(ow).enumerate() {
        let top = 2 * r * w;
        let (upper, _) = plane[top..top + 2 * ow].as_chunks::<2>();
        let (lower, _) = plane[top + w..top + w + 2 * ow].as_chunks::<2>();
        let pairs = upper.iter().zip(lower);
        if INDEX {
            let row_idxs = &mut idxs[r * ow..(r + 1) * ow];
            for (q, ((value, index), (&[a, b], &[c, d]))) in
                row_vals.iter_mut().zip(row_idxs).zip(pairs).enumerate()
            {
                let (upper_right, lower_right) = (replaces(b, a), replaces(d, c));
                let (upper_max, lower_max) = (pick(upper_right, b, a), pick(lower_right, d, c));
                let lower_wins = replaces(lower_max, upper_max);
                value.write(pick(lower_wins, lower_max, upper_max));
                let column = top + 2 * q;
                index.write(if lower_wins {
                    column + w + usize::from(lower_right)
                } else {
                    column + usize::from(upper_right)
                });
            }
        } else {
            for (value, (&[a, b], &[c, d])) in row_vals.iter_mut().zip(pairs) {
                let (upper_max, lower_max) =
                    (pick(replaces(b, a), b, a), pick(replaces(d, c), d, c));
                value.write(pick(replaces(lower_max, upper_max), lower_max, upper_max));
            }
        }
    }
}

/// `if take { a } else { b }`, for a compiler to turn into a select.
#[inline(always)]
fn pick<T: Copy>(take: bool, a: T, b: T) -> T {
    if take { a } else { b }
}

/// Every window of one plane (of width `w`) when all lie inside it: window `(r, q)` starts
/// at `r·sh·w + q·sw`. Its maximum goes to `vals[r·ow + q]` and, if `INDEX`, its flat index
/// to `idxs[r·ow + q]`. Selects rather than branches: activations after a ReLU tie half
/// the time, where a branch per element mispredicts. Inlined so that a constant `kernel`
/// unrolls the taps.
#[inline(always)]
fn max_inside<T: Float, const INDEX: bool>(
    plane: &[T],
    (w, [sh, sw], ow): (usize, [usize; 2], usize),
    [kh, kw]: [usize; 2],
    vals: &mut [MaybeUninit<T>],
    idxs: &mut [MaybeUninit<usize>],
) {
    let span = (ow - 1) * sw + kw;
    for (r, row_vals) in vals.chunks_exact_mut(ow).enumerate() {
        let top = r * sh * w;
        let rows: &[T] = &plane[top..top + (kh - 1) * w + span];
        for (q, value) in row_vals.iter_mut().enumerate() {
            let start = q * sw;
            // The first tap: the maximum so far whatever it is (a −∞ or a NaN included).
            let mut best = rows[start];
            let mut index = start;
            for i in 0..kh {
                let taps = &rows[start + i * w..start + i * w + kw];
                for (j, &v) in taps.iter().enumerate() {
                    let take = replaces(v, best);
                    best = if take { v } else { best };
                    if INDEX {
                        index = if take { start + i * w + j } else { index };
                    }
                }
            }
            value.write(best);
            if INDEX {
                idxs[r * ow + q].write(top + index);
            }
        }
    }
}

/// Average pooling with zero padding: each window's sum divided by its size counting the
/// padding (`count_include_pad`, PyTorch's default) or by its number of input elements.
pub(crate) fn avg_pool2d_forward<T: Float>(
    x: ArrayView4<'_, T>,
    g: &Pool2dGeometry,
    count_include_pad: bool,
) -> Array4<T> {
    g.check_input(x.shape());
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let [h, w] = g.input_hw;
    let [oh, ow] = g.output_hw;
    let mut out =
        Array4::from_shape_vec((n, c, oh, ow), pool::zeros(n * c * oh * ow)).expect("N·C·OH·OW");
    if out.is_empty() {
        return out;
    }
    let x = x.as_standard_layout();
    let planes = x.as_slice().expect("standard layout").chunks_exact(h * w);
    let outs = out
        .as_slice_mut()
        .expect("fresh array")
        .chunks_exact_mut(oh * ow);
    for (plane, o) in planes.zip(outs) {
        for r in 0..oh {
            let (h0, h1, hsize) = g.window(0, r);
            for q in 0..ow {
                let (w0, w1, wsize) = g.window(1, q);
                let mut sum = T::zero();
                for ih in h0..h1 {
                    sum += plane[ih * w + w0..ih * w + w1].iter().copied().sum::<T>();
                }
                let count = divisor(count_include_pad, (h0, h1, hsize), (w0, w1, wsize));
                o[r * ow + q] = sum / T::from_f64(count as f64);
            }
        }
    }
    out
}

/// The adjoint of [`avg_pool2d_forward`] (its gradient): each output gradient, divided as
/// the forward divides, added to every input element of its window; `x_shape` is the
/// input's shape.
pub(crate) fn avg_pool2d_backward<T: Float>(
    grad_out: ArrayView4<'_, T>,
    x_shape: [usize; 4],
    g: &Pool2dGeometry,
    count_include_pad: bool,
) -> Array4<T> {
    g.check_input(&x_shape);
    let [n, c, h, w] = x_shape;
    let [oh, ow] = g.output_hw;
    assert!(
        grad_out.shape() == [n, c, oh, ow],
        "avg_pool2d kernel: output gradient {:?}, the geometry gives {:?}",
        grad_out.shape(),
        [n, c, oh, ow]
    );
    let mut dx = Array4::from_shape_vec(x_shape, pool::zeros(n * c * h * w)).expect("N·C·H·W");
    if grad_out.is_empty() {
        return dx;
    }
    let gr = grad_out.as_standard_layout();
    let grads = gr
        .as_slice()
        .expect("standard layout")
        .chunks_exact(oh * ow);
    let planes = dx
        .as_slice_mut()
        .expect("fresh array")
        .chunks_exact_mut(h * w);
    for (go, plane) in grads.zip(planes) {
        for r in 0..oh {
            let (h0, h1, hsize) = g.window(0, r);
            for q in 0..ow {
                let (w0, w1, wsize) = g.window(1, q);
                let count = divisor(count_include_pad, (h0, h1, hsize), (w0, w1, wsize));
                let share = go[r * ow + q] / T::from_f64(count as f64);
                for ih in h0..h1 {
                    plane[ih * w + w0..ih * w + w1]
                        .iter_mut()
                        .for_each(|d| *d += share);
                }
            }
        }
    }
    dx
}

/// The divisor of one average-pooling window: its padded size or its input elements.
#[inline]
fn divisor(
    count_include_pad: bool,
    (h0, h1, hsize): (usize, usize, usize),
    (w0, w1, wsize): (usize, usize, usize),
) -> usize {
    if count_include_pad {
        hsize * wsize
    } else {
        (h1 - h0) * (w1 - w0)
    }
}

#[cfg(test)]
mod tests;
