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

mod arena;
mod check;
mod float;
pub mod fork_join;
mod gemm_kernel;
#[path = "kernels/conv2d.rs"] pub(crate) mod conv2d_kernel;
#[path = "kernels/pool2d.rs"] pub(crate) mod pool2d_kernel;
mod grads;
mod operand;
pub mod ops;
mod param;
mod scalar;
mod tape;
#[cfg(feature = "proptest")]
pub mod testing;

pub use check::{
    CentralDifferences, GradcheckError, GradcheckOptions, GradientMismatch, gradcheck,
};
pub use float::Float;
pub use grads::Grads;
pub use ops::custom::CustomOp;
pub use param::{Param, ParamId};
pub use tape::{Tape, Var};

/// Re-export of the array crate the tape computes with.
pub use ndarray;
