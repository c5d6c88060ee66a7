//! How [`Model::fit`](super::Model::fit) drives a
//! [`BackupAndRestore`]: reading the backup at the start (rank 0 reads, every rank gets the
//! same bytes), checking it against the run and restoring it, and writing the training
//! state at its steps and epoch ends (rank 0 writes, with every rank's generators).

use tapegrad_autograd::Float;

use super::FitError;
use super::dist::agree;
use super::metric::MetricAcc;
use super::train::Training;
use crate::callbacks::{BackupAndRestore, Callback};
use crate::communicator::Communicator;
use crate::history::History;
use crate::metrics::MetricTotal;
use crate::snapshot::{EpochProgress, SnapshotError, TrainingSnapshot, WalkPosition};

/// The backup of a `fit`: its callback's settings, the data walk, and the history of the
/// finished epochs.
pub(super) struct BackupPlan {
    pub(super) backup: BackupAndRestore,
    pub(super) walk: Option<WalkPosition>,
    pub(super) history: History,
}

/// Where a resumed `fit` starts: the epoch, and within it the batch and the totals of the
/// batches before it (`None` at an epoch's start).
pub(super) struct Start {
    pub(super) epoch: usize,
    pub(super) within: Option<(usize, EpochProgress)>,
}

/// The backup of the first [`BackupAndRestore`] among `callbacks`, if any.
pub(super) fn find_backup<T: Float>(
    callbacks: &mut [Box<dyn Callback<T>>],
) -> Option<BackupAndRestore> {
    callbacks.iter_mut().find_map(|cb| cb.backup().cloned())
}

/// The backup's snapshot, the same on every rank (rank 0 reads and sends it), or `None`
/// when there is none (or it is unusable and the backup starts fresh on errors).
pub(super) fn read_backup<T: Float>(
    comm: &dyn Communicator,
    backup: &BackupAndRestore,
) -> Result<Option<TrainingSnapshot<T>>, FitError> {
    let path = backup.path();
    let as_fit_error = |source: SnapshotError| FitError::Backup {
        path: path.clone(),
        source: Box::new(source),
    };
    let local = if comm.is_root() {
        backup.read().map_err(as_fit_error)
    } else {
        Ok(None)
    };
    let bytes = agree(comm, local)?;
    let bytes = if comm.size() > 1 {
        let mut len = vec![bytes.as_ref().map_or(-1.0, |b| b.len() as f64)];
        comm.broadcast_f64(&mut len, 0)?;
        if len[0] < 0.0 {
            None
        } else {
            let mut buf = bytes.unwrap_or_else(|| vec![0; len[0] as usize]);
            comm.broadcast_bytes(&mut buf, 0)?;
            Some(buf)
        }
    } else {
        bytes
    };
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    match TrainingSnapshot::from_bytes(&path, &bytes) {
        Ok(snapshot) => Ok(Some(snapshot)),
        Err(_) if backup.starts_fresh_on_error() => Ok(None),
        Err(e) => Err(as_fit_error(e)),
    }
}

impl<T: Float> Training<'_, '_, T> {
    /// The path of the backup, for errors.
    fn backup_error(&self, source: SnapshotError) -> FitError {
        FitError::Backup {
            path: self
                .backup
                .as_ref()
                .map(|p| p.backup.path())
                .unwrap_or_default(),
            source: Box::new(source),
        }
    }

    /// Checks `snapshot` against this run and restores it: the module, optimizer, history
    /// and callbacks' state. `batches_per_epoch` and `schedule` describe the run. Returns
    /// where training starts, or `None` when the snapshot is unusable and the backup starts
    /// fresh on errors (nothing changed then).
    pub(super) fn restore_backup(
        &mut self,
        snapshot: TrainingSnapshot<T>,
        batches_per_epoch: usize,
        schedule: bool,
        history: &mut History,
    ) -> Result<Option<Start>, FitError> {
        let fresh = self
            .backup
            .as_ref()
            .is_some_and(|p| p.backup.starts_fresh_on_error());
        match self.check_backup(&snapshot, batches_per_epoch, schedule) {
            Ok(()) => {}
            Err(_) if fresh => return Ok(None),
            Err(e) => return Err(self.backup_error(e)),
        }
        let rank = self.comm.rank();
        match snapshot.restore_rank(&mut *self.module, &mut *self.compiled.optimizer, rank) {
            Ok(()) => {}
            Err(_) if fresh => return Ok(None),
            Err(e) => return Err(self.backup_error(e)),
        }
        for (cb, (name, state)) in self.callbacks.iter_mut().zip(&snapshot.callbacks) {
            if let Some(state) = state {
                cb.restore_state(state.clone())
                    .map_err(|source| FitError::Backup {
                        path: Default::default(),
                        source: Box::new(SnapshotError::Callback {
                            callback: name.clone(),
                            source: Box::new(source),
                        }),
                    })?;
            }
        }
        if let Some(saved) = &snapshot.history {
            *history = saved.clone();
        }
        if let Some(plan) = self.backup.as_mut() {
            plan.history = history.clone();
        }
        let within = snapshot.progress.map(|mut progress| {
            // The totals are over all ranks: rank 0 carries them, the others start empty.
            if rank != 0 {
                progress.metrics.fill(MetricTotal::default());
            }
            (snapshot.batch, progress)
        });
        Ok(Some(Start {
            epoch: snapshot.epoch,
            within,
        }))
    }

    /// Checks the parts of `snapshot` that describe the run (not the module and optimizer,
    /// which [`TrainingSnapshot::restore`] checks).
    fn check_backup(
        &self,
        snapshot: &TrainingSnapshot<T>,
        batches_per_epoch: usize,
        schedule: bool,
    ) -> Result<(), SnapshotError> {
        let mismatch = |part, expected: String, found: String| {
            Err(SnapshotError::Mismatch {
                part,
                expected,
                found,
            })
        };
        if snapshot.ranks != self.comm.size() {
            return mismatch(
                "ranks",
                self.comm.size().to_string(),
                snapshot.ranks.to_string(),
            );
        }
        let names: Vec<&str> = snapshot.history.iter().flat_map(History::names).collect();
        if names != self.names {
            return mismatch("history", self.names.join(", "), names.join(", "));
        }
        let ours: Vec<&str> = self.callbacks.iter().map(|cb| cb.name()).collect();
        let theirs: Vec<&str> = snapshot.callbacks.iter().map(|(n, _)| n.as_str()).collect();
        if ours != theirs {
            return mismatch("callbacks", ours.join(", "), theirs.join(", "));
        }
        let walk = self.backup.as_ref().and_then(|p| p.walk.clone());
        if walk != snapshot.batches {
            let describe = |w: &Option<WalkPosition>| {
                w.as_ref()
                    .map_or_else(|| "not saved".to_string(), WalkPosition::describe)
            };
            return mismatch("data walk", describe(&walk), describe(&snapshot.batches));
        }
        if schedule != snapshot.schedule_steps.is_some() {
            let says = |s: bool| if s { "a schedule" } else { "no schedule" }.to_string();
            return mismatch("schedule", says(schedule), says(!schedule));
        }
        let epochs_done = snapshot.history.as_ref().map_or(0, History::epochs);
        let position_ok = snapshot.epoch <= self.options.epochs
            && snapshot.batch <= batches_per_epoch
            && epochs_done == snapshot.epoch
            && snapshot.progress.as_ref().is_none_or(|p| {
                p.metrics.len() == self.train_metrics.len() && snapshot.epoch < self.options.epochs
            });
        if !position_ok {
            return mismatch(
                "position",
                format!(
                    "within {} epochs of {batches_per_epoch} batches",
                    self.options.epochs
                ),
                format!(
                    "epoch {}, batch {} after {epochs_done} logged epochs",
                    snapshot.epoch, snapshot.batch
                ),
            );
        }
        Ok(())
    }

    /// Writes the backup (rank 0) at the position (`epoch`, `batch`), with `progress` the
    /// totals of the epoch's batches so far (this rank's metric totals; summed over the
    /// ranks here). Every rank calls it at the same step; every rank returns rank 0's
    /// outcome.
    pub(super) fn write_backup(
        &mut self,
        epoch: usize,
        batch: usize,
        progress: Option<EpochProgress>,
        schedule_steps: Option<usize>,
    ) -> Result<(), FitError> {
        let Some(plan) = self.backup.as_ref() else {
            return Ok(());
        };
        let snapshot = TrainingSnapshot::capture(&*self.module, &*self.compiled.optimizer);
        let mut snapshot = match snapshot {
            Ok(s) => s,
            Err(e) => return agree(self.comm, Err(self.backup_error(e))),
        };
        snapshot.batches = plan.walk.clone();
        snapshot.schedule_steps = schedule_steps;
        (snapshot.epoch, snapshot.batch) = (epoch, batch);
        snapshot.history = Some(plan.history.clone());
        snapshot.callbacks = self
            .callbacks
            .iter()
            .map(|cb| (cb.name().to_string(), cb.state()))
            .collect();
        snapshot.progress = progress;
        if self.comm.size() > 1 {
            gather_generators(self.comm, &mut snapshot)?;
            if let Some(p) = snapshot.progress.as_mut() {
                sum_metric_totals(self.comm, &mut p.metrics)?;
            }
        }
        let result = if self.comm.is_root() {
            snapshot
                .to_bytes()
                .and_then(|bytes| plan.backup.write(&bytes))
        } else {
            Ok(())
        };
        let result = result.map_err(|e| self.backup_error(e));
        agree(self.comm, result)
    }
}

/// This rank's running metric totals.
pub(super) fn totals(metrics: &[MetricAcc]) -> Vec<MetricTotal> {
    metrics.iter().map(MetricAcc::total).collect()
}

/// Replaces each generator's single state by every rank's (one all-reduce of each state's
/// two 32-bit halves, exact in `f64`).
fn gather_generators<T: Float>(
    comm: &dyn Communicator,
    snapshot: &mut TrainingSnapshot<T>,
) -> Result<(), FitError> {
    let (size, rank) = (comm.size(), comm.rank());
    let k = snapshot.generators.len();
    let mut buf = vec![0.0; size * k * 2];
    for (i, states) in snapshot.generators.values().enumerate() {
        let state = states.first().copied().unwrap_or(0);
        let at = (rank * k + i) * 2;
        buf[at] = (state >> 32) as f64;
        buf[at + 1] = (state & 0xffff_ffff) as f64;
    }
    comm.all_reduce_sum_f64(&mut buf)?;
    for (i, states) in snapshot.generators.values_mut().enumerate() {
        *states = (0..size)
            .map(|r| {
                let at = (r * k + i) * 2;
                ((buf[at] as u64) << 32) | buf[at + 1] as u64
            })
            .collect();
    }
    snapshot.ranks = size;
    Ok(())
}

/// Sums `metrics` over the ranks (one all-reduce).
fn sum_metric_totals(comm: &dyn Communicator, metrics: &mut [MetricTotal]) -> Result<(), FitError> {
    let mut buf: Vec<f64> = metrics
        .iter()
        .flat_map(|t| [t.sum, t.count as f64])
        .collect();
    comm.all_reduce_sum_f64(&mut buf)?;
    for (t, pair) in metrics.iter_mut().zip(buf.chunks_exact(2)) {
        *t = MetricTotal {
            sum: pair[0],
            count: pair[1].round() as usize,
        };
    }
    Ok(())
}
