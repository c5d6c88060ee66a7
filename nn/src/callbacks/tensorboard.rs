//! [`TensorBoard`]: losses, metrics, the learning rate, weight histograms and the model's
//! parameters written as TensorBoard event files during `fit`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tapegrad_autograd::Float;

use super::{
    BatchLogs, Callback, CallbackError, CallbackState, Control, EpochLogs, StepGradients,
    TrainingState,
};
use crate::tensorboard::{SummaryError, SummaryWriter};

/// How often [`TensorBoard`] logs the training loss (Keras' `update_freq`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UpdateFreq {
    /// At the end of each epoch only (`"epoch"`).
    #[default]
    Epoch,
    /// Also every `n` optimizer steps: the batch's loss as `batch_loss`, at the step
    /// counted from the start of training (an integer `update_freq`).
    Batches(usize),
}

/// Writes TensorBoard logs during [`fit`](crate::model::Model::fit) (Keras' `TensorBoard`
/// callback), in Keras' layout: the runs `<log_dir>/train` and `<log_dir>/validation`
/// (the latter when there is validation data), each with one scalar series per logged
/// value, `epoch_<name>` at step `epoch` (`epoch_loss`, `epoch_accuracy`; the validation
/// run's without the `val_` prefix), and in `train`:
///
/// - `epoch_learning_rate`, the optimizer's learning rate at the epoch's end;
/// - `batch_loss` every `n` steps with [`UpdateFreq::Batches`];
/// - with [`histogram_freq`](Self::histogram_freq) `k > 0`, every `k` epochs, the
///   histogram of each parameter at the epoch's end, `<path>/histogram`
///   (`dense_0.kernel/histogram`), and of its gradient at the epoch's last step,
///   `<path>/gradient`;
/// - at step 0, the text `model_summary`: a table of the parameters (path, shape, count)
///   and the optimizer, or the text given to [`model_summary`](Self::model_summary).
///
/// Events are flushed to the files at each epoch's end, so a running
/// `tensorboard --logdir <log_dir>` shows each epoch as it ends. Under MPI
/// (a [communicator](crate::model::FitOptions::communicator) of several ranks), rank 0
/// alone writes. With [`BackupAndRestore`](super::BackupAndRestore), a resumed run writes
/// new event files into the same runs and counts steps on from the backup (the points a
/// killed run logged after its last backup are logged again, and TensorBoard shows both).
///
/// ```no_run
/// use tapegrad_nn::callbacks::{TensorBoard, UpdateFreq};
/// use tapegrad_nn::model::FitOptions;
///
/// let options = FitOptions::<f32>::default()
///     .epochs(10)
///     .validation_split(0.1)
///     .callback(TensorBoard::new("runs/mlp").histogram_freq(1).update_freq(UpdateFreq::Batches(100)));
/// ```
#[derive(Debug)]
pub struct TensorBoard {
    log_dir: PathBuf,
    histogram_freq: usize,
    update_freq: UpdateFreq,
    summary: Option<String>,
    train: Option<SummaryWriter>,
    validation: Option<SummaryWriter>,
    /// Optimizer steps taken since the start of training.
    steps: usize,
    /// An error of `on_batch_end` (which cannot return one), returned at the epoch's end.
    batch_error: Option<SummaryError>,
}

impl TensorBoard {
    /// Logs into the folder `log_dir` (created when training begins), at epoch ends, with
    /// no histograms.
    pub fn new(log_dir: impl AsRef<Path>) -> Self {
        TensorBoard {
            log_dir: log_dir.as_ref().to_path_buf(),
            histogram_freq: 0,
            update_freq: UpdateFreq::Epoch,
            summary: None,
            train: None,
            validation: None,
            steps: 0,
            batch_error: None,
        }
    }

    /// Writes the histograms of the parameters and of their gradients every `epochs`
    /// epochs, from epoch 0 (0, the default: never).
    pub fn histogram_freq(mut self, epochs: usize) -> Self {
        self.histogram_freq = epochs;
        self
    }

    /// How often the training loss is logged (default [`UpdateFreq::Epoch`]).
    pub fn update_freq(mut self, freq: UpdateFreq) -> Self {
        self.update_freq = freq;
        self
    }

    /// The model summary to show as text (e.g.
    /// [`Sequential::summary`](crate::layers::Sequential::summary)), shown as preformatted
    /// text; by default a table of the parameters.
    pub fn model_summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = Some(summary.into());
        self
    }

    /// The log folder.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    fn write_epoch<T: Float>(
        &mut self,
        logs: &EpochLogs<'_>,
        state: &TrainingState<'_, T>,
    ) -> Result<(), SummaryError> {
        let epoch = logs.epoch;
        let Some(train) = self.train.as_mut() else {
            return Ok(());
        };
        for (name, &value) in logs.names.iter().zip(logs.values) {
            match name.strip_prefix("val_") {
                None => train.add_scalar(&format!("epoch_{name}"), value, epoch)?,
                Some(name) => {
                    if self.validation.is_none() {
                        self.validation =
                            Some(SummaryWriter::new(self.log_dir.join("validation"))?);
                    }
                    if let Some(validation) = self.validation.as_mut() {
                        validation.add_scalar(&format!("epoch_{name}"), value, epoch)?;
                    }
                }
            }
        }
        train.add_scalar("epoch_learning_rate", state.optimizer().lr(), epoch)?;
        if self.histogram_freq > 0 && epoch.is_multiple_of(self.histogram_freq) {
            for (path, param) in state.module().named_params() {
                let value = param.value();
                if value.iter().any(|v| v.is_finite()) {
                    train.add_histogram(&format!("{path}/histogram"), value, epoch)?;
                }
            }
        }
        train.flush()?;
        if let Some(validation) = self.validation.as_mut() {
            validation.flush()?;
        }
        Ok(())
    }
}

/// A Markdown table of the module's parameters and the optimizer.
fn parameter_table<T: Float>(state: &TrainingState<'_, T>) -> String {
    let mut text = String::from("| parameter | shape | count |\n|---|---|---:|\n");
    let mut total = 0;
    for (path, param) in state.module().named_params() {
        total += param.len();
        let _ = writeln!(text, "| {path} | {:?} | {} |", param.shape(), param.len());
    }
    let optimizer = state.optimizer();
    let _ = write!(
        text,
        "\nTrainable parameters: {total}. Optimizer: {} (learning rate {}).",
        optimizer.name(),
        optimizer.lr()
    );
    text
}

impl<T: Float> Callback<T> for TensorBoard {
    fn name(&self) -> &'static str {
        "TensorBoard"
    }

    fn root_only(&self) -> bool {
        true
    }

    /// Opens the `train` run and writes the model summary.
    fn on_train_begin(
        &mut self,
        _log_names: &[String],
        state: &mut TrainingState<'_, T>,
    ) -> Result<(), CallbackError> {
        self.steps = 0;
        self.batch_error = None;
        self.validation = None;
        let mut train = SummaryWriter::new(self.log_dir.join("train"))?;
        let summary = match &self.summary {
            // Indented four spaces: a Markdown code block, kept as it is.
            Some(text) => text.lines().map(|line| format!("    {line}\n")).collect(),
            None => parameter_table(state),
        };
        train.add_text("model_summary", &summary, 0)?;
        train.flush()?;
        self.train = Some(train);
        Ok(())
    }

    /// Counts the step; logs `batch_loss` every `n` steps with [`UpdateFreq::Batches`].
    fn on_batch_end(&mut self, batch: &BatchLogs) -> Control {
        self.steps += 1;
        if let (UpdateFreq::Batches(n), Some(train)) = (self.update_freq, self.train.as_mut())
            && n > 0
            && self.steps.is_multiple_of(n)
            && self.batch_error.is_none()
            && let Err(e) = train.add_scalar("batch_loss", batch.loss, self.steps)
        {
            self.batch_error = Some(e);
        }
        Control::Continue
    }

    /// At the last step of a histogram epoch, writes each gradient's histogram.
    fn on_gradients(&mut self, batch: &BatchLogs, gradients: &StepGradients<'_, T>) {
        let freq = self.histogram_freq;
        if freq == 0 || !batch.epoch.is_multiple_of(freq) || batch.batch + 1 != batch.batches {
            return;
        }
        let Some(train) = self.train.as_mut() else {
            return;
        };
        for (path, grad) in gradients.named() {
            if self.batch_error.is_some() {
                return;
            }
            if grad.iter().any(|v| v.is_finite())
                && let Err(e) = train.add_histogram(&format!("{path}/gradient"), grad, batch.epoch)
            {
                self.batch_error = Some(e);
            }
        }
    }

    fn on_epoch_end(
        &mut self,
        logs: &EpochLogs<'_>,
        state: &mut TrainingState<'_, T>,
    ) -> Result<Control, CallbackError> {
        if let Some(e) = self.batch_error.take() {
            return Err(e.into());
        }
        self.write_epoch(logs, state)?;
        Ok(Control::Continue)
    }

    /// Flushes and closes the event files.
    fn on_train_end(&mut self, _state: &mut TrainingState<'_, T>) -> Result<(), CallbackError> {
        for writer in [self.train.take(), self.validation.take()]
            .into_iter()
            .flatten()
        {
            let mut writer = writer;
            writer.flush()?;
        }
        Ok(())
    }

    /// The optimizer steps counted so far.
    fn state(&self) -> Option<CallbackState<T>> {
        Some(CallbackState::new().number("steps", self.steps as f64))
    }

    fn restore_state(&mut self, state: CallbackState<T>) -> Result<(), CallbackError> {
        self.steps = state.get_count("steps")?;
        Ok(())
    }
}
