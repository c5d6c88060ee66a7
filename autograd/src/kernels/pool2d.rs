//! Array kernels of 2-D pooling (PyTorch's `max_pool2d` and `avg_pool2d`), with no tape.
//!
//! Max pooling returns the position of each window's maximum ([`max_pool2d_argmax`]); the op
//! layer gathers `x` at those positions, and the gather's gradient (a scatter-add, which
//! accumulates where windows overlap) is max pooling's, so no backward kernel is needed.
//! Average pooling is linear: [`avg_pool2d_forward`] and its adjoint [`avg_pool2d_backward`].

use std::fmt;

use ndarray::{Array4, ArrayView4};

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
    g.check_input(x.shape());
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let [h, w] = g.input_hw;
    let [oh, ow] = g.output_hw;
    let mut values = Array4::from_elem((n, c, oh, ow), T::neg_infinity());
    let mut indices = Array4::zeros((n, c, oh, ow));
    if values.is_empty() {
        return (values, indices);
    }
    let x = x.as_standard_layout();
    let planes = x.as_slice().expect("standard layout").chunks_exact(h * w);
    let out_values = values
        .as_slice_mut()
        .expect("fresh array")
        .chunks_exact_mut(oh * ow);
    let out_indices = indices
        .as_slice_mut()
        .expect("fresh array")
        .chunks_exact_mut(oh * ow);
    for ((plane, vals), idxs) in planes.zip(out_values).zip(out_indices) {
        for r in 0..oh {
            let (h0, h1, _) = g.window(0, r);
            for q in 0..ow {
                let (w0, w1, _) = g.window(1, q);
                let mut best = T::neg_infinity();
                let mut best_index = h0 * w + w0;
                for ih in h0..h1 {
                    for (iw, &v) in plane[ih * w..].iter().enumerate().take(w1).skip(w0) {
                        if v > best || v.is_nan() {
                            best = v;
                            best_index = ih * w + iw;
                        }
                    }
                }
                vals[r * ow + q] = best;
                idxs[r * ow + q] = best_index;
            }
        }
    }
    (values, indices)
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
    let mut out = Array4::zeros((n, c, oh, ow));
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
    let mut dx = Array4::zeros(x_shape);
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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn golden() -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/conv.json");
        let text = std::fs::read_to_string(path).expect("tests/data/conv.json");
        serde_json::from_str(&text).expect("valid JSON")
    }

    fn usizes(v: &Value) -> Vec<usize> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|d| d.as_u64().expect("integer") as usize)
            .collect()
    }

    fn floats(v: &Value) -> Vec<f64> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|d| d.as_f64().expect("number"))
            .collect()
    }

    fn shape4(v: &Value) -> [usize; 4] {
        let s = usizes(v);
        [s[0], s[1], s[2], s[3]]
    }

    fn pair(v: &Value) -> [usize; 2] {
        match v.as_u64() {
            Some(k) => [k as usize; 2],
            None => {
                let v = usizes(v);
                [v[0], v[1]]
            }
        }
    }

    #[track_caller]
    fn assert_close(what: &str, got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-10 * w.abs() + 1e-12,
                "{what}[{i}]: {g} vs {w}"
            );
        }
    }

    #[test]
    fn replays_the_pytorch_pooling_cases() {
        let golden = golden();
        let (mut max_cases, mut avg_cases) = (0, 0);
        for case in golden["cases"].as_array().expect("cases") {
            let op = case["op"].as_str().expect("op");
            let is_max = op.starts_with("max_pool2d");
            if !is_max && !op.starts_with("avg_pool2d") {
                continue;
            }
            let attrs = &case["attrs"];
            let input = &case["inputs"][0];
            let xs = shape4(&input["shape"]);
            let x = Array4::from_shape_vec(xs, floats(&input["values"])).unwrap();
            let stride = Some(pair(&attrs["stride"]));
            let (g, ys) = Pool2dGeometry::new(
                &xs,
                pair(&attrs["kernel"]),
                stride,
                pair(&attrs["padding"]),
                false,
            )
            .unwrap_or_else(|e| panic!("{op}: {e}"));
            assert_eq!(ys, shape4(&case["output"]["shape"]), "{op}");
            let want = floats(&case["output"]["values"]);
            let up = Array4::from_shape_vec(ys, floats(&case["upstream"])).unwrap();
            let want_grad = floats(&case["grads"][0]);
            if is_max {
                max_cases += 1;
                let (values, indices) = max_pool2d_argmax(x.view(), &g);
                assert_close(op, values.as_slice().unwrap(), &want);
                // The op layer's gradient: scatter-add of the upstream at the indices.
                let mut grad = Array4::<f64>::zeros(xs);
                let plane = xs[2] * xs[3];
                for ((n, c, r, q), &i) in indices.indexed_iter() {
                    assert_eq!(
                        values[[n, c, r, q]],
                        x[[n, c, i / xs[3], i % xs[3]]],
                        "{op}"
                    );
                    assert!(i < plane);
                    grad[[n, c, i / xs[3], i % xs[3]]] += up[[n, c, r, q]];
                }
                assert_close(&format!("{op} grad"), grad.as_slice().unwrap(), &want_grad);
            } else {
                avg_cases += 1;
                let include = attrs
                    .get("count_include_pad")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                let y = avg_pool2d_forward(x.view(), &g, include);
                assert_close(op, y.as_slice().unwrap(), &want);
                let dx = avg_pool2d_backward(up.view(), xs, &g, include);
                assert_close(&format!("{op} grad"), dx.as_slice().unwrap(), &want_grad);
            }
        }
        assert_eq!((max_cases, avg_cases), (4, 3), "pooling cases in conv.json");
    }

    #[test]
    fn max_pool_ties_nan_and_padding() {
        // Ties: the first maximum in row-major window order.
        let x = Array4::from_shape_vec([1, 1, 2, 2], vec![1.0, 3.0, 3.0, 3.0]).unwrap();
        let (g, _) = Pool2dGeometry::new(&[1, 1, 2, 2], [2, 2], None, [0, 0], false).unwrap();
        let (v, i) = max_pool2d_argmax(x.view(), &g);
        assert_eq!((v[[0, 0, 0, 0]], i[[0, 0, 0, 0]]), (3.0, 1));
        // A NaN wins over larger numbers, wherever it is in the window.
        let x = Array4::from_shape_vec([1, 1, 2, 2], vec![1.0, f64::NAN, 5.0, 7.0]).unwrap();
        let (v, i) = max_pool2d_argmax(x.view(), &g);
        assert!(v[[0, 0, 0, 0]].is_nan());
        assert_eq!(i[[0, 0, 0, 0]], 1);
        // All −∞ in a padded window: the index is still an input position (the window's
        // first), never padding.
        let x = Array4::from_elem([1, 1, 3, 3], f64::NEG_INFINITY);
        let (g, ys) =
            Pool2dGeometry::new(&[1, 1, 3, 3], [3, 3], Some([2, 2]), [1, 1], false).unwrap();
        assert_eq!(ys, [1, 1, 2, 2]);
        let (v, i) = max_pool2d_argmax(x.view(), &g);
        assert!(v.iter().all(|&v| v == f64::NEG_INFINITY));
        assert_eq!(i.iter().copied().collect::<Vec<_>>(), [0, 1, 3, 4]);
    }

    #[test]
    fn geometry_sizes_and_errors() {
        use Pool2dError as E;
        let new =
            |x: &[usize], k, s, p, ceil| Pool2dGeometry::new(x, k, s, p, ceil).map(|(_, y)| y);
        assert_eq!(
            new(&[2, 3, 5, 5], [2, 2], None, [0, 0], false),
            Ok([2, 3, 2, 2])
        );
        assert_eq!(
            new(&[2, 3, 5, 5], [2, 2], None, [0, 0], true),
            Ok([2, 3, 3, 3])
        );
        // Ceil mode: H = 6, k 3, s 2, p 1 rounds 5/2 up (4 windows, the last starting at
        // input row 5); H = 5, k 2, s 2, p 1 would give 4, but the fourth window would start
        // in the bottom padding (padded row 6), so 3.
        assert_eq!(
            new(&[1, 1, 6, 6], [3, 3], Some([2, 2]), [1, 1], true),
            Ok([1, 1, 4, 4])
        );
        assert_eq!(
            new(&[1, 1, 5, 5], [2, 2], Some([2, 2]), [1, 1], true),
            Ok([1, 1, 3, 3])
        );
        assert_eq!(
            new(&[1, 1, 7, 7], [3, 3], Some([2, 2]), [1, 1], false),
            Ok([1, 1, 4, 4])
        );
        assert_eq!(
            new(&[1, 5, 5], [2, 2], None, [0, 0], false),
            Err(E::InputRank(vec![1, 5, 5]))
        );
        assert_eq!(
            new(&[1, 1, 5, 5], [0, 2], None, [0, 0], false),
            Err(E::ZeroKernel([0, 2]))
        );
        assert_eq!(
            new(&[1, 1, 5, 5], [2, 2], Some([2, 0]), [0, 0], false),
            Err(E::ZeroStride([2, 0]))
        );
        assert_eq!(
            new(&[1, 1, 5, 5], [3, 3], None, [1, 2], false),
            Err(E::PaddingTooLarge {
                padding: [1, 2],
                kernel: [3, 3]
            })
        );
        assert_eq!(
            new(&[1, 1, 0, 5], [1, 1], None, [0, 0], false),
            Err(E::EmptyInput(vec![1, 1, 0, 5]))
        );
        assert_eq!(
            new(&[1, 1, 2, 5], [3, 3], None, [0, 0], false),
            Err(E::OutputTooSmall {
                axis: "height",
                input: 2
            })
        );
        let message = new(&[1, 1, 5, 5], [3, 3], None, [1, 2], false)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("[1, 2]") && message.contains("[3, 3]"),
            "{message}"
        );
    }

    fn filled(shape: [usize; 4], seed: u64) -> Array4<f64> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        Array4::from_shape_simple_fn(shape, || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// ⟨avg_pool(x), g⟩ = ⟨x, avg_pool_backward(g)⟩, both divisors, floor and ceil mode;
        /// every max-pool index points at its value inside its window.
        #[test]
        fn avg_pool_backward_is_the_adjoint(
            (k, s, p) in (1usize..5, 1usize..5, 1usize..5, 1usize..4, 0usize..3, 0usize..3)
                .prop_map(|(kh, kw, sh, sw, ph, pw)| ([kh, kw], [sh, sw], [ph.min(kh / 2), pw.min(kw / 2)])),
            (h, w) in (1usize..9, 1usize..9),
            ceil in any::<bool>(),
            include in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let xs = [2, 2, h + k[0], w + k[1]];
            let (g, ys) = Pool2dGeometry::new(&xs, k, Some(s), p, ceil).expect("valid");
            let (x, up) = (filled(xs, seed), filled(ys, seed ^ 7));
            let y = avg_pool2d_forward(x.view(), &g, include);
            let dx = avg_pool2d_backward(up.view(), xs, &g, include);
            let lhs: f64 = y.iter().zip(&up).map(|(a, b)| a * b).sum();
            let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
            prop_assert!((lhs - rhs).abs() <= 1e-10 * (1.0 + lhs.abs()), "{lhs} vs {rhs}");
            let (values, indices) = max_pool2d_argmax(x.view(), &g);
            for ((n, c, r, q), &i) in indices.indexed_iter() {
                let (ih, iw) = (i / xs[3], i % xs[3]);
                prop_assert_eq!(values[[n, c, r, q]], x[[n, c, ih, iw]]);
                prop_assert!(ih + p[0] >= r * s[0] && ih + p[0] < r * s[0] + k[0]);
                prop_assert!(iw + p[1] >= q * s[1] && iw + p[1] < q * s[1] + k[1]);
            }
        }
    }
}
