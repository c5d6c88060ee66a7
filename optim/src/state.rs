//! Per-parameter optimizer state: a step counter and buffers for each parameter id,
//! validation of a step's gradients before anything is touched, and saving and loading the
//! state by parameter name.

use std::collections::{BTreeMap, HashSet};

use ndarray::{ArrayD, arr0};
use tapegrad_autograd::{Float, FloatFn, Grads, Param, ParamId};

use crate::error::OptimError;
use crate::optimizer::ParamState;
use crate::update::{all_finite, scalar};

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
    scratch: Scratch,
}

/// The allocation of the vector into which a step collects its parameter references (it
/// reads them twice: validation, then update), kept from one step to the next so that a
/// step allocates nothing. The references themselves live only during the step; between
/// steps the vector is empty.
#[derive(Debug, Default)]
struct Scratch(Vec<&'static mut ()>);

impl Scratch {
    /// The kept allocation, as an empty vector of references to parameters.
    fn take<'p, T>(&mut self) -> Vec<&'p mut Param<T>> {
        recycle(std::mem::take(&mut self.0))
    }

    /// Keeps the allocation of `refs` for the next step.
    fn keep<T>(&mut self, refs: Vec<&mut Param<T>>) {
        self.0 = recycle(refs);
    }
}

impl Clone for Scratch {
    /// A clone has no references to share: it starts with no allocation.
    fn clone(&self) -> Self {
        Scratch::default()
    }
}

/// An empty vector of `B`s with the allocation of `v` (emptied first). References of any
/// two sized types have the same size and alignment, so the standard library's in-place
/// collection reuses the buffer (and simply allocates when it does not).
fn recycle<A, B>(mut v: Vec<A>) -> Vec<B> {
    v.clear();
    v.into_iter()
        .map(|_| unreachable!("the vector is empty"))
        .collect()
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
            scratch: Scratch::default(),
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
        params: &mut dyn Iterator<Item = &mut Param<T>>,
        grads: &Grads<T>,
        init: T,
        update: impl FnMut(&mut ArrayD<T>, &ArrayD<T>, &mut Slot<T>),
    ) -> Result<(), OptimError> {
        let mut refs = self.scratch.take();
        refs.extend(params);
        let result = self
            .validate(&refs, grads)
            .map(|()| self.update_each(&mut refs, grads, init, update));
        self.scratch.keep(refs);
        result
    }

    /// The update part of `step_each`, once every gradient is known to be valid.
    fn update_each(
        &mut self,
        params: &mut [&mut Param<T>],
        grads: &Grads<T>,
        init: T,
        mut update: impl FnMut(&mut ArrayD<T>, &ArrayD<T>, &mut Slot<T>),
    ) {
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

/// [`StateStore::state_dict`], compiled here for `f32` and `f64` (every optimizer's
/// `state_dict` calls it through [`Float::call`]).
pub(crate) struct StateDict;

impl FloatFn for StateDict {
    type Args<'a, T: Float> = (&'a StateStore<T>, &'a [&'a Param<T>]);
    type Output<'a, T: Float> = Result<BTreeMap<String, ArrayD<T>>, OptimError>;
    fn f32<'a>((store, params): Self::Args<'a, f32>) -> Self::Output<'a, f32> {
        store.state_dict(params)
    }
    fn f64<'a>((store, params): Self::Args<'a, f64>) -> Self::Output<'a, f64> {
        store.state_dict(params)
    }
}

/// [`StateStore::load_state_dict`], compiled here for `f32` and `f64`.
pub(crate) struct LoadStateDict;

impl FloatFn for LoadStateDict {
    type Args<'a, T: Float> = (
        &'a mut StateStore<T>,
        &'a [&'a Param<T>],
        &'a BTreeMap<String, ArrayD<T>>,
    );
    type Output<'a, T: Float> = Result<(), OptimError>;
    fn f32<'a>((store, params, state): Self::Args<'a, f32>) -> Self::Output<'a, f32> {
        store.load_state_dict(params, state)
    }
    fn f64<'a>((store, params, state): Self::Args<'a, f64>) -> Self::Output<'a, f64> {
        store.load_state_dict(params, state)
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
