//! Layer normalization over the last axis.

use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Param, Var};

use super::gain_offset::GainOffset;
use crate::module::{InvalidInputShape, Module, Visitor, VisitorMut};
use crate::onnx::{ExportError, OnnxGraph, OnnxValue};

/// `(x - mean) / √(var + eps) · gamma + beta` over the last axis of `x` (population
/// variance), built from autograd ops: the function behind [`LayerNorm`], matching
/// `torch.nn.functional.layer_norm(x, x.shape[-1:], gamma, beta, eps)`.
///
/// `gamma` and `beta` have the length of the last axis; either may be omitted.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::layer_norm;
///
/// let tape = Tape::<f64>::new();
/// let x = tape.var(array![[1.0, 2.0, 3.0], [-1.0, 0.0, 5.0]].into_dyn());
/// let y = layer_norm(x, None, None, 1e-5).to_array();
/// for row in y.rows() {
///     assert!(row.sum().abs() < 1e-12);
///     assert!((row.mapv(|v| v * v).mean().unwrap() - 1.0).abs() < 1e-4);
/// }
/// ```
#[track_caller]
pub fn layer_norm<'t, T: Float>(
    x: Var<'t, T>,
    gamma: Option<Var<'t, T>>,
    beta: Option<Var<'t, T>>,
    eps: f64,
) -> Var<'t, T> {
    let centered = x - x.mean_axes([-1], true);
    let variance = centered.square().mean_axes([-1], true);
    let mut y = centered / variance.add_scalar(T::from_f64(eps)).sqrt();
    if let Some(gamma) = gamma {
        y = y * gamma;
    }
    if let Some(beta) = beta {
        y = y + beta;
    }
    y
}

/// Layer normalization over the last axis (PyTorch's `LayerNorm(normalized_shape=last)`,
/// Keras' `LayerNormalization(axis=-1)`), with a learned gain `gamma` (starts at ones) and
/// offset `beta` (starts at zeros), both of the last axis' length.
///
/// `eps` defaults to `1e-5`, as in PyTorch (Keras' default is `1e-3`): set it with
/// [`eps`](LayerNorm::eps). The parameters carry Keras' names `gamma` and `beta`;
/// [`torch_names`](LayerNorm::torch_names) gives them PyTorch's `weight` and `bias`
/// (`nn.LayerNorm`'s state-dict keys) for models ported from PyTorch.
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_nn::layers::LayerNorm;
/// use tapegrad_nn::Module;
///
/// let mut norm = LayerNorm::<f32>::new();
/// assert_eq!(norm.build(&[10, 64], &mut StdRng::seed_from_u64(0)), vec![10, 64]);
/// assert_eq!(norm.num_params(), 128);
/// assert_eq!(norm.params()[0].name(), "gamma");
///
/// let mut norm = LayerNorm::<f32>::new().torch_names();
/// norm.build(&[64], &mut StdRng::seed_from_u64(0));
/// let names: Vec<String> = norm.named_params().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["weight", "bias"]);
/// ```
#[derive(Clone, Debug)]
pub struct LayerNorm<T: Float> {
    eps: f64,
    affine: GainOffset<T>,
    /// The names of the gain and the offset.
    names: [&'static str; 2],
}

impl<T: Float> LayerNorm<T> {
    /// Normalization over the last axis with `eps = 1e-5`.
    pub fn new() -> Self {
        LayerNorm {
            eps: 1e-5,
            affine: GainOffset::empty(),
            names: ["gamma", "beta"],
        }
    }

    /// Sets the `eps` added to the variance (must be positive).
    #[track_caller]
    pub fn eps(mut self, eps: f64) -> Self {
        assert!(eps > 0.0, "LayerNorm::eps: eps must be positive, got {eps}");
        self.eps = eps;
        self
    }

    /// Names the gain `weight` and the offset `bias`, PyTorch's names (default: Keras'
    /// `gamma` and `beta`). Only the names change.
    pub fn torch_names(mut self) -> Self {
        self.names = ["weight", "bias"];
        self
    }

    /// The gain, shape `(features,)` (`None` before building).
    pub fn gamma(&self) -> Option<&Param<T>> {
        self.affine.gamma.as_ref()
    }

    /// The offset, shape `(features,)` (`None` before building).
    pub fn beta(&self) -> Option<&Param<T>> {
        self.affine.beta.as_ref()
    }
}

impl<T: Float> Default for LayerNorm<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Module<T> for LayerNorm<T> {
    #[track_caller]
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let (Some(gamma), Some(beta)) = (&self.affine.gamma, &self.affine.beta) else {
            panic!(
                "LayerNorm::forward: layer `{}` is not built; call build(input_shape, rng) first \
                 (Sequential and Model do this)",
                crate::module::layer_name("layer_norm")
            )
        };
        let tape = x.tape();
        layer_norm(x, Some(tape.param(gamma)), Some(tape.param(beta)), self.eps)
    }

    /// Inputs with a feature axis.
    fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
        if input_shape.is_empty() {
            let expected = "(.., features)";
            return Err(InvalidInputShape::new("layer_norm", expected, input_shape));
        }
        Ok(())
    }

    #[track_caller]
    fn build(&mut self, input_shape: &[usize], _rng: &mut StdRng) -> Vec<usize> {
        if let Err(e) = Module::<T>::check_input_shape(self, input_shape) {
            panic!("LayerNorm::build: {e}")
        }
        let Some(&features) = input_shape.last() else {
            unreachable!("checked: the input has a feature axis")
        };
        self.affine = GainOffset::identity(features);
        let [gain, offset] = self.names;
        if let (Some(gamma), Some(beta)) = (&mut self.affine.gamma, &mut self.affine.beta) {
            gamma.set_name(gain);
            beta.set_name(offset);
        }
        input_shape.to_vec()
    }

    fn visit<'a>(&'a self, v: &mut Visitor<'a, '_, T>) {
        let [gain, offset] = self.names;
        v.param(gain, self.affine.gamma.as_ref());
        v.param(offset, self.affine.beta.as_ref());
    }

    fn visit_mut<'a>(&'a mut self, v: &mut VisitorMut<'a, '_, T>) {
        let [gain, offset] = self.names;
        v.param(gain, self.affine.gamma.as_mut());
        v.param(offset, self.affine.beta.as_mut());
    }

    /// `LayerNormalization` over the last axis.
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        Module::<T>::check_input_shape(self, &x.shape)?;
        let (Some(gamma), Some(beta)) = (&self.affine.gamma, &self.affine.beta) else {
            return Err(ExportError::not_built("layer_norm"));
        };
        let (gamma, beta) = (graph.param(gamma), graph.param(beta));
        let y = graph.layer_norm(&x.name, &gamma, &beta, self.eps);
        Ok(OnnxValue::new(y, x.shape.clone()))
    }

    fn kind(&self) -> &'static str {
        "layer_norm"
    }
}
