//! Every single-op case of the workspace's `tests/data/ops.json` (PyTorch 2.x in float64, copied from
//! `shared/golden/ops.json`) replayed on the tape: the forward values, then the gradient of
//! `sum(output * upstream)` with respect to each input, to 1e-10 relative + 1e-12 absolute.
//!
//! The loss cases of the same file belong to the `nn` crate and are replayed there:
//! `mse`, `mae`, `huber`, `binary_cross_entropy`, `binary_cross_entropy_with_logits`,
//! `sparse_categorical_cross_entropy`, `categorical_cross_entropy`, `layer_norm`.

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;

use ndarray::{ArrayD, IxDyn};
use serde_json::Value;
use tapegrad_autograd::{Tape, Var};

use super::tape::payload_message;

const RTOL: f64 = 1e-10;
const ATOL: f64 = 1e-12;

/// The cases replayed by the nn crate, not here.
const LOSS_CASES: &[&str] = &[
    "mse",
    "mae",
    "huber",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "sparse_categorical_cross_entropy",
    "categorical_cross_entropy",
    "layer_norm",
];

/// Every op this file replays; a case of the golden file in neither list fails the suite.
const OP_CASES: &[&str] = &[
    "add",
    "sub",
    "mul",
    "div",
    "neg",
    "powf",
    "powi",
    "exp",
    "ln",
    "sqrt",
    "abs",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "relu",
    "leaky_relu",
    "elu",
    "gelu",
    "gelu_tanh",
    "softplus",
    "maximum",
    "minimum",
    "clamp",
    "matmul_2d",
    "matmul_vec_mat",
    "matmul_mat_vec",
    "matmul_dot",
    "matmul_batched_broadcast",
    "transpose",
    "permute",
    "reshape",
    "broadcast_to",
    "concat",
    "stack",
    "slice",
    "index_select",
    "gather",
    "sum_all",
    "sum_axis_keepdim",
    "mean_axis",
    "max_axis",
    "min_axis_keepdim",
    "var_axis",
    "logsumexp",
    "softmax",
    "log_softmax",
];

fn load_cases() -> Vec<Value> {
    load_golden("ops.json")
}

/// The `cases` of the workspace's `tests/data/<file>`.
pub(crate) fn load_golden(file: &str) -> Vec<Value> {
    let path = format!("{}/../tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let root: Value = serde_json::from_str(&text).expect("the golden file is valid JSON");
    root["cases"].as_array().expect("`cases` is a list").clone()
}

/// Replays every case whose op is not in `skip` through `replay` (which lists what
/// disagrees with PyTorch; a panic counts as one disagreement) and fails listing them all.
/// Returns the op of each case replayed.
#[track_caller]
pub(crate) fn replay_all(
    cases: &[Value],
    skip: &[&str],
    replay: impl Fn(&Value) -> Vec<String>,
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut replayed = Vec::new();
    for case in cases {
        let op = case["op"].as_str().expect("op is a string");
        if skip.contains(&op) {
            continue;
        }
        replayed.push(op.to_string());
        match std::panic::catch_unwind(AssertUnwindSafe(|| replay(case))) {
            Ok(problems) => failures.extend(problems.into_iter().map(|p| format!("{op}: {p}"))),
            Err(payload) => {
                failures.push(format!("{op}: panicked: {}", payload_message(&*payload)))
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden case(s) disagree with PyTorch:\n{}",
        failures.len(),
        failures.join("\n")
    );
    replayed
}

pub(crate) fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("a list of integers")
        .iter()
        .map(|x| x.as_u64().expect("a non-negative integer") as usize)
        .collect()
}

pub(crate) fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("a list of numbers")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

pub(crate) fn f64_array(shape: &Value, values: &Value) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(&usizes(shape)), floats(values)).expect("values fit the shape")
}

fn index_array(input: &Value) -> ArrayD<usize> {
    ArrayD::from_shape_vec(IxDyn(&usizes(&input["shape"])), usizes(&input["values"]))
        .expect("indices fit the shape")
}

fn attr_isize(case: &Value, name: &str) -> isize {
    case["attrs"][name]
        .as_i64()
        .unwrap_or_else(|| panic!("attribute `{name}` is an integer")) as isize
}

fn attr_f64(case: &Value, name: &str) -> f64 {
    case["attrs"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("attribute `{name}` is a number"))
}

fn attr_bool(case: &Value, name: &str) -> bool {
    case["attrs"][name]
        .as_bool()
        .unwrap_or_else(|| panic!("attribute `{name}` is a boolean"))
}

/// The op of one case applied to its inputs: `x` are the float inputs as tape variables,
/// `idx` the integer inputs (indices), in the order of the case's `inputs`.
fn apply<'t>(case: &Value, x: &[Var<'t, f64>], idx: &[ArrayD<usize>]) -> Var<'t, f64> {
    let op = case["op"].as_str().expect("op is a string");
    match op {
        "add" => x[0] + x[1],
        "sub" => x[0] - x[1],
        "mul" => x[0] * x[1],
        "div" => x[0] / x[1],
        "neg" => -x[0],
        "powf" => x[0].powf(attr_f64(case, "p")),
        "powi" => x[0].powi(attr_isize(case, "n") as i32),
        "exp" => x[0].exp(),
        "ln" => x[0].ln(),
        "sqrt" => x[0].sqrt(),
        "abs" => x[0].abs(),
        "sin" => x[0].sin(),
        "cos" => x[0].cos(),
        "tanh" => x[0].tanh(),
        "sigmoid" => x[0].sigmoid(),
        "relu" => x[0].relu(),
        "leaky_relu" => x[0].leaky_relu(attr_f64(case, "negative_slope")),
        "elu" => x[0].elu(attr_f64(case, "alpha")),
        "gelu" => x[0].gelu(),
        "gelu_tanh" => x[0].gelu_tanh(),
        "softplus" => x[0].softplus(),
        "maximum" => x[0].maximum(x[1]),
        "minimum" => x[0].minimum(x[1]),
        "clamp" => x[0].clamp(attr_f64(case, "min"), attr_f64(case, "max")),
        "matmul_2d"
        | "matmul_vec_mat"
        | "matmul_mat_vec"
        | "matmul_dot"
        | "matmul_batched_broadcast" => x[0].matmul(x[1]),
        "transpose" => x[0].t(),
        "permute" => {
            let axes: Vec<isize> = usizes(&case["attrs"]["axes"])
                .iter()
                .map(|&a| a as isize)
                .collect();
            x[0].permute(&axes)
        }
        "reshape" => x[0].reshape(&usizes(&case["attrs"]["shape"])),
        "broadcast_to" => x[0].broadcast_to(&usizes(&case["attrs"]["shape"])),
        "concat" => Var::concat(&[x[0], x[1]], attr_isize(case, "axis")),
        "stack" => Var::stack(&[x[0], x[1]], attr_isize(case, "axis")),
        "slice" => x[0].slice(
            attr_isize(case, "axis"),
            attr_isize(case, "start") as usize,
            attr_isize(case, "end") as usize,
        ),
        "index_select" => {
            let indices: Vec<usize> = idx[0].iter().copied().collect();
            x[0].index_select(attr_isize(case, "axis"), &indices)
        }
        "gather" => x[0].gather(attr_isize(case, "axis"), &idx[0]),
        "sum_all" => x[0].sum(),
        "sum_axis_keepdim" => x[0].sum_axes(attr_isize(case, "axis"), attr_bool(case, "keepdim")),
        "mean_axis" => x[0].mean_axes(attr_isize(case, "axis"), attr_bool(case, "keepdim")),
        "max_axis" => x[0].max_axes(attr_isize(case, "axis"), attr_bool(case, "keepdim")),
        "min_axis_keepdim" => x[0].min_axes(attr_isize(case, "axis"), attr_bool(case, "keepdim")),
        "var_axis" => {
            assert_eq!(
                attr_isize(case, "ddof"),
                0,
                "var_axes is the population variance"
            );
            x[0].var_axes(attr_isize(case, "axis"), false)
        }
        "logsumexp" => x[0].logsumexp(attr_isize(case, "axis"), attr_bool(case, "keepdim")),
        "softmax" => x[0].softmax(attr_isize(case, "axis")),
        "log_softmax" => x[0].log_softmax(attr_isize(case, "axis")),
        other => panic!("no mapping for golden op `{other}`"),
    }
}

/// Within tolerance (false for NaN).
fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= ATOL + RTOL * want.abs()
}

/// The first element where `got` and `want` differ beyond tolerance, described.
pub(crate) fn mismatch(
    what: &str,
    got: &ArrayD<f64>,
    want_shape: &[usize],
    want: &[f64],
) -> Option<String> {
    if got.shape() != want_shape {
        return Some(format!(
            "{what}: shape {:?}, PyTorch {want_shape:?}",
            got.shape()
        ));
    }
    got.iter()
        .zip(want)
        .enumerate()
        .find(|&(_, (&g, &w))| !close(g, w))
        .map(|(i, (g, w))| {
            format!(
                "{what}: element {i} is {g:e}, PyTorch {w:e} (difference {:.3e})",
                (g - w).abs()
            )
        })
}

/// Replays one case; returns a description of every disagreement.
fn replay(case: &Value) -> Vec<String> {
    let tape = Tape::<f64>::new();
    let inputs = case["inputs"].as_array().expect("inputs is a list");
    let mut vars = Vec::new();
    let mut indices = Vec::new();
    for input in inputs {
        match input["dtype"].as_str() {
            Some("f64") => vars.push(tape.var(f64_array(&input["shape"], &input["values"]))),
            Some("i64") => indices.push(index_array(input)),
            other => panic!("unknown input dtype {other:?}"),
        }
    }
    let out = apply(case, &vars, &indices);
    compare_with_pytorch(case, out, &vars)
}

/// Compares `out` with the case's output and, where that agrees, the gradients of
/// `sum(output * upstream)` with respect to `vars` (one per `f64` input of the case, in
/// order; `i64` inputs are indices, without a gradient) with PyTorch's. Returns a
/// description of every disagreement.
pub(crate) fn compare_with_pytorch(
    case: &Value,
    out: Var<'_, f64>,
    vars: &[Var<'_, f64>],
) -> Vec<String> {
    let out_shape = usizes(&case["output"]["shape"]);
    if let Some(problem) = mismatch(
        "forward",
        &out.to_array(),
        &out_shape,
        &floats(&case["output"]["values"]),
    ) {
        return vec![problem];
    }
    // d/dx sum(output * w) is the vector-Jacobian product with the upstream gradient w.
    let upstream = ArrayD::from_shape_vec(IxDyn(&out_shape), floats(&case["upstream"]))
        .expect("upstream has the output's shape");
    let grads = (out * out.tape().constant(upstream)).sum().backward();
    let inputs = case["inputs"].as_array().expect("inputs is a list");
    let expected = case["grads"].as_array().expect("grads is a list");
    let mut problems = Vec::new();
    let mut var_iter = vars.iter();
    for (k, (input, want)) in inputs.iter().zip(expected).enumerate() {
        if input["dtype"] != "f64" {
            assert!(want.is_null(), "an index input has no gradient");
            continue;
        }
        let var = *var_iter.next().expect("one var per float input");
        match grads.get(var) {
            Some(g) => problems.extend(mismatch(
                &format!("gradient of input {k}"),
                g,
                &usizes(&input["shape"]),
                &floats(want),
            )),
            None => problems.push(format!("gradient of input {k}: missing")),
        }
    }
    problems
}

#[test]
fn every_golden_op_case_matches_pytorch_values_and_gradients_in_f64() {
    let replayed: BTreeSet<String> = replay_all(&load_cases(), LOSS_CASES, replay)
        .into_iter()
        .collect();
    assert_eq!(replayed.len(), OP_CASES.len(), "replayed: {replayed:?}");
}

#[test]
fn every_golden_case_is_either_replayed_here_or_left_to_the_nn_crate_by_name() {
    let names: Vec<String> = load_cases()
        .iter()
        .map(|c| c["op"].as_str().expect("op is a string").to_string())
        .collect();
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| !OP_CASES.contains(&n.as_str()) && !LOSS_CASES.contains(&n.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "golden cases nobody replays: {unknown:?}"
    );
    let missing: Vec<&&str> = OP_CASES
        .iter()
        .chain(LOSS_CASES)
        .filter(|n| !names.iter().any(|m| m == *n))
        .collect();
    assert!(
        missing.is_empty(),
        "expected golden cases not in the file: {missing:?}"
    );
    assert_eq!(names.len(), 55, "the golden file holds 55 cases");
}
