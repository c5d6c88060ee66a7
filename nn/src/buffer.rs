//! [`Buffer`]: a named, non-trainable array a module keeps beside its parameters (BatchNorm's
//! running statistics), saved in checkpoints and never given to optimizers.

use std::cell::{Ref, RefCell};

use ndarray::ArrayD;
use tapegrad_autograd::Float;

/// A named array of non-trainable state, like a PyTorch buffer (`register_buffer`): saved in
/// and loaded from checkpoints beside the parameters, under its name
/// (`"batch_norm_0.running_mean"`), but never bound on a tape as a parameter and never
/// updated by an optimizer.
///
/// It is its own type rather than a [`Param`](tapegrad_autograd::Param) so that the type
/// system keeps it out of optimizers (they take `&mut [&mut Param<T>]`) and gradients (no id
/// to look up), and because its owner updates it *while recording a forward pass*, through
/// `&self`: the value sits in a [`RefCell`]. [`set`](Buffer::set) replaces it through a
/// shared reference; [`value`](Buffer::value) borrows it. Setting while a borrow from
/// [`value`](Buffer::value) is alive panics (the `RefCell` rule), so do not keep that
/// borrow across a forward pass in training mode.
///
/// ```
/// use ndarray::array;
/// use tapegrad_nn::Buffer;
///
/// let running_mean = Buffer::new("bn.running_mean", array![0.0_f32, 0.0].into_dyn());
/// running_mean.set(array![0.5, -0.5].into_dyn()); // through `&self`
/// assert_eq!(*running_mean.value(), array![0.5_f32, -0.5].into_dyn());
/// assert_eq!(running_mean.name(), "bn.running_mean");
/// assert_eq!(running_mean.len(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct Buffer<T: Float> {
    name: String,
    value: RefCell<ArrayD<T>>,
}

impl<T: Float> Buffer<T> {
    /// A buffer named `name` holding `value`.
    pub fn new(name: impl Into<String>, value: ArrayD<T>) -> Self {
        Buffer {
            name: name.into(),
            value: RefCell::new(value),
        }
    }

    /// The buffer's name (its checkpoint key).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the buffer.
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// Borrows the value. Panics if the value is being replaced (never, outside `set`).
    pub fn value(&self) -> Ref<'_, ArrayD<T>> {
        self.value.borrow()
    }

    /// The value, mutably, through an exclusive reference (no runtime borrow check).
    pub fn value_mut(&mut self) -> &mut ArrayD<T> {
        self.value.get_mut()
    }

    /// Replaces the value through a shared reference (what a layer does during `forward`).
    ///
    /// Panics if a borrow from [`value`](Buffer::value) is alive.
    #[track_caller]
    pub fn set(&self, value: ArrayD<T>) {
        *self.value.borrow_mut() = value;
    }

    /// The shape of the value.
    pub fn shape(&self) -> Vec<usize> {
        self.value.borrow().shape().to_vec()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.value.borrow().len()
    }

    /// Whether the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
