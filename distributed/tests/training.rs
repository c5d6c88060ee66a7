//! Data-parallel `fit` under `mpirun -np 2`: the same parameters and history as one process
//! with the global batch, replicas bit-identical, a failure on one rank (in a step, in its
//! data, in rank 0's checkpoint) an error on every rank, a NaN stopping every rank, a
//! checkpoint written by rank 0 loading in one process, logs (TensorBoard, CSV) written by
//! rank 0 alone, and a sharded `evaluate`.
//!
//! Run by `harness::run` (a plain `main`, no libtest harness; a watchdog aborts a scenario
//! that hangs).

mod harness;

use std::path::Path;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use harness::{Outcome, Scenario, err, shared_dir};
use ndarray::{Array1, Array2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad_autograd::Float;
use tapegrad_distributed::MpiCommunicator;
use tapegrad_nn::callbacks::{CsvLogger, ModelCheckpoint, TensorBoard, TerminateOnNan, UpdateFreq};
use tapegrad_nn::communicator::{Communicator, SingleProcess, broadcast};
use tapegrad_nn::history::{History, StopReason};
use tapegrad_nn::layers::{Activation, Dense, Sequential};
use tapegrad_nn::model::{FitError, FitOptions, Loss, Metric, Model};
use tapegrad_optim::Adam;

/// 200 samples of 4 features in 3 classes (a seeded draw: the same on every rank), labels
/// as numbers.
fn data<T: Float>() -> (Array2<T>, Array1<T>) {
    let mut rng = StdRng::seed_from_u64(11);
    let n = 200;
    let mut x = Array2::zeros((n, 4));
    let mut y = Array1::zeros(n);
    for i in 0..n {
        let class = rng.random_range(0..3_usize);
        for j in 0..4 {
            let centre = if j % 3 == class { 1.0 } else { -0.5 };
            x[[i, j]] = T::from_f64(centre + rng.random_range(-0.8..0.8));
        }
        y[i] = T::from_f64(class as f64);
    }
    (x, y)
}

/// The network, built from seed 5 (the same on every rank; `fit` broadcasts rank 0's
/// weights anyway), compiled with Adam, the sparse cross-entropy (or `loss`) and accuracy.
fn model<T: Float>(loss: Option<Loss<T>>) -> Result<Model<T>, String> {
    let net = Sequential::new()
        .seed(5)
        .add(Dense::new(16).activation(Activation::Tanh))
        .add(Dense::new(3))
        .with_input_shape(&[4]);
    let mut model = Model::new(net);
    let metrics: &[Metric] = if loss.is_none() {
        &[Metric::Accuracy]
    } else {
        &[]
    };
    let loss = loss.unwrap_or_else(Loss::sparse_categorical_cross_entropy);
    model.compile(Adam::new(0.01).map_err(err)?, loss, metrics);
    Ok(model)
}

/// `epochs` epochs with `per_rank` rows per rank and step (shuffled from seed 3, silent).
fn options<T: Float>(comm: Rc<dyn Communicator>, per_rank: usize, epochs: usize) -> FitOptions<T> {
    FitOptions::default()
        .epochs(epochs)
        .batch_size(per_rank)
        .seed(3)
        .verbose(0)
        .communicator(comm)
}

fn flat<T: Float>(model: &Model<T>) -> Vec<T> {
    model
        .params()
        .iter()
        .flat_map(|p| p.value().iter().copied())
        .collect()
}

/// Every value of the history, column after column.
fn flat_history(history: &History) -> Vec<f64> {
    let names: Vec<String> = history.names().map(str::to_string).collect();
    names
        .iter()
        .flat_map(|n| history.get(n).unwrap_or_default().to_vec())
        .collect()
}

/// Largest |a − b| / max(|b|, 1e-3) over all values.
fn max_relative<T: Float>(a: &[T], b: &[T]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&a, &b)| {
            let (a, b) = (Float::to_f64(a), Float::to_f64(b));
            (a - b).abs() / b.abs().max(1e-3)
        })
        .fold(0.0, f64::max)
}

/// `fit` on `ranks × per_rank` rows per step vs one process on as many: the largest
/// relative difference of the parameters and of the history (loss, accuracy, validation
/// loss and accuracy), 5 epochs of 180 training and 20 validation samples.
fn distributed_vs_one_process<T: Float>(c: &Rc<MpiCommunicator>) -> Result<(f64, f64), String> {
    let (x, y) = data::<T>();
    let per_rank = 32 / c.size();
    let mut distributed = model::<T>(None)?;
    let d_history = distributed
        .fit(
            &x,
            &y,
            options(c.clone(), per_rank, 5).validation_split(0.1),
        )
        .map_err(err)?;
    let mut single = model::<T>(None)?;
    let s_history = single
        .fit(
            &x,
            &y,
            options(Rc::new(SingleProcess), 32, 5).validation_split(0.1),
        )
        .map_err(err)?;
    if d_history.names().count() != 4 || s_history.epochs() != 5 {
        return Err(format!("unexpected history {:?}", d_history.to_csv()));
    }
    Ok((
        max_relative(&flat(&distributed), &flat(&single)),
        max_relative(&flat_history(&d_history), &flat_history(&s_history)),
    ))
}

/// 2 ranks × 16 rows = 1 process × 32 rows, in f64 to 1e-12 (relative): parameters, and
/// losses and metrics (validation included).
fn equivalent_to_one_process_f64(c: &Rc<MpiCommunicator>) -> Outcome {
    let (params, history) = distributed_vs_one_process::<f64>(c)?;
    if c.is_root() {
        println!(
            "  f64: largest relative difference: parameters {params:.2e}, history {history:.2e} \
             (5 epochs, 30 steps)"
        );
    }
    if params <= 1e-12 && history <= 1e-12 {
        Ok(())
    } else {
        Err(format!(
            "relative differences {params:e}, {history:e} > 1e-12"
        ))
    }
}

/// The same in f32: reported, and bounded loosely (rounding differs in the sums).
fn equivalent_to_one_process_f32(c: &Rc<MpiCommunicator>) -> Outcome {
    let (params, history) = distributed_vs_one_process::<f32>(c)?;
    if c.is_root() {
        println!(
            "  f32: largest relative difference: parameters {params:.2e}, history {history:.2e} \
             (5 epochs, 30 steps)"
        );
    }
    if params <= 1e-3 && history <= 1e-3 {
        Ok(())
    } else {
        Err(format!(
            "relative differences {params:e}, {history:e} > 1e-3"
        ))
    }
}

/// Every rank ends with rank 0's parameters, bit for bit.
fn replicas_bit_identical(c: &Rc<MpiCommunicator>) -> Outcome {
    let (x, y) = data::<f32>();
    let mut trained = model::<f32>(None)?;
    trained.fit(&x, &y, options(c.clone(), 8, 3)).map_err(err)?;
    let mine = flat(&trained);
    let mut root = mine.clone();
    broadcast(&**c, &mut root, 0).map_err(err)?;
    let same = mine
        .iter()
        .zip(&root)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    if same {
        Ok(())
    } else {
        Err("this rank's parameters differ from rank 0's".into())
    }
}

/// The last rank's loss fails at its 5th batch (a loss that is not a single number): it
/// returns that error, every other rank `RankFailed` with its text, promptly.
fn failure_on_one_rank_stops_all(c: &Rc<MpiCommunicator>) -> Outcome {
    let last = c.size() - 1;
    let fails_here = c.rank() == last;
    let calls = Arc::new(AtomicUsize::new(0));
    let inner = Loss::<f32>::sparse_categorical_cross_entropy();
    let flaky = Loss::new("flaky", move |p, t| {
        if fails_here && calls.fetch_add(1, Ordering::Relaxed) == 4 {
            p // not reduced to one value
        } else {
            inner.call(p, t)
        }
    });
    let (x, y) = data::<f32>();
    let mut m = model(Some(flaky))?;
    let start = Instant::now();
    let result = m.fit(&x, &y, options(c.clone(), 8, 3));
    let elapsed = start.elapsed();
    let outcome = match result {
        Err(FitError::LossNotScalar { loss, .. }) if fails_here && loss == "flaky" => Ok(()),
        Err(FitError::RankFailed { rank, message })
            if !fails_here && rank == last && message.contains("loss `flaky` returned") =>
        {
            Ok(())
        }
        Err(other) => Err(format!("unexpected error: {other}")),
        Ok(_) => Err("training succeeded".into()),
    };
    outcome?;
    if elapsed < Duration::from_secs(5) {
        Ok(())
    } else {
        Err(format!("took {elapsed:?}"))
    }
}

/// A data error on the last rank only (an invalid label): an error on every rank, before
/// any training.
fn data_error_on_one_rank_stops_all(c: &Rc<MpiCommunicator>) -> Outcome {
    let last = c.size() - 1;
    let (x, mut y) = data::<f32>();
    if c.rank() == last {
        y[7] = 9.0;
    }
    let mut m = model::<f32>(None)?;
    let before = flat(&m);
    match m.fit(&x, &y, options(c.clone(), 8, 1)) {
        Err(FitError::InvalidLabel { row: 7, .. }) if c.rank() == last => Ok(()),
        Err(FitError::RankFailed { rank, message })
            if c.rank() != last && rank == last && message.contains("label 9") =>
        {
            Ok(())
        }
        Err(other) => Err(format!("unexpected error: {other}")),
        Ok(_) => Err("training succeeded".into()),
    }?;
    if flat(&m) == before {
        Ok(())
    } else {
        Err("the weights changed".into())
    }
}

/// NaN inputs on the last rank only: the step's loss (over all ranks) is NaN, and
/// `TerminateOnNan` stops every rank at the first batch, the weights untouched.
fn nan_on_one_rank_stops_all(c: &Rc<MpiCommunicator>) -> Outcome {
    let (mut x, y) = data::<f32>();
    if c.rank() == c.size() - 1 {
        x.fill(f32::NAN);
    }
    let mut m = model::<f32>(None)?;
    let before = flat(&m);
    let history = m
        // The finite-input check is off so that the NaN reaches the loss: the path under test.
        .fit(
            &x,
            &y,
            options(c.clone(), 8, 2)
                .check_finite(false)
                .callback(TerminateOnNan),
        )
        .map_err(err)?;
    match history.stop_reason() {
        Some(StopReason::NonFiniteLoss {
            epoch: 0, batch: 0, ..
        }) if flat(&m) == before => Ok(()),
        other => Err(format!("stopped with {other:?}")),
    }
}

/// The checkpoint `ModelCheckpoint` writes on rank 0 of a 2-rank `fit` loads into a fresh
/// model in one process (no communicator) and predicts exactly what every trained replica
/// predicts.
fn checkpoint_loads_in_one_process(c: &Rc<MpiCommunicator>) -> Outcome {
    let dir = shared_dir(c, "training")?;
    let path = dir.join("weights.safetensors");
    let (x, y) = data::<f32>();
    let mut trained = model::<f32>(None)?;
    let fitted = trained.fit(
        &x,
        &y,
        options(c.clone(), 16, 3).callback(ModelCheckpoint::new(&path)),
    );
    let mut fresh = model::<f32>(None)?;
    let loaded = fitted
        .map_err(err)
        .and_then(|_| fresh.load(&path).map_err(err));
    c.barrier().map_err(err)?;
    if c.is_root() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    loaded?;
    let same = fresh.predict(&x, 64).map_err(err)? == trained.predict(&x, 64).map_err(err)?;
    if same {
        Ok(())
    } else {
        Err("the loaded model predicts differently".into())
    }
}

/// `TensorBoard` and `CsvLogger` write on rank 0 alone: one event file per run (a second
/// rank's writer would add its own) and one header and row per epoch in the CSV file.
fn logs_written_by_rank_0_only(c: &Rc<MpiCommunicator>) -> Outcome {
    let dir = shared_dir(c, "training")?;
    let (tb, csv) = (dir.join("tb"), dir.join("epochs.csv"));
    let (x, y) = data::<f32>();
    let mut m = model::<f32>(None)?;
    let options = options(c.clone(), 16, 3)
        .validation_split(0.2)
        .callback(TensorBoard::new(&tb).update_freq(UpdateFreq::Batches(1)))
        .callback(CsvLogger::new(&csv));
    let fitted = m.fit(&x, &y, options).map_err(err);
    c.barrier().map_err(err)?;
    let checked = fitted.and_then(|_| {
        if !c.is_root() {
            return Ok(());
        }
        for run in ["train", "validation"] {
            let files = std::fs::read_dir(tb.join(run)).map_err(err)?.count();
            if files != 1 {
                return Err(format!("{files} event files in the {run} run"));
            }
        }
        let rows = std::fs::read_to_string(&csv).map_err(err)?.lines().count();
        if rows != 4 {
            return Err(format!("{rows} lines in the CSV file"));
        }
        Ok(())
    });
    c.barrier().map_err(err)?;
    if c.is_root() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    checked
}

/// A checkpoint that cannot be written on rank 0 is an error on every rank.
fn failed_save_is_an_error_everywhere(c: &Rc<MpiCommunicator>) -> Outcome {
    let path = Path::new("/nonexistent-folder/tapegrad/weights.safetensors");
    let (x, y) = data::<f32>();
    let mut m = model::<f32>(None)?;
    let result = m.fit(
        &x,
        &y,
        options(c.clone(), 16, 2).callback(ModelCheckpoint::new(path)),
    );
    match result {
        Err(e @ FitError::Callback { .. })
            if c.is_root() && e.to_string().contains("ModelCheckpoint") =>
        {
            Ok(())
        }
        Err(FitError::RankFailed { rank: 0, message })
            if !c.is_root() && message.contains("nonexistent-folder") =>
        {
            Ok(())
        }
        Err(other) => Err(format!("unexpected error: {other}")),
        Ok(_) => Err("the save succeeded".into()),
    }
}

/// `evaluate_with` on the ranks' shards gives one process's `evaluate`, in f64 to 1e-12.
fn sharded_evaluate_equals_one_process(c: &Rc<MpiCommunicator>) -> Outcome {
    let (x, y) = data::<f64>();
    let m = model::<f64>(None)?;
    let sharded = m.evaluate_with(&x, &y, 16, &**c).map_err(err)?;
    let single = m.evaluate(&x, &y, 16).map_err(err)?;
    let diff = (sharded.loss - single.loss).abs() / single.loss;
    if diff <= 1e-12 && sharded.metrics == single.metrics {
        Ok(())
    } else {
        Err(format!("{sharded:?} vs {single:?}"))
    }
}

fn main() -> ExitCode {
    let scenarios: [Scenario; 10] = [
        (
            "equivalent_to_one_process_f64",
            equivalent_to_one_process_f64,
        ),
        (
            "equivalent_to_one_process_f32",
            equivalent_to_one_process_f32,
        ),
        ("replicas_bit_identical", replicas_bit_identical),
        (
            "failure_on_one_rank_stops_all",
            failure_on_one_rank_stops_all,
        ),
        (
            "data_error_on_one_rank_stops_all",
            data_error_on_one_rank_stops_all,
        ),
        ("nan_on_one_rank_stops_all", nan_on_one_rank_stops_all),
        (
            "checkpoint_loads_in_one_process",
            checkpoint_loads_in_one_process,
        ),
        (
            "failed_save_is_an_error_everywhere",
            failed_save_is_an_error_everywhere,
        ),
        ("logs_written_by_rank_0_only", logs_written_by_rank_0_only),
        (
            "sharded_evaluate_equals_one_process",
            sharded_evaluate_equals_one_process,
        ),
    ];
    harness::main(&scenarios)
}
