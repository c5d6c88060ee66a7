//! Replays the loss and layer-norm cases of the workspace's `tests/data/ops.json` (PyTorch 2.15, float64):
//! values, and gradients of `sum(output * upstream)` with respect to every float input, to
//! 1e-10 relative.

use ndarray::ArrayD;
use rand::SeedableRng;
use serde_json::Value;
use tapegrad_autograd::{Tape, Var};
use tapegrad_nn::Module;
use tapegrad_nn::layers::{LayerNorm, layer_norm};
use tapegrad_nn::losses;

use super::golden::{self, array, assert_close, floats};

struct Case {
    op: String,
    attrs: Value,
    inputs: Vec<ArrayD<f64>>,
    output: ArrayD<f64>,
    upstream: ArrayD<f64>,
    grads: Vec<Option<ArrayD<f64>>>,
}

fn cases() -> Vec<Case> {
    cases_in("ops.json")
}

/// The cases of `tests/data/<file>`.
fn cases_in(file: &str) -> Vec<Case> {
    golden::cases(file)
        .iter()
        .map(|c| {
            let inputs: Vec<ArrayD<f64>> = c["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| array(&i["shape"], &i["values"]))
                .collect();
            let output = array(&c["output"]["shape"], &c["output"]["values"]);
            let upstream = array(&c["output"]["shape"], &c["upstream"]);
            let grads = c["grads"]
                .as_array()
                .unwrap()
                .iter()
                .zip(&inputs)
                .map(|(g, input)| {
                    (!g.is_null())
                        .then(|| ArrayD::from_shape_vec(input.raw_dim(), floats(g)).unwrap())
                })
                .collect();
            Case {
                op: c["op"].as_str().unwrap().to_string(),
                attrs: c["attrs"].clone(),
                inputs,
                output,
                upstream,
                grads,
            }
        })
        .collect()
}

fn case(op: &str) -> Case {
    cases()
        .into_iter()
        .find(|c| c.op == op)
        .unwrap_or_else(|| panic!("no case `{op}` in ops.json"))
}

/// Runs `f` on the case's inputs (as variables), checks the output, and the gradients of
/// `sum(output * upstream)` with respect to the inputs that have one.
fn replay(case: &Case, f: impl for<'t> Fn(&'t Tape<'t, f64>, &[Var<'t, f64>]) -> Var<'t, f64>) {
    let tape = Tape::new();
    let vars: Vec<Var<'_, f64>> = case.inputs.iter().map(|a| tape.var(a.clone())).collect();
    let out = f(&tape, &vars);
    assert_close(
        &format!("{} output", case.op),
        &out.to_array(),
        &case.output,
    );
    let grads = (out * tape.constant(case.upstream.clone()))
        .sum()
        .backward();
    for (i, (var, want)) in vars.iter().zip(&case.grads).enumerate() {
        if let Some(want) = want {
            let got = grads
                .get(*var)
                .unwrap_or_else(|| panic!("{}: no gradient for input {i}", case.op));
            assert_close(&format!("{} gradient of input {i}", case.op), got, want);
        }
    }
}

/// `F.smooth_l1_loss` at three `beta`s (`extra.json`); at `beta = 1` it is also `huber`.
#[test]
fn smooth_l1() {
    let cases: Vec<Case> = cases_in("extra.json")
        .into_iter()
        .filter(|c| c.op == "smooth_l1")
        .collect();
    assert_eq!(cases.len(), 3);
    for case in &cases {
        let beta = case.attrs["beta"].as_f64().unwrap();
        replay(case, |_, v| losses::smooth_l1(v[0], v[1], beta));
        if beta == 1.0 {
            replay(case, |_, v| losses::huber(v[0], v[1], 1.0));
        }
    }
}

#[test]
fn mse() {
    replay(&case("mse"), |_, v| losses::mse(v[0], v[1]));
}

#[test]
fn mae() {
    replay(&case("mae"), |_, v| losses::mae(v[0], v[1]));
}

#[test]
fn huber() {
    let case = case("huber");
    let delta = case.attrs["delta"].as_f64().unwrap();
    replay(&case, |_, v| losses::huber(v[0], v[1], delta));
}

#[test]
fn binary_cross_entropy() {
    replay(&case("binary_cross_entropy"), |_, v| {
        losses::binary_cross_entropy(v[0], v[1])
    });
}

#[test]
fn binary_cross_entropy_with_logits() {
    replay(&case("binary_cross_entropy_with_logits"), |_, v| {
        losses::binary_cross_entropy_with_logits(v[0], v[1])
    });
}

#[test]
fn categorical_cross_entropy() {
    replay(&case("categorical_cross_entropy"), |_, v| {
        losses::categorical_cross_entropy(v[0], v[1])
    });
}

#[test]
fn sparse_categorical_cross_entropy_with_float_labels() {
    // The labels (i64 in the file) become a variable of floats; it gets no gradient.
    replay(&case("sparse_categorical_cross_entropy"), |_, v| {
        losses::sparse_categorical_cross_entropy(v[0], v[1])
    });
}

#[test]
fn sparse_categorical_cross_entropy_with_indices() {
    let case = case("sparse_categorical_cross_entropy");
    let labels: Vec<usize> = case.inputs[1].iter().map(|&l| l as usize).collect();
    replay(&case, |_, v| {
        losses::sparse_categorical_cross_entropy_indices(v[0], &labels)
    });
}

#[test]
fn layer_norm_function() {
    let case = case("layer_norm");
    let eps = case.attrs["eps"].as_f64().unwrap();
    replay(&case, |_, v| layer_norm(v[0], Some(v[1]), Some(v[2]), eps));
}

#[test]
fn layer_norm_module() {
    let case = case("layer_norm");
    let features = case.inputs[0].shape()[1];
    let mut norm = LayerNorm::<f64>::new().eps(case.attrs["eps"].as_f64().unwrap());
    norm.build(&[features], &mut rand::rngs::StdRng::seed_from_u64(0));
    {
        let mut params = norm.params_mut();
        params[0].assign(case.inputs[1].clone());
        params[1].assign(case.inputs[2].clone());
    }
    let tape = Tape::new();
    let x = tape.var(case.inputs[0].clone());
    let out = norm.forward(x);
    assert_close("layer_norm output", &out.to_array(), &case.output);
    let grads = (out * tape.constant(case.upstream.clone()))
        .sum()
        .backward();
    assert_close(
        "layer_norm d/dx",
        &grads[x],
        case.grads[0].as_ref().unwrap(),
    );
    assert_close(
        "layer_norm d/dgamma",
        &grads[norm.gamma().unwrap()],
        case.grads[1].as_ref().unwrap(),
    );
    assert_close(
        "layer_norm d/dbeta",
        &grads[norm.beta().unwrap()],
        case.grads[2].as_ref().unwrap(),
    );
}
