//! Reductions over all or some axes, with `keepdim`: `sum`, `max`, `min` (primitives),
//! `mean` and `var` (composites).

use std::rc::Rc;

use ndarray::{ArrayD, Axis};
use smallvec::SmallVec;

use super::shape::normalize_axis;
use super::{Op, RuleContext};
use crate::operand::{Arr, Operand};
use crate::{Float, Var};

fn keepdim_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    let mut kept = shape.to_vec();
    for &a in axes {
        kept[a] = 1;
    }
    kept
}

/// d sum / dx = 1: the gradient is broadcast back over the reduced axes.
pub(crate) fn sum_backward<T: Float, O: Operand<T>>(
    input: usize,
    axes: &[usize],
    keepdim: bool,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    if !ctx.needs(input) {
        return;
    }
    let shape = ctx.shape(input);
    let g = if keepdim {
        g
    } else {
        g.reshape(&keepdim_shape(&shape, axes))
    };
    emit(input, g.broadcast_to(&shape));
}

/// d max / dx = 1 at the maximum (shared equally among ties, like `torch.amax`), else 0.
pub(crate) fn extremum_backward<T: Float, O: Operand<T>>(
    input: usize,
    axes: &[usize],
    keepdim: bool,
    out: usize,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    if !ctx.needs(input) {
        return;
    }
    let shape = ctx.shape(input);
    let kept = keepdim_shape(&shape, axes);
    let (y, g) = if keepdim {
        (ctx.value(out), g)
    } else {
        (ctx.value(out).reshape(&kept), g.reshape(&kept))
    };
    let mask = ctx
        .value(input)
        .const_fn2(&y, |x, m| if x == m { T::one() } else { T::zero() });
    let count = mask.clone().sum_axes(axes, true);
    emit(input, g.div(count).mul(mask));
}

fn extremum_forward<T: Float>(
    a: &ArrayD<T>,
    axes: &[usize],
    keepdim: bool,
    is_max: bool,
) -> ArrayD<T> {
    let pick = move |acc: T, &x: &T| {
        if is_max {
            if x > acc || x.is_nan() { x } else { acc }
        } else if x < acc || x.is_nan() {
            x
        } else {
            acc
        }
    };
    let init = if is_max {
        T::neg_infinity()
    } else {
        T::infinity()
    };
    let mut sorted = axes.to_vec();
    sorted.sort_unstable();
    let Some((&last, rest)) = sorted.split_last() else {
        return a.clone();
    };
    let mut out = a.map_axis(Axis(last), |lane| lane.iter().fold(init, pick));
    for &axis in rest.iter().rev() {
        out = out.map_axis(Axis(axis), |lane| lane.iter().fold(init, pick));
    }
    if keepdim {
        for &axis in &sorted {
            out.insert_axis_inplace(Axis(axis));
        }
    }
    out
}

#[track_caller]
fn resolve_axes(op: &str, axes: &[isize], ndim: usize) -> Vec<usize> {
    // A loop, not a closure: closures drop `#[track_caller]`'s location.
    let mut resolved = Vec::with_capacity(axes.len());
    for &a in axes {
        resolved.push(normalize_axis(op, a, ndim));
    }
    resolved.sort_unstable();
    let before = resolved.len();
    resolved.dedup();
    assert!(
        resolved.len() == before,
        "{op}: axis list {axes:?} repeats an axis"
    );
    resolved
}

impl<'t, T: Float> Var<'t, T> {
    /// The sum of all elements (a 0-d variable).
    #[track_caller]
    pub fn sum(self) -> Var<'t, T> {
        let all: SmallVec<[usize; 4]> = (0..self.ndim()).collect();
        self.sum_axes_usize(&all, false)
    }

    /// The sum over `axes` (negative axes count from the end); `keepdim` keeps them with
    /// length 1.
    #[track_caller]
    pub fn sum_axes(self, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        let axes = resolve_axes("sum", axes, self.ndim());
        self.sum_axes_usize(&axes, keepdim)
    }

    #[track_caller]
    pub(crate) fn sum_axes_usize(self, axes: &[usize], keepdim: bool) -> Var<'t, T> {
        let nodes = self.tape.nodes();
        let input = &nodes[self.index];
        let ndim = input.value.ndim();
        if axes.len() == ndim && axes.iter().all(|&axis| axis < ndim) {
            // The sum of every element (a loss): recorded as a number, no array is built.
            let total = match input.value.one() {
                Some(value) => value,
                None => crate::operand::sum_all(&input.value.array().view()),
            };
            let requires_grad = input.requires_grad;
            drop(nodes);
            let op = Op::Sum {
                input: self.index,
                axes: Rc::from(axes),
                keepdim,
            };
            return self
                .tape
                .push_one(total, if keepdim { ndim } else { 0 }, op, requires_grad);
        }
        let value = Arr::Ref(nodes[self.index].value.array())
            .sum_axes_impl(axes, keepdim)
            .into_owned();
        drop(nodes);
        self.tape.record(
            value,
            Op::Sum {
                input: self.index,
                axes: Rc::from(axes),
                keepdim,
            },
        )
    }

    /// The mean of all elements.
    #[track_caller]
    pub fn mean(self) -> Var<'t, T> {
        let n = self.with_value(|a| a.len());
        self.sum().mul_scalar(T::one() / T::from_f64(n as f64))
    }

    /// The mean over `axes`.
    #[track_caller]
    pub fn mean_axes(self, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        let shape = self.shape();
        let resolved = resolve_axes("mean", axes, shape.len());
        let n: usize = resolved.iter().map(|&a| shape[a]).product();
        self.sum_axes_usize(&resolved, keepdim)
            .mul_scalar(T::one() / T::from_f64(n as f64))
    }

    /// The population variance (`ddof = 0`) of all elements.
    #[track_caller]
    pub fn var(self) -> Var<'t, T> {
        let centered = self - self.mean();
        centered.square().mean()
    }

    /// The population variance over `axes`.
    #[track_caller]
    pub fn var_axes(self, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        resolve_axes("var", axes, self.ndim()); // name this op in the error, not `mean`
        let centered = self - self.mean_axes(axes, true);
        centered.square().mean_axes(axes, keepdim)
    }

    /// The largest element.
    #[track_caller]
    pub fn max(self) -> Var<'t, T> {
        let all: Vec<isize> = (0..self.ndim() as isize).collect();
        self.extremum(&all, false, true)
    }

    /// The largest element over `axes` (ties share the gradient equally).
    #[track_caller]
    pub fn max_axes(self, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        self.extremum(axes, keepdim, true)
    }

    /// The smallest element.
    #[track_caller]
    pub fn min(self) -> Var<'t, T> {
        let all: Vec<isize> = (0..self.ndim() as isize).collect();
        self.extremum(&all, false, false)
    }

    /// The smallest element over `axes`.
    #[track_caller]
    pub fn min_axes(self, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        self.extremum(axes, keepdim, false)
    }

    #[track_caller]
    fn extremum(self, axes: &[isize], keepdim: bool, is_max: bool) -> Var<'t, T> {
        let name = if is_max { "max" } else { "min" };
        let shape = self.shape();
        let axes = resolve_axes(name, axes, shape.len());
        for &a in &axes {
            assert!(
                shape[a] > 0,
                "{name}: cannot reduce the empty axis {a} of shape {shape:?}"
            );
        }
        let value = self.with_value(|a| extremum_forward(a, &axes, keepdim, is_max));
        self.tape.record(
            value,
            Op::Extremum {
                input: self.index,
                axes: Rc::from(axes),
                keepdim,
                is_max,
            },
        )
    }
}
