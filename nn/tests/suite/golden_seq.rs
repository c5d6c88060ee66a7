//! `cross_entropy` (ignored targets, label smoothing) and `Embedding::padding_idx` against
//! PyTorch (`tests/data/seq.json`, float64): values, gradients of
//! `Σ_k sum(outputs[k] · upstream[k])` and, where given, the Hessian-vector product, at
//! 1e-10 relative.

use ndarray::{ArrayD, Axis, IxDyn};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;
use tapegrad_autograd::{Tape, Var};
use tapegrad_nn::Module;
use tapegrad_nn::layers::Embedding;
use tapegrad_nn::losses::{CrossEntropy, cross_entropy};

use crate::golden::{array, assert_close, cases, floats};

fn input<'c>(case: &'c Value, name: &str) -> &'c Value {
    case["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no input `{name}`"))
}

fn input_array(case: &Value, name: &str) -> ArrayD<f64> {
    let i = input(case, name);
    array(&i["shape"], &i["values"])
}

fn integers(case: &Value, name: &str) -> Vec<i64> {
    input(case, name)["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

/// The first element of a per-input list (`grads`, `direction`, `hvp`) as an array of
/// `shape`.
fn first_of(case: &Value, key: &str, shape: &[usize]) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(shape), floats(&case[key][0])).unwrap()
}

fn options(case: &Value) -> CrossEntropy {
    let attrs = &case["attrs"];
    CrossEntropy::default()
        .ignore_index(attrs["ignore_index"].as_i64())
        .label_smoothing(attrs["label_smoothing"].as_f64().unwrap())
}

#[test]
fn cross_entropy_matches_pytorch() {
    let all: Vec<Value> = cases("seq.json")
        .into_iter()
        .filter(|c| c["op"] == "cross_entropy")
        .collect();
    assert_eq!(all.len(), 3);
    let mut hvps = 0;
    for (k, case) in all.iter().enumerate() {
        let logits = input_array(case, "logits");
        let targets = integers(case, "target");
        let options = options(case);
        let upstream = floats(&case["upstream"][0])[0];
        let what = |s: &str| format!("cross_entropy case {k}: {s}");

        let tape = Tape::<f64>::new();
        let x = tape.var(logits.clone());
        let loss = cross_entropy(x, &targets, options);
        let output = &case["outputs"][0];
        assert_close(
            &what("loss"),
            &loss.to_array(),
            &array(&output["shape"], &output["values"]),
        );
        let g = tape.grad(loss.mul_scalar(upstream), &[x])[0];
        assert_close(
            &what("grad"),
            &g.to_array(),
            &first_of(case, "grads", logits.shape()),
        );
        if !case["hvp"].is_null() {
            hvps += 1;
            let direction = tape.constant(first_of(case, "direction", logits.shape()));
            let hvp = tape.grad((g * direction).sum(), &[x])[0];
            assert_close(
                &what("hvp"),
                &hvp.to_array(),
                &first_of(case, "hvp", logits.shape()),
            );
        }
    }
    assert_eq!(hvps, 1);
}

#[test]
fn embedding_padding_idx_matches_pytorch() {
    let case = cases("seq.json")
        .into_iter()
        .find(|c| c["op"] == "embedding")
        .unwrap();
    let pad = case["attrs"]["padding_idx"].as_u64().unwrap() as usize;
    let weight = input_array(&case, "weight");
    let indices: Vec<f64> = integers(&case, "indices")
        .iter()
        .map(|&i| i as f64)
        .collect();
    let index_shape = input(&case, "indices")["shape"].clone();
    let indices = array(&index_shape, &Value::from(indices));
    let (num, dim) = (weight.shape()[0], weight.shape()[1]);

    let mut embedding = Embedding::<f64>::new(num, dim).padding_idx(pad);
    embedding.build(&indices.shape()[1..], &mut StdRng::seed_from_u64(0));
    // Built with the padding row at zeros; PyTorch's case loads a non-zero one.
    assert!(
        embedding
            .embeddings()
            .unwrap()
            .value()
            .index_axis(Axis(0), pad)
            .iter()
            .all(|&v| v == 0.0)
    );
    assert!(weight.index_axis(Axis(0), pad).iter().any(|&v| v != 0.0));
    embedding.params_mut()[0].assign(weight.clone());

    let tape = Tape::new();
    let out = embedding.forward(tape.constant(indices));
    let output = &case["outputs"][0];
    let want = array(&output["shape"], &output["values"]);
    assert_close("embedding output", &out.to_array(), &want);
    let upstream = tape.constant(array(&output["shape"], &case["upstream"][0]));
    let grads = (out * upstream).sum().backward();
    let table_grad = grads.param(embedding.embeddings().unwrap()).unwrap();
    assert_close(
        "embedding weight grad",
        table_grad,
        &first_of(&case, "grads", weight.shape()),
    );
    assert!(
        table_grad
            .index_axis(Axis(0), pad)
            .iter()
            .all(|&g| g == 0.0)
    );
}

/// The padding row gets a zero gradient at second order too (the HVP through the table).
#[test]
fn embedding_padding_row_has_no_second_order_gradient() {
    let mut embedding = Embedding::<f64>::new(4, 2).padding_idx(1);
    embedding.build(&[3], &mut StdRng::seed_from_u64(3));
    let tape = Tape::new();
    let table = tape.param(embedding.embeddings().unwrap());
    let out: Var<'_, f64> =
        embedding.forward(tape.constant(ndarray::array![[1.0, 2.0, 1.0]].into_dyn()));
    let g = tape.grad(out.powi(3).sum(), &[table])[0];
    assert_eq!(
        g.to_array()
            .index_axis(Axis(0), 1)
            .iter()
            .copied()
            .collect::<Vec<f64>>(),
        vec![0.0, 0.0]
    );
    let h = tape.grad((g * g).sum(), &[table])[0].to_array();
    assert_eq!(
        h.index_axis(Axis(0), 1)
            .iter()
            .copied()
            .collect::<Vec<f64>>(),
        vec![0.0, 0.0]
    );
    assert!(h.index_axis(Axis(0), 2).iter().all(|&v| v != 0.0));
}
