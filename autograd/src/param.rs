//! Trainable parameters: named arrays with a stable identity, owned outside any tape.

use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::ArrayD;

use crate::Float;

/// The stable identity of a [`Param`]: gradients and optimizer state are keyed by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(u64);

impl ParamId {
    /// A fresh id, never handed out before in this process.
    pub fn fresh() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ParamId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The id as a number (for messages and maps).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A trainable array with a name and a stable [`ParamId`].
///
/// A `Param` lives outside any tape. [`Tape::param`](crate::Tape::param) binds it by
/// reference, so its data is never copied into the tape and the borrow checker forbids
/// changing it while a tape still uses it. After the tape is gone, its gradient is looked
/// up in [`Grads`](crate::Grads) by this parameter's id, and an optimizer updates it in place.
///
/// Cloning gives a *new* parameter (a fresh id) with the same name and values.
///
/// ```
/// use ndarray::arr1;
/// use tapegrad_autograd::{Param, Tape};
///
/// let mut w = Param::new("w", arr1(&[2.0_f64]).into_dyn());
/// let grads = {
///     let tape = Tape::new();
///     let x = tape.param(&w);
///     (x * x).sum().backward()
/// };
/// let g = grads.param(&w).unwrap().clone();
/// w.value_mut().scaled_add(-0.1, &g); // one step of gradient descent
/// assert!((w.value()[[0]] - 1.6).abs() < 1e-12);
/// ```
#[derive(Debug)]
pub struct Param<T> {
    id: ParamId,
    name: String,
    value: ArrayD<T>,
}

impl<T: Float> Param<T> {
    /// A new parameter with a fresh id.
    pub fn new(name: impl Into<String>, value: ArrayD<T>) -> Self {
        Param {
            id: ParamId::fresh(),
            name: name.into(),
            value,
        }
    }

    /// Its stable id.
    pub fn id(&self) -> ParamId {
        self.id
    }

    /// Its name (a layer's parameter path such as `dense_0.kernel`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames it (layers do this when they are added to a model).
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// Its current value.
    pub fn value(&self) -> &ArrayD<T> {
        &self.value
    }

    /// Its value, mutably (for optimizers and loading weights).
    pub fn value_mut(&mut self) -> &mut ArrayD<T> {
        &mut self.value
    }

    /// Replaces its value, keeping its id. Panics if the shape changes.
    #[track_caller]
    pub fn assign(&mut self, value: ArrayD<T>) {
        assert_eq!(
            self.value.shape(),
            value.shape(),
            "Param::assign: parameter `{}` has shape {:?}, new value has shape {:?}",
            self.name,
            self.value.shape(),
            value.shape()
        );
        self.value = value;
    }

    /// Its shape.
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// The number of scalars it holds.
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// Whether it holds no scalars.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }
}

impl<T: Float> Clone for Param<T> {
    fn clone(&self) -> Self {
        Param::new(self.name.clone(), self.value.clone())
    }
}
