//! The ONNX rules of the attention layers, written with products, `Softmax` and reshapes
//! as the forward passes compute them: scaled dot-product self-attention over heads
//! ([`self_attention`]), [`MultiHeadAttention`]'s projections around it
//! ([`multi_head`]), and the tanh approximation of GELU of GPT-2's blocks.

use ndarray::{ArrayD, IxDyn};
use tapegrad_autograd::Float;

use super::MultiHeadAttention;
use crate::module::Module;
use crate::onnx::{ExportError, OnnxGraph, OnnxValue, attr, in_child};

/// Self-attention of the projections `qkv` (`[N, T, 3E]`: queries, keys and values side
/// by side, each `E = heads · head_dim` wide, as [`split_heads`](super::heads::split_heads)
/// reads them) over `t` steps, `causal` or not: `softmax(q kᵀ / √d) v` per head, the heads
/// merged back (`[N, T, E]`).
pub(crate) fn self_attention<T: Float>(
    graph: &mut OnnxGraph<T>,
    qkv: &str,
    t: usize,
    e: usize,
    heads: usize,
    causal: bool,
) -> String {
    let head_dim = e / heads;
    let part = |graph: &mut OnnxGraph<T>, p: usize| {
        let starts = graph.ints(&[(p * e) as i64]);
        let ends = graph.ints(&[((p + 1) * e) as i64]);
        let axes = graph.ints(&[2]);
        let columns = graph.node("Slice", &[qkv, &starts, &ends, &axes], vec![]);
        let split = graph.reshape(&columns, &[0, 0, heads as i64, head_dim as i64]);
        graph.transpose(&split, &[0, 2, 1, 3])
    };
    let (q, k, v) = (part(graph, 0), part(graph, 1), part(graph, 2));
    let q = graph.mul_scalar(&q, 1.0 / (head_dim as f64).sqrt());
    let k_t = graph.transpose(&k, &[0, 1, 3, 2]);
    let mut scores = graph.node("MatMul", &[&q, &k_t], vec![]);
    if causal {
        // Key positions after the query's are hidden: −∞ before the softmax.
        let hidden = ArrayD::from_shape_fn(IxDyn(&[t, t]), |ix| ix[1] > ix[0]);
        let hidden = graph.bools(&hidden);
        let minus_infinity = graph.scalar(f64::NEG_INFINITY);
        scores = graph.node("Where", &[&hidden, &minus_infinity, &scores], vec![]);
    }
    let weights = graph.node("Softmax", &[&scores], vec![attr::int("axis", -1)]);
    let heads_out = graph.node("MatMul", &[&weights, &v], vec![]);
    let merged = graph.transpose(&heads_out, &[0, 2, 1, 3]);
    graph.reshape(&merged, &[0, 0, e as i64])
}

/// [`MultiHeadAttention`]'s self-attention (`attend(x, x, x)`): the input projection by
/// `in_proj_weight`, [`self_attention`], the output projection.
pub(crate) fn multi_head<T: Float>(
    layer: &MultiHeadAttention<T>,
    graph: &mut OnnxGraph<T>,
    x: &OnnxValue,
    causal: bool,
) -> Result<OnnxValue, ExportError> {
    Module::<T>::check_input_shape(layer, &x.shape)?;
    let weight = layer
        .in_proj_weight()
        .ok_or_else(|| ExportError::not_built("multi_head_attention"))?;
    let weight = graph.param(weight);
    let bias = layer.in_proj_bias().map(|b| graph.param(b));
    let qkv = graph.linear_transposed(&x.name, &weight, bias.as_deref());
    let (e, heads) = (layer.embed_dim(), layer.num_heads());
    let merged = self_attention(graph, &qkv, x.shape[0], e, heads, causal);
    let merged = OnnxValue::new(merged, x.shape.clone());
    in_child("out_proj", || layer.out_proj().export_onnx(graph, &merged))
}

/// GELU's tanh approximation `x · (tanh(√(2/π) · (x + 0.044715 x³)) + 1) / 2`, in the
/// order [`Var::gelu_tanh`](tapegrad_autograd::Var::gelu_tanh) computes it.
pub(crate) fn gelu_tanh<T: Float>(graph: &mut OnnxGraph<T>, x: &str) -> String {
    let square = graph.node("Mul", &[x, x], vec![]);
    let cube = graph.node("Mul", &[&square, x], vec![]);
    let cube = graph.mul_scalar(&cube, 0.044715);
    let inner = graph.node("Add", &[x, &cube], vec![]);
    let inner = graph.mul_scalar(&inner, (2.0 / std::f64::consts::PI).sqrt());
    let tanh = graph.node("Tanh", &[&inner], vec![]);
    let gate = graph.add_scalar(&tanh, 1.0);
    let gate = graph.mul_scalar(&gate, 0.5);
    graph.node("Mul", &[x, &gate], vec![])
}
