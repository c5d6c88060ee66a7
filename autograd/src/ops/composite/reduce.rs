//! Compositions of the reductions: `mean` and the population variance `var`.

use crate::ops::axes::resolve_axes;
use crate::ops::sum;
use crate::{Float, Var};

impl<'t, T: Float> Var<'t, T> {
    /// The mean of all elements.
    #[track_caller]
    pub fn mean(self) -> Var<'t, T> {
        let n = self.with_value(|a| a.len());
        self.sum().mul_scalar(T::one() / T::from_f64(n as f64))
    }

    /// The mean over `axes`.
    #[track_caller]
    pub fn mean_axes(self, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        let shape = self.shape();
        let resolved = resolve_axes("mean", axes, shape.len());
        let n: usize = resolved.iter().map(|&a| shape[a]).product();
        sum::record(self, &resolved, keepdim).mul_scalar(T::one() / T::from_f64(n as f64))
    }

    /// The population variance (`ddof = 0`) of all elements.
    #[track_caller]
    pub fn var(self) -> Var<'t, T> {
        let centered = self - self.mean();
        centered.square().mean()
    }

    /// The population variance over `axes`.
    #[track_caller]
    pub fn var_axes(self, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        resolve_axes("var", axes, self.ndim()); // name this op in the error, not `mean`
        let centered = self - self.mean_axes(axes, true);
        centered.square().mean_axes(axes, keepdim)
    }
}
