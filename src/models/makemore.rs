//! makemore's character-level language models (karpathy/makemore, `makemore.py`), with its
//! definitions and sizes: `bigram`, `mlp`, `rnn`, `gru`, `bow` and `transformer`, plus an
//! `lstm` of ours on the same frame as `rnn` and `gru`.
//!
//! Every model maps a batch of token rows `[N, T]` (indices stored as floats, `T` at most
//! the block size) to next-token logits `[N, T, vocab_size]`, implements
//! [`Module`], and has makemore's parameter count for the same configuration (the tests
//! check the counts of its README table: 729, 69,147, 11,803, 28,315, 12,827 and 204,544
//! for names.txt's 27 symbols and block size 16). Layers start as PyTorch's do (`Linear`
//! uniform in `±1/√in`, embeddings `N(0, 1)`, layer norms at ones and zeros), as makemore's
//! do.
//!
//! The bigram, bag-of-words and Transformer models export to ONNX (`tapegrad::nn::onnx`),
//! each through a rule of its own written from its layers' rules; the MLP and the
//! recurrent models have none, and an export names them.
//!
//! ```
//! use tapegrad::models::makemore::{Config, Kind, language_model};
//! use tapegrad::nn::Module;
//! use tapegrad::rand::{SeedableRng, rngs::StdRng};
//!
//! let config = Config::new(27, 16);
//! let mut model = language_model::<f32>(Kind::Bigram, &config);
//! model.build(&[16], &mut StdRng::seed_from_u64(0));
//! assert_eq!(model.num_params(), 729);
//! ```

use ndarray::ArrayD;
use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Param, Var};
use tapegrad_nn::Module;
use tapegrad_nn::init::Initializer;
use tapegrad_nn::layers::{
    DecoderBlock, Embedding, LayerNorm, Linear, LstmCell, LstmState, PositionalEmbedding,
};
use tapegrad_nn::module::{Visitor, VisitorMut};
use tapegrad_nn::onnx::{ExportError, OnnxGraph, OnnxValue};

mod onnx;

/// The sizes of a makemore model (`ModelConfig` in `makemore.py`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Symbols, the start/end token included (27 for names.txt).
    pub vocab_size: usize,
    /// The longest row a model reads: the longest word plus one (16 for names.txt).
    pub block_size: usize,
    /// Transformer blocks (makemore's default 4).
    pub n_layer: usize,
    /// Attention heads (4).
    pub n_head: usize,
    /// Embedding width (64).
    pub n_embd: usize,
    /// Hidden width of the MLP, recurrent and BoW models (64).
    pub n_embd2: usize,
}

impl Config {
    /// makemore's defaults for a vocabulary and a block size: 4 layers, 4 heads, widths 64.
    pub fn new(vocab_size: usize, block_size: usize) -> Self {
        Config {
            vocab_size,
            block_size,
            n_layer: 4,
            n_head: 4,
            n_embd: 64,
            n_embd2: 64,
        }
    }
}

/// Which model (makemore's `--type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A table of next-token logits per token.
    Bigram,
    /// Bengio et al. 2003: the embeddings of the previous `block_size` tokens, concatenated,
    /// through a tanh layer.
    Mlp,
    /// makemore's vanilla recurrent cell, `h = tanh(W [x, h] + b)`.
    Rnn,
    /// makemore's GRU cell (on the concatenation `[x, h]`, unlike `nn.GRU`).
    Gru,
    /// An LSTM cell ([`LstmCell`]) on makemore's recurrent
    /// frame, with a learned start state `h` and `c`.
    Lstm,
    /// A causal bag of words: each position averages the embeddings before it, then an MLP.
    Bow,
    /// A GPT-2 style decoder-only Transformer.
    Transformer,
}

impl Kind {
    /// All kinds, in makemore's order (then `lstm`).
    pub const ALL: [Kind; 7] = [
        Kind::Bigram,
        Kind::Mlp,
        Kind::Rnn,
        Kind::Gru,
        Kind::Bow,
        Kind::Transformer,
        Kind::Lstm,
    ];

    /// makemore's name for the kind (`"transformer"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bigram => "bigram",
            Kind::Mlp => "mlp",
            Kind::Rnn => "rnn",
            Kind::Gru => "gru",
            Kind::Lstm => "lstm",
            Kind::Bow => "bow",
            Kind::Transformer => "transformer",
        }
    }

    /// The kind makemore names `name` (`"transformer"`, ...; `"lstm"` too), if any.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// How many previous tokens the model reads at most (`get_block_size`): 1 for the
    /// bigram, the block size otherwise.
    pub fn context(self, config: &Config) -> usize {
        match self {
            Kind::Bigram => 1,
            _ => config.block_size,
        }
    }
}

/// A makemore model of `kind`, not built: build it with `build(&[config.block_size], rng)`.
pub fn language_model<T: Float>(kind: Kind, config: &Config) -> Box<dyn Module<T> + Send + Sync> {
    match kind {
        Kind::Bigram => Box::new(Bigram::new(config)),
        Kind::Mlp => Box::new(Mlp::new(config)),
        Kind::Rnn | Kind::Gru | Kind::Lstm => Box::new(Recurrent::new(kind, config)),
        Kind::Bow => Box::new(Bow::new(config)),
        Kind::Transformer => Box::new(Transformer::new(config)),
    }
}

/// The token indices of a `[N, T]` batch and its two sizes.
#[track_caller]
fn tokens<T: Float>(x: Var<'_, T>) -> (Vec<usize>, usize, usize) {
    let shape = x.shape();
    assert!(
        shape.len() == 2,
        "makemore: a model takes token rows [N, T], got shape {shape:?}"
    );
    let indices = x
        .value()
        .iter()
        .map(|&v| Float::to_f64(v) as usize)
        .collect();
    (indices, shape[0], shape[1])
}

/// makemore's `Bigram`: a `[V, V]` table of logits, row `i` for the token after `i`,
/// starting at zeros (an embedding whose vectors are the logits).
pub struct Bigram<T: Float> {
    logits: Embedding<T>,
}

impl<T: Float> Bigram<T> {
    /// A zero table for `config.vocab_size` tokens.
    pub fn new(config: &Config) -> Self {
        Bigram {
            logits: Embedding::new(config.vocab_size, config.vocab_size)
                .initializer(Initializer::Zeros),
        }
    }
}

impl<T: Float> Module<T> for Bigram<T> {
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        self.logits.forward(x)
    }
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        self.logits.build(input_shape, rng)
    }
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        onnx::bigram(self, graph, x)
    }
    tapegrad_nn::register!(T; module logits);
    fn kind(&self) -> &'static str {
        "bigram"
    }
}

/// makemore's `MLP`: for each position, the embeddings of it and the `block_size − 1`
/// tokens before it (a blank token, index `V`, before the row's start) concatenated, then
/// `Linear(block_size·n_embd, n_embd2)` → tanh → `Linear(n_embd2, V)`.
pub struct Mlp<T: Float> {
    block_size: usize,
    blank: usize,
    wte: Embedding<T>,
    hidden: Linear<T>,
    head: Linear<T>,
}

impl<T: Float> Mlp<T> {
    /// The model for `config`.
    pub fn new(config: &Config) -> Self {
        Mlp {
            block_size: config.block_size,
            blank: config.vocab_size,
            wte: Embedding::new(config.vocab_size + 1, config.n_embd),
            hidden: Linear::new(config.block_size * config.n_embd, config.n_embd2),
            head: Linear::new(config.n_embd2, config.vocab_size),
        }
    }
}

impl<T: Float> Module<T> for Mlp<T> {
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let (tokens, n, t) = tokens(x);
        let k = self.block_size;
        // Context `[N, T, k]`: entry j of position i is the token j places before i.
        let mut context = ArrayD::from_elem(vec![n, t, k], T::from_f64(self.blank as f64));
        for row in 0..n {
            for i in 0..t {
                for j in 0..=i.min(k - 1) {
                    context[[row, i, j]] = T::from_f64(tokens[row * t + i - j] as f64);
                }
            }
        }
        let embedded = self.wte.forward(x.tape().constant(context)); // [N, T, k, n_embd]
        let flat = embedded.reshape(&[n, t, k * self.wte.dim()]);
        self.head.forward(self.hidden.forward(flat).tanh())
    }
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        self.wte.build(input_shape, rng);
        self.hidden.init(rng);
        self.head.init(rng);
        vec![input_shape[0], self.head.out_features()]
    }
    tapegrad_nn::register!(T; module wte, module hidden as "mlp.0", module head as "mlp.2");
    fn kind(&self) -> &'static str {
        "mlp"
    }
}

/// The cell of a [`Recurrent`] model: makemore's two (on the concatenation `[x, h]`) or an
/// LSTM cell.
// One cell per model, built once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Cell<T: Float> {
    /// `h' = tanh(W [x, h] + b)`.
    Rnn { xh_to_h: Linear<T> },
    /// `r = σ(W_r [x, h])`, `h̄ = tanh(W_h̄ [x, r ⊙ h])`, `z = σ(W_z [x, h])`,
    /// `h' = (1 − z) ⊙ h + z ⊙ h̄` (each `W` with a bias).
    Gru {
        xh_to_z: Linear<T>,
        xh_to_r: Linear<T>,
        xh_to_hbar: Linear<T>,
    },
    /// PyTorch's `LSTMCell` (gates i, f, g, o).
    Lstm(LstmCell<T>),
}

/// makemore's `RNN` frame: token embeddings, a learned start state, a cell run over the
/// row, and `Linear(n_embd2, V)` on every step's state.
pub struct Recurrent<T: Float> {
    kind: Kind,
    n_embd2: usize,
    wte: Embedding<T>,
    start: Option<Param<T>>,
    start_c: Option<Param<T>>,
    cell: Cell<T>,
    head: Linear<T>,
}

impl<T: Float> Recurrent<T> {
    /// The `rnn`, `gru` or `lstm` model for `config`. Panics for another kind.
    #[track_caller]
    pub fn new(kind: Kind, config: &Config) -> Self {
        let (e, h) = (config.n_embd, config.n_embd2);
        let cell = match kind {
            Kind::Rnn => Cell::Rnn {
                xh_to_h: Linear::new(e + h, h),
            },
            Kind::Gru => Cell::Gru {
                xh_to_z: Linear::new(e + h, h),
                xh_to_r: Linear::new(e + h, h),
                xh_to_hbar: Linear::new(e + h, h),
            },
            Kind::Lstm => Cell::Lstm(LstmCell::new(e, h)),
            other => panic!("Recurrent::new: `{}` is not a recurrent kind", other.name()),
        };
        Recurrent {
            kind,
            n_embd2: h,
            wte: Embedding::new(config.vocab_size, e),
            start: None,
            start_c: None,
            cell,
            head: Linear::new(h, config.vocab_size),
        }
    }
}

impl<T: Float> Module<T> for Recurrent<T> {
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let tape = x.tape();
        let shape = x.shape();
        let (n, t) = (shape[0], shape[1]);
        let emb = self.wte.forward(x); // [N, T, n_embd]
        let start = |p: &'t Option<Param<T>>| {
            tape.param(
                p.as_ref()
                    .expect("Recurrent::forward: the model is not built"),
            )
            .broadcast_to(&[n, self.n_embd2])
        };
        let mut h = start(&self.start);
        let mut c = match self.kind {
            Kind::Lstm => Some(start(&self.start_c)),
            _ => None,
        };
        let mut hiddens = Vec::with_capacity(t);
        for i in 0..t {
            let xt = emb.slice(1, i, i + 1).reshape(&[n, emb.shape()[2]]);
            h = match &self.cell {
                Cell::Rnn { xh_to_h } => xh_to_h.forward(Var::concat(&[xt, h], 1)).tanh(),
                Cell::Gru {
                    xh_to_z,
                    xh_to_r,
                    xh_to_hbar,
                } => {
                    let xh = Var::concat(&[xt, h], 1);
                    let r = xh_to_r.forward(xh).sigmoid();
                    let hbar = xh_to_hbar.forward(Var::concat(&[xt, r * h], 1)).tanh();
                    let z = xh_to_z.forward(xh).sigmoid();
                    h + z * (hbar - h)
                }
                Cell::Lstm(cell) => {
                    let state = LstmState {
                        h,
                        c: c.expect("the LSTM's cell state"),
                    };
                    let next = cell.step(xt, state);
                    c = Some(next.c);
                    next.h
                }
            };
            hiddens.push(h);
        }
        self.head.forward(Var::stack(&hiddens, 1))
    }
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        let zeros = || ArrayD::zeros(vec![1, self.n_embd2]);
        self.start = Some(Param::new("start", zeros()));
        if self.kind == Kind::Lstm {
            self.start_c = Some(Param::new("start_c", zeros()));
        }
        self.wte.build(input_shape, rng);
        match &mut self.cell {
            Cell::Rnn { xh_to_h } => xh_to_h.init(rng),
            Cell::Gru {
                xh_to_z,
                xh_to_r,
                xh_to_hbar,
            } => {
                xh_to_z.init(rng);
                xh_to_r.init(rng);
                xh_to_hbar.init(rng);
            }
            Cell::Lstm(cell) => {
                cell.build(&[self.wte.dim()], rng);
            }
        }
        self.head.init(rng);
        vec![input_shape[0], self.head.out_features()]
    }
    fn visit<'a>(&'a self, v: &mut Visitor<'a, '_, T>) {
        v.param("start", self.start.as_ref());
        v.param("start_c", self.start_c.as_ref());
        v.module("wte", &self.wte);
        match &self.cell {
            Cell::Rnn { xh_to_h } => v.module("cell.xh_to_h", xh_to_h),
            Cell::Gru {
                xh_to_z,
                xh_to_r,
                xh_to_hbar,
            } => {
                v.module("cell.xh_to_z", xh_to_z);
                v.module("cell.xh_to_r", xh_to_r);
                v.module("cell.xh_to_hbar", xh_to_hbar);
            }
            Cell::Lstm(cell) => v.module("cell", cell),
        }
        v.module("lm_head", &self.head);
    }
    fn visit_mut<'a>(&'a mut self, v: &mut VisitorMut<'a, '_, T>) {
        v.param("start", self.start.as_mut());
        v.param("start_c", self.start_c.as_mut());
        v.module("wte", &mut self.wte);
        match &mut self.cell {
            Cell::Rnn { xh_to_h } => v.module("cell.xh_to_h", xh_to_h),
            Cell::Gru {
                xh_to_z,
                xh_to_r,
                xh_to_hbar,
            } => {
                v.module("cell.xh_to_z", xh_to_z);
                v.module("cell.xh_to_r", xh_to_r);
                v.module("cell.xh_to_hbar", xh_to_hbar);
            }
            Cell::Lstm(cell) => v.module("cell", cell),
        }
        v.module("lm_head", &mut self.head);
    }
    fn kind(&self) -> &'static str {
        self.kind.name()
    }
}

/// makemore's `BoW`: token plus position embeddings, one block `x + cbow(x)` then
/// `x + Linear(tanh(Linear(x)))`, and `Linear(n_embd, V)`. `cbow` averages each position's
/// vector with those before it (makemore's softmax of a causally masked zero matrix: a
/// constant lower-triangular averaging matrix).
pub struct Bow<T: Float> {
    wte: Embedding<T>,
    wpe: PositionalEmbedding<T>,
    c_fc: Linear<T>,
    c_proj: Linear<T>,
    head: Linear<T>,
}

impl<T: Float> Bow<T> {
    /// The model for `config`.
    pub fn new(config: &Config) -> Self {
        Bow {
            wte: Embedding::new(config.vocab_size, config.n_embd),
            wpe: PositionalEmbedding::new(config.block_size, config.n_embd),
            c_fc: Linear::new(config.n_embd, config.n_embd2),
            c_proj: Linear::new(config.n_embd2, config.n_embd),
            head: Linear::new(config.n_embd, config.vocab_size),
        }
    }
}

/// `[T, T]`: row `i` is `1 / (i + 1)` on columns `0..=i`, zero after.
fn causal_average<T: Float>(t: usize) -> ArrayD<T> {
    ArrayD::from_shape_fn(vec![t, t], |ix| {
        if ix[1] <= ix[0] {
            T::from_f64(1.0 / (ix[0] + 1) as f64)
        } else {
            T::zero()
        }
    })
}

impl<T: Float> Module<T> for Bow<T> {
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let tape = x.tape();
        let t = x.shape()[1];
        let x = self.wpe.forward(self.wte.forward(x)); // [N, T, n_embd]
        let x = x + tape.constant(causal_average(t)).matmul(x);
        let x = x + self.c_proj.forward(self.c_fc.forward(x).tanh());
        self.head.forward(x)
    }
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        self.wte.build(input_shape, rng);
        self.wpe.init(rng);
        self.c_fc.init(rng);
        self.c_proj.init(rng);
        self.head.init(rng);
        vec![input_shape[0], self.head.out_features()]
    }
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        onnx::bow(self, graph, x)
    }
    tapegrad_nn::register!(T; module wte, module wpe, module c_fc as "context_block.mlp.c_fc", module c_proj as "context_block.mlp.c_proj", module head as "lm_head");
    fn kind(&self) -> &'static str {
        "bow"
    }
}

/// makemore's `Transformer` (GPT-2's shape): token and position embeddings, `n_layer`
/// causal [`DecoderBlock`]s, a final layer norm and
/// `Linear(n_embd, V)` without bias.
pub struct Transformer<T: Float> {
    wte: Embedding<T>,
    wpe: PositionalEmbedding<T>,
    blocks: Vec<DecoderBlock<T>>,
    ln_f: LayerNorm<T>,
    head: Linear<T>,
}

impl<T: Float> Transformer<T> {
    /// The model for `config`.
    pub fn new(config: &Config) -> Self {
        Transformer {
            wte: Embedding::new(config.vocab_size, config.n_embd),
            wpe: PositionalEmbedding::new(config.block_size, config.n_embd),
            blocks: (0..config.n_layer)
                .map(|_| DecoderBlock::new(config.n_embd, config.n_head))
                .collect(),
            ln_f: LayerNorm::new(),
            head: Linear::new(config.n_embd, config.vocab_size).bias_enabled(false),
        }
    }
}

impl<T: Float> Module<T> for Transformer<T> {
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let mut x = self.wpe.forward(self.wte.forward(x));
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.head.forward(self.ln_f.forward(x))
    }
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        let mut shape = self.wte.build(input_shape, rng);
        self.wpe.init(rng);
        for block in &mut self.blocks {
            shape = block.build(&shape, rng);
        }
        self.ln_f.build(&shape, rng);
        self.head.init(rng);
        vec![input_shape[0], self.head.out_features()]
    }
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        onnx::transformer(self, graph, x)
    }
    tapegrad_nn::register!(T; module wte, module wpe, modules blocks as "h", module ln_f, module head as "lm_head");
    fn kind(&self) -> &'static str {
        "transformer"
    }
}
