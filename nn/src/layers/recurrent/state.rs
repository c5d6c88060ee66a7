//! The state an LSTM carries from step to step.

use tapegrad_autograd::{Float, Var};

/// An LSTM's hidden state `h` and cell state `c` (candle's `LSTMState`, PyTorch's `(h, c)`
/// tuple): `[N, H]` each for an [`LstmCell`](super::LstmCell) step, `[num_layers·D, N, H]`
/// each for an [`Lstm`](super::Lstm)'s initial and final state (D = 2 when bidirectional),
/// ordered as PyTorch's `h_n`/`c_n`: layer by layer, forward direction then reverse.
#[derive(Clone, Copy, Debug)]
pub struct LstmState<'t, T: Float> {
    /// The hidden state (the output of the step).
    pub h: Var<'t, T>,
    /// The cell state.
    pub c: Var<'t, T>,
}
