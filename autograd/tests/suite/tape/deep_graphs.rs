//! Deep graphs: chains of hundreds of thousands of ops run forward, backward and through
//! `tape.grad` without recursion.

use tapegrad_autograd::Tape;

use super::scalar;

#[test]
fn a_one_million_op_chain_runs_forward_and_backward_without_stack_overflow() {
    const STEPS: i32 = 500_000; // two ops per step
    let (a, b) = (1.000_000_1_f64, 1e-7);
    let tape = Tape::<f64>::new();
    let x = tape.var(scalar(0.5));
    let mut y = x;
    for _ in 0..STEPS {
        y = y * a + b;
    }
    assert_eq!(tape.len(), 1 + 2 * STEPS as usize);
    // y = aᴺ x + b (aᴺ − 1)/(a − 1), so dy/dx = aᴺ.
    let grads = y.backward();
    let want = a.powi(STEPS);
    assert!(
        (grads[x][[]] - want).abs() < 1e-9 * want,
        "{} vs {want}",
        grads[x][[]]
    );
    let value = a.powi(STEPS) * 0.5 + b * (a.powi(STEPS) - 1.0) / (a - 1.0);
    assert!((y.item() - value).abs() < 1e-8);
}

#[test]
fn tape_grad_through_a_hundred_thousand_op_chain_needs_no_recursion() {
    const STEPS: usize = 50_000; // (x * w).tanh(): two ops per step
    let w = 0.9;
    let tape = Tape::<f64>::new();
    let x = tape.var(scalar(0.8));
    let mut y = x;
    for _ in 0..STEPS {
        y = (y * w).tanh();
    }
    let dy = tape.grad(y, &[x])[0].item();
    // dy/dx = Π w (1 − yᵢ²) along the forward recurrence.
    let (mut v, mut want) = (0.8_f64, 1.0);
    for _ in 0..STEPS {
        v = (v * w).tanh();
        want *= w * (1.0 - v * v);
    }
    assert!((y.item() - v).abs() < 1e-12);
    assert!(
        (dy - want).abs() <= 1e-9 * want.abs() + 1e-300,
        "{dy} vs {want}"
    );
}
