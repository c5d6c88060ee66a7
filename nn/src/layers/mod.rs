//! Layers: [`Dense`], [`Linear`] (PyTorch's layout and names), [`Sequential`], [`ActivationLayer`] (and the [`Activation`] functions),
//! [`Dropout`], [`Flatten`], [`Reshape`], [`LayerNorm`] (and the [`layer_norm`] function),
//! [`BatchNorm`] (with running statistics kept as [`Buffer`](crate::Buffer)s), [`Embedding`],
//! [`Residual`] (`x + f(x)`), [`Conv2d`] (and its [`Padding`]), [`MaxPool2d`], [`AvgPool2d`], [`GlobalAvgPool2d`].
//! Recurrent (PyTorch's semantics and state-dict names): [`Rnn`], [`Lstm`], [`Gru`] and the cells [`RnnCell`], [`LstmCell`], [`GruCell`].
//! Attention (PyTorch's semantics and names): [`scaled_dot_product_attention`], [`MultiHeadAttention`], [`TransformerEncoderLayer`], [`DecoderBlock`], [`PositionalEmbedding`].
//!
//! Every layer implements [`Module`](crate::Module), computes with autograd ops only (no
//! hand-written backward), and follows Keras' shapes, defaults and naming.

mod activation;
mod attention;
mod batch_norm;
mod conv2d;
mod dense;
mod dropout;
mod embedding;
mod flatten;
mod gain_offset;
mod kernel_bias;
mod layer_norm;
mod linear;
mod pool;
mod recurrent;
mod reshape;
mod residual;
mod sequential;

pub use activation::{Activation, ActivationLayer};
pub use attention::{
    AttendOptions, CausalSelfAttention, DecoderBlock, MultiHeadAttention, PositionalEmbedding,
    TransformerEncoderLayer, scaled_dot_product_attention,
    scaled_dot_product_attention_with_weights,
};
pub use batch_norm::BatchNorm;
pub use conv2d::{Conv2d, Padding};
pub use dense::Dense;
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use flatten::Flatten;
pub use layer_norm::{LayerNorm, layer_norm};
pub use linear::Linear;
pub use pool::{AvgPool2d, GlobalAvgPool2d, MaxPool2d};
pub use recurrent::{Gru, GruCell, Lstm, LstmCell, LstmState, Nonlinearity, Rnn, RnnCell};
pub use reshape::Reshape;
pub use residual::Residual;
pub use sequential::{DEFAULT_SEED, Sequential};

use tapegrad_autograd::{Float, Var};

/// Frees `used`'s value once `result` has been computed from it, when nothing can read it
/// again: no gradient is being recorded (so no backward pass will), `used` needs none, and
/// `result` is not `used` itself. How a forward pass under `no_grad` keeps one layer's input
/// and output alive rather than every intermediate.
pub(crate) fn free_once_used<'t, T: Float>(used: Var<'t, T>, result: Var<'t, T>) {
    let tape = used.tape();
    if !tape.is_grad_enabled() && used.index() != result.index() && !used.requires_grad() {
        tape.release_value(used);
    }
}
