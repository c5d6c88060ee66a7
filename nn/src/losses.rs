//! Loss functions: plain functions of [`Var`]s, composed from autograd ops (no hand-written
//! backward), so their gradients — of any order — come from the tape.
//!
//! Each loss `f(prediction, target)` averages over all elements (or examples, for the
//! cross-entropies); `f_reduced(prediction, target, reduction)` takes a [`Reduction`]. Semantics
//! are PyTorch's, and the values and gradients are checked against PyTorch's in `f64`.
//!
//! | function | PyTorch | Keras |
//! |---|---|---|
//! | [`mse`] | `mse_loss` | `MeanSquaredError` |
//! | [`mae`] | `l1_loss` | `MeanAbsoluteError` |
//! | [`huber`] | `huber_loss(delta)` | `Huber(delta)` |
//! | [`smooth_l1`] | `smooth_l1_loss(beta)` | — |
//! | [`binary_cross_entropy`] | `binary_cross_entropy` | `BinaryCrossentropy()` |
//! | [`binary_cross_entropy_with_logits`] | `binary_cross_entropy_with_logits` | `BinaryCrossentropy(from_logits=True)` |
//! | [`categorical_cross_entropy`] | `cross_entropy` (probability targets) | `CategoricalCrossentropy(from_logits=True)` |
//! | [`sparse_categorical_cross_entropy`] | `cross_entropy` (class indices) | `SparseCategoricalCrossentropy(from_logits=True)` |
//! | [`cross_entropy`] | `cross_entropy(ignore_index=, label_smoothing=)` on `[..., C]` logits | — |
//!
//! Regression losses and binary cross-entropies require the prediction and the target to
//! have the same shape; a target with one axis fewer or one trailing axis of length 1 more
//! (labels `(batch,)` against predictions `(batch, 1)`) is reshaped to the prediction's
//! shape, as Keras does. Any other mismatch panics rather than broadcasting silently.
//!
//! A user-defined loss is any `Fn(Var, Var) -> Var`, for example a weighted sum:
//!
//! ```
//! use ndarray::array;
//! use tapegrad_autograd::{Tape, Var};
//! use tapegrad_nn::losses::{huber, mae, mae_reduced, mse, Reduction};
//!
//! fn mixed<'t>(pred: Var<'t, f64>, target: Var<'t, f64>) -> Var<'t, f64> {
//!     mse(pred, target) * 0.5 + huber(pred, target, 1.0) * 0.5
//! }
//!
//! let tape = Tape::<f64>::new();
//! let pred = tape.var(array![[0.5, 2.0], [-1.0, 4.0]].into_dyn());
//! let target = tape.constant(array![[0.0, 2.0], [1.0, 1.0]].into_dyn());
//! // errors 0.5, 0, -2, 3: squared 0.25, 0, 4, 9; absolute 0.5, 0, 2, 3
//! assert_eq!(mse(pred, target).item(), 13.25 / 4.0);
//! assert_eq!(mae(pred, target).item(), 5.5 / 4.0);
//! assert_eq!(mae_reduced(pred, target, Reduction::Sum).item(), 5.5);
//! let grads = mixed(pred, target).backward();
//! assert_eq!(grads[pred].shape(), &[2, 2]);
//! ```

use ndarray::ArrayD;
use tapegrad_autograd::{Float, Shape, Var, memory};

use crate::metrics::same_elements;

mod cross_entropy;

pub use cross_entropy::{CrossEntropy, cross_entropy};

/// How the per-element (or per-example) losses are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Reduction {
    /// Their mean (the default, as in PyTorch and Keras).
    #[default]
    Mean,
    /// Their sum.
    Sum,
    /// No reduction: the loss of each element (regression and binary losses) or of each
    /// example (categorical losses: the class axis is summed).
    None,
}

/// The floor of the logarithms in [`binary_cross_entropy`], as in PyTorch.
const LOG_FLOOR: f64 = -100.0;

/// Checks (and if needed reshapes) `target` against `prediction` for an elementwise loss.
#[track_caller]
fn aligned<'t, T: Float>(loss: &str, prediction: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T> {
    if prediction.value().shape() == target.value().shape() {
        return target;
    }
    let (p, t) = (prediction.shape(), target.shape());
    if same_elements(&p, &t) {
        return target.reshape(&p);
    }
    panic!(
        "{loss}: the prediction has shape {p:?} but the target has shape {t:?} \
         (they must match; a target of {p:?} without its last axis of length 1 is accepted too)"
    );
}

/// Reduces elementwise losses (each multiplied by `scale`, a sign or a weight folded into
/// the reduction so it costs no extra op).
#[track_caller]
fn reduce<'t, T: Float>(losses: Var<'t, T>, reduction: Reduction, scale: f64) -> Var<'t, T> {
    match reduction {
        Reduction::Mean => {
            let n = losses.value().len().max(1);
            losses.sum().mul_scalar(T::from_f64(scale / n as f64))
        }
        Reduction::Sum if scale == 1.0 => losses.sum(),
        Reduction::Sum => losses.sum().mul_scalar(T::from_f64(scale)),
        Reduction::None if scale == 1.0 => losses,
        Reduction::None => losses.mul_scalar(T::from_f64(scale)),
    }
}

/// Mean squared error: `mean((prediction - target)²)`.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::losses::{mse, mse_reduced, Reduction};
///
/// let tape = Tape::<f64>::new();
/// let pred = tape.var(array![1.0, 2.0, 4.0].into_dyn());
/// let target = tape.constant(array![1.0, 3.0, 2.0].into_dyn());
/// assert!((mse(pred, target).item() - 5.0 / 3.0).abs() < 1e-15);
/// assert_eq!(mse_reduced(pred, target, Reduction::Sum).item(), 5.0);
/// assert_eq!(mse_reduced(pred, target, Reduction::None).to_array(), array![0.0, 1.0, 4.0].into_dyn());
/// // d/dpred mean((p - t)²) = 2 (p - t) / n
/// let grads = mse(pred, target).backward();
/// let want = array![0.0, -2.0 / 3.0, 4.0 / 3.0].into_dyn();
/// assert!(grads[pred].iter().zip(&want).all(|(g, w)| (g - w).abs() < 1e-15));
/// ```
#[track_caller]
pub fn mse<'t, T: Float>(prediction: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T> {
    mse_reduced(prediction, target, Reduction::Mean)
}

/// [`mse`] with a chosen [`Reduction`].
#[track_caller]
pub fn mse_reduced<'t, T: Float>(
    prediction: Var<'t, T>,
    target: Var<'t, T>,
    reduction: Reduction,
) -> Var<'t, T> {
    let target = aligned("mse", prediction, target);
    reduce((prediction - target).square(), reduction, 1.0)
}

/// Mean absolute error: `mean(|prediction - target|)` (gradient 0 where they are equal,
/// as in PyTorch).
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::losses::{mae, mae_reduced, Reduction};
///
/// let tape = Tape::<f64>::new();
/// let pred = tape.var(array![1.0, 2.0, 4.0].into_dyn());
/// let target = tape.constant(array![1.5, 3.0, 2.0].into_dyn());
/// assert!((mae(pred, target).item() - 3.5 / 3.0).abs() < 1e-15);
/// assert_eq!(mae_reduced(pred, target, Reduction::Sum).item(), 3.5);
/// // d/dpred mean|p - t| = sign(p - t) / n
/// let grads = mae(pred, target).backward();
/// let want = array![-1.0 / 3.0, -1.0 / 3.0, 1.0 / 3.0].into_dyn();
/// assert!(grads[pred].iter().zip(&want).all(|(g, w)| (g - w).abs() < 1e-15));
/// ```
#[track_caller]
pub fn mae<'t, T: Float>(prediction: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T> {
    mae_reduced(prediction, target, Reduction::Mean)
}

/// [`mae`] with a chosen [`Reduction`].
#[track_caller]
pub fn mae_reduced<'t, T: Float>(
    prediction: Var<'t, T>,
    target: Var<'t, T>,
    reduction: Reduction,
) -> Var<'t, T> {
    let target = aligned("mae", prediction, target);
    reduce((prediction - target).abs(), reduction, 1.0)
}

/// Huber loss: with `a = |prediction - target|`, `a²/2` where `a < delta`, else
/// `delta (a - delta/2)` (quadratic near zero, linear beyond; PyTorch's `huber_loss`, Keras'
/// `Huber`). The usual `delta` is 1.
///
/// Computed as `q (a - q/2)` with `q = min(a, delta)`, which is smooth at `a = delta`.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::losses::{huber, huber_reduced, Reduction};
///
/// let tape = Tape::<f64>::new();
/// let pred = tape.var(array![0.5, 3.0].into_dyn());
/// let target = tape.constant(array![0.0, 0.0].into_dyn());
/// // 0.5²/2 = 0.125 (quadratic), 1 · (3 - 0.5) = 2.5 (linear)
/// assert_eq!(huber_reduced(pred, target, 1.0, Reduction::None).to_array(), array![0.125, 2.5].into_dyn());
/// let grads = huber(pred, target, 1.0).backward();
/// assert_eq!(grads[pred], array![0.25, 0.5].into_dyn()); // (0.5, delta) / 2
/// ```
#[track_caller]
pub fn huber<'t, T: Float>(prediction: Var<'t, T>, target: Var<'t, T>, delta: f64) -> Var<'t, T> {
    huber_reduced(prediction, target, delta, Reduction::Mean)
}

/// [`huber`] with a chosen [`Reduction`].
#[track_caller]
pub fn huber_reduced<'t, T: Float>(
    prediction: Var<'t, T>,
    target: Var<'t, T>,
    delta: f64,
    reduction: Reduction,
) -> Var<'t, T> {
    assert!(delta > 0.0, "huber: delta must be positive, got {delta}");
    let target = aligned("huber", prediction, target);
    let error = (prediction - target).abs();
    let q = error.clamp(T::zero(), T::from_f64(delta));
    reduce(q * (error - q.mul_scalar(T::from_f64(0.5))), reduction, 1.0)
}

/// Smooth L1 loss (PyTorch's `smooth_l1_loss`): with `a = |prediction - target|`,
/// `a²/(2 beta)` where `a < beta`, else `a - beta/2`. It is [`huber`] with `delta = beta`
/// divided by `beta`, so the two agree only at `beta = 1`; `beta = 0` is [`mae`].
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::losses::{huber, smooth_l1, smooth_l1_reduced, Reduction};
///
/// let tape = Tape::<f64>::new();
/// let pred = tape.var(array![0.5, 3.0].into_dyn());
/// let target = tape.constant(array![0.0, 0.0].into_dyn());
/// // 0.5²/(2·2) = 0.0625 (quadratic), 3 − 2/2 = 2 (linear)
/// assert_eq!(smooth_l1_reduced(pred, target, 2.0, Reduction::None).to_array(), array![0.0625, 2.0].into_dyn());
/// assert_eq!(smooth_l1(pred, target, 1.0).item(), huber(pred, target, 1.0).item());
/// ```
#[track_caller]
pub fn smooth_l1<'t, T: Float>(
    prediction: Var<'t, T>,
    target: Var<'t, T>,
    beta: f64,
) -> Var<'t, T> {
    smooth_l1_reduced(prediction, target, beta, Reduction::Mean)
}

/// [`smooth_l1`] with a chosen [`Reduction`].
#[track_caller]
pub fn smooth_l1_reduced<'t, T: Float>(
    prediction: Var<'t, T>,
    target: Var<'t, T>,
    beta: f64,
    reduction: Reduction,
) -> Var<'t, T> {
    assert!(
        beta >= 0.0,
        "smooth_l1: beta must not be negative, got {beta}"
    );
    let target = aligned("smooth_l1", prediction, target);
    if beta == 0.0 {
        return reduce((prediction - target).abs(), reduction, 1.0);
    }
    let error = (prediction - target).abs();
    let q = error.clamp(T::zero(), T::from_f64(beta));
    let huber = q * (error - q.mul_scalar(T::from_f64(0.5)));
    reduce(huber.mul_scalar(T::from_f64(1.0 / beta)), reduction, 1.0)
}

/// Binary cross-entropy on probabilities: `-(y ln p + (1 - y) ln(1 - p))`, with the
/// logarithms floored at -100 as in PyTorch (targets may be soft, in `[0, 1]`).
///
/// The floor is applied by clamping `p` and `1 - p` to `[e⁻¹⁰⁰, 1]` before the logarithm,
/// so the loss and its gradient stay finite when a probability is exactly 0 or 1. (In
/// `f32` the lower clamp is the smallest normal `f32`, `1.2e-38`, whose logarithm is -87.3:
/// below it, `1/p` would overflow.) PyTorch additionally caps the gradient's denominator
/// `p (1 - p)` at `1e-12`; for probabilities that close to 0 or 1 prefer
/// [`binary_cross_entropy_with_logits`], which is exact and stable.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::losses::binary_cross_entropy;
///
/// let tape = Tape::<f64>::new();
/// let p = tape.var(array![0.9, 0.2, 0.0].into_dyn());
/// let y = tape.constant(array![1.0, 0.0, 1.0].into_dyn());
/// let loss = binary_cross_entropy(p, y);
/// let want = (-(0.9_f64.ln()) - 0.8_f64.ln() + 100.0) / 3.0;
/// assert!((loss.item() - want).abs() < 1e-12);
/// assert!(loss.backward()[p].iter().all(|g| g.is_finite()));
/// ```
#[track_caller]
pub fn binary_cross_entropy<'t, T: Float>(
    probabilities: Var<'t, T>,
    target: Var<'t, T>,
) -> Var<'t, T> {
    binary_cross_entropy_reduced(probabilities, target, Reduction::Mean)
}

/// [`binary_cross_entropy`] with a chosen [`Reduction`].
#[track_caller]
pub fn binary_cross_entropy_reduced<'t, T: Float>(
    probabilities: Var<'t, T>,
    target: Var<'t, T>,
    reduction: Reduction,
) -> Var<'t, T> {
    let target = aligned("binary_cross_entropy", probabilities, target);
    let floor = T::from_f64(LOG_FLOOR.exp()).max(T::min_positive_value());
    let one = T::one();
    let log_p = probabilities.clamp(floor, one).ln();
    let log_not_p = (-probabilities).add_scalar(one).clamp(floor, one).ln();
    let not_y = (-target).add_scalar(one);
    reduce(target * log_p + not_y * log_not_p, reduction, -1.0)
}

/// Binary cross-entropy on logits (the sigmoid is folded in), computed stably as
/// `max(x, 0) - x y + ln(1 + e^(-|x|))`, finite for any logit.
///
/// `max(x, 0)` is written `(x + |x|) / 2`, so the gradient at `x = 0` is exactly
/// `σ(0) - y = 1/2 - y` (a `relu` would give `-y` there).
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::losses::{binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_reduced, Reduction};
///
/// let tape = Tape::<f64>::new();
/// let x = tape.var(array![0.0, 1000.0, -1000.0].into_dyn());
/// let y = tape.constant(array![1.0, 0.0, 0.0].into_dyn());
/// let each = binary_cross_entropy_with_logits_reduced(x, y, Reduction::None).to_array();
/// assert_eq!(each, array![2.0_f64.ln(), 1000.0, 0.0].into_dyn());
/// // d/dx = (σ(x) - y) / n
/// let grads = binary_cross_entropy_with_logits(x, y).backward();
/// assert_eq!(grads[x], array![-0.5 / 3.0, 1.0 / 3.0, 0.0].into_dyn());
/// ```
#[track_caller]
pub fn binary_cross_entropy_with_logits<'t, T: Float>(
    logits: Var<'t, T>,
    target: Var<'t, T>,
) -> Var<'t, T> {
    binary_cross_entropy_with_logits_reduced(logits, target, Reduction::Mean)
}

/// [`binary_cross_entropy_with_logits`] with a chosen [`Reduction`].
#[track_caller]
pub fn binary_cross_entropy_with_logits_reduced<'t, T: Float>(
    logits: Var<'t, T>,
    target: Var<'t, T>,
    reduction: Reduction,
) -> Var<'t, T> {
    let target = aligned("binary_cross_entropy_with_logits", logits, target);
    let magnitude = logits.abs();
    let positive_part = (logits + magnitude).mul_scalar(T::from_f64(0.5));
    let losses = positive_part - logits * target + (-magnitude).softplus();
    reduce(losses, reduction, 1.0)
}

/// Categorical cross-entropy from logits, with targets that are probabilities (one-hot or
/// soft) over the last axis: `-Σ_c y_c log_softmax(x)_c` per example, averaged over the
/// examples (PyTorch's `cross_entropy` with probability targets). Stable for any logits.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::losses::categorical_cross_entropy;
///
/// let tape = Tape::<f64>::new();
/// let logits = tape.var(array![[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]].into_dyn());
/// let target = tape.constant(array![[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]].into_dyn());
/// let loss = categorical_cross_entropy(logits, target);
/// let first = -(2.0_f64.exp() / (2.0_f64.exp() + 2.0)).ln();
/// assert!((loss.item() - (first + 3.0_f64.ln()) / 2.0).abs() < 1e-12);
/// // d/dx = (softmax(x) - y) / batch: each row of the gradient sums to 0
/// let grads = loss.backward();
/// assert!(grads[logits].sum().abs() < 1e-12);
/// ```
#[track_caller]
pub fn categorical_cross_entropy<'t, T: Float>(
    logits: Var<'t, T>,
    target: Var<'t, T>,
) -> Var<'t, T> {
    categorical_cross_entropy_reduced(logits, target, Reduction::Mean)
}

/// [`categorical_cross_entropy`] with a chosen [`Reduction`] over the examples
/// (`Reduction::None` gives one loss per example).
#[track_caller]
pub fn categorical_cross_entropy_reduced<'t, T: Float>(
    logits: Var<'t, T>,
    target: Var<'t, T>,
    reduction: Reduction,
) -> Var<'t, T> {
    let shape = logits.shape();
    assert!(
        !shape.is_empty() && shape == target.shape(),
        "categorical_cross_entropy: the logits have shape {shape:?} and the target {:?}; they \
         must match, with the classes on the last axis (for class indices use \
         sparse_categorical_cross_entropy)",
        target.shape()
    );
    let weighted = target * logits.log_softmax(-1);
    let classes = shape[shape.len() - 1];
    let examples = (shape.iter().product::<usize>() / classes.max(1)).max(1);
    let minus_one = T::from_f64(-1.0);
    match reduction {
        Reduction::Mean => weighted
            .sum()
            .mul_scalar(T::from_f64(-1.0 / examples as f64)),
        Reduction::Sum => weighted.sum().mul_scalar(minus_one),
        Reduction::None => weighted.sum_axes([-1], false).mul_scalar(minus_one),
    }
}

/// Sparse categorical cross-entropy from logits: `-log_softmax(x)[label]` per example,
/// averaged, with the labels — class indices — given as a variable of floats (`0.0`,
/// `1.0`, ...; read as constants). The classes are on the last axis of `logits`; `labels`
/// has the other axes (`(batch,)` for `(batch, classes)` logits), or those plus a trailing
/// axis of length 1 (Keras' `(batch, 1)`).
///
/// Stable for any logits (±1000 give finite values and gradients), through `log_softmax`.
/// Panics if a label is not an integer in `0..classes`.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::losses::{sparse_categorical_cross_entropy, sparse_categorical_cross_entropy_indices};
///
/// let tape = Tape::<f32>::new();
/// let logits = tape.var(array![[1000.0, -1000.0, 0.0], [0.0, 0.0, 0.0]].into_dyn());
/// let labels = tape.constant(array![1.0, 2.0].into_dyn());
/// let loss = sparse_categorical_cross_entropy(logits, labels);
/// assert!((loss.item() - (2000.0 + 3.0_f32.ln()) / 2.0).abs() < 1e-3);
/// let same = sparse_categorical_cross_entropy_indices(logits, &[1, 2]);
/// assert_eq!(loss.item(), same.item());
/// assert!(loss.backward()[logits].iter().all(|g| g.is_finite()));
/// ```
#[track_caller]
pub fn sparse_categorical_cross_entropy<'t, T: Float>(
    logits: Var<'t, T>,
    labels: Var<'t, T>,
) -> Var<'t, T> {
    sparse_categorical_cross_entropy_reduced(logits, labels, Reduction::Mean)
}

/// [`sparse_categorical_cross_entropy`] with a chosen [`Reduction`] over the examples.
#[track_caller]
pub fn sparse_categorical_cross_entropy_reduced<'t, T: Float>(
    logits: Var<'t, T>,
    labels: Var<'t, T>,
    reduction: Reduction,
) -> Var<'t, T> {
    let logits_shape = logits.shape();
    let outer = outer_shape("sparse_categorical_cross_entropy", &logits_shape);
    let classes = logits_shape[outer.len()];
    let indices = {
        let a = labels.value();
        check_labels(a.iter().map(|&v| Float::to_f64(v)), classes);
        let mut indices = memory::vec(a.len());
        indices.extend(a.iter().map(|&v| Float::to_f64(v) as usize));
        indices
    };
    let label_shape = labels.shape();
    let fits = label_shape == outer
        || (label_shape.len() == outer.len() + 1
            && label_shape[..outer.len()] == outer[..]
            && label_shape.last() == Some(&1));
    assert!(
        fits,
        "sparse_categorical_cross_entropy: logits of shape {:?} need labels of shape {outer:?} \
         (or with a trailing axis of length 1), got {label_shape:?}",
        logits.shape()
    );
    sparse_from_indices(logits, indices, outer, reduction)
}

/// [`sparse_categorical_cross_entropy`] with the labels as class indices, in row-major order
/// of the logits' axes before the last (one per example for `(batch, classes)` logits).
#[track_caller]
pub fn sparse_categorical_cross_entropy_indices<'t, T: Float>(
    logits: Var<'t, T>,
    labels: &[usize],
) -> Var<'t, T> {
    sparse_categorical_cross_entropy_indices_reduced(logits, labels, Reduction::Mean)
}

/// [`sparse_categorical_cross_entropy_indices`] with a chosen [`Reduction`] over the examples.
#[track_caller]
pub fn sparse_categorical_cross_entropy_indices_reduced<'t, T: Float>(
    logits: Var<'t, T>,
    labels: &[usize],
    reduction: Reduction,
) -> Var<'t, T> {
    let logits_shape = logits.shape();
    let outer = outer_shape("sparse_categorical_cross_entropy", &logits_shape);
    let examples: usize = outer.iter().product();
    assert!(
        labels.len() == examples,
        "sparse_categorical_cross_entropy: logits of shape {:?} need {examples} labels, got {}",
        logits.shape(),
        labels.len()
    );
    check_labels(
        labels.iter().map(|&c| c as f64),
        logits.shape()[outer.len()],
    );
    let mut indices = memory::vec(labels.len());
    indices.extend_from_slice(labels);
    sparse_from_indices(logits, indices, outer, reduction)
}

/// The logits' shape without the class axis.
#[track_caller]
fn outer_shape<'s>(loss: &str, shape: &'s [usize]) -> &'s [usize] {
    assert!(
        !shape.is_empty(),
        "{loss}: the logits need a class axis, got a scalar"
    );
    &shape[..shape.len() - 1]
}

/// The first of `labels` that is not a class index in `0..num_classes` (a whole number, at
/// least 0 and below `num_classes`): its position and value.
pub(crate) fn first_invalid_label(
    labels: impl IntoIterator<Item = f64>,
    num_classes: usize,
) -> Option<(usize, f64)> {
    labels
        .into_iter()
        .enumerate()
        .find(|&(_, l)| !(l.fract() == 0.0 && l >= 0.0 && l < num_classes as f64))
}

/// Panics at the first label that is not a class index in `0..num_classes`.
#[track_caller]
fn check_labels(labels: impl IntoIterator<Item = f64>, num_classes: usize) {
    if let Some((i, label)) = first_invalid_label(labels, num_classes) {
        if label.fract() == 0.0 && label >= 0.0 {
            panic!(
                "sparse_categorical_cross_entropy: label {label} at position {i} is out of range \
                 for {num_classes} classes"
            );
        }
        panic!(
            "sparse_categorical_cross_entropy: label {label} at position {i} is not a class index"
        );
    }
}

/// The loss of `logits` at class indices already checked to be in range (`indices` taken
/// from the buffer pool, and given back).
fn sparse_from_indices<'t, T: Float>(
    logits: Var<'t, T>,
    indices: Vec<usize>,
    outer: &[usize],
    reduction: Reduction,
) -> Var<'t, T> {
    let mut index_shape = Shape::new(outer);
    index_shape.push(1);
    let index = ArrayD::from_shape_vec(index_shape, indices).expect("one label per example");
    let picked = logits.log_softmax(-1).gather(-1, &index);
    memory::recycle_array(index);
    match reduction {
        Reduction::None => reduce(picked.squeeze(-1), Reduction::None, -1.0),
        reduction => reduce(picked, reduction, -1.0),
    }
}
