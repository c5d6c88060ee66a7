//! Drawing tokens from a model's logits: [`sample_categorical`] (softmax with a temperature,
//! optionally restricted to the `k` most likely classes, as makemore samples) and
//! [`argmax`] (greedy decoding).
//!
//! ```
//! use ndarray::array;
//! use rand::{rngs::StdRng, SeedableRng};
//! use tapegrad_nn::sampling::{argmax, sample_categorical, Sampling};
//!
//! let logits = array![[0.0_f32, 3.0, 1.0], [5.0, -1.0, 0.0]];
//! let mut rng = StdRng::seed_from_u64(7);
//! let tokens = sample_categorical(logits.view(), &Sampling::default(), &mut rng);
//! assert_eq!(tokens.len(), 2);
//! let greedy = sample_categorical(logits.view(), &Sampling::default().top_k(1), &mut rng);
//! assert_eq!(greedy, argmax(logits.view()));
//! assert_eq!(greedy, vec![1, 0]);
//! ```

use ndarray::{ArrayView1, ArrayView2};
use rand::Rng;
use tapegrad_autograd::Float;

/// How [`sample_categorical`] turns logits into probabilities: divided by `temperature`,
/// then only the `top_k` largest kept (when set), then a softmax.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// Divides the logits before the softmax (default 1): below 1 sharpens the
    /// distribution, above 1 flattens it. Must be positive and finite. As it goes to 0 the
    /// draw becomes [`argmax`] (the largest logit takes all the probability once the others'
    /// `exp((x - max) / temperature)` underflow; tied maxima share it equally).
    pub temperature: f64,
    /// Keeps only the `k` largest logits of each row (the rest get probability zero; logits
    /// tied with the `k`-th largest are kept too, as makemore's `logits < v[:, [-1]]`
    /// masking does). `None` (the default) keeps all. Must be at least 1.
    pub top_k: Option<usize>,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 1.0,
            top_k: None,
        }
    }
}

impl Sampling {
    /// Sets the temperature.
    pub fn temperature(mut self, temperature: f64) -> Self {
        self.temperature = temperature;
        self
    }

    /// Keeps only the `k` largest logits of each row.
    pub fn top_k(mut self, k: usize) -> Self {
        self.top_k = Some(k);
        self
    }
}

/// Draws one class per row of `logits` `[N, C]` from `softmax(logits / temperature)`,
/// restricted to each row's `top_k` largest logits when set: torch's
/// `multinomial(softmax(logits / t), num_samples=1)` after makemore's top-k masking, with
/// the draws taken from `rng` (one `f64` per row, by inverse transform), so a seeded `rng`
/// reproduces them.
///
/// Computed in `f64`. A logit of `-inf` has probability zero; logits of `+inf` share all
/// the probability equally.
///
/// Panics if the temperature is not positive and finite, if `top_k` is `Some(0)`, if `C`
/// is 0, or at a NaN logit or a row whose logits are all `-inf` (naming the row).
#[track_caller]
pub fn sample_categorical<T: Float, R: Rng + ?Sized>(
    logits: ArrayView2<'_, T>,
    options: &Sampling,
    rng: &mut R,
) -> Vec<usize> {
    let temperature = options.temperature;
    assert!(
        temperature > 0.0 && temperature.is_finite(),
        "sample_categorical: temperature must be positive and finite, got {temperature}"
    );
    assert!(
        options.top_k != Some(0),
        "sample_categorical: top_k must be at least 1"
    );
    assert!(
        logits.ncols() > 0,
        "sample_categorical: the logits {:?} have no classes",
        logits.shape()
    );
    logits
        .rows()
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let weights = row_weights(i, row, temperature, options.top_k);
            let total: f64 = weights.iter().sum();
            let mut u = rng.random::<f64>() * total;
            // The last class with a nonzero weight catches `u` left over by rounding.
            let last = weights
                .iter()
                .rposition(|&w| w > 0.0)
                .expect("a positive weight");
            weights
                .iter()
                .position(|&w| {
                    if w > 0.0 && u < w {
                        return true;
                    }
                    u -= w;
                    false
                })
                .unwrap_or(last)
        })
        .collect()
}

/// The unnormalized probabilities of one row: `exp((x - max) / temperature)` for the kept
/// logits, zero for the others.
#[track_caller]
fn row_weights<T: Float>(
    i: usize,
    row: ArrayView1<'_, T>,
    temperature: f64,
    top_k: Option<usize>,
) -> Vec<f64> {
    let x: Vec<f64> = row.iter().map(|&v| Float::to_f64(v)).collect();
    if let Some(c) = x.iter().position(|v| v.is_nan()) {
        panic!("sample_categorical: logit {c} of row {i} is NaN");
    }
    let threshold = match top_k {
        Some(k) if k < x.len() => {
            let mut sorted = x.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            sorted[k - 1]
        }
        _ => f64::NEG_INFINITY,
    };
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    assert!(
        max > f64::NEG_INFINITY,
        "sample_categorical: every logit of row {i} is -inf"
    );
    x.iter()
        .map(|&v| {
            if v < threshold || v == f64::NEG_INFINITY {
                0.0
            } else if max == f64::INFINITY {
                if v == max { 1.0 } else { 0.0 }
            } else {
                ((v - max) / temperature).exp()
            }
        })
        .collect()
}

/// The index of the largest logit of each row of `logits` `[N, C]` (the first one when
/// several are equal): greedy decoding, the limit of [`sample_categorical`] as the
/// temperature goes to 0. Panics if `C` is 0 or at a NaN logit (naming the row).
///
/// ```
/// use ndarray::array;
/// use tapegrad_nn::sampling::argmax;
///
/// assert_eq!(argmax(array![[0.1, 2.0, 2.0], [-1.0, -3.0, -2.0]].view()), vec![1, 0]);
/// ```
#[track_caller]
pub fn argmax<T: Float>(logits: ArrayView2<'_, T>) -> Vec<usize> {
    assert!(
        logits.ncols() > 0,
        "argmax: the logits {:?} have no classes",
        logits.shape()
    );
    logits
        .rows()
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let mut best = 0;
            for (c, &v) in row.iter().enumerate() {
                assert!(!v.is_nan(), "argmax: logit {c} of row {i} is NaN");
                if v > row[best] {
                    best = c;
                }
            }
            best
        })
        .collect()
}
