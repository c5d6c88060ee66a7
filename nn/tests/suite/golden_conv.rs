//! Replays the batch-norm and embedding cases of the workspace's `tests/data/conv.json`
//! (PyTorch 2.15, float64) through the layers: outputs, gradients of
//! `sum(output * upstream)` with respect to the input and the parameters (via `backward()`),
//! and the running statistics after a training call, to 1e-10 relative.

use ndarray::{ArrayD, IxDyn};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;
use tapegrad_autograd::Tape;
use tapegrad_nn::Module;
use tapegrad_nn::layers::{BatchNorm, Embedding};

use super::golden::{self, array, assert_close, floats};

fn vector(values: &Value) -> ArrayD<f64> {
    let v = floats(values);
    ArrayD::from_shape_vec(IxDyn(&[v.len()]), v).unwrap()
}

/// The case named `op` of conv.json.
fn case(op: &str) -> Value {
    golden::case("conv.json", op)
}

fn input(case: &Value, i: usize) -> ArrayD<f64> {
    let input = &case["inputs"][i];
    array(&input["shape"], &input["values"])
}

/// The expected gradient of input `i` (shaped like it).
fn grad(case: &Value, i: usize) -> ArrayD<f64> {
    let shape = &case["inputs"][i]["shape"];
    array(shape, &case["grads"][i])
}

fn upstream(case: &Value) -> ArrayD<f64> {
    array(&case["output"]["shape"], &case["upstream"])
}

/// A BatchNorm built for the case's input, with its weight, bias and running statistics.
fn batch_norm(case: &Value, running_mean: &str, running_var: &str) -> BatchNorm<f64> {
    let attrs = &case["attrs"];
    let x = input(case, 0);
    let mut bn = BatchNorm::new().eps(attrs["eps"].as_f64().unwrap());
    if let Some(m) = attrs["momentum"].as_f64() {
        bn = bn.momentum(m);
    }
    bn.build(&x.shape()[1..], &mut StdRng::seed_from_u64(0));
    let mut params = bn.params_mut();
    params[0].assign(input(case, 1));
    params[1].assign(input(case, 2));
    let mut buffers = bn.buffers_mut();
    *buffers[0].value_mut() = vector(&attrs[running_mean]);
    *buffers[1].value_mut() = vector(&attrs[running_var]);
    Module::<f64>::set_training(&mut bn, attrs["training"].as_bool().unwrap());
    bn
}

/// Runs the case's forward through `bn`, checks the output and the gradients of x, weight
/// and bias.
fn replay_batch_norm(case: &Value, bn: &BatchNorm<f64>) {
    let op = case["op"].as_str().unwrap();
    let tape = Tape::new();
    let x = tape.var(input(case, 0));
    let out = bn.forward(x);
    assert_close(
        &format!("{op} output"),
        &out.to_array(),
        &array(&case["output"]["shape"], &case["output"]["values"]),
    );
    let grads = (out * tape.constant(upstream(case))).sum().backward();
    assert_close(&format!("{op} gradient of x"), &grads[x], &grad(case, 0));
    let (gamma, beta) = (bn.gamma().unwrap(), bn.beta().unwrap());
    assert_close(
        &format!("{op} gradient of weight"),
        grads.param(gamma).unwrap(),
        &grad(case, 1),
    );
    assert_close(
        &format!("{op} gradient of bias"),
        grads.param(beta).unwrap(),
        &grad(case, 2),
    );
}

fn batch_norm_train(op: &str) {
    let case = case(op);
    let bn = batch_norm(&case, "running_mean_before", "running_var_before");
    assert!(bn.is_training());
    replay_batch_norm(&case, &bn);
    assert_close(
        &format!("{op} running_mean after"),
        &bn.running_mean().unwrap().value(),
        &vector(&case["running_mean_after"]),
    );
    assert_close(
        &format!("{op} running_var after"),
        &bn.running_var().unwrap().value(),
        &vector(&case["running_var_after"]),
    );
}

#[test]
fn batch_norm2d_train() {
    batch_norm_train("batch_norm2d_train");
}

#[test]
fn batch_norm1d_train() {
    batch_norm_train("batch_norm1d_train");
}

#[test]
fn batch_norm2d_eval() {
    let case = case("batch_norm2d_eval");
    let bn = batch_norm(&case, "running_mean", "running_var");
    assert!(!bn.is_training());
    let before = (
        bn.running_mean().unwrap().value().clone(),
        bn.running_var().unwrap().value().clone(),
    );
    replay_batch_norm(&case, &bn);
    // Eval mode leaves the running statistics exactly as they were.
    assert_eq!(*bn.running_mean().unwrap().value(), before.0);
    assert_eq!(*bn.running_var().unwrap().value(), before.1);
}

#[test]
fn embedding() {
    let case = case("embedding");
    let table = input(&case, 0);
    let indices = input(&case, 1); // integers (i64 in the file) as f64
    let (vocabulary, dim) = (table.shape()[0], table.shape()[1]);
    let mut layer = Embedding::<f64>::new(vocabulary, dim);
    layer.build(&indices.shape()[1..], &mut StdRng::seed_from_u64(0));
    layer.params_mut()[0].assign(table);

    let tape = Tape::new();
    let out = layer.forward(tape.constant(indices));
    assert_close(
        "embedding output",
        &out.to_array(),
        &array(&case["output"]["shape"], &case["output"]["values"]),
    );
    let grads = (out * tape.constant(upstream(&case))).sum().backward();
    assert_close(
        "embedding gradient of the table",
        grads.param(layer.embeddings().unwrap()).unwrap(),
        &grad(&case, 0),
    );
    assert!(case["grads"][1].is_null(), "indices have no gradient");
}
