//! `max` and `min` over all or some axes, with `keepdim`.

use super::RuleContext;
use super::axes::{Axes, all_axes, resolve_axes, with_kept_axes};
use crate::graph::Op;
use crate::kernels::pool::SharedList;
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
    let y = with_kept_axes(ctx.value(out), &shape, axes, keepdim);
    let g = with_kept_axes(g, &shape, axes, keepdim);
    let mask = ctx
        .value(input)
        .const_fn2(&y, |x, m| if x == m { T::one() } else { T::zero() });
    let count = mask.clone().sum_axes(axes, true);
    emit(input, g.div(count).mul(mask));
}

/// Records the maximum (`is_max`) or minimum of `x` over `axes` (in range, sorted,
/// distinct); `name` is the public op's, for the panic on an empty axis.
#[track_caller]
pub(crate) fn record<'t, T: Float>(
    x: Var<'t, T>,
    name: &str,
    axes: &[usize],
    keepdim: bool,
    is_max: bool,
) -> Var<'t, T> {
    let shape = x.shape();
    for &a in axes {
        if shape[a] == 0 {
            panic!("{name}: cannot reduce the empty axis {a} of shape {shape:?}");
        }
    }
    let value = extremum(&x.value(), axes, keepdim, is_max);
    x.tape.record(
        value,
        Op::Extremum {
            input: x.index,
            axes: SharedList::list(axes),
            keepdim,
            is_max,
        },
    )
}

impl<'t, T: Float> Var<'t, T> {
    /// The largest element.
    #[track_caller]
    pub fn max(self) -> Var<'t, T> {
        T::record_extremum(self, "max", &all_axes(self.ndim()), false, true)
    }

    /// The largest element over `axes`, one axis or several as in
    /// [`sum_axes`](Var::sum_axes) (ties share the gradient equally, like `torch.amax`).
    #[track_caller]
    pub fn max_axes(self, axes: impl Axes, keepdim: bool) -> Var<'t, T> {
        let axes = resolve_axes("max_axes", axes.as_slice(), &self.shape());
        T::record_extremum(self, "max_axes", &axes, keepdim, true)
    }

    /// The smallest element.
    #[track_caller]
    pub fn min(self) -> Var<'t, T> {
        T::record_extremum(self, "min", &all_axes(self.ndim()), false, false)
    }

    /// The smallest element over `axes`, one axis or several as in
    /// [`sum_axes`](Var::sum_axes).
    #[track_caller]
    pub fn min_axes(self, axes: impl Axes, keepdim: bool) -> Var<'t, T> {
        let axes = resolve_axes("min_axes", axes.as_slice(), &self.shape());
        T::record_extremum(self, "min_axes", &axes, keepdim, false)
    }
}
