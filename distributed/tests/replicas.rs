//! Replicas that stay identical and stop together, under `mpirun -np 2` (any number of ranks
//! works): a model with `BatchNorm` keeps rank 0's running statistics on every rank (bit for
//! bit, the same as one process trained on rank 0's rows, and in rank 0's checkpoint), and a
//! callback that stops or fails on one rank only, in any phase, ends every rank with the
//! same outcome within seconds.
//!
//! Run by `harness::run` (a watchdog aborts a scenario that hangs).

mod harness;

use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use harness::{Outcome, Scenario, ensure, err, same_as_root, shared_dir};
use ndarray::{Array1, Array2, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad_distributed::MpiCommunicator;
use tapegrad_nn::callbacks::{
    BatchLogs, Callback, CallbackError, Control, EpochLogs, ModelCheckpoint, TrainingState,
};
use tapegrad_nn::communicator::{Communicator, SingleProcess};
use tapegrad_nn::history::{History, StopReason};
use tapegrad_nn::layers::{Activation, BatchNorm, Dense, Sequential};
use tapegrad_nn::model::{FitError, FitOptions, Loss, Model};
use tapegrad_optim::Adam;

/// 200 samples of 4 features (offset and scaled per feature, so that the statistics are
/// far from BatchNorm's initial zeros and ones) in 3 classes: the same on every rank.
fn data() -> (Array2<f32>, Array1<f32>) {
    let mut rng = StdRng::seed_from_u64(11);
    let n = 200;
    let mut x = Array2::zeros((n, 4));
    let mut y = Array1::zeros(n);
    for i in 0..n {
        let class = rng.random_range(0..3_usize);
        for j in 0..4 {
            let centre = if j % 3 == class { 1.0 } else { -0.5 };
            x[[i, j]] = 3.0 + j as f32 + (1.0 + j as f32) * (centre + rng.random_range(-0.8..0.8));
        }
        y[i] = class as f32;
    }
    (x, y)
}

/// BatchNorm on the inputs (whose statistics do not depend on the weights), then a hidden
/// layer and a second BatchNorm (whose statistics do), built from seed 5, with Adam.
fn batch_norm_model() -> Result<Model<f32>, String> {
    let net = Sequential::new()
        .seed(5)
        .add(BatchNorm::new())
        .add(Dense::new(16).activation(Activation::Tanh))
        .add(BatchNorm::new())
        .add(Dense::new(3))
        .with_input_shape(&[4]);
    let mut model = Model::new(net);
    model.compile(
        Adam::new(0.01).map_err(err)?,
        Loss::sparse_categorical_cross_entropy(),
        &[],
    );
    Ok(model)
}

/// A plain MLP (for the stop scenarios), built from seed 5, with Adam.
fn mlp() -> Result<Model<f32>, String> {
    let net = Sequential::new()
        .seed(5)
        .add(Dense::new(16).activation(Activation::Tanh))
        .add(Dense::new(3))
        .with_input_shape(&[4]);
    let mut model = Model::new(net);
    model.compile(
        Adam::new(0.01).map_err(err)?,
        Loss::sparse_categorical_cross_entropy(),
        &[],
    );
    Ok(model)
}

/// `epochs` epochs with `per_rank` rows per rank and step, seed 3, silent.
fn options(comm: Rc<dyn Communicator>, per_rank: usize, epochs: usize) -> FitOptions<f32> {
    FitOptions::default()
        .epochs(epochs)
        .batch_size(per_rank)
        .seed(3)
        .verbose(0)
        .communicator(comm)
}

/// Every parameter and buffer value, in the module's order, widened to `f64` (exactly).
fn weights(model: &Model<f32>) -> Vec<f64> {
    let params = model.params();
    let params = params
        .iter()
        .flat_map(|p| p.value().iter().copied().collect::<Vec<_>>());
    let buffers = model.buffers();
    let buffers = buffers
        .iter()
        .flat_map(|b| b.value().iter().copied().collect::<Vec<_>>());
    params.chain(buffers).map(f64::from).collect()
}

/// The buffer values alone.
fn buffer_values(model: &Model<f32>) -> Vec<f32> {
    model
        .buffers()
        .iter()
        .flat_map(|b| b.value().iter().copied().collect::<Vec<_>>())
        .collect()
}

/// After 3 shuffled epochs on 2 ranks (validation included), every rank holds rank 0's
/// parameters and running statistics, bit for bit, and predicts what rank 0 predicts; the
/// statistics moved away from their initial zeros and ones.
fn batch_norm_replicas_identical(c: &Rc<MpiCommunicator>) -> Outcome {
    let (x, y) = data();
    let mut m = batch_norm_model()?;
    let initial = buffer_values(&m);
    m.fit(&x, &y, options(c.clone(), 10, 3).validation_split(0.1))
        .map_err(err)?;
    let predicted: Vec<f64> = m
        .predict(&x, 64)
        .map_err(err)?
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    // Every rank makes the same collectives, whatever it finds.
    let same_weights = same_as_root(c, &weights(&m))?;
    let same_predictions = same_as_root(c, &predicted)?;
    let buffers = buffer_values(&m);
    ensure(buffers.iter().zip(&initial).all(|(a, b)| a != b), || {
        format!("some running statistic did not move: {buffers:?}")
    })?;
    ensure(same_weights, || {
        "this rank's parameters or buffers differ from rank 0's".into()
    })?;
    ensure(same_predictions, || {
        "this rank predicts differently from rank 0".into()
    })
}

/// The input BatchNorm's running statistics after 2 ranks trained (unshuffled, 10 rows per
/// rank and step) are, bit for bit, those of one process trained with 10 rows per step on
/// rank 0's rows only: each step's statistics are rank 0's, as in PyTorch's DDP.
fn batch_norm_statistics_are_rank_zeros(c: &Rc<MpiCommunicator>) -> Outcome {
    let (x, y) = data();
    let per_rank = 10;
    let global = per_rank * c.size();
    let mut distributed = batch_norm_model()?;
    distributed
        .fit(&x, &y, options(c.clone(), per_rank, 2).shuffle(false))
        .map_err(err)?;
    // Rank 0's rows: the first `per_rank` of every global batch.
    let rows: Vec<usize> = (0..x.len_of(Axis(0)))
        .filter(|i| i % global < per_rank)
        .collect();
    let (x0, y0) = (x.select(Axis(0), &rows), y.select(Axis(0), &rows));
    let mut single = batch_norm_model()?;
    single
        .fit(
            &x0,
            &y0,
            options(Rc::new(SingleProcess), per_rank, 2).shuffle(false),
        )
        .map_err(err)?;
    // The first two buffers: the input BatchNorm's running mean and variance.
    let first_two = |m: &Model<f32>| -> Vec<Vec<u32>> {
        m.buffers()[..2]
            .iter()
            .map(|b| b.value().iter().map(|v| v.to_bits()).collect())
            .collect()
    };
    let (d, s) = (first_two(&distributed), first_two(&single));
    ensure(d == s, || {
        format!(
            "input statistics {:?} differ from one process's on rank 0's rows {:?}",
            &buffer_values(&distributed)[..8],
            &buffer_values(&single)[..8]
        )
    })
}

/// The checkpoint rank 0 writes holds every rank's running statistics: loaded into a fresh
/// model in one process, its buffers are this rank's, bit for bit.
fn checkpoint_holds_every_ranks_buffers(c: &Rc<MpiCommunicator>) -> Outcome {
    let dir = shared_dir(c, "replicas")?;
    let path = dir.join("weights.safetensors");
    let (x, y) = data();
    let mut trained = batch_norm_model()?;
    let fitted = trained.fit(
        &x,
        &y,
        options(c.clone(), 10, 2).callback(ModelCheckpoint::new(&path)),
    );
    let mut fresh = batch_norm_model()?;
    let loaded = fitted
        .map_err(err)
        .and_then(|_| fresh.load(&path).map_err(err));
    c.barrier().map_err(err)?;
    if c.is_root() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    loaded?;
    let (mine, saved) = (buffer_values(&trained), buffer_values(&fresh));
    ensure(
        mine.iter()
            .zip(&saved)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        || format!("the checkpoint's buffers {saved:?} differ from this rank's {mine:?}"),
    )
}

/// Where a [`RankLocal`] callback acts.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Stops from `on_batch_end` at this epoch and batch.
    BatchEnd(usize, usize),
    /// Stops from `on_epoch_end` at this epoch.
    EpochEnd(usize),
    /// Fails in `on_epoch_end` at this epoch.
    EpochEndFailure(usize),
    /// Fails in `on_epoch_begin` at this epoch.
    EpochBegin(usize),
    /// Fails in `on_train_end`.
    TrainEnd,
}

/// A callback that stops (or fails) on one rank only, as a time budget or a STOP file
/// would: `phase` on the ranks in `ranks`, nothing elsewhere.
struct RankLocal {
    rank: usize,
    ranks: Vec<usize>,
    phase: Phase,
    root_only: bool,
}

impl RankLocal {
    fn new(comm: &MpiCommunicator, ranks: &[usize], phase: Phase) -> Self {
        RankLocal {
            rank: comm.rank(),
            ranks: ranks.to_vec(),
            phase,
            root_only: false,
        }
    }

    fn here(&self) -> bool {
        self.ranks.contains(&self.rank)
    }

    fn reason(&self, epoch: usize) -> StopReason {
        StopReason::Callback {
            name: "RankLocal".into(),
            epoch,
            message: format!("rank {} is out of time\nat {:?}", self.rank, self.phase),
        }
    }

    fn failure(&self) -> CallbackError {
        CallbackError::Custom(format!("rank {} cannot go on", self.rank).into())
    }
}

impl Callback<f32> for RankLocal {
    fn name(&self) -> &'static str {
        "RankLocal"
    }

    fn root_only(&self) -> bool {
        self.root_only
    }

    fn on_batch_end(&mut self, logs: &BatchLogs) -> Control {
        match self.phase {
            Phase::BatchEnd(e, b) if self.here() && (logs.epoch, logs.batch) == (e, b) => {
                Control::Stop(self.reason(e))
            }
            _ => Control::Continue,
        }
    }

    fn on_epoch_begin(
        &mut self,
        epoch: usize,
        _state: &mut TrainingState<'_, f32>,
    ) -> Result<(), CallbackError> {
        match self.phase {
            Phase::EpochBegin(e) if self.here() && e == epoch => Err(self.failure()),
            _ => Ok(()),
        }
    }

    fn on_epoch_end(
        &mut self,
        logs: &EpochLogs<'_>,
        _state: &mut TrainingState<'_, f32>,
    ) -> Result<Control, CallbackError> {
        match self.phase {
            Phase::EpochEnd(e) if self.here() && e == logs.epoch => {
                Ok(Control::Stop(self.reason(e)))
            }
            Phase::EpochEndFailure(e) if self.here() && e == logs.epoch => Err(self.failure()),
            _ => Ok(Control::Continue),
        }
    }

    fn on_train_end(&mut self, _state: &mut TrainingState<'_, f32>) -> Result<(), CallbackError> {
        match self.phase {
            Phase::TrainEnd if self.here() => Err(self.failure()),
            _ => Ok(()),
        }
    }
}

/// The longest a one-sided stop may take to end every rank (a hang is caught by the
/// harness' watchdog).
const PROMPT: Duration = Duration::from_secs(10);

/// A trained model, what `fit` returned, and the time it took.
type Run = (Model<f32>, Result<History, FitError>, Duration);

/// Trains the MLP for 4 epochs of 10 steps with `callbacks`; the result and the time taken.
fn fit_with(c: &Rc<MpiCommunicator>, callbacks: Vec<RankLocal>) -> Result<Run, String> {
    let (x, y) = data();
    let mut m = mlp()?;
    let mut opts = options(c.clone(), 20 / c.size().min(20), 4);
    for cb in callbacks {
        opts = opts.callback(cb);
    }
    let start = Instant::now();
    let result = m.fit(&x, &y, opts);
    Ok((m, result, start.elapsed()))
}

/// Every rank stopped with `expected` after `epochs` epochs, promptly, with rank 0's
/// history and weights.
fn stopped_together(
    c: &Rc<MpiCommunicator>,
    (m, result, elapsed): Run,
    epochs: usize,
    expected: &StopReason,
) -> Outcome {
    // Every rank makes the same collectives, whatever it finds.
    let losses = result.as_ref().map_or(Vec::new(), |h| h.loss().to_vec());
    let same_history = same_as_root(c, &losses)?;
    let same_weights = same_as_root(c, &weights(&m))?;
    let history = result.map_err(|e| format!("fit failed: {e}"))?;
    ensure(elapsed < PROMPT, || format!("took {elapsed:?}"))?;
    ensure(history.stop_reason() == Some(expected), || {
        format!(
            "stopped with {:?}, expected {expected:?}",
            history.stop_reason()
        )
    })?;
    ensure(history.epochs() == epochs, || {
        format!("{} epochs recorded, expected {epochs}", history.epochs())
    })?;
    ensure(same_history, || "a history differs from rank 0's".into())?;
    ensure(same_weights, || "weights differ from rank 0's".into())
}

/// The reason the `RankLocal` callback of `rank` gives at `phase` (what every rank must
/// record).
fn reason_of(rank: usize, phase: Phase, epoch: usize) -> StopReason {
    StopReason::Callback {
        name: "RankLocal".into(),
        epoch,
        message: format!("rank {rank} is out of time\nat {phase:?}"),
    }
}

/// The last rank alone stops from `on_batch_end` at epoch 1, batch 3: every rank stops
/// there with its reason (without the agreement, the collectives fall out of step).
fn batch_end_stop_on_one_rank(c: &Rc<MpiCommunicator>) -> Outcome {
    let last = c.size() - 1;
    let phase = Phase::BatchEnd(1, 3);
    let run = fit_with(c, vec![RankLocal::new(c, &[last], phase)])?;
    stopped_together(c, run, 2, &reason_of(last, phase, 1))
}

/// The last rank alone stops from `on_epoch_end` at epoch 1: every rank stops after that
/// epoch with its reason (without the agreement, the other ranks wait in the next step).
fn epoch_end_stop_on_one_rank(c: &Rc<MpiCommunicator>) -> Outcome {
    let last = c.size() - 1;
    let phase = Phase::EpochEnd(1);
    let run = fit_with(c, vec![RankLocal::new(c, &[last], phase)])?;
    stopped_together(c, run, 2, &reason_of(last, phase, 1))
}

/// A root-only callback stops at epoch 0: every rank records rank 0's reason, as it is.
fn root_only_stop(c: &Rc<MpiCommunicator>) -> Outcome {
    let phase = Phase::EpochEnd(0);
    let mut cb = RankLocal::new(c, &[0], phase);
    cb.root_only = true;
    let run = fit_with(c, vec![cb])?;
    stopped_together(c, run, 1, &reason_of(0, phase, 0))
}

/// Every rank stops at the same batch with its own reason: rank 0's wins. Then rank 0
/// stops later than the last rank: the last rank's earlier stop wins.
fn lowest_stopping_rank_wins(c: &Rc<MpiCommunicator>) -> Outcome {
    let all: Vec<usize> = (0..c.size()).collect();
    let phase = Phase::BatchEnd(0, 5);
    let run = fit_with(c, vec![RankLocal::new(c, &all, phase)])?;
    stopped_together(c, run, 1, &reason_of(0, phase, 0))?;
    let last = c.size() - 1;
    let (late, early) = (Phase::BatchEnd(2, 7), Phase::BatchEnd(2, 1));
    let callbacks = vec![
        RankLocal::new(c, &[0], late),
        RankLocal::new(c, &[last], early),
    ];
    let run = fit_with(c, callbacks)?;
    stopped_together(c, run, 3, &reason_of(last, early, 2))
}

/// A failure on the last rank alone: that rank returns its callback error, every other
/// rank `RankFailed` naming it, promptly.
fn failed_on_one_rank(c: &Rc<MpiCommunicator>, phase: Phase) -> Outcome {
    let last = c.size() - 1;
    let (_, result, elapsed) = fit_with(c, vec![RankLocal::new(c, &[last], phase)])?;
    ensure(elapsed < PROMPT, || format!("took {elapsed:?}"))?;
    match result {
        Err(FitError::Callback { callback, .. }) if c.rank() == last && callback == "RankLocal" => {
            Ok(())
        }
        Err(FitError::RankFailed { rank, message })
            if c.rank() != last && rank == last && message.contains("cannot go on") =>
        {
            Ok(())
        }
        Err(other) => Err(format!("unexpected error: {other}")),
        Ok(h) => Err(format!("training ended normally: {:?}", h.stop_reason())),
    }
}

/// `on_train_end` fails on the last rank only: an error on every rank.
fn train_end_failure_on_one_rank(c: &Rc<MpiCommunicator>) -> Outcome {
    failed_on_one_rank(c, Phase::TrainEnd)
}

/// `on_epoch_begin` fails on the last rank only at epoch 2: an error on every rank.
fn epoch_begin_failure_on_one_rank(c: &Rc<MpiCommunicator>) -> Outcome {
    failed_on_one_rank(c, Phase::EpochBegin(2))
}

/// `on_epoch_end` fails on the last rank only at epoch 1: an error on every rank.
fn epoch_end_failure_on_one_rank(c: &Rc<MpiCommunicator>) -> Outcome {
    failed_on_one_rank(c, Phase::EpochEndFailure(1))
}

fn main() -> ExitCode {
    let scenarios: [Scenario; 10] = [
        (
            "batch_norm_replicas_identical",
            batch_norm_replicas_identical,
        ),
        (
            "batch_norm_statistics_are_rank_zeros",
            batch_norm_statistics_are_rank_zeros,
        ),
        (
            "checkpoint_holds_every_ranks_buffers",
            checkpoint_holds_every_ranks_buffers,
        ),
        ("batch_end_stop_on_one_rank", batch_end_stop_on_one_rank),
        ("epoch_end_stop_on_one_rank", epoch_end_stop_on_one_rank),
        ("root_only_stop", root_only_stop),
        ("lowest_stopping_rank_wins", lowest_stopping_rank_wins),
        (
            "train_end_failure_on_one_rank",
            train_end_failure_on_one_rank,
        ),
        (
            "epoch_begin_failure_on_one_rank",
            epoch_begin_failure_on_one_rank,
        ),
        (
            "epoch_end_failure_on_one_rank",
            epoch_end_failure_on_one_rank,
        ),
    ];
    harness::main(&scenarios)
}
