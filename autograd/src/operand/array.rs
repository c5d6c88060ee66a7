//! [`Arr`]: the [`Operand`] of plain arrays, for first-order backward and for the forward
//! values of ops. It picks the kernel ([`crate::kernels`]) and reuses an owned operand's
//! buffer where the result has its shape. An owned operand is [`Pooled`]: a temporary the
//! rule is done with goes back to the buffer pool.

use ndarray::{ArrayD, ArrayView4, ArrayViewD, Ix4, IxDyn};

use super::{Operand, Structural, unbroadcast};
use crate::Float;
use crate::graph::{BinaryOp, UnaryOp};
use crate::kernels::Dims;
use crate::kernels::conv2d::{
    Conv2dGeometry, conv2d_forward, conv2d_input_grad, conv2d_weight_grad,
};
use crate::kernels::elementwise::{
    map_inplace, map_new, one_element, same, zip_broadcast_inplace, zip_broadcast_new, zip_inplace,
    zip_new,
};
use crate::kernels::fork_join::join;
use crate::kernels::gemm::pair_in_parallel;
use crate::kernels::matmul::{matmul, matmul_fill, product_len, swap_last_two};
use crate::kernels::movement::{self, broadcast_shape, standard_copy};
use crate::kernels::pool::{self, Pooled, Shared, SharedList, copy, filled};
use crate::kernels::pool2d::{Pool2dGeometry, avg_pool2d_backward, avg_pool2d_forward};
use crate::kernels::solve::solve;
use crate::kernels::{index, reduce};

/// An array operand: a borrowed view of a recorded value, or an owned temporary that
/// later steps may overwrite in place (and that goes back to the pool when dropped).
pub(crate) enum Arr<'a, T> {
    Ref(&'a ArrayD<T>),
    Owned(Pooled<T>),
}

impl<T: Clone> Clone for Arr<'_, T> {
    fn clone(&self) -> Self {
        match self {
            Arr::Ref(a) => Arr::Ref(a),
            Arr::Owned(a) => Arr::Owned(a.clone()),
        }
    }
}

impl<'a, T: Float> Arr<'a, T> {
    /// An owned operand.
    #[inline]
    pub(crate) fn owned(a: ArrayD<T>) -> Self {
        Arr::Owned(Pooled::new(a))
    }

    #[inline]
    pub(crate) fn view(&self) -> ArrayViewD<'_, T> {
        match self {
            Arr::Ref(a) => a.view(),
            Arr::Owned(a) => a.view(),
        }
    }

    /// The array, borrowed.
    #[inline]
    pub(crate) fn array(&self) -> &ArrayD<T> {
        match self {
            Arr::Ref(a) => a,
            Arr::Owned(a) => a,
        }
    }

    /// A borrowing operand of the same array.
    #[inline]
    pub(crate) fn borrowed(&self) -> Arr<'_, T> {
        match self {
            Arr::Ref(a) => Arr::Ref(a),
            Arr::Owned(a) => Arr::Ref(a),
        }
    }

    #[inline]
    pub(crate) fn shape(&self) -> &[usize] {
        match self {
            Arr::Ref(a) => a.shape(),
            Arr::Owned(a) => a.shape(),
        }
    }

    /// The array, owned: copied (into a pooled buffer) if borrowed.
    #[inline]
    pub(crate) fn into_owned(self) -> ArrayD<T> {
        match self {
            Arr::Ref(a) => copy(a),
            Arr::Owned(a) => a.into_array(),
        }
    }

    /// `f` elementwise, in place when the array is owned.
    #[inline]
    pub(crate) fn map(self, f: impl Fn(T) -> T + Sync + Send) -> Self {
        match self {
            Arr::Owned(mut a) => {
                map_inplace(&mut a, f);
                Arr::Owned(a)
            }
            Arr::Ref(a) => Arr::owned(map_new(&a.view(), f)),
        }
    }

    /// `f(a, b)` elementwise with broadcasting, reusing an owned operand's buffer when it
    /// already has the result's shape.
    #[track_caller]
    #[inline]
    pub(crate) fn zip(self, other: Arr<'_, T>, op: &str, f: impl Fn(T, T) -> T + Sync) -> Self {
        if same(self.shape(), other.shape()) {
            match (self, other) {
                (Arr::Owned(mut a), b) => {
                    zip_inplace(&mut a, b.array(), &f);
                    Arr::Owned(a)
                }
                (a, Arr::Owned(mut b)) => {
                    zip_inplace(&mut b, a.array(), |y, x| f(x, y));
                    Arr::Owned(b)
                }
                (Arr::Ref(a), Arr::Ref(b)) => {
                    if a.is_standard_layout() && b.is_standard_layout() {
                        let mut a = copy(a);
                        zip_inplace(&mut a, b, &f);
                        Arr::owned(a)
                    } else {
                        Arr::owned(zip_new(&a.view(), &b.view(), f))
                    }
                }
            }
        } else {
            let shape = broadcast_shape(op, self.shape(), other.shape());
            // The common broadcast (a bias over a batch, a number over an array): one
            // operand has the result's shape and the other repeats along leading axes.
            match self {
                Arr::Owned(mut a) if same(a.shape(), &shape) => {
                    zip_broadcast_inplace(&mut a, other.array(), &shape, f);
                    Arr::Owned(a)
                }
                a => Arr::owned(zip_broadcast_new(a.array(), other.array(), &shape, f)),
            }
        }
    }

    /// An owned result re-labelled with any lifetime.
    fn into_static<'b>(self) -> Arr<'b, T> {
        match self {
            Arr::Owned(a) => Arr::Owned(a),
            Arr::Ref(a) => Arr::owned(copy(a)),
        }
    }
}

// The arithmetic of the rules is the primitives' own forward (`BinaryOp::forward`,
// `UnaryOp::map`): the same values, and each elementwise loop compiled once.
impl<T: Float> Operand<T> for Arr<'_, T> {
    fn add(self, other: Self) -> Self {
        BinaryOp::Add.forward(self, other)
    }
    fn sub(self, other: Self) -> Self {
        BinaryOp::Sub.forward(self, other)
    }
    fn mul(self, other: Self) -> Self {
        BinaryOp::Mul.forward(self, other)
    }
    fn div(self, other: Self) -> Self {
        BinaryOp::Div.forward(self, other)
    }
    fn neg(self) -> Self {
        UnaryOp::Neg.map(self)
    }
    fn scale(self, s: T) -> Self {
        UnaryOp::MulScalar(s).map(self)
    }
    fn add_scalar(self, s: T) -> Self {
        UnaryOp::AddScalar(s).map(self)
    }
    fn powf(self, p: T) -> Self {
        UnaryOp::PowF(p).map(self)
    }
    fn powi(self, n: i32) -> Self {
        UnaryOp::PowI(n).map(self)
    }
    fn exp(self) -> Self {
        UnaryOp::Exp.map(self)
    }
    fn sin(self) -> Self {
        UnaryOp::Sin.map(self)
    }
    fn cos(self) -> Self {
        UnaryOp::Cos.map(self)
    }
    fn sigmoid(self) -> Self {
        UnaryOp::Sigmoid.map(self)
    }
    fn mul_const_fn(self, x: &Self, f: impl Fn(T) -> T + Sync) -> Self {
        self.zip(x.borrowed(), "mul", |g, x| g * f(x))
    }
    fn const_fn2(&self, other: &Self, f: impl Fn(T, T) -> T + Sync) -> Self {
        self.borrowed()
            .zip(other.borrowed(), "compare", f)
            .into_static()
    }
    fn sum_to(self, shape: &[usize]) -> Self {
        unbroadcast(self, shape)
    }
    /// Without copying the gradient: the operand that needs a reduction is summed from a
    /// view, the other takes the gradient itself (a bias added over a batch: the batch's
    /// gradient is moved, not copied).
    fn sum_to_both(self, a: &[usize], b: &[usize]) -> (Self, Self) {
        match (self.has_shape(a), self.has_shape(b)) {
            (true, false) => {
                let gb = Arr::Ref(self.array()).sum_to(b).into_static();
                (self, gb)
            }
            (false, true) => {
                let ga = Arr::Ref(self.array()).sum_to(a).into_static();
                (ga, self)
            }
            _ => (self.clone().sum_to(a), self.sum_to(b)),
        }
    }
}

impl<T: Float> Structural<T> for Arr<'_, T> {
    fn shape_vec(&self) -> Dims {
        Dims::from_slice(self.shape())
    }
    #[inline]
    fn has_shape(&self, shape: &[usize]) -> bool {
        same(self.shape(), shape)
    }
    #[track_caller]
    fn sum_axes(self, axes: &[usize], keepdim: bool) -> Self {
        let ndim = self.shape().len();
        for &axis in axes {
            assert!(
                axis < ndim,
                "sum: axis {axis} is out of range for shape {:?}",
                self.shape()
            );
        }
        if axes.is_empty() && ndim > 0 {
            return self.into_static();
        }
        Arr::owned(reduce::sum_axes(&self.view(), axes, keepdim))
    }
    #[track_caller]
    fn reshape(self, shape: &[usize]) -> Self {
        let from: usize = self.shape().iter().product();
        let to: usize = shape.iter().product();
        assert!(
            from == to,
            "reshape: cannot reshape shape {:?} ({from} elements) into shape {shape:?} ({to} elements)",
            self.shape()
        );
        match self {
            Arr::Owned(a) if a.is_standard_layout() => Arr::owned(
                a.into_array()
                    .into_shape_with_order(IxDyn(shape))
                    .expect("element count checked"),
            ),
            other => Arr::owned(
                standard_copy(&other.view())
                    .into_shape_with_order(IxDyn(shape))
                    .expect("element count checked"),
            ),
        }
    }
    fn permute(self, axes: &[usize]) -> Self {
        match self {
            Arr::Owned(a) => Arr::owned(a.into_array().permuted_axes(IxDyn(axes))),
            Arr::Ref(a) if a.is_standard_layout() => Arr::owned(copy(a).permuted_axes(IxDyn(axes))),
            Arr::Ref(a) => Arr::owned(a.view().permuted_axes(IxDyn(axes)).to_owned()),
        }
    }
    #[track_caller]
    fn broadcast_to(self, shape: &[usize]) -> Self {
        if let Some(x) = one_element(self.array())
            && shape.len() >= self.shape().len()
        {
            return Arr::owned(filled(shape, x));
        }
        let v = self.view();
        match v.broadcast(IxDyn(shape)) {
            Some(b) => Arr::owned(standard_copy(&b)),
            None => panic!(
                "broadcast_to: shape {:?} cannot be broadcast to shape {shape:?}",
                self.shape()
            ),
        }
    }
    fn matmul_nt(self, other: Self) -> Self {
        Arr::owned(matmul(self.view(), swap_last_two(other.view())))
    }
    fn matmul_tn(self, other: Self) -> Self {
        Arr::owned(matmul(swap_last_two(self.view()), other.view()))
    }
    /// The two products run side by side when each is small enough for one thread but
    /// together they are worth two ([`pair_in_parallel`]).
    fn matmul_grads(g: Self, a: Self, b: Self) -> (Self, Self) {
        let (gv, av, bv) = (g.view(), a.view(), b.view());
        let k = av.shape().last().copied().unwrap_or(0);
        if pair_in_parallel(gv.len() * k) {
            // Both outputs are taken here, from this thread's pool, where they go back.
            let (bt, at) = (swap_last_two(bv.view()), swap_last_two(av.view()));
            let mut ga = pool::vec(product_len(&gv, &bt));
            let mut gb = pool::vec(product_len(&at, &gv));
            let (ga_shape, gb_shape) = join(
                || matmul_fill(gv.view(), bt.view(), &mut ga),
                || matmul_fill(at.view(), gv.view(), &mut gb),
            );
            let array = |shape: Dims, data| {
                Arr::owned(
                    ArrayD::from_shape_vec(IxDyn(&shape), data).expect("the product's shape"),
                )
            };
            return (array(ga_shape, ga), array(gb_shape, gb));
        }
        (
            Arr::owned(matmul(gv.view(), swap_last_two(bv))),
            Arr::owned(matmul(swap_last_two(av), gv)),
        )
    }
    /// `selfᵀ` as a view with swapped axes: the kernel copies each matrix into its own
    /// buffer anyway, so the transpose costs nothing.
    fn solve_tn(self, b: Self) -> Self {
        Arr::owned(solve(swap_last_two(self.view()), b.view()))
    }
    fn slice(self, axis: usize, start: usize, end: usize) -> Self {
        Arr::owned(movement::slice(&self.view(), axis, start, end))
    }
    fn pad(self, axis: usize, start: usize, len: usize) -> Self {
        Arr::owned(movement::pad(&self.view(), axis, start, len))
    }
    fn index_select(self, axis: usize, indices: &SharedList) -> Self {
        Arr::owned(index::index_select(&self.view(), axis, indices))
    }
    fn index_add(self, axis: usize, indices: &SharedList, size: usize) -> Self {
        Arr::owned(index::index_add(&self.view(), axis, indices, size))
    }
    fn gather(self, axis: usize, index: &Shared<Pooled<usize>>) -> Self {
        Arr::owned(index::gather(&self.view(), axis, index))
    }
    fn scatter_add(self, axis: usize, index: &Shared<Pooled<usize>>, shape: &[usize]) -> Self {
        Arr::owned(index::scatter_add(&self.view(), axis, index, shape))
    }
    fn conv2d(&self, weight: &Self, geometry: &Shared<Conv2dGeometry>) -> Self {
        let y = conv2d_forward(self.view4(), weight.view4(), geometry);
        Arr::owned(y.into_dyn())
    }
    fn conv2d_input_grad(&self, weight: &Self, geometry: &Shared<Conv2dGeometry>) -> Self {
        let x_shape = geometry.input_shape(self.shape()[0]);
        let dx = conv2d_input_grad(self.view4(), weight.view4(), x_shape, geometry);
        Arr::owned(dx.into_dyn())
    }
    fn conv2d_weight_grad(&self, grad: &Self, geometry: &Shared<Conv2dGeometry>) -> Self {
        let dw = conv2d_weight_grad(
            self.view4(),
            grad.view4(),
            geometry.weight_shape(),
            geometry,
        );
        Arr::owned(dw.into_dyn())
    }
    fn avg_pool2d(self, geometry: &Shared<Pool2dGeometry>, count_include_pad: bool) -> Self {
        Arr::owned(avg_pool2d_forward(self.view4(), geometry, count_include_pad).into_dyn())
    }
    fn avg_pool2d_adjoint(
        self,
        geometry: &Shared<Pool2dGeometry>,
        count_include_pad: bool,
    ) -> Self {
        let &[n, c, ..] = self.shape() else {
            panic!("avg_pool2d_adjoint: gradient {:?} is not 4-D", self.shape());
        };
        let [h, w] = geometry.input_hw;
        let dx = avg_pool2d_backward(self.view4(), [n, c, h, w], geometry, count_include_pad);
        Arr::owned(dx.into_dyn())
    }
}

impl<T: Float> Arr<'_, T> {
    /// The operand as a 4-D view (images `[N, C, H, W]` or filters `[O, C, kh, kw]`).
    #[track_caller]
    fn view4(&self) -> ArrayView4<'_, T> {
        self.view()
            .into_dimensionality::<Ix4>()
            .expect("convolution and pooling operands are 4-D")
    }
}
