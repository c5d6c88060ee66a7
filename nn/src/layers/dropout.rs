//! Inverted dropout.

use std::cell::Cell;

use rand::Rng;
use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Var};

use crate::module::{Module, Visitor};
use crate::onnx::{ExportError, OnnxGraph, OnnxValue};

/// Inverted dropout: in train mode each element is zeroed with probability `rate` and the
/// survivors are scaled by `1 / (1 - rate)`, so the expected output equals the input; in
/// eval mode it is the identity (no op is recorded).
///
/// Masks come from the layer's own generator (SplitMix64), advanced at every call. Its seed
/// is drawn from the model's generator when the layer is built, so a seeded model gives the
/// same masks run after run; [`seed`](Dropout::seed) fixes it explicitly instead. A new
/// layer is in train mode, like a PyTorch module (`Model` switches to eval mode for
/// `evaluate` and `predict`).
///
/// ```
/// use ndarray::ArrayD;
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::layers::Dropout;
/// use tapegrad_nn::Module;
///
/// let mut dropout = Dropout::new(0.25).seed(7);
/// let ones = ArrayD::<f64>::ones(vec![4, 1000]);
/// {
///     let tape = Tape::new();
///     let y = dropout.forward(tape.constant(ones.clone())).to_array();
///     let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
///     assert!((dropped - 0.25).abs() < 0.03);
///     assert!(y.iter().all(|&v| v == 0.0 || v == 1.0 / 0.75));
/// }
/// Module::<f64>::set_training(&mut dropout, false);
/// let tape = Tape::new();
/// assert_eq!(dropout.forward(tape.constant(ones.clone())).to_array(), ones);
/// ```
#[derive(Clone, Debug)]
pub struct Dropout {
    rate: f64,
    explicit_seed: Option<u64>,
    state: Cell<u64>,
    training: bool,
}

/// The seed of a layer that is neither seeded explicitly nor built.
const UNBUILT_SEED: u64 = 0x0d50_u64;

impl Dropout {
    /// Drops each element with probability `rate`, in `[0, 1)`.
    #[track_caller]
    pub fn new(rate: f64) -> Self {
        assert!(
            (0.0..1.0).contains(&rate),
            "Dropout::new: rate must be in [0, 1), got {rate}"
        );
        Dropout {
            rate,
            explicit_seed: None,
            state: Cell::new(UNBUILT_SEED),
            training: true,
        }
    }

    /// Fixes the seed of the masks (otherwise drawn from the model's generator at build).
    pub fn seed(mut self, seed: u64) -> Self {
        self.explicit_seed = Some(seed);
        self.state.set(seed);
        self
    }

    /// The drop probability.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Whether the layer is in train mode (masks active).
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// Applies dropout to `x` (whatever the lifetime of `self`: dropout binds no
    /// parameter). Advances the generator in train mode.
    #[track_caller]
    pub fn apply<'t, T: Float>(&self, x: Var<'t, T>) -> Var<'t, T> {
        if !self.training || self.rate == 0.0 {
            return x;
        }
        // Keep an element when a uniform 64-bit draw is at least rate · 2⁶⁴.
        let threshold = (self.rate * 18_446_744_073_709_551_616.0) as u64;
        let scale = T::from_f64(1.0 / (1.0 - self.rate));
        let mut state = self.state.get();
        let mask = x.value().map(|_| {
            if splitmix64(&mut state) >= threshold {
                scale
            } else {
                T::zero()
            }
        });
        self.state.set(state);
        x * x.tape().constant(mask)
    }
}

/// One step of SplitMix64: advances `state` and returns a uniform 64-bit value.
#[inline]
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl<T: Float> Module<T> for Dropout {
    fn forward<'t>(&'t self, x: Var<'t, T>) -> Var<'t, T> {
        self.apply(x)
    }

    /// Draws the mask seed from `rng` (always one draw, so the initial values of the other
    /// layers do not depend on whether this one is seeded explicitly).
    fn build(&mut self, input_shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        let drawn: u64 = rng.random();
        self.state.set(self.explicit_seed.unwrap_or(drawn));
        input_shape.to_vec()
    }

    /// Reports the mask generator (`"generator"`), which training snapshots save.
    fn visit<'a>(&'a self, v: &mut Visitor<'a, '_, T>) {
        v.generator("generator", &self.state);
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    /// The identity (inference form): no node.
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<T>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        let _ = graph;
        Ok(x.clone())
    }

    fn kind(&self) -> &'static str {
        "dropout"
    }
}
