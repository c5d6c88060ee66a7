//! Telling shoes from clothing: the TensorFlow tutorial's classifier (Flatten →
//! Dense(128, relu) → Dense(10)) trained on Fashion-MNIST with Adam and sparse categorical
//! cross-entropy, then read class by class: per-class accuracy, a confusion matrix, and
//! "is it a shoe?" answered directly. `--model cnn` trains a small convolutional network
//! instead: conv(32, 3×3, same) → relu → maxpool 2 → conv(64, 3×3, same) → relu →
//! maxpool 2 → flatten → dense(128, relu) → dense(10).
//!
//! ```text
//! cargo run --release --example fashion_mnist                  # bundled data, 8,000 / 2,000
//! cargo run --release --example fashion_mnist -- --model cnn   # the convolutional network
//! cargo run --release --example fashion_mnist -- --model cnn --time-steps  # step timings
//! cargo run --release --example fashion_mnist -- --data DIR    # the full 60,000 / 10,000
//! cargo run --release --example fashion_mnist -- --help
//! ```

use std::error::Error;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use ndarray::{Array1, Array3, s};
use tapegrad::autograd::Tape;
use tapegrad::nn::data::{DataError, Dataset, bundled_data_dir, load_idx_split};
use tapegrad::nn::history::History;
use tapegrad::nn::layers::{
    Activation, Conv2d, Dense, Flatten, MaxPool2d, Padding, Reshape, Sequential,
};
use tapegrad::nn::model::{FitOptions, Loss, Metric, Model};
use tapegrad::nn::{Module, losses};
use tapegrad::optim::AdamConfig;
use tapegrad::report::{ConfusionMatrix, argmax_rows};

// A file of its own beside this one; the path is spelled out so that `tests/examples.rs`,
// which includes this file with `#[path]`, finds it too.
#[path = "fashion_mnist/plot.rs"]
mod plot;
use plot::{Figure, plot_report};

const FASHION_CLASSES: [&str; 10] = [
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
/// Column headings of the confusion matrix.
const FASHION_SHORT: [&str; 10] = [
    "T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot",
];
const DIGIT_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
/// Sandal, Sneaker, Ankle boot.
const SHOES: [usize; 3] = [5, 7, 9];
/// How the bundled 10,000 test images are split: the first 8,000 train, the rest are held out.
const BUNDLED_TRAIN: usize = 8_000;

/// Train the TensorFlow tutorial's Fashion-MNIST classifier and report how well it tells
/// the ten classes apart, and shoes from clothing.
#[derive(Parser, Debug, Clone)]
#[command(name = "fashion_mnist", version)]
pub struct Args {
    /// Train on the full dataset in DIR (60,000 images) and test on its 10,000
    ///
    /// DIR holds the four IDX files, gzipped or not: train-images-idx3-ubyte[.gz],
    /// train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and
    /// t10k-labels-idx1-ubyte[.gz] (the README's "Getting the full datasets" says where to
    /// get them). Without --data: the 10,000 test images bundled in data/, the first 8,000
    /// for training and the last 2,000 held out.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// What the labels mean: Fashion-MNIST's garments or MNIST's digits
    ///
    /// With `digits` and no --data, the bundled data is MNIST's test set.
    #[arg(long, value_enum, default_value_t = Labels::Fashion)]
    pub labels: Labels,
    /// Which network to train: the tutorial's MLP or a small convolutional network
    #[arg(long, value_enum, default_value_t = Arch::Mlp)]
    pub model: Arch,
    /// Passes over the training data.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Images per gradient step.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 0.001)]
    pub lr: f64,
    /// Seeds the initial weights and the shuffling (same seed, same result).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Save the trained weights to PATH (safetensors).
    #[arg(long, value_name = "PATH")]
    pub save: Option<PathBuf>,
    /// Draw the loss and accuracy per epoch (training and held-out) as an SVG at PATH.
    /// Draw the loss and accuracy per epoch (training and held-out), the confusion matrix
    /// as a heat map and held-out images the model got wrong, as an SVG at PATH.
    #[arg(long, value_name = "PATH")]
    pub plot: Option<PathBuf>,
    /// Instead of training: time one training step (Adam) at batch 32 and 128 and
    /// inference at batch 128 on the loaded images (median of repeated steps), and exit.
    #[arg(long)]
    pub time_steps: bool,
    /// Train on the first N training images only (quick runs and tests).
    #[arg(long, value_name = "N")]
    pub train_limit: Option<usize>,
    /// Evaluate on the first N held-out images only.
    #[arg(long, value_name = "N")]
    pub test_limit: Option<usize>,
}

/// The networks `--model` chooses from.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Flatten → Dense(128, relu) → Dense(10) (TensorFlow's tutorial).
    Mlp,
    /// conv(32, 3×3, same) → relu → maxpool 2 → conv(64, 3×3, same) → relu → maxpool 2 →
    /// flatten → dense(128, relu) → dense(10), on images reshaped to (1, height, width).
    Cnn,
}

impl Arch {
    /// The untrained network for images of `height × width` pixels.
    fn network(self, height: usize, width: usize) -> Sequential<f32> {
        match self {
            Arch::Mlp => Sequential::new()
                .add(Flatten::new())
                .add(Dense::new(128).activation(Activation::Relu))
                .add(Dense::new(10)),
            Arch::Cnn => Sequential::new()
                .add(Reshape::new(&[1, height as isize, width as isize]))
                .add(
                    Conv2d::new(32, 3)
                        .padding(Padding::Same)
                        .activation(Activation::Relu),
                )
                .add(MaxPool2d::new(2))
                .add(
                    Conv2d::new(64, 3)
                        .padding(Padding::Same)
                        .activation(Activation::Relu),
                )
                .add(MaxPool2d::new(2))
                .add(Flatten::new())
                .add(Dense::new(128).activation(Activation::Relu))
                .add(Dense::new(10)),
        }
    }

    /// Images per forward pass when evaluating and predicting: the CNN's activations of
    /// 1,000 images would be ~100 MB per layer (at 250 the peak RSS was 236 MB, at 64 it
    /// is that of training).
    fn eval_batch(self) -> usize {
        match self {
            Arch::Mlp => 1_000,
            Arch::Cnn => 64,
        }
    }
}

/// The datasets' label sets.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labels {
    /// Fashion-MNIST (Zalando Research).
    Fashion,
    /// MNIST handwritten digits.
    Digits,
}

impl Labels {
    fn class_names(self) -> [&'static str; 10] {
        match self {
            Labels::Fashion => FASHION_CLASSES,
            Labels::Digits => DIGIT_CLASSES,
        }
    }
    fn short_names(self) -> [&'static str; 10] {
        match self {
            Labels::Fashion => FASHION_SHORT,
            Labels::Digits => DIGIT_CLASSES,
        }
    }
    fn dataset_name(self) -> &'static str {
        match self {
            Labels::Fashion => "Fashion-MNIST",
            Labels::Digits => "MNIST",
        }
    }
}

/// Training and held-out images (scaled to [0, 1]) with their labels.
struct Split {
    train_x: Array3<f32>,
    train_y: Array1<f32>,
    test_x: Array3<f32>,
    test_y: Vec<usize>,
    source: String,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Summary {
    pub train_samples: usize,
    pub test_samples: usize,
    pub load_seconds: f64,
    pub train_seconds: f64,
    pub history: History,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub confusion: ConfusionMatrix,
    /// Accuracy of "is it a shoe?" (Fashion-MNIST only).
    pub shoes_accuracy: Option<f64>,
}

/// Loads the data, trains, evaluates on the held-out images and prints the report.
pub fn run(args: &Args) -> Result<Summary, Box<dyn Error>> {
    let names = args.labels.class_names();
    let started = Instant::now();
    let data = load(args)?;
    let load_seconds = started.elapsed().as_secs_f64();
    let mut test_counts = [0_usize; 10];
    data.test_y.iter().for_each(|&c| test_counts[c] += 1);
    println!(
        "{}: {} training images, {} held out ({})",
        args.labels.dataset_name(),
        data.train_y.len(),
        data.test_y.len(),
        data.source
    );
    println!(
        "held-out images per class: {}",
        per_class(&names, &test_counts)
    );

    let (_, height, width) = data.train_x.dim();
    let mut model = Model::new(args.model.network(height, width));
    model.compile(
        AdamConfig::new(args.lr).build()?,
        Loss::sparse_categorical_cross_entropy(),
        &[Metric::Accuracy],
    );
    let test_y_f32: Array1<f32> = data.test_y.iter().map(|&c| c as f32).collect();
    let verbose = if std::io::stderr().is_terminal() {
        1
    } else {
        2
    };
    let mut options = FitOptions::default()
        .epochs(args.epochs)
        .batch_size(args.batch_size)
        .verbose(verbose)
        .seed(args.seed);
    if args.plot.is_some() {
        // Held-out curves for the plot (evaluated after each epoch; weights unaffected).
        options = options.validation_data(
            data.test_x.clone().into_dyn(),
            test_y_f32.clone().into_dyn(),
        );
    }
    let started = Instant::now();
    let history = model.fit(&data.train_x, &data.train_y, options)?;
    let train_seconds = started.elapsed().as_secs_f64();

    let eval_batch = args.model.eval_batch();
    let evaluation = model.evaluate(&data.test_x, &test_y_f32, eval_batch)?;
    let predicted = argmax_rows(&model.predict(&data.test_x, eval_batch)?);
    let confusion = ConfusionMatrix::new(&data.test_y, &predicted, 10);
    let test_accuracy = confusion.accuracy();
    let steps = data.train_y.len().div_ceil(args.batch_size) * history.epochs();

    println!(
        "loading: {load_seconds:.2} s; training: {train_seconds:.2} s ({} epochs, {steps} steps \
         of {} images, {} threads available)",
        history.epochs(),
        args.batch_size,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "held-out accuracy: {:.2} % ({} images, loss {:.4})",
        100.0 * test_accuracy,
        data.test_y.len(),
        evaluation.loss
    );
    println!("\nper-class accuracy:");
    for (c, accuracy) in confusion.class_accuracy().iter().enumerate() {
        println!(
            "  {:<12} {:>6.1} %  ({}/{})",
            names[c],
            100.0 * accuracy,
            confusion.count(c, c),
            test_counts[c]
        );
    }
    println!("\nconfusion matrix (rows: true class, columns: predicted class):");
    print!("{}", confusion.to_table(&args.labels.short_names()));

    let shoes_accuracy = (args.labels == Labels::Fashion).then(|| {
        let shoes = confusion.group_matrix(&SHOES); // class 1: a shoe, class 0: clothing
        let totals = shoes.class_totals();
        println!(
            "\nshoes (Sandal, Sneaker, Ankle boot) vs clothing (the other seven classes, bags \
             included): {:.2} % right",
            100.0 * shoes.accuracy()
        );
        println!(
            "  shoes taken for shoes: {}/{}, clothing taken for clothing: {}/{}",
            shoes.count(1, 1),
            totals[1],
            shoes.count(0, 0),
            totals[0]
        );
        shoes.accuracy()
    });

    if let Some(path) = &args.save {
        model
            .save(path)
            .map_err(|e| format!("cannot save the weights to {}: {e}", path.display()))?;
        println!("\nweights saved to {} (safetensors)", path.display());
    }
    if let Some(path) = &args.plot {
        let figure = Figure {
            history: &history,
            confusion: &confusion,
            images: &data.test_x,
            truth: &data.test_y,
            predicted: &predicted,
            names: &args.labels.short_names(),
        };
        plot_report(&figure, path)
            .map_err(|e| format!("cannot draw the plot {}: {e}", path.display()))?;
        println!(
            "curves, confusion heat map and misclassified images drawn in {}",
            path.display()
        );
    }
    Ok(Summary {
        train_samples: data.train_y.len(),
        test_samples: data.test_y.len(),
        load_seconds,
        train_seconds,
        history,
        test_loss: evaluation.loss,
        test_accuracy,
        confusion,
        shoes_accuracy,
    })
}

/// `name count, name count, ...`
fn per_class(names: &[&str], counts: &[usize]) -> String {
    names
        .iter()
        .zip(counts)
        .map(|(n, c)| format!("{n} {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the bundled split or the four files of `--data`, checking what training needs,
/// and keeps the first `--train-limit` / `--test-limit` images if asked.
fn load(args: &Args) -> Result<Split, Box<dyn Error>> {
    let mut split = load_all(args)?;
    if let Some(n) = args.train_limit {
        let n = n.clamp(1, split.train_y.len());
        split.train_x = split.train_x.slice(s![..n, .., ..]).to_owned();
        split.train_y = split.train_y.slice(s![..n]).to_owned();
        split
            .source
            .push_str(&format!(", first {n} training images"));
    }
    if let Some(n) = args.test_limit {
        let n = n.clamp(1, split.test_y.len());
        split.test_x = split.test_x.slice(s![..n, .., ..]).to_owned();
        split.test_y.truncate(n);
        split.source.push_str(&format!(", first {n} held out"));
    }
    Ok(split)
}

/// Reads the bundled split or the four files of `--data`, checking what training needs.
fn load_all(args: &Args) -> Result<Split, Box<dyn Error>> {
    let name = args.labels.dataset_name();
    match &args.data {
        None => {
            let folder = match args.labels {
                Labels::Fashion => "fashion-mnist",
                Labels::Digits => "mnist",
            };
            let dir = bundled_data_dir().join(folder);
            let all = read_split(&dir, "t10k", name)?;
            if all.len() <= BUNDLED_TRAIN {
                return Err(format!(
                    "the bundled {name} test set in {} has {} images; expected more than {BUNDLED_TRAIN}",
                    dir.display(),
                    all.len()
                )
                .into());
            }
            let x = scale(&all.images);
            let labels = all.labels_usize();
            Ok(Split {
                train_x: x.slice(s![..BUNDLED_TRAIN, .., ..]).to_owned(),
                train_y: labels[..BUNDLED_TRAIN].iter().map(|&c| c as f32).collect(),
                test_x: x.slice(s![BUNDLED_TRAIN.., .., ..]).to_owned(),
                test_y: labels[BUNDLED_TRAIN..].to_vec(),
                source: format!(
                    "the bundled test set, first {BUNDLED_TRAIN} / last {}",
                    all.len() - BUNDLED_TRAIN
                ),
            })
        }
        Some(dir) => {
            let train = read_split(dir, "train", name)?;
            let test = read_split(dir, "t10k", name)?;
            if train.image_shape() != test.image_shape() {
                return Err(format!(
                    "the training images in {} are {:?} pixels but the test images are {:?}",
                    dir.display(),
                    train.image_shape(),
                    test.image_shape()
                )
                .into());
            }
            Ok(Split {
                train_x: scale(&train.images),
                train_y: train.labels.mapv(f32::from),
                test_x: scale(&test.images),
                test_y: test.labels_usize(),
                source: format!("train and t10k files of {}", dir.display()),
            })
        }
    }
}

/// One split of an IDX folder, with a hint when a file is missing and a check of the labels.
fn read_split(dir: &Path, prefix: &str, name: &str) -> Result<Dataset, Box<dyn Error>> {
    let dataset = load_idx_split(dir, prefix).map_err(|e| match e {
        DataError::NotFound { .. } => format!(
            "{e}\n  (the {name} files are the four IDX files published by {}; see \
             README.md)",
            match name {
                "MNIST" => "Yann LeCun's MNIST page and its mirrors",
                _ => "Zalando Research at github.com/zalandoresearch/fashion-mnist",
            }
        ),
        e => e.to_string(),
    })?;
    if let Some((i, &label)) = dataset.labels.iter().enumerate().find(|&(_, &l)| l >= 10) {
        return Err(format!(
            "label {label} of image {i} in the {prefix} labels of {} is not a class 0..9",
            dir.display()
        )
        .into());
    }
    Ok(dataset)
}

/// Pixels 0..=255 to [0, 1].
fn scale(images: &Array3<u8>) -> Array3<f32> {
    images.mapv(|p| f32::from(p) / 255.0)
}

/// `--time-steps`: one training step (forward, backward, Adam) at batch 32 and 128 and the
/// forward pass alone at batch 128, on the loaded training images; median milliseconds.
fn time_steps(args: &Args) -> Result<(), Box<dyn Error>> {
    let data = load(args)?;
    let (n, height, width) = data.train_x.dim();
    let labels: Vec<usize> = data.train_y.iter().map(|&c| c as usize).collect();
    let batch_of = |b: usize, i: usize| {
        let start = (i * b) % (n - b + 1).max(1);
        let end = (start + b).min(n);
        (
            data.train_x
                .slice(s![start..end, .., ..])
                .to_owned()
                .into_dyn(),
            labels[start..end].to_vec(),
        )
    };
    let model_name = format!("{:?}", args.model).to_lowercase();
    println!(
        "{model_name}: median of timed steps ({} threads available)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let median = |mut xs: Vec<f64>| {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    };
    // At least 5 timed repetitions after 2 warm-up ones, for at least 3 s or 20 repetitions.
    let repeat = |f: &mut dyn FnMut(usize)| {
        let mut samples = Vec::new();
        let started = Instant::now();
        let mut i = 0;
        while samples.len() < 5 || (samples.len() < 20 && started.elapsed().as_secs_f64() < 3.0) {
            let t = Instant::now();
            f(i);
            if i >= 2 {
                samples.push(t.elapsed().as_secs_f64() * 1e3);
            }
            i += 1;
        }
        (median(samples.clone()), samples.len())
    };
    for batch in [32, 128] {
        let mut net = args
            .model
            .network(height, width)
            .seed(args.seed)
            .with_input_shape(&[height, width]);
        let mut adam = AdamConfig::new(args.lr).build()?;
        let batches: Vec<_> = (0..8).map(|i| batch_of(batch, i)).collect();
        let (ms, reps) = repeat(&mut |i| {
            let (x, y) = &batches[i % batches.len()];
            let grads = {
                let tape = Tape::new();
                let loss = losses::sparse_categorical_cross_entropy_indices(
                    net.forward(tape.constant_ref(x)),
                    y,
                );
                std::hint::black_box(loss.item());
                loss.backward()
            };
            adam.step(net.params_mut(), &grads)
                .expect("finite gradients");
        });
        println!("  training step, batch {batch:>3}: {ms:8.2} ms  ({reps} steps timed)");
    }
    let net = args
        .model
        .network(height, width)
        .seed(args.seed)
        .with_input_shape(&[height, width]);
    let (x, _) = batch_of(128, 0);
    let (ms, reps) = repeat(&mut |_| {
        let tape = Tape::new();
        tape.no_grad(|| {
            let logits = net.forward(tape.constant_ref(&x));
            std::hint::black_box(logits.shape());
        });
    });
    println!("  inference,     batch 128: {ms:8.2} ms  ({reps} passes timed)");
    Ok(())
}

#[allow(dead_code)] // tests call `run` directly
fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = if args.time_steps {
        time_steps(&args)
    } else {
        run(&args).map(|_| ())
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
