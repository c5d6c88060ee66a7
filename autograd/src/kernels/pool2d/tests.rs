//! Tests of the pooling kernels: PyTorch golden values, ties and NaN, sizes and errors,
//! adjointness.

use super::*;
use crate::kernels::testing::{assert_close, filled, floats, golden, pair, shape4};
use proptest::prelude::*;
use serde_json::Value;

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
    let (g, ys) = Pool2dGeometry::new(&[1, 1, 3, 3], [3, 3], Some([2, 2]), [1, 1], false).unwrap();
    assert_eq!(ys, [1, 1, 2, 2]);
    let (v, i) = max_pool2d_argmax(x.view(), &g);
    assert!(v.iter().all(|&v| v == f64::NEG_INFINITY));
    assert_eq!(i.iter().copied().collect::<Vec<_>>(), [0, 1, 3, 4]);
}

#[test]
fn geometry_sizes_and_errors() {
    use Pool2dError as E;
    let new = |x: &[usize], k, s, p, ceil| Pool2dGeometry::new(x, k, s, p, ceil).map(|(_, y)| y);
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

/// Max pooling by its definition: each window's first maximum in row-major order, the last
/// NaN if any, the first input element if all are −∞.
fn naive_max_pool(x: &Array4<f64>, g: &Pool2dGeometry) -> (Array4<f64>, Array4<usize>) {
    let [n, c, _, w] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
    let [oh, ow] = g.output_hw;
    let mut values = Array4::zeros((n, c, oh, ow));
    let mut indices = Array4::zeros((n, c, oh, ow));
    for ((b, ch, r, q), v) in values.indexed_iter_mut() {
        let ((h0, h1, _), (w0, w1, _)) = (g.window(0, r), g.window(1, q));
        let (mut best, mut index) = (f64::NEG_INFINITY, h0 * w + w0);
        for ih in h0..h1 {
            for iw in w0..w1 {
                let e = x[[b, ch, ih, iw]];
                if e > best || e.is_nan() {
                    (best, index) = (e, ih * w + iw);
                }
            }
        }
        *v = best;
        indices[[b, ch, r, q]] = index;
    }
    (values, indices)
}

/// The row-by-row windows (every window inside the input, pooling by 2 and others) and the
/// one-by-one ones give the definition's maxima and indices, with many ties (values on a
/// grid of 3, as after a ReLU), NaNs and −∞, on one plane range or two halves; the maxima
/// alone (no gradient recorded) are the same.
#[test]
fn max_pool_matches_its_definition_with_ties_and_nan() {
    /// Input shape, kernel, stride, padding.
    type Case = ([usize; 4], [usize; 2], Option<[usize; 2]>, [usize; 2]);
    let cases: [Case; 8] = [
        ([2, 3, 28, 28], [2, 2], None, [0, 0]),
        // Large enough for two halves of planes (an odd number of planes).
        ([3, 7, 56, 56], [2, 2], None, [0, 0]),
        ([3, 7, 56, 56], [3, 3], Some([2, 2]), [1, 1]),
        ([2, 3, 14, 14], [2, 2], None, [0, 0]),
        ([1, 2, 9, 11], [3, 3], Some([1, 1]), [0, 0]),
        ([1, 2, 9, 11], [3, 2], Some([2, 3]), [0, 0]),
        ([1, 2, 9, 11], [3, 3], Some([2, 2]), [1, 1]),
        ([1, 1, 7, 7], [2, 2], None, [0, 0]),
    ];
    for (xs, kernel, stride, padding) in cases {
        let mut x = filled(xs, 11).mapv(|v| (v * 1.5).round().max(0.0));
        for (i, v) in x.iter_mut().enumerate() {
            if i % 37 == 5 {
                *v = f64::NAN;
            } else if i % 41 == 7 {
                *v = f64::NEG_INFINITY;
            }
        }
        let (g, _) = Pool2dGeometry::new(&xs, kernel, stride, padding, false).unwrap();
        let (values, indices) = max_pool2d_argmax(x.view(), &g);
        let (want_values, want_indices) = naive_max_pool(&x, &g);
        assert_eq!(
            indices, want_indices,
            "{xs:?} {kernel:?} {stride:?} {padding:?}"
        );
        let alone = max_pool2d_values(x.view(), &g);
        for ((a, b), c) in values.iter().zip(&want_values).zip(&alone) {
            assert!(a == b || (a.is_nan() && b.is_nan()), "{a} vs {b}");
            assert!(a == c || (a.is_nan() && c.is_nan()), "{a} vs {c}");
        }
    }
}
