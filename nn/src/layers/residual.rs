//! [`Residual`]: `x + f(x)` around any module.

use ndarray::ArrayViewD;
use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Var};

use crate::module::{InvalidInput, InvalidInputShape, Module, Visitor, VisitorMut};
use crate::onnx::{ExportError, OnnxGraph, OnnxValue};

/// A skip connection: `x + inner(x)`, for an `inner` module (often a
/// [`Sequential`](super::Sequential)) whose output has its input's shape.
///
/// The wrapper adds no segment to the paths: inside a `Sequential`, the parameters of
/// `Residual::new(Dense::new(4))` are `residual_0.kernel` and `residual_0.bias`, those of a
/// wrapped `Sequential` `residual_0.dense_0.kernel`, ...
///
/// ```
/// use tapegrad_nn::layers::{Activation, Dense, Residual, Sequential};
/// use tapegrad_nn::Module;
///
/// let block = Sequential::new()
///     .add(Dense::new(16).activation(Activation::Relu))
///     .add(Dense::new(8));
/// let model = Sequential::<f32>::new()
///     .add(Residual::new(block))
///     .add(Dense::new(1))
///     .with_input_shape(&[8]);
/// let names: Vec<&str> = model.params().iter().map(|p| p.name()).collect();
/// assert_eq!(names[0], "residual_0.dense_0.kernel");
/// assert_eq!(names[4], "dense_0.kernel");
/// ```
#[derive(Clone, Debug)]
pub struct Residual<M> {
    inner: M,
}

impl<M> Residual<M> {
    /// `x + inner(x)`.
    pub fn new(inner: M) -> Self {
        Residual { inner }
    }

    /// The wrapped module.
    pub fn inner(&self) -> &M {
        &self.inner
    }
}

impl<T: Float, M: Module<T>> Module<T> for Residual<M> {
    /// `x + inner(x)`.
    #[track_caller]
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        x + self.inner.forward(x)
    }

    /// Builds `inner`; panics if its output shape is not `input_shape` (the sum needs it).
    #[track_caller]
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        let output = self.inner.build(input_shape, rng);
        assert!(
            output == input_shape,
            "Residual::build: layer `{}` maps shape {input_shape:?} to {output:?}; x + f(x) needs \
             them equal",
            crate::module::layer_name("residual")
        );
        output
    }

    fn visit<'a>(&'a self, v: &mut Visitor<'a, '_, T>) {
        v.module("", &self.inner);
    }

    fn visit_mut<'a>(&'a mut self, v: &mut VisitorMut<'a, '_, T>) {
        self.inner.visit_mut(v);
    }

    fn set_training(&mut self, training: bool) {
        self.inner.set_training(training);
    }

    fn check_input(&self, x: ArrayViewD<'_, T>) -> Result<(), InvalidInput> {
        self.inner.check_input(x)
    }

    fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
        self.inner.check_input_shape(input_shape)
    }

    /// The inner module's rule, then `Add` of its input.
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        let inner = self.inner.export_onnx(graph, x)?;
        let y = graph.node("Add", &[&x.name, &inner.name], vec![]);
        Ok(OnnxValue::new(y, inner.shape))
    }

    fn kind(&self) -> &'static str {
        "residual"
    }
}
