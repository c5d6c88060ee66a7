//! Hooks into [`Model::fit`](crate::model::Model::fit): early stopping, checkpoints,
//! learning-rate schedules, stopping on NaN, and the [`Callback`] trait to write your own.
//!
//! Callbacks are given to `fit` through
//! [`FitOptions::callback`](crate::model::FitOptions::callback) and run in the order given.
//! Epochs and batches are numbered from 0.
//!
//! ```
//! use tapegrad_nn::callbacks::{EarlyStopping, LrScheduler, ModelCheckpoint, TerminateOnNan};
//! use tapegrad_nn::model::FitOptions;
//! use tapegrad_optim::schedules::ExponentialLr;
//!
//! let options = FitOptions::<f32>::default()
//!     .epochs(100)
//!     .validation_split(0.2)
//!     .callback(EarlyStopping::new().patience(5).restore_best_weights(true))
//!     .callback(ModelCheckpoint::new("best.safetensors").save_best_only(true))
//!     .callback(LrScheduler::new(ExponentialLr::new(0.01, 0.95)?))
//!     .callback(TerminateOnNan);
//! # Ok::<(), tapegrad_optim::OptimError>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use ndarray::ArrayD;
use tapegrad_autograd::{Float, Param};
use tapegrad_optim::{LrSchedule, Optimizer};

use crate::buffer::Buffer;
use crate::history::StopReason;
use crate::io::{IoError, save_state};
use crate::module::Module;

/// What a callback tells `fit` to do next.
#[derive(Clone, Debug, PartialEq)]
pub enum Control {
    /// Go on training.
    Continue,
    /// Stop training (after this batch's forward pass, without applying its gradients, when
    /// returned from [`Callback::on_batch_end`]; after this epoch when returned from
    /// [`Callback::on_epoch_end`]). The reason is recorded in the
    /// [`History`](crate::history::History).
    Stop(StopReason),
}

/// The loss of one training batch, given to [`Callback::on_batch_end`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchLogs {
    /// The epoch (0-based).
    pub epoch: usize,
    /// The batch within the epoch (0-based).
    pub batch: usize,
    /// The number of samples in the batch.
    pub size: usize,
    /// The batch's loss.
    pub loss: f64,
}

/// The logged values of one finished epoch (the row just added to the
/// [`History`](crate::history::History)), given to [`Callback::on_epoch_end`].
#[derive(Clone, Copy, Debug)]
pub struct EpochLogs<'a> {
    /// The epoch (0-based).
    pub epoch: usize,
    /// The names of the values (`loss`, metrics, `val_loss`, `val_<metric>`).
    pub names: &'a [String],
    /// The values, in the order of `names`.
    pub values: &'a [f64],
}

impl EpochLogs<'_> {
    /// The value of `name` (e.g. `"val_loss"`), if it is logged.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| self.values[i])
    }
}

/// What a callback may see and change while training runs: the model's parameters and the
/// optimizer.
pub struct TrainingState<'a, T: Float> {
    module: &'a mut dyn Module<T>,
    optimizer: &'a mut dyn Optimizer<T>,
}

impl<'a, T: Float> TrainingState<'a, T> {
    /// Wraps a module and its optimizer (done by `fit`; public for testing callbacks).
    pub fn new(module: &'a mut dyn Module<T>, optimizer: &'a mut dyn Optimizer<T>) -> Self {
        TrainingState { module, optimizer }
    }

    /// The model's parameters, in the module's order.
    pub fn params(&self) -> Vec<&Param<T>> {
        self.module.params()
    }

    /// The model's parameters, mutably (to restore weights).
    pub fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        self.module.params_mut()
    }

    /// The model's buffers (non-trainable state), in the module's order.
    pub fn buffers(&self) -> Vec<&Buffer<T>> {
        self.module.buffers()
    }

    /// The model's buffers, mutably (to restore state).
    pub fn buffers_mut(&mut self) -> Vec<&mut Buffer<T>> {
        self.module.buffers_mut()
    }

    /// The model's module.
    pub fn module(&self) -> &dyn Module<T> {
        &*self.module
    }

    /// The optimizer.
    pub fn optimizer(&self) -> &dyn Optimizer<T> {
        &*self.optimizer
    }

    /// The optimizer, mutably (to change its learning rate).
    pub fn optimizer_mut(&mut self) -> &mut dyn Optimizer<T> {
        &mut *self.optimizer
    }

    /// Saves the model's weights — parameters and buffers — to `path` (safetensors,
    /// atomically; see [`crate::io`]).
    ///
    /// # Errors
    ///
    /// As [`save_state`].
    pub fn save_weights(&self, path: &Path) -> Result<(), IoError> {
        save_state(path, &self.module.params(), &self.module.buffers())
    }
}

/// Everything a built-in callback can fail with; your own callbacks can use
/// [`CallbackError::Custom`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The quantity to monitor is not logged by this training run.
    #[error("cannot monitor `{monitor}`: this training run logs {}", available.join(", "))]
    UnknownMonitor {
        /// The requested name.
        monitor: String,
        /// The names that are logged.
        available: Vec<String>,
    },
    /// Saving a checkpoint failed (the previous checkpoint file, if any, is intact).
    #[error("cannot save a checkpoint: {0}")]
    Save(#[from] IoError),
    /// A schedule gave a learning rate that is negative, NaN or infinite.
    #[error("the schedule gave an invalid learning rate {lr} for epoch {epoch}")]
    InvalidLearningRate {
        /// The epoch (0-based).
        epoch: usize,
        /// The learning rate.
        lr: f64,
    },
    /// Any other error (for user-defined callbacks).
    #[error(transparent)]
    Custom(Box<dyn std::error::Error + Send + Sync>),
}

/// A hook into the training loop. Every method has a default that does nothing.
///
/// The order of calls in `fit` is: `on_train_begin`; then for each epoch `on_epoch_begin`,
/// `on_batch_end` for each batch, `on_epoch_end`; and `on_train_end` once training stops
/// (normally or because a callback said [`Control::Stop`]; not after an error).
///
/// ```
/// use tapegrad_autograd::Float;
/// use tapegrad_nn::callbacks::{Callback, CallbackError, Control, EpochLogs, TrainingState};
/// use tapegrad_nn::history::StopReason;
///
/// /// Stops as soon as the training loss is below a target.
/// struct StopBelow(f64);
///
/// impl<T: Float> Callback<T> for StopBelow {
///     fn name(&self) -> &'static str {
///         "StopBelow"
///     }
///     fn on_epoch_end(
///         &mut self,
///         logs: &EpochLogs<'_>,
///         _state: &mut TrainingState<'_, T>,
///     ) -> Result<Control, CallbackError> {
///         Ok(match logs.get("loss") {
///             Some(loss) if loss < self.0 => Control::Stop(StopReason::Callback {
///                 name: "StopBelow".into(),
///                 epoch: logs.epoch,
///                 message: format!("loss {loss} < {}", self.0),
///             }),
///             _ => Control::Continue,
///         })
///     }
/// }
/// ```
pub trait Callback<T: Float> {
    /// A short name for messages (e.g. `"EarlyStopping"`).
    fn name(&self) -> &'static str;

    /// Whether the callback runs on rank 0 only in a data-parallel
    /// [`fit`](crate::model::Model::fit) (one that writes files, such as
    /// [`ModelCheckpoint`]); default `false`: it runs on every rank, where it sees the same
    /// logs and weights. After a root-only callback ran, the ranks agree on its outcome: its
    /// error, or its request to stop, is every rank's. [`on_batch_end`](Callback::on_batch_end)
    /// runs on every rank either way (it must decide from the logs alone, which are the
    /// same everywhere).
    fn root_only(&self) -> bool {
        false
    }

    /// Called once before the first epoch with the names that each epoch will log.
    ///
    /// # Errors
    ///
    /// An error aborts `fit` before any training (e.g. [`CallbackError::UnknownMonitor`]).
    fn on_train_begin(
        &mut self,
        log_names: &[String],
        state: &mut TrainingState<'_, T>,
    ) -> Result<(), CallbackError> {
        let _ = (log_names, state);
        Ok(())
    }

    /// Called at the start of each epoch (0-based), before its first batch.
    ///
    /// # Errors
    ///
    /// An error aborts `fit`.
    fn on_epoch_begin(
        &mut self,
        epoch: usize,
        state: &mut TrainingState<'_, T>,
    ) -> Result<(), CallbackError> {
        let _ = (epoch, state);
        Ok(())
    }

    /// Called after each training batch's forward and backward passes, *before* the
    /// optimizer applies its gradients, so that returning [`Control::Stop`] keeps a bad
    /// update (e.g. NaN gradients) out of the weights.
    fn on_batch_end(&mut self, batch: &BatchLogs) -> Control {
        let _ = batch;
        Control::Continue
    }

    /// Called after each epoch, once its values (including validation) are recorded.
    ///
    /// # Errors
    ///
    /// An error aborts `fit`.
    fn on_epoch_end(
        &mut self,
        logs: &EpochLogs<'_>,
        state: &mut TrainingState<'_, T>,
    ) -> Result<Control, CallbackError> {
        let _ = (logs, state);
        Ok(Control::Continue)
    }

    /// Called once when training ends, normally or because a callback returned
    /// [`Control::Stop`].
    ///
    /// # Errors
    ///
    /// An error is returned by `fit`.
    fn on_train_end(&mut self, state: &mut TrainingState<'_, T>) -> Result<(), CallbackError> {
        let _ = state;
        Ok(())
    }
}

/// Whether a monitored quantity improves by going down or up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Up for names containing `acc` (accuracy), down otherwise, like Keras' `"auto"`.
    #[default]
    Auto,
    /// Lower is better (losses, errors).
    Min,
    /// Higher is better (accuracies).
    Max,
}

impl Mode {
    fn resolve(self, monitor: &str) -> Mode {
        match self {
            Mode::Auto if monitor.contains("acc") => Mode::Max,
            Mode::Auto => Mode::Min,
            other => other,
        }
    }

    /// The worst possible value (the starting "best").
    fn worst(self) -> f64 {
        if self == Mode::Max {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }
    }

    /// Whether `current` beats `best` by more than `min_delta`. NaN never improves.
    fn improves(self, current: f64, best: f64, min_delta: f64) -> bool {
        if self == Mode::Max {
            current - min_delta > best
        } else {
            current + min_delta < best
        }
    }
}

fn check_monitor(monitor: &str, log_names: &[String]) -> Result<(), CallbackError> {
    if log_names.iter().any(|n| n == monitor) {
        Ok(())
    } else {
        Err(CallbackError::UnknownMonitor {
            monitor: monitor.to_string(),
            available: log_names.to_vec(),
        })
    }
}

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
}

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
}

/// Sets the optimizer's learning rate at the start of each epoch from a schedule of
/// [`tapegrad_optim::schedules`] (Keras' `LearningRateScheduler`): during epoch `e`
/// (0-based, counted from the start of this `fit`) the rate is `schedule.lr(e)`.
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
        let lr = self.schedule.lr(epoch);
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(CallbackError::InvalidLearningRate { epoch, lr });
        }
        state.optimizer_mut().set_lr(lr);
        Ok(())
    }
}

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
