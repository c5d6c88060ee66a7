//! Adam and AdamW. Both run the same update ([`adam_step`]); AdamW only moves the weight
//! decay out of the gradient ("decoupled" weight decay). Their configs have the same fields,
//! defaults, setters and validation ([`adam_family_config!`]) but for what `weight_decay`
//! means and its default.

use ndarray::ArrayD;
use tapegrad_autograd::{Float, Grads, Param};

use crate::optimizer::{
    OptimError, Optimizer, StateStore, common_optimizer_methods, dispatch, flush_subnormal,
    in_unit_open, lerp, non_negative, optimizer_constructors, scalar, setters, with_l2_decay, zip2,
    zip3,
};

const KEYS: &[&str] = &["exp_avg", "exp_avg_sq"];
const KEYS_AMSGRAD: &[&str] = &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"];

/// Hyper-parameters shared by Adam and AdamW.
#[derive(Clone, Copy, Debug)]
struct Hyper {
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
}

/// The scalars of one Adam step of one parameter, in the element type.
#[derive(Clone, Copy)]
struct Scalars<T> {
    /// `1 − lr · weight_decay` with decoupled weight decay, else 1.
    shrink: T,
    /// The L2 weight decay (used only when it is coupled).
    wd: T,
    /// `1 − β₁`: the weight of the gradient in the first moment.
    w1: T,
    /// `1 − w1`, in the element type (for `lerp`).
    w1c: T,
    b2: T,
    /// `1 − β₂`.
    w2: T,
    eps: T,
    /// `lr / (1 − β₁ᵗ)`.
    step_size: T,
    /// `√(1 − β₂ᵗ)`.
    bc2_sqrt: T,
}

/// Weight decay and the moment updates, common to Adam and AMSGrad; `L2` adds the coupled
/// weight decay to the gradient, `LOW` selects PyTorch's `lerp` formula.
#[inline(always)]
fn moments<T: Float, const L2: bool, const LOW: bool>(
    k: &Scalars<T>,
    p: &mut T,
    g: T,
    m: &mut T,
    v: &mut T,
) {
    *p *= k.shrink;
    let g = with_l2_decay::<T, L2>(g, k.wd, *p);
    *m = flush_subnormal(lerp::<T, LOW>(*m, g, k.w1, k.w1c));
    *v = flush_subnormal(*v * k.b2 + k.w2 * g * g);
}

fn adam_kernel<T: Float, const L2: bool, const LOW: bool>(
    k: Scalars<T>,
    p: &mut ArrayD<T>,
    g: &ArrayD<T>,
    m: &mut ArrayD<T>,
    v: &mut ArrayD<T>,
) {
    zip2(p, g, m, v, move |p, g, m, v| {
        moments::<T, L2, LOW>(&k, p, g, m, v);
        let denom = v.sqrt() / k.bc2_sqrt + k.eps;
        *p -= k.step_size * (*m / denom);
    });
}

fn amsgrad_kernel<T: Float, const L2: bool, const LOW: bool>(
    k: Scalars<T>,
    p: &mut ArrayD<T>,
    g: &ArrayD<T>,
    m: &mut ArrayD<T>,
    v: &mut ArrayD<T>,
    v_max: &mut ArrayD<T>,
) {
    zip3(p, g, m, v, v_max, move |p, g, m, v, v_max| {
        moments::<T, L2, LOW>(&k, p, g, m, v);
        *v_max = v_max.max(*v);
        let denom = v_max.sqrt() / k.bc2_sqrt + k.eps;
        *p -= k.step_size * (*m / denom);
    });
}

/// One Adam step over all parameters; `decoupled` selects AdamW's weight decay.
fn adam_step<T: Float>(
    h: Hyper,
    decoupled: bool,
    state: &mut StateStore<T>,
    params: &mut dyn Iterator<Item = &mut Param<T>>,
    grads: &Grads<T>,
) -> Result<(), OptimError> {
    let (beta1, beta2) = h.betas;
    let has_wd = h.weight_decay != 0.0;
    // Coupled (L2) decay adds `wd · p` to the gradient; decoupled decay scales `p` first.
    let l2 = has_wd && !decoupled;
    let shrink = if has_wd && decoupled {
        1.0 - h.lr * h.weight_decay
    } else {
        1.0
    };
    let low = 1.0 - beta1 < 0.5;
    state.step_each(params, grads, T::zero(), |p, g, slot| {
        let t = slot.step as f64;
        let bias_correction1 = 1.0 - beta1.powf(t);
        let bias_correction2 = 1.0 - beta2.powf(t);
        let k = Scalars {
            shrink: scalar::<T>(shrink),
            wd: scalar::<T>(h.weight_decay),
            w1: scalar::<T>(1.0 - beta1),
            w1c: T::one() - scalar::<T>(1.0 - beta1),
            b2: scalar::<T>(beta2),
            w2: scalar::<T>(1.0 - beta2),
            eps: scalar::<T>(h.eps),
            step_size: scalar::<T>(h.lr / bias_correction1),
            bc2_sqrt: scalar::<T>(bias_correction2.sqrt()),
        };
        match slot.bufs.as_mut_slice() {
            [m, v] => dispatch!(adam_kernel::<T>; [l2, low]; k, p, g, m, v),
            [m, v, v_max] => dispatch!(amsgrad_kernel::<T>; [l2, low]; k, p, g, m, v, v_max),
            _ => unreachable!("Adam keeps two or three buffers"),
        }
    })
}

/// Defines the config of an optimizer of the Adam family, `$config` for `$opt`, with its
/// `Default`, setters, validation and constructors. Adam's and AdamW's configs have the same
/// fields, defaults and rules except for `weight_decay`, whose docs and default each
/// invocation states.
macro_rules! adam_family_config {
    (
        $(#[$doc:meta])*
        pub struct $config:ident for $opt:ident;
        $(#[$field_doc:meta])*
        pub weight_decay: f64 = $default_weight_decay:literal;
        $(#[$setter_doc:meta])*
        pub fn weight_decay;
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $config {
            /// Learning rate (default `1e-3`), finite and `>= 0`.
            pub lr: f64,
            /// Decay rates of the first and second moment estimates (default `(0.9, 0.999)`),
            /// each in `[0, 1)`.
            pub betas: (f64, f64),
            /// Added to the denominator for stability (default `1e-8`), `>= 0`.
            pub eps: f64,
            $(#[$field_doc])*
            pub weight_decay: f64,
            /// Use the AMSGrad variant (the maximum of past second moments; default `false`).
            pub amsgrad: bool,
        }

        impl Default for $config {
            #[doc = concat!(
                "PyTorch's defaults: `lr = 1e-3`, `betas = (0.9, 0.999)`, `eps = 1e-8`, ",
                "`weight_decay = ", stringify!($default_weight_decay), "`, no AMSGrad."
            )]
            fn default() -> Self {
                $config {
                    lr: 1e-3,
                    betas: (0.9, 0.999),
                    eps: 1e-8,
                    weight_decay: $default_weight_decay,
                    amsgrad: false,
                }
            }
        }

        impl $config {
            /// Sets the moment decay rates `(beta1, beta2)`.
            pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
                self.betas = (beta1, beta2);
                self
            }

            setters! {
                /// Sets the denominator's epsilon.
                eps: f64,
                $(#[$setter_doc])*
                weight_decay: f64,
                /// Turns AMSGrad on or off.
                amsgrad: bool,
            }

            /// Checks every hyper-parameter.
            ///
            /// # Errors
            ///
            /// [`OptimError::InvalidHyperParameter`] naming the first invalid one.
            pub fn validate(&self) -> Result<(), OptimError> {
                non_negative("lr", self.lr)?;
                in_unit_open("betas.0", self.betas.0)?;
                in_unit_open("betas.1", self.betas.1)?;
                non_negative("eps", self.eps)?;
                non_negative("weight_decay", self.weight_decay)
            }

            /// The state buffers of each parameter: the two moments, plus the maximum of the
            /// second one with AMSGrad.
            fn state_keys(&self) -> &'static [&'static str] {
                if self.amsgrad {
                    KEYS_AMSGRAD
                } else {
                    KEYS
                }
            }

            fn hyper(&self) -> Hyper {
                Hyper {
                    lr: self.lr,
                    betas: self.betas,
                    eps: self.eps,
                    weight_decay: self.weight_decay,
                }
            }
        }

        optimizer_constructors!($opt, $config);
    };
}

adam_family_config! {
    /// Hyper-parameters of [`Adam`], with the meaning and defaults of PyTorch's
    /// `torch.optim.Adam`.
    ///
    /// Set fields directly or chain the setters, then [`build`](AdamConfig::build).
    pub struct AdamConfig for Adam;
    /// L2 penalty added to the gradient, `g + weight_decay · p` (default `0`), `>= 0`.
    pub weight_decay: f64 = 0.0;
    /// Sets the L2 weight decay (added to the gradient).
    pub fn weight_decay;
}

adam_family_config! {
    /// Hyper-parameters of [`AdamW`], with the meaning and defaults of PyTorch's
    /// `torch.optim.AdamW`. The same as [`AdamConfig`] except that weight decay is decoupled
    /// and defaults to `0.01`.
    ///
    /// Set fields directly or chain the setters, then [`build`](AdamWConfig::build).
    pub struct AdamWConfig for AdamW;
    /// Decoupled weight decay: each step first scales `p` by `1 − lr · weight_decay`
    /// (default `0.01`), `>= 0`.
    pub weight_decay: f64 = 0.01;
    /// Sets the decoupled weight decay.
    pub fn weight_decay;
}

/// Adam, PyTorch's `torch.optim.Adam` (with L2 weight decay added to the gradient).
///
/// For each parameter `p` with gradient `g`, at its step `t` (counted per parameter):
///
/// - `g ← g + weight_decay · p (if weight_decay ≠ 0)`
/// - `m ← β₁ · m + (1 − β₁) · g`
/// - `v ← β₂ · v + (1 − β₂) · g²`
/// - `v̂ ← max(v̂, v) (AMSGrad; then use v̂ for v)`
/// - `p ← p − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + eps)`
///
/// State: `exp_avg` (m), `exp_avg_sq` (v), `max_exp_avg_sq` (v̂, AMSGrad only) and the step
/// counter.
///
/// A training loop (the gradient of `Σ (w − 3)²` is computed by hand here; in a model it
/// comes from `loss.backward()`):
///
/// ```
/// use ndarray::arr1;
/// use tapegrad_autograd::{Grads, Param};
/// use tapegrad_optim::{AdamConfig, Optimizer};
///
/// let mut w = Param::new("w", arr1(&[0.0_f32, 1.0, 5.0]).into_dyn());
/// let mut opt = AdamConfig::new(0.1).build()?;
/// for _ in 0..500 {
///     let mut grads = Grads::new();
///     grads.insert(w.id(), w.value().mapv(|x| 2.0 * (x - 3.0)));
///     opt.step([&mut w], &grads)?;
/// }
/// assert!(w.value().iter().all(|x| (x - 3.0).abs() < 1e-2));
/// # Ok::<(), tapegrad_optim::OptimError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Adam<T> {
    config: AdamConfig,
    state: StateStore<T>,
}

impl<T: Float> Adam<T> {
    /// One step ([`Optimizer::step_dyn`]), for one element type.
    fn update(
        &mut self,
        params: &mut dyn Iterator<Item = &mut Param<T>>,
        grads: &Grads<T>,
    ) -> Result<(), OptimError> {
        // `decoupled: false`: L2 weight decay, added to the gradient.
        adam_step(self.config.hyper(), false, &mut self.state, params, grads)
    }
}

impl<T: Float> Optimizer<T> for Adam<T> {
    common_optimizer_methods!(Adam, "Adam");
}

/// AdamW, PyTorch's `torch.optim.AdamW`: [`Adam`] with decoupled weight decay.
///
/// Each step first shrinks the parameter, `p ← p · (1 − lr · weight_decay)`, then applies
/// Adam's update with the raw gradient (no `weight_decay · p` term in it). State is the same
/// as Adam's.
///
/// A training loop (the gradient of `Σ (w − 3)²` is computed by hand here; in a model it
/// comes from `loss.backward()`):
///
/// ```
/// use ndarray::arr1;
/// use tapegrad_autograd::{Grads, Param};
/// use tapegrad_optim::{AdamWConfig, Optimizer};
///
/// let mut w = Param::new("w", arr1(&[0.0_f64, 1.0, 5.0]).into_dyn());
/// let mut opt = AdamWConfig::new(0.05).weight_decay(1e-4).build()?;
/// for _ in 0..1000 {
///     let mut grads = Grads::new();
///     grads.insert(w.id(), w.value().mapv(|x| 2.0 * (x - 3.0)));
///     opt.step([&mut w], &grads)?;
/// }
/// // The decay pulls the optimum slightly towards zero.
/// assert!(w.value().iter().all(|x| (x - 3.0).abs() < 1e-2));
/// # Ok::<(), tapegrad_optim::OptimError>(())
/// ```
#[derive(Clone, Debug)]
pub struct AdamW<T> {
    config: AdamWConfig,
    state: StateStore<T>,
}

impl<T: Float> AdamW<T> {
    /// One step ([`Optimizer::step_dyn`]), for one element type.
    fn update(
        &mut self,
        params: &mut dyn Iterator<Item = &mut Param<T>>,
        grads: &Grads<T>,
    ) -> Result<(), OptimError> {
        // `decoupled: true`: decoupled weight decay.
        adam_step(self.config.hyper(), true, &mut self.state, params, grads)
    }
}

impl<T: Float> Optimizer<T> for AdamW<T> {
    common_optimizer_methods!(AdamW, "AdamW");
}

#[cfg(test)]
mod tests {
    use ndarray::arr1;

    use super::*;

    fn invalid_name<O>(r: Result<O, OptimError>) -> Option<&'static str> {
        match r {
            Err(OptimError::InvalidHyperParameter { name, .. }) => Some(name),
            _ => None,
        }
    }

    #[test]
    fn rejects_invalid_hyper_parameters() {
        let adam = |c: AdamConfig| invalid_name(c.build::<f64>());
        assert_eq!(adam(AdamConfig::new(-1e-3)), Some("lr"));
        assert_eq!(
            adam(AdamConfig::new(1e-3).betas(1.0, 0.999)),
            Some("betas.0")
        );
        assert_eq!(
            adam(AdamConfig::new(1e-3).betas(-0.1, 0.999)),
            Some("betas.0")
        );
        assert_eq!(adam(AdamConfig::new(1e-3).betas(0.9, 1.0)), Some("betas.1"));
        assert_eq!(
            adam(AdamConfig::new(1e-3).betas(0.9, f64::NAN)),
            Some("betas.1")
        );
        assert_eq!(adam(AdamConfig::new(1e-3).eps(-1e-8)), Some("eps"));
        assert_eq!(
            adam(AdamConfig::new(1e-3).weight_decay(-0.1)),
            Some("weight_decay")
        );
        assert_eq!(adam(AdamConfig::new(1e-3).betas(0.0, 0.0)), None);

        let adamw = |c: AdamWConfig| invalid_name(c.build::<f32>());
        assert_eq!(adamw(AdamWConfig::new(f64::NAN)), Some("lr"));
        assert_eq!(
            adamw(AdamWConfig::new(1e-3).betas(0.9, 1.5)),
            Some("betas.1")
        );
        assert_eq!(
            adamw(AdamWConfig::new(1e-3).weight_decay(-1.0)),
            Some("weight_decay")
        );
        assert_eq!(adamw(AdamWConfig::new(1e-3)), None);
    }

    #[test]
    fn defaults_are_pytorch_defaults() {
        let a = AdamConfig::default();
        assert_eq!(
            (a.lr, a.betas, a.eps, a.weight_decay),
            (1e-3, (0.9, 0.999), 1e-8, 0.0)
        );
        assert!(!a.amsgrad);
        let w = AdamWConfig::default();
        assert_eq!(
            (w.lr, w.betas, w.eps, w.weight_decay),
            (1e-3, (0.9, 0.999), 1e-8, 0.01)
        );
        assert!(!w.amsgrad);
        let adam: Adam<f64> = Adam::new(0.5).unwrap();
        assert_eq!(adam.config(), &AdamConfig::new(0.5));
        assert_eq!(adam.name(), "Adam");
        let adamw: AdamW<f64> = AdamW::new(0.5).unwrap();
        assert_eq!(adamw.config(), &AdamWConfig::new(0.5));
        assert_eq!(adamw.name(), "AdamW");
    }

    #[test]
    fn amsgrad_keeps_a_third_buffer() {
        let mut w = Param::new("w", arr1(&[1.0_f64, 2.0]).into_dyn());
        let mut opt = AdamConfig::new(0.1).amsgrad(true).build().unwrap();
        let mut grads = Grads::new();
        grads.insert(w.id(), arr1(&[1.0, -1.0]).into_dyn());
        opt.step([&mut w], &grads).unwrap();
        let state = opt.param_state(w.id()).unwrap();
        let names: Vec<_> = state.buffers.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]);
        assert_eq!(state.step, 1);
        let keys: Vec<_> = opt.state_dict(&[&w]).unwrap().into_keys().collect();
        assert_eq!(
            keys,
            ["w.exp_avg", "w.exp_avg_sq", "w.max_exp_avg_sq", "w.step"]
        );
    }

    #[test]
    fn non_finite_gradient_changes_nothing() {
        let mut a = Param::new("a", arr1(&[1.0_f32, 2.0]).into_dyn());
        let mut b = Param::new("b", arr1(&[3.0_f32]).into_dyn());
        let mut opt = AdamWConfig::new(0.1).build().unwrap();
        let mut grads = Grads::new();
        grads.insert(a.id(), arr1(&[f32::NAN, 1.0]).into_dyn());
        grads.insert(b.id(), arr1(&[1.0]).into_dyn());
        let err = opt.step([&mut a, &mut b], &grads).unwrap_err();
        assert_eq!(
            err,
            OptimError::NonFiniteGradient {
                param: "a".to_string()
            }
        );
        assert_eq!(a.value(), &arr1(&[1.0, 2.0]).into_dyn());
        assert_eq!(b.value(), &arr1(&[3.0]).into_dyn());
        assert_eq!(opt.state_len(), 0);
    }
}
