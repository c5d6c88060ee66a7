//! [`StepGradients`]: the gradients of one training step, as [`Callback::on_gradients`]
//! sees them.
//!
//! [`Callback::on_gradients`]: super::Callback::on_gradients

use ndarray::ArrayD;
use tapegrad_autograd::{Float, Grads, Param};

use crate::module::Module;

/// The gradients one training step is about to apply, by parameter: what
/// [`Callback::on_gradients`](super::Callback::on_gradients) is given. Nothing is copied:
/// it borrows the step's gradients and the module that names them.
///
/// ```
/// use ndarray::array;
/// use rand::{SeedableRng, rngs::StdRng};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::Module;
/// use tapegrad_nn::callbacks::StepGradients;
/// use tapegrad_nn::layers::Linear;
///
/// let mut layer = Linear::<f64>::new(2, 1);
/// layer.build(&[1, 2], &mut StdRng::seed_from_u64(0));
/// let grads = {
///     let tape = Tape::new();
///     let y = layer.forward(tape.constant(array![[1.0, 2.0]].into_dyn()));
///     y.sum().backward()
/// };
/// let gradients = StepGradients::new(&layer, &grads);
/// let names: Vec<String> = gradients.named().map(|(name, _)| name).collect();
/// assert_eq!(names, ["weight", "bias"]);
/// // d(sum of x·Wᵀ + b)/dW = x
/// let weight = layer.weight().unwrap();
/// assert_eq!(gradients.get(weight), Some(&array![[1.0, 2.0]].into_dyn()));
/// ```
pub struct StepGradients<'a, T: Float> {
    module: &'a dyn Module<T>,
    grads: &'a Grads<T>,
}

impl<'a, T: Float> StepGradients<'a, T> {
    /// The gradients `grads` of the parameters of `module` (done by `fit`; public for
    /// testing callbacks).
    pub fn new(module: &'a dyn Module<T>, grads: &'a Grads<T>) -> Self {
        StepGradients { module, grads }
    }

    /// The gradient of `param`, `None` if the step gave it none (a parameter the loss does
    /// not depend on).
    pub fn get(&self, param: &Param<T>) -> Option<&'a ArrayD<T>> {
        self.grads.param(param)
    }

    /// Each parameter's path (its checkpoint name, `dense_0.kernel`) and gradient, in the
    /// module's order, skipping parameters without one.
    pub fn named(&self) -> impl Iterator<Item = (String, &'a ArrayD<T>)> + '_ {
        let grads = self.grads;
        self.module
            .named_params()
            .into_iter()
            .filter_map(move |(path, param)| grads.param(param).map(|g| (path, g)))
    }

    /// The step's gradients, keyed by parameter id.
    pub fn grads(&self) -> &'a Grads<T> {
        self.grads
    }
}
