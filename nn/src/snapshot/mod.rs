//! [`TrainingSnapshot`]: the whole state of a training run — weights, buffers, the
//! random generators of dropout and of the data walk, the optimizer's state and learning
//! rate, the schedule's position, the epoch and step, the history and the callbacks' own
//! state — saved in one atomic file, from which training resumes and gives the same bits as
//! a run that was never interrupted.
//!
//! [`BackupAndRestore`](crate::callbacks::BackupAndRestore) writes one for
//! [`Model::fit`](crate::model::Model::fit). A loop written by hand with a
//! [`Tape`](tapegrad_autograd::Tape), an optimizer, a
//! [`Scheduler`] and [`Batches`] captures and restores the same pieces:
//!
//! ```
//! use ndarray::{Array1, Array2};
//! use tapegrad_autograd::Tape;
//! use tapegrad_nn::data::Batches;
//! use tapegrad_nn::layers::{Activation, Dense, Dropout, Sequential};
//! use tapegrad_nn::snapshot::TrainingSnapshot;
//! use tapegrad_nn::{losses, Module};
//! use tapegrad_optim::schedules::{ExponentialLr, Scheduler};
//! use tapegrad_optim::{AdamConfig, Optimizer};
//!
//! let x = Array2::from_shape_fn((12, 2), |(i, j)| (i * 2 + j) as f32 / 24.0);
//! let y = Array1::from_shape_fn(12, |i| (i % 2) as f32).insert_axis(ndarray::Axis(1));
//! let dir = std::env::temp_dir().join(format!("tapegrad-snapshot-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("run.safetensors");
//!
//! // Trains from `start` (a fresh run, or a snapshot) to the end, saving a snapshot
//! // after step `stop_after` and returning there when given one (a "kill").
//! let run = |start: Option<&TrainingSnapshot<f32>>, stop_after: Option<usize>| {
//!     let mut model = Sequential::new()
//!         .add(Dense::new(8).activation(Activation::Relu))
//!         .add(Dropout::new(0.25))
//!         .add(Dense::new(1))
//!         .seed(7)
//!         .with_input_shape(&[2]);
//!     model.set_training(true);
//!     let mut opt = AdamConfig::new(0.01).build()?;
//!     let schedule = ExponentialLr::new(0.01, 0.9)?;
//!     let mut batches = Batches::shuffled(12, 4, 42);
//!     let (mut epoch, mut first_batch, mut scheduler) = (0, 0, Scheduler::new(&schedule, &mut opt)?);
//!     if let Some(snapshot) = start {
//!         snapshot.restore(&mut model, &mut opt)?;
//!         snapshot.restore_batches(&mut batches)?;
//!         scheduler = snapshot.resume_scheduler(&schedule, &mut opt)?;
//!         (epoch, first_batch) = (snapshot.epoch(), snapshot.batch());
//!     }
//!     let mut step = 0;
//!     while epoch < 3 {
//!         for (b, rows) in batches.epoch().enumerate().skip(first_batch) {
//!             let grads = {
//!                 let tape = Tape::new();
//!                 let (bx, by) = (tape.constant(tapegrad_nn::data::take_rows(&x, rows).into_dyn()),
//!                                 tape.constant(tapegrad_nn::data::take_rows(&y, rows).into_dyn()));
//!                 losses::mse(model.forward(bx), by).backward()
//!             };
//!             opt.step(model.params_mut(), &grads)?;
//!             step += 1;
//!             if Some(step) == stop_after {
//!                 let snapshot = TrainingSnapshot::capture(&model, &opt)?
//!                     .with_batches(&batches)
//!                     .with_scheduler(&scheduler)
//!                     .at(epoch, b + 1);
//!                 snapshot.save(&path)?;
//!                 return Ok(None);
//!             }
//!         }
//!         scheduler.step(&mut opt)?;
//!         (epoch, first_batch) = (epoch + 1, 0);
//!     }
//!     Ok::<_, Box<dyn std::error::Error>>(Some(model.params().iter().map(|p| p.value().clone()).collect::<Vec<_>>()))
//! };
//!
//! let uninterrupted = run(None, None)?.unwrap();
//! assert!(run(None, Some(4))?.is_none()); // "killed" after step 4, in the middle of epoch 1
//! let snapshot = TrainingSnapshot::<f32>::load(&path)?;
//! assert_eq!((snapshot.epoch(), snapshot.batch()), (1, 1));
//! let resumed = run(Some(&snapshot), None)?.unwrap();
//! assert_eq!(resumed, uninterrupted); // the same bits
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The file is safetensors: the tensors (`param/<name>`, `buffer/<name>`,
//! `optimizer/<key>`, `callback/<i>/<key>`) and, in its metadata under
//! `tapegrad.snapshot`, a JSON description of everything else (numbers as their `f64` bits,
//! so NaN and infinities come back exactly). Loading validates the whole file, as checkpoint
//! loads do, and never panics on a corrupt or foreign file: each problem is a typed
//! [`SnapshotError`].

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::ArrayD;
use tapegrad_autograd::Float;
use tapegrad_optim::schedules::Scheduler;
use tapegrad_optim::{LrSchedule, Optimizer};

use crate::callbacks::CallbackState;
use crate::data::Batches;
use crate::history::History;
use crate::metrics::MetricTotal;
use crate::module::{Entry, Module, Visitor};

mod error;
mod file;
mod restore;

pub use error::SnapshotError;

/// The whole state of a training run at one step (see the [module documentation](self)).
#[derive(Clone, Debug)]
pub struct TrainingSnapshot<T: Float> {
    pub(crate) params: BTreeMap<String, ArrayD<T>>,
    pub(crate) buffers: BTreeMap<String, ArrayD<T>>,
    /// Each random generator's state by path, one per rank (one on one process).
    pub(crate) generators: BTreeMap<String, Vec<u64>>,
    pub(crate) ranks: usize,
    pub(crate) optimizer: String,
    pub(crate) lr: f64,
    pub(crate) optimizer_state: BTreeMap<String, ArrayD<T>>,
    pub(crate) schedule_steps: Option<usize>,
    pub(crate) batches: Option<WalkPosition>,
    pub(crate) epoch: usize,
    pub(crate) batch: usize,
    pub(crate) history: Option<History>,
    pub(crate) progress: Option<EpochProgress>,
    pub(crate) callbacks: Vec<(String, Option<CallbackState<T>>)>,
}

/// What a [`Batches`] walk walks (its position is the snapshot's epoch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WalkPosition {
    pub(crate) rows: usize,
    pub(crate) batch_size: usize,
    pub(crate) seed: Option<u64>,
}

impl WalkPosition {
    pub(crate) fn of(batches: &Batches) -> Self {
        WalkPosition {
            rows: batches.num_rows(),
            batch_size: batches.batch_size(),
            seed: batches.seed(),
        }
    }

    /// The walk, for messages.
    pub(crate) fn describe(&self) -> String {
        let order = match self.seed {
            Some(seed) => format!("shuffled with seed {seed}"),
            None => "in order".to_string(),
        };
        format!(
            "{} rows in batches of {}, {order}",
            self.rows, self.batch_size
        )
    }
}

/// The totals of an epoch that `fit` stopped in the middle of (over all ranks).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EpochProgress {
    pub(crate) loss_sum: f64,
    pub(crate) seen: usize,
    pub(crate) metrics: Vec<MetricTotal>,
}

impl<T: Float> TrainingSnapshot<T> {
    /// The state of `module` (parameters, buffers and random generators, by path) and of
    /// `optimizer` (its per-parameter state and learning rate), at epoch 0, batch 0; add the
    /// other pieces with the `with_*` methods and the position with [`at`](Self::at).
    ///
    /// # Errors
    ///
    /// [`SnapshotError::OptimizerState`] if two parameters share a name.
    pub fn capture(
        module: &(impl Module<T> + ?Sized),
        optimizer: &(impl Optimizer<T> + ?Sized),
    ) -> Result<Self, SnapshotError> {
        let params = module.params();
        let optimizer_state = optimizer
            .state_dict(&params)
            .map_err(SnapshotError::OptimizerState)?;
        let mut snapshot = TrainingSnapshot {
            params: BTreeMap::new(),
            buffers: BTreeMap::new(),
            generators: BTreeMap::new(),
            ranks: 1,
            optimizer: optimizer.name().to_string(),
            lr: optimizer.lr(),
            optimizer_state,
            schedule_steps: None,
            batches: None,
            epoch: 0,
            batch: 0,
            history: None,
            progress: None,
            callbacks: Vec::new(),
        };
        module.visit(&mut Visitor::new(&mut |path, entry| match entry {
            Entry::Param(p) => {
                snapshot.params.insert(path.to_string(), p.value().clone());
            }
            Entry::Buffer(b) => {
                snapshot.buffers.insert(path.to_string(), b.value().clone());
            }
            Entry::Generator(g) => {
                snapshot.generators.insert(path.to_string(), vec![g.get()]);
            }
        }));
        Ok(snapshot)
    }

    /// Adds the position of a [`Scheduler`] (its step count).
    pub fn with_scheduler<S>(mut self, scheduler: &Scheduler<S>) -> Self
    where
        S: LrSchedule,
    {
        self.schedule_steps = Some(scheduler.steps());
        self
    }

    /// Adds the walk over the data (its rows, batch size and seed; its position is the
    /// snapshot's [`epoch`](Self::epoch)).
    pub fn with_batches(mut self, batches: &Batches) -> Self {
        self.batches = Some(WalkPosition::of(batches));
        self
    }

    /// Adds the history of the finished epochs.
    pub fn with_history(mut self, history: &History) -> Self {
        self.history = Some(history.clone());
        self
    }

    /// Sets the position: the next step to run is batch `batch` (0-based) of epoch
    /// `epoch`. A batch equal to the number of batches means the epoch's batches are done.
    pub fn at(mut self, epoch: usize, batch: usize) -> Self {
        (self.epoch, self.batch) = (epoch, batch);
        self
    }

    /// The epoch of the next step (0-based).
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// The batch of the next step within [`epoch`](Self::epoch) (0-based).
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The history of the finished epochs, if saved.
    pub fn history(&self) -> Option<&History> {
        self.history.as_ref()
    }

    /// The scheduler's step count, if saved.
    pub fn schedule_steps(&self) -> Option<usize> {
        self.schedule_steps
    }

    /// The name of the optimizer whose state this is.
    pub fn optimizer_name(&self) -> &str {
        &self.optimizer
    }

    /// The learning rate the optimizer had.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Writes the snapshot to `path` atomically (a file written in full, then renamed over
    /// the old one: a killed save leaves the previous snapshot intact).
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Io`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), SnapshotError> {
        let bytes = self.to_bytes()?;
        crate::io::write_atomic(path.as_ref(), &bytes)?;
        Ok(())
    }

    /// Reads a snapshot written by [`save`](Self::save), validating all of it.
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Io`] (unreadable, not safetensors, another element type),
    /// [`SnapshotError::NotASnapshot`], [`SnapshotError::Version`],
    /// [`SnapshotError::Corrupt`], [`SnapshotError::Dtype`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, SnapshotError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| crate::io::IoError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(path, &bytes)
    }
}
