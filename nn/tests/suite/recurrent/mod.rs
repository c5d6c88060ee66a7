//! The recurrent layers and cells: first- and second-order gradient checks on tiny random
//! configurations (f64), the cells against the layers, and the one-tensor `forward` against
//! `forward_with_state`; padded batches in [`padding`].

use ndarray::{ArrayD, Axis, s};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad_autograd::{GradcheckOptions, Tape, Var, gradcheck, gradgradcheck};
use tapegrad_nn::layers::{
    Dense, Gru, GruCell, Lstm, LstmCell, LstmState, Nonlinearity, Rnn, RnnCell, Sequential,
};
use tapegrad_nn::module::{Module, Visitor, VisitorMut, gradcheck_module};

mod padding;

/// Which layer a test runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    Rnn(Nonlinearity),
    Lstm,
    Gru,
}

/// A stacked layer's settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    pub(crate) kind: Kind,
    pub(crate) input_size: usize,
    pub(crate) hidden_size: usize,
    pub(crate) num_layers: usize,
    pub(crate) bidirectional: bool,
    pub(crate) batch_first: bool,
    pub(crate) bias: bool,
}

impl Config {
    fn directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }
}

/// One of `Rnn`, `Lstm`, `Gru`, built.
pub(crate) enum AnyRecurrent {
    Rnn(Rnn<f64>),
    Lstm(Lstm<f64>),
    Gru(Gru<f64>),
}

impl AnyRecurrent {
    /// The layer of `config`, its parameters drawn from `seed`.
    pub(crate) fn new(config: &Config, seed: u64) -> AnyRecurrent {
        // The builders of the three layers are the same methods; a macro applies them.
        macro_rules! configure {
            ($layer:expr) => {
                $layer
                    .num_layers(config.num_layers)
                    .bidirectional(config.bidirectional)
                    .batch_first(config.batch_first)
                    .bias(config.bias)
            };
        }
        let (i, h) = (config.input_size, config.hidden_size);
        let mut layer = match config.kind {
            Kind::Rnn(n) => AnyRecurrent::Rnn(configure!(Rnn::new(i, h)).nonlinearity(n)),
            Kind::Lstm => AnyRecurrent::Lstm(configure!(Lstm::new(i, h))),
            Kind::Gru => AnyRecurrent::Gru(configure!(Gru::new(i, h))),
        };
        let rng = &mut StdRng::seed_from_u64(seed);
        match &mut layer {
            AnyRecurrent::Rnn(l) => l.init(rng),
            AnyRecurrent::Lstm(l) => l.init(rng),
            AnyRecurrent::Gru(l) => l.init(rng),
        }
        layer
    }

    pub(crate) fn module(&self) -> &dyn Module<f64> {
        match self {
            AnyRecurrent::Rnn(l) => l,
            AnyRecurrent::Lstm(l) => l,
            AnyRecurrent::Gru(l) => l,
        }
    }

    pub(crate) fn module_mut(&mut self) -> &mut dyn Module<f64> {
        match self {
            AnyRecurrent::Rnn(l) => l,
            AnyRecurrent::Lstm(l) => l,
            AnyRecurrent::Gru(l) => l,
        }
    }

    /// `[output, h_n]` and, for an LSTM, `c_n`: from `forward_padded` with `lengths`, else
    /// from `forward_with_state`. An LSTM takes `h0` and `c0` together.
    pub(crate) fn run<'t>(
        &'t self,
        x: Var<'t, f64>,
        lengths: Option<&[usize]>,
        h0: Option<Var<'t, f64>>,
        c0: Option<Var<'t, f64>>,
    ) -> Vec<Var<'t, f64>> {
        macro_rules! hidden_only {
            ($l:expr) => {{
                let (output, h_n) = match lengths {
                    Some(lengths) => $l.forward_padded(x, lengths, h0),
                    None => $l.forward_with_state(x, h0),
                };
                vec![output, h_n]
            }};
        }
        match self {
            AnyRecurrent::Rnn(l) => hidden_only!(l),
            AnyRecurrent::Gru(l) => hidden_only!(l),
            AnyRecurrent::Lstm(l) => {
                let initial = h0.map(|h| LstmState {
                    h,
                    c: c0.expect("an LSTM takes h0 and c0 together"),
                });
                let (output, last) = match lengths {
                    Some(lengths) => l.forward_padded(x, lengths, initial),
                    None => l.forward_with_state(x, initial),
                };
                vec![output, last.h, last.c]
            }
        }
    }
}

/// Every output flattened and joined: one tensor for the gradient checkers.
fn joined<'t>(outputs: &[Var<'t, f64>]) -> Var<'t, f64> {
    let flat: Vec<Var<'t, f64>> = outputs
        .iter()
        .map(|v| v.reshape(&[v.shape().iter().product()]))
        .collect();
    Var::concat(&flat, 0)
}

/// A layer as a one-tensor module for `gradcheck_module`: all outputs of a (padded) run,
/// joined, so the parameters' gradients are checked through `h_n` and `c_n` too.
struct WholeRun {
    layer: AnyRecurrent,
    lengths: Option<Vec<usize>>,
}

impl Module<f64> for WholeRun {
    fn forward<'t>(&'t self, x: Var<'t, f64>) -> Var<'t, f64> {
        joined(&self.layer.run(x, self.lengths.as_deref(), None, None))
    }
    fn visit<'a>(&'a self, v: &mut Visitor<'a, '_, f64>) {
        self.layer.module().visit(v);
    }
    fn visit_mut<'a>(&'a mut self, v: &mut VisitorMut<'a, '_, f64>) {
        self.layer.module_mut().visit_mut(v);
    }
}

/// An array of `shape` uniform in `[-1, 1)`.
fn uniform(shape: &[usize], rng: &mut StdRng) -> ArrayD<f64> {
    ArrayD::from_shape_simple_fn(shape, || rng.random_range(-1.0..1.0))
}

/// `x` (`[N, T, I]` or `[T, N, I]`), `h0` and, for an LSTM, `c0`.
fn inputs(config: &Config, batch: usize, steps: usize, seed: u64) -> Vec<ArrayD<f64>> {
    let rng = &mut StdRng::seed_from_u64(seed);
    let x_shape = if config.batch_first {
        [batch, steps, config.input_size]
    } else {
        [steps, batch, config.input_size]
    };
    let state = [
        config.num_layers * config.directions(),
        batch,
        config.hidden_size,
    ];
    let mut all = vec![uniform(&x_shape, rng), uniform(&state, rng)];
    if config.kind == Kind::Lstm {
        all.push(uniform(&state, rng));
    }
    all
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Rnn(Nonlinearity::Tanh)),
        Just(Kind::Lstm),
        Just(Kind::Gru)
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (
        kind(),
        1..=3usize,
        1..=3usize,
        1..=2usize,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(kind, input_size, hidden_size, num_layers, bidirectional, batch_first, bias)| {
                Config {
                    kind,
                    input_size,
                    hidden_size,
                    num_layers,
                    bidirectional,
                    batch_first,
                    bias,
                }
            },
        )
}

/// A batch size, a number of steps and, half the time, per-row lengths in `1..=steps`.
fn batch() -> impl Strategy<Value = (usize, usize, Option<Vec<usize>>)> {
    (1..=3usize, 1..=3usize).prop_flat_map(|(batch, steps)| {
        (
            Just(batch),
            Just(steps),
            proptest::option::of(proptest::collection::vec(1..=steps, batch)),
        )
    })
}

/// One of the cells, built, with `forward` over two steps so that `weight_hh` matters.
enum AnyCell {
    Rnn(RnnCell<f64>),
    Lstm(LstmCell<f64>),
    Gru(GruCell<f64>),
}

impl AnyCell {
    fn new(kind: Kind, input: usize, hidden: usize, bias: bool, seed: u64) -> AnyCell {
        let rng = &mut StdRng::seed_from_u64(seed);
        match kind {
            Kind::Rnn(n) => {
                let mut cell = RnnCell::new(input, hidden).nonlinearity(n).bias(bias);
                cell.init(rng);
                AnyCell::Rnn(cell)
            }
            Kind::Lstm => {
                let mut cell = LstmCell::new(input, hidden).bias(bias);
                cell.init(rng);
                AnyCell::Lstm(cell)
            }
            Kind::Gru => {
                let mut cell = GruCell::new(input, hidden).bias(bias);
                cell.init(rng);
                AnyCell::Gru(cell)
            }
        }
    }

    fn module(&self) -> &dyn Module<f64> {
        match self {
            AnyCell::Rnn(c) => c,
            AnyCell::Lstm(c) => c,
            AnyCell::Gru(c) => c,
        }
    }

    fn module_mut(&mut self) -> &mut dyn Module<f64> {
        match self {
            AnyCell::Rnn(c) => c,
            AnyCell::Lstm(c) => c,
            AnyCell::Gru(c) => c,
        }
    }

    /// One step from `(h, c)` (`c` for an LSTM only): the new `h` and `c`.
    fn step<'t>(&'t self, x: Var<'t, f64>, h: Var<'t, f64>, c: Var<'t, f64>) -> Vec<Var<'t, f64>> {
        match self {
            AnyCell::Rnn(cell) => vec![cell.step(x, h)],
            AnyCell::Gru(cell) => vec![cell.step(x, h)],
            AnyCell::Lstm(cell) => {
                let next = cell.step(x, LstmState { h, c });
                vec![next.h, next.c]
            }
        }
    }
}

/// A cell as a one-tensor module: `x` is `[N, 2, I]`, two steps from `h = c = 0.3`.
struct TwoSteps(AnyCell);

impl Module<f64> for TwoSteps {
    fn forward<'t>(&'t self, x: Var<'t, f64>) -> Var<'t, f64> {
        let shape = x.shape();
        let hidden = self.0.module().params()[1].shape()[1];
        let start = x
            .tape()
            .constant(ArrayD::from_elem(vec![shape[0], hidden], 0.3));
        let mut state = vec![start, start];
        for t in 0..2 {
            let xt = x.slice(1, t, t + 1).reshape(&[shape[0], shape[2]]);
            state = self.0.step(xt, state[0], *state.last().unwrap());
            if state.len() == 1 {
                state.push(start);
            }
        }
        joined(&state)
    }
    fn visit<'a>(&'a self, v: &mut Visitor<'a, '_, f64>) {
        self.0.module().visit(v);
    }
    fn visit_mut<'a>(&'a mut self, v: &mut VisitorMut<'a, '_, f64>) {
        self.0.module_mut().visit_mut(v);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Gradients of the whole run (output, h_n, c_n): with respect to x, h0, c0 by
    /// `gradcheck` (and second order by `gradgradcheck`), with respect to every parameter
    /// by `gradcheck_module`.
    #[test]
    fn stacked_layers(config in config(), (batch, steps, lengths) in batch(), seed in any::<u64>()) {
        let values = inputs(&config, batch, steps, seed);
        let layer = AnyRecurrent::new(&config, seed);
        let lengths_ref = lengths.as_deref();
        let options = GradcheckOptions::default();
        gradcheck(
            |_, v| joined(&layer.run(v[0], lengths_ref, Some(v[1]), v.get(2).copied())),
            &values,
            &options,
        )
        .unwrap();
        gradgradcheck(
            |_, v| joined(&layer.run(v[0], lengths_ref, Some(v[1]), v.get(2).copied())),
            &values,
            &options,
        )
        .unwrap();
        let mut whole = WholeRun { layer: AnyRecurrent::new(&config, seed), lengths };
        gradcheck_module(&mut whole, &values[0], &GradcheckOptions::default()).unwrap();
    }

    /// One step of each cell from a random state (first and second order in x, h, c), and
    /// two steps as a module (every parameter, `weight_hh` included).
    #[test]
    fn cells(
        kind in kind(),
        (input, hidden, batch) in (1..=3usize, 1..=3usize, 1..=3usize),
        bias in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let rng = &mut StdRng::seed_from_u64(seed);
        let values = vec![
            uniform(&[batch, input], rng),
            uniform(&[batch, hidden], rng),
            uniform(&[batch, hidden], rng),
        ];
        let cell = AnyCell::new(kind, input, hidden, bias, seed);
        let options = GradcheckOptions::default();
        gradcheck(|_, v| joined(&cell.step(v[0], v[1], v[2])), &values, &options).unwrap();
        gradgradcheck(|_, v| joined(&cell.step(v[0], v[1], v[2])), &values, &options).unwrap();
        let mut steps = TwoSteps(AnyCell::new(kind, input, hidden, bias, seed));
        gradcheck_module(&mut steps, &uniform(&[batch, 2, input], rng), &GradcheckOptions::default())
            .unwrap();
    }
}

/// `forward(x)` is `forward_with_state`'s output, or its last step: the forward direction's
/// final state joined with the reverse direction's output at `t = 0`.
#[test]
fn forward_is_the_last_step_or_the_sequence() {
    for batch_first in [true, false] {
        for bidirectional in [false, true] {
            let make = |sequences: bool| {
                let mut lstm = Lstm::<f64>::new(3, 2)
                    .num_layers(2)
                    .bidirectional(bidirectional)
                    .batch_first(batch_first)
                    .return_sequences(sequences);
                lstm.init(&mut StdRng::seed_from_u64(1));
                lstm
            };
            let (last, sequences) = (make(false), make(true));
            let tape = Tape::new();
            let x = tape.constant(uniform(&[4, 5, 3], &mut StdRng::seed_from_u64(2)));
            let (output, state) = last.forward_with_state(x, None);
            assert_eq!(sequences.forward(x).to_array(), output.to_array());
            let output = output.to_array();
            let time = if batch_first { 1 } else { 0 };
            let forward_last = output.index_axis(Axis(time), output.shape()[time] - 1);
            let got = last.forward(x).to_array();
            assert_eq!(got.slice(s![.., ..2]), forward_last.slice(s![.., ..2]));
            let h = state.h.to_array();
            // The last layer's forward state, then (bidirectional) its reverse state.
            let layers = h.shape()[0];
            let d = if bidirectional { 2 } else { 1 };
            assert_eq!(
                got.slice(s![.., ..2]).into_dyn(),
                h.index_axis(Axis(0), layers - d)
            );
            if bidirectional {
                let first = output.index_axis(Axis(time), 0);
                assert_eq!(got.slice(s![.., 2..]), first.slice(s![.., 2..]));
                assert_eq!(
                    got.slice(s![.., 2..]).into_dyn(),
                    h.index_axis(Axis(0), layers - 1)
                );
            }
        }
    }
}

/// A cell stepped by hand with a layer's `_l0` parameters gives the layer's output.
#[test]
fn cells_step_as_the_layers_run() {
    for kind in [
        Kind::Rnn(Nonlinearity::Tanh),
        Kind::Rnn(Nonlinearity::Relu),
        Kind::Lstm,
        Kind::Gru,
    ] {
        let config = Config {
            kind,
            input_size: 3,
            hidden_size: 4,
            num_layers: 1,
            bidirectional: false,
            batch_first: true,
            bias: true,
        };
        let layer = AnyRecurrent::new(&config, 5);
        let mut cell = AnyCell::new(kind, 3, 4, true, 9);
        let source = layer.module().named_params();
        let names: Vec<String> = cell
            .module()
            .named_params()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        for (k, name) in names.iter().enumerate() {
            let value = source
                .iter()
                .find(|(n, _)| *n == format!("{name}_l0"))
                .unwrap()
                .1;
            cell.module_mut().params_mut()[k].assign(value.value().clone());
        }
        let tape = Tape::new();
        let values = inputs(&config, 2, 3, 4);
        let (x, h0) = (
            tape.constant(values[0].clone()),
            tape.constant(values[1].clone()),
        );
        let c0 = values.get(2).map(|c| tape.constant(c.clone()));
        let outputs = layer.run(x, None, Some(h0), c0);
        let mut state = vec![h0.reshape(&[2, 4]), c0.unwrap_or(h0).reshape(&[2, 4])];
        for t in 0..3 {
            let xt = x.slice(1, t, t + 1).reshape(&[2, 3]);
            state = cell.step(xt, state[0], *state.last().unwrap());
            let want = outputs[0].to_array().index_axis(Axis(1), t).to_owned();
            assert_near(&format!("{kind:?} step {t}"), &state[0].to_array(), &want);
        }
    }
}

/// An `Lstm` returning sequences, then one returning the last step, then a `Dense`, as Keras
/// writes it: the shapes and the state-dict names under the layers' paths.
#[test]
fn stacked_in_sequential() {
    let model = Sequential::<f64>::new()
        .add(Lstm::new(3, 4).return_sequences(true))
        .add(Gru::new(4, 5).bidirectional(true))
        .add(Dense::new(2))
        .with_input_shape(&[6, 3]);
    let names: Vec<String> = model.named_params().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names[0], "lstm_0.weight_ih_l0");
    assert_eq!(names[4], "gru_0.weight_ih_l0");
    assert_eq!(names[8], "gru_0.weight_ih_l0_reverse");
    let tape = Tape::new();
    let x = tape.constant(uniform(&[2, 6, 3], &mut StdRng::seed_from_u64(0)));
    assert_eq!(model.forward(x).shape(), vec![2, 2]);
}

#[test]
#[should_panic(
    expected = "Lstm: layer `lstm` takes non-empty inputs of shape [N, T, I] with I = 3"
)]
fn wrong_feature_count_panics_naming_the_shapes() {
    let mut lstm = Lstm::<f64>::new(3, 2);
    lstm.init(&mut StdRng::seed_from_u64(0));
    let tape = Tape::new();
    lstm.forward(tape.constant(ArrayD::zeros(vec![2, 5, 4])));
}

#[test]
#[should_panic(expected = "takes one length in 1..=5 per batch row (2 rows), got [5, 0]")]
fn lengths_out_of_range_panic() {
    let mut gru = Gru::<f64>::new(3, 2);
    gru.init(&mut StdRng::seed_from_u64(0));
    let tape = Tape::new();
    gru.forward_padded(tape.constant(ArrayD::zeros(vec![2, 5, 3])), &[5, 0], None);
}

#[test]
#[should_panic(expected = "takes h0 of shape [num_layers·D, N, H] = [2, 2, 2]")]
fn initial_state_of_the_wrong_shape_panics() {
    let mut rnn = Rnn::<f64>::new(3, 2).bidirectional(true);
    rnn.init(&mut StdRng::seed_from_u64(0));
    let tape = Tape::new();
    let h0 = tape.constant(ArrayD::zeros(vec![1, 2, 2]));
    rnn.forward_with_state(tape.constant(ArrayD::zeros(vec![2, 5, 3])), Some(h0));
}

#[track_caller]
fn assert_near(what: &str, got: &ArrayD<f64>, want: &ArrayD<f64>) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-12 * (1.0 + w.abs()),
            "{what}: got {got}, want {want}"
        );
    }
}
