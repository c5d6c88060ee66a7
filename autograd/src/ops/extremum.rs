//! `max` and `min` over all or some axes, with `keepdim`.

use std::rc::Rc;

use super::RuleContext;
use super::axes::{keepdim_shape, resolve_axes};
use crate::graph::Op;
use crate::kernels::reduce::extremum;
use crate::operand::Structural;
use crate::{Float, Var};

/// d max / dx = 1 at the maximum (shared equally among ties, like `torch.amax`), else 0.
pub(crate) fn rule<T: Float, O: Structural<T>>(
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

/// Records the maximum (`is_max`) or minimum of `x` over `axes`.
#[track_caller]
pub(crate) fn record<'t, T: Float>(
    x: Var<'t, T>,
    axes: &[isize],
    keepdim: bool,
    is_max: bool,
) -> Var<'t, T> {
    let name = if is_max { "max" } else { "min" };
    let shape = x.shape();
    let axes = resolve_axes(name, axes, shape.len());
    for &a in &axes {
        assert!(
            shape[a] > 0,
            "{name}: cannot reduce the empty axis {a} of shape {shape:?}"
        );
    }
    let value = x.with_value(|a| extremum(a, &axes, keepdim, is_max));
    x.tape.record(
        value,
        Op::Extremum {
            input: x.index,
            axes: Rc::from(axes),
            keepdim,
            is_max,
        },
    )
}

impl<'t, T: Float> Var<'t, T> {
    /// The largest element.
    #[track_caller]
    pub fn max(self) -> Var<'t, T> {
        let all: Vec<isize> = (0..self.ndim() as isize).collect();
        record(self, &all, false, true)
    }

    /// The largest element over `axes` (ties share the gradient equally).
    #[track_caller]
    pub fn max_axes(self, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        record(self, axes, keepdim, true)
    }

    /// The smallest element.
    #[track_caller]
    pub fn min(self) -> Var<'t, T> {
        let all: Vec<isize> = (0..self.ndim() as isize).collect();
        record(self, &all, false, false)
    }

    /// The smallest element over `axes`.
    #[track_caller]
    pub fn min_axes(self, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        record(self, axes, keepdim, false)
    }
}
