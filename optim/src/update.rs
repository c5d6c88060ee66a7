//! Element-wise loops. Each takes the parameter, its gradient and 0 to 3 state buffers (all
//! of the same shape, checked by `validate`) and runs `f` on every element in place. When all
//! arrays are contiguous in standard order this is a plain loop over slices (which the
//! compiler vectorizes), cut in two halves run side by side (`on_halves`) for large
//! parameters; arrays in another layout are first copied into standard layout (the
//! parameter and its state in place). Beside them, the per-element helpers the
//! update rules share (`dispatch!`, `scalar`, `with_l2_decay`, `flush_subnormal`).

use ndarray::ArrayD;
use tapegrad_autograd::{Float, memory};

/// Parameters with at least this many elements are checked and updated in two halves, one on
/// the calling thread and one on tapegrad's helper thread
/// ([`tapegrad_autograd::fork_join`]).
///
/// The update is memory-bound: two cores bring twice the bandwidth, and each half of a
/// weight gradient that a threaded product wrote is still in the cache of the core that
/// wrote it (products are split from 2²⁰ multiply-adds, so the gradients of large weights
/// are written by both cores). At 2¹⁵ the 256 × 128 second weight of the benchmark MLP is
/// split too: same-process A/B runs of its training step (`nn/examples/mlp_profile`) chose
/// this threshold together with the products' 2²⁰ (figures in `benches/README.md`,
/// "Optimizer updates").
pub(crate) const PARALLEL_UPDATE: usize = 1 << 15;

/// Slices (or tuples of equally long slices) that can be cut in two at one index.
pub(crate) trait SplitAt: Sized {
    fn len(&self) -> usize;
    fn split_at(self, mid: usize) -> (Self, Self);
}

impl<T> SplitAt for &[T] {
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        <[T]>::split_at(self, mid)
    }
}

impl<T> SplitAt for &mut [T] {
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        self.split_at_mut(mid)
    }
}

macro_rules! split_tuple {
    ($($s:ident),+) => {
        impl<$($s: SplitAt),+> SplitAt for ($($s,)+) {
            fn len(&self) -> usize {
                self.0.len()
            }
            #[allow(non_snake_case)]
            fn split_at(self, mid: usize) -> (Self, Self) {
                let ($($s,)+) = self;
                $(let $s = $s.split_at(mid);)+
                (($($s.0,)+), ($($s.1,)+))
            }
        }
    };
}
split_tuple!(A, B);
split_tuple!(A, B, C);
split_tuple!(A, B, C, D);
split_tuple!(A, B, C, D, E);

/// `f` on the two halves of `parts` — side by side when they hold at least
/// [`PARALLEL_UPDATE`] elements, else on the whole and on an empty rest, in that order.
#[inline(always)]
fn on_halves<S: SplitAt + Send, R: Send>(parts: S, f: impl Fn(S) -> R + Sync) -> (R, R) {
    let len = parts.len();
    if len < PARALLEL_UPDATE {
        let (whole, empty) = parts.split_at(len);
        let r = f(whole);
        return (r, f(empty));
    }
    side_by_side(parts, &f)
}

/// The two halves of `parts` side by side: the parallel case of [`on_halves`], with `f`
/// behind a reference so that it is compiled once per kind of parts, not once per update
/// rule (for one indirect call per half).
#[inline(never)]
fn side_by_side<S: SplitAt + Send, R: Send>(parts: S, f: &(dyn Fn(S) -> R + Sync)) -> (R, R) {
    let mid = parts.len() / 2;
    let (first, second) = parts.split_at(mid);
    tapegrad_autograd::fork_join::join(|| f(first), || f(second))
}

/// Makes the parameter and its state (`mutable`) standard-layout arrays in place, and
/// returns the gradient `g` in standard layout (a copy only if it is not): then every
/// update loop below runs over slices, and each update rule is compiled once, as a slice
/// loop, not a second time into ndarray's strided iterators. A parameter and its state are
/// in standard layout already; a gradient may not be (a weight read through a transpose,
/// as `Linear`'s is, gets its gradient transposed back), so its copy takes a buffer from the
/// library's buffer pool and gives it back when dropped.
#[cold]
#[inline(never)]
fn standard_layouts<T: Float>(mutable: &mut [&mut ArrayD<T>], g: &ArrayD<T>) -> StandardCopy<T> {
    for a in mutable.iter_mut().filter(|a| !a.is_standard_layout()) {
        let copy = standard_copy(a);
        memory::recycle_array(std::mem::replace(*a, copy));
    }
    StandardCopy((!g.is_standard_layout()).then(|| standard_copy(g)))
}

/// `a` in standard layout, in a buffer from the buffer pool.
fn standard_copy<T: Float>(a: &ArrayD<T>) -> ArrayD<T> {
    let mut data = memory::vec(a.len());
    data.extend(a.iter().copied());
    ArrayD::from_shape_vec(a.raw_dim(), data).expect("one element per index")
}

/// A gradient's copy in standard layout ([`standard_layouts`]), or `None` when the gradient
/// is in standard layout itself; the copy goes back to the buffer pool when dropped.
struct StandardCopy<T>(Option<ArrayD<T>>);

impl<T> StandardCopy<T> {
    /// The elements of the copy, else of `g`, in standard order.
    fn slice<'s>(&'s self, g: &'s ArrayD<T>) -> &'s [T] {
        self.0
            .as_ref()
            .unwrap_or(g)
            .as_slice()
            .expect("standard layout")
    }
}

impl<T> Drop for StandardCopy<T> {
    fn drop(&mut self) {
        if let Some(copy) = self.0.take() {
            memory::recycle_array(copy);
        }
    }
}

/// `true` if every element is finite.
pub(crate) fn all_finite<T: Float>(a: &ArrayD<T>) -> bool {
    match a.as_slice_memory_order() {
        Some(s) => {
            let (first, second) = on_halves(s, all_finite_run);
            first && second
        }
        None => a.iter().all(|x| x.is_finite()),
    }
}

/// `x · 0` is 0 for a finite `x` and NaN otherwise, so independent lane sums of it stay 0
/// exactly when every element is finite: a branch-free loop that vectorizes.
#[inline(always)]
fn all_finite_run<T: Float>(s: &[T]) -> bool {
    const LANES: usize = 16;
    let zero = T::zero();
    let mut acc = [zero; LANES];
    let mut chunks = s.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (acc, &x) in acc.iter_mut().zip(chunk) {
            *acc += x * zero;
        }
    }
    acc.iter().chain(chunks.remainder()).all(|x| x.is_finite())
}

#[inline(always)]
pub(crate) fn zip0<T: Float>(
    p: &mut ArrayD<T>,
    g: &ArrayD<T>,
    f: impl Fn(&mut T, T) + Sync + Copy,
) {
    let copy;
    let g = match (p.is_standard_layout(), g.as_slice()) {
        (true, Some(gs)) => gs,
        _ => {
            copy = standard_layouts(&mut [&mut *p], g);
            copy.slice(g)
        }
    };
    let p = p.as_slice_mut().expect("standard layout");
    on_halves((p, g), move |(ps, gs)| {
        for (p, &g) in ps.iter_mut().zip(gs) {
            f(p, g);
        }
    });
}

#[inline(always)]
pub(crate) fn zip1<T: Float>(
    p: &mut ArrayD<T>,
    g: &ArrayD<T>,
    a: &mut ArrayD<T>,
    f: impl Fn(&mut T, T, &mut T) + Sync + Copy,
) {
    let copy;
    let g = match (
        p.is_standard_layout() && a.is_standard_layout(),
        g.as_slice(),
    ) {
        (true, Some(gs)) => gs,
        _ => {
            copy = standard_layouts(&mut [&mut *p, &mut *a], g);
            copy.slice(g)
        }
    };
    let (p, a) = (standard_slice(p), standard_slice(a));
    on_halves((p, g, a), move |(ps, gs, as_)| {
        for ((p, &g), a) in ps.iter_mut().zip(gs).zip(as_) {
            f(p, g, a);
        }
    });
}

#[inline(always)]
pub(crate) fn zip2<T: Float>(
    p: &mut ArrayD<T>,
    g: &ArrayD<T>,
    a: &mut ArrayD<T>,
    b: &mut ArrayD<T>,
    f: impl Fn(&mut T, T, &mut T, &mut T) + Sync + Copy,
) {
    let copy;
    let standard = p.is_standard_layout() && a.is_standard_layout() && b.is_standard_layout();
    let g = match (standard, g.as_slice()) {
        (true, Some(gs)) => gs,
        _ => {
            copy = standard_layouts(&mut [&mut *p, &mut *a, &mut *b], g);
            copy.slice(g)
        }
    };
    let (p, a, b) = (standard_slice(p), standard_slice(a), standard_slice(b));
    on_halves((p, g, a, b), move |(ps, gs, as_, bs)| {
        for (((p, &g), a), b) in ps.iter_mut().zip(gs).zip(as_).zip(bs) {
            f(p, g, a, b);
        }
    });
}

#[inline(always)]
pub(crate) fn zip3<T: Float>(
    p: &mut ArrayD<T>,
    g: &ArrayD<T>,
    a: &mut ArrayD<T>,
    b: &mut ArrayD<T>,
    c: &mut ArrayD<T>,
    f: impl Fn(&mut T, T, &mut T, &mut T, &mut T) + Sync + Copy,
) {
    let copy;
    let standard = p.is_standard_layout()
        && a.is_standard_layout()
        && b.is_standard_layout()
        && c.is_standard_layout();
    let g = match (standard, g.as_slice()) {
        (true, Some(gs)) => gs,
        _ => {
            copy = standard_layouts(&mut [&mut *p, &mut *a, &mut *b, &mut *c], g);
            copy.slice(g)
        }
    };
    let (p, a, b, c) = (
        standard_slice(p),
        standard_slice(a),
        standard_slice(b),
        standard_slice(c),
    );
    on_halves((p, g, a, b, c), move |(ps, gs, as_, bs, cs)| {
        for ((((p, &g), a), b), c) in ps.iter_mut().zip(gs).zip(as_).zip(bs).zip(cs) {
            f(p, g, a, b, c);
        }
    });
}

/// The elements of an array made standard-layout by [`standard_layouts`].
#[inline(always)]
fn standard_slice<T>(a: &mut ArrayD<T>) -> &mut [T] {
    a.as_slice_mut().expect("standard layout")
}

/// PyTorch's `lerp(start, end, weight)`: `start + weight · (end − start)` when
/// `|weight| < 0.5` (`LOW`), else `end − (end − start) · (1 − weight)`; `one_minus_weight` is
/// `1 − weight`. The branch is a const parameter so that the loops calling it vectorize.
#[inline(always)]
pub(crate) fn lerp<T: Float, const LOW: bool>(
    start: T,
    end: T,
    weight: T,
    one_minus_weight: T,
) -> T {
    if LOW {
        start + weight * (end - start)
    } else {
        end - (end - start) * one_minus_weight
    }
}

/// Calls `f::<T, B1, B2, ...>(args)` with each runtime `bool` in the list turned into a
/// const generic parameter, so that the element loops have no branches on configuration
/// (a branch, even loop-invariant, keeps the compiler from vectorizing them).
macro_rules! dispatch {
    ($f:ident::<$T:ty $(, $done:tt)*>; []; $($arg:expr),*) => {
        $f::<$T $(, $done)*>($($arg),*)
    };
    ($f:ident::<$T:ty $(, $done:tt)*>; [$b:expr $(, $rest:expr)*]; $($arg:expr),*) => {
        if $b {
            $crate::update::dispatch!($f::<$T $(, $done)*, true>; [$($rest),*]; $($arg),*)
        } else {
            $crate::update::dispatch!($f::<$T $(, $done)*, false>; [$($rest),*]; $($arg),*)
        }
    };
}
pub(crate) use dispatch;

/// Converts a hyper-parameter to the element type (`Float::from_f64`, spelled out because
/// `num_traits::FromPrimitive` has a method of the same name).
#[inline(always)]
pub(crate) fn scalar<T: Float>(x: f64) -> T {
    <T as Float>::from_f64(x)
}

/// The gradient with coupled (L2) weight decay added, `g + wd · p`, when `WD`; else `g`.
/// The flag is a const parameter so that the loops calling it vectorize.
#[inline(always)]
pub(crate) fn with_l2_decay<T: Float, const WD: bool>(g: T, wd: T, p: T) -> T {
    if WD { g + wd * p } else { g }
}

/// State that decays geometrically while a parameter's gradient stays zero (an always-blank
/// pixel's weight) ends in subnormal numbers, which x86 processors compute about 40 times
/// slower: optimizers flush it to zero. The change is below `T::min_positive_value()`
/// (1.2e-38 in f32), far under any tolerance; the golden replays are unaffected.
#[inline(always)]
pub(crate) fn flush_subnormal<T: Float>(x: T) -> T {
    if x.abs() < T::min_positive_value() {
        T::zero()
    } else {
        x
    }
}
