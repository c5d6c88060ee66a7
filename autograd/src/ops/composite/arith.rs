//! `+ - * /` between a variable and a number on either side: compositions of the unary
//! primitives `add_scalar`, `mul_scalar`, `neg` and `powi`.

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
                (-v).add_scalar(self)
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
                v.powi(-1).mul_scalar(self)
            }
        }
    )*};
}
number_lhs_ops!(f32, f64);
