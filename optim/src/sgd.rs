//! Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay.

use ndarray::ArrayD;
use tapegrad_autograd::{Float, Grads, Param};

use crate::optimizer::{
    OptimError, Optimizer, StateStore, common_optimizer_methods, dispatch, flush_subnormal,
    in_unit_closed, invalid, non_negative, optimizer_constructors, scalar, setters, with_l2_decay,
    zip0, zip1,
};

/// Hyper-parameters of [`Sgd`], with the meaning and defaults of PyTorch's `torch.optim.SGD`.
///
/// Set fields directly or chain the setters, then [`build`](SgdConfig::build):
///
/// ```
/// use tapegrad_optim::{Sgd, SgdConfig};
///
/// let sgd: Sgd<f32> = SgdConfig::new(0.1).momentum(0.9).nesterov(true).build()?;
/// let same: Sgd<f32> = Sgd::with_config(SgdConfig {
///     lr: 0.1,
///     momentum: 0.9,
///     nesterov: true,
///     ..SgdConfig::default()
/// })?;
/// assert_eq!(sgd.config(), same.config());
/// # Ok::<(), tapegrad_optim::OptimError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate (default `1e-3`), finite and `>= 0`.
    pub lr: f64,
    /// Momentum factor (default `0`: no momentum buffer), finite and `>= 0`.
    pub momentum: f64,
    /// Dampening of the momentum (default `0`), in `[0, 1]`.
    pub dampening: f64,
    /// Nesterov momentum (default `false`); needs `momentum > 0` and `dampening == 0`.
    pub nesterov: bool,
    /// L2 penalty added to the gradient, `g + weight_decay * p` (default `0`), `>= 0`.
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    /// PyTorch's defaults: `lr = 1e-3`, no momentum, no dampening, no weight decay.
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

impl SgdConfig {
    setters! {
        /// Sets the momentum factor.
        momentum: f64,
        /// Sets the dampening of the momentum.
        dampening: f64,
        /// Turns Nesterov momentum on or off.
        nesterov: bool,
        /// Sets the L2 weight decay.
        weight_decay: f64,
    }

    /// Checks every hyper-parameter.
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidHyperParameter`] naming the first invalid one.
    pub fn validate(&self) -> Result<(), OptimError> {
        non_negative("lr", self.lr)?;
        non_negative("momentum", self.momentum)?;
        in_unit_closed("dampening", self.dampening)?;
        non_negative("weight_decay", self.weight_decay)?;
        if self.nesterov && self.momentum <= 0.0 {
            return Err(invalid(
                "momentum",
                self.momentum,
                "Nesterov momentum requires momentum > 0",
            ));
        }
        if self.nesterov && self.dampening != 0.0 {
            return Err(invalid(
                "dampening",
                self.dampening,
                "Nesterov momentum requires zero dampening",
            ));
        }
        Ok(())
    }

    /// The state buffers of each parameter: a momentum buffer with momentum, else none.
    fn state_keys(&self) -> &'static [&'static str] {
        if self.momentum != 0.0 {
            &["momentum_buffer"]
        } else {
            &[]
        }
    }
}

/// Stochastic gradient descent, PyTorch's `torch.optim.SGD`.
///
/// For each parameter `p` with gradient `g`, at step `t`:
///
/// - `g ← g + weight_decay · p (if weight_decay ≠ 0)`
/// - `if momentum ≠ 0:`
///   - `b ← g (t = 1)`
///   - `b ← momentum · b + (1 − dampening) · g (t > 1)`
///   - `g ← g + momentum · b if nesterov, else g ← b`
/// - `p ← p − lr · g`
///
/// State: `momentum_buffer` (only with momentum) and the step counter.
///
/// A training loop (the gradient of `Σ (w − 3)²` is computed by hand here; in a model it
/// comes from `loss.backward()`):
///
/// ```
/// use ndarray::{arr1, ArrayD};
/// use tapegrad_autograd::{Grads, Param};
/// use tapegrad_optim::{Optimizer, SgdConfig};
///
/// let mut w = Param::new("w", arr1(&[0.0_f64, 1.0, 5.0]).into_dyn());
/// let mut opt = SgdConfig::new(0.05).momentum(0.9).nesterov(true).build()?;
/// for _ in 0..200 {
///     let mut grads = Grads::new();
///     grads.insert(w.id(), w.value().mapv(|x| 2.0 * (x - 3.0)));
///     opt.step([&mut w], &grads)?;
/// }
/// assert!(w.value().iter().all(|x| (x - 3.0).abs() < 1e-6));
/// # Ok::<(), tapegrad_optim::OptimError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Sgd<T> {
    config: SgdConfig,
    state: StateStore<T>,
}

optimizer_constructors!(Sgd, SgdConfig);

impl<T: Float> Sgd<T> {
    /// One step ([`Optimizer::step_dyn`]), for one element type.
    fn update(
        &mut self,
        params: &mut dyn Iterator<Item = &mut Param<T>>,
        grads: &Grads<T>,
    ) -> Result<(), OptimError> {
        let c = &self.config;
        let k = Scalars {
            lr: scalar::<T>(c.lr),
            wd: scalar::<T>(c.weight_decay),
            momentum: scalar::<T>(c.momentum),
            keep: scalar::<T>(1.0 - c.dampening),
        };
        let wd = c.weight_decay != 0.0;
        let nesterov = c.nesterov;
        self.state
            .step_each(params, grads, T::zero(), |p, g, slot| {
                let first = slot.step == 1;
                match slot.bufs.as_mut_slice() {
                    [] => dispatch!(plain_kernel::<T>; [wd]; k, p, g),
                    [b] => dispatch!(momentum_kernel::<T>; [wd, first, nesterov]; k, p, g, b),
                    _ => unreachable!("SGD keeps at most one buffer"),
                }
            })
    }
}

impl<T: Float> Optimizer<T> for Sgd<T> {
    common_optimizer_methods!(Sgd, "SGD");
}

/// The scalars of one SGD step, in the element type.
#[derive(Clone, Copy)]
struct Scalars<T> {
    lr: T,
    wd: T,
    momentum: T,
    /// `1 − dampening`.
    keep: T,
}

fn plain_kernel<T: Float, const WD: bool>(k: Scalars<T>, p: &mut ArrayD<T>, g: &ArrayD<T>) {
    zip0(p, g, move |p, g| {
        let g = with_l2_decay::<T, WD>(g, k.wd, *p);
        *p -= k.lr * g;
    });
}

/// `FIRST`: the buffer is set to the gradient (PyTorch's first-step rule), not decayed.
fn momentum_kernel<T: Float, const WD: bool, const FIRST: bool, const NESTEROV: bool>(
    k: Scalars<T>,
    p: &mut ArrayD<T>,
    g: &ArrayD<T>,
    b: &mut ArrayD<T>,
) {
    zip1(p, g, b, move |p, g, b| {
        let g = with_l2_decay::<T, WD>(g, k.wd, *p);
        *b = if FIRST {
            g
        } else {
            flush_subnormal(*b * k.momentum + k.keep * g)
        };
        let d = if NESTEROV { g + k.momentum * *b } else { *b };
        *p -= k.lr * d;
    });
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, arr1};

    use super::*;

    fn is_invalid(r: Result<Sgd<f64>, OptimError>, which: &str) -> bool {
        matches!(r, Err(OptimError::InvalidHyperParameter { name, .. }) if name == which)
    }

    #[test]
    fn rejects_invalid_hyper_parameters() {
        assert!(is_invalid(SgdConfig::new(-0.1).build(), "lr"));
        assert!(is_invalid(SgdConfig::new(f64::NAN).build(), "lr"));
        assert!(is_invalid(SgdConfig::new(f64::INFINITY).build(), "lr"));
        assert!(is_invalid(
            SgdConfig::new(0.1).momentum(-0.5).build(),
            "momentum"
        ));
        assert!(is_invalid(
            SgdConfig::new(0.1).weight_decay(-1e-4).build(),
            "weight_decay"
        ));
        assert!(is_invalid(
            SgdConfig::new(0.1).dampening(1.5).build(),
            "dampening"
        ));
        assert!(is_invalid(
            SgdConfig::new(0.1).nesterov(true).build(),
            "momentum"
        ));
        assert!(is_invalid(
            SgdConfig::new(0.1)
                .momentum(0.9)
                .dampening(0.1)
                .nesterov(true)
                .build(),
            "dampening"
        ));
        assert!(SgdConfig::new(0.0).build::<f64>().is_ok());
        assert!(
            SgdConfig::new(0.1)
                .momentum(0.9)
                .nesterov(true)
                .build::<f32>()
                .is_ok()
        );
    }

    #[test]
    fn error_message_names_the_hyper_parameter() {
        let err = SgdConfig::new(-1.0).build::<f64>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid hyper-parameter `lr` = -1: must be finite and >= 0"
        );
    }

    #[test]
    fn defaults_are_pytorch_defaults() {
        let c = SgdConfig::default();
        assert_eq!((c.lr, c.momentum, c.dampening), (1e-3, 0.0, 0.0));
        assert!(!c.nesterov);
        assert_eq!(c.weight_decay, 0.0);
    }

    #[test]
    fn non_finite_gradient_changes_nothing() {
        let mut a = Param::new("a", arr1(&[1.0_f64, 2.0]).into_dyn());
        let mut b = Param::new("b", arr1(&[3.0_f64]).into_dyn());
        let mut opt = SgdConfig::new(0.1).momentum(0.9).build().unwrap();
        let mut grads = Grads::new();
        grads.insert(a.id(), arr1(&[1.0, 1.0]).into_dyn());
        grads.insert(b.id(), arr1(&[1.0]).into_dyn());
        opt.step([&mut a, &mut b], &grads).unwrap();
        let before = opt.state_dict(&[&a, &b]).unwrap();
        let (va, vb) = (a.value().clone(), b.value().clone());

        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut grads = Grads::new();
            grads.insert(a.id(), arr1(&[1.0, 1.0]).into_dyn());
            grads.insert(b.id(), arr1(&[bad]).into_dyn());
            let err = opt.step([&mut a, &mut b], &grads).unwrap_err();
            assert_eq!(
                err,
                OptimError::NonFiniteGradient {
                    param: "b".to_string()
                }
            );
            assert!(err.to_string().contains("`b`"));
            assert_eq!(a.value(), &va);
            assert_eq!(b.value(), &vb);
            assert_eq!(opt.state_dict(&[&a, &b]).unwrap(), before);
        }
    }

    #[test]
    fn shape_mismatch_names_both_shapes() {
        let mut a = Param::new("dense.kernel", ArrayD::<f64>::zeros(vec![3, 2]));
        let mut opt = Sgd::new(0.1).unwrap();
        let mut grads = Grads::new();
        grads.insert(a.id(), ArrayD::zeros(vec![2, 3]));
        let err = opt.step([&mut a], &grads).unwrap_err();
        assert_eq!(
            err,
            OptimError::ShapeMismatch {
                param: "dense.kernel".into(),
                param_shape: vec![3, 2],
                grad_shape: vec![2, 3],
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("[3, 2]") && msg.contains("[2, 3]"), "{msg}");
        assert_eq!(opt.state_len(), 0);
    }

    #[test]
    fn parameter_without_gradient_is_untouched() {
        let mut a = Param::new("a", arr1(&[1.0_f64]).into_dyn());
        let mut b = Param::new("b", arr1(&[1.0_f64]).into_dyn());
        let mut opt = SgdConfig::new(0.1).momentum(0.9).build().unwrap();
        let mut grads = Grads::new();
        grads.insert(a.id(), arr1(&[1.0]).into_dyn());
        opt.step([&mut a, &mut b], &grads).unwrap();
        assert_eq!(b.value()[[0]], 1.0);
        assert!(opt.param_state(b.id()).is_none());
        let sa = opt.param_state(a.id()).unwrap();
        assert_eq!(sa.step, 1);
        assert_eq!(sa.get("momentum_buffer").unwrap()[[0]], 1.0);
        assert_eq!(opt.state_len(), 1);
        opt.reset();
        assert_eq!(opt.state_len(), 0);
    }

    #[test]
    fn set_lr_changes_the_step() {
        let mut a = Param::new("a", arr1(&[1.0_f64]).into_dyn());
        let mut opt = Sgd::new(0.1).unwrap();
        opt.set_lr(0.5).unwrap();
        assert_eq!(Optimizer::<f64>::lr(&opt), 0.5);
        let mut grads = Grads::new();
        grads.insert(a.id(), arr1(&[1.0]).into_dyn());
        opt.step([&mut a], &grads).unwrap();
        assert_eq!(a.value()[[0]], 0.5);
    }

    #[test]
    fn set_lr_rejects_invalid_rates() {
        let mut opt: Sgd<f64> = Sgd::new(0.1).unwrap();
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let err = opt.set_lr(bad).unwrap_err();
            assert!(matches!(
                err,
                OptimError::InvalidHyperParameter { name: "lr", .. }
            ));
            assert_eq!(opt.lr(), 0.1);
        }
    }
}
