//! # tapegrad
//!
//! Re-exports the three crates: [`autograd`], [`nn`] and [`optim`].
pub use tapegrad_autograd as autograd;
pub use tapegrad_nn as nn;
pub use tapegrad_optim as optim;
