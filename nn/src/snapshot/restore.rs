//! Putting a [`TrainingSnapshot`] back into a module, an optimizer, a walk over the data and
//! a scheduler: everything checked first, then everything changed.

use std::collections::HashSet;

use tapegrad_autograd::Float;
use tapegrad_optim::schedules::Scheduler;
use tapegrad_optim::{LrSchedule, Optimizer};

use super::{SnapshotError, TrainingSnapshot, WalkPosition};
use crate::data::Batches;
use crate::module::{Entry, EntryMut, Module, Visitor, VisitorMut};

impl<T: Float> TrainingSnapshot<T> {
    /// Puts the snapshot's parameters, buffers and random generators into `module`, and its
    /// optimizer state and learning rate into `optimizer`. Everything is checked first: on
    /// error nothing changed.
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Model`] (the module's entries differ: names every difference),
    /// [`SnapshotError::Optimizer`] (another kind of optimizer),
    /// [`SnapshotError::OptimizerState`] (another configuration, an invalid rate).
    pub fn restore(
        &self,
        module: &mut (impl Module<T> + ?Sized),
        optimizer: &mut (impl Optimizer<T> + ?Sized),
    ) -> Result<(), SnapshotError> {
        self.restore_rank(module, optimizer, 0)
    }

    /// [`restore`](Self::restore) with the random generators of rank `rank`.
    pub(crate) fn restore_rank(
        &self,
        module: &mut (impl Module<T> + ?Sized),
        optimizer: &mut (impl Optimizer<T> + ?Sized),
        rank: usize,
    ) -> Result<(), SnapshotError> {
        self.check_module(&*module)?;
        if optimizer.name() != self.optimizer {
            return Err(SnapshotError::Optimizer {
                expected: optimizer.name(),
                found: self.optimizer.clone(),
            });
        }
        let old_lr = optimizer.lr();
        optimizer
            .set_lr(self.lr)
            .map_err(SnapshotError::OptimizerState)?;
        if let Err(e) = optimizer.load_state_dict(&module.params(), &self.optimizer_state) {
            optimizer
                .set_lr(old_lr)
                .map_err(SnapshotError::OptimizerState)?;
            return Err(SnapshotError::OptimizerState(e));
        }
        module.visit_mut(&mut VisitorMut::new(&mut |path, entry| match entry {
            EntryMut::Param(p) => {
                if let Some(v) = self.params.get(path) {
                    p.value_mut().assign(v);
                }
            }
            EntryMut::Buffer(b) => {
                if let Some(v) = self.buffers.get(path) {
                    b.value_mut().assign(v);
                }
            }
        }));
        module.visit(&mut Visitor::new(&mut |path, entry| {
            let states = self.generators.get(path);
            if let (Entry::Generator(g), Some(&state)) = (entry, states.and_then(|s| s.get(rank))) {
                g.set(state);
            }
        }));
        Ok(())
    }

    /// Checks that `module` has exactly the snapshot's parameters, buffers and generators,
    /// with the same shapes.
    fn check_module(&self, module: &(impl Module<T> + ?Sized)) -> Result<(), SnapshotError> {
        let (mut missing, mut shapes) = (Vec::new(), Vec::new());
        let mut seen = HashSet::new();
        module.visit(&mut Visitor::new(&mut |path, entry| {
            let (kind, found, shape) = match entry {
                Entry::Param(p) => (
                    "param",
                    self.params.get(path).map(|v| v.shape()),
                    p.shape().to_vec(),
                ),
                Entry::Buffer(b) => (
                    "buffer",
                    self.buffers.get(path).map(|v| v.shape()),
                    b.shape(),
                ),
                Entry::Generator(_) => {
                    let found = self.generators.contains_key(path).then_some(&[][..]);
                    ("generator", found, Vec::new())
                }
            };
            let name = format!("{kind} {path}");
            match found {
                None => missing.push(name.clone()),
                Some(found) if found != shape.as_slice() => {
                    shapes.push((name.clone(), shape, found.to_vec()));
                }
                Some(_) => {}
            }
            seen.insert(name);
        }));
        let mut unexpected: Vec<String> = self
            .params
            .keys()
            .map(|k| format!("param {k}"))
            .chain(self.buffers.keys().map(|k| format!("buffer {k}")))
            .chain(self.generators.keys().map(|k| format!("generator {k}")))
            .filter(|name| !seen.contains(name))
            .collect();
        if missing.is_empty() && unexpected.is_empty() && shapes.is_empty() {
            return Ok(());
        }
        missing.sort();
        unexpected.sort();
        shapes.sort();
        Err(SnapshotError::Model {
            missing,
            unexpected,
            shapes,
        })
    }

    /// Puts `batches` where the snapshot's walk was, so that its next
    /// [`epoch`](Batches::epoch) starts the snapshot's [`epoch`](Self::epoch) with the same
    /// order.
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Mismatch`] (part `"data walk"`) if the snapshot has no walk, or one
    /// over other rows, batch size or seed.
    pub fn restore_batches(&self, batches: &mut Batches) -> Result<(), SnapshotError> {
        let walk = WalkPosition::of(batches);
        match &self.batches {
            Some(saved) if *saved == walk => {
                batches.seek_epoch(self.epoch as u64);
                Ok(())
            }
            saved => Err(SnapshotError::Mismatch {
                part: "data walk",
                expected: walk.describe(),
                found: saved
                    .as_ref()
                    .map_or_else(|| "not saved".to_string(), WalkPosition::describe),
            }),
        }
    }

    /// A [`Scheduler`] of `schedule` at the snapshot's step, which sets `optimizer`'s rate.
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Mismatch`] (part `"schedule"`) if the snapshot has no scheduler;
    /// [`SnapshotError::OptimizerState`] if the schedule's rate is invalid.
    pub fn resume_scheduler<S: LrSchedule>(
        &self,
        schedule: S,
        optimizer: &mut (impl Optimizer<T> + ?Sized),
    ) -> Result<Scheduler<S>, SnapshotError> {
        let steps = self.schedule_steps.ok_or(SnapshotError::Mismatch {
            part: "schedule",
            expected: "a scheduler".to_string(),
            found: "none".to_string(),
        })?;
        Scheduler::resume(schedule, steps, optimizer).map_err(SnapshotError::OptimizerState)
    }
}
