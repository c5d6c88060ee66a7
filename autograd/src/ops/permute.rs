//! `permute`: the axes reordered.

use super::axes::resolve_axis;
use smallvec::SmallVec;

use crate::graph::Op;
use crate::kernels::Dims;
use crate::kernels::pool::SharedList;
use crate::operand::{Arr, Structural};
use crate::{Float, Var};

/// d permute(x, p) = permute(dx, p⁻¹).
pub(crate) fn rule<T: Float, O: Structural<T>>(
    input: usize,
    axes: &[usize],
    g: O,
    emit: &mut impl FnMut(usize, O),
) {
    emit(input, g.permute(&inverse_permutation(axes)));
}

/// The permutation that undoes `axes`.
fn inverse_permutation(axes: &[usize]) -> Dims {
    let mut inverse = Dims::from_elem(0, axes.len());
    for (i, &a) in axes.iter().enumerate() {
        inverse[a] = i;
    }
    inverse
}

/// Records `x` with its axes reordered by `axes` (a permutation, unchecked).
#[track_caller]
pub(crate) fn record<'t, T: Float>(x: Var<'t, T>, axes: &[usize]) -> Var<'t, T> {
    let nodes = x.tape.nodes();
    let value = Arr::Ref(nodes[x.index].value.array())
        .permute(axes)
        .into_owned();
    drop(nodes);
    x.tape
        .record(value, Op::Permute(x.index, SharedList::list(axes)))
}

impl<'t, T: Float> Var<'t, T> {
    /// Reorders the axes: output axis `i` is input axis `axes[i]` (negative axes count from
    /// the end, as everywhere: `x.permute(&[0, -1, 1])` moves the last axis second).
    /// Panics naming the op and the shape if `axes` is not a permutation of the axes.
    ///
    /// ```
    /// use ndarray::{ArrayD, IxDyn};
    /// use tapegrad_autograd::Tape;
    ///
    /// let tape = Tape::<f32>::new();
    /// let x = tape.var(ArrayD::zeros(IxDyn(&[2, 3, 4])));
    /// assert_eq!(x.permute(&[0, -1, 1]).shape(), [2, 4, 3]);
    /// ```
    #[track_caller]
    pub fn permute(self, axes: &[isize]) -> Var<'t, T> {
        let shape = self.shape();
        let ndim = shape.len();
        if axes.len() != ndim {
            panic!("permute: {axes:?} is not a permutation of the axes of shape {shape:?}");
        }
        let mut seen: SmallVec<[bool; 6]> = SmallVec::from_elem(false, ndim);
        let mut resolved = Dims::with_capacity(ndim);
        // A loop, not a closure: closures drop `#[track_caller]`'s location.
        for &a in axes {
            let a = resolve_axis("permute", a, &shape);
            if std::mem::replace(&mut seen[a], true) {
                panic!("permute: {axes:?} is not a permutation of the axes of shape {shape:?}");
            }
            resolved.push(a);
        }
        T::record_permute(self, &resolved)
    }
}
