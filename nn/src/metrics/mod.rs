//! Metrics on plain arrays (nothing is recorded on a tape): accuracy — binary, categorical,
//! sparse — and mean absolute / squared error.
//!
//! The functions return the mean over the batch as an `f64`. To average over many
//! batches, use [`Metric::total`], which returns the sum and the count so batches of
//! different sizes are weighted correctly:
//!
//! ```
//! use ndarray::array;
//! use tapegrad_nn::metrics::{Metric, MetricTotal};
//!
//! let mut total = MetricTotal::default();
//! let batches = [
//!     (array![[0.1, 0.9], [0.8, 0.2]], array![1.0, 1.0]), // 1 of 2 right
//!     (array![[0.3, 0.7]], array![1.0]),                  // 1 of 1 right
//! ];
//! for (pred, labels) in &batches {
//!     total += Metric::SparseCategoricalAccuracy.total(pred, labels);
//! }
//! assert_eq!(total.mean(), 2.0 / 3.0);
//! ```

use ndarray::{ArrayBase, ArrayViewD, Axis, Data, Dimension, Zip};
use tapegrad_autograd::Float;

/// The arrays the metrics read: any ndarray array of `T` (owned or a view, of any
/// dimension), so that each side of a metric takes one bound instead of a storage and a
/// dimension parameter.
pub trait MetricArray<T> {
    /// The array as a view of dynamic dimension.
    fn values(&self) -> ArrayViewD<'_, T>;
}

impl<T, S: Data<Elem = T>, D: Dimension> MetricArray<T> for ArrayBase<S, D> {
    fn values(&self) -> ArrayViewD<'_, T> {
        self.view().into_dyn()
    }
}

/// A metric by name, for `Model::compile` and histories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Metric {
    /// Keras' `"accuracy"`: chooses binary, categorical or sparse accuracy from the shapes
    /// (see [`accuracy`]).
    Accuracy,
    /// [`binary_accuracy`] with threshold 0.5.
    BinaryAccuracy,
    /// [`categorical_accuracy`].
    CategoricalAccuracy,
    /// [`sparse_categorical_accuracy`].
    SparseCategoricalAccuracy,
    /// [`mean_absolute_error`].
    MeanAbsoluteError,
    /// [`mean_squared_error`].
    MeanSquaredError,
}

/// A metric summed over examples (or elements), with their count: add batches with `+=`,
/// then take the [`mean`](MetricTotal::mean).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MetricTotal {
    /// The sum of the per-example (or per-element) values.
    pub sum: f64,
    /// How many values were summed.
    pub count: usize,
}

impl MetricTotal {
    /// The mean (`NaN` when nothing was counted).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.sum / self.count as f64
        }
    }
}

impl std::ops::AddAssign for MetricTotal {
    fn add_assign(&mut self, other: MetricTotal) {
        self.sum += other.sum;
        self.count += other.count;
    }
}

impl Metric {
    /// Its Keras name: `"accuracy"`, `"binary_accuracy"`, `"categorical_accuracy"`,
    /// `"sparse_categorical_accuracy"`, `"mae"`, `"mse"`.
    pub fn name(&self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::BinaryAccuracy => "binary_accuracy",
            Metric::CategoricalAccuracy => "categorical_accuracy",
            Metric::SparseCategoricalAccuracy => "sparse_categorical_accuracy",
            Metric::MeanAbsoluteError => "mae",
            Metric::MeanSquaredError => "mse",
        }
    }

    /// Whether a larger value is better (accuracies) or a smaller one (errors).
    pub fn higher_is_better(&self) -> bool {
        !matches!(self, Metric::MeanAbsoluteError | Metric::MeanSquaredError)
    }

    /// The metric's sum and count over a batch of predictions and targets.
    #[track_caller]
    pub fn total<T: Float>(
        &self,
        predictions: &impl MetricArray<T>,
        targets: &impl MetricArray<T>,
    ) -> MetricTotal {
        let (predictions, targets) = (&predictions.values(), &targets.values());
        match self {
            Metric::Accuracy => match accuracy_kind(predictions.shape(), targets.shape()) {
                AccuracyKind::Binary => binary_total(predictions, targets, 0.5),
                AccuracyKind::Categorical => categorical_total(predictions, targets),
                AccuracyKind::Sparse => sparse_total(predictions, targets),
            },
            Metric::BinaryAccuracy => binary_total(predictions, targets, 0.5),
            Metric::CategoricalAccuracy => categorical_total(predictions, targets),
            Metric::SparseCategoricalAccuracy => sparse_total(predictions, targets),
            Metric::MeanAbsoluteError => error_total("mae", predictions, targets, |d| d.abs()),
            Metric::MeanSquaredError => error_total("mse", predictions, targets, |d| d * d),
        }
    }

    /// The metric's mean over a batch.
    #[track_caller]
    pub fn compute<T: Float>(
        &self,
        predictions: &impl MetricArray<T>,
        targets: &impl MetricArray<T>,
    ) -> f64 {
        self.total(predictions, targets).mean()
    }
}

enum AccuracyKind {
    Binary,
    Categorical,
    Sparse,
}

/// Keras' choice for `"accuracy"`, from the shapes: one output per example (a vector, or
/// a last axis of length 1) is binary; several outputs with targets of the same shape are
/// categorical (one-hot); several outputs with one target per example are sparse (class
/// indices).
fn accuracy_kind(predictions: &[usize], targets: &[usize]) -> AccuracyKind {
    if predictions.len() <= 1 || predictions.last() == Some(&1) {
        AccuracyKind::Binary
    } else if predictions == targets {
        AccuracyKind::Categorical
    } else {
        AccuracyKind::Sparse
    }
}

/// Accuracy with the kind chosen from the shapes, as Keras' `"accuracy"`: predictions with
/// one column (or none) are compared to targets at threshold 0.5 ([`binary_accuracy`]);
/// predictions with several columns are compared by argmax to one-hot targets of the same
/// shape ([`categorical_accuracy`]) or to class indices ([`sparse_categorical_accuracy`]).
///
/// ```
/// use ndarray::array;
/// use tapegrad_nn::metrics::accuracy;
///
/// let logits = array![[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]];
/// assert_eq!(accuracy(&logits, &array![0.0, 1.0]), 0.5); // sparse labels
/// assert_eq!(accuracy(&logits, &array![[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), 1.0); // one-hot
/// assert_eq!(accuracy(&array![[0.7], [0.2]], &array![[1.0], [1.0]]), 0.5); // binary
/// ```
#[track_caller]
pub fn accuracy<T: Float>(predictions: &impl MetricArray<T>, targets: &impl MetricArray<T>) -> f64 {
    Metric::Accuracy.compute(predictions, targets)
}

/// The fraction of predictions on the right side of `threshold`: a prediction counts as 1
/// when it is greater than `threshold` (Keras: `pred > threshold`), and is right when that
/// equals the target (0 or 1). Use threshold 0.5 for probabilities, 0 for logits.
///
/// Shapes must match (a trailing axis of length 1 on either side is ignored).
///
/// ```
/// use ndarray::array;
/// use tapegrad_nn::metrics::binary_accuracy;
///
/// let probabilities = array![0.9, 0.4, 0.6, 0.1];
/// let targets = array![1.0, 1.0, 0.0, 0.0];
/// assert_eq!(binary_accuracy(&probabilities, &targets, 0.5), 0.5);
/// ```
#[track_caller]
pub fn binary_accuracy<T: Float>(
    predictions: &impl MetricArray<T>,
    targets: &impl MetricArray<T>,
    threshold: f64,
) -> f64 {
    binary_total(&predictions.values(), &targets.values(), threshold).mean()
}

/// The fraction of examples whose predicted class (argmax over the last axis) is the
/// target's (argmax of the one-hot or soft target, same shape).
///
/// ```
/// use ndarray::array;
/// use tapegrad_nn::metrics::categorical_accuracy;
///
/// let predictions = array![[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]];
/// let one_hot = array![[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
/// assert_eq!(categorical_accuracy(&predictions, &one_hot), 0.5);
/// ```
#[track_caller]
pub fn categorical_accuracy<T: Float>(
    predictions: &impl MetricArray<T>,
    targets: &impl MetricArray<T>,
) -> f64 {
    categorical_total(&predictions.values(), &targets.values()).mean()
}

/// The fraction of examples whose predicted class (argmax over the last axis) equals the
/// label, given as a float class index (`(batch,)` or `(batch, 1)` for `(batch, classes)`
/// predictions).
///
/// ```
/// use ndarray::array;
/// use tapegrad_nn::metrics::sparse_categorical_accuracy;
///
/// let logits = array![[0.1, 2.0, -1.0], [3.0, 0.0, 0.5], [0.0, 0.0, 1.0]];
/// assert_eq!(sparse_categorical_accuracy(&logits, &array![1.0, 0.0, 0.0]), 2.0 / 3.0);
/// ```
#[track_caller]
pub fn sparse_categorical_accuracy<T: Float>(
    predictions: &impl MetricArray<T>,
    labels: &impl MetricArray<T>,
) -> f64 {
    sparse_total(&predictions.values(), &labels.values()).mean()
}

/// [`sparse_categorical_accuracy`] with the labels as class indices.
///
/// ```
/// use ndarray::array;
/// use tapegrad_nn::metrics::sparse_categorical_accuracy_indices;
///
/// let logits = array![[0.1, 2.0, -1.0], [3.0, 0.0, 0.5]];
/// assert_eq!(sparse_categorical_accuracy_indices(&logits, &[1, 2]), 0.5);
/// ```
#[track_caller]
pub fn sparse_categorical_accuracy_indices<T: Float>(
    predictions: &impl MetricArray<T>,
    labels: &[usize],
) -> f64 {
    let predicted = classes_of("sparse_categorical_accuracy", predictions);
    assert_eq!(
        predicted.len(),
        labels.len(),
        "sparse_categorical_accuracy: {} examples but {} labels",
        predicted.len(),
        labels.len()
    );
    let right = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
    MetricTotal {
        sum: right as f64,
        count: labels.len(),
    }
    .mean()
}

/// Mean absolute error `mean(|prediction - target|)` (shapes must match, up to a trailing
/// axis of length 1).
///
/// ```
/// use ndarray::array;
/// use tapegrad_nn::metrics::mean_absolute_error;
///
/// assert_eq!(mean_absolute_error(&array![1.0, 2.0, 4.0], &array![1.5, 3.0, 2.0]), 3.5 / 3.0);
/// ```
#[track_caller]
pub fn mean_absolute_error<T: Float>(
    predictions: &impl MetricArray<T>,
    targets: &impl MetricArray<T>,
) -> f64 {
    Metric::MeanAbsoluteError.compute(predictions, targets)
}

/// Mean squared error `mean((prediction - target)²)` (shapes must match, up to a trailing
/// axis of length 1).
#[track_caller]
pub fn mean_squared_error<T: Float>(
    predictions: &impl MetricArray<T>,
    targets: &impl MetricArray<T>,
) -> f64 {
    Metric::MeanSquaredError.compute(predictions, targets)
}

/// Shapes equal, or equal but for one trailing axis of length 1 on either side (what the
/// elementwise losses and metrics accept).
pub(crate) fn same_elements(a: &[usize], b: &[usize]) -> bool {
    let trailing_one = |long: &[usize], short: &[usize]| {
        long.len() == short.len() + 1 && long.last() == Some(&1) && long[..short.len()] == *short
    };
    a == b || trailing_one(a, b) || trailing_one(b, a)
}

#[track_caller]
fn check_same_elements(metric: &str, predictions: &[usize], targets: &[usize]) {
    assert!(
        same_elements(predictions, targets),
        "{metric}: the predictions have shape {predictions:?} but the targets have shape {targets:?}"
    );
}

#[track_caller]
fn binary_total<T: Float>(
    predictions: &ArrayViewD<'_, T>,
    targets: &ArrayViewD<'_, T>,
    threshold: f64,
) -> MetricTotal {
    check_same_elements("binary_accuracy", predictions.shape(), targets.shape());
    let right = predictions
        .iter()
        .zip(targets.iter())
        .filter(|(p, t)| {
            let predicted = Float::to_f64(**p) > threshold;
            let actual = Float::to_f64(**t) > 0.5;
            predicted == actual
        })
        .count();
    MetricTotal {
        sum: right as f64,
        count: predictions.len(),
    }
}

#[track_caller]
fn categorical_total<T: Float>(
    predictions: &ArrayViewD<'_, T>,
    targets: &ArrayViewD<'_, T>,
) -> MetricTotal {
    assert!(
        predictions.shape() == targets.shape(),
        "categorical_accuracy: the predictions have shape {:?} but the targets have shape {:?}",
        predictions.shape(),
        targets.shape()
    );
    let predicted = classes_of("categorical_accuracy", predictions);
    let actual = classes_of("categorical_accuracy", targets);
    let right = predicted
        .iter()
        .zip(&actual)
        .filter(|(p, a)| p == a)
        .count();
    MetricTotal {
        sum: right as f64,
        count: predicted.len(),
    }
}

#[track_caller]
fn sparse_total<T: Float>(
    predictions: &ArrayViewD<'_, T>,
    labels: &ArrayViewD<'_, T>,
) -> MetricTotal {
    let shape = predictions.shape();
    let outer = &shape[..shape.len().saturating_sub(1)];
    let fits = labels.shape() == outer
        || (labels.ndim() == outer.len() + 1
            && labels.shape()[..outer.len()] == *outer
            && labels.shape().last() == Some(&1));
    assert!(
        fits,
        "sparse_categorical_accuracy: predictions of shape {shape:?} need labels of shape {outer:?}, got {:?}",
        labels.shape()
    );
    let predicted = classes_of("sparse_categorical_accuracy", predictions);
    let right = predicted
        .iter()
        .zip(labels.iter())
        .filter(|(p, l)| **p as f64 == Float::to_f64(**l))
        .count();
    MetricTotal {
        sum: right as f64,
        count: predicted.len(),
    }
}

fn error_total<T: Float>(
    metric: &str,
    predictions: &ArrayViewD<'_, T>,
    targets: &ArrayViewD<'_, T>,
    f: impl Fn(f64) -> f64,
) -> MetricTotal {
    check_same_elements(metric, predictions.shape(), targets.shape());
    let sum = predictions
        .iter()
        .zip(targets.iter())
        .map(|(p, t)| f(Float::to_f64(*p) - Float::to_f64(*t)))
        .sum();
    MetricTotal {
        sum,
        count: predictions.len(),
    }
}

/// The index of the largest value along the last axis of `scores` (logits or
/// probabilities), for each lane in row-major order of the other axes: one class per row of
/// a `(n, classes)` array. Ties go to the first; NaN never wins.
///
/// ```
/// use ndarray::array;
/// use tapegrad_nn::metrics::argmax_rows;
///
/// let scores = array![[1.0_f32, 1.0, 0.0], [f32::NAN, 0.5, 2.0]];
/// assert_eq!(argmax_rows(&scores), vec![0, 2]);
/// ```
///
/// # Panics
///
/// If `scores` is a scalar or its last axis is empty.
#[track_caller]
pub fn argmax_rows<T: Float>(scores: &impl MetricArray<T>) -> Vec<usize> {
    let scores = scores.values();
    check_class_axis("argmax_rows", scores.shape());
    let last = Axis(scores.ndim() - 1);
    let mut out = Vec::with_capacity(scores.len() / scores.len_of(last));
    Zip::from(scores.lanes(last)).for_each(|lane| {
        let mut best = 0;
        let mut best_value = T::neg_infinity();
        for (i, &v) in lane.iter().enumerate() {
            if v > best_value {
                best = i;
                best_value = v;
            }
        }
        out.push(best);
    });
    out
}

/// [`argmax_rows`] of a metric's predictions or targets, checked in the metric's name.
#[track_caller]
fn classes_of<T: Float>(metric: &str, a: &impl MetricArray<T>) -> Vec<usize> {
    check_class_axis(metric, a.values().shape());
    argmax_rows(a)
}

#[track_caller]
fn check_class_axis(name: &str, shape: &[usize]) {
    assert!(
        shape.last().is_some_and(|&classes| classes > 0),
        "{name}: needs predictions with a non-empty class axis, got shape {shape:?}"
    );
}

#[cfg(test)]
mod tests;
