//! Telling shoes from clothing: the TensorFlow tutorial's classifier (Flatten →
//! Dense(128, relu) → Dense(10)) trained on Fashion-MNIST with Adam and sparse categorical
//! cross-entropy, then read class by class: per-class accuracy, a confusion matrix, and
//! "is it a shoe?" answered directly.
//!
//! ```text
//! cargo run --release --example fashion_mnist                  # bundled data, 8,000 / 2,000
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
use tapegrad::nn::data::{DataError, Dataset, bundled_data_dir, load_idx_split};
use tapegrad::nn::history::History;
use tapegrad::nn::layers::{Activation, Dense, Flatten, Sequential};
use tapegrad::nn::model::{FitOptions, Loss, Metric, Model};
use tapegrad::optim::AdamConfig;
use tapegrad::report::{ConfusionMatrix, argmax_rows};

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
    #[arg(long, value_name = "PATH")]
    pub plot: Option<PathBuf>,
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

    let mut model = Model::new(
        Sequential::new()
            .add(Flatten::new())
            .add(Dense::new(128).activation(Activation::Relu))
            .add(Dense::new(10)),
    );
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

    let evaluation = model.evaluate(&data.test_x, &test_y_f32, 1_000)?;
    let predicted = argmax_rows(&model.predict(&data.test_x, 1_000)?);
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
        plot_history(&history, path)
            .map_err(|e| format!("cannot draw the plot {}: {e}", path.display()))?;
        println!("curves drawn in {}", path.display());
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

/// Reads the bundled split or the four files of `--data`, checking what training needs.
fn load(args: &Args) -> Result<Split, Box<dyn Error>> {
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

/// Two panels, loss and accuracy per epoch, training and (when present) held-out.
fn plot_history(history: &History, path: &Path) -> Result<(), Box<dyn Error>> {
    use plotters::prelude::*;

    let root = SVGBackend::new(path, (960, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 2));
    for (panel, (metric, title)) in panels
        .iter()
        .zip([("loss", "loss"), ("accuracy", "accuracy")])
    {
        let series: Vec<(&str, &[f64], RGBColor)> = [
            ("training", history.get(metric), BLUE),
            ("held out", history.get(&format!("val_{metric}")), RED),
        ]
        .into_iter()
        .filter_map(|(label, values, color)| values.map(|v| (label, v, color)))
        .collect();
        let all = series.iter().flat_map(|(_, v, _)| v.iter().copied());
        let (low, high) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let margin = ((high - low) * 0.1).max(1e-3);
        let epochs = history.epochs().max(2);
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(1..epochs, (low - margin)..(high + margin))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_labels(epochs.min(10))
            .draw()?;
        for (label, values, color) in series {
            chart
                .draw_series(LineSeries::new(
                    values.iter().enumerate().map(|(i, &v)| (i + 1, v)),
                    color.stroke_width(2),
                ))?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[allow(dead_code)] // tests call `run` directly
fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
