//! Recurrent layers with PyTorch's semantics, parameter names and layouts: the cells
//! [`RnnCell`], [`LstmCell`], [`GruCell`] (one step, for loops written by hand) and the
//! stacked, optionally bidirectional layers [`Rnn`], [`Lstm`], [`Gru`] (a whole sequence,
//! with initial and final states and variable-length batches).
//!
//! Every layer projects the input of all time steps in one product (`x · W_ihᵀ + b_ih`)
//! and then runs `h · W_hhᵀ + b_hh` and the gates step by step, with autograd ops only.

mod cell;
mod layer;
mod onnx;
mod params;
mod stacked;
mod state;

pub use cell::{GruCell, LstmCell, RnnCell};
pub use layer::{Gru, Lstm, Rnn};
pub use params::Nonlinearity;
pub use state::LstmState;
