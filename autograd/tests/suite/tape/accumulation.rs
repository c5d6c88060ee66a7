//! Gradient accumulation and what gets a gradient: repeated uses add up; dead branches,
//! constants, `detach` and `no_grad` get none.

use std::panic::{AssertUnwindSafe, catch_unwind};

use ndarray::array;
use tapegrad_autograd::{Tape, Var};

use super::{assert_close, scalar};

#[test]
fn a_variable_used_many_times_gets_the_sum_of_its_uses_gradients() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.0, -2.0, 3.0].into_dyn());
    // d/dx x·x·x = 3x²
    let grads = (x * x * x).sum().backward();
    assert_eq!(grads[x], array![3.0, 12.0, 27.0].into_dyn());
    // d/dx (x + x + x) = 3
    let grads = (x + x + x).sum().backward();
    assert_eq!(grads[x], array![3.0, 3.0, 3.0].into_dyn());
    // A diamond: a = sin x used twice, d/dx (a² + a) = (2a + 1) cos x
    let a = x.sin();
    let grads = (a * a + a).sum().backward();
    let want = x.to_array().mapv(|v| (2.0 * v.sin() + 1.0) * v.cos());
    assert_close(&grads[x], &want, 1e-14);
}

#[test]
fn a_branch_that_does_not_lead_to_the_output_gets_no_gradient_and_is_not_visited() {
    let tape = Tape::<f64>::new();
    tape.set_anomaly_detection(true);
    let x = tape.var(array![1.0, 2.0].into_dyn());
    let unused = tape.var(array![0.0, 4.0].into_dyn());
    // The backward of sqrt at 0 is infinite: anomaly mode would panic if backward ran it.
    let _dead_branch = unused.sqrt() * x;
    let zero = tape.constant(array![0.0, 0.0].into_dyn());
    let y = (x * 2.0 + zero.sqrt()).sum(); // sqrt of a constant: no gradient needed there
    let grads = y.backward();
    assert_eq!(grads[x], array![2.0, 2.0].into_dyn());
    assert!(grads.get(unused).is_none());
    assert!(grads.get(zero).is_none());
    // tape.grad gives such an input an explicit zero.
    let g = tape.grad(y, &[unused])[0];
    assert_eq!(g.to_array(), array![0.0, 0.0].into_dyn());
}

#[test]
fn constants_and_detach_stop_gradients() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.5, -2.0].into_dyn());
    let c = tape.constant(array![3.0, 4.0].into_dyn());
    assert!(!c.requires_grad());
    assert!(!x.detach().requires_grad());
    // d/dx (x · stop(x) · c) = stop(x) · c, not 2x·c
    let grads = (x * x.detach() * c).sum().backward();
    assert_eq!(grads[x], array![4.5, -8.0].into_dyn());
    assert!(grads.get(c).is_none());
}

#[test]
fn no_grad_results_require_no_gradient_and_recording_resumes_after() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.0, 2.0].into_dyn());
    let y = tape.no_grad(|| {
        assert!(!tape.is_grad_enabled());
        (x * 3.0).exp()
    });
    assert!(tape.is_grad_enabled());
    assert!(!y.requires_grad());
    let z = x * y;
    assert!(z.requires_grad());
    // y is a constant: dz/dx = y
    let grads = z.sum().backward();
    assert_eq!(grads[x], y.to_array());
}

#[test]
fn no_grad_restores_recording_when_its_closure_panics() {
    let tape = Tape::<f64>::new();
    let x = tape.var(scalar(2.0));
    let caught = catch_unwind(AssertUnwindSafe(|| {
        tape.no_grad(|| -> Var<'_, f64> { panic!("inside no_grad") })
    }));
    assert!(caught.is_err());
    assert!(tape.is_grad_enabled());
    assert!((x * x).requires_grad());
}

#[test]
fn backward_of_an_output_that_needs_no_gradient_gives_no_gradients() {
    let tape = Tape::<f64>::new();
    let c = tape.constant(array![1.0, 2.0].into_dyn());
    let grads = (c * c).sum().backward();
    assert!(grads.get(c).is_none());
    assert_eq!(grads.num_params(), 0);
}
