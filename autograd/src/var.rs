//! [`Var`]: a small `Copy` handle to a value recorded on a [`Tape`], and what it reads of
//! that value. Its ops are defined next to their rules in [`crate::ops`]; its backward in
//! [`crate::backward`].

use std::cell::Ref;

use ndarray::ArrayD;

use crate::kernels::pool::copy;
use crate::{Float, Shape, Tape};

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

    /// Its shape (held inline up to six axes: reading it does not allocate).
    pub fn shape(&self) -> Shape {
        Shape::new(&self.tape.nodes()[self.index].value.shape())
    }

    /// Its number of dimensions.
    pub fn ndim(&self) -> usize {
        self.tape.nodes()[self.index].value.ndim()
    }

    /// Its value, borrowed from the tape without copying (the guard of a
    /// [`RefCell`](std::cell::RefCell) borrow, read like `&ArrayD<T>`). Recording an op on
    /// this tape while the guard is alive panics: use it within an expression
    /// (`x.value().sum()`, `x.value()[[0, 1]]`) or drop it before recording more, and take
    /// [`to_array`](Var::to_array) to keep the value.
    ///
    /// | PyTorch | candle | tapegrad | cost |
    /// |---|---|---|---|
    /// | `x.detach()` (shared storage) | `x.storage_and_layout()` | `x.value()` | a borrow |
    /// | `x.detach().clone()` | `x.to_vec2()` | `x.to_array()` | a copy |
    /// | `x.item()` | `x.to_scalar()` | `x.item()` | one element |
    ///
    /// ```
    /// use ndarray::array;
    /// use tapegrad_autograd::Tape;
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(array![[1.0, 2.0], [3.0, 4.0]].into_dyn());
    /// assert_eq!(x.value()[[1, 0]], 3.0);     // a borrow, for reading in place
    /// let kept = x.to_array();                // a copy, owned: outlives the tape
    /// let y = x.exp();                        // no borrow is alive while recording
    /// assert_eq!(y.value().len(), kept.len());
    /// ```
    pub fn value(&self) -> Ref<'t, ArrayD<T>> {
        let index = self.index;
        Ref::map(self.tape.nodes(), |nodes| nodes[index].value.array())
    }

    /// A copy of its value, owned (it outlives the tape). [`value`](Var::value) borrows
    /// it instead.
    pub fn to_array(&self) -> ArrayD<T> {
        self.value().clone()
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
        let value = copy(&self.value());
        self.tape.constant(value)
    }

    pub(crate) fn tape_id(&self) -> u64 {
        self.tape.id()
    }
}
