//! `+ - * /` between variables, with NumPy broadcasting: the primitive [`BinaryOp`]s.

use std::ops::{Add, Div, Mul, Sub};

use super::RuleContext;
use crate::graph::{BinaryOp, Op};
use crate::operand::{Arr, Operand};
use crate::{Float, Var};

impl BinaryOp {
    /// The forward value of one pair of elements.
    #[inline]
    pub(crate) fn apply<T: Float>(self, x: T, y: T) -> T {
        match self {
            BinaryOp::Add => x + y,
            BinaryOp::Sub => x - y,
            BinaryOp::Mul => x * y,
            BinaryOp::Div => x / y,
        }
    }

    /// The forward values of two arrays, broadcasting.
    #[track_caller]
    pub(crate) fn forward<'a, T: Float>(self, a: Arr<'a, T>, b: Arr<'_, T>) -> Arr<'a, T> {
        match self {
            BinaryOp::Add => a.zip(b, "add", |x, y| x + y),
            BinaryOp::Sub => a.zip(b, "sub", |x, y| x - y),
            BinaryOp::Mul => a.zip(b, "mul", |x, y| x * y),
            BinaryOp::Div => a.zip(b, "div", |x, y| x / y),
        }
    }
}

/// The rule of the binary primitives; every gradient is unbroadcast with `sum_to`.
#[inline]
pub(crate) fn rule<T: Float, O: Operand<T>>(
    op: BinaryOp,
    a: usize,
    b: usize,
    out: usize,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    let (need_a, need_b) = (ctx.needs(a), ctx.needs(b));
    match op {
        // d(a ± b) = da ± db
        BinaryOp::Add | BinaryOp::Sub => {
            let sign = |gb: O| if op == BinaryOp::Sub { gb.neg() } else { gb };
            match (need_a, need_b) {
                (true, true) => {
                    let (ga, gb) = g.sum_to_both(&ctx.shape(a), &ctx.shape(b));
                    emit(a, ga);
                    emit(b, sign(gb));
                }
                (true, false) => emit(a, g.sum_to(&ctx.shape(a))),
                (false, true) => emit(b, sign(g.sum_to(&ctx.shape(b)))),
                (false, false) => {}
            }
        }
        // d(ab) = b da + a db
        BinaryOp::Mul => {
            if need_a {
                emit(a, g.clone().mul(ctx.value(b)).sum_to(&ctx.shape(a)));
            }
            if need_b {
                emit(b, g.mul(ctx.value(a)).sum_to(&ctx.shape(b)));
            }
        }
        // d(a/b) = da / b - (a/b) db / b
        BinaryOp::Div => {
            if need_a {
                emit(a, g.clone().div(ctx.value(b)).sum_to(&ctx.shape(a)));
            }
            if need_b {
                let gb = g.mul(ctx.value(out)).div(ctx.value(b)).neg();
                emit(b, gb.sum_to(&ctx.shape(b)));
            }
        }
    }
}

/// Records `op(a, b)`.
#[track_caller]
pub(crate) fn record<'t, T: Float>(a: Var<'t, T>, b: Var<'t, T>, op: BinaryOp) -> Var<'t, T> {
    a.tape.check_same_tape(b.tape, op.name());
    let (i, j) = (a.index, b.index);
    match a
        .tape
        .record_one_element(i, j, || Op::Binary(op, i, j), |x, y| op.apply(x, y))
    {
        Some(var) => var,
        None => T::record_binary(a, b, op),
    }
}

/// Records `op(a, b)` computed by the array kernels.
#[track_caller]
#[inline(never)]
pub(crate) fn record_arrays<'t, T: Float>(
    a: Var<'t, T>,
    b: Var<'t, T>,
    op: BinaryOp,
) -> Var<'t, T> {
    let nodes = a.tape.nodes();
    let (na, nb) = (&nodes[a.index], &nodes[b.index]);
    let requires_grad = na.requires_grad || nb.requires_grad;
    let value = op
        .forward(Arr::Ref(na.value.array()), Arr::Ref(nb.value.array()))
        .into_owned();
    drop(nodes);
    a.tape
        .push_computed(value, Op::Binary(op, a.index, b.index), requires_grad)
}

macro_rules! var_binary_ops {
    ($($trait:ident $method:ident $op:ident),*) => {$(
        impl<'t, T: Float> $trait<Var<'t, T>> for Var<'t, T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, other: Var<'t, T>) -> Var<'t, T> {
                record(self, other, BinaryOp::$op)
            }
        }
    )*};
}
var_binary_ops!(Add add Add, Sub sub Sub, Mul mul Mul, Div div Div);
