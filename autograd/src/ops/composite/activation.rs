//! Compositions of the elementwise primitives: `square`, `recip`, the two GELUs.

use crate::{Float, Var};

impl<'t, T: Float> Var<'t, T> {
    /// `self²`.
    #[track_caller]
    pub fn square(self) -> Var<'t, T> {
        self.powi(2)
    }

    /// `1 / self`.
    #[track_caller]
    pub fn recip(self) -> Var<'t, T> {
        self.powi(-1)
    }

    /// The exact GELU, `x Φ(x) = x/2 (1 + erf(x/√2))` (composite).
    #[track_caller]
    pub fn gelu(self) -> Var<'t, T> {
        let half = T::from_f64(0.5);
        let cdf = self
            .mul_scalar(T::from_f64(std::f64::consts::FRAC_1_SQRT_2))
            .erf()
            .add_scalar(T::one())
            .mul_scalar(half);
        self * cdf
    }

    /// The tanh approximation of GELU, `x/2 (1 + tanh(√(2/π) (x + 0.044715 x³)))` (composite).
    #[track_caller]
    pub fn gelu_tanh(self) -> Var<'t, T> {
        let k = T::from_f64((2.0 / std::f64::consts::PI).sqrt());
        let inner = (self + self.powi(3).mul_scalar(T::from_f64(0.044715))).mul_scalar(k);
        let gate = inner
            .tanh()
            .add_scalar(T::one())
            .mul_scalar(T::from_f64(0.5));
        self * gate
    }
}
