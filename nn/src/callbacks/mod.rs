//! Hooks into [`Model::fit`](crate::model::Model::fit): early stopping, checkpoints,
//! learning-rate schedules, stopping on NaN, backups to resume a killed run
//! ([`BackupAndRestore`]), logs for TensorBoard ([`TensorBoard`]) and in CSV
//! ([`CsvLogger`]), and the [`Callback`] trait to write your own.
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

use std::path::Path;

use tapegrad_autograd::{Float, Param};
use tapegrad_optim::Optimizer;

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
    /// The number of batches in the epoch (all ranks' together under MPI).
    pub batches: usize,
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
#[derive(thiserror::Error)]
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
    /// A callback's saved state (see [`CallbackState`]) lacks a value or holds an invalid
    /// one.
    #[error("invalid callback state `{key}`: {reason}")]
    InvalidState {
        /// The key of the value.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Writing or removing a backup failed (see [`BackupAndRestore`]).
    #[error("backup failed: {0}")]
    Backup(#[source] Box<crate::snapshot::SnapshotError>),
    /// Writing a log file failed (see [`CsvLogger`]).
    #[error("cannot write the log: {0}")]
    Log(#[source] IoError),
    /// Writing TensorBoard events failed (see [`TensorBoard`]).
    #[error("cannot write TensorBoard events: {0}")]
    Summary(#[from] crate::tensorboard::SummaryError),
    /// Any other error (for user-defined callbacks).
    #[error(transparent)]
    Custom(Box<dyn std::error::Error + Send + Sync>),
}

/// A hook into the training loop. Every method has a default that does nothing.
///
/// The order of calls in `fit` is: `on_train_begin`; then for each epoch `on_epoch_begin`,
/// for each batch `on_batch_end` and (when no callback stopped) `on_gradients`,
/// `on_epoch_end`; and `on_train_end` once training stops (normally or because a callback
/// said [`Control::Stop`]; not after an error).
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
    /// logs, weights and buffers. After each callback phase the ranks agree on its outcome:
    /// an error on any rank is every rank's, and a [`Control::Stop`] on any rank (a
    /// root-only callback's, or a rank-local one such as a time budget) stops every rank
    /// there, with the reason of the lowest rank that stopped.
    /// [`on_batch_end`](Callback::on_batch_end) runs on every rank either way.
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

    /// Called after [`on_batch_end`](Callback::on_batch_end) let the batch through, with the
    /// gradients the optimizer is about to apply (under MPI, the ranks' average, the same on
    /// every rank; on rank 0 only for a [root-only](Callback::root_only) callback). It cannot
    /// fail or stop training: keep what you need and act on it in
    /// [`on_epoch_end`](Callback::on_epoch_end) (as [`TensorBoard`]'s gradient histograms do).
    fn on_gradients(&mut self, batch: &BatchLogs, gradients: &StepGradients<'_, T>) {
        let _ = (batch, gradients);
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

    /// The callback's own state (what it learned while training: a best value, a patience
    /// counter), which a [`BackupAndRestore`] backup saves so that a resumed run continues
    /// it exactly. Default `None`: a callback without state.
    fn state(&self) -> Option<CallbackState<T>> {
        None
    }

    /// Puts back a state from [`state`](Callback::state), when `fit` resumes from a backup
    /// (after [`on_train_begin`](Callback::on_train_begin), which starts a fresh run's
    /// state). Called only with a state this kind of callback saved.
    ///
    /// # Errors
    ///
    /// [`CallbackError::InvalidState`] if a value is missing or invalid (the default, for a
    /// callback without state, refuses any state).
    fn restore_state(&mut self, state: CallbackState<T>) -> Result<(), CallbackError> {
        let key = state
            .all_numbers()
            .keys()
            .chain(state.all_tensors().keys())
            .next();
        Err(CallbackError::InvalidState {
            key: key.cloned().unwrap_or_default(),
            reason: format!("callback `{}` keeps no state", self.name()),
        })
    }

    /// The backup `fit` keeps through this callback: `Some` only for [`BackupAndRestore`],
    /// whose writing and restoring `fit` drives itself (it needs the whole training state,
    /// which no single callback sees).
    fn backup(&mut self) -> Option<&mut BackupAndRestore> {
        None
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

mod backup;
mod checkpoint;
mod csv_logger;
mod early_stopping;
mod gradients;
mod lr_scheduler;
mod state;
mod tensorboard;
mod terminate_on_nan;

pub use backup::BackupAndRestore;
pub use checkpoint::ModelCheckpoint;
pub use csv_logger::CsvLogger;
pub use early_stopping::EarlyStopping;
pub use gradients::StepGradients;
pub use lr_scheduler::LrScheduler;
pub use state::CallbackState;
pub(crate) use state::to_count;
pub use tensorboard::{TensorBoard, UpdateFreq};
pub use terminate_on_nan::TerminateOnNan;
