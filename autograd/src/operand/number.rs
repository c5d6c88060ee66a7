//! [`Number`]: the [`Operand`] of one number, for the rules of elementwise ops whose
//! operands and result each hold one element.
//!
//! Graphs of one-element values (a loss over a handful of numbers, Newton steps, the chains
//! of the tape benchmark) are dominated by per-array overhead: a heap buffer, shape and
//! stride bookkeeping and a trip through ndarray's generic iterators for every temporary.
//! For a one-element node the reverse sweep runs the *same* rule on plain numbers instead
//! (see [`crate::backward`]), so it allocates nothing and the calculus is still written once.
//! With one element, summing over broadcast axes leaves the number unchanged; the gradient
//! gets its input's shape when it is written out as an array.

use super::Operand;
use crate::Float;
use crate::kernels::elementwise::sigmoid;

/// One number standing for a one-element array of any shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Number<T>(pub(crate) T);

impl<T: Float> Operand<T> for Number<T> {
    #[inline]
    fn sum_to(self, _shape: &[usize]) -> Self {
        self
    }
    #[inline]
    fn add(self, other: Self) -> Self {
        Number(self.0 + other.0)
    }
    #[inline]
    fn sub(self, other: Self) -> Self {
        Number(self.0 - other.0)
    }
    #[inline]
    fn mul(self, other: Self) -> Self {
        Number(self.0 * other.0)
    }
    #[inline]
    fn div(self, other: Self) -> Self {
        Number(self.0 / other.0)
    }
    #[inline]
    fn neg(self) -> Self {
        Number(-self.0)
    }
    #[inline]
    fn scale(self, s: T) -> Self {
        Number(self.0 * s)
    }
    #[inline]
    fn add_scalar(self, s: T) -> Self {
        Number(self.0 + s)
    }
    #[inline]
    fn powf(self, p: T) -> Self {
        Number(self.0.powf(p))
    }
    #[inline]
    fn powi(self, n: i32) -> Self {
        Number(self.0.powi(n))
    }
    #[inline]
    fn exp(self) -> Self {
        Number(self.0.exp())
    }
    #[inline]
    fn sin(self) -> Self {
        Number(self.0.sin())
    }
    #[inline]
    fn cos(self) -> Self {
        Number(self.0.cos())
    }
    #[inline]
    fn sigmoid(self) -> Self {
        Number(sigmoid(self.0))
    }
    #[inline]
    fn mul_const_fn(self, x: &Self, f: impl Fn(T) -> T + Sync) -> Self {
        Number(self.0 * f(x.0))
    }
    #[inline]
    fn const_fn2(&self, other: &Self, f: impl Fn(T, T) -> T + Sync) -> Self {
        Number(f(self.0, other.0))
    }
}
