//! The causal decoder-only Transformer block of GPT-2 (and of makemore's Transformer):
//! [`DecoderBlock`] and its attention, [`CausalSelfAttention`].

use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Var};

use super::heads::{merge_heads, split_heads};
use super::sdpa::scaled_dot_product_attention;
use crate::layers::{LayerNorm, Linear};
use crate::module::{InvalidInputShape, Module};
use crate::onnx::{ExportError, OnnxGraph, OnnxValue, in_child};

/// Causal multi-head self-attention over `[N, T, E]`, GPT-2's (makemore's
/// `CausalSelfAttention`): `c_attn`, a [`Linear`]`(E, 3E)` giving the queries, keys and
/// values side by side, the heads split by reshape and permute,
/// [`scaled_dot_product_attention`] with each position attending to itself and the ones
/// before it, and `c_proj`, a `Linear(E, E)` over the merged heads.
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::CausalSelfAttention;
/// use tapegrad_nn::Module;
///
/// let mut attn = CausalSelfAttention::<f32>::new(16, 4);
/// attn.build(&[10, 16], &mut StdRng::seed_from_u64(0));
/// let names: Vec<String> = attn.named_params().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["c_attn.weight", "c_attn.bias", "c_proj.weight", "c_proj.bias"]);
/// let tape = Tape::new();
/// let x = tape.var(ndarray::ArrayD::zeros(ndarray::IxDyn(&[2, 10, 16])));
/// assert_eq!(attn.forward(x).shape(), [2, 10, 16]);
/// ```
#[derive(Clone, Debug)]
pub struct CausalSelfAttention<T: Float> {
    n_embd: usize,
    n_head: usize,
    c_attn: Linear<T>,
    c_proj: Linear<T>,
}

impl<T: Float> CausalSelfAttention<T> {
    /// Attention over `n_embd` features in `n_head` heads. Panics unless `n_head` divides
    /// `n_embd` (both at least 1).
    #[track_caller]
    pub fn new(n_embd: usize, n_head: usize) -> Self {
        assert!(
            n_embd > 0 && n_head > 0 && n_embd.is_multiple_of(n_head),
            "CausalSelfAttention::new: n_head must divide n_embd (both at least 1), got n_embd \
             {n_embd} and n_head {n_head}"
        );
        CausalSelfAttention {
            n_embd,
            n_head,
            c_attn: Linear::new(n_embd, 3 * n_embd),
            c_proj: Linear::new(n_embd, n_embd),
        }
    }

    /// Creates the parameters (`c_attn`, then `c_proj`; PyTorch's `Linear` initialization).
    pub fn init(&mut self, rng: &mut StdRng) {
        self.c_attn.init(rng);
        self.c_proj.init(rng);
    }
}

impl<T: Float> Module<T> for CausalSelfAttention<T> {
    /// The causal self-attention of `x` `[N, T, E]`, `[N, T, E]`.
    #[track_caller]
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let shape = x.shape();
        assert!(
            shape.len() == 3 && shape[2] == self.n_embd,
            "CausalSelfAttention::forward: layer `{}` takes inputs [N, T, {}], got {shape:?}",
            crate::module::layer_name("causal_self_attention"),
            self.n_embd
        );
        let qkv = split_heads::<T, 3>(self.c_attn.forward(x), self.n_head);
        let y = scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], None, true);
        self.c_proj.forward(merge_heads(y))
    }

    /// Inputs of shape `[T, E]` (without the batch axis).
    fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
        if !(input_shape.len() == 2 && input_shape[1] == self.n_embd) {
            let expected = format!("[T, {}]", self.n_embd);
            return Err(InvalidInputShape::new(
                "causal_self_attention",
                expected,
                input_shape,
            ));
        }
        Ok(())
    }

    /// Creates the parameters; the input is `[T, E]` and the output keeps its shape.
    #[track_caller]
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        if let Err(e) = Module::<T>::check_input_shape(self, input_shape) {
            panic!("CausalSelfAttention::build: {e}")
        }
        self.init(rng);
        input_shape.to_vec()
    }

    /// `c_attn`, causal self-attention over the heads, `c_proj`.
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        Module::<T>::check_input_shape(self, &x.shape)?;
        let qkv = in_child("c_attn", || self.c_attn.export_onnx(graph, x))?;
        let (t, e) = (x.shape[0], self.n_embd);
        let merged = super::onnx::self_attention(graph, &qkv.name, t, e, self.n_head, true);
        let merged = OnnxValue::new(merged, x.shape.clone());
        in_child("c_proj", || self.c_proj.export_onnx(graph, &merged))
    }

    crate::register!(T; module c_attn, module c_proj);

    fn kind(&self) -> &'static str {
        "causal_self_attention"
    }
}

/// GPT-2's feed-forward block: `c_proj(gelu(c_fc(x)))`, `Linear(E, 4E)` then `Linear(4E, E)`.
#[derive(Clone, Debug)]
struct Mlp<T: Float> {
    c_fc: Linear<T>,
    c_proj: Linear<T>,
    tanh_gelu: bool,
}

impl<T: Float> Module<T> for Mlp<T> {
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let hidden = self.c_fc.forward(x);
        let hidden = if self.tanh_gelu {
            hidden.gelu_tanh()
        } else {
            hidden.gelu()
        };
        self.c_proj.forward(hidden)
    }

    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        let hidden = in_child("c_fc", || self.c_fc.export_onnx(graph, x))?;
        let activated = if self.tanh_gelu {
            super::onnx::gelu_tanh(graph, &hidden.name)
        } else {
            graph.activation(&hidden.name, crate::layers::Activation::Gelu)
        };
        let hidden = OnnxValue::new(activated, hidden.shape);
        in_child("c_proj", || self.c_proj.export_onnx(graph, &hidden))
    }

    crate::register!(T; module c_fc, module c_proj);

    fn kind(&self) -> &'static str {
        "mlp"
    }
}

/// A causal decoder-only Transformer block, GPT-2's (the `Block` of makemore's Transformer):
/// `x = x + attn(ln_1(x))`, then `x = x + mlp(ln_2(x))` over `[N, T, E]`, with `attn` a
/// [`CausalSelfAttention`] and `mlp` `Linear(E, 4E)` → GELU → `Linear(4E, E)`.
///
/// The GELU is the tanh approximation by default (`gelu_tanh`, makemore's `NewGELU` and
/// GPT-2's); [`exact_gelu`](DecoderBlock::exact_gelu) switches to `x Φ(x)`. There is no
/// dropout (makemore has none). The parameters carry GPT-2's names: `ln_1.weight`,
/// `ln_1.bias`, `attn.c_attn.weight`, `attn.c_attn.bias`, `attn.c_proj.weight`,
/// `attn.c_proj.bias`, `ln_2.weight`, `ln_2.bias`, `mlp.c_fc.weight`, `mlp.c_fc.bias`,
/// `mlp.c_proj.weight`, `mlp.c_proj.bias` (all `Linear` weights `[out, in]`, PyTorch's
/// layout and initialization).
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::DecoderBlock;
/// use tapegrad_nn::Module;
///
/// let mut block = DecoderBlock::<f32>::new(64, 4);
/// block.build(&[16, 64], &mut StdRng::seed_from_u64(0));
/// assert_eq!(block.num_params(), 49_984);
/// assert_eq!(block.named_params()[2].0, "attn.c_attn.weight");
/// let tape = Tape::new();
/// let x = tape.var(ndarray::ArrayD::zeros(ndarray::IxDyn(&[2, 16, 64])));
/// assert_eq!(block.forward(x).shape(), [2, 16, 64]);
/// ```
#[derive(Clone, Debug)]
pub struct DecoderBlock<T: Float> {
    ln_1: LayerNorm<T>,
    attn: CausalSelfAttention<T>,
    ln_2: LayerNorm<T>,
    mlp: Mlp<T>,
}

impl<T: Float> DecoderBlock<T> {
    /// A block over `n_embd` features with `n_head` heads. Panics unless `n_head` divides
    /// `n_embd`.
    #[track_caller]
    pub fn new(n_embd: usize, n_head: usize) -> Self {
        DecoderBlock {
            ln_1: LayerNorm::new().torch_names(),
            attn: CausalSelfAttention::new(n_embd, n_head),
            ln_2: LayerNorm::new().torch_names(),
            mlp: Mlp {
                c_fc: Linear::new(n_embd, 4 * n_embd),
                c_proj: Linear::new(4 * n_embd, n_embd),
                tanh_gelu: true,
            },
        }
    }

    /// Whether the MLP uses the exact GELU `x Φ(x)` (default `false`: the tanh
    /// approximation).
    pub fn exact_gelu(mut self, exact: bool) -> Self {
        self.mlp.tanh_gelu = !exact;
        self
    }

    /// The `eps` of both layer norms (default 1e-5, GPT-2's). Panics unless positive.
    #[track_caller]
    pub fn layer_norm_eps(mut self, eps: f64) -> Self {
        self.ln_1 = self.ln_1.eps(eps);
        self.ln_2 = self.ln_2.eps(eps);
        self
    }

    /// The attention.
    pub fn attn(&self) -> &CausalSelfAttention<T> {
        &self.attn
    }
}

impl<T: Float> Module<T> for DecoderBlock<T> {
    /// `x + attn(ln_1(x))`, then `+ mlp(ln_2(·))`, over `x` `[N, T, E]`.
    #[track_caller]
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let x = x + self.attn.forward(self.ln_1.forward(x));
        x + self.mlp.forward(self.ln_2.forward(x))
    }

    /// Asks the attention (inputs `[T, E]`).
    fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
        self.attn.check_input_shape(input_shape)
    }

    /// Creates the parameters (`ln_1`, `attn`, `ln_2`, `mlp`, in that order); the input is
    /// `[T, E]` and the output keeps its shape.
    #[track_caller]
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        self.ln_1.build(input_shape, rng);
        let shape = self.attn.build(input_shape, rng);
        self.ln_2.build(&shape, rng);
        self.mlp.c_fc.init(rng);
        self.mlp.c_proj.init(rng);
        shape
    }

    /// `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        // `x + sublayer(norm(x))`, each part in its child's scope.
        let block = |graph: &mut OnnxGraph<T>,
                     x: &OnnxValue,
                     (norm_name, norm): (&str, &LayerNorm<T>),
                     (name, sublayer): (&str, &dyn Module<T>)| {
            let normed = in_child(norm_name, || norm.export_onnx(graph, x))?;
            let out = in_child(name, || sublayer.export_onnx(graph, &normed))?;
            let sum = graph.node("Add", &[&x.name, &out.name], vec![]);
            Ok::<_, ExportError>(OnnxValue::new(sum, x.shape.clone()))
        };
        let x = block(graph, x, ("ln_1", &self.ln_1), ("attn", &self.attn))?;
        let x = block(graph, &x, ("ln_2", &self.ln_2), ("mlp", &self.mlp))?;
        Ok(x)
    }

    crate::register!(T; module ln_1, module attn, module ln_2, module mlp);

    fn kind(&self) -> &'static str {
        "decoder_block"
    }
}
