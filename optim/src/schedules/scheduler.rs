//! [`Scheduler`]: a schedule driving an optimizer's learning rate, one `step` per epoch or
//! per batch (PyTorch's `scheduler.step()`).

use tapegrad_autograd::Float;

use super::LrSchedule;
use crate::error::OptimError;
use crate::optimizer::Optimizer;

/// Drives an optimizer's learning rate with a schedule, as a PyTorch scheduler does:
/// [`Scheduler::new`] sets the rate of step 0, and each [`Scheduler::step`] (called after
/// the optimizer's step, once per epoch or once per batch as you choose) sets the rate of the
/// next step.
///
/// The scheduler owns its schedule, or borrows it (`Scheduler::new(&schedule, ..)`), and
/// takes the optimizer only in its calls, so the optimizer stays free for `step`.
///
/// A per-batch warm-up followed by cosine annealing:
///
/// ```
/// use ndarray::arr1;
/// use tapegrad_autograd::{Grads, Param};
/// use tapegrad_optim::schedules::{CosineAnnealingLr, LinearWarmup, LrSchedule, Scheduler};
/// use tapegrad_optim::{Optimizer, SgdConfig};
///
/// let (epochs, batches) = (3, 4);
/// let mut w = Param::new("w", arr1(&[1.0_f64]).into_dyn());
/// let mut opt = SgdConfig::new(0.1).momentum(0.9).build()?;
/// // 4 batches of warm-up from 0.01 to 0.1, then cosine annealing over the other 8.
/// let schedule = LinearWarmup::new(0.1, 0.1, 4)?.then(4, CosineAnnealingLr::new(0.1, 8, 0.0)?)?;
/// let mut scheduler = Scheduler::new(schedule, &mut opt)?;
/// let mut seen = Vec::new();
/// for _epoch in 0..epochs {
///     for _batch in 0..batches {
///         let mut grads = Grads::new();
///         grads.insert(w.id(), w.value().mapv(|x| 2.0 * x));
///         seen.push(opt.lr());
///         opt.step([&mut w], &grads)?;
///         scheduler.step(&mut opt)?;
///     }
/// }
/// assert_eq!(scheduler.steps(), 12);
/// let want: Vec<f64> = (0..12).map(|step| scheduler.schedule().lr(step)).collect();
/// assert_eq!(seen, want);
/// assert!((seen[0] - 0.01).abs() < 1e-15 && (seen[4] - 0.1).abs() < 1e-15);
/// # Ok::<(), tapegrad_optim::OptimError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Scheduler<S> {
    schedule: S,
    steps: usize,
}

impl<S: LrSchedule> Scheduler<S> {
    /// Starts `schedule`: sets `optimizer`'s learning rate to `schedule.lr(0)`.
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidHyperParameter`] (named `lr`) if the schedule's rate is negative
    /// or not finite (the optimizer's rate is then unchanged).
    pub fn new<T: Float>(
        schedule: S,
        optimizer: &mut (impl Optimizer<T> + ?Sized),
    ) -> Result<Self, OptimError> {
        Self::resume(schedule, 0, optimizer)
    }

    /// Starts the schedule `make` builds from `optimizer`'s current learning rate (the base
    /// rate, given once, to the optimizer), as PyTorch's `StepLR(optimizer, 30, 0.1)` takes
    /// it from the optimizer; sets the rate to the schedule's `lr(0)`.
    ///
    /// ```
    /// use tapegrad_optim::schedules::{Scheduler, StepLr};
    /// use tapegrad_optim::{AdamWConfig, Optimizer};
    ///
    /// // torch: opt = AdamW(params, lr=1e-3, weight_decay=0.01); sched = StepLR(opt, 30, 0.1)
    /// let mut opt = AdamWConfig::new(1e-3).weight_decay(0.01).build()?;
    /// let mut sched = Scheduler::for_optimizer(&mut opt, |lr| StepLr::new(lr, 30, 0.1))?;
    /// for _epoch in 0..30 {
    ///     // ... the epoch's optimizer steps ...
    ///     sched.step(&mut opt)?;
    /// }
    /// assert!((Optimizer::<f32>::lr(&opt) - 1e-4).abs() < 1e-12);
    /// # Ok::<(), tapegrad_optim::OptimError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// What `make` returns, or as [`Scheduler::new`].
    pub fn for_optimizer<T: Float>(
        optimizer: &mut (impl Optimizer<T> + ?Sized),
        make: impl FnOnce(f64) -> Result<S, OptimError>,
    ) -> Result<Self, OptimError> {
        let schedule = make(optimizer.lr())?;
        Self::new(schedule, optimizer)
    }

    /// `schedule` as if stepped `steps` times already (to resume training from a
    /// checkpoint, PyTorch's `last_epoch`): sets `optimizer`'s learning rate to
    /// `schedule.lr(steps)`.
    ///
    /// # Errors
    ///
    /// As [`Scheduler::new`].
    pub fn resume<T: Float>(
        schedule: S,
        steps: usize,
        optimizer: &mut (impl Optimizer<T> + ?Sized),
    ) -> Result<Self, OptimError> {
        optimizer.set_lr(schedule.lr(steps))?;
        Ok(Scheduler { schedule, steps })
    }

    /// Advances the schedule by one step and sets `optimizer`'s learning rate to the new
    /// step's; returns that rate.
    ///
    /// # Errors
    ///
    /// As [`Scheduler::new`]; the scheduler does not advance then.
    pub fn step<T: Float>(
        &mut self,
        optimizer: &mut (impl Optimizer<T> + ?Sized),
    ) -> Result<f64, OptimError> {
        let lr = self.schedule.lr(self.steps + 1);
        optimizer.set_lr(lr)?;
        self.steps += 1;
        Ok(lr)
    }

    /// How many times [`Scheduler::step`] was called (plus the steps given to
    /// [`Scheduler::resume`]).
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The learning rate the scheduler set last, `schedule.lr(steps())`.
    pub fn lr(&self) -> f64 {
        self.schedule.lr(self.steps)
    }

    /// The schedule.
    pub fn schedule(&self) -> &S {
        &self.schedule
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedules::ExponentialLr;
    use crate::{Sgd, SgdConfig};

    /// A user schedule that goes wrong at step 2.
    struct Broken;

    impl LrSchedule for Broken {
        fn lr(&self, step: usize) -> f64 {
            if step == 2 { f64::NAN } else { 0.5 }
        }
    }

    #[test]
    fn invalid_rates_are_errors_and_change_nothing() {
        let mut opt: Sgd<f64> = SgdConfig::new(0.1).build().unwrap();
        let mut scheduler = Scheduler::new(Broken, &mut opt).unwrap();
        assert_eq!(opt.lr(), 0.5);
        scheduler.step(&mut opt).unwrap();
        let err = scheduler.step(&mut opt).unwrap_err();
        assert!(matches!(
            err,
            OptimError::InvalidHyperParameter { name: "lr", .. }
        ));
        assert_eq!((scheduler.steps(), opt.lr()), (1, 0.5));
        assert!(Scheduler::resume(Broken, 2, &mut opt).is_err());
    }

    #[test]
    fn a_borrowed_schedule_drives_a_boxed_optimizer() {
        let schedule = ExponentialLr::new(1.0, 0.5).unwrap();
        let mut opt: Box<dyn Optimizer<f32> + Send> = Box::new(Sgd::new(0.1).unwrap());
        let mut scheduler = Scheduler::resume(&schedule, 1, &mut *opt).unwrap();
        assert_eq!(opt.lr(), 0.5);
        assert_eq!(scheduler.step(&mut *opt).unwrap(), 0.25);
        assert_eq!(
            (scheduler.steps(), scheduler.lr(), opt.lr()),
            (2, 0.25, 0.25)
        );
    }
}
