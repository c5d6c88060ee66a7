//! [`CallbackState`]: what a callback learned during training (a best value, a patience
//! counter, saved weights), which a training snapshot carries so that a resumed run
//! continues it.

use std::collections::BTreeMap;

use ndarray::ArrayD;
use tapegrad_autograd::Float;

use super::CallbackError;

/// A callback's own state, as named numbers and named tensors: what
/// [`Callback::state`](super::Callback::state) returns and
/// [`Callback::restore_state`](super::Callback::restore_state) takes back. A
/// [`BackupAndRestore`](super::BackupAndRestore) backup stores it exactly (numbers as their
/// `f64` bits: NaN and infinities included).
///
/// ```
/// use ndarray::array;
/// use tapegrad_nn::callbacks::CallbackState;
///
/// let state = CallbackState::<f32>::new()
///     .number("best", f64::INFINITY)
///     .numbers("saved_epochs", vec![0.0, 3.0])
///     .tensor("weights", array![1.0_f32, 2.0].into_dyn());
/// assert_eq!(state.get_number("best")?, f64::INFINITY);
/// assert_eq!(state.get_numbers("saved_epochs")?, [0.0, 3.0]);
/// assert!(state.get_number("wait").is_err()); // typed error naming the key
/// # Ok::<(), tapegrad_nn::callbacks::CallbackError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct CallbackState<T> {
    numbers: BTreeMap<String, Vec<f64>>,
    tensors: BTreeMap<String, ArrayD<T>>,
}

impl<T: Float> Default for CallbackState<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> CallbackState<T> {
    /// No numbers, no tensors.
    pub fn new() -> Self {
        CallbackState {
            numbers: BTreeMap::new(),
            tensors: BTreeMap::new(),
        }
    }

    /// Adds the number `value` under `key`.
    pub fn number(self, key: impl Into<String>, value: f64) -> Self {
        self.numbers(key, vec![value])
    }

    /// Adds the list of numbers `values` under `key`.
    pub fn numbers(mut self, key: impl Into<String>, values: Vec<f64>) -> Self {
        self.numbers.insert(key.into(), values);
        self
    }

    /// Adds the tensor `value` under `key`.
    pub fn tensor(mut self, key: impl Into<String>, value: ArrayD<T>) -> Self {
        self.tensors.insert(key.into(), value);
        self
    }

    /// The single number under `key`.
    ///
    /// # Errors
    ///
    /// [`CallbackError::InvalidState`] if there is none, or a list of another length.
    pub fn get_number(&self, key: &str) -> Result<f64, CallbackError> {
        match self.get_numbers(key)? {
            [value] => Ok(*value),
            other => Err(invalid(key, format!("{} numbers, not one", other.len()))),
        }
    }

    /// The number under `key` as a count or an index (a non-negative integer).
    ///
    /// # Errors
    ///
    /// [`CallbackError::InvalidState`] if there is none, or it is not a non-negative integer
    /// that fits in `usize`.
    pub fn get_count(&self, key: &str) -> Result<usize, CallbackError> {
        to_count(key, self.get_number(key)?)
    }

    /// The list of numbers under `key`.
    ///
    /// # Errors
    ///
    /// [`CallbackError::InvalidState`] if there is none.
    pub fn get_numbers(&self, key: &str) -> Result<&[f64], CallbackError> {
        self.numbers
            .get(key)
            .map(Vec::as_slice)
            .ok_or_else(|| invalid(key, "missing".to_string()))
    }

    /// The tensor under `key`.
    ///
    /// # Errors
    ///
    /// [`CallbackError::InvalidState`] if there is none.
    pub fn get_tensor(&self, key: &str) -> Result<&ArrayD<T>, CallbackError> {
        self.tensors
            .get(key)
            .ok_or_else(|| invalid(key, "missing".to_string()))
    }

    /// Adds the tensor `value` under `key`, in place.
    pub(crate) fn insert_tensor(&mut self, key: &str, value: ArrayD<T>) {
        self.tensors.insert(key.to_string(), value);
    }

    /// Every list of numbers, by key.
    pub fn all_numbers(&self) -> &BTreeMap<String, Vec<f64>> {
        &self.numbers
    }

    /// Every tensor, by key.
    pub fn all_tensors(&self) -> &BTreeMap<String, ArrayD<T>> {
        &self.tensors
    }
}

/// `value` as a count, or [`CallbackError::InvalidState`] naming `key`.
pub(crate) fn to_count(key: &str, value: f64) -> Result<usize, CallbackError> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value < usize::MAX as f64 {
        Ok(value as usize)
    } else {
        Err(invalid(
            key,
            format!("{value} is not a non-negative integer"),
        ))
    }
}

fn invalid(key: &str, reason: String) -> CallbackError {
    CallbackError::InvalidState {
        key: key.to_string(),
        reason,
    }
}
