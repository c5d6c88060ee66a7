//! The small algebra backward rules are written in, and its three implementations:
//!
//! - [`Arr`] (plain arrays, borrowed or owned) for ordinary first-order backward: nothing is
//!   recorded, and owned temporaries are updated in place so a rule like `g * (1 - y²)`
//!   allocates once;
//! - [`Var`](crate::Var) for differentiable gradients ([`Tape::grad`](crate::Tape::grad)):
//!   every step of the rule is itself recorded, so gradients can be differentiated again;
//! - [`Number`] for the rules of elementwise ops whose operands and result each hold one
//!   element: the same rule on plain numbers, with no allocation.
//!
//! [`Operand`] holds the elementwise operations and [`Operand::sum_to`], which all three
//! implement; [`Structural`] adds the shape-changing operations (reductions over axes,
//! movement, matrix products and solves, indexing, convolution and pooling), which only
//! arrays and `Var`s implement. Each rule in [`crate::ops`] is written once, generically: the
//! calculus is never duplicated between the modes.

mod array;
mod number;
mod var;

pub(crate) use array::Arr;
pub(crate) use number::Number;

use crate::Float;
use crate::kernels::Dims;
use crate::kernels::conv2d::Conv2dGeometry;
use crate::kernels::pool::{Pooled, Shared, SharedList};
use crate::kernels::pool2d::Pool2dGeometry;

/// The elementwise operations every rule may use. Methods that take a function
/// (`mul_const_fn`, `const_fn2`) compute *constants*: masks and signs that are not
/// differentiated further.
pub(crate) trait Operand<T: Float>: Clone + Sized {
    fn add(self, other: Self) -> Self;
    fn sub(self, other: Self) -> Self;
    fn mul(self, other: Self) -> Self;
    fn div(self, other: Self) -> Self;
    fn neg(self) -> Self;
    fn scale(self, s: T) -> Self;
    fn add_scalar(self, s: T) -> Self;
    fn powf(self, p: T) -> Self;
    fn powi(self, n: i32) -> Self;
    fn exp(self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn sigmoid(self) -> Self;
    /// `self * f(x)`, with `f(x)` a constant broadcast to `self`'s shape.
    fn mul_const_fn(self, x: &Self, f: impl Fn(T) -> T + Sync) -> Self;
    /// The constant `f(self, other)` elementwise, broadcasting.
    fn const_fn2(&self, other: &Self, f: impl Fn(T, T) -> T + Sync) -> Self;

    /// Sums over broadcast axes so the result has `shape`: the one unbroadcast helper every
    /// broadcasting op's rule uses.
    fn sum_to(self, shape: &[usize]) -> Self;

    /// `(self.sum_to(a), self.sum_to(b))`: the gradient of a broadcasting sum or difference
    /// sent to both operands.
    fn sum_to_both(self, a: &[usize], b: &[usize]) -> (Self, Self) {
        (self.clone().sum_to(a), self.sum_to(b))
    }
}

/// The shape-changing operations: what the rules of reductions, movement, matrix products,
/// linear solves and indexing use. A one-element [`Number`] has no shape to change, so it
/// does not implement them.
pub(crate) trait Structural<T: Float>: Operand<T> {
    fn shape_vec(&self) -> Dims;
    /// Whether the shape is `shape` (without allocating).
    fn has_shape(&self, shape: &[usize]) -> bool;
    fn sum_axes(self, axes: &[usize], keepdim: bool) -> Self;
    fn reshape(self, shape: &[usize]) -> Self;
    fn permute(self, axes: &[usize]) -> Self;
    fn broadcast_to(self, shape: &[usize]) -> Self;
    /// `self @ otherᵀ` over the last two axes.
    fn matmul_nt(self, other: Self) -> Self;
    /// `selfᵀ @ other` over the last two axes.
    fn matmul_tn(self, other: Self) -> Self;
    /// Both gradients of `a @ b` for the output gradient `g`: `(g @ bᵀ, aᵀ @ g)`.
    fn matmul_grads(g: Self, a: Self, b: Self) -> (Self, Self) {
        (g.clone().matmul_nt(b), a.matmul_tn(g))
    }
    /// `X` with `selfᵀ X = b` over the last two axes (`self` square, batch axes broadcast):
    /// the solve of the transposed system, which `solve`'s rule needs.
    fn solve_tn(self, b: Self) -> Self;
    fn slice(self, axis: usize, start: usize, end: usize) -> Self;
    /// Zeros of length `len` along `axis` with `self` placed at `start` (the adjoint of slice).
    fn pad(self, axis: usize, start: usize, len: usize) -> Self;
    fn index_select(self, axis: usize, indices: &SharedList) -> Self;
    fn index_add(self, axis: usize, indices: &SharedList, size: usize) -> Self;
    fn gather(self, axis: usize, index: &Shared<Pooled<usize>>) -> Self;
    fn scatter_add(self, axis: usize, index: &Shared<Pooled<usize>>, shape: &[usize]) -> Self;
    /// `conv2d(self, weight)`, `self` an input `[N, C, H, W]`. The three convolution maps
    /// borrow their operands (their kernels only read them), so a rule that feeds one
    /// gradient to two of them copies nothing.
    fn conv2d(&self, weight: &Self, geometry: &Shared<Conv2dGeometry>) -> Self;
    /// The transposed convolution of `self` (an output gradient `[N, O, OH, OW]`) by
    /// `weight`: conv2d's input gradient, `[N, C, H, W]`.
    fn conv2d_input_grad(&self, weight: &Self, geometry: &Shared<Conv2dGeometry>) -> Self;
    /// conv2d's weight gradient for the input `self` and the output gradient `grad`.
    fn conv2d_weight_grad(&self, grad: &Self, geometry: &Shared<Conv2dGeometry>) -> Self;
    /// Average pooling of `self`, `[N, C, H, W]`.
    fn avg_pool2d(self, geometry: &Shared<Pool2dGeometry>, count_include_pad: bool) -> Self;
    /// The adjoint of average pooling (its input gradient) applied to `self`, an output
    /// gradient `[N, C, OH, OW]`.
    fn avg_pool2d_adjoint(self, geometry: &Shared<Pool2dGeometry>, count_include_pad: bool)
    -> Self;
}

/// [`Operand::sum_to`] for operands with a shape: a sum over the broadcast axes, then a
/// reshape to `shape`.
fn unbroadcast<T: Float, O: Structural<T>>(operand: O, shape: &[usize]) -> O {
    if operand.has_shape(shape) {
        return operand;
    }
    let current = operand.shape_vec();
    let lead = current.len() - shape.len();
    // Every axis the target has as 1 is summed, even where `operand` is 1 there too (a sum
    // over it changes nothing): a one-element target then sums every axis, in one pass.
    let axes: Dims = (0..current.len())
        .filter(|&i| i < lead || shape[i - lead] == 1)
        .collect();
    operand.sum_axes(&axes, true).reshape(shape)
}
