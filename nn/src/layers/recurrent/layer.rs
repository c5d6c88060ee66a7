//! The stacked recurrent layers [`Rnn`], [`Lstm`] and [`Gru`]: PyTorch's `nn.RNN`,
//! `nn.LSTM` and `nn.GRU`, with Keras' `return_sequences` for the one-tensor `forward`.

use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Var};

use super::params::{CellKind, Nonlinearity};
use super::stacked::{Initial, Stacked};
use super::state::LstmState;
use crate::module::{InvalidInputShape, Module, Visitor, VisitorMut};
use crate::onnx::{ExportError, OnnxGraph, OnnxValue};

/// The builder methods, accessors and [`Module`] impl the three layers share; `$kind` is the
/// layer's kind (its panics and its default name in a `Sequential`).
macro_rules! stacked_common {
    ($layer:ident, $kind:literal) => {
        impl<T: Float> $layer<T> {
            /// The number of stacked layers (default 1); layer `k > 0` reads the `D·H`
            /// outputs of layer `k − 1`. Set before building. Panics if 0.
            #[track_caller]
            pub fn num_layers(mut self, num_layers: usize) -> Self {
                assert!(
                    num_layers > 0,
                    "{}::num_layers: needs at least 1 layer",
                    stringify!($layer)
                );
                self.inner.num_layers = num_layers;
                self.inner.cells.clear();
                self
            }

            /// Whether each layer also runs over the sequence backwards (default `false`);
            /// the directions' outputs are concatenated on the last axis (`D = 2`). Set
            /// before building.
            pub fn bidirectional(mut self, bidirectional: bool) -> Self {
                self.inner.bidirectional = bidirectional;
                self.inner.cells.clear();
                self
            }

            /// Whether inputs and output sequences are `[N, T, ·]` (default `true`, so the
            /// batch comes first as [`Module`] requires) or `[T, N, ·]` (`false`,
            /// **PyTorch's default**). States are `[num_layers·D, N, H]` either way.
            pub fn batch_first(mut self, batch_first: bool) -> Self {
                self.inner.batch_first = batch_first;
                self
            }

            /// Whether every cell has the biases `bias_ih` and `bias_hh` (default `true`).
            /// Set before building.
            pub fn bias(mut self, bias: bool) -> Self {
                self.inner.bias = bias;
                self.inner.cells.clear();
                self
            }

            /// What [`forward`](Module::forward) returns (Keras' name): `false` (the
            /// default, as in Keras) gives the last step's output `[N, D·H]` (with two
            /// directions, the forward direction's final state joined with the reverse
            /// direction's, which is its output at `t = 0`); `true` gives the whole output
            /// sequence `[N, T, D·H]` (`[T, N, D·H]` when not batch first).
            pub fn return_sequences(mut self, return_sequences: bool) -> Self {
                self.inner.return_sequences = return_sequences;
                self
            }

            /// The length of the input's last axis.
            pub fn input_size(&self) -> usize {
                self.inner.input_size
            }

            /// The length of each direction's state, `H`.
            pub fn hidden_size(&self) -> usize {
                self.inner.hidden_size
            }

            /// The number of stacked layers.
            pub fn layers(&self) -> usize {
                self.inner.num_layers
            }

            /// 2 when bidirectional, else 1: the `D` of the shapes.
            pub fn directions(&self) -> usize {
                self.inner.directions()
            }

            /// Whether [`build`](Module::build) (or [`init`](Self::init)) has created the
            /// parameters.
            pub fn is_built(&self) -> bool {
                !self.inner.cells.is_empty()
            }

            /// Creates the parameters without an input shape (the layer knows its sizes),
            /// all uniform in `±1/√hidden_size` as PyTorch draws them, in its order.
            pub fn init(&mut self, rng: &mut StdRng) {
                self.inner.init(rng);
            }
        }

        impl<T: Float> Module<T> for $layer<T> {
            /// `x` is `[N, T, I]` (`[T, N, I]` when not batch first), from the zero state;
            /// returns the last step's output `[N, D·H]`, or with
            /// [`return_sequences`](Self::return_sequences) the whole output sequence.
            #[track_caller]
            fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
                self.inner.forward(x)
            }

            /// Inputs of shape `[T, I]` (`[N, I]` when not batch first), without the first
            /// axis.
            fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
                self.inner.check_input_shape(input_shape)
            }

            /// Creates the parameters. The input shape (without the first axis) is `[T, I]`
            /// (`[N, I]` when not batch first); the output is `[D·H]`, or with
            /// `return_sequences` `[T, D·H]` (`[N, D·H]`).
            #[track_caller]
            fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
                self.inner.build(input_shape, rng)
            }

            fn visit<'a>(&'a self, v: &mut Visitor<'a, '_, T>) {
                self.inner.visit(v);
            }

            fn visit_mut<'a>(&'a mut self, v: &mut VisitorMut<'a, '_, T>) {
                self.inner.visit_mut(v);
            }

            /// One ONNX recurrent node per layer (see the module's documentation).
            fn export_onnx(
                &self,
                graph: &mut OnnxGraph<T>,
                x: &OnnxValue,
            ) -> Result<OnnxValue, ExportError> {
                super::onnx::export_stacked(&self.inner, graph, x)
            }

            fn kind(&self) -> &'static str {
                $kind
            }
        }
    };
}

/// The typed methods of the layers whose state is `h` alone ([`Rnn`], [`Gru`]).
macro_rules! hidden_state_methods {
    ($layer:ident) => {
        impl<T: Float> $layer<T> {
            /// PyTorch's `forward(input, h0)`: runs over `x` (`[N, T, I]`, or `[T, N, I]`
            /// when not batch first) from `h0` (`[num_layers·D, N, H]`, zeros if `None`).
            /// Returns the output sequence (`[N, T, D·H]` or `[T, N, D·H]`, regardless of
            /// [`return_sequences`](Self::return_sequences)) and `h_n`
            /// (`[num_layers·D, N, H]`, layer by layer, forward direction then reverse).
            /// Panics on other shapes or if the layer is not built.
            #[track_caller]
            pub fn forward_with_state<'t>(
                &'t self,
                x: Var<'t, T>,
                h0: Option<Var<'t, T>>,
            ) -> (Var<'t, T>, Var<'t, T>) {
                self.forward_padded_inner(x, None, h0)
            }

            /// [`forward_with_state`](Self::forward_with_state) over a batch of sequences of
            /// different lengths padded to `T`: row `b` has `lengths[b]` valid steps (each
            /// in `1..=T`), the rest are padding, which changes nothing (as PyTorch's
            /// `pack_padded_sequence` then `pad_packed_sequence`): the output there is zero,
            /// `h_n` is each row's state after its last valid step, and the reverse
            /// direction reads each row's valid steps backwards. Padding values must be
            /// finite (they are multiplied by 0).
            #[track_caller]
            pub fn forward_padded<'t>(
                &'t self,
                x: Var<'t, T>,
                lengths: &[usize],
                h0: Option<Var<'t, T>>,
            ) -> (Var<'t, T>, Var<'t, T>) {
                self.forward_padded_inner(x, Some(lengths), h0)
            }

            #[track_caller]
            fn forward_padded_inner<'t>(
                &'t self,
                x: Var<'t, T>,
                lengths: Option<&[usize]>,
                h0: Option<Var<'t, T>>,
            ) -> (Var<'t, T>, Var<'t, T>) {
                let initial = Initial { h: h0, c: None };
                let run = self.inner.run(x, lengths, initial, true);
                (
                    run.output.expect("the output is kept"),
                    Var::stack(&run.h, 0),
                )
            }
        }
    };
}

/// A stacked Elman RNN, PyTorch's `nn.RNN`: each layer and direction computes
/// `h_t = act(x_t · W_ihᵀ + b_ih + h_{t−1} · W_hhᵀ + b_hh)` with `act` `tanh` (default)
/// or `relu` ([`Nonlinearity`]).
///
/// Parameters carry PyTorch's state-dict names and layouts, in its order:
/// `weight_ih_l{k}` `[H, I]` (`[H, D·H]` for `k > 0`), `weight_hh_l{k}` `[H, H]`,
/// `bias_ih_l{k}`, `bias_hh_l{k}` `[H]`, each followed, when bidirectional, by its
/// `..._l{k}_reverse` twin; all uniform in `±1/√H`. Builders: [`num_layers`](Self::num_layers),
/// [`bidirectional`](Self::bidirectional), [`batch_first`](Self::batch_first) (default
/// `true` here, `false` in PyTorch), [`bias`](Self::bias),
/// [`nonlinearity`](Self::nonlinearity), [`return_sequences`](Self::return_sequences).
///
/// `forward(x)` is the one-tensor path for [`Sequential`](super::super::Sequential) (the
/// last output, or the sequence); [`forward_with_state`](Self::forward_with_state) and
/// [`forward_padded`](Self::forward_padded) give PyTorch's `(output, h_n)`.
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::{Nonlinearity, Rnn};
///
/// let mut rnn = Rnn::<f64>::new(3, 4).nonlinearity(Nonlinearity::Relu).bidirectional(true);
/// rnn.init(&mut StdRng::seed_from_u64(0));
/// let tape = Tape::new();
/// let x = tape.constant(ndarray::Array3::<f64>::ones((2, 5, 3)).into_dyn());
/// // The second row has 3 valid steps, then padding.
/// let (output, h_n) = rnn.forward_padded(x, &[5, 3], None);
/// assert_eq!((output.shape().to_vec(), h_n.shape().to_vec()), (vec![2, 5, 8], vec![2, 2, 4]));
/// assert!(output.to_array().slice(ndarray::s![1, 3.., ..]).iter().all(|&v| v == 0.0));
/// ```
#[derive(Clone, Debug)]
pub struct Rnn<T: Float> {
    inner: Stacked<T>,
}

impl<T: Float> Rnn<T> {
    /// One `tanh` layer from `input_size` features to states of `hidden_size`: one
    /// direction, batch first, with biases, returning the last step. Panics if either size
    /// is 0.
    #[track_caller]
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        Rnn {
            inner: Stacked::new(CellKind::Rnn(Nonlinearity::Tanh), input_size, hidden_size),
        }
    }

    /// The nonlinearity (default [`Nonlinearity::Tanh`]). Set before building.
    pub fn nonlinearity(mut self, nonlinearity: Nonlinearity) -> Self {
        self.inner.kind = CellKind::Rnn(nonlinearity);
        self.inner.cells.clear();
        self
    }
}

stacked_common!(Rnn, "rnn");
hidden_state_methods!(Rnn);

/// A stacked long short-term memory, PyTorch's `nn.LSTM`: each layer and direction computes,
/// with `gates = x_t · W_ihᵀ + b_ih + h_{t−1} · W_hhᵀ + b_hh` split in blocks `i, f, g, o`,
/// `c_t = σ(f) ⊙ c_{t−1} + σ(i) ⊙ tanh(g)` and `h_t = σ(o) ⊙ tanh(c_t)`.
///
/// Parameters carry PyTorch's state-dict names and layouts, in its order:
/// `weight_ih_l{k}` `[4H, I]` (`[4H, D·H]` for `k > 0`), `weight_hh_l{k}` `[4H, H]`,
/// `bias_ih_l{k}`, `bias_hh_l{k}` `[4H]`, each followed, when bidirectional, by its
/// `..._l{k}_reverse` twin; all uniform in `±1/√H`. Builders as [`Rnn`]'s (without the
/// nonlinearity); `batch_first` is `true` by default here, `false` in PyTorch.
///
/// Inside a [`Sequential`](super::super::Sequential), `forward(x)` is Keras'
/// `LSTM(return_sequences=...)`:
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::{Dense, Lstm, Sequential};
/// use tapegrad_nn::Module;
///
/// // [N, T=7, 3] -> the last step's [N, 2·8] -> [N, 1].
/// let model = Sequential::<f64>::new()
///     .add(Lstm::new(3, 8).bidirectional(true))
///     .add(Dense::new(1))
///     .with_input_shape(&[7, 3]);
/// let names: Vec<String> = model.named_params().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names[..5], ["lstm_0.weight_ih_l0", "lstm_0.weight_hh_l0", "lstm_0.bias_ih_l0",
///                         "lstm_0.bias_hh_l0", "lstm_0.weight_ih_l0_reverse"]);
/// let tape = Tape::new();
/// let x = tape.constant(ndarray::Array3::<f64>::zeros((4, 7, 3)).into_dyn());
/// assert_eq!(model.forward(x).shape(), vec![4, 1]);
/// ```
///
/// [`forward_with_state`](Self::forward_with_state) is PyTorch's `forward(input, (h0, c0))`:
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::{Lstm, LstmState};
///
/// let mut lstm = Lstm::<f64>::new(3, 4).num_layers(2).batch_first(false);
/// lstm.init(&mut StdRng::seed_from_u64(0));
/// let tape = Tape::new();
/// let x = tape.constant(ndarray::Array3::<f64>::ones((5, 2, 3)).into_dyn()); // [T, N, I]
/// let (output, last) = lstm.forward_with_state(x, None);
/// assert_eq!(output.shape(), vec![5, 2, 4]);
/// assert_eq!((last.h.shape().to_vec(), last.c.shape().to_vec()), (vec![2, 2, 4], vec![2, 2, 4]));
/// // Continue from where the sequence ended.
/// let (_, next) = lstm.forward_with_state(x, Some(last));
/// assert_eq!(next.h.shape(), vec![2, 2, 4]);
/// # let _: LstmState<f64> = next;
/// ```
#[derive(Clone, Debug)]
pub struct Lstm<T: Float> {
    inner: Stacked<T>,
}

impl<T: Float> Lstm<T> {
    /// One layer from `input_size` features to states of `hidden_size`: one direction,
    /// batch first, with biases, returning the last step. Panics if either size is 0.
    #[track_caller]
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        Lstm {
            inner: Stacked::new(CellKind::Lstm, input_size, hidden_size),
        }
    }

    /// PyTorch's `forward(input, (h0, c0))`: runs over `x` (`[N, T, I]`, or `[T, N, I]` when
    /// not batch first) from `initial` (`h` and `c` of shape `[num_layers·D, N, H]`, zeros
    /// if `None`). Returns the output sequence (`[N, T, D·H]` or `[T, N, D·H]`, regardless of
    /// [`return_sequences`](Self::return_sequences)) and the final state
    /// (`h_n`, `c_n` of shape `[num_layers·D, N, H]`, layer by layer, forward direction then
    /// reverse). Panics on other shapes or if the layer is not built.
    #[track_caller]
    pub fn forward_with_state<'t>(
        &'t self,
        x: Var<'t, T>,
        initial: Option<LstmState<'t, T>>,
    ) -> (Var<'t, T>, LstmState<'t, T>) {
        self.forward_padded_inner(x, None, initial)
    }

    /// [`forward_with_state`](Self::forward_with_state) over a batch of sequences of
    /// different lengths padded to `T`: row `b` has `lengths[b]` valid steps (each in
    /// `1..=T`), the rest are padding, which changes nothing (as PyTorch's
    /// `pack_padded_sequence` then `pad_packed_sequence`): the output there is zero, the
    /// final state is each row's state after its last valid step, and the reverse direction
    /// reads each row's valid steps backwards. Padding values must be finite (they are
    /// multiplied by 0).
    #[track_caller]
    pub fn forward_padded<'t>(
        &'t self,
        x: Var<'t, T>,
        lengths: &[usize],
        initial: Option<LstmState<'t, T>>,
    ) -> (Var<'t, T>, LstmState<'t, T>) {
        self.forward_padded_inner(x, Some(lengths), initial)
    }

    #[track_caller]
    fn forward_padded_inner<'t>(
        &'t self,
        x: Var<'t, T>,
        lengths: Option<&[usize]>,
        initial: Option<LstmState<'t, T>>,
    ) -> (Var<'t, T>, LstmState<'t, T>) {
        let initial = Initial {
            h: initial.map(|s| s.h),
            c: initial.map(|s| s.c),
        };
        let run = self.inner.run(x, lengths, initial, true);
        let state = LstmState {
            h: Var::stack(&run.h, 0),
            c: Var::stack(&run.c, 0),
        };
        (run.output.expect("the output is kept"), state)
    }
}

stacked_common!(Lstm, "lstm");

/// A stacked gated recurrent unit, PyTorch's `nn.GRU`: each layer and direction computes,
/// with the input part `x_t · W_ihᵀ + b_ih` and the hidden part `h_{t−1} · W_hhᵀ + b_hh`
/// each split in blocks `r, z, n`, `r = σ(x_r + h_r)`, `z = σ(x_z + h_z)`,
/// `n = tanh(x_n + r ⊙ h_n)` and `h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}`.
///
/// Parameters carry PyTorch's state-dict names and layouts, in its order:
/// `weight_ih_l{k}` `[3H, I]` (`[3H, D·H]` for `k > 0`), `weight_hh_l{k}` `[3H, H]`,
/// `bias_ih_l{k}`, `bias_hh_l{k}` `[3H]`, each followed, when bidirectional, by its
/// `..._l{k}_reverse` twin; all uniform in `±1/√H`. Builders as [`Rnn`]'s (without the
/// nonlinearity); `batch_first` is `true` by default here, `false` in PyTorch.
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::Gru;
/// use tapegrad_nn::Module;
///
/// let mut gru = Gru::<f64>::new(3, 4).return_sequences(true);
/// assert_eq!(gru.build(&[6, 3], &mut StdRng::seed_from_u64(0)), vec![6, 4]);
/// let tape = Tape::new();
/// let x = tape.constant(ndarray::Array3::<f64>::ones((2, 6, 3)).into_dyn());
/// let (output, h_n) = gru.forward_with_state(x, None);
/// assert_eq!(output.to_array(), gru.forward(x).to_array());
/// assert_eq!(h_n.shape(), vec![1, 2, 4]);
/// ```
#[derive(Clone, Debug)]
pub struct Gru<T: Float> {
    inner: Stacked<T>,
}

impl<T: Float> Gru<T> {
    /// One layer from `input_size` features to states of `hidden_size`: one direction,
    /// batch first, with biases, returning the last step. Panics if either size is 0.
    #[track_caller]
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        Gru {
            inner: Stacked::new(CellKind::Gru, input_size, hidden_size),
        }
    }
}

stacked_common!(Gru, "gru");
hidden_state_methods!(Gru);
