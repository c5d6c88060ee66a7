//! [`BackupAndRestore`]: back up the whole training state into a folder, and resume a
//! killed run from it exactly.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use tapegrad_autograd::Float;

use super::{Callback, CallbackError, TrainingState};
use crate::io::IoError;
use crate::snapshot::SnapshotError;

/// The file name of the backup in its folder.
const FILE_NAME: &str = "training_state.safetensors";

/// Backs up the whole training state (Keras' `BackupAndRestore`) so that a run killed at
/// any moment resumes where it was and ends with the same bits as a run never
/// interrupted: weights, buffers, the optimizer's state and rate, the schedule's position,
/// the data order and dropout generators, the epoch and step, the history and the other
/// callbacks' own state (see [`TrainingSnapshot`](crate::snapshot::TrainingSnapshot)).
///
/// `fit` writes the backup at the end of every epoch, and every
/// [`every_steps`](Self::every_steps) optimizer steps if asked, into `dir` (one file,
/// replaced atomically). At the start of `fit`, if a backup is there, it is restored and
/// training continues from the step after it; a backup that cannot be read or belongs to
/// another run (another model, optimizer, data, schedule or callbacks) is an error that
/// names what differs, and nothing trains (unless
/// [`start_fresh_on_error`](Self::start_fresh_on_error)). When training ends (all epochs
/// or a callback's stop) the backup is deleted, unless
/// [`delete_on_completion`](Self::delete_on_completion) is off.
///
/// With a [communicator](crate::model::FitOptions::communicator) of several ranks, rank 0
/// writes (with every rank's dropout generators and the metric totals of all ranks) and
/// reads the backup, and sends it to every rank, which restores the same state; the
/// resumed job must have the same number of ranks.
///
/// ```no_run
/// use tapegrad_nn::callbacks::{BackupAndRestore, EarlyStopping};
/// use tapegrad_nn::model::FitOptions;
///
/// let options = FitOptions::<f32>::default()
///     .epochs(20)
///     .callback(EarlyStopping::new().patience(3))
///     .callback(BackupAndRestore::new("runs/backup").every_steps(100));
/// ```
#[derive(Clone, Debug)]
pub struct BackupAndRestore {
    dir: PathBuf,
    every_steps: usize,
    delete_on_completion: bool,
    start_fresh_on_error: bool,
}

impl BackupAndRestore {
    /// Backs up into the folder `dir` (created when first written) at every epoch's end.
    pub fn new(dir: impl AsRef<Path>) -> Self {
        BackupAndRestore {
            dir: dir.as_ref().to_path_buf(),
            every_steps: 0,
            delete_on_completion: true,
            start_fresh_on_error: false,
        }
    }

    /// Also backs up after every `steps` optimizer steps, counted from the start of
    /// training (0, the default: at epoch ends only).
    pub fn every_steps(mut self, steps: usize) -> Self {
        self.every_steps = steps;
        self
    }

    /// Whether the backup is deleted once training ends (default `true`, as Keras'
    /// `delete_checkpoint`).
    pub fn delete_on_completion(mut self, delete: bool) -> Self {
        self.delete_on_completion = delete;
        self
    }

    /// Whether a backup that cannot be read or restored (corrupt, or of another run) is
    /// ignored and training starts from the beginning (default `false`: `fit` fails with
    /// the reason, and nothing trains).
    pub fn start_fresh_on_error(mut self, fresh: bool) -> Self {
        self.start_fresh_on_error = fresh;
        self
    }

    /// The backup file: `training_state.safetensors` in the folder.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The steps between backups (0: at epoch ends only).
    pub(crate) fn steps(&self) -> usize {
        self.every_steps
    }

    /// Whether an unusable backup is ignored.
    pub(crate) fn starts_fresh_on_error(&self) -> bool {
        self.start_fresh_on_error
    }

    /// The bytes of the backup, or `None` when there is none.
    pub(crate) fn read(&self) -> Result<Option<Vec<u8>>, SnapshotError> {
        let path = self.path();
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(IoError::Io {
                action: "read",
                path,
                source,
            }
            .into()),
        }
    }

    /// Replaces the backup by `bytes`, atomically (creating the folder if needed).
    pub(crate) fn write(&self, bytes: &[u8]) -> Result<(), SnapshotError> {
        fs::create_dir_all(&self.dir).map_err(|source| IoError::Io {
            action: "create the folder",
            path: self.dir.clone(),
            source,
        })?;
        crate::io::write_atomic(&self.path(), bytes)?;
        Ok(())
    }
}

impl<T: Float> Callback<T> for BackupAndRestore {
    fn name(&self) -> &'static str {
        "BackupAndRestore"
    }

    /// Rank 0 alone deletes the backup at the end.
    fn root_only(&self) -> bool {
        true
    }

    /// Deletes the backup, unless asked to keep it.
    fn on_train_end(&mut self, _state: &mut TrainingState<'_, T>) -> Result<(), CallbackError> {
        if !self.delete_on_completion {
            return Ok(());
        }
        match fs::remove_file(self.path()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(CallbackError::Backup(Box::new(
                IoError::Io {
                    action: "remove",
                    path: self.path(),
                    source: e,
                }
                .into(),
            ))),
            _ => Ok(()),
        }
    }

    fn backup(&mut self) -> Option<&mut BackupAndRestore> {
        Some(self)
    }
}
