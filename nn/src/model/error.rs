//! [`FitError`], everything that can go wrong in a [`Model`](super::Model)'s checks and
//! training, and [`DataRole`], which data an error is about.

use std::fmt;

use tapegrad_optim::OptimError;

#[cfg(doc)]
use super::Model;
use crate::callbacks::CallbackError;
use crate::communicator::CommError;

/// Which data an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataRole {
    /// `fit`'s `x` and `y`.
    Training,
    /// `fit`'s validation data (given, or split off).
    Validation,
    /// `evaluate`'s `x` and `y`.
    Evaluation,
    /// `predict`'s `x`.
    Prediction,
}

impl fmt::Display for DataRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataRole::Training => "training data",
            DataRole::Validation => "validation data",
            DataRole::Evaluation => "evaluation data",
            DataRole::Prediction => "prediction input",
        })
    }
}

/// Everything that can go wrong in [`Model::fit`], [`Model::evaluate`], [`Model::predict`]
/// and [`Model::build`]. Bad input is always reported with one of these, never a panic.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum FitError {
    /// `fit` or `evaluate` before `compile`.
    #[error("the model is not compiled: call `compile(optimizer, loss, metrics)` first")]
    NotCompiled,
    /// `predict` or `evaluate` before the model was built.
    #[error(
        "the model is not built yet: `fit` builds it, or call `build(input_shape, seed)` first"
    )]
    NotBuilt,
    /// `fit` on a model without trainable parameters, which would train nothing (a custom
    /// layer whose [`visit`](crate::Module::visit) and
    /// [`visit_mut`](crate::Module::visit_mut) leave out its parameters, or a frozen model:
    /// allow that with [`FitOptions::allow_no_trainable`](super::FitOptions::allow_no_trainable)).
    #[error(
        "the model has no trainable parameters, so `fit` would train nothing: a custom layer \
         must register each parameter and child layer (`tapegrad_nn::register!(T; param \
         weight, module dense, …)` writes its `visit` and `visit_mut`); for a frozen model, \
         pass `FitOptions::allow_no_trainable(true)`"
    )]
    NoTrainableParams,
    /// The first step's forward pass used parameters the model does not register (a custom
    /// layer that leaves a parameter out of its visitors): they would never be trained
    /// (checked unless [`FitOptions::allow_no_trainable`](super::FitOptions::allow_no_trainable)).
    #[error(transparent)]
    UnregisteredParams(#[from] crate::module::UnregisteredParams),
    /// `batch_size` is 0.
    #[error("batch_size must be at least 1")]
    InvalidBatchSize,
    /// `validation_split` is outside `[0, 1)`.
    #[error("validation_split must be in [0, 1), got {value}")]
    InvalidValidationSplit {
        /// The rejected fraction.
        value: f64,
    },
    /// No samples (or none left for training after the validation split).
    #[error("the {data} has no samples")]
    EmptyDataset {
        /// Which data.
        data: DataRole,
    },
    /// `x` and `y` have different numbers of samples.
    #[error("the {data} has {x_rows} inputs but {y_rows} targets")]
    LengthMismatch {
        /// Which data.
        data: DataRole,
        /// Samples in `x`.
        x_rows: usize,
        /// Samples in `y`.
        y_rows: usize,
    },
    /// Each sample of `x` does not have the shape the model was built for.
    #[error(
        "each sample of the {data} has shape {found:?}, but the model takes inputs of shape \
         {expected:?} (the shape its first layer was built for)"
    )]
    InputShape {
        /// Which data.
        data: DataRole,
        /// The model's input shape, without the batch axis.
        expected: Vec<usize>,
        /// The shape of one sample of `x`.
        found: Vec<usize>,
    },
    /// Each sample of `x` has a shape the model cannot be built for (e.g. 2-D samples for a
    /// first layer [`Conv2d`](crate::layers::Conv2d)), found by
    /// [`Module::check_input_shape`](crate::Module::check_input_shape) before building.
    #[error("the {data} does not fit the model: {source}")]
    InvalidInputShape {
        /// Which data.
        data: DataRole,
        /// The layer, the shape it takes and the shape of one sample.
        #[source]
        source: crate::module::InvalidInputShape,
    },
    /// An input value the model cannot take (e.g. an embedding index out of range), found
    /// by [`Module::check_input`](crate::Module::check_input).
    #[error("the {data} has an invalid element: {source}")]
    InvalidInput {
        /// Which data.
        data: DataRole,
        /// The layer, the element's position (its first coordinate is the row in that
        /// data) and value.
        #[source]
        source: crate::module::InvalidInput,
    },
    /// Each sample of `y` does not have the shape the loss needs.
    #[error(
        "each target of the {data} has shape {found:?}, but loss `{loss}` needs {expected} \
         (the model's output per sample is {output:?})"
    )]
    TargetShape {
        /// Which data.
        data: DataRole,
        /// The loss's name.
        loss: String,
        /// What the loss needs, in words.
        expected: String,
        /// The model's output shape, without the batch axis.
        output: Vec<usize>,
        /// The shape of one sample of `y`.
        found: Vec<usize>,
    },
    /// A label for the sparse cross-entropy is not an integer in `0..num_classes`.
    #[error(
        "label {label} at row {row} of the {data} is not a class index in 0..{num_classes} \
         (sparse_categorical_cross_entropy needs integer labels)"
    )]
    InvalidLabel {
        /// Which data.
        data: DataRole,
        /// The sample's index (0-based) in that data.
        row: usize,
        /// The label.
        label: f64,
        /// The number of classes (the model's last output size).
        num_classes: usize,
    },
    /// A target of [`Loss::cross_entropy`](super::Loss::cross_entropy) is neither a class
    /// index in `0..num_classes` nor the ignored index.
    #[error(
        "target {value} at row {row}, position {position} of the {data} is not a class index in \
         0..{num_classes}{} (loss `cross_entropy`)",
        match ignore_index { Some(i) => format!(" nor the ignored index {i}"), None => String::new() }
    )]
    InvalidTarget {
        /// Which data.
        data: DataRole,
        /// The sample's index (0-based) in that data.
        row: usize,
        /// The position of the target within its sample, its elements counted in row-major
        /// order (0-based: the time step of a `[n, T]` target).
        position: usize,
        /// The target.
        value: f64,
        /// The number of classes (the model's last output size).
        num_classes: usize,
        /// The ignored index of the loss.
        ignore_index: Option<i64>,
    },
    /// A metric cannot be computed from the model's outputs and these targets.
    #[error(
        "metric `{metric}` cannot compare outputs of shape {output:?} with targets of shape \
         {target:?} (per sample)"
    )]
    MetricShape {
        /// The metric's name.
        metric: &'static str,
        /// The model's output shape, without the batch axis.
        output: Vec<usize>,
        /// The target shape, without the batch axis.
        target: Vec<usize>,
    },
    /// The loss function did not return a single value.
    #[error("loss `{loss}` returned a value of shape {shape:?}; a loss must reduce to one value")]
    LossNotScalar {
        /// The loss's name.
        loss: String,
        /// What it returned.
        shape: Vec<usize>,
    },
    /// The model returned a batch of another size than its input.
    #[error("the model returned {found} rows for a batch of {expected} samples")]
    OutputRows {
        /// The batch size.
        expected: usize,
        /// The rows returned.
        found: usize,
    },
    /// The optimizer refused a step (e.g. NaN gradients after a NaN loss; add
    /// [`TerminateOnNan`](crate::callbacks::TerminateOnNan) to stop cleanly instead).
    #[error("the optimizer failed at epoch {epoch}, batch {batch}: {source}")]
    Optimizer {
        /// The epoch (0-based).
        epoch: usize,
        /// The batch within the epoch (0-based).
        batch: usize,
        /// The optimizer's error.
        #[source]
        source: OptimError,
    },
    /// A NaN or infinite value in the data, found before anything was trained or computed
    /// (skip the check with [`FitOptions::check_finite`](super::FitOptions::check_finite)
    /// or [`Model::set_check_finite`]).
    #[error("non-finite value {value} in the {data}'s {part} at index {index:?} (sample {})", index.first().copied().unwrap_or(0))]
    NonFinite {
        /// Which data.
        data: DataRole,
        /// `"x"` (inputs) or `"y"` (targets).
        part: &'static str,
        /// The value's index in the array as given (`[sample, ...]`, 0-based): `[0, 3, 5]`
        /// is sample 0's element `[3, 5]`.
        index: Vec<usize>,
        /// The value (NaN, +inf or -inf), as `f64`.
        value: f64,
    },
    /// A callback failed.
    #[error("callback {callback} failed{}: {source}", match epoch { Some(e) => format!(" at epoch {e}"), None => String::new() })]
    Callback {
        /// The callback's name.
        callback: &'static str,
        /// The epoch (0-based), or `None` before the first or after the last.
        epoch: Option<usize>,
        /// The callback's error (boxed: it can be large, and this path is cold).
        #[source]
        source: Box<CallbackError>,
    },
    /// The backup of [`BackupAndRestore`](crate::callbacks::BackupAndRestore) cannot be
    /// restored (corrupt, or of another run: the error names what differs), or cannot be
    /// written. A backup that cannot be restored stops `fit` before any training.
    #[error("backup {path}: {source}")]
    Backup {
        /// The backup file.
        path: std::path::PathBuf,
        /// What went wrong.
        #[source]
        source: Box<crate::snapshot::SnapshotError>,
    },
    /// A collective operation of the [`Communicator`](crate::communicator::Communicator)
    /// failed (data-parallel training).
    #[error("communication between the processes failed: {0}")]
    Communication(#[from] CommError),
    /// Another process of a data-parallel run failed (its error, as text); every process
    /// stops with it. The process that failed returns its own error.
    #[error("rank {rank} failed: {message}")]
    RankFailed {
        /// The rank that failed (the lowest, when several did).
        rank: usize,
        /// Its error.
        message: String,
    },
}
