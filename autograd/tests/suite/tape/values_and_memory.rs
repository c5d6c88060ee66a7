//! Memory and values: live memory stays flat over a long training run with a fresh tape each
//! step, `value()` borrows and `to_array` copies, and released values free their arrays.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;

use ndarray::{Array2, ArrayD, IxDyn, array};
use tapegrad_autograd::{Param, Tape};

use super::{LIVE_BYTES, payload_message, thread_live_bytes};

#[test]
fn memory_stays_flat_over_ten_thousand_training_steps_with_a_fresh_tape_each() {
    let x_data =
        Array2::from_shape_fn((8, 4), |(i, j)| ((i * 4 + j) as f64 * 0.37).sin()).into_dyn();
    let y_data = Array2::from_shape_fn((8, 1), |(i, _)| (i as f64 * 0.5).cos()).into_dyn();
    let mut params = [
        Param::new(
            "w1",
            Array2::from_shape_fn((4, 8), |(i, j)| ((i * 8 + j) as f64).sin() * 0.5).into_dyn(),
        ),
        Param::new("b1", ArrayD::zeros(IxDyn(&[8]))),
        Param::new(
            "w2",
            Array2::from_shape_fn((8, 1), |(i, _)| (i as f64).cos() * 0.5).into_dyn(),
        ),
        Param::new("b2", ArrayD::zeros(IxDyn(&[1]))),
    ];
    let lr = 0.05;
    let mut tape_len = None;
    let mut first_loss = None;
    let mut last_loss = 0.0;
    let mut live_at_step_100 = 0;
    for step in 1..=10_000 {
        let (grads, loss, len) = {
            let tape = Tape::new();
            let x = tape.constant(x_data.clone());
            let y = tape.constant(y_data.clone());
            let (w1, b1, w2, b2) = (
                tape.param(&params[0]),
                tape.param(&params[1]),
                tape.param(&params[2]),
                tape.param(&params[3]),
            );
            let out = (x.matmul(w1) + b1).tanh().matmul(w2) + b2;
            let loss = (out - y).square().mean();
            (loss.backward(), loss.item(), tape.len())
        }; // the tape is dropped here: the parameters can be updated
        assert_eq!(
            *tape_len.get_or_insert(len),
            len,
            "step {step} recorded a different graph"
        );
        for p in params.iter_mut() {
            let g = grads[&*p].clone();
            p.value_mut().scaled_add(-lr, &g);
        }
        drop(grads);
        first_loss.get_or_insert(loss);
        last_loss = loss;
        if step == 100 {
            live_at_step_100 = thread_live_bytes();
        }
    }
    let live_at_step_10000 = thread_live_bytes();
    assert!(
        (live_at_step_10000 - live_at_step_100).abs() <= 256,
        "live heap bytes grew from {live_at_step_100} at step 100 to {live_at_step_10000} at step 10,000 \
         (process-wide now: {})",
        LIVE_BYTES.load(Ordering::Relaxed)
    );
    assert!(
        last_loss < first_loss.unwrap() * 0.5,
        "training made progress"
    );
}

#[test]
#[should_panic(expected = "while a `Var::value()` borrow of this tape is alive")]
fn recording_while_a_value_borrow_is_alive_panics_naming_the_fix() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.0, 2.0].into_dyn());
    let borrowed = x.value();
    let _ = x.exp();
    drop(borrowed);
}

#[test]
fn value_borrows_and_to_array_copies() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.0, 2.0].into_dyn());
    let copy = x.to_array();
    assert_eq!(x.value()[[1]], 2.0);
    let y = x * 3.0; // the borrow above ended with its statement
    assert_eq!(*y.value(), &copy * 3.0);
    assert_eq!(y.to_array(), array![3.0, 6.0].into_dyn());
}

#[test]
fn a_released_value_frees_its_array_and_cannot_be_read_again() {
    let tape = Tape::<f64>::new();
    let x = tape.no_grad(|| {
        tape.constant(ndarray::Array1::linspace(0.0, 1.0, 1000).into_dyn())
            .exp()
    });
    let y = tape.no_grad(|| x.sum());
    let before = tape.memory_bytes();
    tape.release_value(x);
    assert_eq!(tape.memory_bytes(), before - 1000 * size_of::<f64>());
    assert!(y.item() > 1000.0, "values computed from it stay");
    let read = catch_unwind(AssertUnwindSafe(|| x.to_array()));
    let message = payload_message(&*read.expect_err("reading a released value panics"));
    assert!(message.contains("released"), "{message}");
}

#[test]
#[should_panic(expected = "kept for the backward pass")]
fn a_value_that_requires_a_gradient_is_not_released() {
    let tape = Tape::<f64>::new();
    let x = tape.var(ndarray::arr1(&[1.0, 2.0]).into_dyn());
    tape.release_value(x);
}
