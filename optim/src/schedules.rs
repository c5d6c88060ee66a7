//! Learning-rate schedules: closed forms of PyTorch's `torch.optim.lr_scheduler` classes.
//!
//! A schedule is a pure function of the epoch: [`LrSchedule::lr`] gives the learning rate in
//! force during epoch `e` (0-based), which is what the PyTorch scheduler sets after being
//! stepped `e` times (once at the end of each epoch). Apply it with
//! [`Optimizer::set_lr`](crate::Optimizer::set_lr) at the start of each epoch:
//!
//! ```
//! use ndarray::arr1;
//! use tapegrad_autograd::{Grads, Param};
//! use tapegrad_optim::schedules::{CosineAnnealingLr, LinearWarmup, LrSchedule};
//! use tapegrad_optim::{Optimizer, SgdConfig};
//!
//! let base_lr = 0.1;
//! // 3 epochs of linear warm-up from 0.2 · base_lr, then cosine annealing over 8 epochs.
//! let schedule = LinearWarmup::new(base_lr, 0.2, 3)?
//!     .then(CosineAnnealingLr::new(base_lr, 8, 0.0)?);
//! let mut w = Param::new("w", arr1(&[1.0_f64]).into_dyn());
//! let mut opt = SgdConfig::new(base_lr).momentum(0.9).build()?;
//! for epoch in 0..11 {
//!     opt.set_lr(schedule.lr(epoch));
//!     for _batch in 0..4 {
//!         let mut grads = Grads::new();
//!         grads.insert(w.id(), w.value().mapv(|x| 2.0 * x));
//!         opt.step(&mut [&mut w], &grads)?;
//!     }
//! }
//! assert!((schedule.lr(0) - 0.02).abs() < 1e-15);
//! assert!((schedule.lr(3) - 0.1).abs() < 1e-15);
//! assert!(schedule.lr(11).abs() < 1e-15);
//! # Ok::<(), tapegrad_optim::OptimError>(())
//! ```

use std::f64::consts::PI;
use std::fmt;

use crate::optimizer::{OptimError, invalid, non_negative};

/// A learning rate as a function of the epoch.
pub trait LrSchedule {
    /// The learning rate in force during `epoch` (0-based).
    fn lr(&self, epoch: usize) -> f64;
}

fn positive_count(name: &'static str, value: usize) -> Result<(), OptimError> {
    if value == 0 {
        Err(invalid(name, 0.0, "must be at least 1"))
    } else {
        Ok(())
    }
}

/// Multiplies the learning rate by `gamma` every `step_size` epochs (PyTorch's `StepLR`):
/// `lr(e) = base_lr · gamma^⌊e / step_size⌋`.
#[derive(Clone, Debug, PartialEq)]
pub struct StepLr {
    base_lr: f64,
    step_size: usize,
    gamma: f64,
}

impl StepLr {
    /// A step schedule.
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidHyperParameter`] if `base_lr` or `gamma` is negative or not
    /// finite, or `step_size` is 0.
    pub fn new(base_lr: f64, step_size: usize, gamma: f64) -> Result<Self, OptimError> {
        non_negative("base_lr", base_lr)?;
        positive_count("step_size", step_size)?;
        non_negative("gamma", gamma)?;
        Ok(StepLr {
            base_lr,
            step_size,
            gamma,
        })
    }
}

impl LrSchedule for StepLr {
    fn lr(&self, epoch: usize) -> f64 {
        self.base_lr * self.gamma.powf((epoch / self.step_size) as f64)
    }
}

/// Multiplies the learning rate by `gamma` at each milestone epoch (PyTorch's
/// `MultiStepLR`): `lr(e) = base_lr · gamma^(number of milestones ≤ e)`.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiStepLr {
    base_lr: f64,
    milestones: Vec<usize>,
    gamma: f64,
}

impl MultiStepLr {
    /// A multi-step schedule. Milestones may come in any order; a repeated milestone applies
    /// `gamma` once per occurrence, as in PyTorch.
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidHyperParameter`] if `base_lr` or `gamma` is negative or not
    /// finite.
    pub fn new(base_lr: f64, milestones: &[usize], gamma: f64) -> Result<Self, OptimError> {
        non_negative("base_lr", base_lr)?;
        non_negative("gamma", gamma)?;
        let mut milestones = milestones.to_vec();
        milestones.sort_unstable();
        Ok(MultiStepLr {
            base_lr,
            milestones,
            gamma,
        })
    }
}

impl LrSchedule for MultiStepLr {
    fn lr(&self, epoch: usize) -> f64 {
        let passed = self.milestones.partition_point(|&m| m <= epoch);
        self.base_lr * self.gamma.powf(passed as f64)
    }
}

/// Multiplies the learning rate by `gamma` every epoch (PyTorch's `ExponentialLR`):
/// `lr(e) = base_lr · gamma^e`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExponentialLr {
    base_lr: f64,
    gamma: f64,
}

impl ExponentialLr {
    /// An exponential schedule.
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidHyperParameter`] if `base_lr` or `gamma` is negative or not
    /// finite.
    pub fn new(base_lr: f64, gamma: f64) -> Result<Self, OptimError> {
        non_negative("base_lr", base_lr)?;
        non_negative("gamma", gamma)?;
        Ok(ExponentialLr { base_lr, gamma })
    }
}

impl LrSchedule for ExponentialLr {
    fn lr(&self, epoch: usize) -> f64 {
        self.base_lr * self.gamma.powf(epoch as f64)
    }
}

/// Cosine annealing from `base_lr` down to `eta_min` over `t_max` epochs (PyTorch's
/// `CosineAnnealingLR`, closed form):
/// `lr(e) = eta_min + (base_lr − eta_min) · (1 + cos(π · e / t_max)) / 2`.
///
/// Past `t_max` the cosine goes on, so the rate rises back towards `base_lr`, as PyTorch's
/// does.
#[derive(Clone, Debug, PartialEq)]
pub struct CosineAnnealingLr {
    base_lr: f64,
    t_max: usize,
    eta_min: f64,
}

impl CosineAnnealingLr {
    /// A cosine schedule.
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidHyperParameter`] if `base_lr` or `eta_min` is negative or not
    /// finite, or `t_max` is 0.
    pub fn new(base_lr: f64, t_max: usize, eta_min: f64) -> Result<Self, OptimError> {
        non_negative("base_lr", base_lr)?;
        positive_count("T_max", t_max)?;
        non_negative("eta_min", eta_min)?;
        Ok(CosineAnnealingLr {
            base_lr,
            t_max,
            eta_min,
        })
    }
}

impl LrSchedule for CosineAnnealingLr {
    fn lr(&self, epoch: usize) -> f64 {
        let phase = PI * epoch as f64 / self.t_max as f64;
        self.eta_min + (self.base_lr - self.eta_min) * (1.0 + phase.cos()) / 2.0
    }
}

/// Linear warm-up from `start_factor · base_lr` to `base_lr` over `total_iters` epochs, then
/// constant (PyTorch's `LinearLR` with `end_factor = 1`):
/// `lr(e) = base_lr · (start_factor + (1 − start_factor) · min(e, total_iters) / total_iters)`.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearWarmup {
    base_lr: f64,
    start_factor: f64,
    total_iters: usize,
}

impl LinearWarmup {
    /// A linear warm-up. With `total_iters == 0` there is no warm-up: the rate is `base_lr`.
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidHyperParameter`] if `base_lr` is negative or not finite, or
    /// `start_factor` is not in `(0, 1]`.
    pub fn new(base_lr: f64, start_factor: f64, total_iters: usize) -> Result<Self, OptimError> {
        non_negative("base_lr", base_lr)?;
        if !(start_factor > 0.0 && start_factor <= 1.0) {
            return Err(invalid("start_factor", start_factor, "must be in (0, 1]"));
        }
        Ok(LinearWarmup {
            base_lr,
            start_factor,
            total_iters,
        })
    }

    /// This warm-up for its `total_iters` epochs, then `next` (whose epoch 0 is the first
    /// epoch after the warm-up): PyTorch's `SequentialLR([warmup, next],
    /// milestones=[total_iters])`.
    pub fn then(self, next: impl LrSchedule + Send + Sync + 'static) -> SequentialLr {
        let milestone = self.total_iters;
        SequentialLr {
            schedules: vec![Box::new(self), Box::new(next)],
            milestones: vec![milestone],
        }
    }
}

impl LrSchedule for LinearWarmup {
    fn lr(&self, epoch: usize) -> f64 {
        if epoch >= self.total_iters {
            return self.base_lr;
        }
        let progress = epoch as f64 / self.total_iters as f64;
        self.base_lr * (self.start_factor + (1.0 - self.start_factor) * progress)
    }
}

/// Schedules one after the other (PyTorch's `SequentialLR`): schedule `i + 1` takes over at
/// epoch `milestones[i]`, and counts its own epochs from 0 there.
pub struct SequentialLr {
    schedules: Vec<Box<dyn LrSchedule + Send + Sync>>,
    milestones: Vec<usize>,
}

impl SequentialLr {
    /// A chain of `schedules` switching at `milestones`.
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidHyperParameter`] if `schedules` is empty, if there is not exactly
    /// one milestone fewer than schedules, or if the milestones are not strictly increasing.
    pub fn new(
        schedules: Vec<Box<dyn LrSchedule + Send + Sync>>,
        milestones: Vec<usize>,
    ) -> Result<Self, OptimError> {
        if schedules.is_empty() {
            return Err(invalid("schedulers", 0.0, "needs at least one schedule"));
        }
        if milestones.len() + 1 != schedules.len() {
            return Err(invalid(
                "milestones",
                milestones.len() as f64,
                "needs exactly one milestone fewer than schedules",
            ));
        }
        if let Some(w) = milestones.windows(2).find(|w| w[0] >= w[1]) {
            return Err(invalid(
                "milestones",
                w[1] as f64,
                "must be strictly increasing",
            ));
        }
        Ok(SequentialLr {
            schedules,
            milestones,
        })
    }

    /// The epochs at which each next schedule takes over.
    pub fn milestones(&self) -> &[usize] {
        &self.milestones
    }
}

impl LrSchedule for SequentialLr {
    fn lr(&self, epoch: usize) -> f64 {
        let i = self.milestones.partition_point(|&m| m <= epoch);
        let start = if i == 0 { 0 } else { self.milestones[i - 1] };
        self.schedules[i].lr(epoch - start)
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

    fn name(r: Result<impl Sized, OptimError>) -> Option<&'static str> {
        match r {
            Err(OptimError::InvalidHyperParameter { name, .. }) => Some(name),
            _ => None,
        }
    }

    #[test]
    fn rejects_invalid_parameters() {
        assert_eq!(name(StepLr::new(-0.1, 3, 0.5)), Some("base_lr"));
        assert_eq!(name(StepLr::new(0.1, 0, 0.5)), Some("step_size"));
        assert_eq!(name(StepLr::new(0.1, 3, f64::NAN)), Some("gamma"));
        assert_eq!(name(MultiStepLr::new(0.1, &[2, 5], -0.1)), Some("gamma"));
        assert_eq!(
            name(ExponentialLr::new(f64::INFINITY, 0.9)),
            Some("base_lr")
        );
        assert_eq!(name(CosineAnnealingLr::new(0.1, 0, 0.0)), Some("T_max"));
        assert_eq!(name(CosineAnnealingLr::new(0.1, 10, -1.0)), Some("eta_min"));
        assert_eq!(name(LinearWarmup::new(0.1, 0.0, 4)), Some("start_factor"));
        assert_eq!(name(LinearWarmup::new(0.1, 1.5, 4)), Some("start_factor"));
        let s = || -> Box<dyn LrSchedule + Send + Sync> {
            Box::new(ExponentialLr::new(0.1, 0.9).unwrap())
        };
        assert_eq!(name(SequentialLr::new(vec![], vec![])), Some("schedulers"));
        assert_eq!(
            name(SequentialLr::new(vec![s(), s()], vec![])),
            Some("milestones")
        );
        assert_eq!(
            name(SequentialLr::new(vec![s(), s(), s()], vec![4, 4])),
            Some("milestones")
        );
        assert!(SequentialLr::new(vec![s(), s(), s()], vec![2, 4]).is_ok());
    }

    #[test]
    fn sequential_restarts_each_schedule_at_its_milestone() {
        let seq = SequentialLr::new(
            vec![
                Box::new(ExponentialLr::new(1.0, 0.5).unwrap()),
                Box::new(ExponentialLr::new(2.0, 0.5).unwrap()),
                Box::new(StepLr::new(3.0, 1, 1.0).unwrap()),
            ],
            vec![2, 5],
        )
        .unwrap();
        let lrs: Vec<f64> = (0..7).map(|e| seq.lr(e)).collect();
        assert_eq!(lrs, [1.0, 0.5, 2.0, 1.0, 0.5, 3.0, 3.0]);
        assert_eq!(seq.milestones(), &[2, 5]);
        assert!(format!("{seq:?}").contains("milestones"));
    }

    #[test]
    fn warmup_without_iterations_is_constant() {
        let w = LinearWarmup::new(0.3, 0.1, 0).unwrap();
        assert_eq!(w.lr(0), 0.3);
        assert_eq!(w.lr(10), 0.3);
    }

    #[test]
    fn multistep_counts_repeated_milestones() {
        let s = MultiStepLr::new(1.0, &[3, 1, 3], 0.5).unwrap();
        let lrs: Vec<f64> = (0..5).map(|e| s.lr(e)).collect();
        assert_eq!(lrs, [1.0, 0.5, 0.5, 0.125, 0.125]);
    }
}
