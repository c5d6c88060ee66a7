//! Anomaly mode: the op that produced a NaN or infinity, forward or backward, is named with
//! the user's file and line; without it NaN flows through silently.

use std::panic::{AssertUnwindSafe, catch_unwind};

use ndarray::{ArrayD, IxDyn, array};
use tapegrad_autograd::{Tape, Var};

use super::{ignore, panic_message};

#[test]
#[should_panic(expected = "`ln`")]
fn anomaly_mode_names_ln_when_it_produces_nan() {
    let tape = Tape::<f64>::new();
    tape.set_anomaly_detection(true);
    let x = tape.var(array![1.0, -1.0].into_dyn());
    let _ = x.ln();
}

#[test]
fn anomaly_mode_reports_the_users_file_and_line_for_a_nan_forward_value() {
    let tape = Tape::<f64>::new();
    tape.set_anomaly_detection(true);
    let x = tape.var(array![-2.0].into_dyn());
    let line = line!() + 1; // the next line records `ln`
    let message = panic_message(|| ignore(x.ln()));
    assert!(message.contains("`ln`"), "{message}");
    let here = format!("{}:{line}:", file!());
    assert!(message.contains(&here), "`{here}` missing from: {message}");
    assert!(file!().ends_with("anomaly.rs"));
}

#[test]
fn anomaly_mode_names_the_op_whose_backward_produced_nan_or_infinity() {
    let tape = Tape::<f64>::new();
    tape.set_anomaly_detection(true);
    let x = tape.var(array![0.0, 4.0].into_dyn());
    let y = x.sqrt().sum(); // forward is finite; d√x = 1/(2√x) is infinite at 0
    let message = panic_message(|| {
        let _ = y.backward();
    });
    assert!(message.contains("backward of `sqrt`"), "{message}");
    assert!(message.contains(file!()), "{message}");
}

#[test]
fn without_anomaly_mode_nan_flows_through_silently() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![-1.0].into_dyn());
    assert!(x.ln().item().is_nan());
}

/// Every op records the line of its caller (not a line inside the library), so anomaly
/// messages point at the user's code.
#[test]
fn every_op_records_the_callers_line_for_anomaly_messages() {
    macro_rules! located {
        ($x:ident => $e:expr) => {
            (
                Box::new(|$x: Var<'_, f64>| {
                    let _ = $e;
                }) as Box<dyn Fn(Var<'_, f64>)>,
                line!(),
                stringify!($e),
            )
        };
    }
    let cases = vec![
        located!(x => x + x),
        located!(x => x * 2.0),
        located!(x => -x),
        located!(x => x.exp()),
        located!(x => x.gelu()),
        located!(x => x.matmul(x.t())),
        located!(x => x.t()),
        located!(x => x.transpose(0, 1)),
        located!(x => x.permute(&[1, 0])),
        located!(x => x.reshape(&[4])),
        located!(x => x.broadcast_to(&[3, 2, 2])),
        located!(x => x.unsqueeze(0)),
        located!(x => x.flatten_from(0)),
        located!(x => x.sum()),
        located!(x => x.sum_axes([0], true)),
        located!(x => x.mean()),
        located!(x => x.var()),
        located!(x => x.max()),
        located!(x => x.min_axes([1], false)),
        located!(x => x.softmax(1)),
        located!(x => x.log_softmax(0)),
        located!(x => x.logsumexp(1, false)),
        located!(x => Var::concat(&[x, x], 0)),
        located!(x => Var::stack(&[x, x], 0)),
        located!(x => x.slice(0, 0, 1)),
        located!(x => x.index_select(0, &[1, 0])),
        located!(x => x.gather(1, &ArrayD::zeros(IxDyn(&[2, 1])))),
        located!(x => Var::where_(x.gt_scalar(0.0), x, x)),
        located!(x => x.maximum(x)),
        located!(x => x.clamp(0.0, 1.0)),
        located!(x => x.relu()),
        located!(x => x.abs()),
        located!(x => x.leaky_relu(0.01)),
        located!(x => x.elu(1.0)),
        located!(x => x.softplus()),
        located!(x => x.sigmoid()),
        located!(x => x.minimum(x * 2.0)),
        located!(x => x.maximum(x) * 1.0),
        located!(x => x.powi(2)),
        located!(x => x.square()),
    ];
    let mut wrong = Vec::new();
    for (op, line, text) in cases {
        let tape = Tape::<f64>::new();
        let x = tape.var(array![[f64::NAN, 1.0], [2.0, 3.0]].into_dyn());
        tape.set_anomaly_detection(true);
        let here = format!("{}:{line}:", file!());
        match catch_unwind(AssertUnwindSafe(|| op(x))) {
            Ok(()) => wrong.push(format!("{text}: the NaN went undetected")),
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_default();
                if !message.contains(&here) {
                    wrong.push(format!("{text}: {message}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "ops that do not report the caller's line:\n{}",
        wrong.join("\n")
    );
}
