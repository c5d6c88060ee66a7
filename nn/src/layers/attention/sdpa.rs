//! Scaled dot-product attention, `softmax(q kᵀ / √d + mask) v`, composed from autograd ops.

use ndarray::{ArrayD, IxDyn, Zip};
use tapegrad_autograd::{Float, Var, memory};

use crate::layers::Dropout;

/// `softmax(q · kᵀ / √d) · v` over the last two axes, with `q` of shape `[..., L, d]`, `k`
/// `[..., S, d]` and `v` `[..., S, dv]` (leading axes broadcast, as in `matmul`): the output
/// is `[..., L, dv]`. PyTorch's `F.scaled_dot_product_attention(q, k, v, attn_mask,
/// is_causal=is_causal)` with its default scale `1/√d`, but with the mask convention of
/// `nn.MultiheadAttention`.
///
/// `mask` is a boolean array broadcastable to `[..., L, S]` in which **`true` means "may not
/// attend"** (the convention of `nn.MultiheadAttention`'s `attn_mask` and
/// `key_padding_mask`). `F.scaled_dot_product_attention`'s boolean mask is the opposite
/// (`true` means "may attend"): negate such a mask before passing it here. `is_causal` hides
/// key `j` from query `i` when `j > i` (top-left aligned, as in PyTorch); it combines with
/// `mask` (a position hidden by either is hidden).
///
/// Hidden scores are replaced by `-∞` (`Var::where_` against a constant) before the softmax
/// over the last axis, so they get weight exactly 0 and no gradient. A query whose keys are
/// all hidden has no defined weights: its row of weights and of the output is NaN, as in
/// PyTorch.
///
/// Panics naming the shapes when `q`, `k`, `v` or `mask` do not fit together.
///
/// ```
/// use ndarray::{Array, ArrayD, IxDyn};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::scaled_dot_product_attention;
///
/// let tape = Tape::<f64>::new();
/// let x = |n: usize| Array::linspace(-1.0, 1.0, n * 4).into_shape_with_order(IxDyn(&[1, n, 4])).unwrap();
/// let (q, k, v) = (tape.var(x(3)), tape.var(x(5)), tape.var(x(5)));
/// let out = scaled_dot_product_attention(q, k, v, None, true);
/// assert_eq!(out.shape(), [1, 3, 4]);
/// // The first query sees only the first key: its output is that key's value.
/// let first = out.to_array();
/// assert!((first[[0, 0, 2]] - x(5)[[0, 0, 2]]).abs() < 1e-12);
///
/// // A boolean mask: true hides the key (here the last two keys of every query).
/// let mut hidden = ArrayD::from_elem(IxDyn(&[3, 5]), false);
/// hidden.slice_mut(ndarray::s![.., 3..]).fill(true);
/// let out = scaled_dot_product_attention(q, k, v, Some(&hidden), false);
/// assert_eq!(out.shape(), [1, 3, 4]);
/// ```
#[track_caller]
pub fn scaled_dot_product_attention<'t, T: Float>(
    q: Var<'t, T>,
    k: Var<'t, T>,
    v: Var<'t, T>,
    mask: Option<&ArrayD<bool>>,
    is_causal: bool,
) -> Var<'t, T> {
    attention(q, k, v, mask, is_causal, None).0
}

/// [`scaled_dot_product_attention`], also returning the attention weights
/// `softmax(q · kᵀ / √d)` of shape `[..., L, S]` (each row sums to 1; hidden positions are
/// exactly 0): `(output, weights)`.
///
/// ```
/// use ndarray::{Array, IxDyn};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::scaled_dot_product_attention_with_weights;
///
/// let tape = Tape::<f64>::new();
/// let x = Array::linspace(-1.0, 1.0, 24).into_shape_with_order(IxDyn(&[2, 3, 4])).unwrap();
/// let q = tape.var(x);
/// let (out, weights) = scaled_dot_product_attention_with_weights(q, q, q, None, true);
/// assert_eq!((out.shape().to_vec(), weights.shape().to_vec()), (vec![2, 3, 4], vec![2, 3, 3]));
/// let w = weights.to_array();
/// assert_eq!(w[[0, 0, 1]], 0.0); // causal: query 0 does not see key 1
/// assert!((w[[1, 2, 0]] + w[[1, 2, 1]] + w[[1, 2, 2]] - 1.0).abs() < 1e-12);
/// ```
#[track_caller]
pub fn scaled_dot_product_attention_with_weights<'t, T: Float>(
    q: Var<'t, T>,
    k: Var<'t, T>,
    v: Var<'t, T>,
    mask: Option<&ArrayD<bool>>,
    is_causal: bool,
) -> (Var<'t, T>, Var<'t, T>) {
    attention(q, k, v, mask, is_causal, None)
}

/// The attention of [`scaled_dot_product_attention_with_weights`], with `dropout` (when
/// given and in train mode) applied to the weights before they multiply `v`, as
/// `nn.MultiheadAttention` does; the weights returned are the ones `v` was multiplied by.
#[track_caller]
pub(crate) fn attention<'t, T: Float>(
    q: Var<'t, T>,
    k: Var<'t, T>,
    v: Var<'t, T>,
    mask: Option<&ArrayD<bool>>,
    is_causal: bool,
    dropout: Option<&Dropout>,
) -> (Var<'t, T>, Var<'t, T>) {
    let (qs, ks, vs) = (q.shape(), k.shape(), v.shape());
    let fits = qs.len() >= 2
        && ks.len() >= 2
        && vs.len() >= 2
        && qs[qs.len() - 1] == ks[ks.len() - 1]
        && ks[ks.len() - 2] == vs[vs.len() - 2];
    assert!(
        fits,
        "scaled_dot_product_attention: takes q [..., L, d], k [..., S, d] and v [..., S, dv], \
         got q {qs:?}, k {ks:?}, v {vs:?}"
    );
    let d = qs[qs.len() - 1];
    let scale = T::from_f64(1.0 / (d as f64).sqrt());
    let mut scores = q.mul_scalar(scale).matmul(k.transpose(-2, -1));
    if let Some(hidden) = hidden_positions::<T>(mask, is_causal, &scores.shape()) {
        let tape = q.tape();
        let minus_infinity = tape.scalar(T::neg_infinity());
        scores = Var::where_(tape.constant(hidden), minus_infinity, scores);
    }
    let mut weights = scores.softmax(-1);
    if let Some(dropout) = dropout {
        weights = dropout.apply(weights);
    }
    (weights.matmul(v), weights)
}

/// The positions of `scores_shape` (`[..., L, S]`) hidden by `mask` or, with `is_causal`, by
/// the causal triangle, as 1 (hidden) and 0, in the smallest shape that broadcasts to
/// `scores_shape`; `None` when nothing is hidden. Panics when `mask` does not broadcast to
/// `scores_shape`.
#[track_caller]
fn hidden_positions<T: Float>(
    mask: Option<&ArrayD<bool>>,
    is_causal: bool,
    scores_shape: &[usize],
) -> Option<ArrayD<T>> {
    if let Some(mask) = mask {
        let ms = mask.shape();
        let offset = scores_shape.len().checked_sub(ms.len());
        let broadcasts = offset.is_some_and(|offset| {
            ms.iter()
                .zip(&scores_shape[offset..])
                .all(|(&m, &s)| m == 1 || m == s)
        });
        assert!(
            broadcasts,
            "scaled_dot_product_attention: the mask of shape {ms:?} does not broadcast to the \
             scores' shape {scores_shape:?} ([..., L, S])"
        );
    }
    let rank = scores_shape.len();
    let (l, s) = (scores_shape[rank - 2], scores_shape[rank - 1]);
    if let (None, true) = (mask, is_causal) {
        // The causal triangle alone, straight into a buffer from the pool (the tape that
        // takes it as a constant gives it back).
        let mut hidden = memory::vec(l * s);
        hidden.extend((0..l).flat_map(|i| (0..s).map(move |j| T::from_f64(f64::from(j > i)))));
        return Some(ArrayD::from_shape_vec(IxDyn(&[l, s]), hidden).expect("l · s"));
    }
    let causal = is_causal.then(|| ArrayD::from_shape_fn(IxDyn(&[l, s]), |ix| ix[1] > ix[0]));
    let hidden = match (mask, causal) {
        (None, None) => return None,
        (Some(mask), None) => mask.clone(),
        (None, Some(causal)) => causal,
        (Some(mask), Some(causal)) => or_broadcast(mask, &causal),
    };
    Some(hidden.mapv(|h| if h { T::one() } else { T::zero() }))
}

/// `a || b` elementwise, broadcasting (each axis of either is 1 or the other's length).
pub(crate) fn or_broadcast(a: &ArrayD<bool>, b: &ArrayD<bool>) -> ArrayD<bool> {
    let rank = a.ndim().max(b.ndim());
    let axis =
        |x: &ArrayD<bool>, i: usize| (i + x.ndim()).checked_sub(rank).map_or(1, |j| x.shape()[j]);
    let shape: Vec<usize> = (0..rank).map(|i| axis(a, i).max(axis(b, i))).collect();
    let dim = IxDyn(&shape);
    let (a, b) = (
        a.broadcast(dim.clone()).expect("checked by the caller"),
        b.broadcast(dim).expect("checked by the caller"),
    );
    Zip::from(&a).and(&b).map_collect(|&x, &y| x || y)
}
