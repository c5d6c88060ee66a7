//! Splitting projections into attention heads and merging them back, by reshape and
//! permute.

use tapegrad_autograd::{Float, Var};

/// `x` of shape `[N, T, parts · E]` (`parts` projections side by side, as an in-projection
/// of `q, k, v` gives with `parts = 3`) as `parts` arrays `[N, heads, T, E / heads]`: one
/// reshape and one permute for all of them, then a slice each.
pub(crate) fn split_heads<'t, T: Float>(
    x: Var<'t, T>,
    parts: usize,
    heads: usize,
) -> Vec<Var<'t, T>> {
    let shape = x.shape();
    let (n, t, width) = (shape[0], shape[1], shape[2]);
    let head_dim = width / parts / heads;
    let split = x
        .reshape(&[n, t, parts, heads, head_dim])
        .permute(&[2, 0, 3, 1, 4]);
    if parts == 1 {
        return vec![split.reshape(&[n, heads, t, head_dim])];
    }
    (0..parts)
        .map(|p| split.slice(0, p, p + 1).reshape(&[n, heads, t, head_dim]))
        .collect()
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
