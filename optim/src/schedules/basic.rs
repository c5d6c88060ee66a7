//! The closed-form schedules: PyTorch's `StepLR`, `MultiStepLR`, `ExponentialLR`,
//! `CosineAnnealingLR` and `LinearLR` (as a warm-up). Each counts scheduler steps, which are
//! epochs or batches as the caller decides; the documentation says "epoch" as PyTorch's does.

use std::f64::consts::PI;

use super::LrSchedule;
use crate::error::{OptimError, invalid, non_negative};

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
    fn lr(&self, step: usize) -> f64 {
        self.base_lr * self.gamma.powf((step / self.step_size) as f64)
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
    fn lr(&self, step: usize) -> f64 {
        let passed = self.milestones.partition_point(|&m| m <= step);
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
    fn lr(&self, step: usize) -> f64 {
        self.base_lr * self.gamma.powf(step as f64)
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
    fn lr(&self, step: usize) -> f64 {
        let phase = PI * step as f64 / self.t_max as f64;
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
}

impl LrSchedule for LinearWarmup {
    fn lr(&self, step: usize) -> f64 {
        if step >= self.total_iters {
            return self.base_lr;
        }
        let progress = step as f64 / self.total_iters as f64;
        self.base_lr * (self.start_factor + (1.0 - self.start_factor) * progress)
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
