//! Activation functions: the [`Activation`] enum (used by [`Dense`](super::Dense) and on
//! its own) and [`ActivationLayer`], its [`Module`] wrapper.

use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Var};

use crate::module::Module;
use crate::onnx::{ExportError, OnnxGraph, OnnxValue};

/// An elementwise (or, for softmax, last-axis) activation function, built from autograd
/// ops. Hyper-parameters are `f64` and converted to the element type when applied.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::Activation;
///
/// let tape = Tape::<f64>::new();
/// let x = tape.var(array![[-1.0, 0.5, 2.0]].into_dyn());
/// let y = Activation::LeakyRelu(0.1).apply(x);
/// assert_eq!(y.to_array(), array![[-0.1, 0.5, 2.0]].into_dyn());
/// let p = Activation::Softmax.apply(x).to_array();
/// assert!((p.sum() - 1.0).abs() < 1e-12);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Default)]
#[non_exhaustive]
pub enum Activation {
    /// The identity (no op is recorded); Keras' default for `Dense`.
    #[default]
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e⁻ˣ)`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `softmax` over the last axis (numerically stable).
    Softmax,
    /// `x` for `x > 0`, else `α x` (Keras' `LeakyReLU` default α is 0.3, PyTorch's 0.01).
    LeakyRelu(f64),
    /// `x` for `x > 0`, else `α (eˣ - 1)` (usual α: 1.0).
    Elu(f64),
    /// The exact GELU `x Φ(x)` (Keras' `gelu` with `approximate=False`, PyTorch's default).
    Gelu,
    /// `ln(1 + eˣ)`, computed stably.
    Softplus,
}

impl Activation {
    /// Records the activation of `x` (the identity returns `x` itself).
    #[track_caller]
    pub fn apply<'t, T: Float>(self, x: Var<'t, T>) -> Var<'t, T> {
        match self {
            Activation::Linear => x,
            Activation::Relu => x.relu(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Tanh => x.tanh(),
            Activation::Softmax => x.softmax(-1),
            Activation::LeakyRelu(alpha) => x.leaky_relu(T::from_f64(alpha)),
            Activation::Elu(alpha) => x.elu(T::from_f64(alpha)),
            Activation::Gelu => x.gelu(),
            Activation::Softplus => x.softplus(),
        }
    }

    /// [`Activation::apply`] to a layer's pre-activation `z`, which nothing else reads:
    /// without gradient recording, `z`'s value is freed once the activation has run.
    pub(crate) fn apply_to_pre_activation<'t, T: Float>(self, z: Var<'t, T>) -> Var<'t, T> {
        let y = self.apply(z);
        super::free_once_used(z, y);
        y
    }

    /// Its Keras name: `"linear"`, `"relu"`, `"sigmoid"`, `"tanh"`, `"softmax"`,
    /// `"leaky_relu"`, `"elu"`, `"gelu"`, `"softplus"`.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
            Activation::LeakyRelu(_) => "leaky_relu",
            Activation::Elu(_) => "elu",
            Activation::Gelu => "gelu",
            Activation::Softplus => "softplus",
        }
    }
}

/// An [`Activation`] as a layer of its own (Keras' `Activation` layer): no parameters,
/// output shape = input shape.
///
/// ```
/// use tapegrad_nn::layers::{Activation, ActivationLayer, Dense, Sequential};
/// use tapegrad_nn::Module;
///
/// let model = Sequential::<f32>::new()
///     .add(Dense::new(8))
///     .add(ActivationLayer::new(Activation::Tanh))
///     .with_input_shape(&[4]);
/// assert_eq!(model.layer_names()[1], "activation_0");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ActivationLayer {
    activation: Activation,
}

impl ActivationLayer {
    /// A layer applying `activation`.
    pub fn new(activation: Activation) -> Self {
        ActivationLayer { activation }
    }

    /// The activation it applies.
    pub fn activation(&self) -> Activation {
        self.activation
    }
}

impl From<Activation> for ActivationLayer {
    fn from(activation: Activation) -> Self {
        ActivationLayer::new(activation)
    }
}

impl<T: Float> Module<T> for ActivationLayer {
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        self.activation.apply(x)
    }
    fn build(&mut self, input_shape: &[usize], _rng: &mut StdRng) -> Vec<usize> {
        input_shape.to_vec()
    }
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        let y = graph.activation(&x.name, self.activation);
        Ok(OnnxValue::new(y, x.shape.clone()))
    }
    fn kind(&self) -> &'static str {
        "activation"
    }
}
