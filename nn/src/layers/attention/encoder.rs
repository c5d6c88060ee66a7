//! The Transformer encoder layer in PyTorch's layout and names
//! (`nn.TransformerEncoderLayer`).

use ndarray::ArrayD;
use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Var};

use super::multi_head::{AttendOptions, MultiHeadAttention};
use crate::layers::{Activation, Dropout, LayerNorm, Linear};
use crate::module::{InvalidInputShape, Module};
use crate::onnx::{ExportError, OnnxGraph, OnnxValue, in_child};

/// A Transformer encoder layer: PyTorch's `nn.TransformerEncoderLayer(d_model, nhead,
/// batch_first=True)`, with its defaults and state-dict names, over `[N, T, d_model]`.
///
/// Post-norm (the default, the original Transformer's):
/// `x = norm1(x + sa(x))`, then `x = norm2(x + ff(x))`; pre-norm
/// ([`norm_first`](TransformerEncoderLayer::norm_first)): `x = x + sa(norm1(x))`, then
/// `x = x + ff(norm2(x))`, where `sa` is the [`MultiHeadAttention`] self-attention followed
/// by dropout and `ff(x) = dropout(linear2(dropout(activation(linear1(x)))))`. Dropout (also
/// on the attention weights, as in PyTorch) acts in train mode only.
///
/// The parameters are `self_attn.in_proj_weight`, `self_attn.in_proj_bias`,
/// `self_attn.out_proj.weight`, `self_attn.out_proj.bias`, `linear1.weight`,
/// `linear1.bias`, `linear2.weight`, `linear2.bias`, `norm1.weight`, `norm1.bias`,
/// `norm2.weight`, `norm2.bias`: the keys of PyTorch's state dict, in its order.
///
/// [`forward_with_mask`](TransformerEncoderLayer::forward_with_mask) takes PyTorch's masks
/// (`true` hides); [`Module::forward`] uses none (causal when built with
/// [`causal`](TransformerEncoderLayer::causal)), for use inside a
/// [`Sequential`](crate::layers::Sequential).
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::{Activation, TransformerEncoderLayer};
/// use tapegrad_nn::Module;
///
/// let mut layer = TransformerEncoderLayer::<f64>::new(8, 2)
///     .dim_feedforward(32)
///     .activation(Activation::Gelu)
///     .norm_first(true);
/// layer.build(&[5, 8], &mut StdRng::seed_from_u64(0));
/// assert_eq!(layer.named_params()[0].0, "self_attn.in_proj_weight");
/// assert_eq!(layer.named_params()[11].0, "norm2.bias");
///
/// layer.set_training(false); // no dropout
/// let tape = Tape::new();
/// let x = tape.var(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[3, 5, 8]), 0.1));
/// assert_eq!(layer.forward_with_mask(x, None, None, true).shape(), [3, 5, 8]);
/// ```
#[derive(Clone, Debug)]
pub struct TransformerEncoderLayer<T: Float> {
    d_model: usize,
    nhead: usize,
    dim_feedforward: usize,
    dropout_rate: f64,
    activation: Activation,
    norm_first: bool,
    layer_norm_eps: f64,
    causal: bool,
    self_attn: MultiHeadAttention<T>,
    linear1: Linear<T>,
    dropout: Dropout,
    linear2: Linear<T>,
    norm1: LayerNorm<T>,
    norm2: LayerNorm<T>,
    dropout1: Dropout,
    dropout2: Dropout,
}

impl<T: Float> TransformerEncoderLayer<T> {
    /// A layer over `d_model` features with `nhead` heads and PyTorch's defaults:
    /// `dim_feedforward` 2048, dropout 0.1, relu, post-norm, `layer_norm_eps` 1e-5. Panics
    /// unless `nhead` divides `d_model`.
    #[track_caller]
    pub fn new(d_model: usize, nhead: usize) -> Self {
        let mut layer = TransformerEncoderLayer {
            d_model,
            nhead,
            dim_feedforward: 2048,
            dropout_rate: 0.1,
            activation: Activation::Relu,
            norm_first: false,
            layer_norm_eps: 1e-5,
            causal: false,
            self_attn: MultiHeadAttention::new(d_model, nhead),
            linear1: Linear::new(d_model, 2048),
            dropout: Dropout::new(0.1),
            linear2: Linear::new(2048, d_model),
            norm1: LayerNorm::new(),
            norm2: LayerNorm::new(),
            dropout1: Dropout::new(0.1),
            dropout2: Dropout::new(0.1),
        };
        layer.configure();
        layer
    }

    /// Recreates the (unbuilt) children from the settings.
    fn configure(&mut self) {
        let (d, ff, p) = (self.d_model, self.dim_feedforward, self.dropout_rate);
        self.self_attn = MultiHeadAttention::new(d, self.nhead).dropout(p);
        self.linear1 = Linear::new(d, ff);
        self.linear2 = Linear::new(ff, d);
        self.norm1 = LayerNorm::new().eps(self.layer_norm_eps).torch_names();
        self.norm2 = LayerNorm::new().eps(self.layer_norm_eps).torch_names();
        self.dropout = Dropout::new(p);
        self.dropout1 = Dropout::new(p);
        self.dropout2 = Dropout::new(p);
    }

    /// The width of the feed-forward block (default 2048). Set before building.
    #[track_caller]
    pub fn dim_feedforward(mut self, dim_feedforward: usize) -> Self {
        assert!(
            dim_feedforward > 0,
            "TransformerEncoderLayer::dim_feedforward: must be at least 1"
        );
        self.dim_feedforward = dim_feedforward;
        self.configure();
        self
    }

    /// The dropout probability (default 0.1), in `[0, 1)`. Set before building.
    #[track_caller]
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout_rate = p;
        self.configure();
        self
    }

    /// The activation of the feed-forward block (default [`Activation::Relu`]; PyTorch's
    /// other choice is the exact [`Activation::Gelu`]).
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Whether the layer normalizes before each block (pre-norm) rather than after each
    /// residual sum (default `false`, post-norm).
    pub fn norm_first(mut self, norm_first: bool) -> Self {
        self.norm_first = norm_first;
        self
    }

    /// The `eps` of both layer norms (default 1e-5). Set before building.
    #[track_caller]
    pub fn layer_norm_eps(mut self, eps: f64) -> Self {
        self.layer_norm_eps = eps;
        self.configure();
        self
    }

    /// Whether [`forward`](Module::forward) is causal (default `false`).
    pub fn causal(mut self, causal: bool) -> Self {
        self.causal = causal;
        self
    }

    /// The self-attention.
    pub fn self_attn(&self) -> &MultiHeadAttention<T> {
        &self.self_attn
    }

    /// The layer applied to `src` `[N, T, d_model]`, with `src_mask` `[T, T]` (or
    /// `[N · nhead, T, T]`) and `src_key_padding_mask` `[N, T]`, where `true` hides, and
    /// `is_causal` hiding later positions: PyTorch's `forward(src, src_mask,
    /// src_key_padding_mask, is_causal)`, except that `is_causal` is a mask of its own here
    /// (PyTorch takes it as a hint about `src_mask`).
    #[track_caller]
    pub fn forward_with_mask<'t>(
        &'t self,
        src: Var<'t, T>,
        src_mask: Option<&ArrayD<bool>>,
        src_key_padding_mask: Option<&ArrayD<bool>>,
        is_causal: bool,
    ) -> Var<'t, T> {
        let options = AttendOptions {
            attn_mask: src_mask,
            key_padding_mask: src_key_padding_mask,
            need_weights: false,
            is_causal,
        };
        let sa = |x: Var<'t, T>| {
            self.dropout1
                .apply(self.self_attn.attend(x, x, x, options).0)
        };
        let ff = |x: Var<'t, T>| {
            let hidden = self.activation.apply(self.linear1.forward(x));
            self.dropout2
                .apply(self.linear2.forward(self.dropout.apply(hidden)))
        };
        if self.norm_first {
            let x = src + sa(self.norm1.forward(src));
            x + ff(self.norm2.forward(x))
        } else {
            let x = self.norm1.forward(src + sa(src));
            self.norm2.forward(x + ff(x))
        }
    }
}

impl<T: Float> Module<T> for TransformerEncoderLayer<T> {
    /// [`forward_with_mask`](TransformerEncoderLayer::forward_with_mask) without masks
    /// (causal if built so).
    #[track_caller]
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        self.forward_with_mask(x, None, None, self.causal)
    }

    /// Asks the self-attention (inputs `[T, d_model]`).
    fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
        self.self_attn.check_input_shape(input_shape)
    }

    /// Creates the parameters (self-attention, `linear1`, `linear2`, norms, in that order);
    /// the input is `[T, d_model]` and the output keeps its shape.
    #[track_caller]
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        let shape = self.self_attn.build(input_shape, rng);
        self.linear1.init(rng);
        self.linear2.init(rng);
        self.norm1.build(&shape, rng);
        self.norm2.build(&shape, rng);
        for dropout in [&mut self.dropout, &mut self.dropout1, &mut self.dropout2] {
            Module::<T>::build(dropout, &shape, rng);
        }
        shape
    }

    /// The forward pass's sublayers in its order (dropouts are the identity).
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        Module::<T>::check_input_shape(self, &x.shape)?;
        let sa = |graph: &mut OnnxGraph<T>, v: &OnnxValue| {
            in_child("self_attn", || {
                super::onnx::multi_head(&self.self_attn, graph, v, self.causal)
            })
        };
        let ff = |graph: &mut OnnxGraph<T>, v: &OnnxValue| {
            let hidden = in_child("linear1", || self.linear1.export_onnx(graph, v))?;
            let activated = graph.activation(&hidden.name, self.activation);
            let hidden = OnnxValue::new(activated, hidden.shape);
            in_child("linear2", || self.linear2.export_onnx(graph, &hidden))
        };
        let norm = |graph: &mut OnnxGraph<T>, name: &str, v: &OnnxValue| {
            let norm = if name == "norm1" {
                &self.norm1
            } else {
                &self.norm2
            };
            in_child(name, || norm.export_onnx(graph, v))
        };
        let add = |graph: &mut OnnxGraph<T>, a: &OnnxValue, b: &OnnxValue| {
            OnnxValue::new(
                graph.node("Add", &[&a.name, &b.name], vec![]),
                a.shape.clone(),
            )
        };
        if self.norm_first {
            let normed = norm(graph, "norm1", x)?;
            let attended = sa(graph, &normed)?;
            let x1 = add(graph, x, &attended);
            let normed = norm(graph, "norm2", &x1)?;
            let fed = ff(graph, &normed)?;
            Ok(add(graph, &x1, &fed))
        } else {
            let attended = sa(graph, x)?;
            let sum = add(graph, x, &attended);
            let x1 = norm(graph, "norm1", &sum)?;
            let fed = ff(graph, &x1)?;
            let sum = add(graph, &x1, &fed);
            norm(graph, "norm2", &sum)
        }
    }

    crate::register!(T; module self_attn, module linear1, module dropout, module linear2, module norm1, module norm2, module dropout1, module dropout2);

    fn kind(&self) -> &'static str {
        "transformer_encoder_layer"
    }
}
