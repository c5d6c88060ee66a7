//! The fully connected layer in PyTorch's layout and names (`nn.Linear`).

use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Param, Var};

use crate::init::Initializer;
use crate::module::{InvalidInputShape, Module};
use crate::onnx::{ExportError, OnnxGraph, OnnxValue};

/// `x · weightᵀ + bias` over the last axis of `x`: PyTorch's `nn.Linear(in_features,
/// out_features, bias)`, with its state-dict names and layouts, so a PyTorch checkpoint
/// loads unchanged: `weight` of shape `(out_features, in_features)` and `bias` of shape
/// `(out_features,)`.
///
/// Both start as PyTorch's do, uniform in `±1/√in_features` (`kaiming_uniform_(a=√5)` for
/// the weight). [`Dense`](super::Dense) is the same function in Keras' layout (`kernel`
/// `(in, units)`, Glorot-uniform) with an activation; use `Linear` for models ported from
/// PyTorch and inside the sequence layers, whose parameters carry PyTorch's names.
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::Linear;
/// use tapegrad_nn::Module;
///
/// let mut layer = Linear::<f64>::new(3, 2);
/// assert_eq!(layer.build(&[5, 3], &mut StdRng::seed_from_u64(0)), vec![5, 2]);
/// let names: Vec<String> = layer.named_params().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["weight", "bias"]);
/// assert_eq!(layer.weight().unwrap().shape(), &[2, 3]);
///
/// let tape = Tape::new();
/// let x = tape.constant(ndarray::Array3::<f64>::ones((4, 5, 3)).into_dyn());
/// assert_eq!(layer.forward(x).shape(), vec![4, 5, 2]);
/// ```
#[derive(Clone, Debug)]
pub struct Linear<T: Float> {
    in_features: usize,
    out_features: usize,
    use_bias: bool,
    weight: Option<Param<T>>,
    bias: Option<Param<T>>,
}

impl<T: Float> Linear<T> {
    /// A layer from `in_features` to `out_features`, with a bias. Panics if either is 0.
    #[track_caller]
    pub fn new(in_features: usize, out_features: usize) -> Self {
        assert!(
            in_features > 0 && out_features > 0,
            "Linear::new: in_features and out_features must be at least 1, got {in_features} \
             and {out_features}"
        );
        Linear {
            in_features,
            out_features,
            use_bias: true,
            weight: None,
            bias: None,
        }
    }

    /// Whether the layer has a bias (default `true`). Set before building.
    pub fn bias_enabled(mut self, bias: bool) -> Self {
        self.use_bias = bias;
        if !bias {
            self.bias = None;
        }
        self
    }

    /// The length of the input's last axis.
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// The length of the output's last axis.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// The weight, shape `(out_features, in_features)` (`None` before building).
    pub fn weight(&self) -> Option<&Param<T>> {
        self.weight.as_ref()
    }

    /// The bias, shape `(out_features,)` (`None` before building or without a bias).
    pub fn bias(&self) -> Option<&Param<T>> {
        self.bias.as_ref()
    }

    /// Whether [`build`](Module::build) has created the parameters.
    pub fn is_built(&self) -> bool {
        self.weight.is_some()
    }

    /// Creates the parameters without an input shape (the layer knows `in_features`), for
    /// layers that own a `Linear` and build it themselves. Draws the weight, then the bias.
    pub fn init(&mut self, rng: &mut StdRng) {
        let bound = 1.0 / (self.in_features as f64).sqrt();
        let uniform = Initializer::Uniform {
            low: -bound,
            high: bound,
        };
        self.weight = Some(Param::new(
            "weight",
            uniform.init(&[self.out_features, self.in_features], rng),
        ));
        self.bias = self
            .use_bias
            .then(|| Param::new("bias", uniform.init(&[self.out_features], rng)));
    }
}

impl<T: Float> Module<T> for Linear<T> {
    /// `x · weightᵀ + bias` on the last axis of `x` (any rank of at least 1).
    #[track_caller]
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let Some(weight) = &self.weight else {
            panic!(
                "Linear::forward: layer `{}` is not built; call build(input_shape, rng) first \
                 (Sequential and Model do this)",
                crate::module::layer_name("linear")
            )
        };
        let tape = x.tape();
        let shape = x.shape();
        let last = *shape.last().unwrap_or(&0);
        assert!(
            last == self.in_features,
            "Linear::forward: layer `{}` takes inputs whose last axis has {} features, got \
             shape {shape:?}",
            crate::module::layer_name("linear"),
            self.in_features
        );
        let kernel = tape.param(weight).t();
        let bias = self.bias.as_ref().map(|b| tape.param(b));
        if shape.len() == 2 {
            return x.linear(kernel, bias);
        }
        // Rows of every leading axis in one product.
        let rows: usize = shape[..shape.len() - 1].iter().product();
        let mut out_shape = shape.clone();
        *out_shape.last_mut().unwrap() = self.out_features;
        x.reshape(&[rows, self.in_features])
            .linear(kernel, bias)
            .reshape(&out_shape)
    }

    /// Inputs whose last axis has `in_features` features.
    fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
        if input_shape.last() != Some(&self.in_features) {
            let expected = format!("(.., {})", self.in_features);
            return Err(InvalidInputShape::new("linear", expected, input_shape));
        }
        Ok(())
    }

    /// Creates the weight and bias; the output replaces the last axis by `out_features`.
    /// Panics if the input's last axis is not `in_features`.
    #[track_caller]
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        if let Err(e) = Module::<T>::check_input_shape(self, input_shape) {
            panic!("Linear::build: {e}")
        }
        self.init(rng);
        let mut out = input_shape.to_vec();
        *out.last_mut().unwrap() = self.out_features;
        out
    }

    /// `MatMul` by the transposed weight (a `Transpose` node reads the `[out, in]`
    /// initializer), then `Add`.
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        Module::<T>::check_input_shape(self, &x.shape)?;
        let weight = self
            .weight()
            .ok_or_else(|| ExportError::not_built("linear"))?;
        let weight = graph.param(weight);
        let bias = self.bias().map(|b| graph.param(b));
        let y = graph.linear_transposed(&x.name, &weight, bias.as_deref());
        let mut shape = x.shape.clone();
        *shape.last_mut().expect("checked: a feature axis") = self.out_features;
        Ok(OnnxValue::new(y, shape))
    }

    crate::register!(T; param weight, param bias);

    fn kind(&self) -> &'static str {
        "linear"
    }
}
