//! [`Var`]: a small `Copy` handle to a value recorded on a [`Tape`], and what it reads of
//! that value. Its ops are defined next to their rules in [`crate::ops`]; its backward in
//! [`crate::backward`].

use ndarray::ArrayD;

use crate::{Float, Tape};

/// A handle to a value recorded on a [`Tape`]: small and `Copy`, so expressions read like
/// maths (`(x * w + b).tanh().sum()`).
pub struct Var<'t, T: Float = f32> {
    pub(crate) tape: &'t Tape<'t, T>,
    pub(crate) index: usize,
}

impl<T: Float> Clone for Var<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Float> Copy for Var<'_, T> {}

impl<T: Float> std::fmt::Debug for Var<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes = self.tape.nodes();
        let node = &nodes[self.index];
        write!(
            f,
            "Var#{}({}, shape {:?}, requires_grad: {})",
            self.index,
            node.op.name(),
            node.value.array().shape(),
            node.requires_grad
        )
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// The tape this variable lives on.
    pub fn tape(&self) -> &'t Tape<'t, T> {
        self.tape
    }

    /// Its position in the tape's arena.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Its shape.
    pub fn shape(&self) -> Vec<usize> {
        self.tape.nodes()[self.index].value.shape().to_vec()
    }

    /// Its number of dimensions.
    pub fn ndim(&self) -> usize {
        self.tape.nodes()[self.index].value.ndim()
    }

    /// A copy of its value.
    pub fn value(&self) -> ArrayD<T> {
        self.tape.nodes()[self.index].value.array().clone()
    }

    /// Runs `f` on its value without copying it.
    pub fn with_value<R>(&self, f: impl FnOnce(&ArrayD<T>) -> R) -> R {
        f(self.tape.nodes()[self.index].value.array())
    }

    /// The value of a one-element variable.
    #[track_caller]
    pub fn item(&self) -> T {
        // No closure here: closures drop `#[track_caller]`'s location.
        let nodes = self.tape.nodes();
        if let Some(v) = nodes[self.index].value.one() {
            return v;
        }
        let a = nodes[self.index].value.array();
        assert!(
            a.len() == 1,
            "item: the variable has shape {:?}, not a single element",
            a.shape()
        );
        *a.iter().next().unwrap()
    }

    /// Whether a gradient flows to this variable.
    pub fn requires_grad(&self) -> bool {
        self.tape.nodes()[self.index].requires_grad
    }

    /// The same value as a constant: gradients stop here.
    #[track_caller]
    pub fn detach(self) -> Var<'t, T> {
        let value = self.value();
        self.tape.constant(value)
    }

    pub(crate) fn tape_id(&self) -> u64 {
        self.tape.id()
    }
}
