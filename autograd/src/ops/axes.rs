//! Axis arguments of the public ops: negative axes, axis lists, kept dimensions.

/// Resolves a possibly negative axis against `ndim`; panics naming `op` when out of range.
#[track_caller]
pub(crate) fn normalize_axis(op: &str, axis: isize, ndim: usize) -> usize {
    let resolved = if axis < 0 { axis + ndim as isize } else { axis };
    assert!(
        resolved >= 0 && (resolved as usize) < ndim,
        "{op}: axis {axis} is out of range for a {ndim}-dimensional variable"
    );
    resolved as usize
}

/// Resolves a list of axes, sorted; panics naming `op` when one is out of range or repeated.
#[track_caller]
pub(crate) fn resolve_axes(op: &str, axes: &[isize], ndim: usize) -> Vec<usize> {
    // A loop, not a closure: closures drop `#[track_caller]`'s location.
    let mut resolved = Vec::with_capacity(axes.len());
    for &a in axes {
        resolved.push(normalize_axis(op, a, ndim));
    }
    resolved.sort_unstable();
    let before = resolved.len();
    resolved.dedup();
    assert!(
        resolved.len() == before,
        "{op}: axis list {axes:?} repeats an axis"
    );
    resolved
}

/// `shape` with each of `axes` set to 1.
pub(crate) fn keepdim_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    let mut kept = shape.to_vec();
    for &a in axes {
        kept[a] = 1;
    }
    kept
}
