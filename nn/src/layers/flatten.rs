//! Flattening all axes but the batch.

use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Var};

use crate::module::Module;
use crate::onnx::{ExportError, OnnxGraph, OnnxValue};

/// Merges every axis after the batch into one: `(batch, 28, 28)` → `(batch, 784)`
/// (row-major order, like Keras' `Flatten` and `torch.flatten(x, 1)`).
///
/// ```
/// use ndarray::ArrayD;
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::Flatten;
/// use tapegrad_nn::Module;
///
/// let flatten = Flatten::new();
/// let tape = Tape::<f32>::new();
/// let x = tape.constant(ArrayD::zeros(vec![32, 28, 28]));
/// assert_eq!(flatten.forward(x).shape(), vec![32, 784]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flatten {}

impl Flatten {
    /// A flatten layer.
    pub fn new() -> Self {
        Flatten {}
    }
}

impl Default for Flatten {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Module<T> for Flatten {
    #[track_caller]
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let already_flat = x.ndim() == 2;
        if already_flat { x } else { x.flatten_from(1) }
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut StdRng) -> Vec<usize> {
        vec![input_shape.iter().product()]
    }

    /// `Flatten` from axis 1 (the identity on `(batch, features)`).
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        if x.shape.len() == 1 {
            return Ok(x.clone());
        }
        let y = graph.node(
            "Flatten",
            &[&x.name],
            vec![crate::onnx::attr::int("axis", 1)],
        );
        Ok(OnnxValue::new(y, vec![x.shape.iter().product()]))
    }

    fn kind(&self) -> &'static str {
        "flatten"
    }
}
