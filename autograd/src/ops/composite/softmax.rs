//! `logsumexp`, `log_softmax` and `softmax`: composites of primitives, numerically stable
//! (the maximum is subtracted first, as a constant, so logits of ±1000 stay finite).

use crate::ops::axes::normalize_axis;
use crate::{Float, Var};

impl<'t, T: Float> Var<'t, T> {
    /// `ln Σ exp(x)` over `axis`, computed as `m + ln Σ exp(x - m)` with `m` the (constant)
    /// maximum.
    #[track_caller]
    pub fn logsumexp(self, axis: isize, keepdim: bool) -> Var<'t, T> {
        normalize_axis("logsumexp", axis, self.ndim()); // name this op in the error, not `max`
        let m = self.max_axes(&[axis], true).detach();
        // An all -inf row would give -inf - -inf = NaN: shift by 0 there instead.
        let m = if m.with_value(|a| a.iter().all(|v| v.is_finite())) {
            m
        } else {
            let fixed = m.with_value(|a| a.mapv(|v| if v.is_finite() { v } else { T::zero() }));
            self.tape.constant(fixed)
        };
        let lse = (self - m).exp().sum_axes(&[axis], true).ln() + m;
        if keepdim { lse } else { lse.squeeze(axis) }
    }

    /// `x - logsumexp(x)` over `axis`.
    #[track_caller]
    pub fn log_softmax(self, axis: isize) -> Var<'t, T> {
        normalize_axis("log_softmax", axis, self.ndim());
        self - self.logsumexp(axis, true)
    }

    /// `exp(x) / Σ exp(x)` over `axis`.
    #[track_caller]
    pub fn softmax(self, axis: isize) -> Var<'t, T> {
        normalize_axis("softmax", axis, self.ndim());
        self.log_softmax(axis).exp()
    }
}
