//! Telling shoes from clothing: the TensorFlow tutorial's classifier (Flatten →
//! Dense(128, relu) → Dense(10)) trained on Fashion-MNIST with Adam and sparse categorical
//! cross-entropy, then read class by class: per-class accuracy, a confusion matrix, and
//! "is it a shoe?" answered directly. `--model cnn` trains a small convolutional network
//! instead: conv(32, 3×3, same) → relu → maxpool 2 → conv(64, 3×3, same) → relu →
//! maxpool 2 → flatten → dense(128, relu) → dense(10).
//!
//! ```sh
//! cargo run --release --example fashion_mnist                  # bundled data, 8,000 / 2,000
//! cargo run --release --example fashion_mnist -- --model cnn   # the convolutional network
//! cargo run --release --example fashion_mnist -- --model cnn --time-steps  # step timings
//! cargo run --release --example fashion_mnist -- --data DIR    # the full 60,000 / 10,000
//! cargo run --release --example fashion_mnist -- --export model.onnx  # for ONNX runtimes
//! cargo run --release --example fashion_mnist -- --help
//! ```

use std::error::Error;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use ndarray::{Axis, s};
use tapegrad::autograd::Tape;
use tapegrad::datasets::{ImageSet, ImageSplit, SHOES, labels_f32};
use tapegrad::models::{small_cnn, tutorial_mlp};
use tapegrad::nn::callbacks::{BackupAndRestore, CsvLogger, TensorBoard};
use tapegrad::nn::history::History;
use tapegrad::nn::layers::Sequential;
use tapegrad::nn::model::{FitOptions, Loss, Metric, Model};
use tapegrad::nn::tensorboard::{ImageLayout, SummaryWriter};
use tapegrad::nn::{Module, losses};
use tapegrad::optim::AdamConfig;
use tapegrad::report::{ConfusionMatrix, argmax_rows};

// A file of its own beside this one; the path is spelled out so that `tests/examples.rs`,
// which includes this file with `#[path]`, finds it too.
#[path = "fashion_mnist/plot.rs"]
mod plot;
use plot::{Figure, plot_report};

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
    /// Export the trained model to PATH as an ONNX file for inference runtimes (opset 17,
    /// input `input` of shape (batch, 28, 28) with any batch size, output `output`: the ten
    /// classes' logits).
    #[arg(long, value_name = "PATH")]
    pub export: Option<PathBuf>,
    /// Back up the whole training state into DIR at every epoch's end; a run killed and
    /// started again with the same arguments resumes there and ends with the same weights
    /// (the backup is deleted once training ends).
    #[arg(long, value_name = "DIR")]
    pub backup: Option<PathBuf>,
    /// Draw the loss and accuracy per epoch (training and held-out), the confusion matrix
    /// as a heat map and held-out images the model got wrong, as an SVG at PATH.
    #[arg(long, value_name = "PATH")]
    pub plot: Option<PathBuf>,
    /// Log the run for TensorBoard into DIR (`tensorboard --logdir DIR`): loss, accuracy
    /// and learning rate per epoch for training and the held-out images, weight
    /// histograms, the hyper-parameters and held-out accuracy; and one row per epoch in
    /// DIR/epochs.csv
    #[arg(long, value_name = "DIR")]
    pub logdir: Option<PathBuf>,
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
            Arch::Mlp => tutorial_mlp(),
            Arch::Cnn => small_cnn(height, width),
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
    fn set(self) -> ImageSet {
        match self {
            Labels::Fashion => ImageSet::FashionMnist,
            Labels::Digits => ImageSet::Mnist,
        }
    }
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
    run_with(args, |options| options)
}

/// [`run`], with `fit`'s options passed through `configure` before training (to add a
/// callback).
pub fn run_with(
    args: &Args,
    configure: impl FnOnce(FitOptions<f32>) -> FitOptions<f32>,
) -> Result<Summary, Box<dyn Error>> {
    let names = args.labels.set().class_names();
    let started = Instant::now();
    let data = load(args)?;
    let load_seconds = started.elapsed().as_secs_f64();
    let mut test_counts = [0_usize; 10];
    data.test_y.iter().for_each(|&c| test_counts[c] += 1);
    println!(
        "{}: {} training images, {} held out ({})",
        args.labels.set().name(),
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
    let test_y_f32 = labels_f32(&data.test_y);
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
    if let Some(dir) = &args.backup {
        options = options.callback(BackupAndRestore::new(dir));
    }
    if let Some(dir) = &args.logdir {
        options = options
            .callback(TensorBoard::new(dir).histogram_freq(1))
            .callback(CsvLogger::new(dir.join("epochs.csv")));
    }
    if args.plot.is_some() || args.logdir.is_some() {
        // Held-out curves for the plot and the logs (evaluated after each epoch; weights
        // unaffected).
        options = options.validation_data(
            data.test_x.clone().into_dyn(),
            test_y_f32.clone().into_dyn(),
        );
    }
    let options = configure(options);
    let started = Instant::now();
    let history = model.fit(&data.train_x, &labels_f32(&data.train_y), options)?;
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
    print!("{}", confusion.to_table(&args.labels.set().short_names()));

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

    if let Some(dir) = &args.logdir {
        let wrong = log_run(dir, args, &data, &predicted, evaluation.loss, test_accuracy)?;
        println!(
            "\nTensorBoard logs (with {wrong} misclassified images) in {} \
             (see them with `tensorboard --logdir {0}`), one row per epoch in {}",
            dir.display(),
            dir.join("epochs.csv").display()
        );
    }
    if let Some(path) = &args.save {
        model
            .save(path)
            .map_err(|e| format!("cannot save the weights to {}: {e}", path.display()))?;
        println!("\nweights saved to {} (safetensors)", path.display());
    }
    if let Some(path) = &args.export {
        model
            .export_onnx(path)
            .map_err(|e| format!("cannot export the model to {}: {e}", path.display()))?;
        println!(
            "model exported to {} (ONNX opset {}: input `input` (batch, {height}, {width}), \
             output `output` (batch, 10) logits)",
            path.display(),
            tapegrad::nn::onnx::OPSET_VERSION
        );
    }
    if let Some(path) = &args.plot {
        let figure = Figure {
            history: &history,
            confusion: &confusion,
            images: &data.test_x,
            truth: &data.test_y,
            predicted: &predicted,
            names: &args.labels.set().short_names(),
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

/// The bundled split or the four files of `--data`, cut to `--train-limit` / `--test-limit`.
/// Logs what TensorBoard shows beside the callback's curves: the hyper-parameters with the
/// held-out loss and accuracy, and the first 8 held-out images the model got wrong
/// (tagged `wrong/<true class>_as_<predicted class>`). Returns the number of images.
fn log_run(
    dir: &Path,
    args: &Args,
    data: &ImageSplit,
    predicted: &[usize],
    test_loss: f64,
    test_accuracy: f64,
) -> Result<usize, Box<dyn Error>> {
    let mut writer = SummaryWriter::new(dir)?;
    let model = format!("{:?}", args.model).to_lowercase();
    writer.add_hparams(
        &[
            ("model", model.into()),
            ("epochs", args.epochs.into()),
            ("batch_size", args.batch_size.into()),
            ("lr", args.lr.into()),
            ("seed", args.seed.into()),
        ],
        &[
            ("hparam/test_loss", test_loss),
            ("hparam/test_accuracy", test_accuracy),
        ],
    )?;
    let names = args.labels.set().short_names();
    let wrong: Vec<usize> = (0..predicted.len())
        .filter(|&i| predicted[i] != data.test_y[i])
        .take(8)
        .collect();
    for (k, &i) in wrong.iter().enumerate() {
        let tag = format!(
            "wrong/{k}_{}_as_{}",
            names[data.test_y[i]], names[predicted[i]]
        );
        let image = data.test_x.index_axis(Axis(0), i).insert_axis(Axis(0));
        writer.add_image(&tag, image, ImageLayout::Chw, args.epochs)?;
    }
    writer.flush()?;
    Ok(wrong.len())
}

fn load(args: &Args) -> Result<ImageSplit, Box<dyn Error>> {
    let split = tapegrad::datasets::load(args.labels.set(), args.data.as_deref())?;
    Ok(split.limit(args.train_limit, args.test_limit))
}

/// `--time-steps`: one training step (forward, backward, Adam) at batch 32 and 128 and the
/// forward pass alone at batch 128, on the loaded training images; median milliseconds.
fn time_steps(args: &Args) -> Result<(), Box<dyn Error>> {
    let data = load(args)?;
    let (n, height, width) = data.train_x.dim();
    let labels = &data.train_y;
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
