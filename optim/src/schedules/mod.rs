//! Learning-rate schedules (closed forms of PyTorch's `torch.optim.lr_scheduler` classes)
//! and the [`Scheduler`] that applies one to an optimizer.
//!
//! A schedule is a pure function of a step count: [`LrSchedule::lr`] gives the learning
//! rate in force after `step` scheduler steps, which is what the PyTorch scheduler sets after
//! being stepped `step` times. Whether a step is an epoch or a batch is the caller's choice:
//! a [`Scheduler`] is stepped once per epoch or once per batch (per-batch warm-up is common).
//! Every schedule composes with [`LrSchedule::then`] (PyTorch's `SequentialLR`):
//!
//! ```
//! use ndarray::arr1;
//! use tapegrad_autograd::{Grads, Param};
//! use tapegrad_optim::schedules::{CosineAnnealingLr, LinearWarmup, LrSchedule, Scheduler};
//! use tapegrad_optim::{Optimizer, SgdConfig};
//!
//! let base_lr = 0.1;
//! // 3 epochs of linear warm-up from 0.2 · base_lr, then cosine annealing over 8 epochs.
//! let schedule = LinearWarmup::new(base_lr, 0.2, 3)?
//!     .then(3, CosineAnnealingLr::new(base_lr, 8, 0.0)?)?;
//! let mut w = Param::new("w", arr1(&[1.0_f64]).into_dyn());
//! let mut opt = SgdConfig::new(base_lr).momentum(0.9).build()?;
//! let mut scheduler = Scheduler::new(&schedule, &mut opt)?;
//! for _epoch in 0..11 {
//!     for _batch in 0..4 {
//!         let mut grads = Grads::new();
//!         grads.insert(w.id(), w.value().mapv(|x| 2.0 * x));
//!         opt.step([&mut w], &grads)?;
//!     }
//!     scheduler.step(&mut opt)?;
//! }
//! assert!((schedule.lr(0) - 0.02).abs() < 1e-15);
//! assert!((schedule.lr(3) - 0.1).abs() < 1e-15);
//! assert!(schedule.lr(11).abs() < 1e-15);
//! assert_eq!(opt.lr(), schedule.lr(11));
//! # Ok::<(), tapegrad_optim::OptimError>(())
//! ```
//!
//! Every constructor checks its hyper-parameters and returns
//! [`OptimError::InvalidHyperParameter`] for a bad one.

mod basic;
mod scheduler;
mod sequential;

pub use basic::{CosineAnnealingLr, ExponentialLr, LinearWarmup, MultiStepLr, StepLr};
pub use scheduler::Scheduler;
pub use sequential::SequentialLr;

use crate::error::OptimError;

/// A learning rate as a function of the step (an epoch or a batch, as the caller counts).
///
/// Implement [`lr`](LrSchedule::lr) for a schedule of your own; it gets
/// [`then`](LrSchedule::then) and works with [`Scheduler`] like the built-in ones:
///
/// ```
/// use tapegrad_optim::schedules::{ExponentialLr, LrSchedule};
///
/// /// Halves the rate every 10 steps after holding it for 5.
/// struct Hold(f64);
///
/// impl LrSchedule for Hold {
///     fn lr(&self, _step: usize) -> f64 {
///         self.0
///     }
/// }
///
/// let schedule = Hold(0.1).then(5, ExponentialLr::new(0.1, 0.5_f64.powf(0.1))?)?;
/// assert_eq!(schedule.lr(4), 0.1);
/// assert!((schedule.lr(15) - 0.05).abs() < 1e-15);
/// # Ok::<(), tapegrad_optim::OptimError>(())
/// ```
pub trait LrSchedule {
    /// The learning rate in force after `step` scheduler steps (during epoch or batch `step`,
    /// 0-based).
    fn lr(&self, step: usize) -> f64;

    /// This schedule until step `milestone`, then `next`, whose step 0 is `milestone`
    /// (PyTorch's `SequentialLR([self, next], milestones=[milestone])`). Chains: a
    /// [`SequentialLr`]'s `then` appends, with milestones counted from the start.
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidHyperParameter`] (named `milestones`) if, on a sequence,
    /// `milestone` is not after its last milestone.
    fn then(
        self,
        milestone: usize,
        next: impl LrSchedule + Send + Sync + 'static,
    ) -> Result<SequentialLr, OptimError>
    where
        Self: Sized + Send + Sync + 'static,
    {
        SequentialLr::new(self).then(milestone, next)
    }
}

impl<S: LrSchedule + ?Sized> LrSchedule for &S {
    fn lr(&self, step: usize) -> f64 {
        (**self).lr(step)
    }
}

impl<S: LrSchedule + ?Sized> LrSchedule for Box<S> {
    fn lr(&self, step: usize) -> f64 {
        (**self).lr(step)
    }
}
