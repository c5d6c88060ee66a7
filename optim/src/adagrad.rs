//! Adagrad, with learning-rate decay and an initial accumulator value.

use ndarray::ArrayD;
use tapegrad_autograd::{Float, Grads, Param};

use crate::optimizer::{
    OptimError, Optimizer, StateStore, common_optimizer_methods, dispatch, non_negative,
    optimizer_constructors, scalar, setters, with_l2_decay, zip1,
};

/// Hyper-parameters of [`Adagrad`], with the meaning and defaults of PyTorch's
/// `torch.optim.Adagrad`.
///
/// Set fields directly or chain the setters, then [`build`](AdagradConfig::build).
#[derive(Clone, Debug, PartialEq)]
pub struct AdagradConfig {
    /// Learning rate (default `1e-2`), finite and `>= 0`.
    pub lr: f64,
    /// Learning-rate decay: step `t` uses `lr / (1 + (t − 1) · lr_decay)` (default `0`), `>= 0`.
    pub lr_decay: f64,
    /// L2 penalty added to the gradient, `g + weight_decay · p` (default `0`), `>= 0`.
    pub weight_decay: f64,
    /// The starting value of the sum of squared gradients (default `0`), `>= 0`.
    pub initial_accumulator_value: f64,
    /// Added to the denominator for stability (default `1e-10`), `>= 0`.
    pub eps: f64,
}

impl Default for AdagradConfig {
    /// PyTorch's defaults: `lr = 1e-2`, no decay, no weight decay, accumulator starting at
    /// `0`, `eps = 1e-10`.
    fn default() -> Self {
        AdagradConfig {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
        }
    }
}

impl AdagradConfig {
    setters! {
        /// Sets the learning-rate decay.
        lr_decay: f64,
        /// Sets the L2 weight decay.
        weight_decay: f64,
        /// Sets the starting value of the accumulator.
        initial_accumulator_value: f64,
        /// Sets the denominator's epsilon.
        eps: f64,
    }

    /// Checks every hyper-parameter.
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidHyperParameter`] naming the first invalid one.
    pub fn validate(&self) -> Result<(), OptimError> {
        non_negative("lr", self.lr)?;
        non_negative("lr_decay", self.lr_decay)?;
        non_negative("weight_decay", self.weight_decay)?;
        non_negative("initial_accumulator_value", self.initial_accumulator_value)?;
        non_negative("eps", self.eps)
    }

    /// The state buffer of each parameter: the sum of squared gradients.
    fn state_keys(&self) -> &'static [&'static str] {
        &["sum"]
    }
}

/// Adagrad, PyTorch's `torch.optim.Adagrad`.
///
/// For each parameter `p` with gradient `g`, at its step `t` (counted per parameter):
///
/// - `g ← g + weight_decay · p (if weight_decay ≠ 0)`
/// - `s ← s + g² (s starts at initial_accumulator_value)`
/// - `p ← p − lr / (1 + (t − 1) · lr_decay) · g / (√s + eps)`
///
/// State: `sum` (s) and the step counter.
///
/// A training loop (the gradient of `Σ (w − 3)²` is computed by hand here; in a model it
/// comes from `loss.backward()`):
///
/// ```
/// use ndarray::arr1;
/// use tapegrad_autograd::{Grads, Param};
/// use tapegrad_optim::{AdagradConfig, Optimizer};
///
/// let mut w = Param::new("w", arr1(&[0.0_f64, 1.0, 5.0]).into_dyn());
/// let mut opt = AdagradConfig::new(0.5).build()?;
/// for _ in 0..500 {
///     let mut grads = Grads::new();
///     grads.insert(w.id(), w.value().mapv(|x| 2.0 * (x - 3.0)));
///     opt.step([&mut w], &grads)?;
/// }
/// assert!(w.value().iter().all(|x| (x - 3.0).abs() < 1e-6));
/// # Ok::<(), tapegrad_optim::OptimError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Adagrad<T> {
    config: AdagradConfig,
    state: StateStore<T>,
}

optimizer_constructors!(Adagrad, AdagradConfig);

impl<T: Float> Adagrad<T> {
    /// One step ([`Optimizer::step_dyn`]), for one element type.
    fn update(
        &mut self,
        params: &mut dyn Iterator<Item = &mut Param<T>>,
        grads: &Grads<T>,
    ) -> Result<(), OptimError> {
        let c = &self.config;
        let wd = c.weight_decay != 0.0;
        let (lr, lr_decay) = (c.lr, c.lr_decay);
        let k = Scalars {
            clr: T::zero(),
            wd: scalar::<T>(c.weight_decay),
            eps: scalar::<T>(c.eps),
        };
        let init = scalar::<T>(c.initial_accumulator_value);
        self.state.step_each(params, grads, init, |p, g, slot| {
            let clr = lr / (1.0 + (slot.step - 1) as f64 * lr_decay);
            let k = Scalars {
                clr: scalar::<T>(clr),
                ..k
            };
            let [s] = slot.bufs.as_mut_slice() else {
                unreachable!("Adagrad keeps one buffer")
            };
            dispatch!(kernel::<T>; [wd]; k, p, g, s);
        })
    }
}

impl<T: Float> Optimizer<T> for Adagrad<T> {
    common_optimizer_methods!(Adagrad, "Adagrad");
}

/// The scalars of one Adagrad step of one parameter, in the element type.
#[derive(Clone, Copy)]
struct Scalars<T> {
    /// `lr / (1 + (t − 1) · lr_decay)`.
    clr: T,
    wd: T,
    eps: T,
}

fn kernel<T: Float, const WD: bool>(
    k: Scalars<T>,
    p: &mut ArrayD<T>,
    g: &ArrayD<T>,
    s: &mut ArrayD<T>,
) {
    zip1(p, g, s, move |p, g, s| {
        let g = with_l2_decay::<T, WD>(g, k.wd, *p);
        *s += g * g;
        let std = s.sqrt() + k.eps;
        *p -= k.clr * (g / std);
    });
}

#[cfg(test)]
mod tests {
    use ndarray::arr1;

    use super::*;

    fn invalid_name(c: AdagradConfig) -> Option<&'static str> {
        match c.build::<f64>() {
            Err(OptimError::InvalidHyperParameter { name, .. }) => Some(name),
            _ => None,
        }
    }

    #[test]
    fn rejects_invalid_hyper_parameters() {
        assert_eq!(invalid_name(AdagradConfig::new(-0.01)), Some("lr"));
        assert_eq!(
            invalid_name(AdagradConfig::new(0.01).lr_decay(-1.0)),
            Some("lr_decay")
        );
        assert_eq!(
            invalid_name(AdagradConfig::new(0.01).weight_decay(-1.0)),
            Some("weight_decay")
        );
        assert_eq!(
            invalid_name(AdagradConfig::new(0.01).initial_accumulator_value(-0.1)),
            Some("initial_accumulator_value")
        );
        assert_eq!(
            invalid_name(AdagradConfig::new(0.01).eps(f64::NAN)),
            Some("eps")
        );
        assert_eq!(invalid_name(AdagradConfig::new(0.01)), None);
    }

    #[test]
    fn defaults_are_pytorch_defaults() {
        let c = AdagradConfig::default();
        assert_eq!(
            (
                c.lr,
                c.lr_decay,
                c.weight_decay,
                c.initial_accumulator_value,
                c.eps
            ),
            (1e-2, 0.0, 0.0, 0.0, 1e-10)
        );
    }

    #[test]
    fn accumulator_starts_at_initial_value() {
        let mut w = Param::new("w", arr1(&[1.0_f64]).into_dyn());
        let mut opt = AdagradConfig::new(0.1)
            .initial_accumulator_value(3.0)
            .eps(0.0)
            .build()
            .unwrap();
        let mut grads = Grads::new();
        grads.insert(w.id(), arr1(&[1.0]).into_dyn());
        opt.step([&mut w], &grads).unwrap();
        let state = opt.param_state(w.id()).unwrap();
        assert_eq!(state.get("sum").unwrap()[[0]], 4.0);
        assert!((w.value()[[0]] - (1.0 - 0.1 * 0.5)).abs() < 1e-15);
    }
}
