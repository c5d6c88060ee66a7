//! The third implementation of [`Operand`]: a single number, for the backward rules of
//! elementwise ops whose operands and result each hold one element.
//!
//! Scalar-heavy graphs (a loss over a handful of numbers, Newton steps, the chains of the
//! tape benchmark) are dominated by per-array overhead: a heap buffer, shape and stride
//! bookkeeping and a trip through ndarray's generic iterators for every temporary. For a
//! one-element node the reverse sweep runs the *same* backward rule
//! ([`crate::ops::backward_rule`]) on plain numbers instead, so it allocates nothing and the
//! calculus is still written once.
//!
//! Only [`Op::Binary`](crate::ops::Op) and [`Op::Unary`](crate::ops::Op) nodes take this
//! path (see [`crate::ops::sweep_arrays`]), and only when the node and every input hold
//! exactly one element. With one element, summing over broadcast axes, reshaping and
//! permuting leave the number unchanged; the gradient gets its input's shape when it is
//! written out as an array.

use std::rc::Rc;

use ndarray::ArrayD;
use smallvec::SmallVec;

use crate::Float;
use crate::operand::Operand;
use crate::ops::RuleContext;
use crate::tape::Nodes;

/// One number standing for a one-element array of any shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Scalar<T>(pub(crate) T);

/// Rules of elementwise ops never call the structural operations below; reaching one is
/// a bug in the dispatch of [`crate::ops::sweep_arrays`].
#[cold]
#[inline(never)]
fn not_elementwise(op: &str) -> ! {
    unreachable!("the one-element backward path only serves elementwise rules, not `{op}`")
}

impl<T: Float> Operand<T> for Scalar<T> {
    fn shape_vec(&self) -> Vec<usize> {
        Vec::new()
    }
    #[inline]
    fn has_shape(&self, _shape: &[usize]) -> bool {
        true
    }
    #[inline]
    fn sum_to(self, _shape: &[usize]) -> Self {
        self
    }
    #[inline]
    fn add(self, other: Self) -> Self {
        Scalar(self.0 + other.0)
    }
    #[inline]
    fn sub(self, other: Self) -> Self {
        Scalar(self.0 - other.0)
    }
    #[inline]
    fn mul(self, other: Self) -> Self {
        Scalar(self.0 * other.0)
    }
    #[inline]
    fn div(self, other: Self) -> Self {
        Scalar(self.0 / other.0)
    }
    #[inline]
    fn neg(self) -> Self {
        Scalar(-self.0)
    }
    #[inline]
    fn scale(self, s: T) -> Self {
        Scalar(self.0 * s)
    }
    #[inline]
    fn add_scalar(self, s: T) -> Self {
        Scalar(self.0 + s)
    }
    #[inline]
    fn powf(self, p: T) -> Self {
        Scalar(self.0.powf(p))
    }
    #[inline]
    fn powi(self, n: i32) -> Self {
        Scalar(self.0.powi(n))
    }
    #[inline]
    fn exp(self) -> Self {
        Scalar(self.0.exp())
    }
    #[inline]
    fn sin(self) -> Self {
        Scalar(self.0.sin())
    }
    #[inline]
    fn cos(self) -> Self {
        Scalar(self.0.cos())
    }
    #[inline]
    fn sigmoid(self) -> Self {
        Scalar(crate::ops::unary::sigmoid_scalar(self.0))
    }
    #[inline]
    fn mul_const_fn(self, x: &Self, f: impl Fn(T) -> T) -> Self {
        Scalar(self.0 * f(x.0))
    }
    #[inline]
    fn const_fn2(&self, other: &Self, f: impl Fn(T, T) -> T) -> Self {
        Scalar(f(self.0, other.0))
    }
    #[inline]
    fn sum_axes(self, _axes: &[usize], _keepdim: bool) -> Self {
        self
    }
    #[inline]
    fn reshape(self, _shape: &[usize]) -> Self {
        self
    }
    #[inline]
    fn permute(self, _axes: &[usize]) -> Self {
        self
    }
    fn broadcast_to(self, _shape: &[usize]) -> Self {
        not_elementwise("broadcast_to")
    }
    fn matmul_nt(self, _other: Self) -> Self {
        not_elementwise("matmul")
    }
    fn matmul_tn(self, _other: Self) -> Self {
        not_elementwise("matmul")
    }
    fn slice(self, _axis: usize, _start: usize, _end: usize) -> Self {
        not_elementwise("slice")
    }
    fn pad_slice(self, _axis: usize, _start: usize, _len: usize) -> Self {
        not_elementwise("pad_slice")
    }
    fn index_select(self, _axis: usize, _indices: &Rc<[usize]>) -> Self {
        not_elementwise("index_select")
    }
    fn index_add(self, _axis: usize, _indices: &Rc<[usize]>, _size: usize) -> Self {
        not_elementwise("index_add")
    }
    fn gather(self, _axis: usize, _index: &Rc<ArrayD<usize>>) -> Self {
        not_elementwise("gather")
    }
    fn scatter_add(self, _axis: usize, _index: &Rc<ArrayD<usize>>, _shape: &[usize]) -> Self {
        not_elementwise("scatter_add")
    }
}

/// The value of an array whose dimensions are all 1 (of any rank, 0 included), or `None`.
#[inline]
pub(crate) fn single<T: Copy>(a: &ArrayD<T>) -> Option<T> {
    if a.shape().iter().all(|&d| d == 1) {
        a.first().copied()
    } else {
        None
    }
}

/// The graph as the one-element path sees it: every value is read as a number.
pub(crate) struct ScalarContext<'a, 't, T> {
    pub(crate) nodes: &'a Nodes<'t, T>,
}

impl<T: Float> RuleContext<Scalar<T>> for ScalarContext<'_, '_, T> {
    #[inline]
    fn value(&self, index: usize) -> Scalar<T> {
        Scalar(
            self.nodes[index]
                .value
                .one()
                .expect("the one-element path reads one-element values"),
        )
    }
    #[inline]
    fn shape(&self, _index: usize) -> SmallVec<[usize; 4]> {
        // `sum_to` ignores the shape on this path.
        SmallVec::new()
    }
    #[inline]
    fn needs(&self, index: usize) -> bool {
        self.nodes[index].requires_grad
    }
}
