//! Movement ops: reshape, permute, broadcast (primitives) and the views built from them.

use std::rc::Rc;

use super::Op;
use crate::operand::Arr;
use crate::{Float, Var};

/// The NumPy broadcast of two shapes; panics naming `op` and both shapes when they are
/// incompatible.
#[track_caller]
pub(crate) fn broadcast_shape(op: &str, a: &[usize], b: &[usize]) -> Vec<usize> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            panic!("{op}: shapes {a:?} and {b:?} cannot be broadcast together");
        };
    }
    out
}

/// Resolves a possibly negative axis against `ndim`; panics naming `op` when out of range.
#[track_caller]
pub(crate) fn normalize_axis(op: &str, axis: isize, ndim: usize) -> usize {
    let resolved = if axis < 0 { axis + ndim as isize } else { axis };
    assert!(
        resolved >= 0 && (resolved as usize) < ndim,
        "{op}: axis {axis} is out of range for a {ndim}-dimensional variable"
    );
    resolved as usize
}

pub(crate) fn inverse_permutation(axes: &[usize]) -> Vec<usize> {
    let mut inverse = vec![0; axes.len()];
    for (i, &a) in axes.iter().enumerate() {
        inverse[a] = i;
    }
    inverse
}

impl<'t, T: Float> Var<'t, T> {
    /// The same elements in a new shape (row-major order, like `numpy.reshape`).
    #[track_caller]
    pub fn reshape(self, shape: &[usize]) -> Var<'t, T> {
        let nodes = self.tape.nodes();
        let value = Arr::Ref(nodes[self.index].value.array())
            .reshape_impl(shape)
            .into_owned();
        drop(nodes);
        self.tape.record(value, Op::Reshape(self.index))
    }

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
        self.permute_usize(axes)
    }

    #[track_caller]
    pub(crate) fn permute_usize(self, axes: &[usize]) -> Var<'t, T> {
        let nodes = self.tape.nodes();
        let value = Arr::Ref(nodes[self.index].value.array())
            .permute_impl(axes)
            .into_owned();
        drop(nodes);
        self.tape
            .record(value, Op::Permute(self.index, Rc::from(axes)))
    }

    /// Swaps two axes (negative axes count from the end).
    #[track_caller]
    pub fn transpose(self, axis0: isize, axis1: isize) -> Var<'t, T> {
        let ndim = self.ndim();
        let a0 = normalize_axis("transpose", axis0, ndim);
        let a1 = normalize_axis("transpose", axis1, ndim);
        let mut axes: Vec<usize> = (0..ndim).collect();
        axes.swap(a0, a1);
        self.permute_usize(&axes)
    }

    /// The transpose of a matrix (a 0-D or 1-D variable is returned as is, like PyTorch).
    #[track_caller]
    pub fn t(self) -> Var<'t, T> {
        let ndim = self.ndim();
        assert!(
            ndim <= 2,
            "t: expects at most 2 dimensions, got shape {:?} (use transpose or permute)",
            self.shape()
        );
        if ndim < 2 {
            return self;
        }
        self.permute_usize(&[1, 0])
    }

    /// Repeats the value along broadcast axes to `shape` (NumPy rules).
    #[track_caller]
    pub fn broadcast_to(self, shape: &[usize]) -> Var<'t, T> {
        let nodes = self.tape.nodes();
        let value = Arr::Ref(nodes[self.index].value.array())
            .broadcast_to_impl(shape)
            .into_owned();
        drop(nodes);
        self.tape.record(value, Op::BroadcastTo(self.index))
    }

    /// Removes an axis of length 1.
    #[track_caller]
    pub fn squeeze(self, axis: isize) -> Var<'t, T> {
        let mut shape = self.shape();
        let axis = normalize_axis("squeeze", axis, shape.len());
        assert!(
            shape[axis] == 1,
            "squeeze: axis {axis} of shape {shape:?} has length {}, not 1",
            shape[axis]
        );
        shape.remove(axis);
        self.reshape(&shape)
    }

    /// Inserts an axis of length 1 at `axis` (which may equal the current number of axes).
    #[track_caller]
    pub fn unsqueeze(self, axis: isize) -> Var<'t, T> {
        let mut shape = self.shape();
        let axis = normalize_axis("unsqueeze", axis, shape.len() + 1);
        shape.insert(axis, 1);
        self.reshape(&shape)
    }

    /// All axes from `start_axis` on merged into one (`flatten_from(1)` keeps the batch axis).
    #[track_caller]
    pub fn flatten_from(self, start_axis: usize) -> Var<'t, T> {
        let shape = self.shape();
        assert!(
            start_axis <= shape.len(),
            "flatten_from: axis {start_axis} is out of range for shape {shape:?}"
        );
        let mut new_shape = shape[..start_axis].to_vec();
        new_shape.push(shape[start_axis..].iter().product());
        self.reshape(&new_shape)
    }
}
