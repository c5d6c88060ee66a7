//! Higher-order backward: the same rules applied to `Var`s, so every step is recorded and
//! the resulting gradients can be differentiated again.

use super::rule;
use crate::graph::Op;
use crate::kernels::Dims;
use crate::ops::{RuleContext, custom};
use crate::{Float, Tape, Var};

struct VarContext<'t, T: Float> {
    tape: &'t Tape<'t, T>,
}

impl<'t, T: Float> RuleContext<Var<'t, T>> for VarContext<'t, T> {
    fn value(&self, index: usize) -> Var<'t, T> {
        Var {
            tape: self.tape,
            index,
        }
    }
    fn shape(&self, index: usize) -> Dims {
        self.tape.nodes()[index].value.shape()
    }
    fn needs(&self, index: usize) -> bool {
        self.tape.nodes()[index].requires_grad
    }
}

/// Differentiable backward: the same rules, applied to `Var`s, so every step is recorded
/// and the resulting gradients can be differentiated again.
pub(crate) fn sweep<'t, T: Float>(
    tape: &'t Tape<'t, T>,
    output: usize,
    seed: Var<'t, T>,
    lowest: usize,
) -> Vec<Option<Var<'t, T>>> {
    let mut slots: Vec<Option<Var<'t, T>>> = vec![None; output + 1];
    if !tape.nodes()[output].requires_grad {
        return slots;
    }
    slots[output] = Some(seed);
    let ctx = VarContext { tape };
    for i in (lowest..=output).rev() {
        let Some(g) = slots[i] else { continue };
        let op = Op::clone(&tape.nodes()[i].op);
        let mut emit = |input: usize, grad: Var<'t, T>| {
            if input >= lowest && ctx.needs(input) {
                slots[input] = Some(match slots[input] {
                    None => grad,
                    Some(total) => total + grad,
                });
            }
        };
        match &op {
            Op::Custom { op, inputs } => {
                let input_vars: Vec<Var<'t, T>> = inputs.iter().map(|&j| ctx.value(j)).collect();
                let results = op.backward(&input_vars, ctx.value(i), g);
                custom::check_backward_arity(&**op, inputs.len(), results.len());
                for (&input, grad) in inputs.iter().zip(results) {
                    if let Some(grad) = grad {
                        emit(input, grad);
                    }
                }
            }
            op => rule(op, i, g, &ctx, &mut emit),
        }
    }
    slots
}
