//! The [`Optimizer`] trait, and [`ParamState`], a view of one parameter's state.
//!
//! `step` takes any iterator of parameters; the trait stays object-safe (a model holds a
//! `Box<dyn Optimizer<T> + Send>`) because implementors write `step_dyn`, which takes the
//! iterator as a trait object, and `step` is an inherent method of every built-in optimizer
//! and of `dyn Optimizer<T>`.

use std::collections::BTreeMap;

use ndarray::ArrayD;
use tapegrad_autograd::{Float, Grads, Param, ParamId};

pub(crate) use crate::error::{OptimError, in_unit_closed, in_unit_open, invalid, non_negative};
pub(crate) use crate::macros::{common_optimizer_methods, optimizer_constructors, setters};
pub(crate) use crate::state::StateStore;
pub(crate) use crate::update::{
    dispatch, flush_subnormal, lerp, scalar, with_l2_decay, zip0, zip1, zip2, zip3,
};

/// An update rule: turns gradients into in-place changes of parameters.
///
/// The trait is object-safe, so a training loop can hold a `Box<dyn Optimizer<T>>`; `step`
/// is called the same way on a built-in optimizer and on a `dyn Optimizer<T>` (an optimizer
/// of your own implements [`step_dyn`](Optimizer::step_dyn)).
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
///     opt.step([&mut w], &grads)?;
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

    /// Performs one update of every parameter `params` yields that has a gradient in
    /// `grads`: the method an optimizer implements. Callers write `opt.step(params, &grads)`,
    /// the same with any iterator, which every built-in optimizer and `dyn Optimizer<T>` have
    /// (see [`step`](#method.step)); `step_dyn` is for generic code and for calling an
    /// optimizer of your own by its concrete type.
    ///
    /// A parameter yielded twice is updated twice. Gradients of parameters not in `params`
    /// are ignored; parameters without a gradient are left untouched and their state is not
    /// updated.
    ///
    /// # Errors
    ///
    /// All gradients are checked before anything changes, so on error every parameter and
    /// all state are exactly as before the call:
    /// - [`OptimError::NonFiniteGradient`] if a gradient holds a NaN or an infinity;
    /// - [`OptimError::ShapeMismatch`] if a gradient's shape differs from its parameter's;
    /// - [`OptimError::StateShapeMismatch`] if a parameter's value was replaced by one of
    ///   another shape since its state was created.
    fn step_dyn(
        &mut self,
        params: &mut dyn Iterator<Item = &mut Param<T>>,
        grads: &Grads<T>,
    ) -> Result<(), OptimError>;

    /// The current learning rate.
    fn lr(&self) -> f64;

    /// Sets the learning rate used by the next steps (what a
    /// [`Scheduler`](crate::schedules::Scheduler) does each epoch or batch).
    ///
    /// # Errors
    ///
    /// [`OptimError::InvalidHyperParameter`] (named `lr`) if `lr` is negative, NaN or
    /// infinite; the learning rate is then unchanged.
    fn set_lr(&mut self, lr: f64) -> Result<(), OptimError>;

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

/// The method `step(params, grads)` of an optimizer type: [`Optimizer::step_dyn`] with
/// `params` any iterator of `&mut Param<T>`. An inherent method (on every built-in optimizer
/// and on `dyn Optimizer<T>`), not a trait method, so that the trait stays object-safe and
/// `step` is called the same way on a concrete optimizer and on a trait object.
macro_rules! step_method {
    () => {
        /// Performs one update of every parameter in `params` that has a gradient in
        /// `grads` (see [`Optimizer::step_dyn`](crate::Optimizer::step_dyn)).
        ///
        /// `params` is any iterator of `&mut Param<T>`: an array `[&mut w, &mut b]`, the
        /// `Vec` a module's `params_mut()` returns, `params.iter_mut()` over your own
        /// `Vec<Param<T>>`, a chain of those.
        ///
        /// # Errors
        ///
        /// As [`Optimizer::step_dyn`](crate::Optimizer::step_dyn); on error nothing has
        /// changed.
        pub fn step<'p>(
            &mut self,
            params: impl IntoIterator<Item = &'p mut tapegrad_autograd::Param<T>>,
            grads: &tapegrad_autograd::Grads<T>,
        ) -> Result<(), $crate::OptimError>
        where
            T: 'p,
        {
            $crate::Optimizer::step_dyn(self, &mut params.into_iter(), grads)
        }
    };
}
pub(crate) use step_method;

impl<T: Float> dyn Optimizer<T> + '_ {
    step_method!();
}

impl<T: Float> dyn Optimizer<T> + Send + '_ {
    step_method!();
}

impl<T: Float> dyn Optimizer<T> + Send + Sync + '_ {
    step_method!();
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
