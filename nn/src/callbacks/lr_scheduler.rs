//! [`LrScheduler`]: set the optimizer's learning rate from a schedule at each epoch.

use std::fmt;

use tapegrad_autograd::Float;
use tapegrad_optim::LrSchedule;
use tapegrad_optim::schedules::Scheduler;

use super::{Callback, CallbackError, TrainingState};

/// Sets the optimizer's learning rate at the start of each epoch from a schedule of
/// [`tapegrad_optim::schedules`] (Keras' `LearningRateScheduler`): during epoch `e`
/// (0-based, counted from the start of this `fit`) the rate is `schedule.lr(e)`.
///
/// [`FitOptions::lr_schedule`](crate::model::FitOptions::lr_schedule) does the same, and can
/// also step the schedule once per batch.
pub struct LrScheduler {
    schedule: Box<dyn LrSchedule + Send>,
}

impl LrScheduler {
    /// Applies `schedule`.
    pub fn new(schedule: impl LrSchedule + Send + 'static) -> Self {
        LrScheduler {
            schedule: Box::new(schedule),
        }
    }
}

impl fmt::Debug for LrScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LrScheduler")
            .field("lr(0)", &self.schedule.lr(0))
            .finish_non_exhaustive()
    }
}

impl<T: Float> Callback<T> for LrScheduler {
    fn name(&self) -> &'static str {
        "LrScheduler"
    }

    fn on_epoch_begin(
        &mut self,
        epoch: usize,
        state: &mut TrainingState<'_, T>,
    ) -> Result<(), CallbackError> {
        Scheduler::resume(&*self.schedule, epoch, state.optimizer_mut()).map_err(|_| {
            CallbackError::InvalidLearningRate {
                epoch,
                lr: self.schedule.lr(epoch),
            }
        })?;
        Ok(())
    }
}
