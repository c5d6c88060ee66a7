//! ONNX export of trained models: a [`Module`] written as an ONNX graph that runtimes
//! (ONNX Runtime, tract, …) run for inference.
//!
//! - **Format**: ONNX opset [`OPSET_VERSION`] (17, the first with `LayerNormalization`),
//!   file format IR version [`IR_VERSION`] (8, the version of opset 17).
//! - **Inputs and outputs**: one input named `input` and one output named `output`, in the
//!   model's element type (`FLOAT` for `f32` models), whose first axis is dynamic (named
//!   `batch`): any batch size runs.
//! - **Weights**: every parameter and buffer the graph reads is an initializer named by
//!   its path in the model, as in its safetensors checkpoint (`dense_0.kernel`,
//!   `batch_norm_0.running_mean`), holding the same values in the same layout; derived
//!   tensors (a transposed weight, gates in ONNX's order) are computed by nodes from them,
//!   which runtimes fold once. Constants are `Constant` nodes.
//! - **Inference form**: dropout is the identity, BatchNorm normalizes with its running
//!   statistics, whatever mode the model is in.
//!
//! Each layer writes its own nodes ([`Module::export_onnx`]); [`Sequential`] chains its
//! layers' rules, and every built-in layer has one: [`Dense`] and [`Linear`] (with their
//! activations), [`ActivationLayer`], [`Conv2d`], the pooling layers, [`BatchNorm`],
//! [`LayerNorm`], [`Flatten`], [`Reshape`], [`Dropout`], [`Embedding`] (`Gather`;
//! indices come in as floats, as tapegrad takes them), [`Residual`], [`Rnn`], [`Lstm`],
//! [`Gru`] and their cells (ONNX's `RNN`, `LSTM` and `GRU` operators), [`MultiHeadAttention`]
//! and [`TransformerEncoderLayer`] (as products, `Softmax` and `LayerNormalization`),
//! [`PositionalEmbedding`]. A module without a rule (a custom one that does not implement
//! `export_onnx`) makes the export fail with [`ExportError::Unsupported`], which names it.
//!
//! ```
//! use tapegrad_nn::layers::{Activation, Dense, Sequential};
//! use tapegrad_nn::onnx;
//!
//! let model = Sequential::<f32>::new()
//!     .add(Dense::new(16).activation(Activation::Relu))
//!     .add(Dense::new(3))
//!     .with_input_shape(&[4]);
//! let file = onnx::to_model(&model, &[4])?;
//! let graph = file.graph.unwrap();
//! let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
//! assert_eq!(ops, ["MatMul", "Add", "Relu", "MatMul", "Add"]);
//! let weights: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
//! assert_eq!(weights, ["dense_0.kernel", "dense_0.bias", "dense_1.kernel", "dense_1.bias"]);
//! # let path = std::env::temp_dir().join(format!("tapegrad-onnx-doc-{}.onnx", std::process::id()));
//! onnx::export(&model, &[4], &path)?; // the same model, written to a file
//! # std::fs::remove_file(&path).unwrap();
//! # Ok::<(), onnx::ExportError>(())
//! ```
//!
//! A custom layer gives its rule by implementing [`Module::export_onnx`]: it adds nodes
//! with [`OnnxGraph::node`] (and the helpers of [`OnnxGraph`]), reads its parameters with
//! [`OnnxGraph::param`], calls its children's rules, and returns its output with the shape
//! of one sample:
//!
//! ```
//! use tapegrad_autograd::{Param, Var};
//! use tapegrad_nn::Module;
//! use tapegrad_nn::layers::Sequential;
//! use tapegrad_nn::onnx::{self, ExportError, OnnxGraph, OnnxValue};
//!
//! /// `y = x * scale`, one learned scale per feature.
//! struct Scale(Param<f32>);
//!
//! impl Module<f32> for Scale {
//!     fn forward<'t>(&'t self, x: Var<'t, f32>) -> Var<'t, f32> {
//!         x * x.tape().param(&self.0)
//!     }
//!     fn export_onnx(
//!         &self,
//!         graph: &mut OnnxGraph<f32>,
//!         x: &OnnxValue,
//!     ) -> Result<OnnxValue, ExportError> {
//!         let scale = graph.param(&self.0);
//!         let y = graph.node("Mul", &[&x.name, &scale], vec![]);
//!         Ok(OnnxValue::new(y, x.shape.clone()))
//!     }
//!     tapegrad_nn::register!(f32; param 0 as "scale");
//! }
//!
//! let model = Sequential::new()
//!     .add(Scale(Param::new("scale", ndarray::ArrayD::ones(vec![3]))))
//!     .with_input_shape(&[3]);
//! let graph = onnx::to_model(&model, &[3])?.graph.unwrap();
//! assert_eq!(graph.node[0].name, "scale_0/Mul");
//! assert_eq!(graph.initializer[0].name, "scale_0.scale");
//! # Ok::<(), ExportError>(())
//! ```
//!
//! [`Sequential`]: crate::layers::Sequential
//! [`Dense`]: crate::layers::Dense
//! [`Linear`]: crate::layers::Linear
//! [`ActivationLayer`]: crate::layers::ActivationLayer
//! [`Conv2d`]: crate::layers::Conv2d
//! [`BatchNorm`]: crate::layers::BatchNorm
//! [`LayerNorm`]: crate::layers::LayerNorm
//! [`Flatten`]: crate::layers::Flatten
//! [`Reshape`]: crate::layers::Reshape
//! [`Dropout`]: crate::layers::Dropout
//! [`Embedding`]: crate::layers::Embedding
//! [`Residual`]: crate::layers::Residual
//! [`Rnn`]: crate::layers::Rnn
//! [`Lstm`]: crate::layers::Lstm
//! [`Gru`]: crate::layers::Gru
//! [`MultiHeadAttention`]: crate::layers::MultiHeadAttention
//! [`TransformerEncoderLayer`]: crate::layers::TransformerEncoderLayer
//! [`PositionalEmbedding`]: crate::layers::PositionalEmbedding

pub mod attr;
mod error;
mod graph;
mod ops;
pub mod proto;

use std::path::Path;
use std::sync::Arc;

use prost::Message;
use tapegrad_autograd::Float;
use tapegrad_autograd::scope::in_scope;

pub use error::ExportError;
pub use graph::{BATCH_AXIS, INPUT_NAME, OUTPUT_NAME, OnnxGraph, OnnxValue};

use crate::layers::Sequential;
use crate::module::{InvalidInputShape, Module};
use proto::{ModelProto, OperatorSetIdProto};

/// The version of ONNX's standard operator set the graphs use.
pub const OPSET_VERSION: i64 = 17;
/// The version of the file format (ONNX's IR version 8 goes with opset 17).
pub const IR_VERSION: i64 = 8;

/// The ONNX model of `module` for samples of shape `input_shape` (without the batch axis).
///
/// # Errors
///
/// [`ExportError::InputShape`] when the module cannot take samples of `input_shape` (or
/// was built for another shape), [`ExportError::Unsupported`] naming the first layer
/// without an export rule, [`ExportError::NotBuilt`], [`ExportError::Unexportable`].
pub fn to_model<T: Float, M: Module<T> + ?Sized>(
    module: &M,
    input_shape: &[usize],
) -> Result<ModelProto, ExportError> {
    module.check_input_shape(input_shape)?;
    if let Some((built, _)) = module.built_shapes()
        && built != input_shape
    {
        let expected = format!("{built:?}, the shape it was built for");
        return Err(InvalidInputShape::new(module.kind(), expected, input_shape).into());
    }
    let mut graph = OnnxGraph::new();
    let input = OnnxValue::new(INPUT_NAME, input_shape.to_vec());
    let output = module.export_onnx(&mut graph, &input)?;
    Ok(ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET_VERSION,
        }],
        producer_name: "tapegrad".to_string(),
        producer_version: env!("CARGO_PKG_VERSION").to_string(),
        doc_string: String::new(),
        graph: Some(graph.finish(module.kind(), input_shape, &output)),
    })
}

/// [`to_model`], encoded: the bytes of an `.onnx` file.
///
/// # Errors
///
/// As [`to_model`].
pub fn to_bytes<T: Float, M: Module<T> + ?Sized>(
    module: &M,
    input_shape: &[usize],
) -> Result<Vec<u8>, ExportError> {
    Ok(to_model(module, input_shape)?.encode_to_vec())
}

/// Writes the ONNX model of `module` for samples of shape `input_shape` (without the batch
/// axis) to `path`, atomically (as checkpoints are written: see [`crate::io`]).
///
/// # Errors
///
/// As [`to_model`], and [`ExportError::Write`] when the file cannot be written (whatever
/// was at `path` is then left untouched).
pub fn export<T: Float, M: Module<T> + ?Sized>(
    module: &M,
    input_shape: &[usize],
    path: impl AsRef<Path>,
) -> Result<(), ExportError> {
    let bytes = to_bytes(module, input_shape)?;
    crate::io::write_atomic(path.as_ref(), &bytes)?;
    Ok(())
}

/// Runs a child's rule inside the scope `name` (a segment of the layer path): its nodes
/// are named `parent.name/…` and its errors name it by that path.
pub(crate) fn in_child<R>(name: &str, f: impl FnOnce() -> R) -> R {
    in_scope(&Arc::from(name), f)
}

/// [`Sequential`]'s rule: each layer's rule in order, inside the layer's scope (its nodes
/// are named `dense_0/…`, an error names it by its path).
pub(crate) fn sequential<T: Float>(
    model: &Sequential<T>,
    graph: &mut OnnxGraph<T>,
    input: &OnnxValue,
) -> Result<OnnxValue, ExportError> {
    let mut value = input.clone();
    for (layer, name) in model.layers().iter().zip(model.layer_names()) {
        let scope: Arc<str> = name.into();
        value = in_scope(&scope, || layer.export_onnx(graph, &value))?;
    }
    Ok(value)
}
