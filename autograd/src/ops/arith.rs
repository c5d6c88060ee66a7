//! `+ - * /` between variables (NumPy broadcasting) and with scalars on either side.

use std::ops::{Add, Div, Mul, Neg, Sub};

use super::{Op, RuleContext};
use crate::operand::{Arr, Operand};
use crate::{Float, Var};

/// The broadcasting binary primitives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinaryOp {
    pub(crate) fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
        }
    }

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

/// Backward of the binary primitives; every gradient is unbroadcast with `sum_to`.
pub(crate) fn backward<T: Float, O: Operand<T>>(
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

impl<'t, T: Float> Var<'t, T> {
    #[track_caller]
    pub(crate) fn binary(self, other: Var<'t, T>, op: BinaryOp) -> Var<'t, T> {
        self.tape.check_same_tape(other.tape, op.name());
        let nodes = self.tape.nodes();
        let (na, nb) = (&nodes[self.index], &nodes[other.index]);
        let requires_grad = na.requires_grad || nb.requires_grad;
        if let (Some(x), Some(y)) = (na.value.one(), nb.value.one()) {
            // One element each (the result has the larger rank): no array kernels.
            let ndim = na.value.ndim().max(nb.value.ndim());
            drop(nodes);
            let op_node = Op::Binary(op, self.index, other.index);
            return self
                .tape
                .push_one(op.apply(x, y), ndim, op_node, requires_grad);
        }
        let value = op
            .forward(Arr::Ref(na.value.array()), Arr::Ref(nb.value.array()))
            .into_owned();
        drop(nodes);
        self.tape.push_computed(
            value,
            Op::Binary(op, self.index, other.index),
            requires_grad,
        )
    }

    /// `self + s` for a scalar `s`.
    #[track_caller]
    pub fn add_scalar(self, s: T) -> Var<'t, T> {
        self.unary(super::UnaryOp::AddScalar(s))
    }

    /// `self * s` for a scalar `s`.
    #[track_caller]
    pub fn mul_scalar(self, s: T) -> Var<'t, T> {
        self.unary(super::UnaryOp::MulScalar(s))
    }
}

macro_rules! var_binary_ops {
    ($($trait:ident $method:ident $op:ident),*) => {$(
        impl<'t, T: Float> $trait<Var<'t, T>> for Var<'t, T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, other: Var<'t, T>) -> Var<'t, T> {
                self.binary(other, BinaryOp::$op)
            }
        }
    )*};
}
var_binary_ops!(Add add Add, Sub sub Sub, Mul mul Mul, Div div Div);

impl<'t, T: Float> Add<T> for Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn add(self, s: T) -> Var<'t, T> {
        self.add_scalar(s)
    }
}

impl<'t, T: Float> Sub<T> for Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn sub(self, s: T) -> Var<'t, T> {
        self.add_scalar(-s)
    }
}

impl<'t, T: Float> Mul<T> for Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn mul(self, s: T) -> Var<'t, T> {
        self.mul_scalar(s)
    }
}

impl<'t, T: Float> Div<T> for Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn div(self, s: T) -> Var<'t, T> {
        self.mul_scalar(T::one() / s)
    }
}

impl<'t, T: Float> Neg for Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn neg(self) -> Var<'t, T> {
        self.unary(super::UnaryOp::Neg)
    }
}

macro_rules! scalar_lhs_ops {
    ($($t:ty),*) => {$(
        impl<'t> Add<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[track_caller]
            fn add(self, v: Var<'t, $t>) -> Var<'t, $t> {
                v.add_scalar(self)
            }
        }
        impl<'t> Sub<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[track_caller]
            fn sub(self, v: Var<'t, $t>) -> Var<'t, $t> {
                (-v).add_scalar(self)
            }
        }
        impl<'t> Mul<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[track_caller]
            fn mul(self, v: Var<'t, $t>) -> Var<'t, $t> {
                v.mul_scalar(self)
            }
        }
        impl<'t> Div<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[track_caller]
            fn div(self, v: Var<'t, $t>) -> Var<'t, $t> {
                v.powi(-1).mul_scalar(self)
            }
        }
    )*};
}
scalar_lhs_ops!(f32, f64);
