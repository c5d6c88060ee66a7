//! [`FitOptions`], how [`Model::fit`] trains, and [`Evaluation`], what [`Model::evaluate`]
//! returns.

use std::fmt;
use std::rc::Rc;

use ndarray::ArrayD;
use tapegrad_autograd::Float;
use tapegrad_optim::LrSchedule;

#[cfg(doc)]
use super::Model;
use crate::callbacks::Callback;
use crate::communicator::{Communicator, SingleProcess};
use crate::layers::DEFAULT_SEED;
#[cfg(doc)]
use crate::layers::Sequential;

/// How [`Model::fit`] trains: `FitOptions::default()` then chained setters (or set the
/// public fields).
///
/// ```
/// use tapegrad_nn::callbacks::EarlyStopping;
/// use tapegrad_nn::model::FitOptions;
///
/// let options = FitOptions::<f32>::default()
///     .epochs(20)
///     .batch_size(64)
///     .validation_split(0.1)
///     .verbose(2)
///     .seed(7)
///     .callback(EarlyStopping::new().patience(3));
/// assert_eq!(options.epochs, 20);
/// assert!(options.shuffle);
/// ```
pub struct FitOptions<T: Float = f32> {
    /// Number of passes over the training data (default 1; 0 trains nothing).
    pub epochs: usize,
    /// Samples per gradient step (default 32); the last batch of an epoch may be smaller.
    pub batch_size: usize,
    /// Whether to visit the training samples in a new random order each epoch (default
    /// `true`; the order depends only on [`seed`](FitOptions::seed)). When all samples fit
    /// in one batch, the order cannot matter and nothing is shuffled.
    pub shuffle: bool,
    /// Fraction of the samples, taken from the end of `x` and `y` before any shuffling, held
    /// out for validation (default 0: none), in `[0, 1)`. Ignored when
    /// [`validation_data`](FitOptions::validation_data) is given, as in Keras.
    pub validation_split: f64,
    /// Separate validation inputs and targets.
    pub validation_data: Option<(ArrayD<T>, ArrayD<T>)>,
    /// 0: silent; 1 (default): a progress bar per epoch with the running loss, metrics and
    /// ETA, on standard error, only when standard error is a terminal (silent otherwise);
    /// 2: one line per epoch on standard error.
    pub verbose: u8,
    /// Callbacks, run in order.
    pub callbacks: Vec<Box<dyn Callback<T>>>,
    /// Seeds the weight initialization (when `fit` builds the model), the shuffling, and the
    /// layers' randomness such as dropout (default [`DEFAULT_SEED`], the default seed of
    /// [`Sequential`] too, so a model built early with
    /// [`Sequential::with_input_shape`] starts from the same weights). The same seed and
    /// data give bit-identical weights.
    pub seed: u64,
    /// Whether `fit` checks `x`, `y` and the validation data for NaN and infinite values
    /// before training starts (default `true`): the first one found is a
    /// [`FitError::NonFinite`](super::FitError::NonFinite) naming the data and the value's index (`[sample, ...]`).
    /// The check reads every value once; turn it off for speed when the data is known to be
    /// finite.
    pub check_finite: bool,
    /// The processes that train together, data-parallel (default [`SingleProcess`]: this
    /// process alone, exactly the training of one process). With `size()` ranks, every rank
    /// calls `fit` with the same data and options: the parameters start as rank 0's, each
    /// global batch of `size() × batch_size` rows (in the order drawn from
    /// [`seed`](FitOptions::seed), the same everywhere) is split into one `batch_size` slice
    /// per rank, and the gradients are summed in one all-reduce per step, so that every
    /// replica takes the same optimizer step. Module buffers (BatchNorm's running
    /// statistics) are rank 0's on every rank: broadcast before training and carried in
    /// every step's all-reduce after the forward pass (PyTorch DDP's `broadcast_buffers`),
    /// so replicas and rank 0's checkpoints hold the same buffers. Losses and metrics
    /// (validation included) are totals over all ranks; only rank 0 prints progress and
    /// runs [root-only](Callback::root_only) callbacks (checkpoints). Every rank is given
    /// the same callbacks (their decisions may differ): an error on any rank is an error on
    /// every rank ([`FitError::RankFailed`](super::FitError::RankFailed)), and a callback
    /// that stops training on one rank stops every rank at the same batch or epoch, with
    /// the reason of the lowest rank that stopped.
    pub communicator: Rc<dyn Communicator>,
    /// A learning-rate schedule `fit` drives the optimizer with (default none: the rate
    /// stays the optimizer's), stepped once per epoch or once per batch, as a
    /// [`Scheduler`](tapegrad_optim::schedules::Scheduler) in a hand-written loop: the
    /// first step uses `schedule.lr(0)`, and after each epoch or batch the rate of the next
    /// is set. Steps are counted from the start of this `fit`. An invalid rate from the
    /// schedule stops training with [`FitError::Optimizer`](super::FitError::Optimizer).
    /// Set it with [`FitOptions::lr_schedule`].
    pub lr_schedule: Option<(Box<dyn LrSchedule>, SchedulePer)>,
    /// Whether `fit` may train a model without trainable parameters (default `false`: that
    /// is a [`FitError::NoTrainableParams`](super::FitError::NoTrainableParams), since such
    /// a fit changes nothing, most often because a custom layer does not hand its
    /// parameters to [`Module::visit`](crate::Module::visit)). Allow it for a frozen model
    /// whose `fit` only runs the callbacks and metrics. Set it with
    /// [`FitOptions::allow_no_trainable`].
    pub allow_no_trainable: bool,
}

/// How often [`FitOptions::lr_schedule`] steps its schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedulePer {
    /// One schedule step per epoch (PyTorch's usual `scheduler.step()` after each epoch).
    Epoch,
    /// One schedule step per optimizer step (per-batch warm-up, one-cycle schedules).
    Batch,
}

impl<T: Float> Default for FitOptions<T> {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            validation_split: 0.0,
            validation_data: None,
            verbose: 1,
            callbacks: Vec::new(),
            seed: DEFAULT_SEED,
            check_finite: true,
            communicator: Rc::new(SingleProcess),
            lr_schedule: None,
            allow_no_trainable: false,
        }
    }
}

impl<T: Float> fmt::Debug for FitOptions<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let callbacks: Vec<&str> = self.callbacks.iter().map(|c| c.name()).collect();
        f.debug_struct("FitOptions")
            .field("epochs", &self.epochs)
            .field("batch_size", &self.batch_size)
            .field("shuffle", &self.shuffle)
            .field("validation_split", &self.validation_split)
            .field(
                "validation_data",
                &self
                    .validation_data
                    .as_ref()
                    .map(|(x, y)| (x.shape().to_vec(), y.shape().to_vec())),
            )
            .field("verbose", &self.verbose)
            .field("callbacks", &callbacks)
            .field("seed", &self.seed)
            .field("check_finite", &self.check_finite)
            .field(
                "communicator",
                &format_args!(
                    "rank {} of {}",
                    self.communicator.rank(),
                    self.communicator.size()
                ),
            )
            .field(
                "lr_schedule",
                &self.lr_schedule.as_ref().map(|(s, per)| (s.lr(0), per)),
            )
            .field("allow_no_trainable", &self.allow_no_trainable)
            .finish()
    }
}

impl<T: Float> FitOptions<T> {
    /// The defaults (same as [`FitOptions::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the number of epochs.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Sets the batch size.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Turns shuffling on or off.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Holds out this fraction of the data (its last samples) for validation.
    pub fn validation_split(mut self, fraction: f64) -> Self {
        self.validation_split = fraction;
        self
    }

    /// Validates on these inputs and targets after each epoch.
    pub fn validation_data(mut self, x: ArrayD<T>, y: ArrayD<T>) -> Self {
        self.validation_data = Some((x, y));
        self
    }

    /// Lets `fit` run on a model without trainable parameters (a frozen model), see
    /// [`allow_no_trainable`](FitOptions::allow_no_trainable).
    pub fn allow_no_trainable(mut self, allow: bool) -> Self {
        self.allow_no_trainable = allow;
        self
    }

    /// Sets the verbosity (0, 1 or 2).
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }

    /// Adds a callback (after those already added).
    pub fn callback(mut self, callback: impl Callback<T> + 'static) -> Self {
        self.callbacks.push(Box::new(callback));
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets [`check_finite`](FitOptions::check_finite).
    pub fn check_finite(mut self, check: bool) -> Self {
        self.check_finite = check;
        self
    }

    /// Trains data-parallel with the processes of `communicator` (see
    /// [`FitOptions::communicator`](FitOptions#structfield.communicator)); `batch_size` is
    /// then the rows per process and step.
    pub fn communicator(mut self, communicator: Rc<dyn Communicator>) -> Self {
        self.communicator = communicator;
        self
    }

    /// Drives the optimizer's learning rate with `schedule`, stepped once `per` epoch or
    /// batch (see [`FitOptions::lr_schedule`](FitOptions#structfield.lr_schedule)).
    ///
    /// ```
    /// use tapegrad_nn::model::{FitOptions, SchedulePer};
    /// use tapegrad_optim::schedules::{CosineAnnealingLr, LinearWarmup, LrSchedule};
    ///
    /// // 100 batches of warm-up, then cosine annealing over the next 900.
    /// let schedule = LinearWarmup::new(1e-3, 0.01, 100)?
    ///     .then(100, CosineAnnealingLr::new(1e-3, 900, 0.0)?)?;
    /// let options = FitOptions::<f32>::default()
    ///     .epochs(10)
    ///     .lr_schedule(schedule, SchedulePer::Batch);
    /// assert!(options.lr_schedule.is_some());
    /// # Ok::<(), tapegrad_optim::OptimError>(())
    /// ```
    pub fn lr_schedule(mut self, schedule: impl LrSchedule + 'static, per: SchedulePer) -> Self {
        self.lr_schedule = Some((Box::new(schedule), per));
        self
    }
}

/// The result of [`Model::evaluate`]: the mean loss and each metric over the whole data.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The loss, averaged over samples.
    pub loss: f64,
    /// Each compiled metric, by its logged name, in compile order.
    pub metrics: Vec<(&'static str, f64)>,
}

impl Evaluation {
    /// The value of a metric by name (`"accuracy"`, `"mae"`, ...), or of `"loss"`.
    pub fn get(&self, name: &str) -> Option<f64> {
        if name == "loss" {
            return Some(self.loss);
        }
        self.metrics
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}
