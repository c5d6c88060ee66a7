//! `broadcast_to`: the value repeated along broadcast axes.

use super::RuleContext;
use crate::graph::Op;
use crate::operand::{Arr, Operand, Structural};
use crate::{Float, Var};

/// d broadcast_to(x) = sum of dx over the broadcast axes.
pub(crate) fn rule<T: Float, O: Operand<T>>(
    input: usize,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    emit(input, g.sum_to(&ctx.shape(input)));
}

impl<'t, T: Float> Var<'t, T> {
    /// Repeats the value along broadcast axes to `shape` (NumPy rules).
    #[track_caller]
    pub fn broadcast_to(self, shape: &[usize]) -> Var<'t, T> {
        T::record_broadcast_to(self, shape)
    }
}

/// Records `x` broadcast to `shape`.
#[track_caller]
pub(crate) fn record<'t, T: Float>(x: Var<'t, T>, shape: &[usize]) -> Var<'t, T> {
    let nodes = x.tape.nodes();
    let value = Arr::Ref(nodes[x.index].value.array())
        .broadcast_to(shape)
        .into_owned();
    drop(nodes);
    x.tape.record(value, Op::BroadcastTo(x.index))
}
