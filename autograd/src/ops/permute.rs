//! `permute`: the axes reordered.

use std::rc::Rc;

use crate::graph::Op;
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
fn inverse_permutation(axes: &[usize]) -> Vec<usize> {
    let mut inverse = vec![0; axes.len()];
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
    x.tape.record(value, Op::Permute(x.index, Rc::from(axes)))
}

impl<'t, T: Float> Var<'t, T> {
    /// Reorders the axes: output axis `i` is input axis `axes[i]`.
    #[track_caller]
    pub fn permute(self, axes: &[usize]) -> Var<'t, T> {
        let ndim = self.ndim();
        let mut seen = vec![false; ndim];
        let valid = axes.len() == ndim
            && axes
                .iter()
                .all(|&a| a < ndim && !std::mem::replace(&mut seen[a], true));
        assert!(
            valid,
            "permute: {axes:?} is not a permutation of the axes of shape {:?}",
            self.shape()
        );
        record(self, axes)
    }
}
