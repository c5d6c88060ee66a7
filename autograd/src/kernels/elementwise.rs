//! Elementwise kernels: maps of one array and zips of two, broadcasting, in place when
//! the caller owns a buffer of the result's shape.

use std::mem::MaybeUninit;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::fork_join::halves;
use super::movement::standard_copy;
use super::pool;
use crate::Float;

/// Elementwise work from this many elements on is split across two threads.
pub(crate) const PARALLEL_THRESHOLD: usize = 1 << 16;

/// `relu(x)`, NaN propagating as in PyTorch (`f64::max` would turn it into 0). A select
/// with both comparisons always made (`|`, NaN being the value unequal to itself), so an
/// array loop vectorizes: a branch per element mispredicts on the half of a layer's
/// outputs that are negative.
#[inline(always)]
pub(crate) fn relu<T: Float>(x: T) -> T {
    #[allow(clippy::eq_op)]
    let keep = (x > T::zero()) | (x != x);
    if keep { x } else { T::zero() }
}

/// [`relu`] on every element, in place (a kernel's output pass).
pub(crate) fn relu_in_place<T: Float>(ys: &mut [T]) {
    ys.iter_mut().for_each(|y| *y = relu(*y));
}

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

/// `work(start, part)` over `a` in two halves side by side from [`PARALLEL_THRESHOLD`]
/// elements on, over the whole slice below ([`halves`]).
fn in_halves<A: Send>(a: &mut [A], work: impl Fn(usize, &mut [A]) + Sync) {
    halves(a, a.len() >= PARALLEL_THRESHOLD, work);
}

/// A new vector of `len` elements written by `write(start, part)`, `part` being its
/// elements `start..start + part.len()` (uninitialised), the parts run as [`in_halves`]
/// runs them. Every `write` here zips `part` with source slices of `len` elements from
/// `start` on, so it writes every element of `part`.
fn new_in_halves<T: Float>(
    len: usize,
    write: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    let mut out: Vec<T> = pool::vec(len);
    in_halves(&mut out.spare_capacity_mut()[..len], write);
    // SAFETY: the parts of `in_halves` cover the `len` elements of the spare capacity, and
    // the callers' `write` zips each part with sources of at least `start + part.len()`
    // elements (each is `len` long), so every element was written.
    unsafe { out.set_len(len) };
    out
}

/// `a = f(a)` elementwise, in two halves side by side from [`PARALLEL_THRESHOLD`] elements:
/// a loop over its memory, in whatever order its axes lie there.
#[inline]
pub(crate) fn map_inplace<T: Float>(a: &mut ArrayD<T>, f: impl Fn(T) -> T + Sync + Send) {
    if a.as_slice_memory_order().is_none() {
        standardize(a);
    }
    let s = a.as_slice_memory_order_mut().expect("one block of memory");
    in_halves(s, |_, part| part.iter_mut().for_each(|x| *x = f(*x)));
}

/// Replaces `a` by a copy in standard layout (a buffer from the pool; `a`'s goes back to
/// it). Elementwise kernels take it for operands that are not one block of memory laid out
/// like the other operand (rare: a permuted value meeting one in standard layout), so that
/// each kernel is one loop over slices and its closure is not compiled a second time into
/// ndarray's strided iterators.
#[cold]
#[inline(never)]
fn standardize<T: Float>(a: &mut ArrayD<T>) {
    let copy = standard_copy(&a.view());
    pool::recycle_array(std::mem::replace(a, copy));
}

/// A copy of `b` whose memory-order slice lists its elements in the order of `a`'s, or
/// `None` when `b`'s own memory does: both one block of memory laid out alike, or `b` in
/// standard layout once `a` is made standard too (in place). The copy is in standard
/// layout, in a buffer from the pool.
fn aligned<T: Float>(a: &mut ArrayD<T>, b: ArrayViewD<'_, T>) -> Option<ArrayD<T>> {
    let alike = same(a.strides(), b.strides())
        && a.as_slice_memory_order().is_some()
        && b.as_slice_memory_order().is_some();
    if alike {
        return None;
    }
    if !a.is_standard_layout() {
        standardize(a);
    }
    (!b.is_standard_layout()).then(|| standard_copy(&b))
}

/// `f(v)` elementwise into a new array, in two halves side by side from
/// [`PARALLEL_THRESHOLD`] elements.
#[inline]
pub(crate) fn map_new<T: Float>(
    v: &ArrayViewD<'_, T>,
    f: impl Fn(T) -> T + Sync + Send,
) -> ArrayD<T> {
    if let Some(s) = v.as_slice() {
        let out = new_in_halves(s.len(), |start, part| {
            for (y, &x) in part.iter_mut().zip(&s[start..]) {
                y.write(f(x));
            }
        });
        return ArrayD::from_shape_vec(v.raw_dim(), out).expect("same element count");
    }
    // Another layout: a copy in standard layout, mapped in place.
    let mut out = standard_copy(&v.view());
    map_inplace(&mut out, f);
    out
}

/// `a = f(a, b)` elementwise for arrays of one shape: a plain slice loop (in two halves side
/// by side from [`PARALLEL_THRESHOLD`] elements) over their memory when both have the same
/// layout, after copying into standard layout what does not ([`aligned`]).
#[inline]
pub(crate) fn zip_inplace<T: Float, S: ndarray::Data<Elem = T>>(
    a: &mut ArrayD<T>,
    b: &ndarray::ArrayBase<S, IxDyn>,
    f: impl Fn(T, T) -> T + Sync,
) {
    let copy = match (b.as_slice(), a.is_standard_layout()) {
        (Some(_), true) => None,
        _ => aligned(a, b.view()),
    };
    let sb = match &copy {
        Some(c) => c.as_slice(),
        None => b.as_slice_memory_order(),
    }
    .expect("one block of memory");
    let sa = a.as_slice_memory_order_mut().expect("one block of memory");
    in_halves(sa, |start, part| {
        part.iter_mut()
            .zip(&sb[start..])
            .for_each(|(x, &y)| *x = f(*x, y));
    });
    if let Some(c) = copy {
        pool::recycle_array(c);
    }
}

/// `total += g` for two arrays of one shape (gradient accumulation).
#[inline]
pub(crate) fn add_assign<T: Float>(total: &mut ArrayD<T>, g: &ArrayD<T>) {
    zip_inplace(total, g, |a, b| a + b);
}

/// `f(a, b)` elementwise into a new array, for two operands of one shape (checked): a slice
/// loop in two halves side by side from [`PARALLEL_THRESHOLD`] elements when both are in
/// standard layout, else a copy of `a` zipped with `b` in place ([`zip_inplace`]).
#[inline]
pub(crate) fn zip_new<T: Float>(
    a: &ArrayViewD<'_, T>,
    b: &ArrayViewD<'_, T>,
    f: impl Fn(T, T) -> T + Sync,
) -> ArrayD<T> {
    assert!(
        same(a.shape(), b.shape()),
        "zip_new: operands of shapes {:?} and {:?}",
        a.shape(),
        b.shape()
    );
    if let (Some(sa), Some(sb)) = (a.as_slice(), b.as_slice()) {
        let out = new_in_halves(sa.len(), |start, part| {
            for ((z, &x), &y) in part.iter_mut().zip(&sa[start..]).zip(&sb[start..]) {
                z.write(f(x, y));
            }
        });
        return ArrayD::from_shape_vec(a.raw_dim(), out).expect("same element count");
    }
    // Other layouts: a copy of `a` in standard layout, zipped in place.
    let mut out = standard_copy(&a.view());
    zip_inplace(&mut out, b, &f);
    out
}

/// `a = f(a, b)` where `a` already has the broadcast result's shape `shape`: a flat loop
/// over rows when `b` is a block repeating along leading axes ([`repeating_block`]), else
/// `b` broadcast into an array of `a`'s shape and zipped with it.
#[inline]
pub(crate) fn zip_broadcast_inplace<T: Float>(
    a: &mut ArrayD<T>,
    b: &ArrayD<T>,
    shape: &[usize],
    f: impl Fn(T, T) -> T + Sync,
) {
    if let Some((y, run)) = repeating_block(b, shape) {
        if !a.is_standard_layout() {
            standardize(a);
        }
        let x = a.as_slice_mut().expect("standard layout");
        for row in x.chunks_exact_mut(y.len() * run) {
            for (seg, &p) in row.chunks_exact_mut(run).zip(y) {
                seg.iter_mut().for_each(|r| *r = f(*r, p));
            }
        }
        return;
    }
    let b = broadcast_copy(b, shape);
    zip_inplace(a, &b, &f);
    pool::recycle_array(b);
}

/// `a` broadcast to `shape`, as an array of its own in standard layout (from the pool).
fn broadcast_copy<T: Float>(a: &ArrayD<T>, shape: &[usize]) -> ArrayD<T> {
    standard_copy(&a.broadcast(IxDyn(shape)).expect("broadcast shape checked"))
}

/// `f(a, b)` into a new array of the broadcast shape `shape`.
#[inline]
pub(crate) fn zip_broadcast_new<T: Float>(
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    shape: &[usize],
    f: impl Fn(T, T) -> T + Sync,
) -> ArrayD<T> {
    if let Some(out) = zip_repeating(a, b, shape, &f) {
        return out;
    }
    // Neither is a repeating block of the other: `a` broadcast into a new array, then `b`.
    let mut out = broadcast_copy(a, shape);
    zip_broadcast_inplace(&mut out, b, shape, f);
    out
}

/// The elements of `part` and the length of the runs each one covers, if `part` is a
/// contiguous, non-empty block that repeats along the leading axes of `shape` and whose
/// elements each stand for a run along its trailing axes: its shape without leading and
/// trailing 1s is found in `shape` just before the axes of those trailing 1s (a row
/// `[1, n]` repeats with runs of 1; a per-channel bias `[1, C, 1, 1]` of images
/// `[N, C, H, W]` repeats `N` times with runs of `H·W`).
fn repeating_block<'a, T>(part: &'a ArrayD<T>, shape: &[usize]) -> Option<(&'a [T], usize)> {
    let s = part.shape();
    let lead = s.iter().take_while(|&&d| d == 1).count();
    let trail = s[lead..].iter().rev().take_while(|&&d| d == 1).count();
    let middle = &s[lead..s.len() - trail];
    if shape.len() < middle.len() + trail {
        return None;
    }
    let (head, tail) = shape.split_at(shape.len() - trail);
    if !head.ends_with(middle) {
        return None;
    }
    let run = tail.iter().product::<usize>();
    part.as_slice()
        .filter(|y| !y.is_empty() && run > 0)
        .map(|y| (y, run))
}

/// `f(r, p)` for every element `r` of `x`, `p` the element of `y` whose run it is in
/// (see [`repeating_block`]), appended to `out` (`swap`: `f(p, r)`).
#[inline]
fn extend_repeating<T: Float>(
    out: &mut Vec<T>,
    x: &[T],
    (y, run): (&[T], usize),
    swap: bool,
    f: &impl Fn(T, T) -> T,
) {
    let g = |r: T, p: T| if swap { f(p, r) } else { f(r, p) };
    for row in x.chunks_exact(y.len() * run) {
        if run == 1 {
            out.extend(row.iter().zip(y).map(|(&r, &p)| g(r, p)));
        } else {
            for (seg, &p) in row.chunks_exact(run).zip(y) {
                out.extend(seg.iter().map(|&r| g(r, p)));
            }
        }
    }
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
    let (x, y, swap) = if same(a.shape(), shape) {
        (a.as_slice()?, repeating_block(b, shape)?, false)
    } else if same(b.shape(), shape) {
        (b.as_slice()?, repeating_block(a, shape)?, true)
    } else {
        return None;
    };
    let mut out = pool::vec(x.len());
    extend_repeating(&mut out, x, y, swap, f);
    Some(ArrayD::from_shape_vec(IxDyn(shape), out).expect("element count matches"))
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, IxDyn, Zip, s};

    use super::{
        map_inplace, map_new, zip_broadcast_inplace, zip_broadcast_new, zip_inplace, zip_new,
    };

    fn filled(shape: &[usize], seed: usize) -> ArrayD<f64> {
        let count = shape.iter().product::<usize>();
        let values = (0..count).map(|i| ((i * 31 + seed) % 97) as f64 * 0.13 - 5.0);
        ArrayD::from_shape_vec(IxDyn(shape), values.collect()).expect("element count")
    }

    /// The repeating-block loops (rows, per-channel runs, either side) give the broadcasting
    /// iterator's results; shapes that are not a repeating block take the iterator.
    #[test]
    fn repeating_blocks_match_the_broadcasting_iterator() {
        let shape = [2, 3, 4, 5];
        for part in [
            vec![5],
            vec![4, 5],
            vec![1, 3, 1, 1],
            vec![3, 1, 1],
            vec![3, 4, 1],
            vec![2, 1, 1, 1],
            vec![1, 1, 4, 1],
            vec![2, 3, 1, 5],
            vec![1],
        ] {
            let (a, b) = (filled(&shape, 1), filled(&part, 2));
            let bb = b.broadcast(IxDyn(&shape)).expect("broadcastable");
            let want = Zip::from(&a).and(&bb).map_collect(|&x, &y| x - 2.0 * y);
            let got = zip_broadcast_new(&a, &b, &shape, |x, y| x - 2.0 * y);
            assert_eq!(got, want, "{part:?}");
            let swapped = zip_broadcast_new(&b, &a, &shape, |y, x| x - 2.0 * y);
            assert_eq!(swapped, want, "{part:?} on the left");
            let mut inplace = a.clone();
            zip_broadcast_inplace(&mut inplace, &b, &shape, |x, y| x - 2.0 * y);
            assert_eq!(inplace, want, "{part:?} in place");
        }
    }

    /// Operands in other layouts than standard (permuted axes: one block of memory in
    /// another order; a strided slice: not one block; a broadcast of neither operand's shape)
    /// give the values of ndarray's iterators, alike or mixed.
    #[test]
    fn any_layout_gives_the_iterators_values() {
        let standard = filled(&[3, 4, 5], 1);
        let permuted = filled(&[5, 3, 4], 2).permuted_axes(IxDyn(&[1, 2, 0]));
        let permuted_too = filled(&[5, 3, 4], 3).permuted_axes(IxDyn(&[1, 2, 0]));
        let wide = filled(&[3, 8, 5], 4);
        let strided = wide.slice(s![.., ..;2, ..]).into_dyn().to_owned();
        let gappy = wide.slice(s![.., ..;2, ..]).into_dyn();
        assert!(permuted.as_slice_memory_order().is_some() && !permuted.is_standard_layout());
        assert!(gappy.as_slice_memory_order().is_none());
        let f = |x: f64, y: f64| x * 3.0 - y;
        let arrays = [&standard, &permuted, &permuted_too, &strided];
        for a in arrays {
            let want = a.mapv(|x| f(x, 0.5));
            let mut inplace = a.clone();
            map_inplace(&mut inplace, |x| f(x, 0.5));
            assert_eq!(inplace, want);
            assert_eq!(map_new(&a.view(), |x| f(x, 0.5)), want);
            assert_eq!(map_new(&gappy, |x| f(x, 0.5)), gappy.mapv(|x| f(x, 0.5)));
            for b in arrays {
                let want = Zip::from(a).and(b).map_collect(|&x, &y| f(x, y));
                let mut inplace = a.clone();
                zip_inplace(&mut inplace, b, f);
                assert_eq!(inplace, want);
                assert_eq!(zip_new(&a.view(), &b.view(), f), want);
                let want = Zip::from(a).and(&gappy).map_collect(|&x, &y| f(x, y));
                assert_eq!(zip_new(&a.view(), &gappy, f), want);
            }
        }
        // [3, 1, 5] with [1, 4, 1]: neither has the result's shape.
        let (a, b) = (filled(&[3, 1, 5], 5), filled(&[1, 4, 1], 6));
        let shape = [3, 4, 5];
        let (aa, bb) = (
            a.broadcast(IxDyn(&shape)).unwrap(),
            b.broadcast(IxDyn(&shape)).unwrap(),
        );
        let want = Zip::from(&aa).and(&bb).map_collect(|&x, &y| f(x, y));
        assert_eq!(zip_broadcast_new(&a, &b, &shape, f), want);
        let mut inplace = permuted.clone();
        zip_broadcast_inplace(&mut inplace, &b, &shape, f);
        assert_eq!(
            inplace,
            Zip::from(&permuted).and(&bb).map_collect(|&x, &y| f(x, y))
        );
    }
}
