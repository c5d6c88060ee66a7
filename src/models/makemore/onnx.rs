//! The ONNX rules of the makemore models that export — the bigram table, the bag of words
//! and the Transformer — written from their layers' rules (custom modules giving their
//! own, as `tapegrad::nn::onnx` describes). The MLP and the recurrent models have none: an
//! export names them ([`ExportError::Unsupported`]).
//!
//! An exported model reads rows of `T` token indices (as floats, `T` the length it was
//! exported for, the block size in the example) and writes next-token logits at every
//! position; position `t` depends on the tokens up to `t` only, so a shorter context is
//! padded at its end.

use std::sync::Arc;

use tapegrad_autograd::Float;
use tapegrad_autograd::scope::in_scope;
use tapegrad_nn::Module;
use tapegrad_nn::onnx::{ExportError, OnnxGraph, OnnxValue};

use super::{Bigram, Bow, Transformer, causal_average};

/// `module`'s rule inside the scope `name` (its nodes are named `name/…`).
fn child<T: Float>(
    name: &str,
    module: &dyn Module<T>,
    graph: &mut OnnxGraph<T>,
    x: &OnnxValue,
) -> Result<OnnxValue, ExportError> {
    in_scope(&Arc::from(name), || module.export_onnx(graph, x))
}

/// `a + b`, of `a`'s shape.
fn add<T: Float>(graph: &mut OnnxGraph<T>, a: &OnnxValue, b: &OnnxValue) -> OnnxValue {
    OnnxValue::new(
        graph.node("Add", &[&a.name, &b.name], vec![]),
        a.shape.clone(),
    )
}

/// The table's rows: its embedding's rule.
pub(super) fn bigram<T: Float>(
    model: &Bigram<T>,
    graph: &mut OnnxGraph<T>,
    x: &OnnxValue,
) -> Result<OnnxValue, ExportError> {
    child("logits", &model.logits, graph, x)
}

/// Token and position embeddings, the causal average (a constant `[T, T]` product), the
/// residual MLP, the head.
pub(super) fn bow<T: Float>(
    model: &Bow<T>,
    graph: &mut OnnxGraph<T>,
    x: &OnnxValue,
) -> Result<OnnxValue, ExportError> {
    let embedded = child("wte", &model.wte, graph, x)?;
    let x = child("wpe", &model.wpe, graph, &embedded)?;
    let average = graph.constant(&causal_average(x.shape[0]));
    let context = OnnxValue::new(
        graph.node("MatMul", &[&average, &x.name], vec![]),
        x.shape.clone(),
    );
    let x = add(graph, &x, &context);
    let hidden = child("context_block.mlp.c_fc", &model.c_fc, graph, &x)?;
    let hidden = OnnxValue::new(graph.node("Tanh", &[&hidden.name], vec![]), hidden.shape);
    let projected = child("context_block.mlp.c_proj", &model.c_proj, graph, &hidden)?;
    let x = add(graph, &x, &projected);
    child("lm_head", &model.head, graph, &x)
}

/// Token and position embeddings, the decoder blocks, the final layer norm, the head.
pub(super) fn transformer<T: Float>(
    model: &Transformer<T>,
    graph: &mut OnnxGraph<T>,
    x: &OnnxValue,
) -> Result<OnnxValue, ExportError> {
    let embedded = child("wte", &model.wte, graph, x)?;
    let mut x = child("wpe", &model.wpe, graph, &embedded)?;
    for (i, block) in model.blocks.iter().enumerate() {
        x = child(&format!("h.{i}"), block, graph, &x)?;
    }
    let x = child("ln_f", &model.ln_f, graph, &x)?;
    child("lm_head", &model.head, graph, &x)
}
