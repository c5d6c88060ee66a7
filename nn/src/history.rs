//! What [`Model::fit`](crate::model::Model::fit) returns: the loss and metrics of every
//! epoch, and why training stopped early, if it did.

use std::fmt::{self, Write as _};
use std::path::Path;

use crate::io::{IoError, write_atomic};

/// The per-epoch record of a training run, like Keras' `History.history`.
///
/// It has one column per logged quantity, in this order: `loss`, then each metric (e.g.
/// `accuracy`), then, when there is validation data, `val_loss` and `val_<metric>`. Every
/// column has one value per recorded epoch. Epochs are numbered from 0, as in Keras'
/// `CSVLogger` and in [`LrSchedule::lr`](tapegrad_optim::LrSchedule::lr).
///
/// ```
/// use tapegrad_nn::history::History;
///
/// let mut history = History::new(&["loss", "val_loss"]);
/// history.push_epoch(&[0.5, 0.7]);
/// history.push_epoch(&[0.25, 0.5]);
/// assert_eq!(history.epochs(), 2);
/// assert_eq!(history.loss(), &[0.5, 0.25]);
/// assert_eq!(history.get("val_loss"), Some(&[0.7, 0.5][..]));
/// assert_eq!(history.to_csv(), "epoch,loss,val_loss\n0,0.5,0.7\n1,0.25,0.5\n");
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    names: Vec<String>,
    values: Vec<Vec<f64>>,
    epochs: usize,
    stop_reason: Option<StopReason>,
}

/// Why training ended before its last epoch.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum StopReason {
    /// [`EarlyStopping`](crate::callbacks::EarlyStopping) saw no improvement of its monitored
    /// quantity for `patience` epochs.
    EarlyStopping {
        /// The last epoch trained (0-based).
        epoch: usize,
        /// The monitored quantity (e.g. `val_loss`).
        monitor: String,
        /// The epoch with the best value (0-based).
        best_epoch: usize,
        /// The best value.
        best: f64,
        /// Whether the weights of `best_epoch` were restored.
        restored_best_weights: bool,
    },
    /// [`TerminateOnNan`](crate::callbacks::TerminateOnNan) saw a NaN or infinite batch
    /// loss. The batch's gradients were not applied; its epoch is recorded with the
    /// non-finite loss and NaN validation values.
    NonFiniteLoss {
        /// The epoch (0-based).
        epoch: usize,
        /// The batch within the epoch (0-based).
        batch: usize,
        /// The loss of that batch.
        loss: f64,
    },
    /// Another callback asked to stop.
    Callback {
        /// The callback's name.
        name: String,
        /// The last epoch trained (0-based).
        epoch: usize,
        /// Why, in the callback's words.
        message: String,
    },
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::EarlyStopping {
                epoch,
                monitor,
                best_epoch,
                best,
                restored_best_weights,
            } => {
                write!(
                    f,
                    "early stopping after epoch {epoch}: `{monitor}` has not improved since epoch \
                     {best_epoch} ({best})"
                )?;
                if *restored_best_weights {
                    write!(f, "; restored the weights of epoch {best_epoch}")?;
                }
                Ok(())
            }
            StopReason::NonFiniteLoss { epoch, batch, loss } => {
                write!(f, "non-finite loss {loss} at epoch {epoch}, batch {batch}")
            }
            StopReason::Callback {
                name,
                epoch,
                message,
            } => write!(
                f,
                "callback `{name}` stopped training after epoch {epoch}: {message}"
            ),
        }
    }
}

impl History {
    /// An empty history with these columns (used by `fit`; public for callbacks and tests).
    pub fn new(names: &[&str]) -> Self {
        History {
            names: names.iter().map(|n| n.to_string()).collect(),
            values: names.iter().map(|_| Vec::new()).collect(),
            epochs: 0,
            stop_reason: None,
        }
    }

    /// Appends one epoch: one value per column, in column order.
    ///
    /// # Panics
    ///
    /// If `values` does not have one value per column (a caller bug).
    #[track_caller]
    pub fn push_epoch(&mut self, values: &[f64]) {
        assert_eq!(
            values.len(),
            self.names.len(),
            "History::push_epoch: {} values for {} columns",
            values.len(),
            self.names.len()
        );
        for (column, &v) in self.values.iter_mut().zip(values) {
            column.push(v);
        }
        self.epochs += 1;
    }

    /// The number of recorded epochs.
    pub fn epochs(&self) -> usize {
        self.epochs
    }

    /// Whether no epoch was recorded.
    pub fn is_empty(&self) -> bool {
        self.epochs == 0
    }

    /// The column names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// The values of a column (`"loss"`, `"val_loss"`, `"accuracy"`, `"val_mae"`, ...).
    pub fn get(&self, name: &str) -> Option<&[f64]> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| self.values[i].as_slice())
    }

    /// The training loss of each epoch (empty for a history without a `loss` column).
    pub fn loss(&self) -> &[f64] {
        self.get("loss").unwrap_or(&[])
    }

    /// The validation loss of each epoch, if there was validation data.
    pub fn val_loss(&self) -> Option<&[f64]> {
        self.get("val_loss")
    }

    /// The last value of a column.
    pub fn last(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(|v| v.last().copied())
    }

    /// Why training stopped early, or `None` if it ran all its epochs.
    pub fn stop_reason(&self) -> Option<&StopReason> {
        self.stop_reason.as_ref()
    }

    /// Records why training stopped early.
    pub fn set_stop_reason(&mut self, reason: StopReason) {
        self.stop_reason = Some(reason);
    }

    /// The history as CSV, like Keras' `CSVLogger`: a header `epoch,<column>,...`, then one
    /// line per epoch (numbered from 0). Numbers are written in Rust's shortest round-trip
    /// form (`0.1`, `1e-7`, `NaN`, `inf`), which Python's `float` and pandas read back.
    pub fn to_csv(&self) -> String {
        let mut csv = String::from("epoch");
        for name in &self.names {
            csv.push(',');
            csv.push_str(name);
        }
        csv.push('\n');
        for epoch in 0..self.epochs {
            let _ = write!(csv, "{epoch}");
            for column in &self.values {
                let _ = write!(csv, ",{}", column[epoch]);
            }
            csv.push('\n');
        }
        csv
    }

    /// Writes [`to_csv`](History::to_csv) to `path`, atomically (a temporary file in the same
    /// folder renamed into place, so an existing file is never left half-written).
    ///
    /// # Errors
    ///
    /// [`IoError::Io`] if the file cannot be written.
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<(), IoError> {
        write_atomic(path.as_ref(), self.to_csv().as_bytes())
    }
}
