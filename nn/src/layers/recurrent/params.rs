//! One direction of one layer of a recurrent network: its four parameters in PyTorch's
//! layout and the arithmetic of one step, shared by the cells and the stacked layers.

use ndarray::ArrayD;
use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Param, Tape, Var};

use crate::init::Initializer;
use crate::module::{Visitor, VisitorMut};

/// The function applied to `W_ih x + b_ih + W_hh h + b_hh` by an Elman RNN
/// ([`RnnCell`](super::RnnCell), [`Rnn`](super::Rnn)): PyTorch's `nonlinearity` argument.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Nonlinearity {
    /// `tanh` (PyTorch's default).
    #[default]
    Tanh,
    /// `max(0, ·)`.
    Relu,
}

/// Which recurrence a set of parameters computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CellKind {
    /// `h' = act(W_ih x + b_ih + W_hh h + b_hh)`.
    Rnn(Nonlinearity),
    /// Gates `i, f, g, o`; `c' = f ⊙ c + i ⊙ g`, `h' = o ⊙ tanh(c')`.
    Lstm,
    /// Gates `r, z, n`; `h' = (1 − z) ⊙ n + z ⊙ h`.
    Gru,
}

impl CellKind {
    /// The type and the kind (the default name in a container) of the stacked layer
    /// (`("Lstm", "lstm")`) or of the cell (`("LstmCell", "lstm_cell")`): how panics name it.
    pub(crate) fn names(self, cell: bool) -> (&'static str, &'static str) {
        match (self, cell) {
            (CellKind::Rnn(_), false) => ("Rnn", "rnn"),
            (CellKind::Lstm, false) => ("Lstm", "lstm"),
            (CellKind::Gru, false) => ("Gru", "gru"),
            (CellKind::Rnn(_), true) => ("RnnCell", "rnn_cell"),
            (CellKind::Lstm, true) => ("LstmCell", "lstm_cell"),
            (CellKind::Gru, true) => ("GruCell", "gru_cell"),
        }
    }

    /// The number of gates stacked in the weights' first axis.
    pub(crate) fn gates(self) -> usize {
        match self {
            CellKind::Rnn(_) => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }
}

/// A cell's `weight_ih` and `weight_hh`, and its `bias_ih` and `bias_hh` when it has biases.
pub(crate) type Weights<'a, T> = (
    &'a Param<T>,
    &'a Param<T>,
    Option<(&'a Param<T>, &'a Param<T>)>,
);

/// `weight_ih [G·H, I]`, `weight_hh [G·H, H]`, `bias_ih [G·H]`, `bias_hh [G·H]` (the
/// biases optional), `None` until [`init`](CellParams::init).
#[derive(Clone, Debug)]
pub(crate) struct CellParams<T: Float> {
    pub(crate) kind: CellKind,
    pub(crate) input_size: usize,
    pub(crate) hidden_size: usize,
    pub(crate) use_bias: bool,
    weight_ih: Option<Param<T>>,
    weight_hh: Option<Param<T>>,
    bias_ih: Option<Param<T>>,
    bias_hh: Option<Param<T>>,
}

impl<T: Float> CellParams<T> {
    pub(crate) fn new(kind: CellKind, input_size: usize, hidden_size: usize, bias: bool) -> Self {
        CellParams {
            kind,
            input_size,
            hidden_size,
            use_bias: bias,
            weight_ih: None,
            weight_hh: None,
            bias_ih: None,
            bias_hh: None,
        }
    }

    pub(crate) fn is_built(&self) -> bool {
        self.weight_ih.is_some()
    }

    /// `weight_ih` and `weight_hh`, and the biases when the cell has them (`None` before
    /// [`init`](CellParams::init)).
    pub(crate) fn weights(&self) -> Option<Weights<'_, T>> {
        let biases = self.bias_ih.as_ref().zip(self.bias_hh.as_ref());
        Some((self.weight_ih.as_ref()?, self.weight_hh.as_ref()?, biases))
    }

    /// Draws all four from `U(-1/√H, 1/√H)` (PyTorch's `reset_parameters`), in the order
    /// `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`.
    pub(crate) fn init(&mut self, rng: &mut StdRng) {
        let bound = 1.0 / (self.hidden_size as f64).sqrt();
        let uniform = Initializer::Uniform {
            low: -bound,
            high: bound,
        };
        let rows = self.kind.gates() * self.hidden_size;
        let mut draw = |shape: &[usize]| -> ArrayD<T> { uniform.init(shape, rng) };
        self.weight_ih = Some(Param::new("weight_ih", draw(&[rows, self.input_size])));
        self.weight_hh = Some(Param::new("weight_hh", draw(&[rows, self.hidden_size])));
        if self.use_bias {
            self.bias_ih = Some(Param::new("bias_ih", draw(&[rows])));
            self.bias_hh = Some(Param::new("bias_hh", draw(&[rows])));
        } else {
            self.bias_ih = None;
            self.bias_hh = None;
        }
    }

    /// Reports the parameters as `weight_ih{suffix}`, `weight_hh{suffix}`, `bias_ih{suffix}`,
    /// `bias_hh{suffix}` (PyTorch's order).
    pub(crate) fn visit<'a>(&'a self, v: &mut Visitor<'a, '_, T>, suffix: &str) {
        v.param(&format!("weight_ih{suffix}"), self.weight_ih.as_ref());
        v.param(&format!("weight_hh{suffix}"), self.weight_hh.as_ref());
        v.param(&format!("bias_ih{suffix}"), self.bias_ih.as_ref());
        v.param(&format!("bias_hh{suffix}"), self.bias_hh.as_ref());
    }

    /// [`visit`](CellParams::visit), mutably.
    pub(crate) fn visit_mut<'a>(&'a mut self, v: &mut VisitorMut<'a, '_, T>, suffix: &str) {
        v.param(&format!("weight_ih{suffix}"), self.weight_ih.as_mut());
        v.param(&format!("weight_hh{suffix}"), self.weight_hh.as_mut());
        v.param(&format!("bias_ih{suffix}"), self.bias_ih.as_mut());
        v.param(&format!("bias_hh{suffix}"), self.bias_hh.as_mut());
    }

    /// The parameters on `tape`, the weights transposed once (`[in, G·H]`, what
    /// [`Var::linear`] takes). Panics, naming the cell, if the parameters are not created.
    #[track_caller]
    pub(crate) fn bind<'t>(&'t self, tape: &'t Tape<'t, T>) -> Bound<'t, T> {
        let (Some(w_ih), Some(w_hh)) = (&self.weight_ih, &self.weight_hh) else {
            let (cell, kind) = self.kind.names(true);
            panic!(
                "{cell}::step: layer `{}` is not built; call build(input_shape, rng) or \
                 init(rng) first (Sequential and Model call build)",
                crate::module::layer_name(kind)
            )
        };
        Bound {
            kind: self.kind,
            input_size: self.input_size,
            hidden_size: self.hidden_size,
            w_ih: tape.param(w_ih).t(),
            w_hh: tape.param(w_hh).t(),
            b_ih: self.bias_ih.as_ref().map(|b| tape.param(b)),
            b_hh: self.bias_hh.as_ref().map(|b| tape.param(b)),
        }
    }
}

/// A [`CellParams`] bound on a tape: what a sequence of steps computes with.
#[derive(Clone, Copy)]
pub(crate) struct Bound<'t, T: Float> {
    kind: CellKind,
    pub(crate) input_size: usize,
    pub(crate) hidden_size: usize,
    w_ih: Var<'t, T>,
    w_hh: Var<'t, T>,
    b_ih: Option<Var<'t, T>>,
    b_hh: Option<Var<'t, T>>,
}

impl<'t, T: Float> Bound<'t, T> {
    /// `x · W_ihᵀ + b_ih` over the last axis of `x` (any rank ≥ 2): the input's part of every
    /// gate, for all time steps in one product.
    pub(crate) fn project_input(&self, x: Var<'t, T>) -> Var<'t, T> {
        let shape = x.shape();
        if shape.len() == 2 {
            return x.linear(self.w_ih, self.b_ih);
        }
        let rows: usize = shape[..shape.len() - 1].iter().product();
        let mut out_shape = shape;
        *out_shape.last_mut().unwrap() = self.kind.gates() * self.hidden_size;
        x.reshape(&[rows, self.input_size])
            .linear(self.w_ih, self.b_ih)
            .reshape(&out_shape)
    }

    /// One step from the projected input `xp = x · W_ihᵀ + b_ih` (`[N, G·H]`) and the
    /// state `h` (`[N, H]`) and, for an LSTM, `c`: the new `h` and `c`.
    pub(crate) fn step(
        &self,
        xp: Var<'t, T>,
        h: Var<'t, T>,
        c: Option<Var<'t, T>>,
    ) -> (Var<'t, T>, Option<Var<'t, T>>) {
        let hidden = self.hidden_size;
        let gate = |v: Var<'t, T>, k: usize| v.slice(1, k * hidden, (k + 1) * hidden);
        let hp = h.linear(self.w_hh, self.b_hh);
        match self.kind {
            CellKind::Rnn(Nonlinearity::Tanh) => ((xp + hp).tanh(), None),
            CellKind::Rnn(Nonlinearity::Relu) => ((xp + hp).relu(), None),
            CellKind::Lstm => {
                let c = c.expect("an LSTM step takes a cell state");
                let gates = xp + hp;
                let i = gate(gates, 0).sigmoid();
                let f = gate(gates, 1).sigmoid();
                let g = gate(gates, 2).tanh();
                let o = gate(gates, 3).sigmoid();
                let c_next = f * c + i * g;
                (o * c_next.tanh(), Some(c_next))
            }
            CellKind::Gru => {
                // r and z in one sigmoid; n's hidden part is gated by r before the sum.
                let rz = (xp.slice(1, 0, 2 * hidden) + hp.slice(1, 0, 2 * hidden)).sigmoid();
                let (r, z) = (gate(rz, 0), gate(rz, 1));
                let n = (gate(xp, 2) + r * gate(hp, 2)).tanh();
                // (1 − z) ⊙ n + z ⊙ h, written as PyTorch computes it.
                (n + z * (h - n), None)
            }
        }
    }
}
