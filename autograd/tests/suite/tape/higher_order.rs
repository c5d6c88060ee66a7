//! Higher order: `tape.grad` records differentiable gradients (second and third
//! derivatives, Hessian-vector products), gradients with respect to intermediate values,
//! and seeds for non-scalar outputs.

use ndarray::{ArrayD, array};
use tapegrad_autograd::{Tape, Var};

use super::{assert_close, scalar};

#[test]
fn second_derivative_of_x_cubed_is_six_x_via_tape_grad_twice() {
    let tape = Tape::<f64>::new();
    let x = tape.var(scalar(1.5));
    let y = x * x * x;
    let dy = tape.grad(y, &[x])[0]; // 3x² = 6.75
    let d2y = tape.grad(dy, &[x])[0]; // 6x = 9
    let d3y = tape.grad(d2y, &[x])[0]; // 6
    assert!((dy.item() - 6.75).abs() < 1e-12);
    assert!((d2y.item() - 9.0).abs() < 1e-12);
    assert!((d3y.item() - 6.0).abs() < 1e-12);
    // The recorded gradients are ordinary variables: backward works on them too.
    let grads = d2y.backward();
    assert!((grads[x][[]] - 6.0).abs() < 1e-12);
}

/// A 2-layer tanh MLP's mean squared error as a function of its parameters.
fn mlp_loss<'t>(tape: &'t Tape<'t, f64>, params: &[Var<'t, f64>]) -> Var<'t, f64> {
    let x = tape.constant(
        array![
            [0.5, -1.0, 2.0],
            [1.5, 0.3, -0.7],
            [-0.2, 0.8, 0.1],
            [1.0, 1.0, -1.0],
            [0.0, -0.4, 0.9]
        ]
        .into_dyn(),
    );
    let y = tape.constant(array![[0.3], [-0.5], [0.9], [0.1], [-0.2]].into_dyn());
    let (w1, b1, w2, b2) = (params[0], params[1], params[2], params[3]);
    let hidden = (x.matmul(w1) + b1).tanh();
    let out = hidden.matmul(w2) + b2;
    (out - y).square().mean()
}

fn mlp_params() -> Vec<ArrayD<f64>> {
    vec![
        array![
            [0.2, -0.4, 0.6, 0.1],
            [0.5, 0.3, -0.2, -0.7],
            [-0.3, 0.8, 0.4, 0.2]
        ]
        .into_dyn(),
        array![0.1, -0.1, 0.05, 0.0].into_dyn(),
        array![[0.7], [-0.6], [0.3], [0.9]].into_dyn(),
        array![0.05].into_dyn(),
    ]
}

fn mlp_gradient(params: &[ArrayD<f64>]) -> Vec<ArrayD<f64>> {
    let tape = Tape::new();
    let vars: Vec<_> = params.iter().map(|p| tape.var(p.clone())).collect();
    let grads = mlp_loss(&tape, &vars).backward();
    vars.iter().map(|v| grads[*v].clone()).collect()
}

#[test]
fn hessian_vector_product_of_an_mlp_loss_matches_finite_differences_of_its_gradient() {
    let theta = mlp_params();
    let direction: Vec<ArrayD<f64>> = theta
        .iter()
        .enumerate()
        .map(|(k, p)| p.mapv(|v| (v * 7.0 + k as f64).sin()))
        .collect();

    // H v = ∇(∇L · v), recorded on the tape.
    let tape = Tape::new();
    let vars: Vec<_> = theta.iter().map(|p| tape.var(p.clone())).collect();
    let grads = tape.grad(mlp_loss(&tape, &vars), &vars);
    let dot = grads
        .iter()
        .zip(&direction)
        .map(|(g, v)| (*g * tape.constant(v.clone())).sum())
        .reduce(|a, b| a + b)
        .unwrap();
    let hvp: Vec<ArrayD<f64>> = tape.grad(dot, &vars).iter().map(|h| h.to_array()).collect();

    // H v ≈ (∇L(θ + εv) − ∇L(θ − εv)) / 2ε.
    let eps = 1e-5;
    let shifted = |sign: f64| -> Vec<ArrayD<f64>> {
        let moved: Vec<_> = theta
            .iter()
            .zip(&direction)
            .map(|(p, v)| p + &(v * (sign * eps)))
            .collect();
        mlp_gradient(&moved)
    };
    let (plus, minus) = (shifted(1.0), shifted(-1.0));
    for (k, h) in hvp.iter().enumerate() {
        let numeric = (&plus[k] - &minus[k]) / (2.0 * eps);
        for (a, n) in h.iter().zip(numeric.iter()) {
            assert!(
                (a - n).abs() < 1e-6,
                "parameter {k}: H v = {h}, finite differences {numeric}"
            );
        }
    }
}

#[test]
fn tape_grad_differentiates_with_respect_to_intermediate_values_too() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![0.3, -1.2].into_dyn());
    let h = x.tanh();
    let y = (h * h).sum();
    // dy/dh = 2h; dy/dx = 2h (1 − h²)
    let [dh, dx] = [0, 1].map(|k| tape.grad(y, &[h, x])[k].to_array());
    let hv = h.to_array();
    assert_close(&dh, &(&hv * 2.0), 1e-15);
    assert_close(&dx, &(&hv * 2.0 * hv.mapv(|t| 1.0 - t * t)), 1e-15);
    // backward keeps leaves' gradients only, as PyTorch does.
    let grads = y.backward();
    assert!(grads.get(h).is_none());
    assert_close(&grads[x], &dx, 1e-15);
}

#[test]
fn a_seed_gives_the_vector_jacobian_product_of_a_non_scalar_output() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.0, 2.0, 3.0].into_dyn());
    let y = x * x; // Jacobian diag(2x)
    let seed = array![1.0, -1.0, 0.5].into_dyn();
    let grads = y.backward_with_seed(seed.clone());
    assert_eq!(grads[x], array![2.0, -4.0, 3.0].into_dyn());
    let recorded = tape.grad_with_seed(y, seed, &[x])[0];
    assert_eq!(recorded.to_array(), array![2.0, -4.0, 3.0].into_dyn());
}

#[test]
#[should_panic(expected = "backward: the seed gradient has shape [2] but the output has shape [3]")]
fn a_seed_of_the_wrong_shape_panics_naming_both_shapes() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.0, 2.0, 3.0].into_dyn());
    let _ = (x * 2.0).backward_with_seed(array![1.0, 1.0].into_dyn());
}

#[test]
#[should_panic(expected = "the seed gradient has shape [1] but the output has shape [3]")]
fn a_recorded_gradient_with_a_seed_of_the_wrong_shape_panics_naming_both_shapes() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.0, 2.0, 3.0].into_dyn());
    let _ = tape.grad_with_seed(x * 2.0, array![1.0].into_dyn(), &[x]);
}
