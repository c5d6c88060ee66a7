//! Attention and Transformer layers, in PyTorch's semantics and state-dict names:
//! [`scaled_dot_product_attention`], [`MultiHeadAttention`], [`TransformerEncoderLayer`],
//! GPT-2's [`DecoderBlock`] (with its [`CausalSelfAttention`]) and the learned
//! [`PositionalEmbedding`].

mod decoder_block;
mod encoder;
mod heads;
mod multi_head;
mod onnx;
mod positional;
mod sdpa;

pub use decoder_block::{CausalSelfAttention, DecoderBlock};
pub use encoder::TransformerEncoderLayer;
pub use multi_head::{AttendOptions, MultiHeadAttention};
pub use positional::PositionalEmbedding;
pub use sdpa::{scaled_dot_product_attention, scaled_dot_product_attention_with_weights};
