//! The main job (`examples/fashion_mnist.rs`: Flatten → Dense(128, relu) → Dense(10), Adam,
//! sparse categorical cross-entropy) trained data-parallel over MPI with `Model::fit` and a
//! communicator: every rank holds the data, draws the same shuffled order, trains on its
//! `--batch-size` rows of each global batch of `ranks × batch-size`, and the gradients are
//! summed in one all-reduce per step.
//!
//! ```text
//! cargo build --release --example fashion_mnist_mpi          # in distributed/
//! distributed/run-mpi 2 target/release/examples/fashion_mnist_mpi --data DIR
//! mpirun --hostfile hosts -np 8 target/release/examples/fashion_mnist_mpi --data DIR
//! ```
//!
//! Rank 0 prints the report and writes the checkpoint; the others print nothing unless
//! they fail.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Instant;

use clap::Parser;
use ndarray::{Array1, Array3, s};
use tapegrad::nn::callbacks::ModelCheckpoint;
use tapegrad::nn::communicator::{Communicator, GradientBuffer, first_failure};
use tapegrad::nn::data::{bundled_data_dir, load_idx_split};
use tapegrad::nn::layers::{Activation, Dense, Flatten, Sequential};
use tapegrad::nn::model::{FitOptions, Loss, Metric, Model};
use tapegrad::optim::AdamConfig;
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

fn labels(y: &[usize]) -> Array1<f32> {
    y.iter().map(|&c| c as f32).collect()
}

fn run(comm: &Rc<MpiCommunicator>, args: &Args) -> Result<(), String> {
    let root = comm.is_root();
    let started = Instant::now();
    // A rank that cannot load the data tells the others, which would wait in `fit`.
    let loaded = load(args).map_err(|e| e.to_string());
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

    let mut model = Model::new(
        Sequential::<f32>::new()
            .seed(args.seed)
            .add(Flatten::new())
            .add(Dense::new(128).activation(Activation::Relu))
            .add(Dense::new(10))
            .with_input_shape(&[28, 28]),
    );
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
    let (train_y, test_y) = (labels(&data.train_y), labels(&data.test_y));
    comm.barrier().map_err(|e| e.to_string())?;
    comm.reset_stats();
    let train_start = Instant::now();
    let history = model
        .fit(&data.train_x, &train_y, options)
        .map_err(|e| e.to_string())?;
    let train_seconds = train_start.elapsed().as_secs_f64();
    let stats = comm.stats().all_reduce;
    let n = data.train_y.len();
    let steps = n.div_ceil(args.batch_size * ranks) * history.epochs();
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
        let images = (n * history.epochs()) as f64;
        println!(
            "loading: {load_seconds:.2} s; training: {train_seconds:.2} s ({} epochs, {steps} steps \
             of {} images on each of {ranks} rank(s), {} threads available per rank)",
            history.epochs(),
            args.batch_size,
            std::thread::available_parallelism().map_or(1, |n| n.get())
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
            println!("  {:<12} {:>6.1} %", CLASSES[c], 100.0 * accuracy);
        }
        println!("\nconfusion matrix (rows: true class, columns: predicted class):");
        print!("{}", confusion.to_table(&SHORT));
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
