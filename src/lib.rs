#![doc = include_str!("../README.md")]
//!
//! ## This crate
//!
//! Re-exports the three crates: [`autograd`], [`nn`] and [`optim`], and adds what the
//! examples share: [`datasets`] (Fashion-MNIST and MNIST, split and scaled), [`models`]
//! (the networks they train) and [`report`] (the confusion matrix and per-class accuracy
//! they print).
//!
//! ## Features
//!
//! - `proptest` (off by default): `tapegrad::autograd::testing`, the proptest strategies (shapes,
//!   broadcast pairs, arrays away from kinks) for property-testing ops, losses and layers,
//!   through this one dependency: `tapegrad = { version = "0.1", features = ["proptest"] }`.
//!
//! ```
//! # #[cfg(feature = "proptest")]
//! # {
//! use tapegrad::autograd::testing::{array, shape};
//!
//! let _shapes = shape(3, 4); // proptest strategies, for `proptest!`
//! let _arrays = array(vec![2, 3], -1.0, 1.0);
//! # }
//! ```
pub use tapegrad_autograd as autograd;
pub use tapegrad_nn as nn;
pub use tapegrad_optim as optim;

pub mod datasets;
pub mod models;
/// Re-export of the random number crate: [`Module::build`](nn::Module::build) takes a
/// [`rand::rngs::StdRng`], seeded as `StdRng::seed_from_u64(seed)`.
///
/// ```
/// use tapegrad::rand::{SeedableRng, rngs::StdRng};
///
/// let _rng = StdRng::seed_from_u64(42);
/// ```
pub use rand;

pub mod report;

/// The book's chapters (`docs/src/`), included so that `cargo test --doc` compiles and runs
/// every Rust block in them, as it does the README's.
#[cfg(doctest)]
mod book {
    macro_rules! chapters {
        ($($name:ident = $file:literal),* $(,)?) => {
            $(
                #[doc = include_str!(concat!("../docs/src/", $file))]
                pub struct $name;
            )*
        };
    }
    chapters! {
        GettingStarted = "getting-started.md",
        Autograd = "autograd.md",
        Gradcheck = "gradcheck.md",
        Models = "models.md",
        Optimizers = "optimizers.md",
        Cnn = "cnn.md",
        Sequences = "sequences.md",
        Data = "data.md",
        Checkpoints = "checkpoints.md",
        Export = "export.md",
        Mpi = "mpi.md",
        Porting = "porting.md",
        Design = "design.md",
        Performance = "performance.md",
    }
}

/// The names most programs use: `use tapegrad::prelude::*;`.
pub mod prelude {
    pub use tapegrad_autograd::{
        Conv2dOptions, CustomOp, GradcheckOptions, Grads, Param, Pool2dOptions, Tape, Var,
        gradcheck,
    };
    pub use tapegrad_nn::layers::{
        Activation, ActivationLayer, AttendOptions, AvgPool2d, BatchNorm, Conv2d, DecoderBlock,
        Dense, Dropout, Embedding, Flatten, GlobalAvgPool2d, Gru, GruCell, LayerNorm, Linear, Lstm,
        LstmCell, LstmState, MaxPool2d, MultiHeadAttention, Padding, PositionalEmbedding, Reshape,
        Rnn, RnnCell, Sequential, TransformerEncoderLayer, scaled_dot_product_attention,
    };
    pub use tapegrad_nn::losses::{CrossEntropy, cross_entropy};
    pub use tapegrad_nn::model::{FitOptions, Loss, Metric, Model, SchedulePer};
    pub use tapegrad_nn::sampling::{Sampling, sample_categorical};
    pub use tapegrad_nn::{Buffer, Module, losses, register};
    pub use tapegrad_optim::schedules::{LrSchedule, Scheduler};
    pub use tapegrad_optim::{Adagrad, Adam, AdamW, Optimizer, RmsProp, Sgd};
}
