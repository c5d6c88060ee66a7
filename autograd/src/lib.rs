//! # tapegrad-autograd
//!
//! Tape-based reverse-mode automatic differentiation over [`ndarray`] arrays.
//!
//! Every operation on a [`Var`] is recorded on a [`Tape`]; [`Var::backward`] walks the tape
//! once in reverse and derives every gradient from the per-op rules in [`ops`]. Gradients
//! can themselves be differentiated ([`Tape::grad`]), users can add their own ops
//! ([`CustomOp`]), [`gradcheck`] proves any gradient against finite differences and
//! [`gradgradcheck`] any second derivative. [`functional`] holds the transforms of a function
//! of arrays: `vjp`, `jvp`, `hvp`, `jacobian`, `hessian`.
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
//!
//! ## Helper functions that build part of a graph
//!
//! A `Var<'t, T>` borrows its tape for `'t`, and the tape is `Tape<'t, T>` (`'t` is also how
//! long the parameters bound to it live), so a function that records ops takes the tape as
//! `&'t Tape<'t, T>` and returns `Var<'t, T>`, with one lifetime throughout:
//!
//! ```
//! use ndarray::array;
//! use tapegrad_autograd::{Float, Param, Tape, Var};
//!
//! /// An affine layer recorded on `tape`: `x w + b`.
//! fn affine<'t, T: Float>(tape: &'t Tape<'t, T>, x: Var<'t, T>, w: &'t Param<T>, b: &'t Param<T>) -> Var<'t, T> {
//!     x.matmul(tape.param(w)) + tape.param(b)
//! }
//!
//! let w = Param::new("w", array![[1.0_f64], [2.0]].into_dyn());
//! let b = Param::new("b", array![0.5].into_dyn());
//! let tape = Tape::new();
//! let x = tape.constant(array![[3.0, 4.0]].into_dyn());
//! let y = affine(&tape, x, &w, &b).tanh().sum();
//! assert_eq!(y.backward().param(&w).unwrap().shape(), &[2, 1]);
//! ```
//!
//! A function that only combines `Var`s needs no tape argument: `x.tape()` gives it.
//!
//! ## What an output that does not depend on a variable gets
//!
//! | | first order, [`Var::backward`] → [`Grads`] | higher order, [`Tape::grad`] |
//! |---|---|---|
//! | depends on it | `Some(&array)` | the gradient, as a `Var` |
//! | does not depend on it | `None` (nothing was computed) | a zero `Var` of its shape (so it composes) |
//!
//! ```
//! use ndarray::array;
//! use tapegrad_autograd::{Param, Tape};
//!
//! let used = Param::new("used", array![2.0_f64].into_dyn());
//! let unused = Param::new("unused", array![5.0_f64].into_dyn());
//! let tape = Tape::new();
//! let (u, n) = (tape.param(&used), tape.param(&unused));
//! let loss = (u * u).sum();
//! let grads = loss.backward();
//! assert_eq!(grads.param(&used).unwrap(), &array![4.0].into_dyn());
//! assert!(grads.param(&unused).is_none());              // Grads: None
//! let [du, dn] = tape.grad(loss, &[u, n])[..] else { unreachable!() };
//! assert_eq!(du.to_array(), array![4.0].into_dyn());
//! assert_eq!(dn.to_array(), array![0.0].into_dyn());    // tape.grad: zeros
//! ```
#![warn(missing_docs)]
#![deny(unsafe_code)]

mod arena;
mod backward;
mod check;
mod compiled;
mod float;
pub mod functional;
mod grads;
mod graph;
mod inputs;
#[allow(unsafe_code)]
mod kernels;
mod operand;
pub mod ops;
mod param;
pub mod scope;
mod shape;
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

/// How tensor memory is kept between steps: the library's buffer pool, one per thread.
///
/// Kernels take their outputs and workspaces from the calling thread's pool; a dropped
/// [`Tape`] gives its values back, the backward sweep its intermediate gradients, and a
/// dropped [`Grads`] its arrays. From its second step on, a training loop finds every buffer
/// it needs there, so it neither calls the allocator for them nor takes a page fault to
/// touch them again. The process's allocator and its settings are left alone.
///
/// Blocks are kept by element layout and capacity class (four classes per octave, so a
/// block is at most 25 % larger than asked for). A class keeps at most as many blocks as it
/// ever had out at once, and a thread at most [`limit`](memory::limit) bytes (1 GiB unless
/// [`set_limit`](memory::set_limit) says otherwise); what is given back beyond that is
/// freed, and a thread's blocks are freed when it exits. [`release`](memory::release) frees
/// the calling thread's blocks now, for a program that is done training and wants its
/// footprint down.
///
/// Other crates' kernels can use the pool too: [`vec`](memory::vec) takes an empty vector
/// with room for at least the elements asked for, [`recycle`](memory::recycle) and
/// [`recycle_array`](memory::recycle_array) give a buffer back.
///
/// ```
/// use tapegrad_autograd::{Tape, memory};
/// use ndarray::array;
///
/// {
///     let tape = Tape::<f32>::new();
///     let x = tape.constant(array![1.0_f32, 2.0, 3.0].into_dyn());
///     let _y = x.exp();               // its buffer comes from this thread's pool
/// }                                   // and goes back to it with the tape
/// let kept = memory::held();
/// assert!(kept > 0);
/// assert_eq!(memory::release(), kept);  // done training: footprint down
/// assert_eq!(memory::held(), 0);
/// ```
pub mod memory {
    pub use crate::kernels::pool::{held, limit, recycle, recycle_array, release, set_limit, vec};
}

pub use check::{
    CentralDifferences, GradcheckError, GradcheckOptions, GradientMismatch, gradcheck,
    gradgradcheck,
};
pub use compiled::FloatFn;
pub use float::Float;
pub use grads::Grads;
pub use inputs::Inputs;
pub use ops::axes::Axes;
pub use ops::custom::CustomOp;
pub use ops::window::{Conv2dOptions, Pair, Pool2dOptions};
pub use param::{Param, ParamId};
pub use shape::Shape;
pub use tape::Tape;
pub use var::Var;

/// Re-export of the array crate the tape computes with.
pub use ndarray;
