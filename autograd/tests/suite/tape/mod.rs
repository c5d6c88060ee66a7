//! Behaviour of the tape as a user sees it, one module per subject. This module holds what
//! they share: the panic helpers that `golden_ops` and `conv` use too (the memory
//! assertions read the binary's counting allocator, `counting_allocator`).

mod accumulation;
mod anomaly;
mod deep_graphs;
mod higher_order;
mod inspection;
mod one_element;
mod op_semantics;
mod params;
mod shape_errors;
mod threads;
mod values_and_memory;

use std::any::Any;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use ndarray::{ArrayD, arr0};

use crate::counting_allocator::{LIVE_BYTES, thread_live_bytes};

// ---------------------------------------------------------------------------------------
// Helpers.

fn scalar(v: f64) -> ArrayD<f64> {
    arr0(v).into_dyn()
}

fn assert_close(got: &ArrayD<f64>, want: &ArrayD<f64>, tol: f64) {
    assert_eq!(got.shape(), want.shape(), "shapes differ");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "got {got}, want {want}"
        );
    }
}

/// Discards a value (an op called only for its panic).
pub(crate) fn ignore<T>(_: T) {}

/// The panic message of `f`, which must panic.
pub(crate) fn panic_message(f: impl FnOnce()) -> String {
    payload_message(&*catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic"))
}

/// The message of a caught panic's payload (empty if it is neither a `String` nor a `&str`).
pub(crate) fn payload_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

thread_local! {
    static LAST_PANIC_LOCATION: RefCell<Option<(String, u32)>> = const { RefCell::new(None) };
}

/// The source location the panic hook reports for the panic of `f`, and its message. The
/// hook records it per thread and then calls the previous hook as usual.
pub(crate) fn panic_location(f: impl FnOnce()) -> ((String, u32), String) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(location) = info.location() {
                let _ = LAST_PANIC_LOCATION.try_with(|last| {
                    *last.borrow_mut() = Some((location.file().to_string(), location.line()))
                });
            }
            previous(info);
        }));
    });
    LAST_PANIC_LOCATION.with(|last| *last.borrow_mut() = None);
    let message = panic_message(f);
    let location = LAST_PANIC_LOCATION
        .with(|last| last.borrow_mut().take())
        .expect("the panic hook saw a location");
    (location, message)
}

/// One shape-error case: the call that must panic, the `line!()` of that call (in `file`),
/// the op, and the start its message must have.
pub(crate) type LocatedPanic<'a> = (Box<dyn Fn() + 'a>, u32, &'static str, String);

/// Runs every case and fails, listing them all, where a message does not start as it must
/// or a panic is not reported at its call's line of `file`.
#[track_caller]
pub(crate) fn assert_panics_at_their_lines(file: &str, cases: Vec<LocatedPanic<'_>>) {
    let mut wrong = Vec::new();
    for (case, line, op, start) in cases {
        let ((reported_file, reported_line), message) = panic_location(case);
        if !message.starts_with(&start) {
            wrong.push(format!(
                "{op}: message `{message}` does not start with `{start}`"
            ));
        }
        if reported_file != file || reported_line != line {
            wrong.push(format!(
                "{op}: reported at {reported_file}:{reported_line}, called at {file}:{line}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
