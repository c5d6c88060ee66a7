//! Replays every `rnn`, `lstm` and `gru` case of the workspace's `tests/data/seq.json`
//! (PyTorch 2.15, float64) through `Rnn`, `Lstm` and `Gru`: the parameters are loaded by
//! their state-dict names through `named_params`/`params_mut` (which proves the names), and
//! `output`, `h_n`, `c_n`, the gradients of `Σ_k sum(outputs[k] · upstream[k])` for every
//! input and weight, and, where the case has one, the Hessian-vector product are compared
//! to 1e-10 relative.

use ndarray::ArrayD;
use serde_json::Value;
use tapegrad_autograd::{Tape, Var};
use tapegrad_nn::layers::Nonlinearity;

use super::golden::{array, assert_close, cases};
use super::recurrent::{AnyRecurrent, Config, Kind};

/// The arguments of PyTorch's forward; every other input is a state-dict entry.
const ARGUMENTS: [&str; 3] = ["input", "h0", "c0"];

/// The layer of a case's `op` and `attrs`.
fn layer(case: &Value) -> AnyRecurrent {
    let attrs = &case["attrs"];
    let size = |key: &str| attrs[key].as_u64().unwrap() as usize;
    let flag = |key: &str| attrs[key].as_bool().unwrap();
    let kind = match case["op"].as_str().unwrap() {
        "rnn" => Kind::Rnn(match attrs["nonlinearity"].as_str().unwrap() {
            "tanh" => Nonlinearity::Tanh,
            "relu" => Nonlinearity::Relu,
            other => panic!("unknown nonlinearity {other}"),
        }),
        "lstm" => Kind::Lstm,
        "gru" => Kind::Gru,
        other => panic!("not a recurrent case: {other}"),
    };
    let config = Config {
        kind,
        input_size: size("input_size"),
        hidden_size: size("hidden_size"),
        num_layers: size("num_layers"),
        bidirectional: flag("bidirectional"),
        batch_first: flag("batch_first"),
        bias: flag("bias"),
    };
    AnyRecurrent::new(&config, 0)
}

fn input_array(input: &Value) -> ArrayD<f64> {
    array(&input["shape"], &input["values"])
}

/// The case's parameters loaded into `layer` by name; checks that the layer's names are
/// exactly the case's state-dict keys, in PyTorch's order.
fn load_parameters(case: &Value, layer: &mut AnyRecurrent) {
    let module = layer.module_mut();
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
    let mut layer = layer(case);
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
    let outputs = layer.run(x, None, h0, c0);

    // Every input of the case as a variable, in the case's order (a parameter's binding
    // is the variable the layer computed with).
    let params = layer.module().named_params();
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
    for ((got, name), (want, upstream)) in outputs
        .iter()
        .zip(["output", "h_n", "c_n"])
        .zip(expected.iter().zip(case["upstream"].as_array().unwrap()))
    {
        assert_eq!(want["name"], name, "{what}: output order");
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
