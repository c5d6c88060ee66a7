//! # tapegrad-autograd
//!
//! Tape-based reverse-mode automatic differentiation over [`ndarray`] arrays.
//!
//! Every operation on a [`Var`] is recorded on a [`Tape`]; [`Var::backward`] walks the tape
//! once in reverse and derives every gradient from the per-op rules in [`ops`]. Gradients
//! can themselves be differentiated ([`Tape::grad`]), users can add their own ops
//! ([`CustomOp`]), and [`gradcheck`] proves any gradient against finite differences.
//!
//! ```
//! use ndarray::array;
//! use tapegrad_autograd::{Param, Tape};
//!
//! let w = Param::new("w", array![[0.5_f64, -1.0], [2.0, 0.25]].into_dyn());
//! let tape = Tape::new();
//! let x = tape.constant(array![[1.0, 2.0]].into_dyn());
//! let w_var = tape.param(&w);
//! let loss = x.matmul(w_var).tanh().sum(); // records 3 ops
//! let grads = loss.backward();             // one reverse sweep
//! assert_eq!(grads.param(&w).unwrap().shape(), &[2, 2]);
//! ```
#![warn(missing_docs)]
#![deny(unsafe_code)]

mod arena;
mod backward;
mod check;
mod float;
mod grads;
mod graph;
#[allow(unsafe_code)]
mod kernels;
mod operand;
pub mod ops;
mod param;
pub mod scope;
mod tape;
#[cfg(feature = "proptest")]
pub mod testing;
mod var;

/// Fork-join on two threads, with a helper thread that spins between jobs: what tapegrad's
/// kernels use to run the two halves of their largest work side by side, open to other
/// crates' kernels (an optimizer's update of a large parameter, a custom op).
pub mod fork_join {
    pub use crate::kernels::fork_join::join;
}

pub use check::{
    CentralDifferences, GradcheckError, GradcheckOptions, GradientMismatch, gradcheck,
};
pub use float::Float;
pub use grads::Grads;
pub use ops::custom::CustomOp;
pub use ops::window::{Conv2dOptions, Pair, Pool2dOptions};
pub use param::{Param, ParamId};
pub use tape::Tape;
pub use var::Var;

/// Re-export of the array crate the tape computes with.
pub use ndarray;
