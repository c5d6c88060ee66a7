//! The three cells, one time step each, for loops written by hand (candle-nn's style):
//! [`RnnCell`], [`LstmCell`], [`GruCell`], with PyTorch's `RNNCell`/`LSTMCell`/`GRUCell`
//! parameter names and layouts.

use ndarray::ArrayD;
use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Tape, Var};

use super::params::{CellKind, CellParams, Nonlinearity};
use super::state::LstmState;
use crate::module::{InvalidInputShape, Module, Visitor, VisitorMut};
use crate::onnx::{ExportError, OnnxGraph, OnnxValue};

/// The methods and the [`Module`] impl the three cells share; `$kind` is the layer's kind
/// (its panics and its default name in a `Sequential`), `$zero_step` the private method
/// that runs one step from the zero state (the cell's `forward`).
macro_rules! cell_common {
    ($cell:ident, $kind:literal, $zero_step:ident) => {
        impl<T: Float> $cell<T> {
            /// Whether the cell has the biases `bias_ih` and `bias_hh` (default `true`).
            /// Set before building.
            pub fn bias(mut self, bias: bool) -> Self {
                self.params = CellParams::new(
                    self.params.kind,
                    self.params.input_size,
                    self.params.hidden_size,
                    bias,
                );
                self
            }

            /// The length of the input's last axis.
            pub fn input_size(&self) -> usize {
                self.params.input_size
            }

            /// The length of the state's last axis.
            pub fn hidden_size(&self) -> usize {
                self.params.hidden_size
            }

            /// Whether [`build`](Module::build) (or [`init`](Self::init)) has created the
            /// parameters.
            pub fn is_built(&self) -> bool {
                self.params.is_built()
            }

            /// Creates the parameters without an input shape (the cell knows its sizes),
            /// all uniform in `±1/√hidden_size` as PyTorch draws them, in the order
            /// `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`.
            pub fn init(&mut self, rng: &mut StdRng) {
                self.params.init(rng);
            }

            /// Zeros of shape `[batch, hidden_size]` on `tape`.
            pub fn zero_hidden<'t>(&self, tape: &'t Tape<'t, T>, batch: usize) -> Var<'t, T> {
                tape.constant(ArrayD::zeros(vec![batch, self.params.hidden_size]))
            }

            #[track_caller]
            fn check_step_input(&self, x: &Var<'_, T>, h: &Var<'_, T>) {
                let (xs, hs) = (x.shape(), h.shape());
                assert!(
                    xs.len() == 2
                        && xs[1] == self.params.input_size
                        && hs == [xs[0], self.params.hidden_size],
                    "{}::step: layer `{}` takes x of shape [N, {}] and a state of shape \
                     [N, {}], got {xs:?} and {hs:?}",
                    stringify!($cell),
                    crate::module::layer_name($kind),
                    self.params.input_size,
                    self.params.hidden_size
                );
            }
        }

        impl<T: Float> Module<T> for $cell<T> {
            /// One step from the zero state: `x` is `[N, input_size]`, the output the new
            /// hidden state `[N, hidden_size]`. Loops over time call `step` instead.
            #[track_caller]
            fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
                self.$zero_step(x)
            }

            /// Inputs of shape `[input_size]` (without the batch axis).
            fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
                if input_shape != [self.params.input_size] {
                    let expected = format!("[{}]", self.params.input_size);
                    return Err(InvalidInputShape::new($kind, expected, input_shape));
                }
                Ok(())
            }

            /// Creates the parameters; the input shape (without the batch axis) must be
            /// `[input_size]`, the output is `[hidden_size]`.
            #[track_caller]
            fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
                if let Err(e) = Module::<T>::check_input_shape(self, input_shape) {
                    panic!("{}::build: {e}", stringify!($cell))
                }
                self.params.init(rng);
                vec![self.params.hidden_size]
            }

            fn visit<'a>(&'a self, v: &mut Visitor<'a, '_, T>) {
                self.params.visit(v, "");
            }

            fn visit_mut<'a>(&'a mut self, v: &mut VisitorMut<'a, '_, T>) {
                self.params.visit_mut(v, "");
            }

            fn export_onnx(
                &self,
                graph: &mut OnnxGraph<T>,
                x: &OnnxValue,
            ) -> Result<OnnxValue, ExportError> {
                super::onnx::export_cell(&self.params, graph, x)
            }

            fn kind(&self) -> &'static str {
                $kind
            }
        }
    };
}

/// Panics unless both sizes are at least 1, naming the cell.
#[track_caller]
fn check_sizes(cell: &str, input_size: usize, hidden_size: usize) {
    assert!(
        input_size > 0 && hidden_size > 0,
        "{cell}::new: input_size and hidden_size must be at least 1, got {input_size} and \
         {hidden_size}"
    );
}

/// One step of an Elman RNN, PyTorch's `nn.RNNCell`:
/// `h' = act(x · weight_ihᵀ + bias_ih + h · weight_hhᵀ + bias_hh)` with `act` `tanh`
/// (default) or `relu` ([`Nonlinearity`]).
///
/// Parameters (PyTorch's names and layouts): `weight_ih [H, I]`, `weight_hh [H, H]`,
/// `bias_ih [H]`, `bias_hh [H]`, all uniform in `±1/√H`. As a [`Module`], `forward(x)` is
/// one step from the zero state. Each `step` binds and transposes the weights anew; over a
/// whole sequence [`Rnn`](super::Rnn) does that once and projects every step's input in one
/// product.
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::{Nonlinearity, RnnCell};
///
/// let mut cell = RnnCell::<f64>::new(3, 5).nonlinearity(Nonlinearity::Relu);
/// cell.init(&mut StdRng::seed_from_u64(0));
/// let tape = Tape::new();
/// let xs = tape.constant(ndarray::Array3::<f64>::ones((2, 4, 3)).into_dyn()); // [N, T, I]
/// let mut h = cell.zero_hidden(&tape, 2);
/// for t in 0..4 {
///     h = cell.step(xs.slice(1, t, t + 1).squeeze(1), h);
/// }
/// assert_eq!(h.shape(), vec![2, 5]);
/// ```
#[derive(Clone, Debug)]
pub struct RnnCell<T: Float> {
    params: CellParams<T>,
}

impl<T: Float> RnnCell<T> {
    /// A cell from `input_size` features to a state of `hidden_size`, `tanh`, with biases.
    /// Panics if either size is 0.
    #[track_caller]
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        check_sizes("RnnCell", input_size, hidden_size);
        RnnCell {
            params: CellParams::new(
                CellKind::Rnn(Nonlinearity::Tanh),
                input_size,
                hidden_size,
                true,
            ),
        }
    }

    /// The nonlinearity (default [`Nonlinearity::Tanh`]).
    pub fn nonlinearity(mut self, nonlinearity: Nonlinearity) -> Self {
        self.params.kind = CellKind::Rnn(nonlinearity);
        self
    }

    /// The next hidden state `[N, H]` from `x` (`[N, I]`) and the hidden state `h` (`[N, H]`).
    /// Panics on other shapes or if the cell is not built.
    #[track_caller]
    pub fn step<'t>(&'t self, x: Var<'t, T>, h: Var<'t, T>) -> Var<'t, T> {
        self.check_step_input(&x, &h);
        let cell = self.params.bind(x.tape());
        cell.step(cell.project_input(x), h, None).0
    }

    #[track_caller]
    fn step_from_zero<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let h = self.zero_hidden(x.tape(), x.shape()[0]);
        self.step(x, h)
    }
}

cell_common!(RnnCell, "rnn_cell", step_from_zero);

/// One step of a long short-term memory, PyTorch's `nn.LSTMCell`: with
/// `gates = x · weight_ihᵀ + bias_ih + h · weight_hhᵀ + bias_hh` split in four `[N, H]`
/// blocks `i, f, g, o` (that order), `c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)` and
/// `h' = σ(o) ⊙ tanh(c')`.
///
/// Parameters (PyTorch's names and layouts): `weight_ih [4H, I]`, `weight_hh [4H, H]`,
/// `bias_ih [4H]`, `bias_hh [4H]`, all uniform in `±1/√H`. As a [`Module`], `forward(x)` is
/// one step from the zero state and returns `h'`.
/// Over a whole sequence, [`Lstm`](super::Lstm) projects every step's input in one product.
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::LstmCell;
///
/// let mut cell = LstmCell::<f64>::new(3, 5);
/// cell.init(&mut StdRng::seed_from_u64(0));
/// let tape = Tape::new();
/// let xs = tape.constant(ndarray::Array3::<f64>::ones((2, 4, 3)).into_dyn()); // [N, T, I]
/// let mut state = cell.zero_state(&tape, 2);
/// for t in 0..4 {
///     state = cell.step(xs.slice(1, t, t + 1).squeeze(1), state);
/// }
/// assert_eq!((state.h.shape().to_vec(), state.c.shape().to_vec()), (vec![2, 5], vec![2, 5]));
/// ```
#[derive(Clone, Debug)]
pub struct LstmCell<T: Float> {
    params: CellParams<T>,
}

impl<T: Float> LstmCell<T> {
    /// A cell from `input_size` features to states of `hidden_size`, with biases. Panics if
    /// either size is 0.
    #[track_caller]
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        check_sizes("LstmCell", input_size, hidden_size);
        LstmCell {
            params: CellParams::new(CellKind::Lstm, input_size, hidden_size, true),
        }
    }

    /// `h` and `c` both zeros of shape `[batch, hidden_size]`.
    pub fn zero_state<'t>(&self, tape: &'t Tape<'t, T>, batch: usize) -> LstmState<'t, T> {
        LstmState {
            h: self.zero_hidden(tape, batch),
            c: self.zero_hidden(tape, batch),
        }
    }

    /// The next state from `x` (`[N, I]`) and `state` (`h` and `c` of shape `[N, H]`).
    /// Panics on other shapes or if the cell is not built.
    #[track_caller]
    pub fn step<'t>(&'t self, x: Var<'t, T>, state: LstmState<'t, T>) -> LstmState<'t, T> {
        self.check_step_input(&x, &state.h);
        self.check_step_input(&x, &state.c);
        let cell = self.params.bind(x.tape());
        let (h, c) = cell.step(cell.project_input(x), state.h, Some(state.c));
        LstmState {
            h,
            c: c.expect("an LSTM step returns a cell state"),
        }
    }

    #[track_caller]
    fn step_from_zero<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let state = self.zero_state(x.tape(), x.shape()[0]);
        self.step(x, state).h
    }
}

cell_common!(LstmCell, "lstm_cell", step_from_zero);

/// One step of a gated recurrent unit, PyTorch's `nn.GRUCell`: with the input part
/// `x · weight_ihᵀ + bias_ih` and the hidden part `h · weight_hhᵀ + bias_hh` each split in
/// three `[N, H]` blocks `r, z, n` (that order), `r = σ(x_r + h_r)`, `z = σ(x_z + h_z)`,
/// `n = tanh(x_n + r ⊙ h_n)` and `h' = (1 − z) ⊙ n + z ⊙ h`.
///
/// Parameters (PyTorch's names and layouts): `weight_ih [3H, I]`, `weight_hh [3H, H]`,
/// `bias_ih [3H]`, `bias_hh [3H]`, all uniform in `±1/√H`. As a [`Module`], `forward(x)` is
/// one step from the zero state.
/// Over a whole sequence, [`Gru`](super::Gru) projects every step's input in one product.
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::GruCell;
/// use tapegrad_nn::Module;
///
/// let mut cell = GruCell::<f64>::new(3, 5).bias(false);
/// assert_eq!(cell.build(&[3], &mut StdRng::seed_from_u64(0)), vec![5]);
/// let names: Vec<String> = cell.named_params().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["weight_ih", "weight_hh"]);
/// let tape = Tape::new();
/// let x = tape.constant(ndarray::Array2::<f64>::ones((2, 3)).into_dyn());
/// let h = cell.step(x, cell.zero_hidden(&tape, 2));
/// assert_eq!(h.to_array(), cell.forward(x).to_array());
/// ```
#[derive(Clone, Debug)]
pub struct GruCell<T: Float> {
    params: CellParams<T>,
}

impl<T: Float> GruCell<T> {
    /// A cell from `input_size` features to a state of `hidden_size`, with biases. Panics if
    /// either size is 0.
    #[track_caller]
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        check_sizes("GruCell", input_size, hidden_size);
        GruCell {
            params: CellParams::new(CellKind::Gru, input_size, hidden_size, true),
        }
    }

    /// The next hidden state `[N, H]` from `x` (`[N, I]`) and the hidden state `h` (`[N, H]`).
    /// Panics on other shapes or if the cell is not built.
    #[track_caller]
    pub fn step<'t>(&'t self, x: Var<'t, T>, h: Var<'t, T>) -> Var<'t, T> {
        self.check_step_input(&x, &h);
        let cell = self.params.bind(x.tape());
        cell.step(cell.project_input(x), h, None).0
    }

    #[track_caller]
    fn step_from_zero<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let h = self.zero_hidden(x.tape(), x.shape()[0]);
        self.step(x, h)
    }
}

cell_common!(GruCell, "gru_cell", step_from_zero);
