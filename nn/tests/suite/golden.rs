//! Reading the workspace's golden files (`tests/data/*.json`, PyTorch in float64) and
//! comparing against them: the helpers `golden_conv` and `golden_losses` share.

use ndarray::{ArrayD, IxDyn};
use serde_json::Value;

/// Relative tolerance; values below the smallest normal `f64` (subnormals, which carry
/// fewer significant bits) are compared absolutely against that bound instead.
const RTOL: f64 = 1e-10;

/// The `cases` of the workspace's `tests/data/<file>`.
pub(crate) fn cases(file: &str) -> Vec<Value> {
    let path = format!("{}/../tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let json: Value = serde_json::from_str(&text).unwrap();
    json["cases"].as_array().unwrap().clone()
}

/// The case named `op` of `tests/data/<file>`.
pub(crate) fn case(file: &str, op: &str) -> Value {
    cases(file)
        .into_iter()
        .find(|c| c["op"] == op)
        .unwrap_or_else(|| panic!("no case `{op}` in {file}"))
}

pub(crate) fn floats(values: &Value) -> Vec<f64> {
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// An array of the shape `shape` (a list of sizes) holding `values` (a list of numbers).
pub(crate) fn array(shape: &Value, values: &Value) -> ArrayD<f64> {
    let shape: Vec<usize> = shape
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), floats(values)).unwrap()
}

#[track_caller]
pub(crate) fn assert_close(what: &str, got: &ArrayD<f64>, want: &ArrayD<f64>) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        let scale = g.abs().max(w.abs()).max(f64::MIN_POSITIVE);
        assert!(
            (g - w).abs() <= RTOL * scale,
            "{what}: element {i}: got {g:e}, want {w:e} (relative error {:e})",
            (g - w).abs() / scale
        );
    }
}
