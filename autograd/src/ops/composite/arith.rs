//! `+ - * /` between a variable and a number on either side: compositions of the unary
//! primitives `add_scalar`, `mul_scalar`, `neg` and `powi`.
//!
//! With the number on the left, the operators exist for `f32` and `f64` (`1.0 - x`,
//! `2.0 * x`, `1.0 / x`), but not for a generic `T: Float`: Rust's orphan rules forbid
//! `impl<T> Sub<Var<T>> for T` (a foreign trait on a bare type parameter). Generic code
//! writes the number on the right where the operation commutes (`x * two`, `x + one`) and
//! [`Var::rsub`] / [`Var::rdiv`] for `one - x` and `one / x`.

use std::ops::{Add, Div, Mul, Sub};

use crate::{Float, Var};

impl<'t, T: Float> Add<T> for Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn add(self, s: T) -> Var<'t, T> {
        self.add_scalar(s)
    }
}

impl<'t, T: Float> Sub<T> for Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn sub(self, s: T) -> Var<'t, T> {
        self.add_scalar(-s)
    }
}

impl<'t, T: Float> Mul<T> for Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn mul(self, s: T) -> Var<'t, T> {
        self.mul_scalar(s)
    }
}

impl<'t, T: Float> Div<T> for Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn div(self, s: T) -> Var<'t, T> {
        self.mul_scalar(T::one() / s)
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// `s - self`: reverse subtraction, for generic code where `s - x` cannot be written
    /// (Rust's orphan rules forbid `impl<T> Sub<Var<T>> for T`). `1.0 - x` works for `f32`
    /// and `f64`.
    ///
    /// ```
    /// use ndarray::array;
    /// use tapegrad_autograd::{Float, Tape, Var};
    ///
    /// // A generic loss term: 1 - x for any element type.
    /// fn complement<'t, T: Float>(x: Var<'t, T>) -> Var<'t, T> {
    ///     x.rsub(T::one())
    /// }
    /// let tape = Tape::<f32>::new();
    /// let x = tape.var(array![0.25_f32, 1.0].into_dyn());
    /// assert_eq!(complement(x).to_array(), (1.0 - x).to_array());
    /// ```
    #[track_caller]
    pub fn rsub(self, s: T) -> Var<'t, T> {
        (-self).add_scalar(s)
    }

    /// `s / self`: reverse division, for generic code where `s / x` cannot be written (Rust's
    /// orphan rules forbid `impl<T> Div<Var<T>> for T`). `1.0 / x` works for `f32` and
    /// `f64`.
    ///
    /// ```
    /// use ndarray::array;
    /// use tapegrad_autograd::Tape;
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(array![2.0, 4.0].into_dyn());
    /// assert_eq!(x.rdiv(1.0).to_array(), array![0.5, 0.25].into_dyn());
    /// assert_eq!((1.0 / x).to_array(), x.rdiv(1.0).to_array());
    /// ```
    #[track_caller]
    pub fn rdiv(self, s: T) -> Var<'t, T> {
        self.powi(-1).mul_scalar(s)
    }
}

macro_rules! number_lhs_ops {
    ($($t:ty),*) => {$(
        impl<'t> Add<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[track_caller]
            fn add(self, v: Var<'t, $t>) -> Var<'t, $t> {
                v.add_scalar(self)
            }
        }
        impl<'t> Sub<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[track_caller]
            fn sub(self, v: Var<'t, $t>) -> Var<'t, $t> {
                v.rsub(self)
            }
        }
        impl<'t> Mul<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[track_caller]
            fn mul(self, v: Var<'t, $t>) -> Var<'t, $t> {
                v.mul_scalar(self)
            }
        }
        impl<'t> Div<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[track_caller]
            fn div(self, v: Var<'t, $t>) -> Var<'t, $t> {
                v.rdiv(self)
            }
        }
    )*};
}
number_lhs_ops!(f32, f64);
