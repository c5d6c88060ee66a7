//! User-defined operations.
//!
//! A custom op computes its forward value on plain arrays and states its backward rule on
//! [`Var`]s, so it takes part in first-order backward, higher-order gradients and
//! [`gradcheck`](crate::gradcheck) like a built-in op.

use std::rc::Rc;

use ndarray::{ArrayD, ArrayViewD};

use crate::graph::Op;
use crate::{Float, Tape, Var};

/// An operation defined outside this crate.
///
/// ```
/// use ndarray::{array, ArrayD, ArrayViewD};
/// use tapegrad_autograd::{gradcheck, CustomOp, GradcheckOptions, Tape, Var};
///
/// /// `x³`, with its derivative `3x²` written by hand.
/// struct Cube;
///
/// impl CustomOp<f64> for Cube {
///     fn name(&self) -> &str {
///         "cube"
///     }
///     fn forward(&self, inputs: &[ArrayViewD<'_, f64>]) -> ArrayD<f64> {
///         inputs[0].mapv(|x| x * x * x)
///     }
///     fn backward<'t>(
///         &self,
///         inputs: &[Var<'t, f64>],
///         _output: Var<'t, f64>,
///         grad: Var<'t, f64>,
///     ) -> Vec<Option<Var<'t, f64>>> {
///         let x = inputs[0];
///         vec![Some(grad * x.square() * 3.0)]
///     }
/// }
///
/// let tape = Tape::new();
/// let x = tape.var(array![1.0, 2.0].into_dyn());
/// let y = tape.custom(Cube, &[x]).sum();
/// assert_eq!(y.backward()[x], array![3.0, 12.0].into_dyn());
///
/// // ... and it passes the gradient checker.
/// gradcheck(|tape, v| tape.custom(Cube, v).sum(),
///           &[array![0.5, -1.5].into_dyn()], &GradcheckOptions::default()).unwrap();
/// ```
pub trait CustomOp<T: Float>: 'static {
    /// The op's name, for messages and DOT graphs.
    fn name(&self) -> &str;

    /// The forward value, from the inputs' values.
    fn forward(&self, inputs: &[ArrayViewD<'_, T>]) -> ArrayD<T>;

    /// The gradient of each input given the gradient `grad` of the output (same shape as
    /// the output), built from `Var` ops so it can be differentiated again. Return `None`
    /// for an input that has no gradient (an index, say). The result must have one entry
    /// per input, each of its input's shape.
    fn backward<'t>(
        &self,
        inputs: &[Var<'t, T>],
        output: Var<'t, T>,
        grad: Var<'t, T>,
    ) -> Vec<Option<Var<'t, T>>>;
}

impl<'t, T: Float> Tape<'t, T> {
    /// Applies a [`CustomOp`] to `inputs` and records it.
    #[track_caller]
    pub fn custom(&'t self, op: impl CustomOp<T>, inputs: &[Var<'t, T>]) -> Var<'t, T> {
        for v in inputs {
            self.check_same_tape(v.tape, op.name());
        }
        let nodes = self.nodes();
        let views: Vec<ArrayViewD<'_, T>> = inputs
            .iter()
            .map(|v| nodes[v.index].value.array().view())
            .collect();
        let value = op.forward(&views);
        drop(views);
        drop(nodes);
        self.record(
            value,
            Op::Custom {
                op: Rc::new(op),
                inputs: Rc::new(inputs.iter().map(|v| v.index).collect()),
            },
        )
    }
}

#[track_caller]
pub(crate) fn check_backward_arity<T: Float>(op: &dyn CustomOp<T>, inputs: usize, grads: usize) {
    assert!(
        inputs == grads,
        "custom op `{}`: backward returned {grads} gradients for {inputs} inputs",
        op.name()
    );
}

/// First-order backward of a custom op: its `Var` rule runs on the tape with recording off,
/// the values are read, and the scratch nodes are removed again.
pub(crate) fn backward_first_order<'t, T: Float>(
    tape: &'t Tape<'t, T>,
    op: &dyn CustomOp<T>,
    inputs: &[usize],
    output: usize,
    grad: ArrayD<T>,
) -> Vec<Option<ArrayD<T>>> {
    let scratch_start = tape.len();
    let results = tape.no_grad(|| {
        let input_vars: Vec<Var<'t, T>> = inputs.iter().map(|&index| Var { tape, index }).collect();
        let grad = tape.constant(grad);
        let grads = op.backward(&input_vars, Var { tape, index: output }, grad);
        check_backward_arity(op, inputs.len(), grads.len());
        grads
            .into_iter()
            .zip(&input_vars)
            .map(|(g, x)| {
                g.map(|g| {
                    let (gs, xs) = (g.shape(), x.shape());
                    assert!(
                        gs == xs,
                        "custom op `{}`: backward gave a gradient of shape {gs:?} for an input of shape {xs:?}",
                        op.name()
                    );
                    g.to_array()
                })
            })
            .collect()
    });
    tape.truncate(scratch_start);
    results
}
