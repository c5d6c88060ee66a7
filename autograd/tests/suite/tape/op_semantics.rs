//! Values and gradients of particular ops pinned down: ties split the gradient as PyTorch
//! does, `log_sigmoid` stays finite and exact far out, and the reverse scalar operators
//! agree with the operators.

use ndarray::{ArrayD, IxDyn, array};
use tapegrad_autograd::Tape;

#[test]
fn maximum_and_minimum_split_the_gradient_equally_at_ties_like_pytorch() {
    let tape = Tape::<f64>::new();
    let a = tape.var(array![1.0, 2.0, 3.0].into_dyn());
    let b = tape.var(array![1.0, 5.0, 0.0].into_dyn());
    let grads = a.maximum(b).sum().backward();
    assert_eq!(a.maximum(b).to_array(), array![1.0, 5.0, 3.0].into_dyn());
    assert_eq!(grads[a], array![0.5, 0.0, 1.0].into_dyn());
    assert_eq!(grads[b], array![0.5, 1.0, 0.0].into_dyn());
    let grads = a.minimum(b).sum().backward();
    assert_eq!(grads[a], array![0.5, 1.0, 0.0].into_dyn());
    assert_eq!(grads[b], array![0.5, 0.0, 1.0].into_dyn());
}

#[test]
fn max_and_min_reductions_share_the_gradient_among_ties_like_torch_amax() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![[3.0, 1.0, 3.0], [0.0, 0.0, 0.0]].into_dyn());
    let grads = x.max_axes([1], false).sum().backward();
    assert_eq!(
        grads[x],
        array![[0.5, 0.0, 0.5], [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]].into_dyn()
    );
    let grads = x.max().backward();
    assert_eq!(
        grads[x],
        array![[0.5, 0.0, 0.5], [0.0, 0.0, 0.0]].into_dyn()
    );
    let grads = x.min().backward();
    assert_eq!(
        grads[x],
        array![[0.0, 0.0, 0.0], [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]].into_dyn()
    );
}

/// `ln σ(x)` in closed form, `min(x, 0) − ln(1 + e^−|x|)`, and its derivative `σ(−x)`.
fn log_sigmoid_exact(x: f64) -> (f64, f64) {
    (x.min(0.0) - (-x.abs()).exp().ln_1p(), 1.0 / (1.0 + x.exp()))
}

#[test]
fn log_sigmoid_is_finite_and_exact_far_out_where_ln_of_sigmoid_is_not() {
    let xs = [
        -1000.0, -745.0, -30.0, -20.0, -1.0, 0.0, 1.0, 20.0, 40.0, 1000.0,
    ];
    let tape = Tape::<f64>::new();
    let x = tape.var(ArrayD::from_shape_vec(IxDyn(&[xs.len()]), xs.to_vec()).unwrap());
    let y = x.log_sigmoid();
    let naive = x.sigmoid().ln();
    assert_eq!(
        naive.value()[0],
        f64::NEG_INFINITY,
        "ln σ(-1000) underflows"
    );
    let grads = y.sum().backward();
    for (i, &xi) in xs.iter().enumerate() {
        let (value, slope) = log_sigmoid_exact(xi);
        let got = y.value()[i];
        // Below -20 softplus's threshold returns x itself: off by e^x < 2.1e-9.
        assert!(
            (got - value).abs() <= 1e-15 * value.abs().max(1.0) + 2.1e-9 * f64::from(xi < -20.0),
            "log_sigmoid({xi}) = {got}, exact {value}"
        );
        assert!(
            (grads[x][i] - slope).abs() <= 1e-15,
            "d log_sigmoid({xi}) = {}, exact {slope}",
            grads[x][i]
        );
    }
}

#[test]
fn reverse_scalar_operators_agree_with_the_f32_and_f64_operators() {
    let tape = Tape::<f32>::new();
    let x = tape.var(array![0.5_f32, 2.0].into_dyn());
    assert_eq!(x.rsub(1.0).to_array(), (1.0 - x).to_array());
    assert_eq!(x.rdiv(1.0).to_array(), (1.0 / x).to_array());
    assert_eq!(x.rsub(1.0).to_array(), array![0.5_f32, -1.0].into_dyn());
    let grads = (x.rsub(3.0) * x.rdiv(2.0)).sum().backward();
    // d/dx (3 - x)(2 / x) = -2/x - (3 - x) 2/x² = -6/x².
    assert_eq!(grads[x], array![-24.0_f32, -1.5].into_dyn());
}
