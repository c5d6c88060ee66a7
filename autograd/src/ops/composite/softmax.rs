//! `logsumexp`, `log_softmax` and `softmax`: composites of primitives, numerically stable
//! (the maximum is subtracted first, as a constant, so logits of ±1000 stay finite).

use crate::kernels::Dims;
use crate::ops::axes::{Axes, resolve_axes};
use crate::{Float, Var};

impl<'t, T: Float> Var<'t, T> {
    /// `ln Σ exp(x)` over `axes` (one axis or several, as in [`sum_axes`](Var::sum_axes)),
    /// computed as `m + ln Σ exp(x - m)` with `m` the (constant) maximum.
    #[track_caller]
    pub fn logsumexp(self, axes: impl Axes, keepdim: bool) -> Var<'t, T> {
        let shape = self.shape();
        let axes = resolve_axes("logsumexp", axes.as_slice(), &shape);
        let lse = self.logsumexp_kept("logsumexp", &axes);
        if keepdim {
            return lse;
        }
        let reduced: Dims = (0..shape.len())
            .filter(|a| !axes.contains(a))
            .map(|a| shape[a])
            .collect();
        lse.reshape(&reduced)
    }

    /// `x - logsumexp(x)` over `axis`.
    #[track_caller]
    pub fn log_softmax(self, axis: isize) -> Var<'t, T> {
        let axes = resolve_axes("log_softmax", &[axis], &self.shape());
        self - self.logsumexp_kept("log_softmax", &axes)
    }

    /// `exp(x) / Σ exp(x)` over `axis`.
    #[track_caller]
    pub fn softmax(self, axis: isize) -> Var<'t, T> {
        let axes = resolve_axes("softmax", &[axis], &self.shape());
        (self - self.logsumexp_kept("softmax", &axes)).exp()
    }

    /// `logsumexp` over resolved `axes`, kept with length 1; `op` names the public op.
    #[track_caller]
    fn logsumexp_kept(self, op: &str, axes: &[usize]) -> Var<'t, T> {
        let m = T::record_extremum(self, op, axes, true, true).detach();
        // An all -inf row would give -inf - -inf = NaN: shift by 0 there instead.
        let m = if m.value().iter().all(|v| v.is_finite()) {
            m
        } else {
            let fixed = m
                .value()
                .mapv(|v| if v.is_finite() { v } else { T::zero() });
            self.tape.constant(fixed)
        };
        T::record_sum((self - m).exp(), axes, true).ln() + m
    }
}
