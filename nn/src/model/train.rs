//! The epoch loop of [`Model::fit`](super::Model::fit), run once the data and the model are
//! checked and the callbacks' `on_train_begin` has run.

use ndarray::Axis;
use tapegrad_autograd::{Float, Tape};

use super::eval::{evaluate_batches, scalar_loss};
use super::metric::MetricAcc;
use super::prepare::Prepared;
use super::progress::Reporter;
use super::{Compiled, FitError, FitOptions};
use crate::callbacks::{BatchLogs, Callback, CallbackError, Control, EpochLogs, TrainingState};
use crate::data::Batches;
use crate::history::{History, StopReason};
use crate::module::Module;

/// Mixed into the seed of the shuffling generator, so that the order of the samples and
/// the weight initialization draw from different streams of the same seed.
const SHUFFLE_STREAM: u64 = 0x5348_5546_464C_4521;

/// Everything the epoch loop reads and updates.
pub(super) struct Training<'a, 'd, T: Float, M> {
    pub(super) module: &'a mut M,
    pub(super) compiled: &'a mut Compiled<T>,
    pub(super) callbacks: &'a mut [Box<dyn Callback<T>>],
    pub(super) train: &'a Prepared<'d, T>,
    pub(super) validation: Option<&'a Prepared<'d, T>>,
    pub(super) train_metrics: Vec<MetricAcc>,
    pub(super) val_metrics: Vec<MetricAcc>,
    /// The logged names: `loss`, the metrics, then `val_loss` and the validation metrics.
    pub(super) names: &'a [String],
    pub(super) options: &'a FitOptions<T>,
}

impl<T: Float, M: Module<T>> Training<'_, '_, T, M> {
    /// Trains for `options.epochs` epochs, or until a callback stops training (then the
    /// reason is recorded in `history`).
    pub(super) fn run(mut self, history: &mut History) -> Result<(), FitError> {
        let n = self.train.x.len_of(Axis(0));
        let batch_size = self.options.batch_size;
        // With a single batch per epoch the order of its rows cannot matter: it is not
        // shuffled, and is gathered with one copy.
        let mut batches = if self.options.shuffle && n > batch_size {
            Batches::shuffled(n, batch_size, self.options.seed ^ SHUFFLE_STREAM)
        } else {
            Batches::in_order(n, batch_size)
        };
        let mut values = vec![f64::NAN; self.names.len()];
        let mut report = Reporter::new(self.options.verbose, self.options.epochs, batches.len());

        for epoch in 0..self.options.epochs {
            for cb in self.callbacks.iter_mut() {
                let mut state = TrainingState::new(self.module, &mut *self.compiled.optimizer);
                cb.on_epoch_begin(epoch, &mut state)
                    .map_err(|e| callback_error(&**cb, epoch, e))?;
            }
            report.epoch_begin(epoch);
            let (loss, stop) = self.epoch(epoch, &mut batches, &mut report)?;

            values[0] = loss;
            for (v, m) in values[1..].iter_mut().zip(&self.train_metrics) {
                *v = m.value();
            }
            let first_val = 1 + self.train_metrics.len();
            if self.validation.is_some() {
                if stop.is_none() {
                    values[first_val] = self.validate()?;
                    for (v, m) in values[first_val + 1..].iter_mut().zip(&self.val_metrics) {
                        *v = m.value();
                    }
                } else {
                    values[first_val..].fill(f64::NAN);
                }
            }
            history.push_epoch(&values);
            report.epoch_end(epoch, self.names, &values);
            let stop = match stop {
                Some(reason) => Some(reason),
                None => self.epoch_end_callbacks(epoch, &values)?,
            };
            if let Some(reason) = stop {
                history.set_stop_reason(reason);
                return Ok(());
            }
        }
        Ok(())
    }

    /// One pass over the training batches: the mean loss over the samples seen, and the
    /// reason a callback stopped training in the middle, if one did (the batch it stopped
    /// at is not applied).
    fn epoch(
        &mut self,
        epoch: usize,
        batches: &mut Batches,
        report: &mut Reporter,
    ) -> Result<(f64, Option<StopReason>), FitError> {
        for m in self.train_metrics.iter_mut() {
            m.reset();
        }
        let mut loss_sum = 0.0;
        let mut seen = 0;
        let train = self.train;
        for (batch, (bx, by)) in batches.epoch_xy(&train.x, &train.y).enumerate() {
            let size = bx.len_of(Axis(0));
            let (loss_value, grads) = {
                let tape = Tape::new();
                let out = self.module.forward(tape.constant(bx));
                let target = tape.constant(by);
                let loss = self.compiled.loss.call(out, target);
                let value = scalar_loss(&self.compiled.loss, loss)?;
                if !self.train_metrics.is_empty() {
                    let metrics = &mut self.train_metrics;
                    out.with_value(|p| {
                        target.with_value(|t| metrics.iter_mut().for_each(|m| m.update(p, t)))
                    });
                }
                (value, loss.backward())
            };
            loss_sum += loss_value * size as f64;
            seen += size;
            if !self.callbacks.is_empty() {
                let logs = BatchLogs {
                    epoch,
                    batch,
                    size,
                    loss: loss_value,
                };
                let stop = self
                    .callbacks
                    .iter_mut()
                    .find_map(|cb| match cb.on_batch_end(&logs) {
                        Control::Continue => None,
                        Control::Stop(reason) => Some(reason),
                    });
                if stop.is_some() {
                    return Ok((loss_sum / seen as f64, stop));
                }
            }
            let mut params = self.module.params_mut();
            self.compiled
                .optimizer
                .step(&mut params, &grads)
                .map_err(|source| FitError::Optimizer {
                    epoch,
                    batch,
                    source,
                })?;
            report.batch_end(batch, loss_sum / seen as f64);
        }
        Ok((loss_sum / seen as f64, None))
    }

    /// The validation loss, in inference mode (metric totals go to `val_metrics`).
    fn validate(&mut self) -> Result<f64, FitError> {
        let validation = self
            .validation
            .expect("validate runs only with validation data");
        self.module.set_training(false);
        let result = evaluate_batches(
            &*self.module,
            &self.compiled.loss,
            &mut self.val_metrics,
            validation,
            self.options.batch_size,
        );
        self.module.set_training(true);
        result
    }

    /// Runs every callback's `on_epoch_end`; the first reason to stop wins.
    fn epoch_end_callbacks(
        &mut self,
        epoch: usize,
        values: &[f64],
    ) -> Result<Option<StopReason>, FitError> {
        if self.callbacks.is_empty() {
            return Ok(None);
        }
        let logs = EpochLogs {
            epoch,
            names: self.names,
            values,
        };
        let mut stop = None;
        for cb in self.callbacks.iter_mut() {
            let mut state = TrainingState::new(self.module, &mut *self.compiled.optimizer);
            let control = cb
                .on_epoch_end(&logs, &mut state)
                .map_err(|e| callback_error(&**cb, epoch, e))?;
            if let (Control::Stop(reason), None) = (control, &stop) {
                stop = Some(reason);
            }
        }
        Ok(stop)
    }
}

fn callback_error<T: Float>(cb: &dyn Callback<T>, epoch: usize, source: CallbackError) -> FitError {
    FitError::Callback {
        callback: cb.name(),
        epoch: Some(epoch),
        source: Box::new(source),
    }
}
