//! `index_select` (whole slices picked by index along an axis) and its adjoint `index_add`
//! (slices added back at their indices).

use super::RuleContext;
use super::axes::resolve_axis;
use crate::graph::{Op, stored_axis};
use crate::kernels::pool::SharedList;
use crate::operand::Structural;
use crate::{Float, Var};

/// d index_select(x, i) = index_add(dx, i): each picked slice's gradient is added back.
pub(crate) fn rule<T: Float, O: Structural<T>>(
    input: usize,
    axis: usize,
    indices: &SharedList,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    let size = ctx.shape(input)[axis];
    emit(input, g.index_add(axis, indices, size));
}

/// d index_add(x, i) = index_select(dx, i).
pub(crate) fn index_add_rule<T: Float, O: Structural<T>>(
    input: usize,
    axis: usize,
    indices: &SharedList,
    g: O,
    emit: &mut impl FnMut(usize, O),
) {
    emit(input, g.index_select(axis, indices));
}

/// Records the slices of `x` at `indices` (in range, unchecked) along `axis`.
#[track_caller]
pub(crate) fn record<'t, T: Float>(x: Var<'t, T>, axis: usize, indices: SharedList) -> Var<'t, T> {
    let value = x.with_arr(|a| a.index_select(axis, &indices).into_owned());
    x.tape.record(
        value,
        Op::IndexSelect {
            input: x.index,
            axis: stored_axis(axis),
            indices,
        },
    )
}

/// Records zeros of length `size` along `axis` with slice `k` of `x` added at `indices[k]`.
#[track_caller]
pub(crate) fn record_index_add<'t, T: Float>(
    x: Var<'t, T>,
    axis: usize,
    indices: SharedList,
    size: usize,
) -> Var<'t, T> {
    let value = x.with_arr(|a| a.index_add(axis, &indices, size).into_owned());
    x.tape.record(
        value,
        Op::IndexAdd {
            input: x.index,
            axis: stored_axis(axis),
            indices,
        },
    )
}

impl<'t, T: Float> Var<'t, T> {
    /// The slices at `indices` along `axis`, in that order (repeats allowed): embedding
    /// lookups, batch selection.
    #[track_caller]
    pub fn index_select(self, axis: isize, indices: &[usize]) -> Var<'t, T> {
        let shape = self.shape();
        let axis = resolve_axis("index_select", axis, &shape);
        if let Some(&bad) = indices.iter().find(|&&i| i >= shape[axis]) {
            panic!("index_select: index {bad} is out of bounds for axis {axis} of shape {shape:?}");
        }
        T::record_index_select(self, axis, SharedList::list(indices))
    }
}
