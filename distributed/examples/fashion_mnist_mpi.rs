//! The main job (`examples/fashion_mnist.rs`: Flatten → Dense(128, relu) → Dense(10), Adam,
//! sparse categorical cross-entropy) trained data-parallel over MPI with `Model::fit` and a
//! communicator: every rank holds the data, draws the same shuffled order, trains on its
//! `--batch-size` rows of each global batch of `ranks × batch-size`, and the gradients are
//! summed in one all-reduce per step.
//!
//! ```sh
//! cargo build --release --example fashion_mnist_mpi          # in distributed/
//! distributed/run-mpi 2 target/release/examples/fashion_mnist_mpi --data DIR
//! mpirun --hostfile hosts -np 8 target/release/examples/fashion_mnist_mpi --data DIR
//! distributed/run-mpi 2 target/release/examples/fashion_mnist_mpi --backup runs/fm-backup
//! ```
//!
//! Rank 0 prints the report and writes the checkpoint; the others print nothing unless
//! they fail.
//!
//! With `--backup DIR`, rank 0 backs up the whole training state into DIR at every epoch's
//! end. When a rank dies, mpirun ends the job; the same command (the same number of ranks)
//! then resumes after the last finished epoch and ends with the weights of a job never
//! killed.
//!
//! Each rank computes with `--threads` threads; by default `RAYON_NUM_THREADS` when set
//! (`run-mpi` sets it), else this machine's cores shared among its ranks (Open MPI's
//! `OMPI_COMM_WORLD_LOCAL_SIZE`), at least one: 2 ranks on 2 cores run one thread each
//! instead of two ranks of two threads competing for the same cores.

use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Instant;

use clap::Parser;
use tapegrad::datasets::{ImageSet, labels_f32, load};
use tapegrad::models::tutorial_mlp;
use tapegrad::nn::callbacks::{BackupAndRestore, ModelCheckpoint};
use tapegrad::nn::communicator::{Communicator, GradientBuffer, first_failure};
use tapegrad::nn::model::{FitOptions, Loss, Metric, Model};
use tapegrad::nn::snapshot::TrainingSnapshot;
use tapegrad::optim::AdamConfig;
use tapegrad::report::{ConfusionMatrix, argmax_rows};
use tapegrad_distributed::MpiCommunicator;

/// Train the Fashion-MNIST classifier data-parallel across the MPI ranks.
#[derive(Parser, Debug)]
#[command(name = "fashion_mnist_mpi", version)]
struct Args {
    /// The folder of the four Fashion-MNIST IDX files (60,000 / 10,000); without it, the
    /// bundled 10,000 test images (8,000 / 2,000).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Passes over the training data.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Images per gradient step on each rank (the global batch is ranks × this).
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 0.001)]
    lr: f64,
    /// Seeds the initial weights and the shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Save the trained weights to PATH (safetensors; rank 0 writes).
    #[arg(long, value_name = "PATH")]
    save: Option<PathBuf>,
    /// Back up the whole training state into DIR at every epoch's end (rank 0 writes); a
    /// job killed and started again with the same arguments and number of ranks resumes
    /// there and ends with the same weights (the backup is deleted once training ends).
    #[arg(long, value_name = "DIR")]
    backup: Option<PathBuf>,
    /// Compute threads per rank (default: `RAYON_NUM_THREADS`, else the machine's cores
    /// divided among the ranks on it, at least 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

/// The compute threads of this rank: `flag`, else `RAYON_NUM_THREADS`, else this machine's
/// cores divided among the ranks mpirun started on it (`OMPI_COMM_WORLD_LOCAL_SIZE`), at
/// least 1.
fn compute_threads(flag: Option<u16>) -> usize {
    let from_env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
    };
    if let Some(n) = flag {
        return usize::from(n);
    }
    if let Some(n) = from_env("RAYON_NUM_THREADS") {
        return n;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let local_ranks = from_env("OMPI_COMM_WORLD_LOCAL_SIZE").unwrap_or(1);
    (cores / local_ranks).max(1)
}

fn run(comm: &Rc<MpiCommunicator>, args: &Args) -> Result<(), String> {
    let root = comm.is_root();
    let threads = compute_threads(args.threads);
    let started = Instant::now();
    // A rank that cannot start its threads or load the data tells the others, which would
    // wait in `fit`.
    let loaded = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| format!("cannot start {threads} compute thread(s): {e}"))
        .and_then(|()| {
            load(ImageSet::FashionMnist, args.data.as_deref()).map_err(|e| e.to_string())
        });
    if let Some((rank, message)) = first_failure(&**comm, loaded.as_ref().err().map(String::as_str))
        .map_err(|e| e.to_string())?
    {
        return Err(format!("rank {rank}: {message}"));
    }
    let data = loaded?;
    let load_seconds = started.elapsed().as_secs_f64();
    let ranks = comm.size();
    if root {
        println!(
            "Fashion-MNIST: {} training images, {} held out ({}); {ranks} rank(s), \
             {} images per rank per step (global batch {})",
            data.train_y.len(),
            data.test_y.len(),
            data.source,
            args.batch_size,
            args.batch_size.saturating_mul(ranks)
        );
    }

    let mut model = Model::new(tutorial_mlp().seed(args.seed).with_input_shape(&[28, 28]));
    let optimizer = AdamConfig::new(args.lr)
        .build::<f32>()
        .map_err(|e| e.to_string())?;
    model.compile(
        optimizer,
        Loss::sparse_categorical_cross_entropy(),
        &[Metric::Accuracy],
    );
    let mut options = FitOptions::default()
        .epochs(args.epochs)
        .batch_size(args.batch_size)
        .seed(args.seed)
        .verbose(2)
        .communicator(comm.clone());
    if let Some(path) = &args.save {
        // Root-only: rank 0 writes, after every epoch; a failed write stops every rank.
        options = options.callback(ModelCheckpoint::new(path));
    }
    // The epochs a backup holds already (counted out of this run's figures).
    let mut resumed = 0;
    if let Some(dir) = &args.backup {
        let backup = BackupAndRestore::new(dir);
        let path = backup.path();
        if root && path.exists() {
            // `fit` reads and checks the backup itself; this only reports where it resumes.
            resumed = TrainingSnapshot::<f32>::load(&path).map_or(0, |s| s.epoch());
            println!("resuming from {}: {resumed} epoch(s) done", path.display());
        }
        options = options.callback(backup);
    }
    let (train_y, test_y) = (labels_f32(&data.train_y), labels_f32(&data.test_y));
    comm.barrier().map_err(|e| e.to_string())?;
    comm.reset_stats();
    let train_start = Instant::now();
    let history = model
        .fit(&data.train_x, &train_y, options)
        .map_err(|e| e.to_string())?;
    let train_seconds = train_start.elapsed().as_secs_f64();
    let stats = comm.stats().all_reduce;
    let n = data.train_y.len();
    let epochs = history.epochs().saturating_sub(resumed);
    let steps = n.div_ceil(args.batch_size * ranks) * epochs;
    let step_floats = GradientBuffer::new(&model.params()).len();

    // Held out: the loss and accuracy on every rank's share, totalled (the same on every
    // rank); rank 0 also predicts every image for the confusion matrix.
    let evaluation = model
        .evaluate_with(&data.test_x, &test_y, 1_000, &**comm)
        .map_err(|e| e.to_string())?;
    if root {
        let predicted = argmax_rows(
            &model
                .predict(&data.test_x, 1_000)
                .map_err(|e| e.to_string())?,
        );
        let confusion = ConfusionMatrix::new(&data.test_y, &predicted, 10);
        let images = (n * epochs) as f64;
        println!(
            "loading: {load_seconds:.2} s; training: {train_seconds:.2} s ({epochs} epochs, {steps} \
             steps of {} images on each of {ranks} rank(s), {threads} compute thread(s) per rank)",
            args.batch_size,
        );
        println!(
            "throughput: {:.0} images/s; per step: {:.3} ms, of which all-reduce {:.3} ms \
             ({} calls, the step's of {:.2} MB)",
            images / train_seconds,
            1e3 * train_seconds / steps.max(1) as f64,
            1e3 * stats.time.as_secs_f64() / steps.max(1) as f64,
            stats.calls,
            (step_floats * 4) as f64 / 1e6,
        );
        println!(
            "held-out: loss {:.4}, accuracy {:.2} % ({} images)",
            evaluation.loss,
            100.0 * evaluation.get("accuracy").unwrap_or(f64::NAN),
            data.test_y.len()
        );
        println!("\nper-class accuracy:");
        for (c, accuracy) in confusion.class_accuracy().iter().enumerate() {
            println!(
                "  {:<12} {:>6.1} %",
                ImageSet::FashionMnist.class_names()[c],
                100.0 * accuracy
            );
        }
        println!("\nconfusion matrix (rows: true class, columns: predicted class):");
        print!(
            "{}",
            confusion.to_table(&ImageSet::FashionMnist.short_names())
        );
        if let Some(path) = &args.save {
            println!("\nweights saved to {} (safetensors)", path.display());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let comm = match MpiCommunicator::init() {
        Ok(c) => Rc::new(c),
        Err(e) => {
            eprintln!("cannot start MPI: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&comm, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rank {}: error: {e}", comm.rank());
            ExitCode::FAILURE
        }
    }
}
