//! `Var::linear` and `Var::linear_relu`: the fused path (no gradient recording) gives the
//! values of `matmul`, `+` and `relu` bit for bit, and the recorded path their gradients.

use ndarray::{Array1, Array2, ArrayD};
use tapegrad_autograd::{Param, Tape};

fn filled(shape: &[usize], seed: f64) -> ArrayD<f64> {
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(
        shape.to_vec(),
        (0..n).map(|i| (i as f64 * 0.37 + seed).sin()).collect(),
    )
    .expect("n elements")
}

fn max_diff(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// Textbook loop, a kernel product, and one cut in halves (threaded).
const SIZES: [(usize, usize, usize); 4] = [(3, 5, 4), (20, 30, 10), (128, 784, 256), (1, 7, 1)];

#[test]
fn without_recording_one_fused_value_equals_matmul_add_relu() {
    for &(m, k, n) in &SIZES {
        let (x, w, b) = (
            filled(&[m, k], 0.1),
            filled(&[k, n], 0.2),
            filled(&[n], 0.3),
        );
        let tape = Tape::<f64>::new();
        let (xv, wv, bv) = (tape.constant(x), tape.var(w), tape.var(b));
        let want = (xv.matmul(wv) + bv).to_array();
        let want_relu = (xv.matmul(wv) + bv).relu().to_array();
        let want_no_bias = xv.matmul(wv).relu().to_array();
        let before = tape.len();
        let (got, got_relu, got_no_bias) = tape.no_grad(|| {
            (
                xv.linear(wv, Some(bv)),
                xv.linear_relu(wv, Some(bv)),
                xv.linear_relu(wv, None),
            )
        });
        assert_eq!(tape.len(), before + 3, "one node each ({m}, {k}, {n})");
        assert!(!got.requires_grad());
        assert_eq!(got.to_array(), want, "({m}, {k}, {n})");
        assert_eq!(got_relu.to_array(), want_relu, "relu ({m}, {k}, {n})");
        assert_eq!(
            got_no_bias.to_array(),
            want_no_bias,
            "no bias ({m}, {k}, {n})"
        );
        assert!(got_relu.to_array().iter().all(|&v| v >= 0.0));
    }
}

#[test]
fn f32_fused_values_are_the_recorded_ones() {
    // One product on the calling thread, then one cut in halves by columns and one by rows.
    for (m, k, n) in [(64, 300, 96), (128, 784, 256), (300, 200, 40)] {
        let x = filled(&[m, k], 0.4).mapv(|v| v as f32);
        let w = Param::new("w", filled(&[k, n], 0.5).mapv(|v| v as f32));
        let b = Param::new("b", filled(&[n], 0.6).mapv(|v| v as f32));
        let tape = Tape::new();
        let xv = tape.constant_ref(&x);
        let recorded = xv.linear_relu(tape.param(&w), Some(tape.param(&b)));
        assert!(recorded.requires_grad());
        let fused = tape.no_grad(|| xv.linear_relu(tape.param(&w), Some(tape.param(&b))));
        assert!(!fused.requires_grad());
        assert_eq!(recorded.to_array(), fused.to_array(), "({m}, {k}, {n})");
    }
}

#[test]
fn recorded_gradients_are_those_of_matmul_add_relu() {
    let (x, w, b) = (
        filled(&[6, 5], 0.7),
        filled(&[5, 3], 0.8),
        filled(&[3], 0.9),
    );
    let grads_of = |fused: bool| {
        let tape = Tape::<f64>::new();
        let (xv, wv, bv) = (
            tape.var(x.clone()),
            tape.var(w.clone()),
            tape.var(b.clone()),
        );
        let y = if fused {
            xv.linear_relu(wv, Some(bv))
        } else {
            (xv.matmul(wv) + bv).relu()
        };
        let g = tape.grad(y.powi(2).sum(), &[xv, wv, bv]);
        g.iter().map(|v| v.to_array()).collect::<Vec<_>>()
    };
    for (a, b) in grads_of(true).iter().zip(&grads_of(false)) {
        assert_eq!(a, b);
    }
}

#[test]
fn other_ranks_take_the_recorded_ops_without_recording_too() {
    // A (batch, steps, in) input: `matmul` broadcasts, as for a Dense layer over sequences.
    let x = filled(&[2, 3, 4], 0.1);
    let w = Array2::from_shape_fn((4, 5), |(i, j)| (i * 5 + j) as f64 * 0.1).into_dyn();
    let b = Array1::from_shape_fn(5, |j| j as f64 - 2.0).into_dyn();
    let tape = Tape::<f64>::new();
    let (xv, wv, bv) = (tape.constant(x), tape.constant(w), tape.constant(b));
    let want = (xv.matmul(wv) + bv).relu().to_array();
    let got = tape.no_grad(|| xv.linear_relu(wv, Some(bv))).to_array();
    assert_eq!(got.shape(), &[2, 3, 5]);
    assert!(max_diff(&got, &want) < 1e-12);
}

#[test]
#[should_panic(expected = "matmul: shapes [2, 3] and [4, 5] are incompatible")]
fn mismatched_shapes_panic_naming_both() {
    let tape = Tape::<f64>::new();
    let (x, w) = (
        tape.constant(filled(&[2, 3], 0.0)),
        tape.constant(filled(&[4, 5], 0.0)),
    );
    tape.no_grad(|| x.linear(w, None));
}
