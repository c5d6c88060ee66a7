//! [`Loss`]: the loss a [`Model`](super::Model) is compiled with, a built-in one (whose
//! meaning `fit` knows: it checks targets and resolves `Accuracy` from it) or the user's
//! function.

use std::borrow::Cow;
use std::fmt;

use tapegrad_autograd::{Float, Var};

use crate::losses::{self, CrossEntropy};

/// The signature of a loss: `(predictions, targets) -> scalar`.
pub type LossFn<T> = dyn for<'t> Fn(Var<'t, T>, Var<'t, T>) -> Var<'t, T> + Send + Sync;

/// The built-in losses, whose targets `fit` checks and whose outputs decide what
/// `Accuracy` means.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Builtin {
    Mse,
    Mae,
    Huber { delta: f64 },
    SmoothL1 { beta: f64 },
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    CategoricalCrossEntropy,
    SparseCategoricalCrossEntropy,
    CrossEntropy(CrossEntropy),
}

impl Builtin {
    fn name(self) -> &'static str {
        match self {
            Builtin::Mse => "mse",
            Builtin::Mae => "mae",
            Builtin::Huber { .. } => "huber",
            Builtin::SmoothL1 { .. } => "smooth_l1",
            Builtin::BinaryCrossEntropy => "binary_cross_entropy",
            Builtin::BinaryCrossEntropyWithLogits => "binary_cross_entropy_with_logits",
            Builtin::CategoricalCrossEntropy => "categorical_cross_entropy",
            Builtin::SparseCategoricalCrossEntropy => "sparse_categorical_cross_entropy",
            Builtin::CrossEntropy(_) => "cross_entropy",
        }
    }

    fn call<'t, T: Float>(self, p: Var<'t, T>, t: Var<'t, T>) -> Var<'t, T> {
        match self {
            Builtin::Mse => losses::mse(p, t),
            Builtin::Mae => losses::mae(p, t),
            Builtin::Huber { delta } => losses::huber(p, t, delta),
            Builtin::SmoothL1 { beta } => losses::smooth_l1(p, t, beta),
            Builtin::BinaryCrossEntropy => losses::binary_cross_entropy(p, t),
            Builtin::BinaryCrossEntropyWithLogits => losses::binary_cross_entropy_with_logits(p, t),
            Builtin::CategoricalCrossEntropy => losses::categorical_cross_entropy(p, t),
            Builtin::SparseCategoricalCrossEntropy => {
                losses::sparse_categorical_cross_entropy(p, t)
            }
            Builtin::CrossEntropy(options) => {
                losses::cross_entropy(p, &class_targets(t, options), options)
            }
        }
    }

    /// Whether targets must have the shape of the predictions.
    pub(super) fn elementwise(self) -> bool {
        !matches!(
            self,
            Builtin::SparseCategoricalCrossEntropy | Builtin::CrossEntropy(_)
        )
    }
}

/// The targets of [`Loss::cross_entropy`], floats holding class indices or the ignored
/// index, as the integers [`losses::cross_entropy`] takes. Panics at a value that is not a
/// whole number (`fit` and `evaluate` check the targets first and report it as an error).
#[track_caller]
fn class_targets<T: Float>(targets: Var<'_, T>, options: CrossEntropy) -> Vec<i64> {
    targets
        .value()
        .iter()
        .enumerate()
        .map(|(position, &v)| {
            let v = Float::to_f64(v);
            assert!(
                v.fract() == 0.0 && v.abs() < 2f64.powi(62),
                "cross_entropy: target {v} at position {position} is not a class index{}",
                match options.ignore_index {
                    Some(i) => format!(" nor the ignored index {i}"),
                    None => String::new(),
                }
            );
            v as i64
        })
        .collect()
}

/// What a [`Loss`] computes: a built-in loss, or the user's function under its name.
enum Kind<T: Float> {
    Builtin(Builtin),
    Custom {
        name: Cow<'static, str>,
        f: Box<LossFn<T>>,
    },
}

/// A named loss function for [`Model::compile`](super::Model::compile).
///
/// Built-in losses have constructors (`Loss::mse()`, ...): with them `fit` checks the
/// targets (shapes, integer labels) and resolves `Accuracy` from the loss. Any *function*
/// `(Var, Var) -> Var` converts with `From`, under the function's name, so `compile` takes
/// the functions of [`losses`] and your own directly (as custom losses: the functions do
/// their own checks and panic on bad targets). A closure goes through [`Loss::new`],
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
/// assert_eq!(b.name(), "cubic");
///
/// let c = Loss::<f32>::new("cubic", |p, t| (p - t).abs().powi(3).mean());
/// assert_eq!(c.name(), "cubic");
/// ```
pub struct Loss<T: Float = f32> {
    kind: Kind<T>,
}

impl<T: Float> fmt::Debug for Loss<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loss").field("name", &self.name()).finish()
    }
}

impl<T: Float> Loss<T> {
    /// A user-defined loss with a name (used in messages and summaries).
    pub fn new<F>(name: impl Into<Cow<'static, str>>, f: F) -> Self
    where
        F: for<'t> Fn(Var<'t, T>, Var<'t, T>) -> Var<'t, T> + Send + Sync + 'static,
    {
        Loss {
            kind: Kind::Custom {
                name: name.into(),
                f: Box::new(f),
            },
        }
    }

    fn builtin(builtin: Builtin) -> Self {
        Loss {
            kind: Kind::Builtin(builtin),
        }
    }

    /// Mean squared error, [`losses::mse`].
    pub fn mse() -> Self {
        Self::builtin(Builtin::Mse)
    }

    /// Mean absolute error, [`losses::mae`].
    pub fn mae() -> Self {
        Self::builtin(Builtin::Mae)
    }

    /// Huber loss with threshold `delta` (Keras' default is 1.0), [`losses::huber`].
    pub fn huber(delta: f64) -> Self {
        Self::builtin(Builtin::Huber { delta })
    }

    /// Smooth L1 loss with threshold `beta` (PyTorch's default is 1.0),
    /// [`losses::smooth_l1`].
    pub fn smooth_l1(beta: f64) -> Self {
        Self::builtin(Builtin::SmoothL1 { beta })
    }

    /// Binary cross-entropy on probabilities, [`losses::binary_cross_entropy`].
    pub fn binary_cross_entropy() -> Self {
        Self::builtin(Builtin::BinaryCrossEntropy)
    }

    /// Binary cross-entropy on logits, [`losses::binary_cross_entropy_with_logits`].
    pub fn binary_cross_entropy_with_logits() -> Self {
        Self::builtin(Builtin::BinaryCrossEntropyWithLogits)
    }

    /// Categorical cross-entropy of logits against one-hot (or soft) targets,
    /// [`losses::categorical_cross_entropy`] (Keras' `from_logits=True`).
    pub fn categorical_cross_entropy() -> Self {
        Self::builtin(Builtin::CategoricalCrossEntropy)
    }

    /// Cross-entropy of logits against integer class labels (targets of shape `(n,)` or
    /// `(n, 1)`), [`losses::sparse_categorical_cross_entropy`] (Keras' `from_logits=True`).
    /// `fit` and `evaluate` check that every label is an integer in `0..num_classes` and
    /// report the first one that is not, with its row.
    pub fn sparse_categorical_cross_entropy() -> Self {
        Self::builtin(Builtin::SparseCategoricalCrossEntropy)
    }

    /// PyTorch's `cross_entropy` of logits `[n, ..., C]` against targets `[n, ...]` (one
    /// class index per position, stored as floats), with an ignored index and label
    /// smoothing: [`losses::cross_entropy`]. The targets of a `[n, T, C]` sequence output are
    /// `[n, T]`, padded with the ignored index (`-1` by default); a `[n, C]` output takes
    /// `[n]` (or `[n, 1]`) targets. `fit` and `evaluate` check that every target is a class
    /// index in `0..C` or the ignored index and report the first one that is not
    /// ([`FitError::InvalidTarget`](super::FitError::InvalidTarget)).
    ///
    /// The loss of an epoch is the mean of the batches' losses (each the mean over its
    /// counted positions), weighted by the batches' sizes. A batch whose targets are all
    /// ignored has a NaN loss: keep at least one counted target per sample (makemore's
    /// rows always end with the end token).
    ///
    /// ```
    /// use tapegrad_nn::losses::CrossEntropy;
    /// use tapegrad_nn::model::Loss;
    ///
    /// let loss = Loss::<f32>::cross_entropy(CrossEntropy::default());
    /// assert_eq!(loss.name(), "cross_entropy");
    /// ```
    pub fn cross_entropy(options: CrossEntropy) -> Self {
        Self::builtin(Builtin::CrossEntropy(options))
    }

    /// Its name (`"mse"`, `"sparse_categorical_cross_entropy"`, `"custom"`, ...).
    pub fn name(&self) -> &str {
        match &self.kind {
            Kind::Builtin(builtin) => builtin.name(),
            Kind::Custom { name, .. } => name,
        }
    }

    /// Applies it: the loss of `predictions` against `targets`.
    pub fn call<'t>(&self, predictions: Var<'t, T>, targets: Var<'t, T>) -> Var<'t, T> {
        match &self.kind {
            Kind::Builtin(builtin) => builtin.call(predictions, targets),
            Kind::Custom { f, .. } => f(predictions, targets),
        }
    }

    /// The built-in loss it is, if it is one.
    pub(super) fn builtin_kind(&self) -> Option<Builtin> {
        match self.kind {
            Kind::Builtin(builtin) => Some(builtin),
            Kind::Custom { .. } => None,
        }
    }
}

impl<T, F> From<F> for Loss<T>
where
    T: Float,
    F: for<'t> Fn(Var<'t, T>, Var<'t, T>) -> Var<'t, T> + Send + Sync + 'static,
{
    /// Wraps a function as a custom loss named after the function, as Keras names a loss
    /// function by its `__name__` (`losses::mse` is `"mse"`, your `fn cubic` is `"cubic"`);
    /// a closure is `"custom"`. The built-ins' target checks and `Accuracy` resolution come
    /// with the constructors ([`Loss::mse`], ...), not with the functions.
    fn from(f: F) -> Self {
        Loss::new(function_name::<F>(), f)
    }
}

/// The name of the function `F` for messages: the last segment of its type's path without
/// generic arguments (`tapegrad_nn::losses::mse<f32>` gives `mse`), `"custom"` for closures.
/// Rust does not promise the exact form of `type_name`; the name is only ever displayed.
fn function_name<F>() -> &'static str {
    let path = std::any::type_name::<F>();
    let path = path.split('<').next().unwrap_or(path);
    match path.rsplit("::").next() {
        Some(name) if !name.is_empty() && !name.contains('{') => name,
        _ => "custom",
    }
}
