//! [`CsvLogger`]: one CSV row per epoch, flushed as it ends.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tapegrad_autograd::Float;

use super::{Callback, CallbackError, CallbackState, Control, EpochLogs, TrainingState};
use crate::io::IoError;

/// Writes one row per epoch to a CSV file (Keras' `CSVLogger`): a header `epoch` and the
/// logged names in the [`History`](crate::history::History)'s order (`loss`, metrics,
/// `val_loss`, ...), then the epoch (0-based) and its values. Each row is written to the
/// file as its epoch ends.
///
/// The file is replaced when training begins, or, with [`append`](Self::append), appended
/// to (without a second header when it has one). A run resumed by
/// [`BackupAndRestore`](super::BackupAndRestore) continues the file at the backup's
/// epoch: rows written after the backup by the killed run are dropped, the others kept,
/// and the header is not repeated. Under MPI, rank 0 alone writes.
///
/// ```
/// use ndarray::array;
/// use tapegrad_nn::callbacks::CsvLogger;
/// use tapegrad_nn::layers::{Dense, Sequential};
/// use tapegrad_nn::model::{FitOptions, Loss, Model};
/// use tapegrad_optim::Sgd;
///
/// let path = std::env::temp_dir().join(format!("tapegrad-csv-doc-{}.csv", std::process::id()));
/// let mut model = Model::new(Sequential::<f64>::new().add(Dense::new(1)));
/// model.compile(Sgd::new(0.1)?, Loss::mse(), &[]);
/// let (x, y) = (array![[0.0], [1.0]], array![[1.0], [3.0]]);
/// let options = FitOptions::default().epochs(2).verbose(0);
/// model.fit(&x, &y, options.callback(CsvLogger::new(&path).separator(';')))?;
/// let csv = std::fs::read_to_string(&path).unwrap();
/// assert!(csv.starts_with("epoch;loss\n0;"));
/// assert_eq!(csv.lines().count(), 3);
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct CsvLogger {
    path: PathBuf,
    separator: char,
    append: bool,
    /// The header, once training began.
    header: String,
    /// The open file, from the first row of a run on.
    file: Option<File>,
    /// The file's length at the backup a resumed run continues from.
    resumed_len: Option<u64>,
}

impl CsvLogger {
    /// Logs to `path`, comma-separated, replacing the file when training begins.
    pub fn new(path: impl AsRef<Path>) -> Self {
        CsvLogger {
            path: path.as_ref().to_path_buf(),
            separator: ',',
            append: false,
            header: String::new(),
            file: None,
            resumed_len: None,
        }
    }

    /// The field separator (default `,`).
    pub fn separator(mut self, separator: char) -> Self {
        self.separator = separator;
        self
    }

    /// Whether a new run appends to an existing file instead of replacing it (default
    /// `false`).
    pub fn append(mut self, append: bool) -> Self {
        self.append = append;
        self
    }

    /// The CSV file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, action: &'static str) -> impl FnOnce(io::Error) -> CallbackError {
        let path = self.path.clone();
        move |source| {
            CallbackError::Log(IoError::Io {
                action,
                path,
                source,
            })
        }
    }

    /// Opens the file for this run's first row, and writes the header when it has none.
    fn open(&mut self) -> Result<File, CallbackError> {
        let keep = self.resumed_len.is_some() || self.append;
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(!keep)
            .open(&self.path)
            .map_err(self.error("open"))?;
        let mut len = file.metadata().map_err(self.error("read"))?.len();
        if let Some(resumed) = self.resumed_len
            && resumed < len
        {
            file.set_len(resumed).map_err(self.error("truncate"))?;
            len = resumed;
        }
        file.seek(SeekFrom::End(0)).map_err(self.error("seek"))?;
        if len == 0 {
            file.write_all(self.header.as_bytes())
                .map_err(self.error("write"))?;
        }
        Ok(file)
    }
}

impl<T: Float> Callback<T> for CsvLogger {
    fn name(&self) -> &'static str {
        "CsvLogger"
    }

    fn root_only(&self) -> bool {
        true
    }

    /// Makes the header; the file is opened at the first epoch's end.
    fn on_train_begin(
        &mut self,
        log_names: &[String],
        _state: &mut TrainingState<'_, T>,
    ) -> Result<(), CallbackError> {
        let sep = self.separator.to_string();
        self.header = format!("epoch{sep}{}\n", log_names.join(&sep));
        self.file = None;
        self.resumed_len = None;
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        logs: &EpochLogs<'_>,
        _state: &mut TrainingState<'_, T>,
    ) -> Result<Control, CallbackError> {
        let mut row = logs.epoch.to_string();
        for value in logs.values {
            row.push(self.separator);
            row += &value.to_string();
        }
        row.push('\n');
        let mut file = match self.file.take() {
            Some(file) => file,
            None => self.open()?,
        };
        // One write of the whole row, straight to the file (no buffer to flush).
        file.write_all(row.as_bytes())
            .map_err(self.error("write"))?;
        self.file = Some(file);
        Ok(Control::Continue)
    }

    /// Closes the file.
    fn on_train_end(&mut self, _state: &mut TrainingState<'_, T>) -> Result<(), CallbackError> {
        self.file = None;
        Ok(())
    }

    /// The file's length: what a resumed run keeps of it (before this run's first row:
    /// what this run keeps of the file).
    fn state(&self) -> Option<CallbackState<T>> {
        let len = match (&self.file, self.resumed_len) {
            (Some(file), _) => file.metadata().map(|m| m.len()).unwrap_or(0),
            (None, Some(len)) => len,
            (None, None) if self.append => std::fs::metadata(&self.path).map_or(0, |m| m.len()),
            (None, None) => 0,
        };
        Some(CallbackState::new().number("file_len", len as f64))
    }

    fn restore_state(&mut self, state: CallbackState<T>) -> Result<(), CallbackError> {
        self.resumed_len = Some(state.get_count("file_len")? as u64);
        self.file = None;
        Ok(())
    }
}
