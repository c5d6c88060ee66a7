//! `prod` over all elements or one axis, with `keepdim` (`torch.prod`).

use ndarray::Axis;

use super::RuleContext;
use super::axes::{resolve_axes, with_kept_axes};
use crate::graph::Op;
use crate::operand::Structural;
use crate::{Float, Var};

/// d prod(x) / dxᵢ = Π_{j≠i} xⱼ: the product of the other elements of the lane, computed
/// without dividing by xᵢ (so one zero or several give the exact gradient), from the
/// exclusive prefix and suffix products along the axis.
pub(crate) fn rule<T: Float, O: Structural<T>>(
    input: usize,
    axis: usize,
    keepdim: bool,
    g: O,
    ctx: &impl RuleContext<O>,
    emit: &mut impl FnMut(usize, O),
) {
    if !ctx.needs(input) {
        return;
    }
    let shape = ctx.shape(input);
    let g = with_kept_axes(g, &shape, &[axis], keepdim).broadcast_to(&shape);
    let others = product_of_others(ctx.value(input), axis, shape[axis]);
    emit(input, g.mul(others));
}

/// `Π_{j≠i} xⱼ` along `axis` (of length `n`) for every `i`: the exclusive prefix product
/// times the exclusive suffix product, each an inclusive scan (Hillis–Steele: `⌈log₂ n⌉`
/// steps of a shifted product) shifted by one. Only products, slices and pads, so it is
/// differentiable again and exact at zeros.
fn product_of_others<T: Float, O: Structural<T>>(x: O, axis: usize, n: usize) -> O {
    if n <= 1 {
        return x.const_fn2(&x, |_, _| T::one());
    }
    let scan = |forward: bool| {
        let mut p = x.clone();
        let mut k = 1;
        while k < n {
            let shifted = shift(p.clone(), axis, n, k, forward);
            p = p.mul(shifted);
            k *= 2;
        }
        shift(p, axis, n, 1, forward)
    };
    scan(true).mul(scan(false))
}

/// `x` moved by `k` along `axis` (of length `n`, `0 < k < n`), the vacated places 1:
/// forward, `yᵢ = x_{i−k}`; backward, `yᵢ = x_{i+k}`.
fn shift<T: Float, O: Structural<T>>(x: O, axis: usize, n: usize, k: usize, forward: bool) -> O {
    let (kept, at) = if forward {
        (x.slice(axis, 0, n - k), k)
    } else {
        (x.slice(axis, k, n), 0)
    };
    // 1 where `kept` lands, 0 in the vacated places: a constant.
    let landed = kept.const_fn2(&kept, |_, _| T::one()).pad(axis, at, n);
    kept.pad(axis, at, n).add(landed.neg().add_scalar(T::one()))
}

/// Records the product of `x` over `axis` (in range).
#[track_caller]
pub(crate) fn record<'t, T: Float>(x: Var<'t, T>, axis: usize, keepdim: bool) -> Var<'t, T> {
    let mut value = x
        .value()
        .map_axis(Axis(axis), |lane| lane.iter().fold(T::one(), |p, &v| p * v));
    if keepdim {
        value.insert_axis_inplace(Axis(axis));
    }
    x.tape.record(
        value,
        Op::Prod {
            input: x.index,
            axis,
            keepdim,
        },
    )
}

impl<'t, T: Float> Var<'t, T> {
    /// The product of all elements (a 0-d variable), as `torch.prod(x)`. Its gradient,
    /// `Π_{j≠i} xⱼ`, is exact when elements are zero (it never divides by the input).
    ///
    /// ```
    /// use ndarray::array;
    /// use tapegrad_autograd::Tape;
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(array![[2.0, 0.0], [3.0, 4.0]].into_dyn());
    /// let p = x.prod();
    /// assert_eq!(p.item(), 0.0);
    /// // Only the zero has a gradient: the product of the others, 24.
    /// assert_eq!(p.backward()[x], array![[0.0, 24.0], [0.0, 0.0]].into_dyn());
    /// ```
    #[track_caller]
    pub fn prod(self) -> Var<'t, T> {
        let n = self.shape().iter().product::<usize>();
        T::record_prod(self.reshape(&[n]), 0, false)
    }

    /// The product over `axis` (negative from the end), as `torch.prod(x, dim, keepdim)`;
    /// `keepdim` keeps the axis with length 1. Panics naming the op, the axis and the shape
    /// if the axis is out of range.
    ///
    /// ```
    /// use ndarray::array;
    /// use tapegrad_autograd::Tape;
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn());
    /// assert_eq!(*x.prod_axis(1, false).value(), array![6.0, 120.0].into_dyn());
    /// assert_eq!(*x.prod_axis(-2, true).value(), array![[4.0, 10.0, 18.0]].into_dyn());
    /// ```
    #[track_caller]
    pub fn prod_axis(self, axis: isize, keepdim: bool) -> Var<'t, T> {
        let axis = resolve_axes("prod_axis", &[axis], &self.shape())[0];
        T::record_prod(self, axis, keepdim)
    }
}
