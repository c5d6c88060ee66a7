//! Splitting projections into attention heads and merging them back, by reshape and
//! permute.

use tapegrad_autograd::{Float, Var};

/// `x` of shape `[N, T, PARTS · E]` (`PARTS` projections side by side, as an
/// in-projection of `q, k, v` gives with `PARTS = 3`) as `PARTS` arrays
/// `[N, heads, T, E / heads]`. One projection is a reshape and a permute; several are one
/// reshape to `[N, T, PARTS · heads, E / heads]` and one permute for all of them, then a slice
/// of `heads` along the second axis each (arrays of at most four axes, whose shapes ndarray
/// keeps inline).
pub(crate) fn split_heads<'t, T: Float, const PARTS: usize>(
    x: Var<'t, T>,
    heads: usize,
) -> [Var<'t, T>; PARTS] {
    let shape = x.shape();
    let (n, t, width) = (shape[0], shape[1], shape[2]);
    let head_dim = width / PARTS / heads;
    if PARTS == 1 {
        let split = x
            .reshape(&[n, t, 1, heads, head_dim])
            .permute(&[2, 0, 3, 1, 4]);
        return [split.reshape(&[n, heads, t, head_dim]); PARTS];
    }
    let split = x
        .reshape(&[n, t, PARTS * heads, head_dim])
        .permute(&[0, 2, 1, 3]);
    std::array::from_fn(|p| split.slice(1, p * heads, (p + 1) * heads))
}

/// `[N, heads, T, d]` back to `[N, T, heads · d]` (the heads side by side).
pub(crate) fn merge_heads<'t, T: Float>(x: Var<'t, T>) -> Var<'t, T> {
    let shape = x.shape();
    let (n, heads, t, d) = (shape[0], shape[1], shape[2], shape[3]);
    x.permute(&[0, 2, 1, 3]).reshape(&[n, t, heads * d])
}

/// `x · weightᵀ + bias` over the last axis of `x` `[N, T, in]`, with `weight` `[out, in]`
/// (PyTorch's layout): one product over the `N · T` rows.
pub(crate) fn project<'t, T: Float>(
    x: Var<'t, T>,
    weight: Var<'t, T>,
    bias: Option<Var<'t, T>>,
) -> Var<'t, T> {
    let shape = x.shape();
    let (n, t, features) = (shape[0], shape[1], shape[2]);
    let out = weight.shape()[0];
    x.reshape(&[n * t, features])
        .linear(weight.t(), bias)
        .reshape(&[n, t, out])
}
