//! `slice` (elements `start..end` along an axis) and its adjoint `pad` (zeros around).

use super::RuleContext;
use super::axes::resolve_axis;
use crate::graph::{Op, stored_axis};
use crate::operand::Structural;
use crate::{Float, Var};

/// d slice(x) = pad(dx): the gradient goes back to its place, zeros elsewhere.
pub(crate) fn rule<T: Float, O: Structural<T>>(
    input: usize,
    axis: usize,
    start: usize,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    let len = ctx.shape(input)[axis];
    emit(input, g.pad(axis, start, len));
}

/// d pad(x) = slice(dx): the input's part of the gradient.
pub(crate) fn pad_rule<T: Float, O: Structural<T>>(
    input: usize,
    axis: usize,
    start: usize,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    let width = ctx.shape(input)[axis];
    emit(input, g.slice(axis, start, start + width));
}

/// Records elements `start..end` of `x` along `axis` (in range, unchecked).
#[track_caller]
pub(crate) fn record<'t, T: Float>(
    x: Var<'t, T>,
    axis: usize,
    start: usize,
    end: usize,
) -> Var<'t, T> {
    let value = x.with_arr(|a| a.slice(axis, start, end).into_owned());
    x.tape.record(
        value,
        Op::Slice {
            input: x.index,
            axis: stored_axis(axis),
            start,
            end,
        },
    )
}

/// Records `x` placed at `start` along `axis` in zeros of length `len`.
#[track_caller]
pub(crate) fn record_pad<'t, T: Float>(
    x: Var<'t, T>,
    axis: usize,
    start: usize,
    len: usize,
) -> Var<'t, T> {
    let value = x.with_arr(|a| a.pad(axis, start, len).into_owned());
    x.tape.record(
        value,
        Op::Pad {
            input: x.index,
            axis: stored_axis(axis),
            start,
            len,
        },
    )
}

impl<'t, T: Float> Var<'t, T> {
    /// Elements `start..end` along `axis`.
    #[track_caller]
    pub fn slice(self, axis: isize, start: usize, end: usize) -> Var<'t, T> {
        let shape = self.shape();
        let axis = resolve_axis("slice", axis, &shape);
        assert!(
            start <= end && end <= shape[axis],
            "slice: range {start}..{end} is out of bounds for axis {axis} of shape {shape:?}"
        );
        T::record_slice(self, axis, start, end)
    }
}
