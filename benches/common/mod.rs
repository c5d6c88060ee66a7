//! Shared by the benches (`#[path = "common/mod.rs"] mod common;`): deterministic data and
//! the 784-256-128-10 MLP written directly on the autograd API.
//!
//! Not a bench itself (Cargo only discovers `benches/*.rs` and `benches/*/main.rs`).
#![allow(dead_code)]

use ndarray::{Array1, Array2, ArrayD};
use tapegrad::autograd::{Grads, Param, Tape, Var};
use tapegrad::nn::layers::{Activation, Dense, Sequential};

/// A small deterministic generator (SplitMix64), so every run benchmarks the same numbers
/// without a `rand` dependency.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[-limit, limit)`.
    pub fn symmetric(&mut self, limit: f32) -> f32 {
        (2.0 * self.uniform() - 1.0) * limit
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// A `rows × cols` matrix of uniform values in `[-1, 1)`.
pub fn matrix(rows: usize, cols: usize, seed: u64) -> ArrayD<f32> {
    let mut rng = SplitMix::new(seed);
    Array2::from_shape_simple_fn((rows, cols), || rng.symmetric(1.0)).into_dyn()
}

/// The MLP's layer sizes.
pub const LAYERS: [usize; 4] = [784, 256, 128, 10];

/// Glorot-uniform kernels and zero biases (Keras' `Dense` defaults, the same scheme as the
/// PyTorch side of `benches/compare`).
pub struct Mlp {
    pub params: Vec<Param<f32>>,
}

impl Mlp {
    pub fn new(seed: u64) -> Self {
        let mut rng = SplitMix::new(seed);
        let mut params = Vec::new();
        for (i, pair) in LAYERS.windows(2).enumerate() {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let limit = (6.0 / (fan_in + fan_out) as f32).sqrt();
            let w = Array2::from_shape_simple_fn((fan_in, fan_out), || rng.symmetric(limit));
            params.push(Param::new(format!("dense_{i}.kernel"), w.into_dyn()));
            let b = Array1::<f32>::zeros(fan_out);
            params.push(Param::new(format!("dense_{i}.bias"), b.into_dyn()));
        }
        Mlp { params }
    }

    /// `(x·W1 + b1).relu() → (·W2 + b2).relu() → ·W3 + b3`: the logits (`linear`:
    /// `matmul` and `+` while recording gradients, one fused kernel call under `no_grad`).
    pub fn forward<'t>(&'t self, tape: &'t Tape<'t, f32>, x: Var<'t, f32>) -> Var<'t, f32> {
        let p = |i: usize| tape.param(&self.params[i]);
        let h = x.linear_relu(p(0), Some(p(1)));
        let h = h.linear_relu(p(2), Some(p(3)));
        h.linear(p(4), Some(p(5)))
    }

    /// The gradients of the mean softmax cross-entropy on one batch (and its value).
    pub fn grads(&self, x: &ArrayD<f32>, labels: &ArrayD<usize>) -> (Grads<f32>, f32) {
        let tape = Tape::new();
        let logits = self.forward(&tape, tape.constant_ref(x));
        let loss = cross_entropy(logits, labels);
        let value = loss.item();
        (loss.backward(), value)
    }

    /// One SGD step written by hand: `w -= lr * grad`.
    pub fn step_manual(&mut self, x: &ArrayD<f32>, labels: &ArrayD<usize>, lr: f32) -> f32 {
        let (grads, loss) = self.grads(x, labels);
        for p in &mut self.params {
            let g = grads
                .by_id(p.id())
                .expect("every parameter gets a gradient");
            p.value_mut().scaled_add(-lr, g);
        }
        loss
    }

    /// Inference: the logits, recorded under `no_grad`.
    pub fn predict(&self, x: &ArrayD<f32>) -> f32 {
        let tape = Tape::new();
        tape.no_grad(|| {
            let logits = self.forward(&tape, tape.constant_ref(x));
            logits.value()[[0, 0]]
        })
    }

    /// Copies `other`'s values into these parameters (same ids: optimizer state survives).
    pub fn copy_from(&mut self, other: &Mlp) {
        for (p, q) in self.params.iter_mut().zip(&other.params) {
            p.value_mut().assign(q.value());
        }
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param<f32>> {
        self.params.iter_mut().collect()
    }
}

/// The same MLP as [`Mlp`] built from `nn` layers: `Sequential` of `Dense` with ReLU,
/// initialised from `seed`.
pub fn sequential(seed: u64) -> Sequential<f32> {
    Sequential::new()
        .add(Dense::new(LAYERS[1]).activation(Activation::Relu))
        .add(Dense::new(LAYERS[2]).activation(Activation::Relu))
        .add(Dense::new(LAYERS[3]))
        .seed(seed)
        .with_input_shape(&[LAYERS[0]])
}

/// Mean softmax cross-entropy of `logits` (batch × classes) against class indices of shape
/// `(batch, 1)`: `-mean(log_softmax(logits)[i, label_i])`.
pub fn cross_entropy<'t>(logits: Var<'t, f32>, labels: &ArrayD<usize>) -> Var<'t, f32> {
    -logits.log_softmax(-1).gather(1, labels).mean()
}

/// `batches` batches of `batch` MNIST-like samples (uniform pixels in `[0, 1)`) with random
/// labels in `0..10`, as `(x, labels of shape (batch, 1))`. Random labels cannot be fitted
/// quickly, so the step's cost stays that of ordinary training (no saturated softmax).
pub fn mnist_like(batch: usize, batches: usize, seed: u64) -> Vec<(ArrayD<f32>, ArrayD<usize>)> {
    let mut rng = SplitMix::new(seed);
    (0..batches)
        .map(|_| {
            let x = Array2::from_shape_simple_fn((batch, LAYERS[0]), || rng.uniform()).into_dyn();
            let y = Array2::from_shape_simple_fn((batch, 1), || rng.below(LAYERS[3])).into_dyn();
            (x, y)
        })
        .collect()
}

/// Labels as a flat list (what `tapegrad_nn::losses::*_indices` take).
pub fn flat_labels(labels: &ArrayD<usize>) -> Vec<usize> {
    labels.iter().copied().collect()
}

/// The article's line: `xs = -1..4`, `ys = 5x + 1`, as `(6, 1)` columns.
pub fn line_data() -> (Array2<f32>, Array2<f32>) {
    let xs = Array2::from_shape_fn((6, 1), |(i, _)| i as f32 - 1.0);
    let ys = xs.mapv(|x| 5.0 * x + 1.0);
    (xs, ys)
}

/// The line fit written by hand on the tape: `y = x·w + b`, MSE, SGD, full batch.
/// Returns the final `(w, b)`.
pub fn fit_line_by_hand(epochs: usize, lr: f32) -> (f32, f32) {
    let (xs, ys) = line_data();
    let (xs, ys) = (xs.into_dyn(), ys.into_dyn());
    let mut w = Param::new("w", ndarray::arr2(&[[0.5_f32]]).into_dyn());
    let mut b = Param::new("b", ndarray::arr1(&[0.0_f32]).into_dyn());
    for _ in 0..epochs {
        let grads = {
            let tape = Tape::new();
            let pred = tape.constant_ref(&xs).matmul(tape.param(&w)) + tape.param(&b);
            let err = pred - tape.constant_ref(&ys);
            (err * err).mean().backward()
        };
        let gw = grads.param(&w).expect("w has a gradient").clone();
        let gb = grads.param(&b).expect("b has a gradient").clone();
        w.value_mut().scaled_add(-lr, &gw);
        b.value_mut().scaled_add(-lr, &gb);
    }
    let w_final = w.value().iter().next().copied().unwrap_or_default();
    let b_final = b.value().iter().next().copied().unwrap_or_default();
    (w_final, b_final)
}

/// Minor page faults of this process so far, all its threads included
/// (`getrusage(RUSAGE_SELF).ru_minflt`; 0 where there is no `getrusage`).
#[cfg(unix)]
pub fn minor_faults() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` writes the whole struct on success, checked before it is read;
    // `RUSAGE_SELF` is a valid `who`.
    let usage = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()), 0);
        usage.assume_init()
    };
    u64::try_from(usage.ru_minflt).unwrap_or(0)
}

/// Minor page faults: none counted where there is no `getrusage`.
#[cfg(not(unix))]
pub fn minor_faults() -> u64 {
    0
}

/// The minor page faults per call of `step` over `steps` calls, after `warmup` calls.
pub fn faults_per_step(warmup: usize, steps: usize, mut step: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        step();
    }
    let before = minor_faults();
    for _ in 0..steps {
        step();
    }
    (minor_faults() - before) as f64 / steps as f64
}

/// Links of the scalar chain `x = tanh(x·w + b)`: 3 recorded ops each, 1,002 in all.
pub const CHAIN_LINKS: usize = 334;

/// The scalar chain, forward and backward on a fresh tape (the tape-overhead workload of
/// `tape.rs` and the comparison); returns the gradient of `w`.
pub fn scalar_chain(w: &Param<f32>, b: &Param<f32>) -> f32 {
    let tape = Tape::new();
    let (wv, bv) = (tape.param(w), tape.param(b));
    let mut x = tape.var(ndarray::arr0(0.5_f32).into_dyn());
    for _ in 0..CHAIN_LINKS {
        x = (x * wv + bv).tanh();
    }
    let grads = x.backward();
    grads.param(w).map_or(0.0, |g| g[[]])
}
