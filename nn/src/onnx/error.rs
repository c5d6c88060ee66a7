//! [`ExportError`]: why a module could not be exported.

use crate::io::IoError;
use crate::module::{InvalidInputShape, layer_name};

/// Why an ONNX export failed.
#[derive(thiserror::Error)]
pub enum ExportError {
    /// A layer has no export rule: a custom [`Module`](crate::Module) that does not
    /// implement [`export_onnx`](crate::Module::export_onnx).
    #[error(
        "layer `{layer}` ({kind}) has no ONNX export rule: implement `Module::export_onnx` for \
         it, adding its nodes to the graph (see `tapegrad_nn::onnx`)"
    )]
    Unsupported {
        /// The layer's path in the model (`res_block_0`), or its kind outside a container.
        layer: String,
        /// The layer's kind ([`Module::kind`](crate::Module::kind)): for a custom module,
        /// its type name.
        kind: String,
    },
    /// A layer has no parameters yet.
    #[error(
        "layer `{layer}` is not built: build the model (`with_input_shape`, `Model::build` or a \
         first `fit`) before exporting it"
    )]
    NotBuilt {
        /// The layer's path.
        layer: String,
    },
    /// A layer is configured in a way its rule does not export.
    #[error("layer `{layer}` cannot be exported: {reason}")]
    Unexportable {
        /// The layer's path.
        layer: String,
        /// What is not exported, and what is.
        reason: String,
    },
    /// [`Model::export_onnx`](crate::model::Model::export_onnx) on a model not built yet:
    /// its input shape is not known.
    #[error(
        "the model's input shape is not known: build it (`Model::build` or a first `fit`) \
         before exporting it"
    )]
    UnknownInputShape,
    /// The module cannot take samples of the shape given.
    #[error(transparent)]
    InputShape(#[from] InvalidInputShape),
    /// The file could not be written.
    #[error(transparent)]
    Write(#[from] IoError),
}

impl ExportError {
    /// [`ExportError::Unsupported`] for a layer of kind `kind`, named by its path when a
    /// container exports it.
    pub fn unsupported(kind: &str) -> Self {
        ExportError::Unsupported {
            layer: layer_name(kind),
            kind: kind.to_string(),
        }
    }

    /// [`ExportError::NotBuilt`] for a layer of kind `kind`.
    pub fn not_built(kind: &str) -> Self {
        ExportError::NotBuilt {
            layer: layer_name(kind),
        }
    }

    /// [`ExportError::Unexportable`] for a layer of kind `kind`, because of `reason`.
    pub fn unexportable(kind: &str, reason: impl Into<String>) -> Self {
        ExportError::Unexportable {
            layer: layer_name(kind),
            reason: reason.into(),
        }
    }
}
