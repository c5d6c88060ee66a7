//! `gather` (single elements picked by an index array along an axis, `torch.gather`) and
//! its adjoint `scatter_add` (elements added back at their indices).

use ndarray::ArrayD;

use super::RuleContext;
use super::axes::resolve_axis;
use crate::graph::Op;
use crate::kernels::pool::{self, Pooled, Shared};
use crate::operand::Structural;
use crate::{Float, Var};

/// d gather(x, i) = scatter_add(dx, i): each picked element's gradient is added back.
pub(crate) fn rule<T: Float, O: Structural<T>>(
    input: usize,
    axis: usize,
    index: &Shared<Pooled<usize>>,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    let shape = ctx.shape(input);
    emit(input, g.scatter_add(axis, index, &shape));
}

/// d scatter_add(x, i) = gather(dx, i).
pub(crate) fn scatter_add_rule<T: Float, O: Structural<T>>(
    input: usize,
    axis: usize,
    index: &Shared<Pooled<usize>>,
    g: O,
    emit: &mut impl FnMut(usize, O),
) {
    emit(input, g.gather(axis, index));
}

/// Records the elements of `x` at `index` (in range, unchecked) along `axis`.
#[track_caller]
pub(crate) fn record<'t, T: Float>(
    x: Var<'t, T>,
    axis: usize,
    index: Shared<Pooled<usize>>,
) -> Var<'t, T> {
    let value = x.with_arr(|a| a.gather(axis, &index).into_owned());
    x.tape.record(
        value,
        Op::Gather {
            input: x.index,
            axis,
            index,
        },
    )
}

/// Records zeros of `shape` with each element of `x` added at its index along `axis`.
#[track_caller]
pub(crate) fn record_scatter_add<'t, T: Float>(
    x: Var<'t, T>,
    axis: usize,
    index: Shared<Pooled<usize>>,
    shape: &[usize],
) -> Var<'t, T> {
    let value = x.with_arr(|a| a.scatter_add(axis, &index, shape).into_owned());
    x.tape.record(
        value,
        Op::ScatterAdd {
            input: x.index,
            axis,
            index,
        },
    )
}

impl<'t, T: Float> Var<'t, T> {
    /// `torch.gather`: `out[i][j] = self[i][index[i][j]]` for `axis = 1` (and likewise for
    /// any axis). `index` has as many axes as `self`, and is no longer than `self` on the others.
    #[track_caller]
    pub fn gather(self, axis: isize, index: &ArrayD<usize>) -> Var<'t, T> {
        let shape = self.shape();
        let axis = resolve_axis("gather", axis, &shape);
        let fits = index.ndim() == shape.len()
            && index
                .shape()
                .iter()
                .zip(&shape)
                .enumerate()
                .all(|(d, (i, s))| d == axis || i <= s);
        assert!(
            fits,
            "gather: index of shape {:?} does not fit input of shape {shape:?} along axis {axis}",
            index.shape()
        );
        if let Some(&bad) = index.iter().find(|&&i| i >= shape[axis]) {
            panic!("gather: index {bad} is out of bounds for axis {axis} of shape {shape:?}");
        }
        T::record_gather(self, axis, Shared::new(Pooled::new(pool::copy(index))))
    }
}
