//! Backward: the reverse sweep over the tape, [`Var::backward`] (first order, on plain
//! arrays) and [`Tape::grad`] (higher order, recorded as `Var`s), and the dispatch of each
//! recorded [`Op`] to its rule in [`crate::ops`].

pub(crate) mod first_order;
pub(crate) mod higher_order;
mod slots;

use ndarray::ArrayD;

use crate::graph::Op;
use crate::operand::Structural;
use crate::ops::{
    RuleContext, avg_pool2d, binary, broadcast_to, concat, conv2d, extremum, gather, index_select,
    matmul, max_pool2d, permute, prod, reshape, select, slice, solve, sum, unary,
};
use crate::{Float, Grads, Tape, Var};

/// The rule of every built-in primitive: given the gradient `g` of node `out`, emits the
/// gradient of each input that needs one. Leaves have no rule; a custom op's rule is its
/// own [`CustomOp::backward`](crate::CustomOp::backward), run by the sweeps.
#[rustfmt::skip]
pub(crate) fn rule<T: Float, O: Structural<T>>(
    op: &Op<T>,
    out: usize,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    match op {
        Op::Leaf | Op::Param(_) | Op::Custom { .. } => {}
        Op::Binary(op, a, b) => binary::rule(*op, *a, *b, out, g, ctx, emit),
        Op::Unary(op, a) => unary::rule(op, *a, out, g, ctx, emit),
        Op::MatMul(a, b) => matmul::rule(*a, *b, g, ctx, emit),
        Op::Solve(a, b) => solve::rule(*a, *b, out, g, ctx, emit),
        Op::Reshape(a) => reshape::rule(*a, g, ctx, emit),
        Op::Permute(a, axes) => permute::rule(*a, axes, g, emit),
        Op::BroadcastTo(a) => broadcast_to::rule(*a, g, ctx, emit),
        Op::Sum { input, axes, keepdim } => sum::rule(*input, axes, *keepdim, g, ctx, emit),
        Op::Extremum { input, axes, keepdim, .. } => extremum::rule(*input, axes, *keepdim, out, g, ctx, emit),
        Op::Prod { input, axis, keepdim } => prod::rule(*input, *axis, *keepdim, g, ctx, emit),
        Op::Slice { input, axis, start, .. } => slice::rule(*input, *axis as usize, *start, g, ctx, emit),
        Op::Pad { input, axis, start, .. } => slice::pad_rule(*input, *axis as usize, *start, g, ctx, emit),
        Op::Concat { inputs, axis } => concat::rule(inputs, *axis, g, ctx, emit),
        Op::IndexSelect { input, axis, indices } => index_select::rule(*input, *axis as usize, indices, g, ctx, emit),
        Op::IndexAdd { input, axis, indices } => index_select::index_add_rule(*input, *axis as usize, indices, g, emit),
        Op::Gather { input, axis, index } => gather::rule(*input, *axis, index, g, ctx, emit),
        Op::ScatterAdd { input, axis, index } => gather::scatter_add_rule(*input, *axis, index, g, emit),
        Op::Select { cond, on_true, on_false } => select::rule(*cond, *on_true, *on_false, g, ctx, emit),
        Op::Conv2d { inputs, geometry } => conv2d::rule(inputs[0], inputs[1], inputs.get(2).copied(), geometry, g, ctx, emit),
        Op::Conv2dInputGrad { grad, weight, geometry } => conv2d::input_grad_rule(*grad, *weight, geometry, g, ctx, emit),
        Op::Conv2dWeightGrad { input, grad, geometry } => conv2d::weight_grad_rule(*input, *grad, geometry, g, ctx, emit),
        Op::AvgPool2d { input, geometry, count_include_pad } => avg_pool2d::rule(*input, geometry, *count_include_pad, g, emit),
        Op::AvgPool2dAdjoint { grad, geometry, count_include_pad } => avg_pool2d::adjoint_rule(*grad, geometry, *count_include_pad, g, emit),
        Op::MaxPool2d { input, argmax } => max_pool2d::rule(*input, argmax, g, ctx, emit),
    }
}

impl<'t, T: Float> Tape<'t, T> {
    /// Gradients of `output` with respect to `inputs`, recorded on this tape as new
    /// variables, so they can be differentiated again (Hessian-vector products, gradient
    /// penalties, Newton's method). `output` must be a scalar (0-d or one element).
    ///
    /// An input that `output` does not depend on gets a zero gradient, where
    /// [`Grads`](crate::Grads) answers `None` (see the crate docs).
    #[track_caller]
    pub fn grad(&'t self, output: Var<'t, T>, inputs: &[Var<'t, T>]) -> Vec<Var<'t, T>> {
        self.seed_for(output, None); // checks that `output` has one element
        self.grad_with_seed(output, ArrayD::ones(output.shape()), inputs)
    }

    /// Like [`Tape::grad`], with an explicit seed (vector-Jacobian product) of `output`'s shape.
    #[track_caller]
    pub fn grad_with_seed(
        &'t self,
        output: Var<'t, T>,
        seed: ArrayD<T>,
        inputs: &[Var<'t, T>],
    ) -> Vec<Var<'t, T>> {
        let seed = self.constant(self.seed_for(output, Some(seed)).expect("a given seed"));
        self.grad_with_seed_var(output, seed, inputs)
    }

    /// Like [`Tape::grad_with_seed`], with the seed a variable of `output`'s shape (checked
    /// by the caller): the gradients are linear in it and differentiable with respect to it,
    /// which the double-reverse JVP uses.
    #[track_caller]
    pub(crate) fn grad_with_seed_var(
        &'t self,
        output: Var<'t, T>,
        seed: Var<'t, T>,
        inputs: &[Var<'t, T>],
    ) -> Vec<Var<'t, T>> {
        for input in inputs {
            self.check_same_tape(input.tape, "Tape::grad");
        }
        let lowest = inputs.iter().map(|x| x.index).min().unwrap_or(output.index);
        let grads = T::grad_sweep(self, output.index, seed, lowest);
        inputs
            .iter()
            .map(|x| match grads.get(x.index).copied().flatten() {
                Some(g) => g,
                None => self.constant(ArrayD::zeros(x.shape())),
            })
            .collect()
    }

    /// The seed of a backward sweep from `output`: the given array, checked against the
    /// output's shape, or `None` for the gradient 1 of a one-element output (kept as a
    /// number: a scalar loss's sweep starts without allocating).
    #[track_caller]
    fn seed_for(&self, output: Var<'t, T>, seed: Option<ArrayD<T>>) -> Option<ArrayD<T>> {
        let shape = output.shape();
        match seed {
            Some(seed) => {
                assert_eq!(
                    seed.shape(),
                    &shape[..],
                    "backward: the seed gradient has shape {:?} but the output has shape {:?}",
                    seed.shape(),
                    shape
                );
                Some(seed)
            }
            None => {
                assert!(
                    shape.iter().product::<usize>() == 1,
                    "backward: the output has shape {shape:?}; backward without a seed needs a \
                     scalar output (reduce it with .sum() or .mean(), or pass a seed of that shape \
                     with backward_with_seed)"
                );
                None
            }
        }
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// The gradients of this scalar with respect to every variable and parameter that
    /// needs one, in one reverse sweep.
    ///
    /// Panics if the variable has more than one element: use
    /// [`backward_with_seed`](Var::backward_with_seed) for a vector-Jacobian product.
    #[track_caller]
    pub fn backward(self) -> Grads<T> {
        let seed = self.tape.seed_for(self, None);
        T::backward(self.tape, self.index, seed)
    }

    /// Backward with an explicit seed gradient of this variable's shape.
    #[track_caller]
    pub fn backward_with_seed(self, seed: ArrayD<T>) -> Grads<T> {
        let seed = self.tape.seed_for(self, Some(seed));
        T::backward(self.tape, self.index, seed)
    }
}
