//! Elementwise kernels: maps of one array and zips of two, broadcasting, in place when
//! the caller owns a buffer of the result's shape.

use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};

use crate::Float;

/// Elementwise work above this many elements is split across threads.
pub(crate) const PARALLEL_THRESHOLD: usize = 1 << 16;

/// Slice equality without a `memcmp` call (shapes and strides are a few words long).
#[inline]
pub(crate) fn same<A: PartialEq>(a: &[A], b: &[A]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// The value of an array whose dimensions are all 1 (of any rank, 0 included), or `None`.
#[inline]
pub(crate) fn one_element<T: Copy>(a: &ArrayD<T>) -> Option<T> {
    if a.shape().iter().all(|&d| d == 1) {
        a.first().copied()
    } else {
        None
    }
}

/// The logistic function, computed without overflow for large |x|.
#[inline]
pub(crate) fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

/// `a = f(a)` elementwise, threaded above [`PARALLEL_THRESHOLD`].
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

/// `f(v)` elementwise into a new array, threaded above [`PARALLEL_THRESHOLD`].
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
pub(crate) fn zip_inplace<T: Float, S: ndarray::Data<Elem = T>>(
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

/// `f(a, b)` elementwise into a new array, for two operands of one shape.
#[inline]
pub(crate) fn zip_new<T: Float>(
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

/// `a = f(a, b)` where `a` already has the broadcast result's shape `shape`: a flat loop
/// over rows when `b` is a block repeating along leading axes ([`repeating_block`]), a
/// broadcasting iterator otherwise.
#[inline]
pub(crate) fn zip_broadcast_inplace<T: Float>(
    a: &mut ArrayD<T>,
    b: &ArrayD<T>,
    shape: &[usize],
    f: impl Fn(T, T) -> T,
) {
    if let (true, Some(y)) = (a.is_standard_layout(), repeating_block(b, shape)) {
        let x = a.as_slice_mut().expect("standard layout");
        for row in x.chunks_exact_mut(y.len()) {
            row.iter_mut().zip(y).for_each(|(r, &p)| *r = f(*r, p));
        }
        return;
    }
    let b = b.view();
    let b = b.broadcast(IxDyn(shape)).expect("broadcast shape checked");
    a.zip_mut_with(&b, |x, &y| *x = f(*x, y));
}

/// `f(a, b)` into a new array of the broadcast shape `shape`.
#[inline]
pub(crate) fn zip_broadcast_new<T: Float>(
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    shape: &[usize],
    f: impl Fn(T, T) -> T,
) -> ArrayD<T> {
    if let Some(out) = zip_repeating(a, b, shape, &f) {
        return out;
    }
    let (a, b) = (a.view(), b.view());
    let a = a.broadcast(IxDyn(shape)).expect("broadcast shape checked");
    let b = b.broadcast(IxDyn(shape)).expect("broadcast shape checked");
    Zip::from(&a).and(&b).map_collect(|&x, &y| f(x, y))
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
