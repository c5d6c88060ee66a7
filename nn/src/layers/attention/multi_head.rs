//! Multi-head attention in PyTorch's layout and names (`nn.MultiheadAttention`).

use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Param, Var};

use super::heads::{merge_heads, project, split_heads};
use super::sdpa::{attention, or_broadcast};
use crate::init::Initializer;
use crate::layers::{Dropout, Linear};
use crate::module::{EntryMut, InvalidInputShape, Module, VisitorMut};
use crate::onnx::{ExportError, OnnxGraph, OnnxValue};

/// The masks and switches of one [`MultiHeadAttention::attend`] call (all off by default),
/// PyTorch's keyword arguments of `nn.MultiheadAttention.forward`. Boolean masks follow
/// PyTorch's convention there: **`true` means "may not attend"**.
///
/// ```
/// use ndarray::{ArrayD, IxDyn};
/// use tapegrad_nn::layers::AttendOptions;
///
/// let padding = ArrayD::from_elem(IxDyn(&[2, 5]), false);
/// let options = AttendOptions::default().key_padding_mask(&padding).need_weights(true);
/// assert!(options.need_weights && !options.is_causal);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct AttendOptions<'m> {
    /// `[L, S]` (or PyTorch's per-head `[N · num_heads, L, S]`): `true` hides key `j` from
    /// query `i`.
    pub attn_mask: Option<&'m ArrayD<bool>>,
    /// `[N, S]`: `true` marks key `j` of sample `n` as padding, attended by no query.
    pub key_padding_mask: Option<&'m ArrayD<bool>>,
    /// Whether to return the attention weights, averaged over the heads (`[N, L, S]`).
    pub need_weights: bool,
    /// Hides key `j` from query `i` when `j > i` (combined with the masks).
    pub is_causal: bool,
}

impl<'m> AttendOptions<'m> {
    /// Sets [`attn_mask`](AttendOptions::attn_mask).
    pub fn attn_mask(mut self, mask: &'m ArrayD<bool>) -> Self {
        self.attn_mask = Some(mask);
        self
    }

    /// Sets [`key_padding_mask`](AttendOptions::key_padding_mask).
    pub fn key_padding_mask(mut self, mask: &'m ArrayD<bool>) -> Self {
        self.key_padding_mask = Some(mask);
        self
    }

    /// Sets [`need_weights`](AttendOptions::need_weights).
    pub fn need_weights(mut self, need_weights: bool) -> Self {
        self.need_weights = need_weights;
        self
    }

    /// Sets [`is_causal`](AttendOptions::is_causal).
    pub fn is_causal(mut self, is_causal: bool) -> Self {
        self.is_causal = is_causal;
        self
    }
}

/// Multi-head attention: PyTorch's `nn.MultiheadAttention(embed_dim, num_heads,
/// batch_first=True)`, with its state-dict names and layouts, so its weights move both ways.
///
/// - `in_proj_weight` `[3E, E]` (the query, key and value projections stacked, in that
///   order; Xavier-uniform), `in_proj_bias` `[3E]` (zeros);
/// - the child `out_proj`, a [`Linear`]`(E, E)` (`out_proj.weight`, `out_proj.bias`, the
///   bias zeros), as PyTorch initializes them.
///
/// [`attend`](MultiHeadAttention::attend) takes `query [N, L, E]`, `key [N, S, E]` and
/// `value [N, S, E]` with [`AttendOptions`] (masks in which `true` hides, the head-averaged
/// weights on request): self-attention when the three are the same `Var` (one in-projection
/// product for all three), cross-attention otherwise. [`Module::forward`] is the
/// self-attention of `x` (causal when built with [`causal`](MultiHeadAttention::causal)),
/// for use inside a [`Sequential`](crate::layers::Sequential).
///
/// Each head attends with [`scaled_dot_product_attention`](super::scaled_dot_product_attention)
/// over `E / num_heads` features. With [`dropout`](MultiHeadAttention::dropout) (default 0),
/// the attention weights are dropped in train mode, as in PyTorch.
///
/// ```
/// use ndarray::{ArrayD, IxDyn};
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::{AttendOptions, MultiHeadAttention};
/// use tapegrad_nn::Module;
///
/// let mut mha = MultiHeadAttention::<f64>::new(8, 2);
/// mha.build(&[4, 8], &mut StdRng::seed_from_u64(0));
/// let names: Vec<String> = mha.named_params().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]);
///
/// let tape = Tape::new();
/// let x = tape.var(ArrayD::from_elem(IxDyn(&[3, 4, 8]), 0.5));
/// let memory = tape.var(ArrayD::from_elem(IxDyn(&[3, 6, 8]), -0.5));
/// let padding = ArrayD::from_shape_fn(IxDyn(&[3, 6]), |ix| ix[1] >= 4); // last two are padding
/// let options = AttendOptions::default().key_padding_mask(&padding).need_weights(true);
/// let (out, weights) = mha.attend(x, memory, memory, options);
/// assert_eq!(out.shape(), [3, 4, 8]);
/// let weights = weights.unwrap().to_array();
/// assert_eq!(weights.shape(), [3, 4, 6]);
/// assert_eq!(weights[[0, 0, 5]], 0.0);
/// assert_eq!(mha.forward(x).shape(), [3, 4, 8]);
/// ```
#[derive(Clone, Debug)]
pub struct MultiHeadAttention<T: Float> {
    embed_dim: usize,
    num_heads: usize,
    use_bias: bool,
    causal: bool,
    in_proj_weight: Option<Param<T>>,
    in_proj_bias: Option<Param<T>>,
    out_proj: Linear<T>,
    dropout: Dropout,
}

impl<T: Float> MultiHeadAttention<T> {
    /// Attention over `embed_dim` features split into `num_heads` heads, with biases and no
    /// dropout. Panics unless `num_heads` divides `embed_dim` (both at least 1).
    #[track_caller]
    pub fn new(embed_dim: usize, num_heads: usize) -> Self {
        assert!(
            embed_dim > 0 && num_heads > 0 && embed_dim.is_multiple_of(num_heads),
            "MultiHeadAttention::new: num_heads must divide embed_dim (both at least 1), got \
             embed_dim {embed_dim} and num_heads {num_heads}"
        );
        MultiHeadAttention {
            embed_dim,
            num_heads,
            use_bias: true,
            causal: false,
            in_proj_weight: None,
            in_proj_bias: None,
            out_proj: Linear::new(embed_dim, embed_dim),
            dropout: Dropout::new(0.0),
        }
    }

    /// Whether the in- and out-projections have biases (default `true`; PyTorch's `bias`).
    /// Set before building.
    pub fn bias(mut self, bias: bool) -> Self {
        self.use_bias = bias;
        self.out_proj = Linear::new(self.embed_dim, self.embed_dim).bias_enabled(bias);
        self.in_proj_bias = None;
        self
    }

    /// Whether [`forward`](Module::forward) hides later keys (`j > i`) from each query
    /// (default `false`). [`attend`](MultiHeadAttention::attend) takes it per call instead.
    pub fn causal(mut self, causal: bool) -> Self {
        self.causal = causal;
        self
    }

    /// Drops attention weights with probability `p` in train mode (default 0; PyTorch's
    /// `dropout`). Panics unless `p` is in `[0, 1)`.
    #[track_caller]
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout = Dropout::new(p);
        self
    }

    /// The feature count `E`.
    pub fn embed_dim(&self) -> usize {
        self.embed_dim
    }

    /// The number of heads.
    pub fn num_heads(&self) -> usize {
        self.num_heads
    }

    /// The stacked query, key and value projections, `[3E, E]` (`None` before building).
    pub fn in_proj_weight(&self) -> Option<&Param<T>> {
        self.in_proj_weight.as_ref()
    }

    /// Their biases, `[3E]` (`None` before building or without biases).
    pub fn in_proj_bias(&self) -> Option<&Param<T>> {
        self.in_proj_bias.as_ref()
    }

    /// The output projection `Linear(E, E)`.
    pub fn out_proj(&self) -> &Linear<T> {
        &self.out_proj
    }

    /// Creates the parameters without an input shape, as PyTorch does: `in_proj_weight`
    /// Xavier-uniform, then `out_proj` (uniform weight), the biases zeros; then draws the
    /// dropout seed.
    pub fn init(&mut self, rng: &mut StdRng) {
        let e = self.embed_dim;
        self.in_proj_weight = Some(Param::new(
            "in_proj_weight",
            Initializer::GlorotUniform.init(&[3 * e, e], rng),
        ));
        self.in_proj_bias = self
            .use_bias
            .then(|| Param::new("in_proj_bias", ArrayD::zeros(IxDyn(&[3 * e]))));
        self.out_proj.init(rng);
        self.out_proj
            .visit_mut(&mut VisitorMut::new(&mut |name, entry| {
                if let (EntryMut::Param(p), "bias") = (entry, name) {
                    p.assign(ArrayD::zeros(IxDyn(&[e])));
                }
            }));
        Module::<T>::build(&mut self.dropout, &[], rng);
    }

    /// Attends from `query` `[N, L, E]` to `key` `[N, S, E]` and `value` `[N, S, E]`: the
    /// output `[N, L, E]`, and with `options.need_weights` the attention weights averaged
    /// over the heads, `[N, L, S]`. Self-attention when the three are the same `Var` (one
    /// in-projection product), cross-attention otherwise (`key` and `value` the same `Var`
    /// share one product too).
    ///
    /// Panics if the layer is not built, or naming the shapes when the inputs or masks do
    /// not fit (see [`AttendOptions`] for the mask shapes).
    #[track_caller]
    pub fn attend<'t>(
        &'t self,
        query: Var<'t, T>,
        key: Var<'t, T>,
        value: Var<'t, T>,
        options: AttendOptions<'_>,
    ) -> (Var<'t, T>, Option<Var<'t, T>>) {
        let Some(weight) = &self.in_proj_weight else {
            panic!(
                "MultiHeadAttention::attend: layer `{}` is not built; call build(input_shape, \
                 rng) or init(rng) first (Sequential and Model do this)",
                crate::module::layer_name("multi_head_attention")
            )
        };
        let (n, l, s) = self.check_shapes(query, key, value);
        let (e, heads) = (self.embed_dim, self.num_heads);
        let tape = query.tape();
        let weight = tape.param(weight);
        let bias = self.in_proj_bias.as_ref().map(|b| tape.param(b));
        let rows = |start: usize, end: usize| {
            (
                weight.slice(0, start, end),
                bias.map(|b| b.slice(0, start, end)),
            )
        };
        let (q, k, v) = if query.index() == key.index() && key.index() == value.index() {
            let qkv = split_heads::<T, 3>(project(query, weight, bias), heads);
            (qkv[0], qkv[1], qkv[2])
        } else {
            let (wq, bq) = rows(0, e);
            let q = split_heads::<T, 1>(project(query, wq, bq), heads)[0];
            if key.index() == value.index() {
                let (wkv, bkv) = rows(e, 3 * e);
                let kv = split_heads::<T, 2>(project(key, wkv, bkv), heads);
                (q, kv[0], kv[1])
            } else {
                let ((wk, bk), (wv, bv)) = (rows(e, 2 * e), rows(2 * e, 3 * e));
                let k = split_heads::<T, 1>(project(key, wk, bk), heads)[0];
                let v = split_heads::<T, 1>(project(value, wv, bv), heads)[0];
                (q, k, v)
            }
        };
        let mask = self.combined_mask(&options, n, l, s);
        let (out, weights) = attention(
            q,
            k,
            v,
            mask.as_ref(),
            options.is_causal,
            Some(&self.dropout),
        );
        let out = self.out_proj.forward(merge_heads(out));
        (
            out,
            options.need_weights.then(|| weights.mean_axes([1], false)),
        )
    }

    /// `(N, L, S)` of the inputs; panics naming their shapes if they do not fit.
    #[track_caller]
    fn check_shapes(
        &self,
        query: Var<'_, T>,
        key: Var<'_, T>,
        value: Var<'_, T>,
    ) -> (usize, usize, usize) {
        let (qs, ks, vs) = (query.shape(), key.shape(), value.shape());
        let e = self.embed_dim;
        let fits = qs.len() == 3
            && ks.len() == 3
            && vs.len() == 3
            && qs[2] == e
            && ks[2] == e
            && vs[2] == e
            && ks[0] == qs[0]
            && vs[0] == qs[0]
            && vs[1] == ks[1];
        assert!(
            fits,
            "MultiHeadAttention::attend: layer `{}` takes query [N, L, {e}], key [N, S, {e}] \
             and value [N, S, {e}], got query {qs:?}, key {ks:?}, value {vs:?}",
            crate::module::layer_name("multi_head_attention")
        );
        (qs[0], qs[1], ks[1])
    }

    /// `attn_mask` and `key_padding_mask` as one mask broadcasting to `[N, heads, L, S]`.
    #[track_caller]
    fn combined_mask(
        &self,
        options: &AttendOptions<'_>,
        n: usize,
        l: usize,
        s: usize,
    ) -> Option<ArrayD<bool>> {
        let heads = self.num_heads;
        let attn_mask = options.attn_mask.map(|m| match m.shape() {
            [ml, ms] if (*ml, *ms) == (l, s) => m.clone(),
            [nh, ml, ms] if (*nh, *ml, *ms) == (n * heads, l, s) => m
                .to_shape(IxDyn(&[n, heads, l, s]))
                .expect("same length")
                .into_owned(),
            shape => panic!(
                "MultiHeadAttention::attend: layer `{}` takes an attn_mask of shape [L, S] = \
                 [{l}, {s}] or [N * num_heads, L, S] = [{}, {l}, {s}], got {shape:?}",
                crate::module::layer_name("multi_head_attention"),
                n * heads
            ),
        });
        let padding = options.key_padding_mask.map(|m| {
            assert!(
                m.shape() == [n, s],
                "MultiHeadAttention::attend: layer `{}` takes a key_padding_mask of shape \
                 [N, S] = [{n}, {s}], got {:?}",
                crate::module::layer_name("multi_head_attention"),
                m.shape()
            );
            m.to_shape(IxDyn(&[n, 1, 1, s]))
                .expect("same length")
                .into_owned()
        });
        match (attn_mask, padding) {
            (Some(a), Some(p)) => Some(or_broadcast(&a, &p)),
            (a, p) => a.or(p),
        }
    }
}

impl<T: Float> Module<T> for MultiHeadAttention<T> {
    /// The self-attention of `x` `[N, T, E]` (causal if built so), `[N, T, E]`.
    #[track_caller]
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let options = AttendOptions::default().is_causal(self.causal);
        self.attend(x, x, x, options).0
    }

    /// Inputs of shape `[T, E]` (without the batch axis).
    fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
        if !(input_shape.len() == 2 && input_shape[1] == self.embed_dim) {
            let expected = format!("[T, {}]", self.embed_dim);
            return Err(InvalidInputShape::new(
                "multi_head_attention",
                expected,
                input_shape,
            ));
        }
        Ok(())
    }

    /// Creates the parameters ([`init`](MultiHeadAttention::init)); the input is `[T, E]`
    /// and the output keeps its shape. Panics if the last axis is not `E`.
    #[track_caller]
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        if let Err(e) = Module::<T>::check_input_shape(self, input_shape) {
            panic!("MultiHeadAttention::build: {e}")
        }
        self.init(rng);
        input_shape.to_vec()
    }

    /// Self-attention as products, `Softmax` and reshapes (dropout is the identity).
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        super::onnx::multi_head(self, graph, x, self.causal)
    }

    crate::register!(T; param in_proj_weight, param in_proj_bias, module out_proj, module dropout);

    fn kind(&self) -> &'static str {
        "multi_head_attention"
    }
}
