//! Axis arguments of the public ops: one convention everywhere. An axis is an `isize`,
//! negative axes count from the end (`-1` is the last), and a reduction takes one axis or
//! several through [`Axes`]. An axis out of range panics naming the op, the axis and the
//! shape, at the caller's line.

use crate::Float;
use crate::kernels::Dims;
use crate::operand::Structural;

mod sealed {
    pub trait Sealed {}
}

/// The axes a reduction works over: one axis (`1`, `-1`) or several (`[0, -1]`, `&[0, 2]`,
/// a `&[isize]` or a `Vec<isize>`). Negative axes count from the end.
///
/// Integer literals need no suffix: `isize` is the only integer type that implements it.
///
/// ```
/// use ndarray::{ArrayD, IxDyn};
/// use tapegrad_autograd::Tape;
///
/// let tape = Tape::<f64>::new();
/// let x = tape.var(ArrayD::ones(IxDyn(&[2, 3, 4])));
/// assert_eq!(x.sum_axes(1, false).shape(), [2, 4]);            // one axis
/// assert_eq!(x.sum_axes(-1, true).shape(), [2, 3, 1]);         // from the end
/// assert_eq!(x.sum_axes([0, -1], false).shape(), [3]);         // several
/// assert_eq!(x.max_axes(&[0, 1], false).shape(), [4]);         // a borrowed list
/// let axes: Vec<isize> = vec![2];
/// assert_eq!(x.mean_axes(&axes, false).shape(), [2, 3]);       // computed at run time
/// assert_eq!(x.logsumexp([1, 2], false).shape(), [2]);
/// ```
pub trait Axes: sealed::Sealed {
    /// The axes as given (possibly negative, not yet checked).
    fn as_slice(&self) -> &[isize];
}

impl sealed::Sealed for isize {}
impl Axes for isize {
    fn as_slice(&self) -> &[isize] {
        std::slice::from_ref(self)
    }
}

impl<const N: usize> sealed::Sealed for [isize; N] {}
impl<const N: usize> Axes for [isize; N] {
    fn as_slice(&self) -> &[isize] {
        self
    }
}

impl sealed::Sealed for Vec<isize> {}
impl Axes for Vec<isize> {
    fn as_slice(&self) -> &[isize] {
        self
    }
}

impl sealed::Sealed for [isize] {}
impl Axes for [isize] {
    fn as_slice(&self) -> &[isize] {
        self
    }
}

impl<A: Axes + ?Sized> sealed::Sealed for &A {}
impl<A: Axes + ?Sized> Axes for &A {
    fn as_slice(&self) -> &[isize] {
        (**self).as_slice()
    }
}

/// Resolved axes: in range, sorted, distinct.
pub(crate) type AxisList = Dims;

/// Resolves a possibly negative `axis` against `shape`; panics naming `op`, the axis and
/// the shape when it is out of range.
#[track_caller]
pub(crate) fn resolve_axis(op: &str, axis: isize, shape: &[usize]) -> usize {
    resolve_in(op, axis, shape, shape.len())
}

/// Resolves a position for a new axis (`0..=ndim`; `-1` appends), as `unsqueeze` and
/// `stack` take it.
#[track_caller]
pub(crate) fn resolve_new_axis(op: &str, axis: isize, shape: &[usize]) -> usize {
    resolve_in(op, axis, shape, shape.len() + 1)
}

#[track_caller]
fn resolve_in(op: &str, axis: isize, shape: &[usize], count: usize) -> usize {
    let resolved = if axis < 0 {
        axis + count as isize
    } else {
        axis
    };
    if resolved < 0 || resolved as usize >= count {
        panic!("{op}: axis {axis} is out of range for shape {shape:?}");
    }
    resolved as usize
}

/// Resolves a list of axes, sorted; panics naming `op` when one is out of range or repeated.
#[track_caller]
pub(crate) fn resolve_axes(op: &str, axes: &[isize], shape: &[usize]) -> AxisList {
    // A loop, not a closure: closures drop `#[track_caller]`'s location.
    let mut resolved = AxisList::with_capacity(axes.len());
    for &a in axes {
        resolved.push(resolve_axis(op, a, shape));
    }
    resolved.sort_unstable();
    let before = resolved.len();
    resolved.dedup();
    if resolved.len() != before {
        panic!("{op}: axis list {axes:?} repeats an axis (shape {shape:?})");
    }
    resolved
}

/// Every axis of an `ndim`-dimensional value.
pub(crate) fn all_axes(ndim: usize) -> AxisList {
    (0..ndim).collect()
}

/// `shape` with each of `axes` set to 1.
pub(crate) fn keepdim_shape(shape: &[usize], axes: &[usize]) -> Dims {
    let mut kept = Dims::from_slice(shape);
    for &a in axes {
        kept[a] = 1;
    }
    kept
}

/// A reduction's output (or its gradient) with the reduced axes of `input_shape` kept at
/// length 1, so that it broadcasts against the input: what every reduction's rule starts
/// from.
pub(crate) fn with_kept_axes<T: Float, O: Structural<T>>(
    reduced: O,
    input_shape: &[usize],
    axes: &[usize],
    keepdim: bool,
) -> O {
    if keepdim {
        reduced
    } else {
        reduced.reshape(&keepdim_shape(input_shape, axes))
    }
}
