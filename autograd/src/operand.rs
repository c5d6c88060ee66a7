//! The small algebra backward rules are written in, implemented twice:
//!
//! - by [`Arr`] (plain arrays, borrowed or owned) for ordinary first-order backward: nothing is
//!   recorded, and owned temporaries are updated in place so a rule like
//!   `g * (1 - y²)` allocates once;
//! - by [`Var`] for differentiable gradients ([`Tape::grad`](crate::Tape::grad)): every step
//!   of the rule is itself recorded, so gradients can be differentiated again.
//!
//! Each backward rule in [`crate::ops`] is written once, generically, against [`Operand`]:
//! the calculus is never duplicated between the two modes.

use std::rc::Rc;

use ndarray::{ArrayD, ArrayViewD, Axis, Ix2, IxDyn, Slice, Zip};

use crate::gemm_kernel::{mat_mul_into, mat_mul_new, pair_in_parallel};
use crate::ops::shape::broadcast_shape;
use crate::{Float, Var};

/// The operations backward rules use. Methods that take a function (`mul_const_fn`,
/// `const_fn2`) compute *constants*: masks and signs that are not differentiated further.
pub(crate) trait Operand<T: Float>: Clone + Sized {
    fn shape_vec(&self) -> Vec<usize>;
    /// Whether the shape is `shape` (without allocating).
    fn has_shape(&self, shape: &[usize]) -> bool;
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
    fn mul_const_fn(self, x: &Self, f: impl Fn(T) -> T) -> Self;
    /// The constant `f(self, other)` elementwise, broadcasting.
    fn const_fn2(&self, other: &Self, f: impl Fn(T, T) -> T) -> Self;
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
    fn slice(self, axis: usize, start: usize, end: usize) -> Self;
    fn pad_slice(self, axis: usize, start: usize, len: usize) -> Self;
    fn index_select(self, axis: usize, indices: &Rc<[usize]>) -> Self;
    fn index_add(self, axis: usize, indices: &Rc<[usize]>, size: usize) -> Self;
    fn gather(self, axis: usize, index: &Rc<ArrayD<usize>>) -> Self;
    fn scatter_add(self, axis: usize, index: &Rc<ArrayD<usize>>, shape: &[usize]) -> Self;

    /// `(self.sum_to(a), self.sum_to(b))`: the gradient of a broadcasting sum or difference
    /// sent to both operands.
    fn sum_to_both(self, a: &[usize], b: &[usize]) -> (Self, Self) {
        (self.clone().sum_to(a), self.sum_to(b))
    }

    /// Sums over broadcast axes so the result has `shape` (the one unbroadcast helper every
    /// broadcasting op's backward uses).
    fn sum_to(self, shape: &[usize]) -> Self {
        if self.has_shape(shape) {
            return self;
        }
        let current = self.shape_vec();
        let lead = current.len() - shape.len();
        // Every axis the target has as 1 is summed, even where `self` is 1 there too (a sum
        // over it changes nothing): a one-element target then sums every axis, in one pass.
        let axes: Vec<usize> = (0..current.len())
            .filter(|&i| i < lead || shape[i - lead] == 1)
            .collect();
        self.sum_axes(&axes, true).reshape(shape)
    }
}

/// An array operand: a borrowed view of a recorded value, or an owned temporary that
/// later steps may overwrite in place.
pub(crate) enum Arr<'a, T> {
    Ref(&'a ArrayD<T>),
    Owned(ArrayD<T>),
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

    #[inline]
    pub(crate) fn into_owned(self) -> ArrayD<T> {
        match self {
            Arr::Ref(a) => a.clone(),
            Arr::Owned(a) => a,
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
            Arr::Ref(a) => Arr::Owned(map_new(&a.view(), f)),
        }
    }

    /// `f(a, b)` elementwise with broadcasting, reusing an owned operand's buffer when it
    /// already has the result's shape.
    #[track_caller]
    #[inline]
    pub(crate) fn zip(self, other: Arr<'_, T>, op: &str, f: impl Fn(T, T) -> T) -> Self {
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
                        let mut a = a.clone();
                        zip_inplace(&mut a, b, &f);
                        Arr::Owned(a)
                    } else {
                        Arr::Owned(zip_new(&a.view(), &b.view(), f))
                    }
                }
            }
        } else {
            let shape = broadcast_shape(op, self.shape(), other.shape());
            // The common broadcast (a bias over a batch, a scalar over an array): one
            // operand has the result's shape and the other repeats along leading axes.
            match self {
                Arr::Owned(mut a) if same(a.shape(), &shape) => {
                    if let (true, Some(y)) = (
                        a.is_standard_layout(),
                        repeating_block(other.array(), &shape),
                    ) {
                        let x = a.as_slice_mut().expect("standard layout");
                        for row in x.chunks_exact_mut(y.len()) {
                            row.iter_mut().zip(y).for_each(|(r, &p)| *r = f(*r, p));
                        }
                        return Arr::Owned(a);
                    }
                    let b = other.view();
                    let b = b.broadcast(IxDyn(&shape)).expect("broadcast shape checked");
                    a.zip_mut_with(&b, |x, &y| *x = f(*x, y));
                    Arr::Owned(a)
                }
                a => {
                    if let Some(out) = zip_repeating(a.array(), other.array(), &shape, &f) {
                        return Arr::Owned(out);
                    }
                    let (a, b) = (a.view(), other.view());
                    let a = a.broadcast(IxDyn(&shape)).expect("broadcast shape checked");
                    let b = b.broadcast(IxDyn(&shape)).expect("broadcast shape checked");
                    Arr::Owned(Zip::from(&a).and(&b).map_collect(|&x, &y| f(x, y)))
                }
            }
        }
    }

    #[track_caller]
    pub(crate) fn sum_axes_impl(self, axes: &[usize], keepdim: bool) -> Self {
        let ndim = self.shape().len();
        for &axis in axes {
            assert!(
                axis < ndim,
                "sum: axis {axis} is out of range for shape {:?}",
                self.shape()
            );
        }
        if axes.len() == ndim {
            let total = match &self {
                Arr::Ref(a) => sum_all(&a.view()),
                Arr::Owned(a) => sum_all(&a.view()),
            };
            let shape: Vec<usize> = if keepdim { vec![1; ndim] } else { vec![] };
            return Arr::Owned(ArrayD::from_elem(IxDyn(&shape), total));
        }
        let mut sorted: Vec<usize> = axes.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.is_empty() {
            return Arr::Owned(self.into_owned());
        }
        let shape = self.shape().to_vec();
        // Reduce each run of adjacent axes, last run first, with a contiguous kernel; the
        // reduced axes stay as 1s until the end.
        let mut out = sum_run(
            &self.view().as_standard_layout().view(),
            &shape,
            run_of(&sorted, sorted.len() - 1),
        );
        let mut end = run_of(&sorted, sorted.len() - 1).0;
        while end > 0 {
            let run = run_of(&sorted[..end], end - 1);
            let current = out.shape().to_vec();
            out = sum_run(&out.view(), &current, run);
            end = run.0;
        }
        let kept: Vec<usize> = if keepdim {
            out.shape().to_vec()
        } else {
            (0..ndim)
                .filter(|i| sorted.binary_search(i).is_err())
                .map(|i| shape[i])
                .collect()
        };
        Arr::Owned(
            out.into_shape_with_order(IxDyn(&kept))
                .expect("same element count"),
        )
    }

    #[track_caller]
    pub(crate) fn reshape_impl(self, shape: &[usize]) -> Self {
        let from: usize = self.shape().iter().product();
        let to: usize = shape.iter().product();
        assert!(
            from == to,
            "reshape: cannot reshape shape {:?} ({from} elements) into shape {shape:?} ({to} elements)",
            self.shape()
        );
        match self {
            Arr::Owned(a) if a.is_standard_layout() => Arr::Owned(
                a.into_shape_with_order(IxDyn(shape))
                    .expect("element count checked"),
            ),
            other => {
                let v = other.view();
                Arr::Owned(
                    v.to_shape(IxDyn(shape))
                        .expect("element count checked")
                        .into_owned(),
                )
            }
        }
    }

    #[track_caller]
    pub(crate) fn broadcast_to_impl(self, shape: &[usize]) -> Self {
        if let Some(x) = crate::scalar::single(self.array())
            && shape.len() >= self.shape().len()
        {
            return Arr::Owned(ArrayD::from_elem(IxDyn(shape), x));
        }
        let v = self.view();
        match v.broadcast(IxDyn(shape)) {
            Some(b) => Arr::Owned(b.to_owned()),
            None => panic!(
                "broadcast_to: shape {:?} cannot be broadcast to shape {shape:?}",
                self.shape()
            ),
        }
    }

    pub(crate) fn permute_impl(self, axes: &[usize]) -> Self {
        match self {
            Arr::Owned(a) => Arr::Owned(a.permuted_axes(IxDyn(axes))),
            Arr::Ref(a) => Arr::Owned(a.view().permuted_axes(IxDyn(axes)).to_owned()),
        }
    }

    pub(crate) fn slice_impl(self, axis: usize, start: usize, end: usize) -> Self {
        let v = self.view();
        Arr::Owned(v.slice_axis(Axis(axis), Slice::from(start..end)).to_owned())
    }

    pub(crate) fn pad_slice_impl(self, axis: usize, start: usize, len: usize) -> Self {
        let v = self.view();
        let mut shape = v.shape().to_vec();
        let width = shape[axis];
        shape[axis] = len;
        let mut out = ArrayD::zeros(IxDyn(&shape));
        out.slice_axis_mut(Axis(axis), Slice::from(start..start + width))
            .assign(&v);
        Arr::Owned(out)
    }

    pub(crate) fn index_select_impl(self, axis: usize, indices: &[usize]) -> Self {
        Arr::Owned(self.view().select(Axis(axis), indices))
    }

    pub(crate) fn index_add_impl(self, axis: usize, indices: &[usize], size: usize) -> Self {
        let v = self.view();
        let mut shape = v.shape().to_vec();
        shape[axis] = size;
        let mut out = ArrayD::zeros(IxDyn(&shape));
        for (k, &i) in indices.iter().enumerate() {
            let mut row = out.index_axis_mut(Axis(axis), i);
            row += &v.index_axis(Axis(axis), k);
        }
        Arr::Owned(out)
    }

    pub(crate) fn gather_impl(self, axis: usize, index: &ArrayD<usize>) -> Self {
        let v = self.view();
        Arr::Owned(ArrayD::from_shape_fn(index.raw_dim(), |pos| {
            let mut source = pos.clone();
            source[axis] = index[&pos];
            v[source]
        }))
    }

    pub(crate) fn scatter_add_impl(
        self,
        axis: usize,
        index: &ArrayD<usize>,
        shape: &[usize],
    ) -> Self {
        let v = self.view();
        let mut out = ArrayD::zeros(IxDyn(shape));
        for (pos, &i) in index.indexed_iter() {
            let mut target = pos.clone();
            target[axis] = i;
            out[target] += v[pos];
        }
        Arr::Owned(out)
    }

    /// Matrix product over the last two axes, broadcasting batch axes; either operand may
    /// be a transposed view (no copy for 2-D).
    #[track_caller]
    pub(crate) fn matmul_views(a: ArrayViewD<'_, T>, b: ArrayViewD<'_, T>) -> ArrayD<T> {
        assert!(
            a.ndim() >= 2 && b.ndim() >= 2,
            "matmul: the batched kernel needs two operands of at least 2 dimensions, got shapes {:?} and {:?}",
            a.shape(),
            b.shape()
        );
        let (ra, rb) = (a.ndim(), b.ndim());
        let (m, k) = (a.shape()[ra - 2], a.shape()[ra - 1]);
        let (k2, n) = (b.shape()[rb - 2], b.shape()[rb - 1]);
        assert!(
            k == k2,
            "matmul: shapes {:?} and {:?} are incompatible (inner dimensions {k} and {k2} differ)",
            a.shape(),
            b.shape()
        );
        if ra == 2 && rb == 2 {
            let a2 = a.into_dimensionality::<Ix2>().expect("2-D");
            let b2 = b.into_dimensionality::<Ix2>().expect("2-D");
            return mat_mul_new(&a2, &b2).into_dyn();
        }
        let batch = broadcast_shape("matmul", &a.shape()[..ra - 2], &b.shape()[..rb - 2]);
        let count: usize = batch.iter().product();
        let with = |tail: [usize; 2]| -> Vec<usize> {
            let mut s = batch.clone();
            s.extend_from_slice(&tail);
            s
        };
        let a_b = a
            .broadcast(IxDyn(&with([m, k])))
            .expect("batch shapes checked");
        let b_b = b
            .broadcast(IxDyn(&with([k, n])))
            .expect("batch shapes checked");
        let a3 = a_b.to_shape((count, m, k)).expect("same element count");
        let b3 = b_b.to_shape((count, k, n)).expect("same element count");
        let mut out = ndarray::Array3::<T>::zeros((count, m, n));
        for i in 0..count {
            mat_mul_into(
                &a3.index_axis(Axis(0), i),
                &b3.index_axis(Axis(0), i),
                &mut out.index_axis_mut(Axis(0), i),
            );
        }
        out.into_shape_with_order(IxDyn(&with([m, n])))
            .expect("same element count")
    }
}

fn swap_last_two<T>(v: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
    let nd = v.ndim();
    let mut v = v;
    v.swap_axes(nd - 1, nd - 2);
    v
}

/// Elementwise work above this many elements is split across threads.
pub(crate) const PARALLEL_THRESHOLD: usize = 1 << 16;

/// Slice equality without a `memcmp` call (shapes and strides are a few words long).
#[inline]
pub(crate) fn same<A: PartialEq>(a: &[A], b: &[A]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// The elements of `part` if it is a contiguous block that repeats along the leading axes
/// of `shape` (its shape without leading 1s is a suffix of `shape`) and is not empty.
fn repeating_block<'a, T>(part: &'a ArrayD<T>, shape: &[usize]) -> Option<&'a [T]> {
    let s = part.shape();
    let trimmed = &s[s.iter().take_while(|&&d| d == 1).count()..];
    if !shape.ends_with(trimmed) {
        return None;
    }
    part.as_slice().filter(|y| !y.is_empty())
}

/// `f(a, b)` when one operand has the result's shape and the other repeats along its
/// leading axes ([`repeating_block`]): a flat loop over rows instead of a broadcasting
/// iterator. `None` when the operands do not have that form.
fn zip_repeating<T: Float>(
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    shape: &[usize],
    f: &impl Fn(T, T) -> T,
) -> Option<ArrayD<T>> {
    let mut out = Vec::with_capacity(shape.iter().product());
    if same(a.shape(), shape) {
        let (x, y) = (a.as_slice()?, repeating_block(b, shape)?);
        for row in x.chunks_exact(y.len()) {
            out.extend(row.iter().zip(y).map(|(&r, &p)| f(r, p)));
        }
    } else if same(b.shape(), shape) {
        let (x, y) = (b.as_slice()?, repeating_block(a, shape)?);
        for row in x.chunks_exact(y.len()) {
            out.extend(row.iter().zip(y).map(|(&r, &p)| f(p, r)));
        }
    } else {
        return None;
    }
    Some(ArrayD::from_shape_vec(IxDyn(shape), out).expect("element count matches"))
}

/// The run of adjacent axes of `sorted` (sorted, deduplicated) that ends at position
/// `last`: its first position in `sorted`, and its first and last axis.
fn run_of(sorted: &[usize], last: usize) -> (usize, usize, usize) {
    let mut first = last;
    while first > 0 && sorted[first - 1] + 1 == sorted[first] {
        first -= 1;
    }
    (first, sorted[first], sorted[last])
}

/// Sums a standard-layout array over the adjacent axes `from..=to` of `run`, keeping them
/// as 1s: the array is read as `(outer, reduced, inner)` and each reduced row of `inner`
/// contiguous elements is added into its output row (a loop that vectorises, with no
/// temporary per row).
fn sum_run<T: Float>(
    a: &ArrayViewD<'_, T>,
    shape: &[usize],
    (_, from, to): (usize, usize, usize),
) -> ArrayD<T> {
    let data = a.as_slice().expect("standard layout");
    let outer: usize = shape[..from].iter().product();
    let reduced: usize = shape[from..=to].iter().product();
    let inner: usize = shape[to + 1..].iter().product();
    let mut out = vec![T::zero(); outer * inner];
    if out.is_empty() {
        // Nothing to sum into.
    } else if inner == 1 {
        for (o, total) in out.iter_mut().enumerate() {
            *total = data[o * reduced..(o + 1) * reduced].iter().copied().sum();
        }
    } else {
        for (o, row_out) in out.chunks_exact_mut(inner).enumerate() {
            let block = &data[o * reduced * inner..(o + 1) * reduced * inner];
            for row in block.chunks_exact(inner) {
                row_out.iter_mut().zip(row).for_each(|(t, &x)| *t += x);
            }
        }
    }
    let mut kept = shape.to_vec();
    kept[from..=to].iter_mut().for_each(|d| *d = 1);
    ArrayD::from_shape_vec(IxDyn(&kept), out).expect("element count matches")
}

#[inline]
/// The sum of every element of `v`.
pub(crate) fn sum_all<T: Float>(v: &ArrayViewD<'_, T>) -> T {
    match v.as_slice() {
        Some(s) => s.iter().copied().sum(),
        None => v.iter().copied().sum(),
    }
}

#[inline]
pub(crate) fn map_inplace<T: Float>(a: &mut ArrayD<T>, f: impl Fn(T) -> T + Sync + Send) {
    if let Some(s) = a.as_slice_mut() {
        if s.len() >= PARALLEL_THRESHOLD {
            use rayon::prelude::*;
            s.par_chunks_mut(1 << 14)
                .for_each(|c| c.iter_mut().for_each(|x| *x = f(*x)));
        } else {
            s.iter_mut().for_each(|x| *x = f(*x));
        }
    } else {
        a.mapv_inplace(f);
    }
}

#[inline]
pub(crate) fn map_new<T: Float>(
    v: &ArrayViewD<'_, T>,
    f: impl Fn(T) -> T + Sync + Send,
) -> ArrayD<T> {
    if let Some(s) = v.as_slice() {
        if s.len() >= PARALLEL_THRESHOLD {
            use rayon::prelude::*;
            let out: Vec<T> = s.par_iter().map(|&x| f(x)).collect();
            return ArrayD::from_shape_vec(v.raw_dim(), out).expect("same element count");
        }
        let out: Vec<T> = s.iter().map(|&x| f(x)).collect();
        return ArrayD::from_shape_vec(v.raw_dim(), out).expect("same element count");
    }
    v.mapv(f)
}

/// `a = f(a, b)` elementwise for arrays of one shape; a plain slice loop when both have the
/// same memory layout.
#[inline]
fn zip_inplace<T: Float, S: ndarray::Data<Elem = T>>(
    a: &mut ArrayD<T>,
    b: &ndarray::ArrayBase<S, IxDyn>,
    f: impl Fn(T, T) -> T,
) {
    if let (Some(sb), true) = (b.as_slice(), a.is_standard_layout()) {
        let sa = a.as_slice_mut().expect("standard layout");
        sa.iter_mut().zip(sb).for_each(|(x, &y)| *x = f(*x, y));
        return;
    }
    a.zip_mut_with(b, |x, &y| *x = f(*x, y));
}

/// `total += g` for two arrays of one shape (gradient accumulation).
#[inline]
pub(crate) fn add_assign<T: Float>(total: &mut ArrayD<T>, g: &ArrayD<T>) {
    zip_inplace(total, g, |a, b| a + b);
}

#[inline]
fn zip_new<T: Float>(
    a: &ArrayViewD<'_, T>,
    b: &ArrayViewD<'_, T>,
    f: impl Fn(T, T) -> T,
) -> ArrayD<T> {
    if let (Some(sa), Some(sb)) = (a.as_slice(), b.as_slice()) {
        let out: Vec<T> = sa.iter().zip(sb).map(|(&x, &y)| f(x, y)).collect();
        return ArrayD::from_shape_vec(a.raw_dim(), out).expect("same element count");
    }
    Zip::from(a).and(b).map_collect(|&x, &y| f(x, y))
}

impl<T: Float> Operand<T> for Arr<'_, T> {
    fn shape_vec(&self) -> Vec<usize> {
        self.shape().to_vec()
    }
    #[inline]
    fn has_shape(&self, shape: &[usize]) -> bool {
        same(self.shape(), shape)
    }
    fn add(self, other: Self) -> Self {
        self.zip(other, "add", |a, b| a + b)
    }
    fn sub(self, other: Self) -> Self {
        self.zip(other, "sub", |a, b| a - b)
    }
    fn mul(self, other: Self) -> Self {
        self.zip(other, "mul", |a, b| a * b)
    }
    fn div(self, other: Self) -> Self {
        self.zip(other, "div", |a, b| a / b)
    }
    fn neg(self) -> Self {
        self.map(|a| -a)
    }
    fn scale(self, s: T) -> Self {
        self.map(move |a| a * s)
    }
    fn add_scalar(self, s: T) -> Self {
        self.map(move |a| a + s)
    }
    fn powf(self, p: T) -> Self {
        self.map(move |a| a.powf(p))
    }
    fn powi(self, n: i32) -> Self {
        self.map(move |a| a.powi(n))
    }
    fn exp(self) -> Self {
        self.map(|a| a.exp())
    }
    fn sin(self) -> Self {
        self.map(|a| a.sin())
    }
    fn cos(self) -> Self {
        self.map(|a| a.cos())
    }
    fn sigmoid(self) -> Self {
        self.map(crate::ops::unary::sigmoid_scalar)
    }
    fn mul_const_fn(self, x: &Self, f: impl Fn(T) -> T) -> Self {
        self.zip(x.borrowed(), "mul", |g, x| g * f(x))
    }
    fn const_fn2(&self, other: &Self, f: impl Fn(T, T) -> T) -> Self {
        self.borrowed()
            .zip(other.borrowed(), "compare", f)
            .into_static()
    }
    fn sum_axes(self, axes: &[usize], keepdim: bool) -> Self {
        self.sum_axes_impl(axes, keepdim)
    }
    fn reshape(self, shape: &[usize]) -> Self {
        self.reshape_impl(shape)
    }
    fn permute(self, axes: &[usize]) -> Self {
        self.permute_impl(axes)
    }
    fn broadcast_to(self, shape: &[usize]) -> Self {
        self.broadcast_to_impl(shape)
    }
    fn matmul_nt(self, other: Self) -> Self {
        Arr::Owned(Arr::matmul_views(self.view(), swap_last_two(other.view())))
    }
    fn matmul_tn(self, other: Self) -> Self {
        Arr::Owned(Arr::matmul_views(swap_last_two(self.view()), other.view()))
    }
    /// Without copying the gradient: the operand that needs a reduction is summed from a
    /// view, the other takes the gradient itself (a bias added over a batch: the batch's
    /// gradient is no longer copied).
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
    /// The two products run side by side when each is small enough for one thread but
    /// together they are worth two (`pair_in_parallel`: e.g. two products of 0.79 M
    /// multiply-adds).
    fn matmul_grads(g: Self, a: Self, b: Self) -> (Self, Self) {
        let (gv, av, bv) = (g.view(), a.view(), b.view());
        let k = av.shape().last().copied().unwrap_or(0);
        if pair_in_parallel(gv.len() * k) {
            let (ga, gb) = crate::fork_join::join(
                || Arr::matmul_views(gv.view(), swap_last_two(bv.view())),
                || Arr::matmul_views(swap_last_two(av.view()), gv.view()),
            );
            return (Arr::Owned(ga), Arr::Owned(gb));
        }
        (
            Arr::Owned(Arr::matmul_views(gv.view(), swap_last_two(bv))),
            Arr::Owned(Arr::matmul_views(swap_last_two(av), gv)),
        )
    }
    fn slice(self, axis: usize, start: usize, end: usize) -> Self {
        self.slice_impl(axis, start, end)
    }
    fn pad_slice(self, axis: usize, start: usize, len: usize) -> Self {
        self.pad_slice_impl(axis, start, len)
    }
    fn index_select(self, axis: usize, indices: &Rc<[usize]>) -> Self {
        self.index_select_impl(axis, indices)
    }
    fn index_add(self, axis: usize, indices: &Rc<[usize]>, size: usize) -> Self {
        self.index_add_impl(axis, indices, size)
    }
    fn gather(self, axis: usize, index: &Rc<ArrayD<usize>>) -> Self {
        self.gather_impl(axis, index)
    }
    fn scatter_add(self, axis: usize, index: &Rc<ArrayD<usize>>, shape: &[usize]) -> Self {
        self.scatter_add_impl(axis, index, shape)
    }
}

impl<'a, T: Float> Arr<'a, T> {
    /// An owned result re-labelled with any lifetime.
    fn into_static<'b>(self) -> Arr<'b, T> {
        Arr::Owned(self.into_owned())
    }
}

impl<'t, T: Float> Operand<T> for Var<'t, T> {
    fn shape_vec(&self) -> Vec<usize> {
        self.shape()
    }
    fn has_shape(&self, shape: &[usize]) -> bool {
        self.with_value(|a| same(a.shape(), shape))
    }
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
    fn mul_const_fn(self, x: &Self, f: impl Fn(T) -> T) -> Self {
        let mask = x.with_value(|v| v.mapv(f));
        self * self.tape.constant(mask)
    }
    fn const_fn2(&self, other: &Self, f: impl Fn(T, T) -> T) -> Self {
        let value = self.with_arr(|a| other.with_arr(|b| a.zip(b, "compare", f).into_owned()));
        self.tape.constant(value)
    }
    fn sum_axes(self, axes: &[usize], keepdim: bool) -> Self {
        self.sum_axes_usize(axes, keepdim)
    }
    fn reshape(self, shape: &[usize]) -> Self {
        Var::reshape(self, shape)
    }
    fn permute(self, axes: &[usize]) -> Self {
        self.permute_usize(axes)
    }
    fn broadcast_to(self, shape: &[usize]) -> Self {
        Var::broadcast_to(self, shape)
    }
    fn matmul_nt(self, other: Self) -> Self {
        self.matmul_batched(other.transpose(-2, -1))
    }
    fn matmul_tn(self, other: Self) -> Self {
        self.transpose(-2, -1).matmul_batched(other)
    }
    fn slice(self, axis: usize, start: usize, end: usize) -> Self {
        Var::slice(self, axis as isize, start, end)
    }
    fn pad_slice(self, axis: usize, start: usize, len: usize) -> Self {
        self.pad_slice_var(axis, start, len)
    }
    fn index_select(self, axis: usize, indices: &Rc<[usize]>) -> Self {
        self.index_select_rc(axis, indices.clone())
    }
    fn index_add(self, axis: usize, indices: &Rc<[usize]>, size: usize) -> Self {
        self.index_add_var(axis, indices.clone(), size)
    }
    fn gather(self, axis: usize, index: &Rc<ArrayD<usize>>) -> Self {
        self.gather_rc(axis, index.clone())
    }
    fn scatter_add(self, axis: usize, index: &Rc<ArrayD<usize>>, shape: &[usize]) -> Self {
        self.scatter_add_var(axis, index.clone(), shape)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, ArrayView2};

    use super::Arr;

    fn naive(a: &ArrayView2<'_, f64>, b: &ArrayView2<'_, f64>) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols()).map(|p| a[[i, p]] * b[[p, j]]).sum()
        })
    }

    #[test]
    fn matmul_views_match_the_naive_product_on_both_sides_of_the_small_size_cutoff() {
        // (2, 3, 4) and (6, 1, 1) take the textbook loop; (20, 30, 10) the GEMM kernel.
        for &(m, k, n) in &[(2, 3, 4), (6, 1, 1), (1, 1, 1), (20, 30, 10), (0, 3, 2)] {
            let a = Array2::from_shape_fn((m, k), |(i, j)| (i * 7 + j * 3) as f64 * 0.1 - 1.0);
            let b = Array2::from_shape_fn((k, n), |(i, j)| (i * 5 + j * 2) as f64 * 0.2 - 0.7);
            let (at, bt) = (a.t().to_owned(), b.t().to_owned());
            let want = naive(&a.view(), &b.view());
            // Plain, and with either operand a transposed view of a stored transpose.
            for (x, y) in [
                (a.view(), b.view()),
                (at.t(), b.view()),
                (a.view(), bt.t()),
                (at.t(), bt.t()),
            ] {
                let got = Arr::matmul_views(x.into_dyn(), y.into_dyn());
                assert_eq!(got.shape(), &[m, n]);
                let err = (&got - &want.view().into_dyn())
                    .iter()
                    .fold(0.0_f64, |e, d| e.max(d.abs()));
                assert!(err < 1e-9, "({m}, {k}, {n}): error {err}");
            }
        }
    }
}
