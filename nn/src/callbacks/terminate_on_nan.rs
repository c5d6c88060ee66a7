//! [`TerminateOnNan`]: stop at the first batch whose loss is not finite.

use tapegrad_autograd::Float;

use super::{BatchLogs, Callback, Control};
use crate::history::StopReason;

/// Stops training at the first batch whose loss is NaN or infinite (Keras' `TerminateOnNaN`).
///
/// That batch's gradients are not applied, so the weights stay finite; `fit` returns `Ok`
/// with [`StopReason::NonFiniteLoss`] (epoch and batch) in the history. Without this
/// callback, a NaN loss usually means NaN gradients, which the optimizer refuses:
/// `fit` then fails with [`FitError::Optimizer`](crate::model::FitError::Optimizer), which
/// names the epoch and batch too.
#[derive(Clone, Copy, Debug, Default)]
pub struct TerminateOnNan;

impl<T: Float> Callback<T> for TerminateOnNan {
    fn name(&self) -> &'static str {
        "TerminateOnNan"
    }

    fn on_batch_end(&mut self, batch: &BatchLogs) -> Control {
        if batch.loss.is_finite() {
            Control::Continue
        } else {
            Control::Stop(StopReason::NonFiniteLoss {
                epoch: batch.epoch,
                batch: batch.batch,
                loss: batch.loss,
            })
        }
    }
}
