//! [`ModelCheckpoint`]: save the weights after epochs, atomically.

use std::path::{Path, PathBuf};

use tapegrad_autograd::Float;

use super::{
    Callback, CallbackError, CallbackState, Control, EpochLogs, Mode, TrainingState, check_monitor,
    to_count,
};

/// Saves the model's weights after epochs (Keras' `ModelCheckpoint` with
/// `save_weights_only=True`), in the safetensors format, atomically: a failed save never
/// replaces a good checkpoint with a partial file.
///
/// The path may contain `{epoch}`, replaced by the epoch number (0-based), to keep one file
/// per epoch. With [`save_best_only`](ModelCheckpoint::save_best_only), a file is written only
/// when the monitored quantity (default `val_loss`) improves on the best so far.
#[derive(Clone, Debug)]
pub struct ModelCheckpoint {
    path: String,
    monitor: String,
    mode: Mode,
    save_best_only: bool,
    resolved: Mode,
    best: f64,
    saved: Vec<usize>,
}

impl ModelCheckpoint {
    /// Saves after every epoch to `path` (which may contain `{epoch}`).
    pub fn new(path: impl AsRef<Path>) -> Self {
        ModelCheckpoint {
            path: path.as_ref().to_string_lossy().into_owned(),
            monitor: "val_loss".to_string(),
            mode: Mode::Auto,
            save_best_only: false,
            resolved: Mode::Min,
            best: f64::INFINITY,
            saved: Vec::new(),
        }
    }

    /// The quantity that decides what "best" is (default `val_loss`).
    pub fn monitor(mut self, monitor: impl Into<String>) -> Self {
        self.monitor = monitor.into();
        self
    }

    /// Whether lower or higher is better.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Only save when the monitored quantity improves.
    pub fn save_best_only(mut self, best_only: bool) -> Self {
        self.save_best_only = best_only;
        self
    }

    /// The path written for `epoch` (with `{epoch}` replaced).
    pub fn path_for(&self, epoch: usize) -> PathBuf {
        PathBuf::from(self.path.replace("{epoch}", &epoch.to_string()))
    }

    /// The epochs after which a file was written in the last run.
    pub fn saved_epochs(&self) -> &[usize] {
        &self.saved
    }
}

impl<T: Float> Callback<T> for ModelCheckpoint {
    fn name(&self) -> &'static str {
        "ModelCheckpoint"
    }

    fn root_only(&self) -> bool {
        true
    }

    fn on_train_begin(
        &mut self,
        log_names: &[String],
        _state: &mut TrainingState<'_, T>,
    ) -> Result<(), CallbackError> {
        if self.save_best_only {
            check_monitor(&self.monitor, log_names)?;
        }
        self.resolved = self.mode.resolve(&self.monitor);
        self.best = self.resolved.worst();
        self.saved.clear();
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        logs: &EpochLogs<'_>,
        state: &mut TrainingState<'_, T>,
    ) -> Result<Control, CallbackError> {
        if self.save_best_only {
            let current = logs.get(&self.monitor).unwrap_or(f64::NAN);
            if !self.resolved.improves(current, self.best, 0.0) {
                return Ok(Control::Continue);
            }
            self.best = current;
        }
        state.save_weights(&self.path_for(logs.epoch))?;
        self.saved.push(logs.epoch);
        Ok(Control::Continue)
    }

    /// The best value and the epochs saved.
    fn state(&self) -> Option<CallbackState<T>> {
        Some(
            CallbackState::new()
                .number("best", self.best)
                .numbers("saved", self.saved.iter().map(|&e| e as f64).collect()),
        )
    }

    fn restore_state(&mut self, state: CallbackState<T>) -> Result<(), CallbackError> {
        let best = state.get_number("best")?;
        let saved = state
            .get_numbers("saved")?
            .iter()
            .map(|&e| to_count("saved", e))
            .collect::<Result<Vec<_>, _>>()?;
        (self.best, self.saved) = (best, saved);
        Ok(())
    }
}
