//! # tapegrad-nn
//!
//! Layers, losses, initializers and metrics — and a Keras-style training loop — built on
//! [`tapegrad_autograd`]. Everything differentiable here is composed from autograd ops:
//! no layer or loss has backward code of its own.
//!
//! - [`Module`]: the trait of layers and models: `forward` on a
//!   [`Var`](tapegrad_autograd::Var), and a `visit` that hands parameters, [`Buffer`]s of
//!   non-trainable state and child modules to the container, which names them by path
//!   (`"block_1.hidden.kernel"`); build for an input shape and train/eval mode have defaults.
//! - [`layers`]: [`Dense`](layers::Dense), [`Sequential`](layers::Sequential) (with a Keras
//!   `summary()`), [`ActivationLayer`](layers::ActivationLayer) and the
//!   [`Activation`](layers::Activation) functions, [`Dropout`](layers::Dropout),
//!   [`Flatten`](layers::Flatten), [`Reshape`](layers::Reshape),
//!   [`LayerNorm`](layers::LayerNorm), [`BatchNorm`](layers::BatchNorm),
//!   [`Embedding`](layers::Embedding), [`Residual`](layers::Residual), [`Conv2d`](layers::Conv2d), [`MaxPool2d`](layers::MaxPool2d),
//!   [`AvgPool2d`](layers::AvgPool2d), [`GlobalAvgPool2d`](layers::GlobalAvgPool2d).
//!   Recurrent, with PyTorch's semantics and state-dict names: [`Rnn`](layers::Rnn), [`Lstm`](layers::Lstm), [`Gru`](layers::Gru) and their cells.
//!   Attention and Transformers in PyTorch's names: [`MultiHeadAttention`](layers::MultiHeadAttention), [`TransformerEncoderLayer`](layers::TransformerEncoderLayer), [`DecoderBlock`](layers::DecoderBlock), [`PositionalEmbedding`](layers::PositionalEmbedding), [`scaled_dot_product_attention`](layers::scaled_dot_product_attention).
//! - [`init`]: Keras' initializers (Glorot, He, LeCun, ...), drawn from a seeded generator.
//! - [`losses`]: MSE, MAE, Huber, binary and categorical cross-entropies, as functions;
//!   [`cross_entropy`](losses::cross_entropy) over sequences with an ignored index.
//! - [`metrics`]: accuracy (binary, categorical, sparse) and MAE on arrays.
//! - [`model`]: [`Model`](model::Model), Keras' `compile` / `fit` / `evaluate` / `predict`
//!   around any module; [`callbacks`] (early stopping, checkpoints, learning-rate schedules,
//!   stopping on NaN) and the [`history`] that `fit` returns.
//! - [`io`]: weights saved and loaded in the safetensors format.
//! - [`data`]: IDX (MNIST) and CSV readers, batching and shuffling; word lists and their
//!   character encoding for language models ([`CharVocab`](data::CharVocab)).
//! - [`sampling`]: drawing tokens from logits (temperature, top-k) and greedy decoding.
//! - [`tensorboard`]: TensorBoard event files ([`SummaryWriter`](tensorboard::SummaryWriter)).
//! - [`onnx`]: ONNX export of a trained model ([`onnx::export`], [`Model::export_onnx`](model::Model::export_onnx)),
//!   for inference in ONNX runtimes.
//!
//! ```
//! use ndarray::Array2;
//! use tapegrad_autograd::Tape;
//! use tapegrad_nn::layers::{Activation, Dense, Sequential};
//! use tapegrad_nn::{losses, metrics, Module};
//!
//! let model = Sequential::<f32>::new()
//!     .add(Dense::new(16).activation(Activation::Relu))
//!     .add(Dense::new(3))
//!     .with_input_shape(&[4]);
//!
//! let x = Array2::<f32>::from_elem((2, 4), 0.5).into_dyn();
//! let tape = Tape::new();
//! let logits = model.forward(tape.constant(x));
//! let loss = losses::sparse_categorical_cross_entropy_indices(logits, &[0, 2]);
//! let grads = loss.backward();
//! assert_eq!(grads.num_params(), 4);
//! let accuracy = metrics::sparse_categorical_accuracy_indices(&logits.to_array(), &[0, 2]);
//! assert!((0.0..=1.0).contains(&accuracy));
//! ```
#![warn(missing_docs)]

pub mod buffer;
pub mod callbacks;
pub mod communicator;
pub mod data;
pub mod history;
pub mod init;
pub mod io;
pub mod layers;
pub mod losses;
pub mod metrics;
pub mod model;
pub mod module;
pub mod onnx;
pub mod sampling;
pub mod snapshot;
pub mod tensorboard;

/// `Debug` that prints the `Display` message: what `fn main() -> Result<(), Box<dyn Error>>`
/// shows when it returns an error through `?`.
macro_rules! debug_as_display {
    ($($ty:ty),* $(,)?) => {$(
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(self, f)
            }
        }
    )*};
}

debug_as_display!(
    model::FitError,
    io::IoError,
    io::FormatError,
    data::DataError,
    callbacks::CallbackError,
    communicator::CommError,
    module::InvalidInput,
    module::InvalidInputShape,
    module::ModuleGradcheckError,
    tensorboard::SummaryError,
    onnx::ExportError,
);

pub use buffer::Buffer;
pub use module::Module;
