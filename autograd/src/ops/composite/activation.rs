//! Compositions of the elementwise primitives: `square`, `recip`, the two GELUs,
//! `log_sigmoid`.

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

    /// `ln σ(x) = -softplus(-x)`, as `torch.nn.functional.logsigmoid` (composite): finite
    /// for any finite input (`ln σ(-1000) = -1000`, `ln σ(1000) = -0`), where
    /// `x.sigmoid().ln()` gives −∞ below about −745 in `f64` (−104 in `f32`). Its gradient is
    /// `σ(-x)`. Below −20, softplus's threshold returns `x` itself, within `eˣ < 2.1e-9` of
    /// the exact value.
    ///
    /// ```
    /// use ndarray::array;
    /// use tapegrad_autograd::Tape;
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(array![-1000.0, 0.0, 1000.0].into_dyn());
    /// let y = x.log_sigmoid();
    /// let v = y.to_array();
    /// assert_eq!((v[0], v[2]), (-1000.0, 0.0));
    /// assert!((v[1] + 2.0_f64.ln()).abs() < 1e-15);
    /// let grads = y.sum().backward();
    /// assert_eq!(grads[x], array![1.0, 0.5, 0.0].into_dyn()); // σ(-x)
    /// ```
    #[track_caller]
    pub fn log_sigmoid(self) -> Var<'t, T> {
        -(-self).softplus()
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
