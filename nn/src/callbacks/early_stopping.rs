//! [`EarlyStopping`]: stop when a monitored quantity stops improving.

use ndarray::ArrayD;
use tapegrad_autograd::Float;

use super::{
    Callback, CallbackError, CallbackState, Control, EpochLogs, Mode, TrainingState, check_monitor,
    to_count,
};
use crate::history::StopReason;

/// Stops training when a monitored quantity has stopped improving (Keras' `EarlyStopping`).
///
/// After each epoch, the monitored value improves if it beats the best so far by more than
/// `min_delta`. Training stops once `patience` epochs in a row have not improved (patience 0
/// behaves like 1, as in Keras: stop at the first epoch that does not improve).
///
/// With [`restore_best_weights`](EarlyStopping::restore_best_weights), the weights of the best
/// epoch are kept in memory and put back when training ends — whether it stopped early or
/// ran all its epochs (Keras only restores when it stops early). The
/// [`StopReason::EarlyStopping`] recorded in the history says which epoch was best.
///
/// Defaults: monitor `val_loss`, mode [`Mode::Auto`], `min_delta` 0, patience 0, no restore.
/// Monitoring a name the run does not log (e.g. `val_loss` without validation data) is an
/// error at the start of `fit`.
#[derive(Clone, Debug)]
pub struct EarlyStopping<T = f32> {
    monitor: String,
    mode: Mode,
    min_delta: f64,
    patience: usize,
    restore_best_weights: bool,
    // State of the current run.
    resolved: Mode,
    best: f64,
    best_epoch: Option<usize>,
    wait: usize,
    best_weights: Vec<ArrayD<T>>,
    stopped: bool,
}

impl<T: Float> Default for EarlyStopping<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> EarlyStopping<T> {
    /// Early stopping on `val_loss` with patience 0.
    pub fn new() -> Self {
        EarlyStopping {
            monitor: "val_loss".to_string(),
            mode: Mode::Auto,
            min_delta: 0.0,
            patience: 0,
            restore_best_weights: false,
            resolved: Mode::Min,
            best: f64::INFINITY,
            best_epoch: None,
            wait: 0,
            best_weights: Vec::new(),
            stopped: false,
        }
    }

    /// The quantity to monitor (`"val_loss"`, `"loss"`, `"val_accuracy"`, ...).
    pub fn monitor(mut self, monitor: impl Into<String>) -> Self {
        self.monitor = monitor.into();
        self
    }

    /// Whether lower or higher is better.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The smallest change that counts as an improvement (its absolute value is used).
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.min_delta = min_delta.abs();
        self
    }

    /// How many epochs without improvement to allow before stopping.
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// Whether to put back the weights of the best epoch when training ends.
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }

    /// The best epoch of the last run (0-based), if any epoch had a finite value.
    pub fn best_epoch(&self) -> Option<usize> {
        self.best_epoch
    }

    fn restore(&self, state: &mut TrainingState<'_, T>) -> bool {
        if !self.restore_best_weights || self.best_weights.is_empty() {
            return false;
        }
        // Parameters first, then buffers, in the order they were saved.
        let mut best = self.best_weights.iter();
        for (p, value) in state.params_mut().into_iter().zip(best.by_ref()) {
            p.value_mut().assign(value);
        }
        for (b, value) in state.buffers_mut().into_iter().zip(best) {
            b.value_mut().assign(value);
        }
        true
    }
}

impl<T: Float> Callback<T> for EarlyStopping<T> {
    fn name(&self) -> &'static str {
        "EarlyStopping"
    }

    fn on_train_begin(
        &mut self,
        log_names: &[String],
        _state: &mut TrainingState<'_, T>,
    ) -> Result<(), CallbackError> {
        check_monitor(&self.monitor, log_names)?;
        self.resolved = self.mode.resolve(&self.monitor);
        self.best = self.resolved.worst();
        self.best_epoch = None;
        self.wait = 0;
        self.best_weights.clear();
        self.stopped = false;
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        logs: &EpochLogs<'_>,
        state: &mut TrainingState<'_, T>,
    ) -> Result<Control, CallbackError> {
        let current = logs.get(&self.monitor).unwrap_or(f64::NAN);
        if self.resolved.improves(current, self.best, self.min_delta) {
            self.best = current;
            self.best_epoch = Some(logs.epoch);
            self.wait = 0;
            if self.restore_best_weights {
                // Parameters, then buffers (BatchNorm's running statistics belong to the
                // weights of that epoch too, as in Keras).
                let buffers = state.buffers();
                let buffer_values: Vec<_> = buffers.iter().map(|b| b.value()).collect();
                let values: Vec<&ArrayD<T>> = state
                    .params()
                    .into_iter()
                    .map(|p| p.value())
                    .chain(buffer_values.iter().map(|v| &**v))
                    .collect();
                if self.best_weights.len() == values.len() {
                    for (saved, value) in self.best_weights.iter_mut().zip(values) {
                        saved.assign(value);
                    }
                } else {
                    self.best_weights = values.into_iter().cloned().collect();
                }
            }
            return Ok(Control::Continue);
        }
        self.wait += 1;
        if self.wait >= self.patience.max(1) {
            self.stopped = true;
            let restored = self.restore(state);
            return Ok(Control::Stop(StopReason::EarlyStopping {
                epoch: logs.epoch,
                monitor: self.monitor.clone(),
                best_epoch: self.best_epoch.unwrap_or(0),
                best: self.best,
                restored_best_weights: restored,
            }));
        }
        Ok(Control::Continue)
    }

    fn on_train_end(&mut self, state: &mut TrainingState<'_, T>) -> Result<(), CallbackError> {
        if !self.stopped {
            self.restore(state);
        }
        Ok(())
    }

    /// The best value, its epoch, the epochs waited, and the best weights when kept.
    fn state(&self) -> Option<CallbackState<T>> {
        let mut state = CallbackState::new()
            .number("best", self.best)
            .numbers(
                "best_epoch",
                self.best_epoch.iter().map(|&e| e as f64).collect(),
            )
            .number("wait", self.wait as f64)
            .number("best_weights", self.best_weights.len() as f64);
        for (i, w) in self.best_weights.iter().enumerate() {
            state = state.tensor(format!("best_weights.{i}"), w.clone());
        }
        Some(state)
    }

    fn restore_state(&mut self, state: CallbackState<T>) -> Result<(), CallbackError> {
        let best = state.get_number("best")?;
        let best_epoch = match state.get_numbers("best_epoch")? {
            [] => None,
            [e] => Some(to_count("best_epoch", *e)?),
            _ => {
                return Err(CallbackError::InvalidState {
                    key: "best_epoch".into(),
                    reason: "more than one epoch".into(),
                });
            }
        };
        let wait = state.get_count("wait")?;
        let count = state.get_count("best_weights")?;
        if count > state.all_tensors().len() {
            return Err(CallbackError::InvalidState {
                key: "best_weights".into(),
                reason: format!("{count} weights, but {} tensors", state.all_tensors().len()),
            });
        }
        let weights = (0..count)
            .map(|i| state.get_tensor(&format!("best_weights.{i}")).cloned())
            .collect::<Result<Vec<_>, _>>()?;
        (self.best, self.best_epoch, self.wait) = (best, best_epoch, wait);
        self.best_weights = weights;
        Ok(())
    }
}
