//! `sum` over all or some axes, with `keepdim`.

use super::RuleContext;
use super::axes::{Axes, all_axes, resolve_axes, with_kept_axes};
use crate::graph::Op;
use crate::kernels::pool::SharedList;
use crate::kernels::reduce::sum_all;
use crate::operand::{Arr, Structural};
use crate::{Float, Var};

/// d sum(x) / dx = 1: the gradient is broadcast back over the reduced axes.
pub(crate) fn rule<T: Float, O: Structural<T>>(
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
    emit(
        input,
        with_kept_axes(g, &shape, axes, keepdim).broadcast_to(&shape),
    );
}

/// Records the sum of `x` over `axes` (in range, sorted, distinct).
#[track_caller]
pub(crate) fn record<'t, T: Float>(x: Var<'t, T>, axes: &[usize], keepdim: bool) -> Var<'t, T> {
    let nodes = x.tape.nodes();
    let input = &nodes[x.index];
    let ndim = input.value.ndim();
    if axes.len() == ndim && axes.iter().all(|&axis| axis < ndim) {
        // The sum of every element (a loss): recorded as a number, no array is built.
        let total = match input.value.one() {
            Some(value) => value,
            None => sum_all(&input.value.array().view()),
        };
        let requires_grad = input.requires_grad;
        drop(nodes);
        let op = Op::Sum {
            input: x.index,
            axes: SharedList::list(axes),
            keepdim,
        };
        return x
            .tape
            .push_one(total, if keepdim { ndim } else { 0 }, op, requires_grad);
    }
    let value = Arr::Ref(nodes[x.index].value.array())
        .sum_axes(axes, keepdim)
        .into_owned();
    drop(nodes);
    x.tape.record(
        value,
        Op::Sum {
            input: x.index,
            axes: SharedList::list(axes),
            keepdim,
        },
    )
}

impl<'t, T: Float> Var<'t, T> {
    /// The sum of all elements (a 0-d variable).
    #[track_caller]
    pub fn sum(self) -> Var<'t, T> {
        T::record_sum(self, &all_axes(self.ndim()), false)
    }

    /// The sum over `axes`: one axis (`1`, `-1`) or several (`[0, -1]`); negative axes
    /// count from the end; `keepdim` keeps them with length 1. Panics naming the op, the
    /// axis and the shape if an axis is out of range or repeated.
    ///
    /// ```
    /// use ndarray::array;
    /// use tapegrad_autograd::Tape;
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn());
    /// assert_eq!(*x.sum_axes(1, false).value(), array![6.0, 15.0].into_dyn());
    /// assert_eq!(*x.sum_axes(-2, true).value(), array![[5.0, 7.0, 9.0]].into_dyn());
    /// assert_eq!(x.sum_axes([0, -1], false).item(), 21.0);
    /// ```
    #[track_caller]
    pub fn sum_axes(self, axes: impl Axes, keepdim: bool) -> Var<'t, T> {
        let axes = resolve_axes("sum_axes", axes.as_slice(), &self.shape());
        T::record_sum(self, &axes, keepdim)
    }
}
