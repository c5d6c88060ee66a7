//! The fully connected layer.

use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Param, Var};

use super::Activation;
use super::kernel_bias::KernelBias;
use crate::init::Initializer;
use crate::module::{InvalidInputShape, Module, Visitor, VisitorMut};
use crate::onnx::{ExportError, OnnxGraph, OnnxValue};

/// A fully connected layer: `activation(x · kernel + bias)` over the last axis of `x`.
///
/// Keras' defaults and shapes: the kernel has shape `(input_dim, units)` and is
/// Glorot-uniform initialized, the bias has shape `(units,)` and starts at zero, and there
/// is no activation. Inputs with more than one axis besides the batch are multiplied on
/// their last axis (`(batch, steps, in)` → `(batch, steps, units)`), as in Keras.
///
/// ```
/// use ndarray::Array2;
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::init::Initializer;
/// use tapegrad_nn::layers::{Activation, Dense};
/// use tapegrad_nn::Module;
///
/// let mut layer = Dense::<f32>::new(128)
///     .activation(Activation::Relu)
///     .kernel_initializer(Initializer::HeNormal);
/// let output_shape = layer.build(&[784], &mut StdRng::seed_from_u64(0));
/// assert_eq!(output_shape, vec![128]);
/// assert_eq!(layer.kernel().unwrap().shape(), &[784, 128]);
/// assert_eq!(layer.bias().unwrap().shape(), &[128]);
/// assert_eq!(layer.num_params(), 100_480); // 784 * 128 + 128
///
/// let tape = Tape::new();
/// let x = tape.constant(Array2::<f32>::zeros((32, 784)).into_dyn());
/// let y = layer.forward(x);
/// assert_eq!(y.shape(), vec![32, 128]);
/// let grads = y.sum().backward();
/// assert_eq!(grads.param(layer.bias().unwrap()).unwrap().shape(), &[128]);
/// ```
#[derive(Clone, Debug)]
pub struct Dense<T: Float> {
    units: usize,
    activation: Activation,
    use_bias: bool,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    weights: KernelBias<T>,
}

impl<T: Float> Dense<T> {
    /// A layer with `units` outputs and Keras' defaults (no activation, a bias, a
    /// Glorot-uniform kernel, a zero bias). Panics if `units` is 0.
    #[track_caller]
    pub fn new(units: usize) -> Self {
        assert!(units > 0, "Dense::new: units must be at least 1");
        Dense {
            units,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            weights: KernelBias::empty(),
        }
    }

    /// Applies `activation` to the output.
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Whether the layer has a bias (default `true`). Set before building.
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        if !use_bias {
            self.weights.bias = None;
        }
        self
    }

    /// How the kernel is initialized (default [`Initializer::GlorotUniform`]). Set before
    /// building.
    pub fn kernel_initializer(mut self, initializer: Initializer) -> Self {
        self.kernel_initializer = initializer;
        self
    }

    /// How the bias is initialized (default [`Initializer::Zeros`]). Set before building.
    pub fn bias_initializer(mut self, initializer: Initializer) -> Self {
        self.bias_initializer = initializer;
        self
    }

    /// The number of outputs.
    pub fn units(&self) -> usize {
        self.units
    }

    /// The activation applied to the output.
    pub fn activation_fn(&self) -> Activation {
        self.activation
    }

    /// The kernel, shape `(input_dim, units)` (`None` before building).
    pub fn kernel(&self) -> Option<&Param<T>> {
        self.weights.kernel.as_ref()
    }

    /// The bias, shape `(units,)` (`None` before building or without a bias).
    pub fn bias(&self) -> Option<&Param<T>> {
        self.weights.bias.as_ref()
    }

    /// Whether [`build`](Module::build) has created the parameters.
    pub fn is_built(&self) -> bool {
        self.weights.kernel.is_some()
    }
}

impl<T: Float> Module<T> for Dense<T> {
    /// `activation(x · kernel + bias)`: one matmul, one broadcasting add, the activation
    /// ([`Var::linear`]: without gradient recording, one fused kernel call).
    #[track_caller]
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let Some(kernel) = &self.weights.kernel else {
            panic!(
                "Dense::forward: layer `{}` is not built; call build(input_shape, rng) first \
                 (Sequential and Model do this)",
                crate::module::layer_name("dense")
            )
        };
        let tape = x.tape();
        let (kernel, bias) = (
            tape.param(kernel),
            self.weights.bias.as_ref().map(|b| tape.param(b)),
        );
        // Without gradient recording, `linear` is one fused kernel call (the bias and `relu`
        // applied in one pass over each part of the product); with it, `matmul` and `+`.
        match self.activation {
            Activation::Relu => x.linear_relu(kernel, bias),
            activation => activation.apply_to_pre_activation(x.linear(kernel, bias)),
        }
    }

    /// Inputs with a feature axis (any size: the kernel is created for it).
    fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
        if input_shape.is_empty() {
            return Err(InvalidInputShape::new(
                "dense",
                "(.., features)",
                input_shape,
            ));
        }
        Ok(())
    }

    #[track_caller]
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        if let Err(e) = Module::<T>::check_input_shape(self, input_shape) {
            panic!("Dense::build: {e}")
        }
        let Some((&input_dim, outer)) = input_shape.split_last() else {
            unreachable!("checked: the input has a feature axis")
        };
        self.weights = KernelBias::init(
            &[input_dim, self.units],
            &self.kernel_initializer,
            self.use_bias
                .then_some((self.units, &self.bias_initializer)),
            rng,
        );
        let mut output_shape = outer.to_vec();
        output_shape.push(self.units);
        output_shape
    }

    /// `MatMul` and `Add` over the last axis, then the activation.
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        Module::<T>::check_input_shape(self, &x.shape)?;
        let kernel = self
            .kernel()
            .ok_or_else(|| ExportError::not_built("dense"))?;
        let kernel = graph.param(kernel);
        let bias = self.bias().map(|b| graph.param(b));
        let z = graph.linear(&x.name, &kernel, bias.as_deref());
        let mut shape = x.shape.clone();
        *shape.last_mut().expect("checked: a feature axis") = self.units;
        Ok(OnnxValue::new(graph.activation(&z, self.activation), shape))
    }

    fn visit<'a>(&'a self, v: &mut Visitor<'a, '_, T>) {
        self.weights.visit(v);
    }

    fn visit_mut<'a>(&'a mut self, v: &mut VisitorMut<'a, '_, T>) {
        self.weights.visit_mut(v);
    }

    fn kind(&self) -> &'static str {
        "dense"
    }
}
