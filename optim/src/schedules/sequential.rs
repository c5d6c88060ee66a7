//! [`SequentialLr`]: schedules one after the other, built with [`LrSchedule::then`].

use std::fmt;

use super::LrSchedule;
use crate::error::{OptimError, invalid};

/// Schedules one after the other (PyTorch's `SequentialLR`): schedule `i + 1` takes over at
/// step `milestones[i]`, and counts its own steps from 0 there.
///
/// Built from any schedule with [`LrSchedule::then`] (or [`SequentialLr::new`] and `then`),
/// without boxing the parts yourself:
///
/// ```
/// use tapegrad_optim::schedules::{ExponentialLr, LinearWarmup, LrSchedule, StepLr};
///
/// let schedule = LinearWarmup::new(1.0, 0.5, 2)?
///     .then(2, ExponentialLr::new(1.0, 0.5)?)?
///     .then(4, StepLr::new(0.1, 10, 0.5)?)?;
/// let lrs: Vec<f64> = (0..6).map(|step| schedule.lr(step)).collect();
/// assert_eq!(lrs, [0.5, 0.75, 1.0, 0.5, 0.1, 0.1]);
/// assert_eq!(schedule.milestones(), &[2, 4]);
/// # Ok::<(), tapegrad_optim::OptimError>(())
/// ```
pub struct SequentialLr {
    schedules: Vec<Box<dyn LrSchedule + Send + Sync>>,
    milestones: Vec<usize>,
}

impl SequentialLr {
    /// A sequence of one schedule, `first`; add the next ones with
    /// [`then`](LrSchedule::then).
    pub fn new(first: impl LrSchedule + Send + Sync + 'static) -> Self {
        SequentialLr {
            schedules: vec![Box::new(first)],
            milestones: Vec::new(),
        }
    }

    /// The steps at which each next schedule takes over.
    pub fn milestones(&self) -> &[usize] {
        &self.milestones
    }
}

impl LrSchedule for SequentialLr {
    fn lr(&self, step: usize) -> f64 {
        let i = self.milestones.partition_point(|&m| m <= step);
        let start = if i == 0 { 0 } else { self.milestones[i - 1] };
        self.schedules[i].lr(step - start)
    }

    /// Appends `next`, taking over at `milestone` (a step counted from the start of the
    /// whole sequence).
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidHyperParameter`] (named `milestones`) if `milestone` is not
    /// after the sequence's last milestone.
    fn then(
        mut self,
        milestone: usize,
        next: impl LrSchedule + Send + Sync + 'static,
    ) -> Result<SequentialLr, OptimError> {
        if let Some(&last) = self.milestones.last()
            && milestone <= last
        {
            return Err(invalid(
                "milestones",
                milestone as f64,
                "must be strictly increasing",
            ));
        }
        self.schedules.push(Box::new(next));
        self.milestones.push(milestone);
        Ok(self)
    }
}

impl fmt::Debug for SequentialLr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SequentialLr")
            .field("schedules", &self.schedules.len())
            .field("milestones", &self.milestones)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedules::{ExponentialLr, StepLr};

    #[test]
    fn sequential_restarts_each_schedule_at_its_milestone() {
        let seq = ExponentialLr::new(1.0, 0.5)
            .unwrap()
            .then(2, ExponentialLr::new(2.0, 0.5).unwrap())
            .unwrap()
            .then(5, StepLr::new(3.0, 1, 1.0).unwrap())
            .unwrap();
        let lrs: Vec<f64> = (0..7).map(|e| seq.lr(e)).collect();
        assert_eq!(lrs, [1.0, 0.5, 2.0, 1.0, 0.5, 3.0, 3.0]);
        assert_eq!(seq.milestones(), &[2, 5]);
        assert!(format!("{seq:?}").contains("milestones"));
        let single = SequentialLr::new(StepLr::new(3.0, 1, 1.0).unwrap());
        assert_eq!(single.lr(9), 3.0);
        assert!(single.milestones().is_empty());
    }

    #[test]
    fn milestones_must_increase() {
        let s = || ExponentialLr::new(0.1, 0.9).unwrap();
        for bad in [4, 3] {
            let err = s().then(4, s()).unwrap().then(bad, s()).unwrap_err();
            assert!(matches!(
                err,
                OptimError::InvalidHyperParameter {
                    name: "milestones",
                    ..
                }
            ));
        }
        assert!(s().then(2, s()).unwrap().then(4, s()).is_ok());
    }
}
