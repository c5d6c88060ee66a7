//! [`SnapshotError`]: what can go wrong while saving, loading or restoring a training
//! snapshot.

use std::fmt;
use std::path::PathBuf;

use tapegrad_optim::OptimError;

use crate::callbacks::CallbackError;
use crate::communicator::CommError;
use crate::io::IoError;

/// Everything that can go wrong with a [`TrainingSnapshot`](super::TrainingSnapshot): a file
/// that cannot be read or is not a snapshot, or a snapshot of another training run (each
/// mismatch names what differs). Restoring checks everything before changing anything.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Reading or writing the file failed, or it is not a valid safetensors file, or a
    /// tensor has another element type (see [`IoError`]).
    #[error(transparent)]
    Io(#[from] IoError),

    /// The file is a valid safetensors file but holds no training snapshot (a weights
    /// checkpoint, or another program's file).
    #[error(
        "{path} is not a training snapshot (no `{key}` metadata: a weights checkpoint or \
         another program's file?)"
    )]
    NotASnapshot {
        /// The file.
        path: PathBuf,
        /// The metadata key a snapshot has.
        key: &'static str,
    },

    /// The snapshot was written in a format version this build does not read.
    #[error("{path} is a training snapshot of format {found}; this build reads format {expected}")]
    Version {
        /// The file.
        path: PathBuf,
        /// The version this build reads.
        expected: u64,
        /// The version in the file.
        found: u64,
    },

    /// The snapshot's description or tensors are inconsistent (a corrupt or hand-edited
    /// file).
    #[error("{path} is a corrupt training snapshot: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// The snapshot was saved from a model of another element type.
    #[error("the snapshot holds {found} values, but the model uses {expected}")]
    Dtype {
        /// The model's element type.
        expected: &'static str,
        /// The snapshot's.
        found: String,
    },

    /// The snapshot's parameters, buffers or random generators differ from the model's (a
    /// model of another architecture): every difference, each list sorted.
    #[error(
        "the snapshot is of another model: {}",
        describe(missing, unexpected, shapes)
    )]
    Model {
        /// The model's entries the snapshot lacks (`param `, `buffer ` or `generator `
        /// and the path).
        missing: Vec<String>,
        /// The snapshot's entries the model lacks.
        unexpected: Vec<String>,
        /// The entries whose shapes differ: (entry, the model's shape, the snapshot's).
        shapes: Vec<(String, Vec<usize>, Vec<usize>)>,
    },

    /// The snapshot was saved with another kind of optimizer.
    #[error("the snapshot holds the state of optimizer {found}, but the model uses {expected}")]
    Optimizer {
        /// The optimizer in use (its [`name`](tapegrad_optim::Optimizer::name)).
        expected: &'static str,
        /// The snapshot's.
        found: String,
    },

    /// The optimizer refused the snapshot's state (another configuration of the same
    /// optimizer, such as SGD with and without momentum, or an invalid learning rate).
    #[error("the snapshot's optimizer state does not fit: {0}")]
    OptimizerState(#[source] OptimError),

    /// A part of the training loop differs from the snapshot's: the data walk (rows, batch
    /// size, shuffling), the schedule, the logged names, the callbacks or the number of
    /// ranks.
    #[error("the snapshot's {part} is {found}, but this run's is {expected}")]
    Mismatch {
        /// What differs (`"data walk"`, `"schedule"`, `"history"`, `"callbacks"`,
        /// `"ranks"`, `"position"`).
        part: &'static str,
        /// This run's.
        expected: String,
        /// The snapshot's.
        found: String,
    },

    /// A callback refused its saved state.
    #[error("callback {callback} cannot restore its saved state: {source}")]
    Callback {
        /// The callback's name.
        callback: String,
        /// Its error.
        #[source]
        source: Box<CallbackError>,
    },

    /// Sending the snapshot between the ranks of a data-parallel run failed.
    #[error("cannot share the snapshot between the ranks: {0}")]
    Communication(#[from] CommError),
}

impl fmt::Debug for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The body of [`SnapshotError::Model`]'s message.
fn describe(
    missing: &[String],
    unexpected: &[String],
    shapes: &[(String, Vec<usize>, Vec<usize>)],
) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("it lacks {}", missing.join(", ")));
    }
    if !unexpected.is_empty() {
        parts.push(format!(
            "it has {}, which the model lacks",
            unexpected.join(", ")
        ));
    }
    for (name, expected, found) in shapes {
        parts.push(format!(
            "{name} has shape {found:?} in the snapshot, {expected:?} in the model"
        ));
    }
    parts.join("; ")
}
