//! The [`Optimizer`] trait, its error type, and the machinery every optimizer shares:
//! per-parameter state keyed by [`ParamId`], validation of a step's gradients before
//! anything is touched, state save/load, and the allocation-free element-wise loops.

use std::collections::{BTreeMap, HashSet};

use ndarray::{ArrayD, arr0};
use tapegrad_autograd::{Float, Grads, Param, ParamId};

/// An update rule: turns gradients into in-place changes of parameters.
///
/// The trait is object-safe, so a training loop can hold a `Box<dyn Optimizer<T>>`.
///
/// State (momentum buffers, moment estimates, step counters, ...) is kept per parameter,
/// keyed by [`ParamId`], and is created the first time a parameter receives a gradient.
/// A parameter that has no gradient in a step is left untouched, and so is its state.
///
/// ```
/// use std::collections::BTreeMap;
/// use ndarray::{arr1, ArrayD};
/// use tapegrad_autograd::{Grads, Param};
/// use tapegrad_optim::{AdamConfig, Optimizer, SgdConfig};
///
/// let mut w = Param::new("w", arr1(&[1.0_f64, -2.0]).into_dyn());
/// let mut opts: Vec<Box<dyn Optimizer<f64>>> = vec![
///     Box::new(SgdConfig::new(0.1).momentum(0.9).build()?),
///     Box::new(AdamConfig::new(0.01).build()?),
/// ];
/// for opt in &mut opts {
///     let mut grads = Grads::new();
///     grads.insert(w.id(), arr1(&[0.5, 0.5]).into_dyn());
///     opt.step(&mut [&mut w], &grads)?;
///     assert_eq!(opt.state_len(), 1);
///     // A checkpoint of the state, keyed by parameter name.
///     let state: BTreeMap<String, ArrayD<f64>> = opt.state_dict(&[&w])?;
///     assert!(state.contains_key("w.step"));
/// }
/// # Ok::<(), tapegrad_optim::OptimError>(())
/// ```
pub trait Optimizer<T: Float> {
    /// The name of the PyTorch class whose update rule this is (`"SGD"`, `"Adam"`, `"AdamW"`,
    /// `"RMSprop"`, `"Adagrad"`).
    fn name(&self) -> &'static str;

    /// Performs one update of every parameter in `params` that has a gradient in `grads`.
    ///
    /// Gradients of parameters not in `params` are ignored; parameters without a gradient
    /// are left untouched and their state is not updated.
    ///
    /// # Errors
    ///
    /// All gradients are checked before anything changes, so on error every parameter and
    /// all state are exactly as before the call:
    /// - [`OptimError::NonFiniteGradient`] if a gradient holds a NaN or an infinity;
    /// - [`OptimError::ShapeMismatch`] if a gradient's shape differs from its parameter's;
    /// - [`OptimError::StateShapeMismatch`] if a parameter's value was replaced by one of
    ///   another shape since its state was created.
    fn step(&mut self, params: &mut [&mut Param<T>], grads: &Grads<T>) -> Result<(), OptimError>;

    /// The current learning rate.
    fn lr(&self) -> f64;

    /// Sets the learning rate used by the next steps (what a schedule does each epoch).
    ///
    /// # Panics
    ///
    /// If `lr` is negative, NaN or infinite.
    fn set_lr(&mut self, lr: f64);

    /// Forgets all per-parameter state, as if no step had been taken. Hyper-parameters
    /// (including the learning rate) are kept.
    fn reset(&mut self);

    /// The number of parameters that have state (those that received a gradient at least once).
    fn state_len(&self) -> usize;

    /// The state of one parameter, if it has any.
    fn param_state(&self, id: ParamId) -> Option<ParamState<'_, T>>;

    /// The state of `params`, keyed by parameter name plus a suffix: `"<name>.step"` (the
    /// number of steps this parameter took, as a 0-d array) and `"<name>.<buffer>"` for each
    /// buffer (e.g. `"dense_0.kernel.exp_avg"`), with the buffer names PyTorch uses.
    ///
    /// Names, not ids, are used because ids are not stable across processes. Parameters with
    /// no state are omitted; state of parameters not in `params` is not saved.
    ///
    /// The step counter is stored as a `T`: in `f32` it is exact up to 2²⁴ steps.
    ///
    /// # Errors
    ///
    /// [`OptimError::DuplicateParamName`] if two parameters share a name.
    fn state_dict(&self, params: &[&Param<T>]) -> Result<BTreeMap<String, ArrayD<T>>, OptimError>;

    /// Replaces all state by `state` (as produced by [`Optimizer::state_dict`]), matching
    /// entries to `params` by name, so that training resumes exactly where it stopped.
    ///
    /// A parameter with no entry at all starts with no state. Nothing changes on error.
    ///
    /// # Errors
    ///
    /// - [`OptimError::MissingState`] if a parameter has some of its entries but not all;
    /// - [`OptimError::StateShapeMismatch`] if a buffer's shape differs from its parameter's
    ///   (or a step counter is not 0-d);
    /// - [`OptimError::InvalidState`] if a step counter is not a non-negative integer;
    /// - [`OptimError::UnexpectedState`] if an entry matches no parameter of `params` (an
    ///   unknown name, or the state of another kind of optimizer);
    /// - [`OptimError::DuplicateParamName`] if two parameters share a name.
    fn load_state_dict(
        &mut self,
        params: &[&Param<T>],
        state: &BTreeMap<String, ArrayD<T>>,
    ) -> Result<(), OptimError>;
}

/// Everything that can go wrong when building or running an optimizer, a schedule or a clip.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OptimError {
    /// A gradient holds a NaN or an infinite value.
    #[error("the gradient of parameter `{param}` contains NaN or infinite values")]
    NonFiniteGradient {
        /// The parameter's name.
        param: String,
    },
    /// A gradient's shape differs from its parameter's.
    #[error(
        "the gradient of parameter `{param}` has shape {grad_shape:?}, \
         but the parameter has shape {param_shape:?}"
    )]
    ShapeMismatch {
        /// The parameter's name.
        param: String,
        /// The parameter's shape.
        param_shape: Vec<usize>,
        /// The gradient's shape.
        grad_shape: Vec<usize>,
    },
    /// A hyper-parameter is out of its valid range.
    #[error("invalid hyper-parameter `{name}` = {value}: {reason}")]
    InvalidHyperParameter {
        /// The hyper-parameter's name (as in PyTorch).
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// What the valid values are.
        reason: &'static str,
    },
    /// A state dict has some, but not all, of a parameter's entries.
    #[error("the state of parameter `{param}` is missing entry `{key}`")]
    MissingState {
        /// The parameter's name.
        param: String,
        /// The missing key (e.g. `"dense_0.kernel.exp_avg"`).
        key: String,
    },
    /// A state buffer's shape does not fit its parameter.
    #[error("optimizer state `{key}` has shape {found:?}, expected {expected:?}")]
    StateShapeMismatch {
        /// The state entry (e.g. `"dense_0.kernel.exp_avg"`).
        key: String,
        /// The shape it must have.
        expected: Vec<usize>,
        /// The shape it has.
        found: Vec<usize>,
    },
    /// A state dict entry matches no parameter.
    #[error(
        "optimizer state `{key}` matches no parameter of this optimizer \
         (unknown parameter name, or state of another kind of optimizer)"
    )]
    UnexpectedState {
        /// The entry's key.
        key: String,
    },
    /// A state dict entry has an invalid value.
    #[error("invalid optimizer state `{key}`: {reason}")]
    InvalidState {
        /// The entry's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two parameters passed to `state_dict`/`load_state_dict` share a name.
    #[error("two parameters are named `{name}`: state is keyed by name, names must be unique")]
    DuplicateParamName {
        /// The shared name.
        name: String,
    },
}

/// A read-only view of one parameter's optimizer state.
#[derive(Clone, Debug)]
pub struct ParamState<'a, T> {
    /// How many steps this parameter has taken (steps in which it had a gradient).
    pub step: u64,
    /// The state buffers, by PyTorch's names (e.g. `"exp_avg"`, `"momentum_buffer"`).
    pub buffers: Vec<(&'static str, &'a ArrayD<T>)>,
}

impl<'a, T> ParamState<'a, T> {
    /// The buffer with this name, if the optimizer keeps one.
    pub fn get(&self, name: &str) -> Option<&'a ArrayD<T>> {
        self.buffers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, buf)| *buf)
    }
}

/// Converts a hyper-parameter to the element type (`Float::from_f64`, spelled out because
/// `num_traits::FromPrimitive` has a method of the same name).
#[inline(always)]
pub(crate) fn scalar<T: Float>(x: f64) -> T {
    <T as Float>::from_f64(x)
}

// ---------------------------------------------------------------------------------------
// Hyper-parameter validation.

pub(crate) fn invalid(name: &'static str, value: f64, reason: &'static str) -> OptimError {
    OptimError::InvalidHyperParameter {
        name,
        value,
        reason,
    }
}

/// `value` must be finite and `>= 0`.
pub(crate) fn non_negative(name: &'static str, value: f64) -> Result<(), OptimError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(invalid(name, value, "must be finite and >= 0"))
    }
}

/// `value` must lie in `[0, 1)`.
pub(crate) fn in_unit_open(name: &'static str, value: f64) -> Result<(), OptimError> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(name, value, "must be in [0, 1)"))
    }
}

/// `value` must lie in `[0, 1]`.
pub(crate) fn in_unit_closed(name: &'static str, value: f64) -> Result<(), OptimError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(name, value, "must be in [0, 1]"))
    }
}

/// Panics unless `lr` is a valid learning rate (for `set_lr`).
#[track_caller]
pub(crate) fn assert_valid_lr(lr: f64) {
    assert!(
        lr.is_finite() && lr >= 0.0,
        "Optimizer::set_lr: the learning rate must be finite and >= 0, got {lr}"
    );
}

// ---------------------------------------------------------------------------------------
// Per-parameter state.

/// The state of one parameter: its step count and its buffers (in the optimizer's key order).
#[derive(Clone, Debug)]
pub(crate) struct Slot<T> {
    pub(crate) step: u64,
    pub(crate) bufs: Vec<ArrayD<T>>,
}

/// All per-parameter state of one optimizer. Every parameter has the same buffers, named by
/// `keys` (fixed when the optimizer is built).
#[derive(Clone, Debug)]
pub(crate) struct StateStore<T> {
    keys: &'static [&'static str],
    slots: Slots<T>,
}

/// Per-parameter slots keyed by parameter id. Models have tens of parameters, not
/// thousands: a linear scan of a vector beats hashing here (as in `Grads`).
#[derive(Clone, Debug)]
struct Slots<T>(Vec<(ParamId, Slot<T>)>);

impl<T> Slots<T> {
    fn with_capacity(n: usize) -> Self {
        Slots(Vec::with_capacity(n))
    }

    fn get(&self, id: &ParamId) -> Option<&Slot<T>> {
        self.0.iter().find(|(k, _)| k == id).map(|(_, s)| s)
    }

    fn get_or_insert_with(&mut self, id: ParamId, make: impl FnOnce() -> Slot<T>) -> &mut Slot<T> {
        let index = match self.0.iter().position(|(k, _)| *k == id) {
            Some(index) => index,
            None => {
                self.0.push((id, make()));
                self.0.len() - 1
            }
        };
        &mut self.0[index].1
    }

    /// Sets the slot of `id`, replacing any earlier one.
    fn insert(&mut self, id: ParamId, slot: Slot<T>) {
        *self.get_or_insert_with(id, || Slot {
            step: 0,
            bufs: Vec::new(),
        }) = slot;
    }

    fn clear(&mut self) {
        self.0.clear();
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

impl<T: Float> StateStore<T> {
    pub(crate) fn new(keys: &'static [&'static str]) -> Self {
        StateStore {
            keys,
            slots: Slots::with_capacity(0),
        }
    }

    /// Checks every gradient a step would use, before anything is changed.
    fn validate(&self, params: &[&mut Param<T>], grads: &Grads<T>) -> Result<(), OptimError> {
        for p in params {
            let Some(g) = grads.by_id(p.id()) else {
                continue;
            };
            if g.shape() != p.shape() {
                return Err(OptimError::ShapeMismatch {
                    param: p.name().to_string(),
                    param_shape: p.shape().to_vec(),
                    grad_shape: g.shape().to_vec(),
                });
            }
            if let Some(slot) = self.slots.get(&p.id()) {
                for (key, buf) in self.keys.iter().zip(&slot.bufs) {
                    if buf.shape() != p.shape() {
                        return Err(OptimError::StateShapeMismatch {
                            key: format!("{}.{key}", p.name()),
                            expected: p.shape().to_vec(),
                            found: buf.shape().to_vec(),
                        });
                    }
                }
            }
            if !all_finite(g) {
                return Err(OptimError::NonFiniteGradient {
                    param: p.name().to_string(),
                });
            }
        }
        Ok(())
    }

    /// Validates all gradients, then, for each parameter with a gradient, creates its state
    /// if needed (every buffer filled with `init`), increments its step counter and calls
    /// `update(value, grad, slot)`.
    pub(crate) fn step_each(
        &mut self,
        params: &mut [&mut Param<T>],
        grads: &Grads<T>,
        init: T,
        mut update: impl FnMut(&mut ArrayD<T>, &ArrayD<T>, &mut Slot<T>),
    ) -> Result<(), OptimError> {
        self.validate(params, grads)?;
        let keys = self.keys;
        for p in params.iter_mut() {
            let Some(g) = grads.by_id(p.id()) else {
                continue;
            };
            let slot = self.slots.get_or_insert_with(p.id(), || Slot {
                step: 0,
                bufs: keys
                    .iter()
                    .map(|_| ArrayD::from_elem(g.raw_dim(), init))
                    .collect(),
            });
            slot.step += 1;
            update(p.value_mut(), g, slot);
        }
        Ok(())
    }

    pub(crate) fn reset(&mut self) {
        self.slots.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn view(&self, id: ParamId) -> Option<ParamState<'_, T>> {
        self.slots.get(&id).map(|slot| ParamState {
            step: slot.step,
            buffers: self.keys.iter().copied().zip(&slot.bufs).collect(),
        })
    }

    pub(crate) fn state_dict(
        &self,
        params: &[&Param<T>],
    ) -> Result<BTreeMap<String, ArrayD<T>>, OptimError> {
        check_unique_names(params)?;
        let mut out = BTreeMap::new();
        for p in params {
            let Some(slot) = self.slots.get(&p.id()) else {
                continue;
            };
            out.insert(
                format!("{}.step", p.name()),
                arr0(scalar::<T>(slot.step as f64)).into_dyn(),
            );
            for (key, buf) in self.keys.iter().zip(&slot.bufs) {
                out.insert(format!("{}.{key}", p.name()), buf.clone());
            }
        }
        Ok(out)
    }

    pub(crate) fn load_state_dict(
        &mut self,
        params: &[&Param<T>],
        state: &BTreeMap<String, ArrayD<T>>,
    ) -> Result<(), OptimError> {
        check_unique_names(params)?;
        let mut slots = Slots::with_capacity(params.len());
        let mut used = 0;
        for p in params {
            let name = p.name();
            let step_key = format!("{name}.step");
            let Some(step) = state.get(&step_key) else {
                // No state at all is fine (the parameter never had a gradient); part of it is not.
                if self
                    .keys
                    .iter()
                    .any(|k| state.contains_key(&format!("{name}.{k}")))
                {
                    return Err(OptimError::MissingState {
                        param: name.to_string(),
                        key: step_key,
                    });
                }
                continue;
            };
            used += 1;
            let step = parse_step(&step_key, step)?;
            let mut bufs = Vec::with_capacity(self.keys.len());
            for k in self.keys {
                let key = format!("{name}.{k}");
                let Some(buf) = state.get(&key) else {
                    return Err(OptimError::MissingState {
                        param: name.to_string(),
                        key,
                    });
                };
                if buf.shape() != p.shape() {
                    return Err(OptimError::StateShapeMismatch {
                        key,
                        expected: p.shape().to_vec(),
                        found: buf.shape().to_vec(),
                    });
                }
                used += 1;
                bufs.push(buf.as_standard_layout().into_owned());
            }
            slots.insert(p.id(), Slot { step, bufs });
        }
        if used != state.len() {
            let expected: HashSet<String> = params
                .iter()
                .flat_map(|p| {
                    std::iter::once("step")
                        .chain(self.keys.iter().copied())
                        .map(move |k| format!("{}.{k}", p.name()))
                })
                .collect();
            if let Some(key) = state.keys().find(|key| !expected.contains(*key)) {
                return Err(OptimError::UnexpectedState { key: key.clone() });
            }
        }
        self.slots = slots;
        Ok(())
    }
}

fn check_unique_names<T: Float>(params: &[&Param<T>]) -> Result<(), OptimError> {
    let mut seen = HashSet::with_capacity(params.len());
    for p in params {
        if !seen.insert(p.name()) {
            return Err(OptimError::DuplicateParamName {
                name: p.name().to_string(),
            });
        }
    }
    Ok(())
}

fn parse_step<T: Float>(key: &str, value: &ArrayD<T>) -> Result<u64, OptimError> {
    if value.ndim() != 0 {
        return Err(OptimError::StateShapeMismatch {
            key: key.to_string(),
            expected: vec![],
            found: value.shape().to_vec(),
        });
    }
    let step = value.iter().next().map_or(f64::NAN, |v| Float::to_f64(*v));
    if step.is_finite() && step >= 0.0 && step.fract() == 0.0 && step < u64::MAX as f64 {
        Ok(step as u64)
    } else {
        Err(OptimError::InvalidState {
            key: key.to_string(),
            reason: format!("a step counter must be a non-negative integer, got {step}"),
        })
    }
}

// Element-wise update loops live in `update.rs`; re-exported for the optimizers.
pub(crate) use crate::update::{all_finite, lerp, zip0, zip1, zip2, zip3};

/// Calls `f::<T, B1, B2, ...>(args)` with each runtime `bool` in the list turned into a
/// const generic parameter, so that the element loops have no branches on configuration
/// (a branch, even loop-invariant, keeps the compiler from vectorizing them).
macro_rules! dispatch {
    ($f:ident::<$T:ty $(, $done:tt)*>; []; $($arg:expr),*) => {
        $f::<$T $(, $done)*>($($arg),*)
    };
    ($f:ident::<$T:ty $(, $done:tt)*>; [$b:expr $(, $rest:expr)*]; $($arg:expr),*) => {
        if $b {
            $crate::optimizer::dispatch!($f::<$T $(, $done)*, true>; [$($rest),*]; $($arg),*)
        } else {
            $crate::optimizer::dispatch!($f::<$T $(, $done)*, false>; [$($rest),*]; $($arg),*)
        }
    };
}
pub(crate) use dispatch;

/// Implements every method of [`Optimizer`] but `step`, which all optimizers share: `name`
/// returns `$name`; `lr` and `set_lr` read and write the `lr` field of the optimizer's
/// `config` field; the state methods delegate to the `StateStore` in its `state` field.
macro_rules! common_optimizer_methods {
    ($name:literal) => {
        fn name(&self) -> &'static str {
            $name
        }

        fn lr(&self) -> f64 {
            self.config.lr
        }

        fn set_lr(&mut self, lr: f64) {
            $crate::optimizer::assert_valid_lr(lr);
            self.config.lr = lr;
        }

        fn reset(&mut self) {
            self.state.reset();
        }

        fn state_len(&self) -> usize {
            self.state.len()
        }

        fn param_state(
            &self,
            id: tapegrad_autograd::ParamId,
        ) -> Option<$crate::optimizer::ParamState<'_, T>> {
            self.state.view(id)
        }

        fn state_dict(
            &self,
            params: &[&tapegrad_autograd::Param<T>],
        ) -> Result<
            std::collections::BTreeMap<String, ndarray::ArrayD<T>>,
            $crate::optimizer::OptimError,
        > {
            self.state.state_dict(params)
        }

        fn load_state_dict(
            &mut self,
            params: &[&tapegrad_autograd::Param<T>],
            state: &std::collections::BTreeMap<String, ndarray::ArrayD<T>>,
        ) -> Result<(), $crate::optimizer::OptimError> {
            self.state.load_state_dict(params, state)
        }
    };
}
pub(crate) use common_optimizer_methods;

/// The constructors that every optimizer `$opt<T>` (a struct with the fields
/// `config: $config` and `state: StateStore<T>`) and its config have in the same form:
/// `$config::new(lr)` (the [`Default`] with learning rate `lr`), the `lr` setter,
/// `$config::build`, and `$opt::new(lr)`, `$opt::with_config(config)` and `$opt::config()`.
///
/// The config provides `validate(&self)` and `state_keys(&self)` (the names of the buffers
/// each parameter gets with this configuration).
macro_rules! optimizer_constructors {
    ($opt:ident, $config:ident) => {
        impl $config {
            /// PyTorch's defaults with learning rate `lr`.
            pub fn new(lr: f64) -> Self {
                $config {
                    lr,
                    ..$config::default()
                }
            }

            $crate::optimizer::setters! {
                /// Sets the learning rate.
                lr: f64,
            }

            /// Validates the hyper-parameters and builds the optimizer.
            ///
            /// # Errors
            ///
            /// [`OptimError::InvalidHyperParameter`] if a hyper-parameter is invalid.
            pub fn build<T: tapegrad_autograd::Float>(
                &self,
            ) -> Result<$opt<T>, $crate::optimizer::OptimError> {
                $opt::with_config(self.clone())
            }
        }

        impl<T: tapegrad_autograd::Float> $opt<T> {
            #[doc = concat!(
                "[`", stringify!($opt), "`] with PyTorch's defaults ([`", stringify!($config),
                "::default`]) and learning rate `lr`."
            )]
            ///
            /// # Errors
            ///
            /// [`OptimError::InvalidHyperParameter`] if `lr` is negative or not finite.
            pub fn new(lr: f64) -> Result<Self, $crate::optimizer::OptimError> {
                Self::with_config($config::new(lr))
            }

            #[doc = concat!("[`", stringify!($opt), "`] with these hyper-parameters.")]
            ///
            /// # Errors
            ///
            /// [`OptimError::InvalidHyperParameter`] if a hyper-parameter is invalid.
            pub fn with_config(config: $config) -> Result<Self, $crate::optimizer::OptimError> {
                config.validate()?;
                let state = $crate::optimizer::StateStore::new(config.state_keys());
                Ok($opt { config, state })
            }

            /// Its hyper-parameters (`lr` is the current learning rate).
            pub fn config(&self) -> &$config {
                &self.config
            }
        }
    };
}
pub(crate) use optimizer_constructors;

/// The gradient with coupled (L2) weight decay added, `g + wd · p`, when `WD`; else `g`.
/// The flag is a const parameter so that the loops calling it vectorize.
#[inline(always)]
pub(crate) fn with_l2_decay<T: Float, const WD: bool>(g: T, wd: T, p: T) -> T {
    if WD { g + wd * p } else { g }
}

/// State that decays geometrically while a parameter's gradient stays zero (an always-blank
/// pixel's weight) ends in subnormal numbers, which x86 processors compute about 40 times
/// slower: optimizers flush it to zero. The change is below `T::min_positive_value()`
/// (1.2e-38 in f32), far under any tolerance; the golden replays are unaffected.
#[inline(always)]
pub(crate) fn flush_subnormal<T: Float>(x: T) -> T {
    if x.abs() < T::min_positive_value() {
        T::zero()
    } else {
        x
    }
}

/// Builder setters of a config struct: for each `/// doc  field: Type`, a
/// `pub fn field(mut self, field: Type) -> Self` that sets the field of that name.
macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $field(mut self, $field: $ty) -> Self {
                self.$field = $field;
                self
            }
        )*
    };
}
pub(crate) use setters;
