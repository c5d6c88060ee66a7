//! # tapegrad
//!
//! Re-exports the three crates: [`autograd`], [`nn`] and [`optim`], and adds [`report`],
//! the confusion matrix and per-class accuracy the examples print.
pub use tapegrad_autograd as autograd;
pub use tapegrad_nn as nn;
pub use tapegrad_optim as optim;

pub mod report;

/// The names most programs use: `use tapegrad::prelude::*;`.
pub mod prelude {
    pub use tapegrad_autograd::{
        Conv2dOptions, CustomOp, GradcheckOptions, Grads, Param, Pool2dOptions, Tape, Var,
        gradcheck,
    };
    pub use tapegrad_nn::layers::{
        Activation, AvgPool2d, BatchNorm, Conv2d, Dense, Dropout, Embedding, Flatten,
        GlobalAvgPool2d, LayerNorm, MaxPool2d, Padding, Reshape, Sequential,
    };
    pub use tapegrad_nn::model::{FitOptions, Loss, Metric, Model, SchedulePer};
    pub use tapegrad_nn::{Buffer, Module, losses};
    pub use tapegrad_optim::schedules::{LrSchedule, Scheduler};
    pub use tapegrad_optim::{Adagrad, Adam, AdamW, Optimizer, RmsProp, Sgd};
}

// The README's Rust blocks are compiled and run as doctests, so the tour never rots.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
