//! The element types a tape can hold.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use ndarray::{LinalgScalar, ScalarOperand};

use crate::compiled::{Compiled, FloatFn};

/// A floating-point element type: implemented for `f32` (training) and `f64` (gradient checking),
/// and sealed to these two.
///
/// It gathers the bounds every kernel needs: `num_traits::Float` for maths,
/// `ndarray::LinalgScalar` for matrix multiplication, and thread safety for `rayon`. The
/// tape's kernels and rules are compiled for both types in this crate, so a crate that uses
/// them compiles calls, not kernels; [`call`](Float::call) does the same for other crates'
/// code.
pub trait Float:
    num_traits::Float
    + LinalgScalar
    + ScalarOperand
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Debug
    + Display
    + Default
    + Send
    + Sync
    + 'static
    + Compiled
{
    /// The type's name as safetensors and messages spell it (`"F32"` / `"F64"`).
    const DTYPE: &'static str;

    /// Converts from `f64` (rounding for `f32`).
    fn from_f64(value: f64) -> Self;

    /// Converts to `f64` (exactly).
    fn to_f64(self) -> f64;

    /// The error function `erf(self)`, needed by the exact GELU.
    fn erf(self) -> Self;

    /// `tanh(self)` as the array kernels compute it: `f64`'s own `tanh`; for `f32` a
    /// branch-free rational approximation that the compiler vectorizes (Eigen's and XLA's),
    /// within 7 ulp of the exact value and 5e-7 of it in absolute terms (measured over every
    /// 61st `f32` in `[-10, 10]` by this module's test), where libm's scalar `tanhf` took a
    /// fifth of a Transformer training step.
    fn tanh_kernel(self) -> Self;

    /// Runs `F::f32(args)` or `F::f64(args)`: the body of `F` for this type, compiled in the
    /// crate that implements [`FloatFn`] (see there).
    fn call<'a, F: FloatFn>(args: F::Args<'a, Self>) -> F::Output<'a, Self>;
}

impl Float for f32 {
    const DTYPE: &'static str = "F32";
    #[inline]
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn erf(self) -> Self {
        erf_f64(self as f64) as f32
    }
    #[inline]
    fn tanh_kernel(self) -> Self {
        tanh_f32(self)
    }
    #[inline]
    fn call<'a, F: FloatFn>(args: F::Args<'a, Self>) -> F::Output<'a, Self> {
        F::f32(args)
    }
}

impl Float for f64 {
    const DTYPE: &'static str = "F64";
    #[inline]
    fn from_f64(value: f64) -> Self {
        value
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn erf(self) -> Self {
        erf_f64(self)
    }
    #[inline]
    fn tanh_kernel(self) -> Self {
        self.tanh()
    }
    #[inline]
    fn call<'a, F: FloatFn>(args: F::Args<'a, Self>) -> F::Output<'a, Self> {
        F::f64(args)
    }
}

/// `tanh(x)` for `f32` without branches: `x · P(x²) / Q(x²)` with the odd degree-13 and
/// even degree-6 polynomials of Eigen's and XLA's `f32` tanh, on `x` clamped to
/// `±7.90531`, where the quotient reaches ±1 in `f32`; `x` itself below `4e-4` in
/// magnitude, where `tanh(x) = x` to `f32` precision. NaN gives NaN.
#[inline]
pub(crate) fn tanh_f32(x: f32) -> f32 {
    const CLAMP: f32 = 7.905_311;
    const TINY: f32 = 4e-4;
    let c = x.clamp(-CLAMP, CLAMP);
    let x2 = c * c;
    let p = ((((((-2.760_768_5e-16_f32 * x2 + 2.000_188e-13) * x2 - 8.604_672e-11) * x2
        + 5.122_297e-8)
        * x2
        + 1.485_722_4e-5)
        * x2
        + 6.372_619_3e-4)
        * x2
        + 4.893_524_6e-3)
        * c;
    let q = ((1.198_258_4e-6_f32 * x2 + 1.185_347_1e-4) * x2 + 2.268_434_6e-3) * x2 + 4.893_525e-3;
    if x.abs() < TINY { x } else { p / q }
}

/// `erf(x)` to full double precision.
///
/// For |x| < 2 the Maclaurin series `2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))` converges
/// quickly; beyond, the continued fraction of `erfc` (Lentz's method) is used.
fn erf_f64(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let ax = x.abs();
    let two_over_sqrt_pi = std::f64::consts::FRAC_2_SQRT_PI;
    if ax < 2.0 {
        let x2 = x * x;
        let mut term = x;
        let mut sum = x;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= -x2 / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() <= 1e-17 * sum.abs() {
                break;
            }
        }
        return two_over_sqrt_pi * sum;
    }
    if ax > 6.0 {
        return x.signum();
    }
    // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
    let tiny = 1e-300;
    let mut f = ax;
    let mut c = ax;
    let mut d = 0.0;
    for k in 1..200 {
        let a = k as f64 / 2.0;
        d = ax + a * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = ax + a / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    let erfc = (-ax * ax).exp() / (f * std::f64::consts::PI.sqrt());
    (1.0 - erfc).copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_reference_values() {
        // Values from Abramowitz & Stegun table 7.1 / high-precision references.
        let cases = [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (1.5, 0.966_105_146_475_310_7),
            (2.0, 0.995_322_265_018_952_7),
            (2.5, 0.999_593_047_982_555),
            (3.0, 0.999_977_909_503_001_4),
            (-1.0, -0.842_700_792_949_714_9),
        ];
        for (x, want) in cases {
            let got = erf_f64(x);
            assert!((got - want).abs() < 1e-15, "erf({x}) = {got}, want {want}");
        }
    }

    /// The largest distance in ulp between `tanh_f32` and `tanh` computed in `f64`, over
    /// every 61st `f32` in `[-10, 10]` (36 million values, each sign).
    #[test]
    fn tanh_f32_is_within_7_ulp() {
        let mut worst = 0u32;
        for bits in (0..=10.0_f32.to_bits()).step_by(61) {
            for x in [f32::from_bits(bits), -f32::from_bits(bits)] {
                let exact = (x as f64).tanh() as f32;
                let got = tanh_f32(x);
                assert_eq!(
                    got.is_sign_negative(),
                    exact.is_sign_negative(),
                    "tanh({x})"
                );
                let ulp = (got.to_bits() as i64 - exact.to_bits() as i64).unsigned_abs() as u32;
                worst = worst.max(ulp);
            }
        }
        assert!(worst <= 7, "worst error {worst} ulp");
        assert!(tanh_f32(f32::NAN).is_nan());
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh_f32(100.0), 1.0);
        assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0_f32).to_bits());
    }
}
