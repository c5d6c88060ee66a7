//! Views built from the movement primitives: `transpose`, `t`, `squeeze`, `unsqueeze`,
//! `flatten_from`.

use crate::kernels::Dims;
use crate::ops::axes::{resolve_axis, resolve_new_axis};
use crate::{Float, Var};

impl<'t, T: Float> Var<'t, T> {
    /// Swaps two axes (negative axes count from the end).
    #[track_caller]
    pub fn transpose(self, axis0: isize, axis1: isize) -> Var<'t, T> {
        let shape = self.shape();
        let a0 = resolve_axis("transpose", axis0, &shape);
        let a1 = resolve_axis("transpose", axis1, &shape);
        let mut axes: Dims = (0..shape.len()).collect();
        axes.swap(a0, a1);
        T::record_permute(self, &axes)
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
        T::record_permute(self, &[1, 0])
    }

    /// Removes an axis of length 1.
    #[track_caller]
    pub fn squeeze(self, axis: isize) -> Var<'t, T> {
        let mut shape = self.shape();
        let axis = resolve_axis("squeeze", axis, &shape);
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
        let axis = resolve_new_axis("unsqueeze", axis, &shape);
        shape.insert(axis, 1);
        self.reshape(&shape)
    }

    /// All axes from `start_axis` on merged into one (`flatten_from(1)` keeps the batch
    /// axis; negative axes count from the end, so `flatten_from(-2)` merges the last two). A
    /// 0-dimensional variable becomes 1-dimensional, as with `torch.flatten`.
    #[track_caller]
    pub fn flatten_from(self, start_axis: isize) -> Var<'t, T> {
        let shape = self.shape();
        let start_axis = if shape.is_empty() {
            // Axis 0 or -1 of a 0-d variable, as if it were `[1]`: always 0.
            resolve_axis("flatten_from", start_axis, &[1])
        } else {
            resolve_axis("flatten_from", start_axis, &shape)
        };
        let mut new_shape = Dims::from_slice(&shape[..start_axis]);
        new_shape.push(shape[start_axis..].iter().product());
        self.reshape(&new_shape)
    }
}
