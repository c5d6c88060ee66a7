//! The epoch loop of [`Model::fit`](super::Model::fit), run once the data and the model are
//! checked and the callbacks' `on_train_begin` has run.
//!
//! On one process a step is: forward, backward, `on_batch_end`, optimizer step. With a
//! communicator of `size() > 1` ranks, each rank computes the gradients of its slice of the
//! global batch, and one all-reduce ([`GradientBuffer`]) sums the gradients, the losses,
//! the rows and a failure word, and carries rank 0's module buffers (running statistics) to
//! every rank; then every rank runs the same callbacks and optimizer step on the same
//! numbers, so the replicas stay bit-identical, buffers included. The ranks agree on every
//! callback's outcome (error or stop) before they go on.

use ndarray::{ArrayD, Axis};
use tapegrad_autograd::{Float, Grads, Param, Tape};
use tapegrad_optim::schedules::Scheduler;
use tapegrad_optim::{LrSchedule, OptimError};

use super::backup::{BackupPlan, Start, totals};
use super::dist::{agree, agree_stop, reduce_totals, step_failure};
use super::eval::{evaluate_batches, scalar_loss};
use super::metric::MetricAcc;
use super::prepare::Prepared;
use super::progress::Reporter;
use super::{Compiled, FitError, FitOptions, SchedulePer};
use crate::callbacks::{
    BatchLogs, Callback, CallbackError, Control, EpochLogs, StepGradients, TrainingState,
};
use crate::communicator::{Communicator, GradientBuffer, batch_rows};
use crate::data::{Batches, take_rows};
use crate::history::{History, StopReason};
use crate::module::{EntryMut, Module, VisitorMut};
use crate::snapshot::{EpochProgress, TrainingSnapshot, WalkPosition};

/// The scheduler of [`FitOptions::lr_schedule`], and how often it steps.
type FitScheduler<'o> = (Scheduler<&'o dyn LrSchedule>, SchedulePer);

/// An error of the optimizer, or of the schedule setting its rate, as the error of the step
/// (epoch and batch) it was for.
fn optimizer_error(epoch: usize, batch: usize) -> impl FnOnce(OptimError) -> FitError {
    move |source| FitError::Optimizer {
        epoch,
        batch,
        source,
    }
}

/// Mixed into the seed of the shuffling generator, so that the order of the samples and
/// the weight initialization draw from different streams of the same seed.
const SHUFFLE_STREAM: u64 = 0x5348_5546_464C_4521;

/// Everything the epoch loop reads and updates.
pub(super) struct Training<'a, 'd, T: Float> {
    pub(super) module: &'a mut dyn Module<T>,
    pub(super) compiled: &'a mut Compiled<T>,
    pub(super) callbacks: &'a mut [Box<dyn Callback<T>>],
    pub(super) train: &'a Prepared<'d, T>,
    pub(super) validation: Option<&'a Prepared<'d, T>>,
    pub(super) train_metrics: Vec<MetricAcc>,
    pub(super) val_metrics: Vec<MetricAcc>,
    /// The logged names: `loss`, the metrics, then `val_loss` and the validation metrics.
    pub(super) names: &'a [String],
    pub(super) options: &'a FitOptions<T>,
    pub(super) comm: &'a dyn Communicator,
    /// The backup written during training, if a `BackupAndRestore` asks for one.
    pub(super) backup: Option<BackupPlan>,
    /// The backup's snapshot to resume from, if there was one.
    pub(super) resume: Option<TrainingSnapshot<T>>,
}

/// Whether this rank runs `cb` (root-only callbacks run on rank 0 only).
fn runs_here<T: Float>(cb: &dyn Callback<T>, comm: &dyn Communicator) -> bool {
    !cb.root_only() || comm.is_root()
}

impl<T: Float> Training<'_, '_, T> {
    /// Trains for `options.epochs` epochs, or until a callback stops training (then the
    /// reason is recorded in `history`).
    pub(super) fn run(mut self, history: &mut History) -> Result<(), FitError> {
        let n = self.train.x.len_of(Axis(0));
        // The rows of a step on all ranks together.
        let global = self.options.batch_size.saturating_mul(self.comm.size());
        // With a single batch per epoch the order of its rows cannot matter: it is not
        // shuffled, and is gathered with one copy.
        let mut batches = if self.options.shuffle && n > global {
            Batches::shuffled(n, global, self.options.seed ^ SHUFFLE_STREAM)
        } else {
            Batches::in_order(n, global)
        };
        let mut values = vec![f64::NAN; self.names.len()];
        let verbose = if self.comm.is_root() {
            self.options.verbose
        } else {
            0
        };
        let mut report = Reporter::new(verbose, self.options.epochs, batches.len());
        let mut buffer = (self.comm.size() > 1).then(|| {
            GradientBuffer::new(&self.module.params()).with_buffers(&self.module.buffers())
        });
        let options = self.options;
        if let Some(plan) = self.backup.as_mut() {
            plan.walk = Some(WalkPosition::of(&batches));
        }
        let per_epoch = batches.len();
        let start = match self.resume.take() {
            Some(snapshot) => {
                let steps = snapshot.schedule_steps().unwrap_or(0);
                let has_schedule = options.lr_schedule.is_some();
                self.restore_backup(snapshot, per_epoch, has_schedule, history)?
                    .map(|start| (start, steps))
            }
            None => None,
        };
        let (first_epoch, mut within, schedule_steps) = match start {
            Some((Start { epoch, within }, steps)) => {
                batches.seek_epoch(epoch as u64);
                (epoch, within, steps)
            }
            None => (0, None, 0),
        };
        let mut scheduler = match &options.lr_schedule {
            Some((schedule, per)) => Some((
                Scheduler::resume(&**schedule, schedule_steps, &mut *self.compiled.optimizer)
                    .map_err(optimizer_error(first_epoch, 0))?,
                *per,
            )),
            None => None,
        };

        for epoch in first_epoch..self.options.epochs {
            // A resumed epoch has begun already: its callbacks' state says so.
            let resumed = within.take();
            let mut begun = Ok(());
            for cb in self.callbacks.iter_mut() {
                if !runs_here(&**cb, self.comm) || resumed.is_some() {
                    continue;
                }
                let mut state = TrainingState::new(self.module, &mut *self.compiled.optimizer);
                if let Err(e) = cb.on_epoch_begin(epoch, &mut state) {
                    begun = Err(callback_error(&**cb, epoch, e));
                    break;
                }
            }
            agree(self.comm, begun)?;
            report.epoch_begin(epoch);
            let (loss, stop) = self.epoch(
                epoch,
                &mut batches,
                resumed,
                buffer.as_mut(),
                scheduler.as_mut(),
                &mut report,
            )?;

            values[0] = loss;
            reduce_totals(self.comm, 0.0, &mut self.train_metrics)?;
            for (v, m) in values[1..].iter_mut().zip(&self.train_metrics) {
                *v = m.value();
            }
            let first_val = 1 + self.train_metrics.len();
            if self.validation.is_some() {
                if stop.is_none() {
                    values[first_val] = self.validate()?;
                    for (v, m) in values[first_val + 1..].iter_mut().zip(&self.val_metrics) {
                        *v = m.value();
                    }
                } else {
                    values[first_val..].fill(f64::NAN);
                }
            }
            history.push_epoch(&values);
            report.epoch_end(epoch, self.names, &values);
            let stop = match stop {
                Some(reason) => Some(reason),
                None => self.epoch_end_callbacks(epoch, &values)?,
            };
            if let Some(reason) = stop {
                history.set_stop_reason(reason);
                return Ok(());
            }
            if let Some((scheduler, SchedulePer::Epoch)) = scheduler.as_mut() {
                scheduler
                    .step(&mut *self.compiled.optimizer)
                    .map_err(optimizer_error(epoch + 1, 0))?;
            }
            if let Some(plan) = self.backup.as_mut() {
                plan.history = history.clone();
                let steps = scheduler.as_ref().map(|(s, _)| s.steps());
                self.write_backup(epoch + 1, 0, None, steps)?;
            }
        }
        Ok(())
    }

    /// The forward and backward passes of one batch on this rank: its mean loss and the
    /// gradients (metric totals go to `train_metrics`).
    ///
    /// On the first step (`first`) it also checks that every parameter the forward pass
    /// used is registered by the module ([`Module::check_registered`]).
    fn forward_backward(
        &mut self,
        bx: ArrayD<T>,
        by: ArrayD<T>,
        first: bool,
    ) -> Result<(f64, Grads<T>), FitError> {
        let tape = Tape::new();
        let out = self.module.forward(tape.constant(bx));
        let target = tape.constant(by);
        let loss = self.compiled.loss.call(out, target);
        let value = scalar_loss(&self.compiled.loss, loss)?;
        if !self.train_metrics.is_empty() {
            let metrics = &mut self.train_metrics;
            let (p, t) = (out.value(), target.value());
            metrics.iter_mut().for_each(|m| m.update(&p, &t));
        }
        let grads = loss.backward();
        if first && !self.options.allow_no_trainable {
            self.module.check_registered(&grads)?;
        }
        Ok((value, grads))
    }

    /// One pass over the training batches: the mean loss over the samples seen (all ranks),
    /// and the reason a callback stopped training in the middle, if one did (the batch it
    /// stopped at is not applied). `resumed` is the first batch and the totals before it of
    /// an epoch resumed from a backup. `buffer` is the step's all-reduce buffer, `None` on
    /// one process; a per-batch `scheduler` steps after each optimizer step.
    fn epoch(
        &mut self,
        epoch: usize,
        batches: &mut Batches,
        resumed: Option<(usize, EpochProgress)>,
        mut buffer: Option<&mut GradientBuffer<T>>,
        mut scheduler: Option<&mut FitScheduler<'_>>,
        report: &mut Reporter,
    ) -> Result<(f64, Option<StopReason>), FitError> {
        for m in self.train_metrics.iter_mut() {
            m.reset();
        }
        let (mut first, mut loss_sum, mut seen) = (0, 0.0, 0);
        if let Some((batch, progress)) = resumed {
            (first, loss_sum, seen) = (batch, progress.loss_sum, progress.seen);
            for (m, total) in self.train_metrics.iter_mut().zip(progress.metrics) {
                m.set_total(total);
            }
        }
        let per_epoch = batches.len();
        let every = self.backup.as_ref().map_or(0, |p| p.backup.steps());
        let train = self.train;
        let (per_rank, rank) = (self.options.batch_size, self.comm.rank());
        // The allocation of the list of parameters handed to the optimizer, kept from one
        // step to the next.
        let mut spare: Vec<&()> = Vec::new();
        for (batch, rows) in batches.epoch().enumerate().skip(first) {
            let first_step = epoch == 0 && batch == 0;
            let (size, loss_value, grads) = match buffer.as_deref_mut() {
                None => {
                    let size = rows.len();
                    let (bx, by) = (take_rows(&train.x, rows), take_rows(&train.y, rows));
                    let (loss_value, grads) = self.forward_backward(bx, by, first_step)?;
                    loss_sum += loss_value * size as f64;
                    (size, loss_value, grads)
                }
                Some(buffer) => {
                    let mine = &rows[batch_rows(0, rows.len(), per_rank, rank)];
                    let local = if mine.is_empty() {
                        Ok((0.0, None))
                    } else {
                        let (bx, by) = (take_rows(&train.x, mine), take_rows(&train.y, mine));
                        self.forward_backward(bx, by, first_step)
                            .map(|(l, g)| (l, Some(g)))
                    };
                    let (loss, grads, failure) = match local {
                        Ok((loss, grads)) => (loss, grads, None),
                        Err(e) => (0.0, None, Some(e)),
                    };
                    buffer.pack(grads.as_ref(), mine.len(), loss, failure.is_some());
                    buffer.pack_buffers(&self.module.buffers(), rank);
                    let totals = buffer.reduce(self.comm)?;
                    if totals.failed > 0 || failure.is_some() {
                        return Err(step_failure(self.comm, failure));
                    }
                    buffer.unpack_buffers(&self.module.buffers());
                    loss_sum += totals.loss_sum;
                    (totals.rows, totals.mean_loss(), buffer.grads(totals.rows))
                }
            };
            seen += size;
            let logs = BatchLogs {
                epoch,
                batch,
                batches: per_epoch,
                size,
                loss: loss_value,
            };
            let stop = self.batch_end_callbacks(&logs)?;
            if stop.is_some() {
                return Ok((loss_sum / seen as f64, stop));
            }
            self.gradient_callbacks(&logs, &grads);
            // The parameters listed in the allocation of the previous step's list.
            let mut params: Vec<&mut Param<T>> = reuse(std::mem::take(&mut spare));
            self.module
                .visit_mut(&mut VisitorMut::unnamed(&mut |_, entry| {
                    if let EntryMut::Param(p) = entry {
                        params.push(p);
                    }
                }));
            let stepped = self.compiled.optimizer.step(params.drain(..), &grads);
            spare = reuse(params);
            stepped.map_err(optimizer_error(epoch, batch))?;
            if let Some((scheduler, SchedulePer::Batch)) = scheduler.as_deref_mut() {
                scheduler
                    .step(&mut *self.compiled.optimizer)
                    .map_err(optimizer_error(epoch, batch))?;
            }
            if every > 0 && (epoch * per_epoch + batch + 1).is_multiple_of(every) {
                let progress = EpochProgress {
                    loss_sum,
                    seen,
                    metrics: totals(&self.train_metrics),
                };
                let steps = scheduler.as_deref().map(|(s, _)| s.steps());
                self.write_backup(epoch, batch + 1, Some(progress), steps)?;
            }
            report.batch_end(batch, loss_sum / seen as f64);
        }
        Ok((loss_sum / seen as f64, None))
    }

    /// The validation loss, in inference mode (metric totals go to `val_metrics`).
    fn validate(&mut self) -> Result<f64, FitError> {
        let validation = self
            .validation
            .expect("validate runs only with validation data");
        self.module.set_training(false);
        let result = evaluate_batches(
            &*self.module,
            &self.compiled.loss,
            &mut self.val_metrics,
            validation,
            self.options.batch_size,
            self.comm,
        );
        self.module.set_training(true);
        result
    }

    /// Runs every callback's `on_batch_end`; the first reason to stop wins. With several
    /// ranks, the lowest rank that stops gives its reason to every rank (one small
    /// all-reduce per batch when there are callbacks). Nothing runs without callbacks.
    fn batch_end_callbacks(&mut self, logs: &BatchLogs) -> Result<Option<StopReason>, FitError> {
        if self.callbacks.is_empty() {
            return Ok(None);
        }
        let stop = self
            .callbacks
            .iter_mut()
            .find_map(|cb| match cb.on_batch_end(logs) {
                Control::Continue => None,
                Control::Stop(reason) => Some(reason),
            });
        agree_stop(self.comm, stop)
    }

    /// Runs the `on_gradients` of every callback that runs on this rank.
    fn gradient_callbacks(&mut self, logs: &BatchLogs, grads: &Grads<T>) {
        let gradients = StepGradients::new(&*self.module, grads);
        for cb in self.callbacks.iter_mut() {
            if runs_here(&**cb, self.comm) {
                cb.on_gradients(logs, &gradients);
            }
        }
    }

    /// Runs every callback's `on_epoch_end`; the first reason to stop wins. With several
    /// ranks, an error on any rank is every rank's, and otherwise the lowest rank that
    /// stops (rank 0 for a root-only callback) gives its reason to every rank.
    fn epoch_end_callbacks(
        &mut self,
        epoch: usize,
        values: &[f64],
    ) -> Result<Option<StopReason>, FitError> {
        if self.callbacks.is_empty() {
            return Ok(None);
        }
        let logs = EpochLogs {
            epoch,
            names: self.names,
            values,
        };
        let comm = self.comm;
        let mut stop = None;
        let mut result = Ok(());
        for cb in self.callbacks.iter_mut() {
            if !runs_here(&**cb, comm) {
                continue;
            }
            let mut state = TrainingState::new(self.module, &mut *self.compiled.optimizer);
            match cb.on_epoch_end(&logs, &mut state) {
                Err(e) => {
                    result = Err(callback_error(&**cb, epoch, e));
                    break;
                }
                Ok(Control::Stop(reason)) if stop.is_none() => stop = Some(reason),
                Ok(_) => {}
            }
        }
        agree(comm, result)?;
        agree_stop(comm, stop)
    }
}

/// An empty vector of `B`s with the allocation of `v` (emptied first). References of any
/// two sized types have the same size and alignment, so the standard library's in-place
/// collection reuses the buffer (and simply allocates when it does not).
fn reuse<A, B>(mut v: Vec<A>) -> Vec<B> {
    v.clear();
    v.into_iter()
        .map(|_| unreachable!("the vector is empty"))
        .collect()
}

fn callback_error<T: Float>(cb: &dyn Callback<T>, epoch: usize, source: CallbackError) -> FitError {
    FitError::Callback {
        callback: cb.name(),
        epoch: Some(epoch),
        source: Box::new(source),
    }
}
