//! Layers: [`Dense`], [`Sequential`], [`ActivationLayer`] (and the [`Activation`] functions),
//! [`Dropout`], [`Flatten`], [`LayerNorm`] (and the [`layer_norm`] function).
//!
//! Every layer implements [`Module`](crate::Module), computes with autograd ops only (no
//! hand-written backward), and follows Keras' shapes, defaults and naming.

mod activation;
mod dense;
mod dropout;
mod flatten;
mod layer_norm;
mod sequential;

pub use activation::{Activation, ActivationLayer};
pub use dense::Dense;
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use layer_norm::{LayerNorm, layer_norm};
pub use sequential::{DEFAULT_SEED, Sequential};
