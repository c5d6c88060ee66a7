//! The main job (`examples/fashion_mnist.rs`: Flatten → Dense(128, relu) → Dense(10), Adam,
//! sparse categorical cross-entropy) trained data-parallel over MPI: every rank holds the
//! data, draws the same shuffled order, trains on its `--batch-size` rows of each global
//! batch of `ranks × batch-size`, and the gradients are summed in one all-reduce per step.
//!
//! ```text
//! cargo build --release --example fashion_mnist_mpi          # in distributed/
//! distributed/run-mpi 2 target/release/examples/fashion_mnist_mpi --data DIR
//! mpirun --hostfile hosts -np 8 target/release/examples/fashion_mnist_mpi --data DIR
//! ```
//!
//! Rank 0 prints the report; the others print nothing unless they fail.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use ndarray::{Array3, ArrayD, Axis, s};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use tapegrad::autograd::Tape;
use tapegrad::nn::communicator::{
    Communicator, GradientBuffer, batch_rows, broadcast_message, broadcast_params,
    first_failed_rank,
};
use tapegrad::nn::data::{bundled_data_dir, load_idx_split};
use tapegrad::nn::layers::{Activation, Dense, Flatten, Sequential};
use tapegrad::nn::{Module, losses};
use tapegrad::optim::{AdamConfig, Optimizer};
use tapegrad::report::{ConfusionMatrix, argmax_rows};
use tapegrad_distributed::MpiCommunicator;

const CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];
const SHORT: [&str; 10] = [
    "T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot",
];
/// The bundled 10,000 images: the first 8,000 train, the rest are held out.
const BUNDLED_TRAIN: usize = 8_000;

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
}

struct Split {
    train_x: Array3<f32>,
    train_y: Vec<usize>,
    test_x: Array3<f32>,
    test_y: Vec<usize>,
    source: String,
}

fn load(args: &Args) -> Result<Split, Box<dyn Error>> {
    let scale = |a: &Array3<u8>| a.mapv(|p| f32::from(p) / 255.0);
    match &args.data {
        None => {
            let all = load_idx_split(bundled_data_dir().join("fashion-mnist"), "t10k")?;
            let x = scale(&all.images);
            let y = all.labels_usize();
            if y.len() <= BUNDLED_TRAIN {
                return Err("the bundled set is too small".into());
            }
            Ok(Split {
                train_x: x.slice(s![..BUNDLED_TRAIN, .., ..]).to_owned(),
                train_y: y[..BUNDLED_TRAIN].to_vec(),
                test_x: x.slice(s![BUNDLED_TRAIN.., .., ..]).to_owned(),
                test_y: y[BUNDLED_TRAIN..].to_vec(),
                source: "the bundled test set, first 8000 / last 2000".into(),
            })
        }
        Some(dir) => {
            let train = load_idx_split(dir, "train")?;
            let test = load_idx_split(dir, "t10k")?;
            Ok(Split {
                train_x: scale(&train.images),
                train_y: train.labels_usize(),
                test_x: scale(&test.images),
                test_y: test.labels_usize(),
                source: format!("train and t10k files of {}", dir.display()),
            })
        }
    }
    .and_then(|split: Split| {
        match split
            .train_y
            .iter()
            .chain(&split.test_y)
            .find(|&&c| c >= 10)
        {
            Some(c) => Err(format!("label {c} is not a class 0..9").into()),
            None => Ok(split),
        }
    })
}

/// Turns an error on any rank into the same error on every rank (no rank is left waiting
/// in a collective): every rank must call this at the same point.
fn agree<T>(comm: &MpiCommunicator, local: Result<T, String>) -> Result<T, String> {
    let failed = first_failed_rank(comm, local.is_err()).map_err(|e| e.to_string())?;
    match failed {
        None => local,
        Some(rank) => {
            let mine = local.as_ref().err().cloned().unwrap_or_default();
            let message = broadcast_message(comm, &mine, rank).map_err(|e| e.to_string())?;
            Err(format!("rank {rank}: {message}"))
        }
    }
}

fn run(comm: &MpiCommunicator, args: &Args) -> Result<(), String> {
    let root = comm.is_root();
    let started = Instant::now();
    let data = agree(comm, load(args).map_err(|e| e.to_string()))?;
    let load_seconds = started.elapsed().as_secs_f64();
    if args.batch_size == 0 {
        return Err("--batch-size must be at least 1".into());
    }
    let (ranks, rank) = (comm.size(), comm.rank());
    if root {
        println!(
            "Fashion-MNIST: {} training images, {} held out ({}); {ranks} rank(s), \
             {} images per rank per step (global batch {})",
            data.train_y.len(),
            data.test_y.len(),
            data.source,
            args.batch_size,
            args.batch_size * ranks
        );
    }

    let mut model = Sequential::<f32>::new()
        .seed(args.seed)
        .add(Flatten::new())
        .add(Dense::new(128).activation(Activation::Relu))
        .add(Dense::new(10))
        .with_input_shape(&[28, 28]);
    let mut optimizer = AdamConfig::new(args.lr)
        .build::<f32>()
        .map_err(|e| e.to_string())?;
    broadcast_params(comm, &mut model.params_mut()).map_err(|e| e.to_string())?;
    let mut buffer = GradientBuffer::new(&model.params());
    let n = data.train_y.len();
    let global = args.batch_size * ranks;
    let steps_per_epoch = n.div_ceil(global);
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x5348_5546_464C_4521);
    comm.barrier().map_err(|e| e.to_string())?;
    comm.reset_stats();
    let train_start = Instant::now();
    let mut compute = 0.0;
    for epoch in 0..args.epochs {
        let epoch_start = Instant::now();
        order.shuffle(&mut rng);
        let (mut loss_sum, mut rows_seen, mut correct) = (0.0, 0, 0.0);
        for start in (0..n).step_by(global) {
            let t0 = Instant::now();
            let rows = &order[batch_rows(start, (start + global).min(n), args.batch_size, rank)];
            let (loss, grads) = if rows.is_empty() {
                (0.0, None)
            } else {
                let tape = Tape::new();
                let bx = data.train_x.select(Axis(0), rows).into_dyn();
                let labels: Vec<usize> = rows.iter().map(|&r| data.train_y[r]).collect();
                let out = model.forward(tape.constant(bx));
                let loss = losses::sparse_categorical_cross_entropy_indices(out, &labels);
                let predicted = argmax_rows(&out.value());
                correct += predicted
                    .iter()
                    .zip(&labels)
                    .filter(|(p, l)| p == l)
                    .count() as f64;
                (f64::from(loss.item()), Some(loss.backward()))
            };
            let failed = !loss.is_finite();
            buffer.pack(grads.as_ref(), rows.len(), loss, failed);
            compute += t0.elapsed().as_secs_f64();
            let totals = buffer.reduce(comm).map_err(|e| e.to_string())?;
            if totals.failed > 0 {
                let first = first_failed_rank(comm, failed).map_err(|e| e.to_string())?;
                return Err(format!(
                    "the loss is not finite on rank {} in epoch {}",
                    first.unwrap_or_default(),
                    epoch + 1
                ));
            }
            let t1 = Instant::now();
            optimizer
                .step(&mut model.params_mut(), &buffer.grads(totals.rows))
                .map_err(|e| e.to_string())?;
            compute += t1.elapsed().as_secs_f64();
            loss_sum += totals.loss_sum;
            rows_seen += totals.rows;
        }
        let mut acc = [correct];
        comm.all_reduce_sum_f64(&mut acc)
            .map_err(|e| e.to_string())?;
        if root {
            println!(
                "epoch {}/{}: loss {:.4}, accuracy {:.4} ({:.2} s)",
                epoch + 1,
                args.epochs,
                loss_sum / rows_seen as f64,
                acc[0] / rows_seen as f64,
                epoch_start.elapsed().as_secs_f64()
            );
        }
    }
    let train_seconds = train_start.elapsed().as_secs_f64();
    let stats = comm.stats().all_reduce;
    let steps = steps_per_epoch * args.epochs;

    // Held out: rank 0 evaluates (every rank has the same weights).
    let mut result = Ok(());
    if root {
        let test_x = data.test_x.clone().into_dyn();
        let mut predicted = Vec::with_capacity(data.test_y.len());
        for chunk in test_x.axis_chunks_iter(Axis(0), 1_000) {
            let tape = Tape::new();
            let out: ArrayD<f32> =
                tape.no_grad(|| model.forward(tape.constant(chunk.to_owned())).value());
            predicted.extend(argmax_rows(&out));
        }
        let confusion = ConfusionMatrix::new(&data.test_y, &predicted, 10);
        let images = (n * args.epochs) as f64;
        println!(
            "loading: {load_seconds:.2} s; training: {train_seconds:.2} s ({} epochs, {steps} steps \
             of {} images on each of {ranks} rank(s), {} threads available per rank)",
            args.epochs,
            args.batch_size,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        println!(
            "throughput: {:.0} images/s; per step: {:.3} ms, of which all-reduce {:.3} ms \
             ({} calls of {:.2} MB) and compute on rank 0 {:.3} ms",
            images / train_seconds,
            1e3 * train_seconds / steps as f64,
            1e3 * stats.time.as_secs_f64() / steps.max(1) as f64,
            stats.calls,
            (buffer.len() * 4) as f64 / 1e6,
            1e3 * compute / steps.max(1) as f64,
        );
        println!(
            "held-out accuracy: {:.2} % ({} images)",
            100.0 * confusion.accuracy(),
            data.test_y.len()
        );
        println!("\nper-class accuracy:");
        for (c, accuracy) in confusion.class_accuracy().iter().enumerate() {
            println!("  {:<12} {:>6.1} %", CLASSES[c], 100.0 * accuracy);
        }
        println!("\nconfusion matrix (rows: true class, columns: predicted class):");
        print!("{}", confusion.to_table(&SHORT));
        if let Some(path) = &args.save {
            let params = model.params();
            result = tapegrad::nn::io::save_weights(path, &params)
                .map(|()| println!("\nweights saved to {} (safetensors)", path.display()))
                .map_err(|e| format!("cannot save the weights: {e}"));
        }
    }
    // Rank 0's outcome (a failed save) becomes every rank's.
    let message = result.as_ref().err().cloned().unwrap_or_default();
    let message = broadcast_message(comm, &message, 0).map_err(|e| e.to_string())?;
    if message.is_empty() {
        Ok(())
    } else {
        Err(message)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let comm = match MpiCommunicator::init() {
        Ok(c) => c,
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
