//! [`Operand`] and [`Structural`] for [`Var`]: every step of a rule is recorded, so the
//! gradients it builds can be differentiated again.

use super::{Arr, Operand, Structural, unbroadcast};
use crate::kernels::Dims;
use crate::kernels::conv2d::Conv2dGeometry;
use crate::kernels::elementwise::same;
use crate::kernels::pool::{Pooled, Shared, SharedList};
use crate::kernels::pool2d::Pool2dGeometry;
use crate::ops::{avg_pool2d, conv2d, gather, index_select, matmul, permute, slice, solve, sum};
use crate::{Float, Var};

impl<'t, T: Float> Operand<T> for Var<'t, T> {
    fn add(self, other: Self) -> Self {
        self + other
    }
    fn sub(self, other: Self) -> Self {
        self - other
    }
    fn mul(self, other: Self) -> Self {
        self * other
    }
    fn div(self, other: Self) -> Self {
        self / other
    }
    fn neg(self) -> Self {
        -self
    }
    fn scale(self, s: T) -> Self {
        self.mul_scalar(s)
    }
    fn add_scalar(self, s: T) -> Self {
        Var::add_scalar(self, s)
    }
    fn powf(self, p: T) -> Self {
        Var::powf(self, p)
    }
    fn powi(self, n: i32) -> Self {
        Var::powi(self, n)
    }
    fn exp(self) -> Self {
        Var::exp(self)
    }
    fn sin(self) -> Self {
        Var::sin(self)
    }
    fn cos(self) -> Self {
        Var::cos(self)
    }
    fn sigmoid(self) -> Self {
        Var::sigmoid(self)
    }
    fn mul_const_fn(self, x: &Self, f: impl Fn(T) -> T + Sync) -> Self {
        let mask = x.value().mapv(f);
        self * self.tape.constant(mask)
    }
    fn const_fn2(&self, other: &Self, f: impl Fn(T, T) -> T + Sync) -> Self {
        let value = self.with_arr(|a| other.with_arr(|b| a.zip(b, "compare", f).into_owned()));
        self.tape.constant(value)
    }
    fn sum_to(self, shape: &[usize]) -> Self {
        unbroadcast(self, shape)
    }
}

impl<'t, T: Float> Structural<T> for Var<'t, T> {
    fn shape_vec(&self) -> Dims {
        Dims::from_slice(&self.shape())
    }
    fn has_shape(&self, shape: &[usize]) -> bool {
        same(self.value().shape(), shape)
    }
    fn sum_axes(self, axes: &[usize], keepdim: bool) -> Self {
        sum::record(self, axes, keepdim)
    }
    fn reshape(self, shape: &[usize]) -> Self {
        Var::reshape(self, shape)
    }
    fn permute(self, axes: &[usize]) -> Self {
        permute::record(self, axes)
    }
    fn broadcast_to(self, shape: &[usize]) -> Self {
        Var::broadcast_to(self, shape)
    }
    fn matmul_nt(self, other: Self) -> Self {
        matmul::record(self, other.transpose(-2, -1))
    }
    fn matmul_tn(self, other: Self) -> Self {
        matmul::record(self.transpose(-2, -1), other)
    }
    fn solve_tn(self, b: Self) -> Self {
        solve::record(self.transpose(-2, -1), b)
    }
    fn slice(self, axis: usize, start: usize, end: usize) -> Self {
        slice::record(self, axis, start, end)
    }
    fn pad(self, axis: usize, start: usize, len: usize) -> Self {
        slice::record_pad(self, axis, start, len)
    }
    fn index_select(self, axis: usize, indices: &SharedList) -> Self {
        index_select::record(self, axis, indices.clone())
    }
    fn index_add(self, axis: usize, indices: &SharedList, size: usize) -> Self {
        index_select::record_index_add(self, axis, indices.clone(), size)
    }
    fn gather(self, axis: usize, index: &Shared<Pooled<usize>>) -> Self {
        gather::record(self, axis, index.clone())
    }
    fn scatter_add(self, axis: usize, index: &Shared<Pooled<usize>>, shape: &[usize]) -> Self {
        gather::record_scatter_add(self, axis, index.clone(), shape)
    }
    fn conv2d(&self, weight: &Self, geometry: &Shared<Conv2dGeometry>) -> Self {
        conv2d::record(*self, *weight, geometry.clone())
    }
    fn conv2d_input_grad(&self, weight: &Self, geometry: &Shared<Conv2dGeometry>) -> Self {
        conv2d::record_input_grad(*self, *weight, geometry.clone())
    }
    fn conv2d_weight_grad(&self, grad: &Self, geometry: &Shared<Conv2dGeometry>) -> Self {
        conv2d::record_weight_grad(*self, *grad, geometry.clone())
    }
    fn avg_pool2d(self, geometry: &Shared<Pool2dGeometry>, count_include_pad: bool) -> Self {
        avg_pool2d::record(self, geometry.clone(), count_include_pad)
    }
    fn avg_pool2d_adjoint(
        self,
        geometry: &Shared<Pool2dGeometry>,
        count_include_pad: bool,
    ) -> Self {
        avg_pool2d::record_adjoint(self, geometry.clone(), count_include_pad)
    }
}

impl<T: Float> Var<'_, T> {
    /// Runs `f` on the value as an array operand (a borrowed view).
    pub(crate) fn with_arr<R>(&self, f: impl FnOnce(Arr<'_, T>) -> R) -> R {
        let nodes = self.tape.nodes();
        f(Arr::Ref(nodes[self.index].value.array()))
    }
}
