//! Views built from the movement primitives: `transpose`, `t`, `squeeze`, `unsqueeze`,
//! `flatten_from`.

use crate::ops::axes::normalize_axis;
use crate::ops::permute;
use crate::{Float, Var};

impl<'t, T: Float> Var<'t, T> {
    /// Swaps two axes (negative axes count from the end).
    #[track_caller]
    pub fn transpose(self, axis0: isize, axis1: isize) -> Var<'t, T> {
        let ndim = self.ndim();
        let a0 = normalize_axis("transpose", axis0, ndim);
        let a1 = normalize_axis("transpose", axis1, ndim);
        let mut axes: Vec<usize> = (0..ndim).collect();
        axes.swap(a0, a1);
        permute::record(self, &axes)
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
        permute::record(self, &[1, 0])
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
