//! Replays every `rnn`, `lstm` and `gru` case of the workspace's `tests/data/seq.json`
//! (PyTorch 2.15, float64) through `Rnn`, `Lstm` and `Gru`: the parameters are loaded by
//! their state-dict names through `named_params`/`params_mut` (which proves the names), and
//! `output`, `h_n`, `c_n`, the gradients of `Σ_k sum(outputs[k] · upstream[k])` for every
//! input and weight, and, where the case has one, the Hessian-vector product are compared
//! to 1e-10 relative.

use ndarray::ArrayD;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;
use tapegrad_autograd::{Tape, Var};
use tapegrad_nn::Module;
use tapegrad_nn::layers::{Gru, Lstm, LstmState, Nonlinearity, Rnn};

use super::golden::{array, assert_close, cases};

/// The arguments of PyTorch's forward; every other input is a state-dict entry.
const ARGUMENTS: [&str; 3] = ["input", "h0", "c0"];

/// One of the three layers, configured from a case's `attrs`.
enum Layer {
    Rnn(Rnn<f64>),
    Lstm(Lstm<f64>),
    Gru(Gru<f64>),
}

impl Layer {
    fn from_case(case: &Value) -> Layer {
        let attrs = &case["attrs"];
        let size = |key: &str| attrs[key].as_u64().unwrap() as usize;
        let flag = |key: &str| attrs[key].as_bool().unwrap();
        let (input, hidden) = (size("input_size"), size("hidden_size"));
        // The builders of the three layers are the same methods; a macro applies them.
        macro_rules! configure {
            ($layer:expr) => {
                $layer
                    .num_layers(size("num_layers"))
                    .bidirectional(flag("bidirectional"))
                    .batch_first(flag("batch_first"))
                    .bias(flag("bias"))
            };
        }
        let rng = &mut StdRng::seed_from_u64(0);
        match case["op"].as_str().unwrap() {
            "rnn" => {
                let nonlinearity = match attrs["nonlinearity"].as_str().unwrap() {
                    "tanh" => Nonlinearity::Tanh,
                    "relu" => Nonlinearity::Relu,
                    other => panic!("unknown nonlinearity {other}"),
                };
                let mut layer = configure!(Rnn::new(input, hidden)).nonlinearity(nonlinearity);
                layer.init(rng);
                Layer::Rnn(layer)
            }
            "lstm" => {
                let mut layer = configure!(Lstm::new(input, hidden));
                layer.init(rng);
                Layer::Lstm(layer)
            }
            "gru" => {
                let mut layer = configure!(Gru::new(input, hidden));
                layer.init(rng);
                Layer::Gru(layer)
            }
            other => panic!("not a recurrent case: {other}"),
        }
    }

    fn module(&mut self) -> &mut dyn Module<f64> {
        match self {
            Layer::Rnn(l) => l,
            Layer::Lstm(l) => l,
            Layer::Gru(l) => l,
        }
    }

    fn module_ref(&self) -> &dyn Module<f64> {
        match self {
            Layer::Rnn(l) => l,
            Layer::Lstm(l) => l,
            Layer::Gru(l) => l,
        }
    }

    /// `(output, h_n, c_n)` from `forward_with_state`.
    fn run<'t>(
        &'t self,
        x: Var<'t, f64>,
        h0: Option<Var<'t, f64>>,
        c0: Option<Var<'t, f64>>,
    ) -> Vec<(&'static str, Var<'t, f64>)> {
        match self {
            Layer::Rnn(l) => {
                let (output, h_n) = l.forward_with_state(x, h0);
                vec![("output", output), ("h_n", h_n)]
            }
            Layer::Gru(l) => {
                let (output, h_n) = l.forward_with_state(x, h0);
                vec![("output", output), ("h_n", h_n)]
            }
            Layer::Lstm(l) => {
                let initial = h0.map(|h| LstmState {
                    h,
                    c: c0.expect("an LSTM case with h0 has c0"),
                });
                let (output, last) = l.forward_with_state(x, initial);
                vec![("output", output), ("h_n", last.h), ("c_n", last.c)]
            }
        }
    }
}

fn input_array(input: &Value) -> ArrayD<f64> {
    array(&input["shape"], &input["values"])
}

/// The case's parameters loaded into `layer` by name; checks that the layer's names are
/// exactly the case's state-dict keys, in PyTorch's order.
fn load_parameters(case: &Value, layer: &mut Layer) {
    let module = layer.module();
    let names: Vec<String> = module.named_params().into_iter().map(|(n, _)| n).collect();
    let keys: Vec<&str> = case["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .filter(|n| !ARGUMENTS.contains(n))
        .collect();
    assert_eq!(names, keys, "{}: state-dict names and order", case["op"]);
    for input in case["inputs"].as_array().unwrap() {
        let key = input["name"].as_str().unwrap();
        if let Some(k) = names.iter().position(|n| n == key) {
            module.params_mut()[k].assign(input_array(input));
        }
    }
}

fn replay(index: usize, case: &Value) {
    let what = format!(
        "case {index} ({} {})",
        case["op"].as_str().unwrap(),
        case["attrs"]
    );
    let mut layer = Layer::from_case(case);
    load_parameters(case, &mut layer);

    let tape = Tape::new();
    let inputs = case["inputs"].as_array().unwrap();
    let argument = |name: &str| {
        inputs
            .iter()
            .find(|i| i["name"] == name)
            .map(|i| tape.var(input_array(i)))
    };
    let (x, h0, c0) = (argument("input").unwrap(), argument("h0"), argument("c0"));
    let outputs = layer.run(x, h0, c0);

    // Every input of the case as a variable, in the case's order (a parameter's binding
    // is the variable the layer computed with).
    let params = layer.module_ref().named_params();
    let vars: Vec<Var<'_, f64>> = inputs
        .iter()
        .map(|i| match i["name"].as_str().unwrap() {
            "input" => x,
            "h0" => h0.unwrap(),
            "c0" => c0.unwrap(),
            key => tape.param(params.iter().find(|(n, _)| n == key).unwrap().1),
        })
        .collect();

    let expected = case["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), expected.len(), "{what}: number of outputs");
    let mut loss = None;
    for ((name, got), (want, upstream)) in outputs
        .iter()
        .zip(expected.iter().zip(case["upstream"].as_array().unwrap()))
    {
        assert_eq!(want["name"], *name, "{what}: output order");
        assert_close(
            &format!("{what} {name}"),
            &got.to_array(),
            &array(&want["shape"], &want["values"]),
        );
        let term = (*got * tape.constant(array(&want["shape"], upstream))).sum();
        loss = Some(loss.map_or(term, |l| l + term));
    }

    let grads = tape.grad(loss.unwrap(), &vars);
    for ((input, grad), want) in inputs
        .iter()
        .zip(&grads)
        .zip(case["grads"].as_array().unwrap())
    {
        assert_close(
            &format!("{what} gradient of {}", input["name"]),
            &grad.to_array(),
            &array(&input["shape"], want),
        );
    }

    if let Some(directions) = case["direction"].as_array() {
        // H v: the gradient of Σ_i <grads[i], direction[i]>, through the recorded gradients.
        let dot = grads
            .iter()
            .zip(inputs.iter().zip(directions))
            .map(|(g, (input, v))| (*g * tape.constant(array(&input["shape"], v))).sum())
            .reduce(|a, b| a + b)
            .unwrap();
        let hvp = tape.grad(dot, &vars);
        for ((input, h), want) in inputs.iter().zip(&hvp).zip(case["hvp"].as_array().unwrap()) {
            assert_close(
                &format!("{what} Hessian-vector product of {}", input["name"]),
                &h.to_array(),
                &array(&input["shape"], want),
            );
        }
    }
}

fn replay_all(op: &str) -> usize {
    let cases: Vec<Value> = cases("seq.json")
        .into_iter()
        .filter(|c| c["op"] == op)
        .collect();
    for (index, case) in cases.iter().enumerate() {
        replay(index, case);
    }
    cases.len()
}

#[test]
fn rnn_cases() {
    assert_eq!(replay_all("rnn"), 3);
}

#[test]
fn lstm_cases() {
    assert_eq!(replay_all("lstm"), 3);
}

#[test]
fn gru_cases() {
    assert_eq!(replay_all("gru"), 3);
}
