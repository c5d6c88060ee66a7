//! The computation shared by [`Rnn`](super::Rnn), [`Lstm`](super::Lstm) and
//! [`Gru`](super::Gru): layers of cells run over a sequence in one or two directions, with
//! PyTorch's state-dict names and semantics, and optional per-row lengths.

use ndarray::{Array2, ArrayD};
use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Var};

use super::params::{Bound, CellKind, CellParams};
use crate::module::{InvalidInputShape, Visitor, VisitorMut};

/// The configuration and parameters of a stacked recurrent layer (`cells` empty until
/// built, then `num_layers · D` of them: layer by layer, forward direction then reverse).
#[derive(Clone, Debug)]
pub(crate) struct Stacked<T: Float> {
    pub(crate) kind: CellKind,
    pub(crate) input_size: usize,
    pub(crate) hidden_size: usize,
    pub(crate) num_layers: usize,
    pub(crate) bidirectional: bool,
    pub(crate) batch_first: bool,
    pub(crate) bias: bool,
    pub(crate) return_sequences: bool,
    pub(crate) cells: Vec<CellParams<T>>,
}

/// What a run over a sequence gives: the last layer's output sequence (when asked for) and
/// the final state of each layer and direction, in `h_n`'s order.
pub(crate) struct Run<'t, T: Float> {
    pub(crate) output: Option<Var<'t, T>>,
    pub(crate) h: Vec<Var<'t, T>>,
    pub(crate) c: Vec<Var<'t, T>>,
}

/// The initial states of a run (`[num_layers·D, N, H]` each), zeros when absent.
#[derive(Clone, Copy)]
pub(crate) struct Initial<'t, T: Float> {
    pub(crate) h: Option<Var<'t, T>>,
    pub(crate) c: Option<Var<'t, T>>,
}

impl<T: Float> Stacked<T> {
    /// One layer, one direction, batch first, with biases, the last step's output.
    #[track_caller]
    pub(crate) fn new(kind: CellKind, input_size: usize, hidden_size: usize) -> Self {
        let layer = kind.names(false).0;
        assert!(
            input_size > 0 && hidden_size > 0,
            "{layer}::new: input_size and hidden_size must be at least 1, got {input_size} \
             and {hidden_size}"
        );
        Stacked {
            kind,
            input_size,
            hidden_size,
            num_layers: 1,
            bidirectional: false,
            batch_first: true,
            bias: true,
            return_sequences: false,
            cells: Vec::new(),
        }
    }

    /// 2 when bidirectional, else 1.
    pub(crate) fn directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// The width of the output's last axis, `D·H`.
    pub(crate) fn output_size(&self) -> usize {
        self.directions() * self.hidden_size
    }

    /// Creates every layer's and direction's parameters, in PyTorch's order (layer `k > 0`
    /// takes the `D·H` features of the layer below).
    pub(crate) fn init(&mut self, rng: &mut StdRng) {
        let d = self.directions();
        self.cells = (0..self.num_layers * d)
            .map(|k| {
                let input = if k < d {
                    self.input_size
                } else {
                    self.output_size()
                };
                CellParams::new(self.kind, input, self.hidden_size, self.bias)
            })
            .collect();
        for cell in &mut self.cells {
            cell.init(rng);
        }
    }

    /// `_l{layer}` or `_l{layer}_reverse`: the suffix of cell `k`'s parameter names.
    fn suffix(&self, k: usize) -> String {
        let d = self.directions();
        let reverse = if k % d == 1 { "_reverse" } else { "" };
        format!("_l{}{reverse}", k / d)
    }

    pub(crate) fn visit<'a>(&'a self, v: &mut Visitor<'a, '_, T>) {
        for (k, cell) in self.cells.iter().enumerate() {
            cell.visit(v, &self.suffix(k));
        }
    }

    pub(crate) fn visit_mut<'a>(&'a mut self, v: &mut VisitorMut<'a, '_, T>) {
        let suffixes: Vec<String> = (0..self.cells.len()).map(|k| self.suffix(k)).collect();
        for (cell, suffix) in self.cells.iter_mut().zip(&suffixes) {
            cell.visit_mut(v, suffix);
        }
    }

    /// [`Module::check_input_shape`](crate::Module::check_input_shape): `input_shape`
    /// (without the first axis) is `[T, input_size]` (`[N, input_size]` when not batch first).
    pub(crate) fn check_input_shape(&self, input_shape: &[usize]) -> Result<(), InvalidInputShape> {
        if !(input_shape.len() == 2 && input_shape[1] == self.input_size) {
            let (_, kind) = self.kind.names(false);
            let steps = if self.batch_first { "T" } else { "N" };
            let expected = format!("[{steps}, {}]", self.input_size);
            return Err(InvalidInputShape::new(kind, expected, input_shape));
        }
        Ok(())
    }

    /// The output shape of [`Module::build`](crate::Module::build) for `input_shape`
    /// (without the first axis), after checking it.
    #[track_caller]
    pub(crate) fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        if let Err(e) = self.check_input_shape(input_shape) {
            panic!("{}::build: {e}", self.kind.names(false).0)
        }
        self.init(rng);
        if self.return_sequences {
            vec![input_shape[0], self.output_size()]
        } else {
            vec![self.output_size()]
        }
    }

    /// The one-tensor forward: the whole output sequence with `return_sequences`, else the
    /// last layer's final states (the forward direction's, then the reverse's) joined.
    #[track_caller]
    pub(crate) fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        let run = self.run(x, None, Initial { h: None, c: None }, self.return_sequences);
        match run.output {
            Some(output) => output,
            None => {
                let last = &run.h[run.h.len() - self.directions()..];
                if last.len() == 1 {
                    last[0]
                } else {
                    Var::concat(last, -1)
                }
            }
        }
    }

    /// Runs every layer and direction over `x` (`[N, T, I]` batch first, else `[T, N, I]`)
    /// from `initial`. With `lengths` (one per batch row, each in `1..=T`), row `b`'s steps
    /// from `lengths[b]` on are padding: they leave the state as it was and output zeros, and
    /// the reverse direction reads the row's valid steps backwards. The last layer's output
    /// sequence is stacked only when `keep_output`.
    #[track_caller]
    pub(crate) fn run<'t>(
        &'t self,
        x: Var<'t, T>,
        lengths: Option<&[usize]>,
        initial: Initial<'t, T>,
        keep_output: bool,
    ) -> Run<'t, T> {
        let (layer, kind) = self.kind.names(false);
        let name = crate::module::layer_name(kind);
        let shape = x.shape();
        assert!(
            shape.len() == 3 && shape[2] == self.input_size && shape[0] > 0 && shape[1] > 0,
            "{layer}: layer `{name}` takes non-empty inputs of shape {} with I = {}, got {shape:?}",
            if self.batch_first {
                "[N, T, I]"
            } else {
                "[T, N, I]"
            },
            self.input_size
        );
        let (time_axis, batch_axis) = if self.batch_first { (1, 0) } else { (0, 1) };
        let (batch, steps) = (shape[batch_axis], shape[time_axis]);
        let (hidden, d) = (self.hidden_size, self.directions());
        let state_shape = [self.num_layers * d, batch, hidden];
        for (what, state) in [("h0", initial.h), ("c0", initial.c)] {
            if let Some(s) = state {
                assert!(
                    s.shape() == state_shape,
                    "{layer}: layer `{name}` takes {what} of shape [num_layers·D, N, H] = \
                     {state_shape:?} for an input of shape {shape:?}, got {:?}",
                    s.shape()
                );
            }
        }
        if let Some(lengths) = lengths {
            assert!(
                lengths.len() == batch && lengths.iter().all(|&l| (1..=steps).contains(&l)),
                "{layer}: layer `{name}` takes one length in 1..={steps} per batch row ({batch} \
                 rows), got {lengths:?}"
            );
        }
        // Full-length rows need neither masks nor per-row reversal.
        let lengths = lengths.filter(|l| l.iter().any(|&len| len < steps));
        let tape = x.tape();
        let masks = step_masks(tape, lengths, steps);
        let reversal = lengths.map(|l| reversal(l, steps, self.batch_first));
        let reorder = |v: Var<'t, T>, order: &[usize]| {
            let shape = v.shape();
            v.reshape(&[batch * steps, shape[2]])
                .index_select(0, order)
                .reshape(&shape)
        };
        let start = |k: usize, state: Option<Var<'t, T>>| match state {
            Some(s) => s.slice(0, k, k + 1).reshape(&[batch, hidden]),
            None => tape.constant(ArrayD::zeros(vec![batch, hidden])),
        };

        let mut input = x;
        let mut run = Run {
            output: None,
            h: Vec::with_capacity(self.cells.len()),
            c: Vec::new(),
        };
        for layer_index in 0..self.num_layers {
            let stack_output = keep_output || layer_index + 1 < self.num_layers;
            let mut directions = Vec::with_capacity(d);
            for direction in 0..d {
                let k = layer_index * d + direction;
                let Some(params) = self.cells.get(k) else {
                    panic!(
                        "{layer}: layer `{name}` is not built; call build(input_shape, rng) \
                         first (Sequential and Model do this)"
                    )
                };
                let cell = params.bind(tape);
                let reverse = direction == 1;
                // The reverse direction of a padded batch runs forwards over each row's
                // valid steps reversed (padding stays at the end); without padding it runs
                // backwards over time.
                let permutation = reversal.as_deref().filter(|_| reverse);
                let sequence = match permutation {
                    Some(order) => reorder(input, order),
                    None => input,
                };
                let projected = cell.project_input(sequence);
                let state = (
                    start(k, initial.h),
                    (self.kind == CellKind::Lstm).then(|| start(k, initial.c)),
                );
                let backwards = reverse && permutation.is_none();
                let (outputs, h, c) =
                    run_steps(&cell, projected, state, &masks, backwards, time_axis);
                run.h.push(h);
                run.c.extend(c);
                if stack_output {
                    let stacked = Var::stack(&outputs, time_axis as isize);
                    directions.push(match permutation {
                        // The reversal is its own inverse.
                        Some(order) => reorder(stacked, order),
                        None => stacked,
                    });
                }
            }
            if stack_output {
                input = if d == 1 {
                    directions[0]
                } else {
                    Var::concat(&directions, -1)
                };
            }
        }
        if keep_output {
            run.output = Some(input);
        }
        run
    }
}

/// Steps `cell` over `projected` (the input's projection, time on `time_axis`) from
/// `state` (`h` and, for an LSTM, `c`), forwards in time or `backwards`: the output of each
/// time step (in time order) and the final state. Where `masks[t]` is given, rows it marks
/// as padding keep their state and output zeros.
fn run_steps<'t, T: Float>(
    cell: &Bound<'t, T>,
    projected: Var<'t, T>,
    state: (Var<'t, T>, Option<Var<'t, T>>),
    masks: &[Option<(Var<'t, T>, Var<'t, T>)>],
    backwards: bool,
    time_axis: usize,
) -> (Vec<Var<'t, T>>, Var<'t, T>, Option<Var<'t, T>>) {
    let shape = projected.shape();
    let (batch, gates) = (shape[1 - time_axis], shape[2]);
    let steps = shape[time_axis];
    let (mut h, mut c) = state;
    let mut outputs = vec![None; steps];
    let step = |t: usize| -> usize { if backwards { steps - 1 - t } else { t } };
    for t in (0..steps).map(step) {
        let xp = projected
            .slice(time_axis as isize, t, t + 1)
            .reshape(&[batch, gates]);
        let (h_next, c_next) = cell.step(xp, h, c);
        let out = match &masks[t] {
            // m ⊙ new + (1 − m) ⊙ old with constant 0/1 masks: padded rows keep their state
            // exactly and output zeros.
            Some((valid, padded)) => {
                let out = h_next * *valid;
                h = out + h * *padded;
                c = c_next.zip(c).map(|(cn, c)| cn * *valid + c * *padded);
                out
            }
            None => {
                h = h_next;
                c = c_next;
                h_next
            }
        };
        outputs[t] = Some(out);
    }
    (outputs.into_iter().flatten().collect(), h, c)
}

/// For each step `t`, the constant masks `(valid, padded)` of shape `[N, 1]` (1 where
/// `t < lengths[b]`, and its complement), or `None` when every row is valid at `t`.
fn step_masks<'t, T: Float>(
    tape: &'t tapegrad_autograd::Tape<'t, T>,
    lengths: Option<&[usize]>,
    steps: usize,
) -> Vec<Option<(Var<'t, T>, Var<'t, T>)>> {
    (0..steps)
        .map(|t| {
            let lengths = lengths.filter(|l| l.iter().any(|&len| t >= len))?;
            let column = |on: bool| {
                let values = lengths
                    .iter()
                    .map(|&len| if (t < len) == on { T::one() } else { T::zero() });
                let array = Array2::from_shape_vec((lengths.len(), 1), values.collect());
                tape.constant(array.expect("one value per row").into_dyn())
            };
            Some((column(true), column(false)))
        })
        .collect()
}

/// The permutation of the flattened `(batch, time)` positions (in the input's layout) that
/// reverses each row's first `lengths[b]` steps and leaves its padding in place.
fn reversal(lengths: &[usize], steps: usize, batch_first: bool) -> Vec<usize> {
    let batch = lengths.len();
    let at = |b: usize, t: usize| {
        if batch_first {
            b * steps + t
        } else {
            t * batch + b
        }
    };
    let mut order = vec![0; batch * steps];
    for (b, &len) in lengths.iter().enumerate() {
        for t in 0..steps {
            let source = if t < len { len - 1 - t } else { t };
            order[at(b, t)] = at(b, source);
        }
    }
    order
}
