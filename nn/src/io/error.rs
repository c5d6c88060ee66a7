//! [`IoError`]: what can go wrong while saving or loading weights.

use std::io;
use std::path::PathBuf;

use super::FormatError;

/// Everything that can go wrong while saving or loading weights (or writing a history CSV).
///
/// Every variant names the file involved.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// The file could not be read, created, written or renamed into place.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done (`"read"`, `"write"`, `"rename into place"`, ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The file is not a valid safetensors file (truncated, corrupt header, offsets that do
    /// not cover the data, ...).
    #[error("{path} is not a valid safetensors file (truncated or corrupt?): {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: FormatError,
    },

    /// A parameter of the model has no tensor of its name in the file.
    #[error("{path} has no tensor `{name}` (it holds: {available})")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The parameter's name.
        name: String,
        /// The names the file holds, comma-separated.
        available: String,
    },

    /// A buffer of the model (non-trainable state, e.g. BatchNorm's running statistics) has
    /// no tensor of its name in the file.
    #[error(
        "{path} has no tensor `{name}` for the buffer (non-trainable state, such as \
         BatchNorm's running statistics) of that name (it holds: {available})"
    )]
    MissingBuffer {
        /// The file.
        path: PathBuf,
        /// The buffer's name.
        name: String,
        /// The names the file holds, comma-separated.
        available: String,
    },

    /// The file holds a tensor that matches no parameter (or buffer) of the model.
    #[error(
        "{path} holds tensor `{name}`, which matches no parameter or buffer of the model \
         (a different architecture, or a model that is not built yet?)"
    )]
    UnexpectedTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
    },

    /// A strict load into a module that has no parameters or buffers yet (a model not
    /// built), from a file that holds some.
    #[error(
        "cannot load {path} into a model that is not built (it has no parameters or buffers \
         yet): build it first (`Model::build(input_shape, seed)`, `fit`, \
         `Sequential::with_input_shape` or `Module::build`)"
    )]
    NotBuilt {
        /// The file.
        path: PathBuf,
    },

    /// A tensor's shape differs from its parameter's (or buffer's).
    #[error(
        "tensor `{name}` in {path} has shape {found:?}, but the parameter has shape {expected:?}"
    )]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// The parameter's shape.
        expected: Vec<usize>,
        /// The tensor's shape in the file.
        found: Vec<usize>,
    },

    /// Several tensors are missing, unexpected or mis-shaped (a checkpoint of another
    /// architecture): every one of them, each list sorted by name. A single problem is
    /// reported by its own variant ([`MissingTensor`](IoError::MissingTensor),
    /// [`MissingBuffer`](IoError::MissingBuffer),
    /// [`UnexpectedTensor`](IoError::UnexpectedTensor),
    /// [`ShapeMismatch`](IoError::ShapeMismatch)).
    #[error(
        "{path} does not match the model: {}",
        describe_mismatch(missing, missing_buffers, unexpected, shapes)
    )]
    StateMismatch {
        /// The file.
        path: PathBuf,
        /// The parameters the file has no tensor for, sorted.
        missing: Vec<String>,
        /// The buffers (non-trainable state) the file has no tensor for, sorted.
        missing_buffers: Vec<String>,
        /// The tensors of the file that match no parameter or buffer, sorted.
        unexpected: Vec<String>,
        /// The tensors whose shape differs: `(name, the model's shape, the file's shape)`,
        /// sorted by name.
        shapes: Vec<(String, Vec<usize>, Vec<usize>)>,
    },
    /// A tensor's element type differs from the model's.
    #[error("tensor `{name}` in {path} has dtype {found}, but the model uses {expected}")]
    DtypeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// The model's element type (`F32` or `F64`).
        expected: &'static str,
        /// The tensor's element type in the file.
        found: String,
    },

    /// Two parameters (or buffers) share a name, so they cannot be told apart in a file.
    #[error(
        "two parameters or buffers are named `{name}`; weights are stored by name, names must \
         be unique"
    )]
    DuplicateName {
        /// The shared name.
        name: String,
    },

    /// The element type has no safetensors equivalent (only `f32` and `f64` are supported).
    #[error("element type {dtype} cannot be stored in safetensors (only F32 and F64)")]
    UnsupportedDtype {
        /// The type's name (`Float::DTYPE`).
        dtype: &'static str,
    },
}

/// The body of [`IoError::StateMismatch`]'s message: each non-empty list, one clause each.
fn describe_mismatch(
    missing: &[String],
    missing_buffers: &[String],
    unexpected: &[String],
    shapes: &[(String, Vec<usize>, Vec<usize>)],
) -> String {
    let quoted = |names: &[String]| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut clauses = Vec::new();
    if !missing.is_empty() {
        clauses.push(format!("missing {}", quoted(missing)));
    }
    if !missing_buffers.is_empty() {
        clauses.push(format!(
            "missing buffers (non-trainable state, such as BatchNorm's running statistics) {}",
            quoted(missing_buffers)
        ));
    }
    if !unexpected.is_empty() {
        clauses.push(format!("unexpected {}", quoted(unexpected)));
    }
    if !shapes.is_empty() {
        let each: Vec<String> = shapes
            .iter()
            .map(|(name, expected, found)| {
                format!("`{name}` is {found:?} in the file, {expected:?} in the model")
            })
            .collect();
        clauses.push(format!("mis-shaped {}", each.join(", ")));
    }
    clauses.join("; ")
}
