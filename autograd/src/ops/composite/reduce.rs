//! Compositions of the reductions: `mean` and the population variance `var`.

use crate::ops::axes::{Axes, resolve_axes};
use crate::{Float, Var};

impl<'t, T: Float> Var<'t, T> {
    /// The mean of all elements.
    #[track_caller]
    pub fn mean(self) -> Var<'t, T> {
        let n = self.value().len();
        self.sum().mul_scalar(T::one() / T::from_f64(n as f64))
    }

    /// The mean over `axes`, one axis or several as in [`sum_axes`](Var::sum_axes).
    #[track_caller]
    pub fn mean_axes(self, axes: impl Axes, keepdim: bool) -> Var<'t, T> {
        self.mean_over("mean_axes", axes.as_slice(), keepdim)
    }

    /// The population variance (`ddof = 0`) of all elements.
    #[track_caller]
    pub fn var(self) -> Var<'t, T> {
        let centered = self - self.mean();
        centered.square().mean()
    }

    /// The population variance over `axes`, one axis or several as in
    /// [`sum_axes`](Var::sum_axes).
    #[track_caller]
    pub fn var_axes(self, axes: impl Axes, keepdim: bool) -> Var<'t, T> {
        let axes = axes.as_slice();
        let centered = self - self.mean_over("var_axes", axes, true);
        centered.square().mean_over("var_axes", axes, keepdim)
    }

    /// The mean over `axes`; `op` names the public op in an axis panic.
    #[track_caller]
    fn mean_over(self, op: &str, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        let shape = self.shape();
        let resolved = resolve_axes(op, axes, &shape);
        let n: usize = resolved.iter().map(|&a| shape[a]).product();
        T::record_sum(self, &resolved, keepdim).mul_scalar(T::one() / T::from_f64(n as f64))
    }
}
