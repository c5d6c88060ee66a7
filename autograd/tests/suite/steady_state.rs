//! What a training step allocates once the loop is warm: the heap allocations (count and
//! bytes) of each step of the article's line fit written on the tape, counted by the
//! binary's counting allocator on a one-thread pool (`counting_allocator`).
//!
//! Every buffer the step computes comes from the library's buffer pool and goes back to it
//! with the tape and the gradients. What is left is the tape's node arena: its chunks hold
//! nodes that borrow the tape's lifetime, so no drop hook can hand them back (one chunk here,
//! and the list of chunks).

use ndarray::{ArrayD, arr1, arr2};
use tapegrad_autograd::{Param, Tape};

use crate::counting_allocator::{Allocated, Origins, attributed, on_one_thread, per_step};

/// `y = 5x + 1` at six points, fitted by `x·w + b` with the mean squared error and SGD
/// (lr 0.01): the article's loop on the bare tape, the batch borrowed (`constant_ref`) and
/// the parameters updated in place from the gradients.
struct LineFit {
    xs: ArrayD<f32>,
    ys: ArrayD<f32>,
    w: Param<f32>,
    b: Param<f32>,
}

impl LineFit {
    fn new() -> Self {
        let xs = arr2(&[[-1.0_f32], [0.0], [1.0], [2.0], [3.0], [4.0]]).into_dyn();
        let ys = xs.mapv(|x| 5.0 * x + 1.0);
        LineFit {
            xs,
            ys,
            w: Param::new("w", arr2(&[[0.5_f32]]).into_dyn()),
            b: Param::new("b", arr1(&[0.0_f32]).into_dyn()),
        }
    }

    fn step(&mut self) {
        let grads = {
            let tape = Tape::new();
            let pred =
                tape.constant_ref(&self.xs).matmul(tape.param(&self.w)) + tape.param(&self.b);
            let err = pred - tape.constant_ref(&self.ys);
            (err * err).mean().backward()
        };
        let (w_id, b_id) = (self.w.id(), self.b.id());
        self.w
            .value_mut()
            .scaled_add(-0.01, grads.by_id(w_id).expect("w's gradient"));
        self.b
            .value_mut()
            .scaled_add(-0.01, grads.by_id(b_id).expect("b's gradient"));
    }
}

/// Every step after the first allocates the same: the arena's chunk and its list, nothing
/// for the values, gradients and bookkeeping.
#[test]
fn a_warm_line_fit_step_allocates_only_the_tapes_arena() {
    let (counts, origins) = on_one_thread(|| {
        let mut fit = LineFit::new();
        let counts = per_step(8, || fit.step());
        (counts, attributed(|| fit.step()))
    });
    eprintln!(
        "line fit: first step {:?}, then {:?}",
        counts[0],
        &counts[1..]
    );
    assert!(
        counts[1..].iter().all(|c| *c == counts[1]),
        "steps after the first allocate differently: {counts:?}"
    );
    let arena = Allocated {
        count: 2,
        bytes: 1_120,
    };
    assert_eq!(counts[1], arena, "{counts:?}");
    assert_eq!(
        origins,
        Origins {
            gemm: Allocated::default(),
            rest: arena
        }
    );
}
