//! Layers, losses and a Keras-style training loop built on tapegrad autograd.
pub mod data;
