//! RMSprop, optionally centered and with momentum.

use ndarray::ArrayD;
use tapegrad_autograd::{Float, Grads, Param};

use crate::optimizer::{
    OptimError, Optimizer, StateStore, common_optimizer_methods, dispatch, in_unit_closed, lerp,
    non_negative, optimizer_constructors, scalar, setters, with_l2_decay, zip1, zip2, zip3,
};

/// Hyper-parameters of [`RmsProp`], with the meaning and defaults of PyTorch's
/// `torch.optim.RMSprop`.
///
/// Set fields directly or chain the setters, then [`build`](RmsPropConfig::build).
#[derive(Clone, Debug, PartialEq)]
pub struct RmsPropConfig {
    /// Learning rate (default `1e-2`), finite and `>= 0`.
    pub lr: f64,
    /// Smoothing constant of the squared-gradient average (default `0.99`), in `[0, 1]`.
    pub alpha: f64,
    /// Added to the denominator for stability (default `1e-8`), `>= 0`.
    pub eps: f64,
    /// L2 penalty added to the gradient, `g + weight_decay · p` (default `0`), `>= 0`.
    pub weight_decay: f64,
    /// Momentum factor (default `0`: no momentum buffer), `>= 0`.
    pub momentum: f64,
    /// Normalize by an estimate of the gradient's variance instead of its second moment
    /// (default `false`).
    pub centered: bool,
}

impl Default for RmsPropConfig {
    /// PyTorch's defaults: `lr = 1e-2`, `alpha = 0.99`, `eps = 1e-8`, no weight decay, no
    /// momentum, not centered.
    fn default() -> Self {
        RmsPropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }
}

impl RmsPropConfig {
    setters! {
        /// Sets the smoothing constant.
        alpha: f64,
        /// Sets the denominator's epsilon.
        eps: f64,
        /// Sets the L2 weight decay.
        weight_decay: f64,
        /// Sets the momentum factor.
        momentum: f64,
        /// Turns the centered variant on or off.
        centered: bool,
    }

    /// Checks every hyper-parameter.
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidHyperParameter`] naming the first invalid one.
    pub fn validate(&self) -> Result<(), OptimError> {
        non_negative("lr", self.lr)?;
        in_unit_closed("alpha", self.alpha)?;
        non_negative("eps", self.eps)?;
        non_negative("weight_decay", self.weight_decay)?;
        non_negative("momentum", self.momentum)
    }

    /// The state buffers of each parameter: the squared-gradient average, plus a momentum
    /// buffer with momentum and a gradient average when centered.
    fn state_keys(&self) -> &'static [&'static str] {
        match (self.momentum > 0.0, self.centered) {
            (false, false) => &["square_avg"],
            (true, false) => &["square_avg", "momentum_buffer"],
            (false, true) => &["square_avg", "grad_avg"],
            (true, true) => &["square_avg", "momentum_buffer", "grad_avg"],
        }
    }
}

/// RMSprop, PyTorch's `torch.optim.RMSprop`.
///
/// For each parameter `p` with gradient `g`:
///
/// - `g ← g + weight_decay · p (if weight_decay ≠ 0)`
/// - `s ← α · s + (1 − α) · g²`
/// - `if centered: a ← α · a + (1 − α) · g; d ← √(s − a²) + eps`
/// - `else: d ← √s + eps`
/// - `if momentum > 0: b ← momentum · b + g / d; p ← p − lr · b`
/// - `else: p ← p − lr · g / d`
///
/// State: `square_avg` (s), `momentum_buffer` (b, with momentum), `grad_avg` (a, centered)
/// and the step counter. In the centered variant `s − a²` is clamped at zero before the
/// square root (mathematically it is never negative; rounding could make it so).
///
/// A training loop (the gradient of `Σ (w − 3)²` is computed by hand here; in a model it
/// comes from `loss.backward()`):
///
/// ```
/// use ndarray::arr1;
/// use tapegrad_autograd::{Grads, Param};
/// use tapegrad_optim::{Optimizer, RmsPropConfig};
///
/// let mut w = Param::new("w", arr1(&[0.0_f64, 1.0, 5.0]).into_dyn());
/// let mut opt = RmsPropConfig::new(0.01).momentum(0.5).centered(true).build()?;
/// for epoch in 0..1000 {
///     if epoch == 500 {
///         opt.set_lr(0.001)?; // a manual decay, as a schedule would do
///     }
///     let mut grads = Grads::new();
///     grads.insert(w.id(), w.value().mapv(|x| 2.0 * (x - 3.0)));
///     opt.step([&mut w], &grads)?;
/// }
/// assert!(w.value().iter().all(|x| (x - 3.0).abs() < 1e-2));
/// # Ok::<(), tapegrad_optim::OptimError>(())
/// ```
#[derive(Clone, Debug)]
pub struct RmsProp<T> {
    config: RmsPropConfig,
    state: StateStore<T>,
}

optimizer_constructors!(RmsProp, RmsPropConfig);

impl<T: Float> RmsProp<T> {
    /// One step ([`Optimizer::step_dyn`]), for one element type.
    fn update(
        &mut self,
        params: &mut dyn Iterator<Item = &mut Param<T>>,
        grads: &Grads<T>,
    ) -> Result<(), OptimError> {
        let c = &self.config;
        let w = scalar::<T>(1.0 - c.alpha);
        let k = Scalars {
            lr: scalar::<T>(c.lr),
            wd: scalar::<T>(c.weight_decay),
            alpha: scalar::<T>(c.alpha),
            w,
            wc: T::one() - w,
            eps: scalar::<T>(c.eps),
            momentum: scalar::<T>(c.momentum),
        };
        let wd = c.weight_decay != 0.0;
        let low = 1.0 - c.alpha < 0.5;
        let (has_momentum, centered) = (c.momentum > 0.0, c.centered);
        self.state
            .step_each(params, grads, T::zero(), |p, g, slot| {
                match (slot.bufs.as_mut_slice(), has_momentum, centered) {
                    ([s], false, false) => dispatch!(plain_kernel::<T>; [wd]; k, p, g, s),
                    ([s, b], true, false) => dispatch!(momentum_kernel::<T>; [wd]; k, p, g, s, b),
                    ([s, a], false, true) => {
                        dispatch!(centered_kernel::<T>; [wd, low]; k, p, g, s, a)
                    }
                    ([s, b, a], true, true) => {
                        dispatch!(centered_momentum_kernel::<T>; [wd, low]; k, p, g, s, b, a)
                    }
                    _ => unreachable!("RMSprop's buffers follow its configuration"),
                }
            })
    }
}

impl<T: Float> Optimizer<T> for RmsProp<T> {
    common_optimizer_methods!(RmsProp, "RMSprop");
}

/// The scalars of one RMSprop step, in the element type.
#[derive(Clone, Copy)]
struct Scalars<T> {
    lr: T,
    wd: T,
    alpha: T,
    /// `1 − α`: the weight of the new gradient.
    w: T,
    /// `1 − w`, in the element type (for `lerp`).
    wc: T,
    eps: T,
    momentum: T,
}

/// Weight decay (if `WD`) and the squared-gradient average; returns the decayed gradient.
#[inline(always)]
fn square<T: Float, const WD: bool>(k: &Scalars<T>, p: T, g: T, s: &mut T) -> T {
    let g = with_l2_decay::<T, WD>(g, k.wd, p);
    *s = *s * k.alpha + k.w * g * g;
    g
}

/// The centered variant's gradient average and denominator `√(s − a²) + eps`.
#[inline(always)]
fn centered_denom<T: Float, const LOW: bool>(k: &Scalars<T>, s: T, a: &mut T, g: T) -> T {
    *a = lerp::<T, LOW>(*a, g, k.w, k.wc);
    (s - *a * *a).max(T::zero()).sqrt() + k.eps
}

fn plain_kernel<T: Float, const WD: bool>(
    k: Scalars<T>,
    p: &mut ArrayD<T>,
    g: &ArrayD<T>,
    s: &mut ArrayD<T>,
) {
    zip1(p, g, s, move |p, g, s| {
        let g = square::<T, WD>(&k, *p, g, s);
        let d = s.sqrt() + k.eps;
        *p -= k.lr * (g / d);
    });
}

fn momentum_kernel<T: Float, const WD: bool>(
    k: Scalars<T>,
    p: &mut ArrayD<T>,
    g: &ArrayD<T>,
    s: &mut ArrayD<T>,
    b: &mut ArrayD<T>,
) {
    zip2(p, g, s, b, move |p, g, s, b| {
        let g = square::<T, WD>(&k, *p, g, s);
        let d = s.sqrt() + k.eps;
        *b = *b * k.momentum + g / d;
        *p -= k.lr * *b;
    });
}

fn centered_kernel<T: Float, const WD: bool, const LOW: bool>(
    k: Scalars<T>,
    p: &mut ArrayD<T>,
    g: &ArrayD<T>,
    s: &mut ArrayD<T>,
    a: &mut ArrayD<T>,
) {
    zip2(p, g, s, a, move |p, g, s, a| {
        let g = square::<T, WD>(&k, *p, g, s);
        let d = centered_denom::<T, LOW>(&k, *s, a, g);
        *p -= k.lr * (g / d);
    });
}

fn centered_momentum_kernel<T: Float, const WD: bool, const LOW: bool>(
    k: Scalars<T>,
    p: &mut ArrayD<T>,
    g: &ArrayD<T>,
    s: &mut ArrayD<T>,
    b: &mut ArrayD<T>,
    a: &mut ArrayD<T>,
) {
    zip3(p, g, s, b, a, move |p, g, s, b, a| {
        let g = square::<T, WD>(&k, *p, g, s);
        let d = centered_denom::<T, LOW>(&k, *s, a, g);
        *b = *b * k.momentum + g / d;
        *p -= k.lr * *b;
    });
}

#[cfg(test)]
mod tests {
    use ndarray::arr1;

    use super::*;

    fn invalid_name(c: RmsPropConfig) -> Option<&'static str> {
        match c.build::<f64>() {
            Err(OptimError::InvalidHyperParameter { name, .. }) => Some(name),
            _ => None,
        }
    }

    #[test]
    fn rejects_invalid_hyper_parameters() {
        assert_eq!(invalid_name(RmsPropConfig::new(-0.01)), Some("lr"));
        assert_eq!(
            invalid_name(RmsPropConfig::new(0.01).alpha(-0.1)),
            Some("alpha")
        );
        assert_eq!(
            invalid_name(RmsPropConfig::new(0.01).alpha(1.1)),
            Some("alpha")
        );
        assert_eq!(
            invalid_name(RmsPropConfig::new(0.01).eps(-1.0)),
            Some("eps")
        );
        assert_eq!(
            invalid_name(RmsPropConfig::new(0.01).weight_decay(-1.0)),
            Some("weight_decay")
        );
        assert_eq!(
            invalid_name(RmsPropConfig::new(0.01).momentum(-0.9)),
            Some("momentum")
        );
        assert_eq!(
            invalid_name(RmsPropConfig::new(0.01).momentum(0.9).centered(true)),
            None
        );
    }

    #[test]
    fn defaults_are_pytorch_defaults() {
        let c = RmsPropConfig::default();
        assert_eq!(
            (c.lr, c.alpha, c.eps, c.weight_decay, c.momentum),
            (1e-2, 0.99, 1e-8, 0.0, 0.0)
        );
        assert!(!c.centered);
    }

    #[test]
    fn buffers_follow_the_configuration() {
        for (momentum, centered, want) in [
            (0.0, false, vec!["square_avg"]),
            (0.9, false, vec!["square_avg", "momentum_buffer"]),
            (0.0, true, vec!["square_avg", "grad_avg"]),
            (0.9, true, vec!["square_avg", "momentum_buffer", "grad_avg"]),
        ] {
            let mut w = Param::new("w", arr1(&[1.0_f64]).into_dyn());
            let mut opt = RmsPropConfig::new(0.01)
                .momentum(momentum)
                .centered(centered)
                .build()
                .unwrap();
            let mut grads = Grads::new();
            grads.insert(w.id(), arr1(&[0.5]).into_dyn());
            opt.step([&mut w], &grads).unwrap();
            let state = opt.param_state(w.id()).unwrap();
            let names: Vec<_> = state.buffers.iter().map(|(k, _)| *k).collect();
            assert_eq!(names, want);
            assert!(w.value()[[0]] < 1.0);
        }
    }
}
