//! `reshape`: the same elements in a new shape.

use super::RuleContext;
use crate::graph::Op;
use crate::operand::{Arr, Structural};
use crate::{Float, Var};

/// d reshape(x) = reshape(dx): the gradient takes the input's shape back.
pub(crate) fn rule<T: Float, O: Structural<T>>(
    input: usize,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    emit(input, g.reshape(&ctx.shape(input)));
}

impl<'t, T: Float> Var<'t, T> {
    /// The same elements in a new shape (row-major order, like `numpy.reshape`).
    #[track_caller]
    pub fn reshape(self, shape: &[usize]) -> Var<'t, T> {
        T::record_reshape(self, shape)
    }
}

/// Records `x` reshaped to `shape`.
#[track_caller]
pub(crate) fn record<'t, T: Float>(x: Var<'t, T>, shape: &[usize]) -> Var<'t, T> {
    let nodes = x.tape.nodes();
    let value = Arr::Ref(nodes[x.index].value.array())
        .reshape(shape)
        .into_owned();
    drop(nodes);
    x.tape.record(value, Op::Reshape(x.index))
}
