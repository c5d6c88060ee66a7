//! Data-parallel training under `mpirun -np 2`: the same parameters as one process with the
//! global batch, replicas bit-identical, a failure on one rank stopping every rank, and
//! weights saved by rank 0 loading in one process.
//!
//! A plain `main` (no libtest harness), like `primitives.rs`: every rank runs every
//! scenario in the same order; rank 0 prints one line per scenario and `N passed, N failed`.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ndarray::{Array2, ArrayD, Axis};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tapegrad_autograd::{Float, Tape};
use tapegrad_distributed::MpiCommunicator;
use tapegrad_nn::communicator::{
    CommError, Communicator, GradientBuffer, SingleProcess, batch_rows, broadcast,
    broadcast_message, broadcast_params, first_failed_rank,
};
use tapegrad_nn::io::{load_weights, save_weights};
use tapegrad_nn::layers::{Activation, Dense, Sequential};
use tapegrad_nn::{Module, losses};
use tapegrad_optim::{Adam, Optimizer};

type Outcome = Result<(), String>;

/// A named scenario, run on every rank.
type Scenario = (&'static str, fn(&MpiCommunicator) -> Outcome);

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// 200 samples of 4 features in 3 classes (a seeded draw: the same on every rank).
fn data<T: Float>() -> (Array2<T>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(11);
    let n = 200;
    let mut x = Array2::zeros((n, 4));
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let class = rng.random_range(0..3_usize);
        for j in 0..4 {
            let centre = if j % 3 == class { 1.0 } else { -0.5 };
            x[[i, j]] = T::from_f64(centre + rng.random_range(-0.8..0.8));
        }
        y.push(class);
    }
    (x, y)
}

fn model<T: Float>() -> Sequential<T> {
    Sequential::new()
        .seed(5)
        .add(Dense::new(16).activation(Activation::Tanh))
        .add(Dense::new(3))
        .with_input_shape(&[4])
}

/// A hand-written data-parallel loop: every rank shuffles the same global order, trains on
/// its `per_rank` rows of each global batch, and the gradients are summed in one all-reduce
/// per step. `fail_at`: (rank, step) where that rank reports a failure.
fn train<T: Float>(
    comm: &dyn Communicator,
    per_rank: usize,
    epochs: usize,
    fail_at: Option<(usize, usize)>,
) -> Result<Sequential<T>, String> {
    let (x, y) = data::<T>();
    let n = y.len();
    let mut net = model::<T>();
    let mut opt = Adam::new(0.01).map_err(err)?;
    broadcast_params(comm, &mut net.params_mut()).map_err(err)?;
    let mut buffer = GradientBuffer::new(&net.params());
    let global = per_rank * comm.size();
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = StdRng::seed_from_u64(3);
    let mut step = 0;
    for _ in 0..epochs {
        order.shuffle(&mut rng);
        for start in (0..n).step_by(global) {
            let rows = &order[batch_rows(start, (start + global).min(n), per_rank, comm.rank())];
            let failed = fail_at == Some((comm.rank(), step));
            let (loss, grads) = if rows.is_empty() || failed {
                (0.0, None)
            } else {
                let tape = Tape::new();
                let bx = x.select(Axis(0), rows).into_dyn();
                let labels: Vec<usize> = rows.iter().map(|&r| y[r]).collect();
                let out = net.forward(tape.constant(bx));
                let loss = losses::sparse_categorical_cross_entropy_indices(out, &labels);
                (Float::to_f64(loss.item()), Some(loss.backward()))
            };
            buffer.pack(grads.as_ref(), rows.len(), loss, failed);
            let totals = buffer.reduce(comm).map_err(err)?;
            if totals.failed > 0 {
                let rank = first_failed_rank(comm, failed)
                    .map_err(err)?
                    .unwrap_or_default();
                let message = format!("injected failure at step {step}");
                let message = broadcast_message(comm, &message, rank).map_err(err)?;
                return Err(format!("rank {rank} failed: {message}"));
            }
            opt.step(&mut net.params_mut(), &buffer.grads(totals.rows))
                .map_err(err)?;
            step += 1;
        }
    }
    Ok(net)
}

fn flat<T: Float>(net: &Sequential<T>) -> Vec<T> {
    net.params()
        .iter()
        .flat_map(|p| p.value().iter().copied())
        .collect()
}

/// Largest |a − b| / max(|b|, 1e-3) over all parameters.
fn max_relative<T: Float>(a: &[T], b: &[T]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&a, &b)| {
            let (a, b) = (Float::to_f64(a), Float::to_f64(b));
            (a - b).abs() / b.abs().max(1e-3)
        })
        .fold(0.0, f64::max)
}

/// 2 ranks × 16 rows = 1 process × 32 rows, in f64 to 1e-12 (relative), 5 epochs.
fn equivalent_to_one_process_f64(c: &MpiCommunicator) -> Outcome {
    let per_rank = 32 / c.size();
    let distributed = flat(&train::<f64>(c, per_rank, 5, None)?);
    let single = flat(&train::<f64>(&SingleProcess, 32, 5, None)?);
    let diff = max_relative(&distributed, &single);
    if c.is_root() {
        println!("  f64: largest relative difference {diff:.2e} (5 epochs, 35 steps)");
    }
    if diff <= 1e-12 {
        Ok(())
    } else {
        Err(format!("relative difference {diff:e} > 1e-12"))
    }
}

/// The same in f32: reported, and bounded loosely (rounding differs in the sums).
fn equivalent_to_one_process_f32(c: &MpiCommunicator) -> Outcome {
    let per_rank = 32 / c.size();
    let distributed = flat(&train::<f32>(c, per_rank, 5, None)?);
    let single = flat(&train::<f32>(&SingleProcess, 32, 5, None)?);
    let diff = max_relative(&distributed, &single);
    if c.is_root() {
        println!("  f32: largest relative difference {diff:.2e} (5 epochs, 35 steps)");
    }
    if diff <= 1e-3 {
        Ok(())
    } else {
        Err(format!("relative difference {diff:e} > 1e-3"))
    }
}

/// Every rank ends with rank 0's parameters, bit for bit.
fn replicas_bit_identical(c: &MpiCommunicator) -> Outcome {
    let mine = flat(&train::<f32>(c, 8, 3, None)?);
    let mut root = mine.clone();
    broadcast(c, &mut root, 0).map_err(err)?;
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

/// The last rank fails at step 4: every rank returns that error, promptly.
fn failure_on_one_rank_stops_all(c: &MpiCommunicator) -> Outcome {
    let last = c.size() - 1;
    let start = Instant::now();
    let result = train::<f32>(c, 8, 3, Some((last, 4)));
    let elapsed = start.elapsed();
    match result {
        Err(message) if message == format!("rank {last} failed: injected failure at step 4") => {
            if elapsed < Duration::from_secs(5) {
                Ok(())
            } else {
                Err(format!("took {elapsed:?}"))
            }
        }
        Err(other) => Err(format!("unexpected error: {other}")),
        Ok(_) => Err("training succeeded".into()),
    }
}

/// Rank 0 saves; its outcome (`Err` text or empty) is every rank's.
fn save_on_root(c: &MpiCommunicator, net: &Sequential<f32>, path: &Path) -> Outcome {
    let mut mine = String::new();
    if c.is_root()
        && let Err(e) = save_weights(path, &net.params())
    {
        mine = e.to_string();
    }
    let message = broadcast_message(c, &mine, 0).map_err(err)?;
    if message.is_empty() {
        Ok(())
    } else {
        Err(message)
    }
}

fn predict(net: &Sequential<f32>) -> ArrayD<f32> {
    let (x, _) = data::<f32>();
    let tape = Tape::new();
    tape.no_grad(|| net.forward(tape.constant(x.into_dyn())).value())
}

/// Weights saved by rank 0 after a 2-rank run load into a fresh model in one process
/// (no communicator) and predict exactly what the trained replicas predict.
fn checkpoint_loads_in_one_process(c: &MpiCommunicator) -> Outcome {
    let net = train::<f32>(c, 16, 3, None)?;
    let dir = std::env::temp_dir().join(format!("tapegrad-mpi-test-{}", std::process::id()));
    // Rank 0's process id names the folder on every rank.
    let mut id = vec![f64::from(std::process::id())];
    c.broadcast_f64(&mut id, 0).map_err(err)?;
    let dir = dir.with_file_name(format!("tapegrad-mpi-test-{}", id[0]));
    if c.is_root() {
        std::fs::create_dir_all(&dir).map_err(err)?;
    }
    let path = dir.join("weights.safetensors");
    save_on_root(c, &net, &path)?;
    let mut fresh = model::<f32>();
    let loaded = load_weights(&path, &mut fresh.params_mut()).map_err(err);
    c.barrier().map_err(err)?;
    if c.is_root() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    loaded?;
    if predict(&fresh) == predict(&net) {
        Ok(())
    } else {
        Err("the loaded model predicts differently".into())
    }
}

/// A save that fails on rank 0 is an error on every rank.
fn failed_save_is_an_error_everywhere(c: &MpiCommunicator) -> Outcome {
    let net = model::<f32>();
    let path = Path::new("/nonexistent-folder/tapegrad/weights.safetensors");
    match save_on_root(c, &net, path) {
        Err(message) if message.contains("nonexistent-folder") => Ok(()),
        Err(other) => Err(format!("unexpected error: {other}")),
        Ok(()) => Err("the save succeeded".into()),
    }
}

fn main() -> ExitCode {
    let comm = match MpiCommunicator::init() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start MPI: {e}");
            return ExitCode::FAILURE;
        }
    };
    let scenarios: [Scenario; 6] = [
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
            "checkpoint_loads_in_one_process",
            checkpoint_loads_in_one_process,
        ),
        (
            "failed_save_is_an_error_everywhere",
            failed_save_is_an_error_everywhere,
        ),
    ];
    run(&comm, &scenarios)
}

fn run(comm: &MpiCommunicator, scenarios: &[Scenario]) -> ExitCode {
    if comm.is_root() {
        println!(
            "running {} scenarios on {} rank(s)",
            scenarios.len(),
            comm.size()
        );
    }
    let mut failures = vec![0.0_f64; scenarios.len()];
    for (i, (name, scenario)) in scenarios.iter().enumerate() {
        if let Err(msg) = scenario(comm) {
            eprintln!("rank {}: {name}: {msg}", comm.rank());
            failures[i] = 1.0;
        }
    }
    if let Err(e) = comm.all_reduce_sum_f64(&mut failures) {
        eprintln!(
            "rank {}: cannot gather the results: {}",
            comm.rank(),
            e as CommError
        );
        return ExitCode::FAILURE;
    }
    let failed = failures.iter().filter(|&&f| f > 0.0).count();
    if comm.is_root() {
        for ((name, _), f) in scenarios.iter().zip(&failures) {
            let verdict = if *f > 0.0 { "FAILED" } else { "ok" };
            println!("test {name} ... {verdict}");
        }
        println!("{} passed, {failed} failed", scenarios.len() - failed);
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
