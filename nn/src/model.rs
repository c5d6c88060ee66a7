//! The Keras-style training API: [`Model`] wraps a [`Module`], is
//! [`compile`](Model::compile)d with an optimizer, a [`Loss`] and [`Metric`]s, then
//! [`fit`](Model::fit), [`evaluate`](Model::evaluate)d and used to
//! [`predict`](Model::predict).
//!
//! The line fit of the "hello world" of deep learning: learn `y = 5x + 1` from six points with
//! one dense unit, plain SGD and the mean squared error, for 500 epochs.
//!
//! ```
//! use ndarray::array;
//! use tapegrad_nn::layers::{Dense, Sequential};
//! use tapegrad_nn::model::{FitOptions, Loss, Model};
//! use tapegrad_optim::Sgd;
//!
//! let xs = array![[-1.0_f32], [0.0], [1.0], [2.0], [3.0], [4.0]];
//! let ys = array![[-4.0_f32], [1.0], [6.0], [11.0], [16.0], [21.0]];
//!
//! let mut model = Model::new(Sequential::new().add(Dense::new(1)));
//! model.compile(Sgd::new(0.01)?, Loss::mse(), &[]);
//! let history = model.fit(&xs, &ys, FitOptions::default().epochs(500).verbose(0))?;
//!
//! let y = model.predict(&array![[10.0_f32]], 32)?;
//! assert!((y[[0, 0]] - 51.0).abs() < 0.2, "predicted {}", y[[0, 0]]);
//! assert_eq!(history.epochs(), 500);
//! assert!(history.loss()[499] < history.loss()[0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same training, written by hand on the tape, is what `fit` runs for every batch:
//!
//! ```text
//! let tape = Tape::new();
//! let out = module.forward(tape.constant(batch_x));
//! let loss = loss_fn(out, tape.constant(batch_y));
//! let grads = loss.backward();
//! drop(tape);
//! optimizer.step(&mut module.params_mut(), &grads)?;
//! ```
//!
//! Data conventions: samples are rows (axis 0) of `x` and `y`. A 1-D `x` is a column of
//! scalar samples (shape `(n,)` is read as `(n, 1)`), and so is a 1-D `y` when the model's
//! output has one value per sample, as in Keras. Epochs and batches are numbered from 0.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::fmt;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ndarray::{ArrayBase, ArrayD, ArrayViewD, Axis, CowArray, Data, Dimension, IxDyn, Slice};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use tapegrad_autograd::{Float, Param, Tape, Var};
use tapegrad_optim::{OptimError, Optimizer};

use crate::callbacks::{BatchLogs, Callback, CallbackError, Control, EpochLogs, TrainingState};
use crate::history::History;
use crate::io::{self, IoError};
use crate::layers::{DEFAULT_SEED, Sequential};
use crate::losses;
pub use crate::metrics::Metric;
use crate::metrics::{self, MetricTotal};
use crate::module::Module;

#[inline(always)]
fn to_f64<T: Float>(v: T) -> f64 {
    <T as Float>::to_f64(v)
}

// ---------------------------------------------------------------------------------------
// Loss

/// The signature of a loss: `(predictions, targets) -> scalar`.
pub type LossFn<T> = dyn for<'t> Fn(Var<'t, T>, Var<'t, T>) -> Var<'t, T> + Send + Sync;

/// Which built-in loss a [`Loss`] is (decides label validation and what `Accuracy` means).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LossKind {
    Mse,
    Mae,
    Huber,
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    CategoricalCrossEntropy,
    SparseCategoricalCrossEntropy,
    Custom,
}

impl LossKind {
    /// Whether targets must have the shape of the predictions.
    fn elementwise(self) -> bool {
        !matches!(
            self,
            LossKind::SparseCategoricalCrossEntropy | LossKind::Custom
        )
    }
}

/// A named loss function for [`Model::compile`].
///
/// Built-in losses have constructors (`Loss::mse()`, ...). Any *function* `(Var, Var) -> Var`
/// converts with `From`, so `compile` takes the functions of [`losses`] directly (they keep
/// their names and checks) and your own functions. A closure goes through [`Loss::new`],
/// which gives it a name and lets Rust infer its argument types (a bare closure cannot
/// convert: Rust does not infer a closure's signature through `Into`, and a closure with
/// annotated `Var` arguments cannot return a `Var` tied to them).
///
/// ```
/// use tapegrad_autograd::Var;
/// use tapegrad_nn::losses;
/// use tapegrad_nn::model::Loss;
///
/// let a: Loss<f32> = losses::mse.into();
/// assert_eq!(a.name(), "mse");
///
/// fn cubic<'t>(p: Var<'t, f32>, t: Var<'t, f32>) -> Var<'t, f32> {
///     (p - t).abs().powi(3).mean()
/// }
/// let b: Loss<f32> = cubic.into();
/// assert_eq!(b.name(), "custom");
///
/// let c = Loss::<f32>::new("cubic", |p, t| (p - t).abs().powi(3).mean());
/// assert_eq!(c.name(), "cubic");
/// ```
pub struct Loss<T: Float = f32> {
    name: Cow<'static, str>,
    kind: LossKind,
    f: Box<LossFn<T>>,
}

impl<T: Float> fmt::Debug for Loss<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loss").field("name", &self.name).finish()
    }
}

impl<T: Float> Loss<T> {
    /// A user-defined loss with a name (used in messages and summaries).
    pub fn new<F>(name: impl Into<Cow<'static, str>>, f: F) -> Self
    where
        F: for<'t> Fn(Var<'t, T>, Var<'t, T>) -> Var<'t, T> + Send + Sync + 'static,
    {
        Loss {
            name: name.into(),
            kind: LossKind::Custom,
            f: Box::new(f),
        }
    }

    fn builtin<F>(name: &'static str, kind: LossKind, f: F) -> Self
    where
        F: for<'t> Fn(Var<'t, T>, Var<'t, T>) -> Var<'t, T> + Send + Sync + 'static,
    {
        Loss {
            name: Cow::Borrowed(name),
            kind,
            f: Box::new(f),
        }
    }

    /// Mean squared error, [`losses::mse`].
    pub fn mse() -> Self {
        Self::builtin("mse", LossKind::Mse, losses::mse)
    }

    /// Mean absolute error, [`losses::mae`].
    pub fn mae() -> Self {
        Self::builtin("mae", LossKind::Mae, losses::mae)
    }

    /// Huber loss with threshold `delta` (Keras' default is 1.0), [`losses::huber`].
    pub fn huber(delta: f64) -> Self {
        Self::builtin("huber", LossKind::Huber, move |p, t| {
            losses::huber(p, t, delta)
        })
    }

    /// Binary cross-entropy on probabilities, [`losses::binary_cross_entropy`].
    pub fn binary_cross_entropy() -> Self {
        Self::builtin(
            "binary_cross_entropy",
            LossKind::BinaryCrossEntropy,
            losses::binary_cross_entropy,
        )
    }

    /// Binary cross-entropy on logits, [`losses::binary_cross_entropy_with_logits`].
    pub fn binary_cross_entropy_with_logits() -> Self {
        Self::builtin(
            "binary_cross_entropy_with_logits",
            LossKind::BinaryCrossEntropyWithLogits,
            losses::binary_cross_entropy_with_logits,
        )
    }

    /// Categorical cross-entropy of logits against one-hot (or soft) targets,
    /// [`losses::categorical_cross_entropy`] (Keras' `from_logits=True`).
    pub fn categorical_cross_entropy() -> Self {
        Self::builtin(
            "categorical_cross_entropy",
            LossKind::CategoricalCrossEntropy,
            losses::categorical_cross_entropy,
        )
    }

    /// Cross-entropy of logits against integer class labels (targets of shape `(n,)` or
    /// `(n, 1)`), [`losses::sparse_categorical_cross_entropy`] (Keras' `from_logits=True`).
    /// `fit` and `evaluate` check that every label is an integer in `0..num_classes` and
    /// report the first one that is not, with its row.
    pub fn sparse_categorical_cross_entropy() -> Self {
        Self::builtin(
            "sparse_categorical_cross_entropy",
            LossKind::SparseCategoricalCrossEntropy,
            losses::sparse_categorical_cross_entropy,
        )
    }

    /// Its name (`"mse"`, `"sparse_categorical_cross_entropy"`, `"custom"`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Applies it: the loss of `predictions` against `targets`.
    pub fn call<'t>(&self, predictions: Var<'t, T>, targets: Var<'t, T>) -> Var<'t, T> {
        (self.f)(predictions, targets)
    }
}

/// The constructor of a built-in loss.
type BuiltinLoss<T> = fn() -> Loss<T>;

fn type_id_of<F: 'static>(_: &F) -> TypeId {
    TypeId::of::<F>()
}

impl<T, F> From<F> for Loss<T>
where
    T: Float,
    F: for<'t> Fn(Var<'t, T>, Var<'t, T>) -> Var<'t, T> + Send + Sync + 'static,
{
    /// Wraps a function or closure. The functions of [`losses`] are recognized and become
    /// the corresponding built-in (name and checks included); anything else is `"custom"`.
    fn from(f: F) -> Self {
        let id = TypeId::of::<F>();
        let builtins: [(TypeId, BuiltinLoss<T>); 6] = [
            (type_id_of(&losses::mse::<T>), Loss::mse),
            (type_id_of(&losses::mae::<T>), Loss::mae),
            (
                type_id_of(&losses::binary_cross_entropy::<T>),
                Loss::binary_cross_entropy,
            ),
            (
                type_id_of(&losses::binary_cross_entropy_with_logits::<T>),
                Loss::binary_cross_entropy_with_logits,
            ),
            (
                type_id_of(&losses::categorical_cross_entropy::<T>),
                Loss::categorical_cross_entropy,
            ),
            (
                type_id_of(&losses::sparse_categorical_cross_entropy::<T>),
                Loss::sparse_categorical_cross_entropy,
            ),
        ];
        match builtins.iter().find(|(builtin, _)| *builtin == id) {
            Some((_, make)) => make(),
            None => Loss::new("custom", f),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Metrics

/// Shapes equal, or equal but for one trailing axis of length 1 on either side (what the
/// elementwise losses and metrics accept).
fn same_elements(a: &[usize], b: &[usize]) -> bool {
    let trailing_one = |long: &[usize], short: &[usize]| {
        long.len() == short.len() + 1 && long.last() == Some(&1) && long[..short.len()] == *short
    };
    a == b || trailing_one(a, b) || trailing_one(b, a)
}

/// A compiled [`Metric`] resolved against the model's shapes and loss, with its running
/// sum and count (metrics are exact over an epoch, not averages of batch averages).
#[derive(Clone, Debug)]
struct MetricAcc {
    /// The name it is logged under (the compiled metric's name).
    name: &'static str,
    /// The specific metric computed (`Accuracy` resolved to one kind).
    metric: Metric,
    /// Binary accuracy of logits: threshold 0 instead of 0.5.
    logits: bool,
    total: MetricTotal,
}

impl MetricAcc {
    /// Resolves `metric` for outputs and targets of these shapes (per sample), like Keras'
    /// `"accuracy"`: from the loss when it says what the outputs are, else from the shapes.
    fn resolve(
        metric: Metric,
        loss: LossKind,
        output: &[usize],
        target: &[usize],
    ) -> Result<Self, FitError> {
        let classes = output.last().copied().unwrap_or(1);
        let is_label = target.is_empty() || target == [1];
        let mut logits = false;
        let resolved = match metric {
            Metric::Accuracy => match loss {
                LossKind::SparseCategoricalCrossEntropy => Metric::SparseCategoricalAccuracy,
                LossKind::CategoricalCrossEntropy => Metric::CategoricalAccuracy,
                LossKind::BinaryCrossEntropy => Metric::BinaryAccuracy,
                LossKind::BinaryCrossEntropyWithLogits => {
                    logits = true;
                    Metric::BinaryAccuracy
                }
                _ if classes <= 1 => Metric::BinaryAccuracy,
                _ if output == target => Metric::CategoricalAccuracy,
                _ => Metric::SparseCategoricalAccuracy,
            },
            other => other,
        };
        let fits = match resolved {
            Metric::CategoricalAccuracy => output == target && !output.is_empty(),
            Metric::SparseCategoricalAccuracy => output.len() == 1 && is_label,
            _ => same_elements(output, target),
        };
        if !fits {
            return Err(FitError::MetricShape {
                metric: metric.name(),
                output: output.to_vec(),
                target: target.to_vec(),
            });
        }
        Ok(MetricAcc {
            name: metric.name(),
            metric: resolved,
            logits,
            total: MetricTotal::default(),
        })
    }

    fn reset(&mut self) {
        self.total = MetricTotal::default();
    }

    fn value(&self) -> f64 {
        self.total.mean()
    }

    /// Adds a batch: `pred` is `(batch, output...)`, `target` `(batch, target...)`.
    fn update<T: Float>(&mut self, pred: &ArrayD<T>, target: &ArrayD<T>) {
        if self.logits {
            let right = metrics::binary_accuracy(pred, target, 0.0) * pred.len() as f64;
            self.total += MetricTotal {
                sum: right.round(),
                count: pred.len(),
            };
        } else {
            self.total += self.metric.total(pred, target);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Options, results, errors

/// How [`Model::fit`] trains: `FitOptions::default()` then chained setters (or set the
/// public fields).
///
/// ```
/// use tapegrad_nn::callbacks::EarlyStopping;
/// use tapegrad_nn::model::FitOptions;
///
/// let options = FitOptions::<f32>::default()
///     .epochs(20)
///     .batch_size(64)
///     .validation_split(0.1)
///     .verbose(2)
///     .seed(7)
///     .callback(EarlyStopping::new().patience(3));
/// assert_eq!(options.epochs, 20);
/// assert!(options.shuffle);
/// ```
pub struct FitOptions<T: Float = f32> {
    /// Number of passes over the training data (default 1; 0 trains nothing).
    pub epochs: usize,
    /// Samples per gradient step (default 32); the last batch of an epoch may be smaller.
    pub batch_size: usize,
    /// Whether to visit the training samples in a new random order each epoch (default
    /// `true`; the order depends only on [`seed`](FitOptions::seed)). When all samples fit
    /// in one batch, the order cannot matter and nothing is shuffled.
    pub shuffle: bool,
    /// Fraction of the samples, taken from the end of `x` and `y` before any shuffling, held
    /// out for validation (default 0: none), in `[0, 1)`. Ignored when
    /// [`validation_data`](FitOptions::validation_data) is given, as in Keras.
    pub validation_split: f64,
    /// Separate validation inputs and targets.
    pub validation_data: Option<(ArrayD<T>, ArrayD<T>)>,
    /// 0: silent; 1 (default): a progress bar per epoch with the running loss, metrics and
    /// ETA, on standard error, only when standard error is a terminal (silent otherwise);
    /// 2: one line per epoch on standard error.
    pub verbose: u8,
    /// Callbacks, run in order.
    pub callbacks: Vec<Box<dyn Callback<T>>>,
    /// Seeds the weight initialization (when `fit` builds the model), the shuffling, and the
    /// layers' randomness such as dropout (default [`DEFAULT_SEED`], the default seed of
    /// [`Sequential`] too, so a model built early with
    /// [`Sequential::with_input_shape`] starts from the same weights). The same seed and
    /// data give bit-identical weights.
    pub seed: u64,
}

impl<T: Float> Default for FitOptions<T> {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            validation_split: 0.0,
            validation_data: None,
            verbose: 1,
            callbacks: Vec::new(),
            seed: DEFAULT_SEED,
        }
    }
}

impl<T: Float> fmt::Debug for FitOptions<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let callbacks: Vec<&str> = self.callbacks.iter().map(|c| c.name()).collect();
        f.debug_struct("FitOptions")
            .field("epochs", &self.epochs)
            .field("batch_size", &self.batch_size)
            .field("shuffle", &self.shuffle)
            .field("validation_split", &self.validation_split)
            .field(
                "validation_data",
                &self
                    .validation_data
                    .as_ref()
                    .map(|(x, y)| (x.shape().to_vec(), y.shape().to_vec())),
            )
            .field("verbose", &self.verbose)
            .field("callbacks", &callbacks)
            .field("seed", &self.seed)
            .finish()
    }
}

impl<T: Float> FitOptions<T> {
    /// The defaults (same as [`FitOptions::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the number of epochs.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Sets the batch size.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Turns shuffling on or off.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Holds out this fraction of the data (its last samples) for validation.
    pub fn validation_split(mut self, fraction: f64) -> Self {
        self.validation_split = fraction;
        self
    }

    /// Validates on these inputs and targets after each epoch.
    pub fn validation_data(mut self, x: ArrayD<T>, y: ArrayD<T>) -> Self {
        self.validation_data = Some((x, y));
        self
    }

    /// Sets the verbosity (0, 1 or 2).
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }

    /// Adds a callback (after those already added).
    pub fn callback(mut self, callback: impl Callback<T> + 'static) -> Self {
        self.callbacks.push(Box::new(callback));
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// The result of [`Model::evaluate`]: the mean loss and each metric over the whole data.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The loss, averaged over samples.
    pub loss: f64,
    /// Each compiled metric, by its logged name, in compile order.
    pub metrics: Vec<(&'static str, f64)>,
}

impl Evaluation {
    /// The value of a metric by name (`"accuracy"`, `"mae"`, ...), or of `"loss"`.
    pub fn get(&self, name: &str) -> Option<f64> {
        if name == "loss" {
            return Some(self.loss);
        }
        self.metrics
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

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
#[derive(Debug, thiserror::Error)]
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
}

// ---------------------------------------------------------------------------------------
// Model

struct Compiled<T: Float> {
    optimizer: Box<dyn Optimizer<T> + Send>,
    loss: Loss<T>,
    metrics: Vec<Metric>,
}

/// A module with an optimizer, a loss and metrics: the Keras `Model` workflow.
///
/// The module is built (its weights created) on the first [`fit`](Model::fit) from the shape
/// of `x` and the options' seed, or explicitly with [`build`](Model::build). Outside `fit`
/// the module is in inference mode ([`Module::set_training`]`(false)`: no dropout), so
/// [`predict`](Model::predict) and [`evaluate`](Model::evaluate) are deterministic.
///
/// See the [module documentation](self) for the tour.
pub struct Model<T: Float = f32, M: Module<T> = Sequential<T>> {
    module: M,
    input_shape: Option<Vec<usize>>,
    output_shape: Option<Vec<usize>>,
    compiled: Option<Compiled<T>>,
    /// Built before it was wrapped, for an input shape not known yet.
    prebuilt: bool,
}

impl<T: Float, M: Module<T> + fmt::Debug> fmt::Debug for Model<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("module", &self.module)
            .field("input_shape", &self.input_shape)
            .field("output_shape", &self.output_shape)
            .field(
                "optimizer",
                &self.compiled.as_ref().map(|c| c.optimizer.name()),
            )
            .field("loss", &self.compiled.as_ref().map(|c| c.loss.name()))
            .field("metrics", &self.compiled.as_ref().map(|c| &c.metrics))
            .finish()
    }
}

/// Samples as rows: a 1-D array is a column of scalar samples.
fn as_rows<T>(a: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
    if a.ndim() == 1 {
        a.insert_axis(Axis(1))
    } else {
        a
    }
}

fn rows_of<T>(a: &ArrayViewD<'_, T>) -> usize {
    if a.ndim() == 0 { 1 } else { a.len_of(Axis(0)) }
}

/// The view itself if it is in standard (row-major, contiguous) layout, else a copy that is.
fn standard_layout<T: Clone>(a: ArrayViewD<'_, T>) -> CowArray<'_, T, IxDyn> {
    if a.is_standard_layout() {
        CowArray::from(a)
    } else {
        CowArray::from(a.as_standard_layout().into_owned())
    }
}

/// Copies rows `rows` of `src` (standard layout) into a new batch array.
fn gather_rows<T: Float>(src: &ArrayViewD<'_, T>, rows: &[usize], consecutive: bool) -> ArrayD<T> {
    if consecutive {
        let start = rows[0];
        return src
            .slice_axis(Axis(0), Slice::from(start..start + rows.len()))
            .to_owned();
    }
    let mut dim = src.raw_dim();
    dim[0] = rows.len();
    let data: Vec<T> = match src.as_slice() {
        Some(all) => {
            let row_len: usize = src.shape()[1..].iter().product();
            let mut data = Vec::with_capacity(rows.len() * row_len);
            for &r in rows {
                data.extend_from_slice(&all[r * row_len..(r + 1) * row_len]);
            }
            data
        }
        None => rows
            .iter()
            .flat_map(|&r| src.index_axis(Axis(0), r).into_iter().copied())
            .collect(),
    };
    ArrayD::from_shape_vec(dim, data).expect("gathered rows fill the batch shape exactly")
}

/// Checked, reshaped training or evaluation data.
struct Prepared<'a, T> {
    x: CowArray<'a, T, IxDyn>,
    y: CowArray<'a, T, IxDyn>,
    target_shape: Vec<usize>,
}

impl<T: Float, M: Module<T>> Model<T, M> {
    /// Wraps a module (normally a [`Sequential`] stack; any [`Module`] works) and puts it in
    /// inference mode.
    ///
    /// A module that is not built yet is built by the first [`fit`](Model::fit) (or by
    /// [`build`](Model::build)). A [`Sequential`] that is already built (with
    /// [`Sequential::with_input_shape`]) keeps its weights, and its input shape is used to
    /// check inputs. Any other module that already has parameters is taken as built too,
    /// for the sample shape of the first data it is given.
    pub fn new(mut module: M) -> Self
    where
        M: 'static,
    {
        module.set_training(false);
        let mut model = Model {
            module,
            input_shape: None,
            output_shape: None,
            compiled: None,
            prebuilt: false,
        };
        let any: &dyn Any = &model.module;
        if let Some(sequential) = any.downcast_ref::<Sequential<T>>() {
            model.input_shape = sequential.input_shape().map(<[usize]>::to_vec);
            model.output_shape = sequential.output_shape().map(<[usize]>::to_vec);
        } else {
            model.prebuilt = !model.module.params().is_empty();
        }
        model
    }

    /// Sets the optimizer, the loss and the metrics. Compiling again replaces all three
    /// (and so the optimizer's state) but keeps the weights.
    ///
    /// `loss` is a [`Loss`] (`Loss::mse()`, or `Loss::new("name", |p, t| ...)` for a
    /// closure), a function of [`losses`] (`losses::mse`), or your own function
    /// `fn(Var<'t, T>, Var<'t, T>) -> Var<'t, T>`.
    pub fn compile(
        &mut self,
        optimizer: impl Optimizer<T> + Send + 'static,
        loss: impl Into<Loss<T>>,
        metrics: &[Metric],
    ) {
        self.compiled = Some(Compiled {
            optimizer: Box::new(optimizer),
            loss: loss.into(),
            metrics: metrics.to_vec(),
        });
    }

    /// Whether [`compile`](Model::compile) was called.
    pub fn is_compiled(&self) -> bool {
        self.compiled.is_some()
    }

    /// Builds the module for samples of shape `input_shape` (without the batch axis),
    /// initializing its weights from `seed`, and returns the output shape per sample.
    ///
    /// Building an already built model for the same input shape does nothing (the weights
    /// are kept). For a module that was built before [`Model::new`] wrapped it (and is not a
    /// [`Sequential`], whose shapes are read directly), this only records the input shape:
    /// the weights are kept and `seed` is unused.
    ///
    /// # Errors
    ///
    /// [`FitError::InputShape`] if the model is already built for another input shape.
    pub fn build(&mut self, input_shape: &[usize], seed: u64) -> Result<Vec<usize>, FitError> {
        self.ensure_built(input_shape, seed, DataRole::Training)
    }

    fn ensure_built(
        &mut self,
        input_shape: &[usize],
        seed: u64,
        data: DataRole,
    ) -> Result<Vec<usize>, FitError> {
        match (&self.input_shape, &self.output_shape) {
            (Some(built), Some(output)) => {
                if built.as_slice() == input_shape {
                    Ok(output.clone())
                } else {
                    Err(FitError::InputShape {
                        data,
                        expected: built.clone(),
                        found: input_shape.to_vec(),
                    })
                }
            }
            _ if self.prebuilt => {
                // Built elsewhere: take the shape as given, and find the output shape with
                // one sample of zeros.
                let mut shape = vec![1];
                shape.extend_from_slice(input_shape);
                let tape = Tape::new();
                let output = tape.no_grad(|| {
                    let out = self.module.forward(tape.constant(ArrayD::zeros(shape)));
                    out.with_value(|o| o.shape().get(1..).map(<[usize]>::to_vec))
                });
                let output = output.ok_or(FitError::OutputRows {
                    expected: 1,
                    found: 0,
                })?;
                self.input_shape = Some(input_shape.to_vec());
                self.output_shape = Some(output.clone());
                Ok(output)
            }
            _ => {
                let mut rng = StdRng::seed_from_u64(seed);
                let output = self.module.build(input_shape, &mut rng);
                self.module.set_training(false);
                self.input_shape = Some(input_shape.to_vec());
                self.output_shape = Some(output.clone());
                Ok(output)
            }
        }
    }

    /// Whether the model is built.
    pub fn is_built(&self) -> bool {
        self.input_shape.is_some()
    }

    /// The input shape per sample (without the batch axis), once built.
    pub fn input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }

    /// The output shape per sample (without the batch axis), once built.
    pub fn output_shape(&self) -> Option<&[usize]> {
        self.output_shape.as_deref()
    }

    /// The wrapped module.
    pub fn module(&self) -> &M {
        &self.module
    }

    /// The wrapped module, mutably. (If you switch it to training mode, switch it back
    /// before `predict` and `evaluate`.)
    pub fn module_mut(&mut self) -> &mut M {
        &mut self.module
    }

    /// Unwraps the module.
    pub fn into_module(self) -> M {
        self.module
    }

    /// The model's parameters, in the module's order.
    pub fn params(&self) -> Vec<&Param<T>> {
        self.module.params()
    }

    /// The compiled optimizer.
    pub fn optimizer(&self) -> Option<&(dyn Optimizer<T> + Send)> {
        self.compiled.as_ref().map(|c| &*c.optimizer)
    }

    /// The compiled optimizer, mutably (e.g. to set its learning rate between fits).
    pub fn optimizer_mut(&mut self) -> Option<&mut (dyn Optimizer<T> + Send)> {
        match &mut self.compiled {
            Some(c) => Some(&mut *c.optimizer),
            None => None,
        }
    }

    /// The compiled loss.
    pub fn loss(&self) -> Option<&Loss<T>> {
        self.compiled.as_ref().map(|c| &c.loss)
    }

    /// The compiled metrics.
    pub fn metrics(&self) -> &[Metric] {
        self.compiled.as_ref().map_or(&[], |c| &c.metrics)
    }

    /// Saves the weights to `path` in the safetensors format, atomically, each tensor named
    /// by its parameter path (`dense_0.kernel`). See [`crate::io`].
    ///
    /// # Errors
    ///
    /// As [`io::save_weights`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), IoError> {
        io::save_weights(path, &self.module.params())
    }

    /// Loads weights saved by [`save`](Model::save) (or any safetensors file with the same
    /// names, shapes and dtype). The model must be built. Nothing changes on error.
    ///
    /// # Errors
    ///
    /// As [`io::load_weights`].
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<(), IoError> {
        io::load_weights(path, &mut self.module.params_mut())
    }

    /// Checks the input samples against the built input shape.
    fn check_inputs(&self, x: &ArrayViewD<'_, T>, data: DataRole) -> Result<(), FitError> {
        let expected = self.input_shape.as_ref().ok_or(FitError::NotBuilt)?;
        if &x.shape()[1..] != expected.as_slice() {
            return Err(FitError::InputShape {
                data,
                expected: expected.clone(),
                found: x.shape()[1..].to_vec(),
            });
        }
        Ok(())
    }

    /// Checks `x`/`y` of one data against the built model, shapes the targets for the
    /// loss, and validates labels.
    fn prepare<'a>(
        &self,
        x: ArrayViewD<'a, T>,
        y: ArrayViewD<'a, T>,
        data: DataRole,
    ) -> Result<Prepared<'a, T>, FitError> {
        let x = as_rows(x);
        let (x_rows, y_rows) = (rows_of(&x), rows_of(&y));
        if y.ndim() == 0 || x_rows != y_rows {
            return Err(FitError::LengthMismatch {
                data,
                x_rows,
                y_rows: if y.ndim() == 0 { 0 } else { y_rows },
            });
        }
        if x_rows == 0 {
            return Err(FitError::EmptyDataset { data });
        }
        let output = self.output_shape.clone().ok_or(FitError::NotBuilt)?;
        self.check_inputs(&x, data)?;
        let loss = &self.compiled.as_ref().ok_or(FitError::NotCompiled)?.loss;
        let target_error = |expected: String, found: &[usize]| FitError::TargetShape {
            data,
            loss: loss.name().to_string(),
            expected,
            output: output.clone(),
            found: found.to_vec(),
        };
        let y = if loss.kind == LossKind::SparseCategoricalCrossEntropy {
            let sample = &y.shape()[1..];
            if output.len() != 1 || !(sample.is_empty() || sample == [1]) {
                return Err(target_error(
                    "one integer label per sample (targets of shape (n,) or (n, 1)) and \
                     outputs of shape (n, num_classes)"
                        .to_string(),
                    sample,
                ));
            }
            let num_classes = output[0];
            if let Some((row, &label)) = y.iter().enumerate().find(|&(_, &l)| {
                let l = to_f64(l);
                !(l.fract() == 0.0 && l >= 0.0 && l < num_classes as f64)
            }) {
                return Err(FitError::InvalidLabel {
                    data,
                    row,
                    label: to_f64(label),
                    num_classes,
                });
            }
            // The loss takes labels as a vector of class indices.
            y.into_shape_with_order(IxDyn(&[y_rows]))
                .expect("a (n,) or (n, 1) view reshapes to (n,)")
        } else {
            let y = if y.ndim() == 1 && output == [1] {
                y.insert_axis(Axis(1))
            } else {
                y
            };
            if loss.kind.elementwise() && !same_elements(&y.shape()[1..], &output) {
                return Err(target_error(
                    format!("the output's shape {output:?}"),
                    &y.shape()[1..],
                ));
            }
            y
        };
        let target_shape = y.shape()[1..].to_vec();
        Ok(Prepared {
            x: standard_layout(x),
            y: standard_layout(y),
            target_shape,
        })
    }

    fn resolve_metrics(&self, target_shape: &[usize]) -> Result<Vec<MetricAcc>, FitError> {
        let compiled = self.compiled.as_ref().ok_or(FitError::NotCompiled)?;
        let output = self.output_shape.as_deref().ok_or(FitError::NotBuilt)?;
        compiled
            .metrics
            .iter()
            .map(|&m| MetricAcc::resolve(m, compiled.loss.kind, output, target_shape))
            .collect()
    }

    /// Trains the model on inputs `x` and targets `y` (samples along axis 0), and returns
    /// the loss and metrics of every epoch.
    ///
    /// Builds the model on first use (from the shape of `x` and `options.seed`). Each epoch
    /// visits the training samples in batches of `options.batch_size` (shuffled if
    /// `options.shuffle`); each batch is one forward pass on a fresh tape, one backward
    /// sweep and one optimizer step. Then the validation data, if any, is evaluated, the
    /// epoch is recorded in the [`History`], and the callbacks run.
    ///
    /// When a callback stops training, `fit` returns `Ok` and
    /// [`History::stop_reason`] says why and when.
    ///
    /// # Errors
    ///
    /// Checked before anything is trained (the model may have been built, nothing else
    /// changes): [`FitError::NotCompiled`], [`FitError::InvalidBatchSize`],
    /// [`FitError::InvalidValidationSplit`], [`FitError::EmptyDataset`],
    /// [`FitError::LengthMismatch`], [`FitError::InputShape`], [`FitError::TargetShape`],
    /// [`FitError::InvalidLabel`], [`FitError::MetricShape`]. During training:
    /// [`FitError::LossNotScalar`], [`FitError::Optimizer`], [`FitError::Callback`].
    pub fn fit<SX, SY, DX, DY>(
        &mut self,
        x: &ArrayBase<SX, DX>,
        y: &ArrayBase<SY, DY>,
        mut options: FitOptions<T>,
    ) -> Result<History, FitError>
    where
        SX: Data<Elem = T>,
        SY: Data<Elem = T>,
        DX: Dimension,
        DY: Dimension,
    {
        if self.compiled.is_none() {
            return Err(FitError::NotCompiled);
        }
        if options.batch_size == 0 {
            return Err(FitError::InvalidBatchSize);
        }
        let split = options.validation_split;
        if !(0.0..1.0).contains(&split) {
            return Err(FitError::InvalidValidationSplit { value: split });
        }
        let x = as_rows(x.view().into_dyn());
        let y = y.view().into_dyn();
        let (x_rows, y_rows) = (rows_of(&x), rows_of(&y));
        if y.ndim() == 0 || x_rows != y_rows {
            return Err(FitError::LengthMismatch {
                data: DataRole::Training,
                x_rows,
                y_rows: if y.ndim() == 0 { 0 } else { y_rows },
            });
        }
        if x_rows == 0 {
            return Err(FitError::EmptyDataset {
                data: DataRole::Training,
            });
        }
        // Keras' split: the last `split` fraction of the samples, before shuffling.
        let validation_data = options.validation_data.take();
        let split_at = if validation_data.is_none() && split > 0.0 {
            (x_rows as f64 * (1.0 - split)).floor() as usize
        } else {
            x_rows
        };
        let input_shape = x.shape()[1..].to_vec();
        let (x_train, x_val) = x.split_at(Axis(0), split_at);
        let (y_train, y_val) = y.split_at(Axis(0), split_at);

        if split_at == 0 {
            return Err(FitError::EmptyDataset {
                data: DataRole::Training,
            });
        }
        self.ensure_built(&input_shape, options.seed, DataRole::Training)?;
        let train = self.prepare(x_train, y_train, DataRole::Training)?;
        let validation = match &validation_data {
            Some((vx, vy)) => Some(self.prepare(vx.view(), vy.view(), DataRole::Validation)?),
            None if split_at < x_rows => Some(self.prepare(x_val, y_val, DataRole::Validation)?),
            None => None,
        };
        let mut train_metrics = self.resolve_metrics(&train.target_shape)?;
        let mut val_metrics = match &validation {
            Some(v) => self.resolve_metrics(&v.target_shape)?,
            None => Vec::new(),
        };

        let mut names = vec!["loss".to_string()];
        names.extend(train_metrics.iter().map(|m| m.name.to_string()));
        if validation.is_some() {
            names.push("val_loss".to_string());
            names.extend(val_metrics.iter().map(|m| format!("val_{}", m.name)));
        }
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut history = History::new(&name_refs);
        if options.epochs == 0 {
            return Ok(history);
        }

        let Model {
            module, compiled, ..
        } = self;
        let compiled = compiled.as_mut().ok_or(FitError::NotCompiled)?;
        let mut callbacks = std::mem::take(&mut options.callbacks);
        for cb in callbacks.iter_mut() {
            let mut state = TrainingState::new(module, &mut *compiled.optimizer);
            cb.on_train_begin(&names, &mut state)
                .map_err(|source| FitError::Callback {
                    callback: cb.name(),
                    epoch: None,
                    source: Box::new(source),
                })?;
        }

        module.set_training(true);
        let result = train_epochs(
            module,
            compiled,
            &mut callbacks,
            &train,
            validation.as_ref(),
            &mut train_metrics,
            &mut val_metrics,
            &names,
            &mut history,
            &options,
        );
        module.set_training(false);
        result?;

        for cb in callbacks.iter_mut() {
            let mut state = TrainingState::new(module, &mut *compiled.optimizer);
            cb.on_train_end(&mut state)
                .map_err(|source| FitError::Callback {
                    callback: cb.name(),
                    epoch: None,
                    source: Box::new(source),
                })?;
        }
        Ok(history)
    }

    /// The mean loss and the metrics of the model on `x` and `y`, in batches of
    /// `batch_size`, without recording gradients.
    ///
    /// # Errors
    ///
    /// [`FitError::NotCompiled`], [`FitError::NotBuilt`], [`FitError::InvalidBatchSize`],
    /// and the data errors of [`fit`](Model::fit).
    pub fn evaluate<SX, SY, DX, DY>(
        &self,
        x: &ArrayBase<SX, DX>,
        y: &ArrayBase<SY, DY>,
        batch_size: usize,
    ) -> Result<Evaluation, FitError>
    where
        SX: Data<Elem = T>,
        SY: Data<Elem = T>,
        DX: Dimension,
        DY: Dimension,
    {
        if self.compiled.is_none() {
            return Err(FitError::NotCompiled);
        }
        if batch_size == 0 {
            return Err(FitError::InvalidBatchSize);
        }
        let data = self.prepare(
            x.view().into_dyn(),
            y.view().into_dyn(),
            DataRole::Evaluation,
        )?;
        let mut metrics = self.resolve_metrics(&data.target_shape)?;
        let loss = &self.compiled.as_ref().ok_or(FitError::NotCompiled)?.loss;
        let value = evaluate_batches(&self.module, loss, &mut metrics, &data, batch_size)?;
        Ok(Evaluation {
            loss: value,
            metrics: metrics.iter().map(|m| (m.name, m.value())).collect(),
        })
    }

    /// The model's outputs for `x` (samples along axis 0), computed in batches of
    /// `batch_size` under [`Tape::no_grad`] on a fresh tape per batch (nothing is recorded
    /// for gradients; memory stays bounded by one batch).
    ///
    /// # Errors
    ///
    /// [`FitError::NotBuilt`], [`FitError::InvalidBatchSize`], [`FitError::EmptyDataset`],
    /// [`FitError::InputShape`], [`FitError::OutputRows`].
    pub fn predict<S, D>(
        &self,
        x: &ArrayBase<S, D>,
        batch_size: usize,
    ) -> Result<ArrayD<T>, FitError>
    where
        S: Data<Elem = T>,
        D: Dimension,
    {
        if batch_size == 0 {
            return Err(FitError::InvalidBatchSize);
        }
        let x = as_rows(x.view().into_dyn());
        if self.input_shape.is_none() {
            return Err(FitError::NotBuilt);
        }
        let n = rows_of(&x);
        if n == 0 {
            return Err(FitError::EmptyDataset {
                data: DataRole::Prediction,
            });
        }
        self.check_inputs(&x, DataRole::Prediction)?;
        let x = x.as_standard_layout();
        let mut result: Option<ArrayD<T>> = None;
        let mut start = 0;
        while start < n {
            let end = (start + batch_size).min(n);
            let batch = x.slice_axis(Axis(0), Slice::from(start..end)).to_owned();
            let tape = Tape::new();
            tape.no_grad(|| {
                let out = self.module.forward(tape.constant(batch));
                out.with_value(|out| {
                    let rows = rows_of(&out.view());
                    if out.ndim() == 0 || rows != end - start {
                        return Err(FitError::OutputRows {
                            expected: end - start,
                            found: rows,
                        });
                    }
                    let result = result.get_or_insert_with(|| {
                        let mut shape = out.shape().to_vec();
                        shape[0] = n;
                        ArrayD::zeros(shape)
                    });
                    if result.shape()[1..] != out.shape()[1..] {
                        return Err(FitError::OutputRows {
                            expected: end - start,
                            found: rows,
                        });
                    }
                    result
                        .slice_axis_mut(Axis(0), Slice::from(start..end))
                        .assign(out);
                    Ok(())
                })
            })?;
            start = end;
        }
        Ok(result.expect("n > 0, so at least one batch ran"))
    }
}

/// Mean loss over `data` (and metric sums into `metrics`, which are reset first), in
/// batches, without gradients.
fn evaluate_batches<T: Float, M: Module<T>>(
    module: &M,
    loss_fn: &Loss<T>,
    metrics: &mut [MetricAcc],
    data: &Prepared<'_, T>,
    batch_size: usize,
) -> Result<f64, FitError> {
    for m in metrics.iter_mut() {
        m.reset();
    }
    let n = data.x.len_of(Axis(0));
    let mut total = 0.0;
    let mut start = 0;
    while start < n {
        let end = (start + batch_size).min(n);
        let bx = data
            .x
            .slice_axis(Axis(0), Slice::from(start..end))
            .to_owned();
        let by = data
            .y
            .slice_axis(Axis(0), Slice::from(start..end))
            .to_owned();
        let tape = Tape::new();
        let value = tape.no_grad(|| {
            let out = module.forward(tape.constant(bx));
            let target = tape.constant(by);
            let loss = loss_fn.call(out, target);
            let value = scalar_loss(loss_fn, loss)?;
            if !metrics.is_empty() {
                out.with_value(|p| {
                    target.with_value(|t| metrics.iter_mut().for_each(|m| m.update(p, t)))
                });
            }
            Ok::<f64, FitError>(value)
        })?;
        total += value * (end - start) as f64;
        start = end;
    }
    Ok(total / n as f64)
}

/// The value of a loss that must be a single number.
fn scalar_loss<T: Float>(loss_fn: &Loss<T>, loss: Var<'_, T>) -> Result<f64, FitError> {
    // `shape` and `item` read a one-element value as a number (`with_value` would build
    // its array).
    let shape = loss.shape();
    if shape.iter().product::<usize>() == 1 {
        Ok(to_f64(loss.item()))
    } else {
        Err(FitError::LossNotScalar {
            loss: loss_fn.name().to_string(),
            shape,
        })
    }
}

/// The epoch loop of `fit`, after all checks and `on_train_begin`.
#[allow(clippy::too_many_arguments)]
fn train_epochs<T: Float, M: Module<T>>(
    module: &mut M,
    compiled: &mut Compiled<T>,
    callbacks: &mut [Box<dyn Callback<T>>],
    train: &Prepared<'_, T>,
    validation: Option<&Prepared<'_, T>>,
    train_metrics: &mut [MetricAcc],
    val_metrics: &mut [MetricAcc],
    names: &[String],
    history: &mut History,
    options: &FitOptions<T>,
) -> Result<(), FitError> {
    let n = train.x.len_of(Axis(0));
    let batch_size = options.batch_size;
    let batches = n.div_ceil(batch_size);
    // With a single batch per epoch the order of its rows cannot matter: skip shuffling
    // (and gather the batch with one copy).
    let shuffle = options.shuffle && batches > 1;
    let mut order: Vec<usize> = (0..n).collect();
    // A stream of its own, so that shuffling does not depend on how the model was built.
    let mut shuffle_rng = StdRng::seed_from_u64(options.seed ^ 0x5348_5546_464C_4521);
    let mut values = vec![f64::NAN; names.len()];
    let mut report = Reporter::new(options.verbose, options.epochs, batches);
    let callback_error = |cb: &dyn Callback<T>, epoch, source| FitError::Callback {
        callback: cb.name(),
        epoch: Some(epoch),
        source: Box::new(source),
    };

    for epoch in 0..options.epochs {
        for cb in callbacks.iter_mut() {
            let mut state = TrainingState::new(module, &mut *compiled.optimizer);
            cb.on_epoch_begin(epoch, &mut state)
                .map_err(|e| callback_error(&**cb, epoch, e))?;
        }
        if shuffle {
            order.shuffle(&mut shuffle_rng);
        }
        for m in train_metrics.iter_mut() {
            m.reset();
        }
        report.epoch_begin(epoch);
        let mut loss_sum = 0.0;
        let mut seen = 0;
        let mut stop = None;
        for batch in 0..batches {
            let rows = &order[batch * batch_size..((batch + 1) * batch_size).min(n)];
            let bx = gather_rows(&train.x.view(), rows, !shuffle);
            let by = gather_rows(&train.y.view(), rows, !shuffle);
            let (loss_value, grads) = {
                let tape = Tape::new();
                let out = module.forward(tape.constant(bx));
                let target = tape.constant(by);
                let loss = compiled.loss.call(out, target);
                let value = scalar_loss(&compiled.loss, loss)?;
                if !train_metrics.is_empty() {
                    out.with_value(|p| {
                        target.with_value(|t| train_metrics.iter_mut().for_each(|m| m.update(p, t)))
                    });
                }
                (value, loss.backward())
            };
            loss_sum += loss_value * rows.len() as f64;
            seen += rows.len();
            if !callbacks.is_empty() {
                let logs = BatchLogs {
                    epoch,
                    batch,
                    size: rows.len(),
                    loss: loss_value,
                };
                if let Some(reason) =
                    callbacks
                        .iter_mut()
                        .find_map(|cb| match cb.on_batch_end(&logs) {
                            Control::Continue => None,
                            Control::Stop(reason) => Some(reason),
                        })
                {
                    stop = Some(reason);
                    break;
                }
            }
            let mut params = module.params_mut();
            compiled
                .optimizer
                .step(&mut params, &grads)
                .map_err(|source| FitError::Optimizer {
                    epoch,
                    batch,
                    source,
                })?;
            report.batch_end(batch, loss_sum / seen as f64);
        }

        values[0] = loss_sum / seen as f64;
        for (v, m) in values[1..].iter_mut().zip(train_metrics.iter()) {
            *v = m.value();
        }
        let first_val = 1 + train_metrics.len();
        if let Some(val) = validation {
            if stop.is_none() {
                module.set_training(false);
                let result =
                    evaluate_batches(&*module, &compiled.loss, val_metrics, val, batch_size);
                module.set_training(true);
                values[first_val] = result?;
                for (v, m) in values[first_val + 1..].iter_mut().zip(val_metrics.iter()) {
                    *v = m.value();
                }
            } else {
                values[first_val..].fill(f64::NAN);
            }
        }
        history.push_epoch(&values);
        report.epoch_end(epoch, names, &values);
        if let Some(reason) = stop {
            history.set_stop_reason(reason);
            return Ok(());
        }
        if !callbacks.is_empty() {
            let logs = EpochLogs {
                epoch,
                names,
                values: &values,
            };
            let mut stop = None;
            for cb in callbacks.iter_mut() {
                let mut state = TrainingState::new(module, &mut *compiled.optimizer);
                let control = cb
                    .on_epoch_end(&logs, &mut state)
                    .map_err(|e| callback_error(&**cb, epoch, e))?;
                if let (Control::Stop(reason), None) = (control, &stop) {
                    stop = Some(reason);
                }
            }
            if let Some(reason) = stop {
                history.set_stop_reason(reason);
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Progress output of `fit`: nothing at verbosity 0 (or 1 off a terminal), a progress bar
/// per epoch at 1, a line per epoch at 2.
struct Reporter {
    verbose: u8,
    epochs: usize,
    batches: usize,
    bar: Option<ProgressBar>,
    started: Option<Instant>,
}

impl Reporter {
    fn new(verbose: u8, epochs: usize, batches: usize) -> Self {
        let verbose = match verbose {
            0 => 0,
            1 if std::io::stderr().is_terminal() => 1,
            1 => 0,
            _ => 2,
        };
        Reporter {
            verbose,
            epochs,
            batches,
            bar: None,
            started: None,
        }
    }

    #[inline]
    fn epoch_begin(&mut self, epoch: usize) {
        if self.verbose == 0 {
            return;
        }
        self.started = Some(Instant::now());
        if self.verbose == 1 {
            let bar = ProgressBar::with_draw_target(
                Some(self.batches as u64),
                ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix} {pos}/{len} [{bar:30}] {elapsed} (ETA {eta}) {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(format!("Epoch {}/{}", epoch + 1, self.epochs));
            self.bar = Some(bar);
        }
    }

    #[inline]
    fn batch_end(&mut self, batch: usize, running_loss: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(batch as u64 + 1);
            bar.set_message(format!("loss: {running_loss:.4}"));
        }
    }

    #[inline]
    fn epoch_end(&mut self, epoch: usize, names: &[String], values: &[f64]) {
        if self.verbose == 0 {
            return;
        }
        let mut line = String::new();
        for (i, (name, value)) in names.iter().zip(values).enumerate() {
            if i > 0 {
                line.push_str(" - ");
            }
            line.push_str(&format!("{name}: {value:.4}"));
        }
        if let Some(bar) = self.bar.take() {
            // Leave the finished bar on its own line, under which the next epoch's goes.
            bar.finish_with_message(line);
            eprintln!();
        } else {
            let elapsed = self.started.map(|s| s.elapsed()).unwrap_or_default();
            eprintln!(
                "Epoch {}/{} - {:.3}s - {line}",
                epoch + 1,
                self.epochs,
                elapsed.as_secs_f64()
            );
        }
    }
}
