//! `where_`: elements picked from two variables by a constant mask, broadcasting all three.

use ndarray::{IxDyn, Zip};

use super::RuleContext;
use crate::graph::Op;
use crate::kernels::movement::broadcast_shape;
use crate::kernels::pool::filled;
use crate::operand::Operand;
use crate::{Float, Var};

/// d where(c, a, b) = c da + (1 - c) db, with the mask `c` a constant.
pub(crate) fn rule<T: Float, O: Operand<T>>(
    cond: usize,
    on_true: usize,
    on_false: usize,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    let c = ctx.value(cond);
    let is_true = |v: T| if v != T::zero() { T::one() } else { T::zero() };
    if ctx.needs(on_true) {
        let ga = g.clone().mul_const_fn(&c, is_true);
        emit(on_true, ga.sum_to(&ctx.shape(on_true)));
    }
    if ctx.needs(on_false) {
        let gb = g.mul_const_fn(&c, move |v| T::one() - is_true(v));
        emit(on_false, gb.sum_to(&ctx.shape(on_false)));
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// `on_true` where `cond` is non-zero, else `on_false`, broadcasting all three.
    /// `cond` is treated as a constant mask (comparisons produce one).
    #[track_caller]
    pub fn where_(cond: Var<'t, T>, on_true: Var<'t, T>, on_false: Var<'t, T>) -> Var<'t, T> {
        let tape = cond.tape;
        tape.check_same_tape(on_true.tape, "where_");
        tape.check_same_tape(on_false.tape, "where_");
        T::record_where(cond, on_true, on_false)
    }
}

/// Records `where_(cond, on_true, on_false)` (on one tape).
#[track_caller]
pub(crate) fn record<'t, T: Float>(
    cond: Var<'t, T>,
    on_true: Var<'t, T>,
    on_false: Var<'t, T>,
) -> Var<'t, T> {
    let tape = cond.tape;
    let nodes = tape.nodes();
    let (c, a, b) = (
        nodes[cond.index].value.array(),
        nodes[on_true.index].value.array(),
        nodes[on_false.index].value.array(),
    );
    let shape = broadcast_shape(
        "where_",
        &broadcast_shape("where_", c.shape(), a.shape()),
        b.shape(),
    );
    let dim = IxDyn(&shape);
    let mut value = filled(&shape, T::zero());
    Zip::from(&mut value)
        .and(c.broadcast(dim.clone()).expect("checked"))
        .and(a.broadcast(dim.clone()).expect("checked"))
        .and(b.broadcast(dim).expect("checked"))
        .for_each(|out, &c, &a, &b| *out = if c != T::zero() { a } else { b });
    drop(nodes);
    tape.record(
        value,
        Op::Select {
            cond: cond.index,
            on_true: on_true.index,
            on_false: on_false.index,
        },
    )
}
