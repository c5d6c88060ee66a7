//! Helpers of the convolution and pooling kernels' unit tests: the PyTorch golden file
//! `tests/data/conv.json` and its fields, deterministic arrays, comparisons and thread pools.

use ndarray::Array4;
use serde_json::Value;

/// `tests/data/conv.json`, parsed.
pub(crate) fn golden() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/conv.json");
    let text = std::fs::read_to_string(path).expect("tests/data/conv.json");
    serde_json::from_str(&text).expect("valid JSON")
}

/// A JSON array of non-negative integers.
pub(crate) fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|d| d.as_u64().expect("integer") as usize)
        .collect()
}

/// A JSON array of numbers.
pub(crate) fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|d| d.as_f64().expect("number"))
        .collect()
}

/// A JSON shape of four axes.
pub(crate) fn shape4(v: &Value) -> [usize; 4] {
    let s = usizes(v);
    [s[0], s[1], s[2], s[3]]
}

/// A per-axis attribute: one number or `[h, w]`.
pub(crate) fn pair(v: &Value) -> [usize; 2] {
    match v.as_u64() {
        Some(k) => [k as usize; 2],
        None => {
            let v = usizes(v);
            [v[0], v[1]]
        }
    }
}

/// Every element within 1e-10 relative (1e-12 absolute) of PyTorch's.
#[track_caller]
pub(crate) fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-10 * w.abs() + 1e-12,
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

/// Deterministic values in [-1, 1).
pub(crate) fn filled(shape: [usize; 4], seed: u64) -> Array4<f64> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    Array4::from_shape_simple_fn(shape, || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    })
}

/// The bits of every element, to compare results exactly.
pub(crate) fn bits(a: &Array4<f64>) -> Vec<u64> {
    a.iter().map(|v| v.to_bits()).collect()
}

/// Runs `f` on a pool of `threads` threads.
pub(crate) fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
        .install(f)
}
