//! Reshaping every sample.

use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Shape, Var};

use crate::module::{InvalidInputShape, Module};
use crate::onnx::{ExportError, OnnxGraph, OnnxValue};

/// Gives every sample a new shape with the same number of elements, in row-major order
/// (Keras' `Reshape`): `(batch, 784)` → `(batch, 1, 28, 28)` with
/// `Reshape::new(&[1, 28, 28])`. The target shape excludes the batch axis; one of its
/// dimensions may be `-1`, inferred from the others.
///
/// ```
/// use ndarray::ArrayD;
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::Reshape;
/// use tapegrad_nn::Module;
///
/// let mut reshape = Reshape::new(&[-1, 28, 28]);
/// let built = Module::<f32>::build(&mut reshape, &[784], &mut StdRng::seed_from_u64(0));
/// assert_eq!(built, vec![1, 28, 28]);
/// let tape = Tape::<f32>::new();
/// let x = tape.constant(ArrayD::zeros(vec![32, 784]));
/// assert_eq!(reshape.forward(x).shape(), vec![32, 1, 28, 28]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reshape {
    target: Vec<isize>,
}

impl Reshape {
    /// Reshapes each sample to `target_shape` (without the batch axis). Panics if a
    /// dimension is 0 or negative other than a single `-1`.
    #[track_caller]
    pub fn new(target_shape: &[isize]) -> Self {
        let inferred = target_shape.iter().filter(|&&d| d == -1).count();
        assert!(
            inferred <= 1 && target_shape.iter().all(|&d| d > 0 || d == -1),
            "Reshape::new: the target shape needs positive dimensions and at most one -1, \
             got {target_shape:?}"
        );
        Reshape {
            target: target_shape.to_vec(),
        }
    }

    /// The target shape as given (with its `-1`, if any).
    pub fn target_shape(&self) -> &[isize] {
        &self.target
    }

    /// The target shape for samples of `len` elements, or `None` if it cannot hold them.
    fn resolve(&self, len: usize) -> Option<Shape> {
        let known: usize = self
            .target
            .iter()
            .filter(|&&d| d > 0)
            .map(|&d| d as usize)
            .product();
        let inferred = if self.target.contains(&-1) {
            len.is_multiple_of(known).then_some(len / known)?
        } else {
            1
        };
        let shape: Shape = self
            .target
            .iter()
            .map(|&d| if d == -1 { inferred } else { d as usize })
            .collect();
        (shape.iter().product::<usize>() == len).then_some(shape)
    }

    #[track_caller]
    fn resolve_or_panic(&self, sample_shape: &[usize]) -> Shape {
        let len = sample_shape.iter().product();
        self.resolve(len).unwrap_or_else(|| {
            panic!(
                "Reshape: layer `{}` cannot reshape samples of shape {sample_shape:?} ({len} \
                 elements) to {:?}",
                crate::module::layer_name("reshape"),
                self.target
            )
        })
    }
}

impl<T: Float> Module<T> for Reshape {
    /// Reshapes `x` to `(batch, target...)`. Panics if the samples do not have as many
    /// elements as the target shape.
    #[track_caller]
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let shape = x.shape();
        if shape.is_empty() {
            panic!(
                "Reshape::forward: layer `{}` needs a batch axis, got a scalar",
                crate::module::layer_name("reshape")
            );
        }
        let mut out = Shape::new(&shape[..1]);
        out.extend(self.resolve_or_panic(&shape[1..]).iter().copied());
        x.reshape(&out)
    }

    /// Samples with as many elements as the target shape.
    fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
        match self.resolve(input_shape.iter().product()) {
            Some(_) => Ok(()),
            None => Err(InvalidInputShape::new(
                "reshape",
                format!("(..) whose elements fill {:?}", self.target),
                input_shape,
            )),
        }
    }

    /// The resolved target shape. Panics if it cannot hold the input's elements.
    #[track_caller]
    fn build(&mut self, input_shape: &[usize], _rng: &mut StdRng) -> Vec<usize> {
        self.resolve_or_panic(input_shape).into()
    }

    /// `Reshape` to `(batch, target..)`, the batch axis kept (`0`) and every other size
    /// resolved for the sample shape.
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        Module::<T>::check_input_shape(self, &x.shape)?;
        let shape = self.resolve_or_panic(&x.shape);
        let target: Vec<i64> = std::iter::once(0)
            .chain(shape.iter().map(|&d| d as i64))
            .collect();
        Ok(OnnxValue::new(
            graph.reshape(&x.name, &target),
            shape.to_vec(),
        ))
    }

    fn kind(&self) -> &'static str {
        "reshape"
    }
}
