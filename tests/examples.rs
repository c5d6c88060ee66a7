//! Every example's code path, run the way the example runs it (fewer epochs where that
//! keeps the test fast), asserting the result the example promises.

#[path = "../examples/custom_loss.rs"]
mod custom_loss;
#[path = "../examples/digits.rs"]
mod digits;
#[path = "../examples/fashion_mnist.rs"]
mod fashion_mnist;
#[path = "../examples/fit_line.rs"]
mod fit_line;
#[path = "../examples/makemore.rs"]
mod makemore;
#[path = "../examples/neuron.rs"]
mod neuron;
#[path = "../examples/newton.rs"]
mod newton;
#[path = "../examples/xor.rs"]
mod xor;

// The main jobs' `--backup`: killed runs resumed to the bytes of uninterrupted ones.
#[path = "examples/backup.rs"]
mod backup;

use std::path::{Path, PathBuf};

use clap::Parser;

/// A fresh, empty folder in the system temp directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("tapegrad-examples-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn fit_line_predicts_about_51_for_10() {
    let summary = fit_line::run(500).unwrap();
    // The article's Keras run printed 50.98739; the line itself says 51.
    assert!((summary.prediction - 51.0).abs() < 0.05, "{summary:?}");
    assert!((summary.weight - 5.0).abs() < 0.01 && (summary.bias - 1.0).abs() < 0.02);
    assert!((summary.tape_prediction - 51.0).abs() < 0.05, "{summary:?}");
    assert!((summary.tape_weight - 5.0).abs() < 0.01 && (summary.tape_bias - 1.0).abs() < 0.02);
}

#[test]
fn neuron_by_hand_and_by_autograd_agree_below_1e_7() {
    let summary = neuron::run(10_000).unwrap();
    assert!(summary.max_difference < 1e-7, "{summary:?}");
    // The article: "Considering new situation [1, 0, 0] -> ?: 0.99993704".
    assert!(summary.prediction_by_autograd > 0.9999, "{summary:?}");
    assert!(
        summary.by_hand[0] > 9.0,
        "the first input decides: {summary:?}"
    );
}

#[test]
fn xor_is_solved_and_its_graph_written() {
    let dir = Scratch::new("xor");
    let dot_path = dir.join("xor_step.dot");
    let summary = xor::run(2_000, &dot_path).unwrap();
    assert!(summary.solved, "{summary:?}");
    assert!(
        summary.final_loss < summary.first_loss / 100.0,
        "{summary:?}"
    );
    assert_eq!(summary.dot_path, dot_path);
    for (p, t) in summary.predictions.iter().zip(&summary.targets) {
        assert!((p - t).abs() < 0.1, "{summary:?}");
    }
    let dot = std::fs::read_to_string(&dot_path).unwrap();
    assert!(dot.starts_with("digraph"), "{dot}");
    for op in ["matmul", "tanh", "sigmoid", "param"] {
        assert!(dot.contains(op), "no {op} in the graph:\n{dot}");
    }
}

#[test]
fn newton_converges_to_the_closed_forms() {
    let summary = newton::run(50, 1e-12);
    assert!(
        (summary.x_1d - summary.closed_form_1d).abs() < 1e-12,
        "{summary:?}"
    );
    assert!(summary.steps_1d <= 8, "quadratic convergence: {summary:?}");
    for (x, closed) in summary.x_2d.iter().zip(summary.closed_form_2d) {
        assert!((x - closed).abs() < 1e-9, "{summary:?}");
    }
    assert!(summary.steps_2d < 50, "{summary:?}");
    assert!(summary.hessian_error < 1e-9, "{summary:?}");
}

#[test]
fn digits_validation_accuracy_above_90_percent_with_early_stopping() {
    let summary = digits::run(200, 5, 0).unwrap();
    assert!(summary.validation_accuracy > 0.90, "{summary:?}");
    assert_eq!(summary.train_samples + summary.validation_samples, 1_797);
    assert!(
        summary.stopped_early,
        "expected early stopping: {summary:?}"
    );
    let best = summary.best_epoch.unwrap();
    assert_eq!(
        summary.epochs_run,
        best + 6,
        "patience 5 after the best epoch"
    );
}

#[test]
fn custom_pinball_loss_learns_the_quantiles() {
    let fits = custom_loss::run(5_000, 200).unwrap();
    for fit in fits {
        assert!(
            (fit.coverage - fit.tau).abs() < 0.03,
            "the {} quantile line has {} of the points below it",
            fit.tau,
            fit.coverage
        );
        assert!((fit.slope - fit.true_slope).abs() < 0.3, "{fit:?}");
    }
}

#[test]
fn fashion_mnist_learns_from_the_bundled_split() {
    let dir = Scratch::new("fashion");
    let (weights, plot) = (dir.join("model.safetensors"), dir.join("curves.svg"));
    let exported = dir.join("model.onnx");
    let args = fashion_mnist::Args::parse_from([
        "fashion_mnist".as_ref(),
        "--epochs".as_ref(),
        "2".as_ref(),
        "--save".as_ref(),
        weights.as_os_str(),
        "--plot".as_ref(),
        plot.as_os_str(),
        "--export".as_ref(),
        exported.as_os_str(),
    ]);
    let summary = fashion_mnist::run(&args).unwrap();
    assert_eq!(
        (summary.train_samples, summary.test_samples),
        (8_000, 2_000)
    );
    assert_eq!(summary.history.epochs(), 2);
    assert!(summary.test_accuracy >= 0.75, "{}", summary.test_accuracy);
    assert!(
        summary.test_loss < summary.history.loss()[0],
        "held-out loss below the first epoch's"
    );
    assert!(summary.load_seconds > 0.0 && summary.train_seconds > 0.0);
    let shoes = summary.shoes_accuracy.unwrap();
    assert!(shoes >= 0.97, "shoes vs clothing: {shoes}");
    assert_eq!(summary.confusion.total(), 2_000);

    assert!(std::fs::metadata(&weights).unwrap().len() > 400_000); // 101,770 f32
    // The ONNX file holds the same weights, named as in the checkpoint (tapegrad-nn's tests
    // run such files in tract).
    let onnx = std::fs::read(&exported).unwrap();
    assert!(onnx.len() > 400_000);
    let holds = |name: &str| onnx.windows(name.len()).any(|w| w == name.as_bytes());
    assert!(holds("dense_0.kernel") && holds("dense_1.bias"));
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("held out"), "{svg}");
}

#[test]
fn fashion_mnist_checkpoint_is_bit_identical_on_one_and_two_threads() {
    // The main job, run in-process on a one-thread and a two-thread rayon pool: the saved
    // weights must be the same bytes (matrix products and optimizer updates are cut the
    // same way whatever the number of threads).
    let dir = Scratch::new("fashion-threads");
    let run = |threads: usize| {
        let weights = dir.join(format!("model-{threads}.safetensors"));
        let args = fashion_mnist::Args::parse_from([
            "fashion_mnist".as_ref(),
            "--epochs".as_ref(),
            "1".as_ref(),
            "--save".as_ref(),
            weights.as_os_str(),
        ]);
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| fashion_mnist::run(&args).unwrap());
        std::fs::read(&weights).unwrap()
    };
    let (one, two) = (run(1), run(2));
    assert!(one.len() > 400_000);
    assert!(one == two, "the checkpoints differ between 1 and 2 threads");
}

#[test]
fn fashion_mnist_labels_digits_trains_on_the_bundled_mnist() {
    let args =
        fashion_mnist::Args::parse_from(["fashion_mnist", "--labels", "digits", "--epochs", "1"]);
    let summary = fashion_mnist::run(&args).unwrap();
    assert!(summary.test_accuracy >= 0.85, "{}", summary.test_accuracy);
    assert_eq!(summary.shoes_accuracy, None, "no shoes among digits");
}

#[test]
fn fashion_mnist_help_explains_every_option() {
    let help = fashion_mnist::Args::try_parse_from(["fashion_mnist", "--help"])
        .unwrap_err()
        .to_string();
    for option in [
        "--data",
        "--labels",
        "--epochs",
        "--batch-size",
        "--lr",
        "--seed",
        "--save",
        "--export",
        "--plot",
    ] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
}

/// Writes the four IDX files of a tiny dataset to `dir` (uncompressed).
fn write_idx(dir: &Path, train: (u32, u32), test: (u32, u32)) {
    let images = |count: u32| {
        let mut bytes = Vec::new();
        for v in [2051_u32, count, 28, 28] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        bytes.extend((0..count as usize * 784).map(|i| (i % 251) as u8));
        bytes
    };
    let labels = |count: u32| {
        let mut bytes = Vec::new();
        for v in [2049_u32, count] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        bytes.extend((0..count).map(|i| (i % 10) as u8));
        bytes
    };
    std::fs::write(dir.join("train-images-idx3-ubyte"), images(train.0)).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), labels(train.1)).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), images(test.0)).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), labels(test.1)).unwrap();
}

fn run_on(dir: &Path) -> Result<fashion_mnist::Summary, String> {
    let args = fashion_mnist::Args::parse_from([
        "fashion_mnist".as_ref(),
        "--data".as_ref(),
        dir.as_os_str(),
        "--epochs".as_ref(),
        "1".as_ref(),
    ]);
    fashion_mnist::run(&args).map_err(|e| e.to_string())
}

#[test]
fn fashion_mnist_trains_on_a_data_folder() {
    let dir = Scratch::new("idx-ok");
    write_idx(&dir, (64, 64), (20, 20));
    let summary = run_on(&dir).unwrap();
    assert_eq!((summary.train_samples, summary.test_samples), (64, 20));
}

#[test]
fn fashion_mnist_reports_missing_and_corrupt_files_clearly() {
    // Missing folder / file.
    let dir = Scratch::new("idx-missing");
    let err = run_on(&dir).unwrap_err();
    assert!(
        err.contains("train-images-idx3-ubyte") && err.contains("zalandoresearch"),
        "{err}"
    );

    // Image and label counts disagree.
    let dir = Scratch::new("idx-count");
    write_idx(&dir, (64, 60), (20, 20));
    let err = run_on(&dir).unwrap_err();
    assert!(
        err.contains("64 images") && err.contains("60 labels"),
        "{err}"
    );

    // Wrong magic number: a label file where the images should be.
    let dir = Scratch::new("idx-magic");
    write_idx(&dir, (64, 64), (20, 20));
    std::fs::copy(
        dir.join("t10k-labels-idx1-ubyte"),
        dir.join("t10k-images-idx3-ubyte"),
    )
    .unwrap();
    let err = run_on(&dir).unwrap_err();
    assert!(err.contains("wrong magic number"), "{err}");

    // Truncated image file.
    let dir = Scratch::new("idx-truncated");
    write_idx(&dir, (64, 64), (20, 20));
    let path = dir.join("train-images-idx3-ubyte");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let err = run_on(&dir).unwrap_err();
    assert!(err.contains("truncated"), "{err}");

    // A label that is not a class 0..9.
    let dir = Scratch::new("idx-label");
    write_idx(&dir, (64, 64), (20, 20));
    let path = dir.join("t10k-labels-idx1-ubyte");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8 + 3] = 12;
    std::fs::write(&path, bytes).unwrap();
    let err = run_on(&dir).unwrap_err();
    assert!(err.contains("label 12 of image 3"), "{err}");
}

#[test]
fn fashion_mnist_cnn_learns_from_a_subset_in_one_epoch() {
    let dir = Scratch::new("fashion-cnn");
    let (weights, plot) = (dir.join("cnn.safetensors"), dir.join("cnn.svg"));
    let logdir = dir.join("logs");
    let args = fashion_mnist::Args::parse_from([
        "fashion_mnist".as_ref(),
        "--model".as_ref(),
        "cnn".as_ref(),
        "--epochs".as_ref(),
        "1".as_ref(),
        "--train-limit".as_ref(),
        "1000".as_ref(),
        "--test-limit".as_ref(),
        "500".as_ref(),
        "--save".as_ref(),
        weights.as_os_str(),
        "--plot".as_ref(),
        plot.as_os_str(),
        "--logdir".as_ref(),
        logdir.as_os_str(),
    ]);
    let summary = fashion_mnist::run(&args).unwrap();
    assert_eq!((summary.train_samples, summary.test_samples), (1_000, 500));
    // The TensorBoard runs (their format is tested in tapegrad-nn's suite) and the CSV.
    let train = event_bytes(&logdir.join("train"));
    for tag in [
        "epoch_loss",
        "epoch_accuracy",
        "epoch_learning_rate",
        "/histogram",
    ] {
        assert!(contains(&train, tag), "no {tag} in the train run");
    }
    assert!(contains(
        &event_bytes(&logdir.join("validation")),
        "epoch_accuracy"
    ));
    assert!(
        contains(&event_bytes(&logdir), "wrong/0_"),
        "misclassified images"
    );
    let hparams = std::fs::read_dir(&logdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir() && !p.ends_with("train") && !p.ends_with("validation"))
        .expect("the hparams run");
    assert!(contains(
        &event_bytes(&hparams),
        "_hparams_/session_start_info"
    ));
    let csv = std::fs::read_to_string(logdir.join("epochs.csv")).unwrap();
    assert!(
        csv.starts_with("epoch,loss,accuracy,val_loss,val_accuracy\n0,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 2);
    assert_eq!(summary.history.epochs(), 1);
    assert_eq!(summary.confusion.total(), 500);
    assert_eq!(summary.confusion.num_classes(), 10);
    // Chance is 10 %; one epoch on 1,000 images reaches ~65-70 %.
    assert!(summary.test_accuracy >= 0.5, "{}", summary.test_accuracy);
    assert!(summary.shoes_accuracy.unwrap() >= 0.9, "{summary:?}");
    // 3·3·32 + 32 + 3·3·32·64 + 64 + 3136·128 + 128 + 128·10 + 10 = 421,642 f32.
    assert!(std::fs::metadata(&weights).unwrap().len() > 4 * 421_642);
    let svg = std::fs::read_to_string(&plot).unwrap();
    for text in ["held out", "confusion matrix", "got wrong", "true: "] {
        assert!(svg.contains(text), "no {text:?} in the SVG");
    }
    assert!(svg.len() < 2_000_000, "SVG of {} bytes", svg.len());
}

/// The bytes of the event files of the run folder `dir` (tags are stored as UTF-8).
fn event_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && path.to_string_lossy().contains("tfevents") {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    assert!(!bytes.is_empty(), "no event file in {}", dir.display());
    bytes
}

fn contains(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

fn makemore_args(dir: &Path, extra: &[&str]) -> makemore::Args {
    let mut args = vec!["makemore", "--work-dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    makemore::Args::parse_from(args)
}

#[test]
fn makemore_models_have_makemore_parameter_counts() {
    use tapegrad::models::makemore::{Config, Kind, language_model};
    use tapegrad::nn::Module;
    use tapegrad::rand::{SeedableRng, rngs::StdRng};

    // makemore's README table for names.txt (27 symbols, block size 16); lstm is ours:
    // start h and c 2·64, wte 27·64, LSTMCell 4·64·(64 + 64) + 2·4·64, lm_head 64·27 + 27.
    let want = [
        (Kind::Bigram, 729),
        (Kind::Mlp, 69_147),
        (Kind::Rnn, 11_803),
        (Kind::Gru, 28_315),
        (Kind::Bow, 12_827),
        (Kind::Transformer, 204_544),
        (Kind::Lstm, 36_891),
    ];
    let config = Config::new(27, 16);
    for (kind, count) in want {
        let mut model = language_model::<f32>(kind, &config);
        let out = model.build(&[16], &mut StdRng::seed_from_u64(0));
        assert_eq!(out, [16, 27], "{kind:?}");
        assert_eq!(model.num_params(), count, "{kind:?}");
    }
}

#[test]
fn makemore_bigram_learns_names_and_samples_from_its_checkpoint() {
    let dir = Scratch::new("makemore-bigram");
    let args = [
        "--type",
        "bigram",
        "--max-steps",
        "300",
        "--eval-every",
        "150",
        "--learning-rate",
        "0.1",
        "--logdir",
    ];
    let logdir = dir.join("logs");
    let mut args = args.to_vec();
    args.push(logdir.to_str().unwrap());
    let report = makemore::run(&makemore_args(&dir, &args)).unwrap();
    assert_eq!(report.num_params, 729);
    let events = event_bytes(&logdir);
    assert!(contains(&events, "Loss/train") && contains(&events, "Loss/test"));
    assert_eq!(report.evaluations.len(), 2);
    // ln 27 = 3.30 at the start; the bigram's floor on names.txt is about 2.45.
    assert!(report.median_step_ms > 0.0);
    let (_, train, test) = report.evaluations[1];
    assert!(test < 2.9 && train < 2.9, "{:?}", report.evaluations);
    assert!(dir.join("model.safetensors").exists() && dir.join("loss.svg").exists());
    let svg = std::fs::read_to_string(dir.join("loss.svg")).unwrap();
    assert!(svg.contains("makemore bigram"));

    let sampled =
        makemore::run(&makemore_args(&dir, &["--type", "bigram", "--sample-only"])).unwrap();
    assert!(sampled.evaluations.is_empty());
    // A checkpoint of another model is a typed error, not a panic.
    let err = makemore::run(&makemore_args(&dir, &["--type", "mlp", "--sample-only"])).unwrap_err();
    assert!(err.to_string().contains("wte"), "{err}");
}

#[test]
fn makemore_every_model_trains_on_any_words_file() {
    let dir = Scratch::new("makemore-kinds");
    let words = dir.join("words.txt");
    std::fs::write(
        &words,
        "anna\nbob\n\n  carla  \ndavid\neve\nfrank\ngina\nhal\nida\njon\nkim\n",
    )
    .unwrap();
    let words = words.to_str().unwrap();
    for kind in ["bigram", "mlp", "rnn", "gru", "lstm", "bow", "transformer"] {
        let small = [
            "--type",
            kind,
            "--input",
            words,
            "--max-steps",
            "6",
            "--eval-every",
            "3",
            "--n-embd",
            "8",
            "--n-embd2",
            "8",
            "--n-layer",
            "1",
            "--n-head",
            "2",
            "--batch-size",
            "4",
        ];
        let report = makemore::run(&makemore_args(&dir, &small)).unwrap();
        assert_eq!(report.evaluations.len(), 2, "{kind}");
        for &(_, train, test) in &report.evaluations {
            assert!(
                train.is_finite() && test.is_finite(),
                "{kind}: {:?}",
                report.evaluations
            );
        }
    }
    let missing = makemore_args(&dir, &["--input", "no/such/words.txt"]);
    let err = makemore::run(&missing).unwrap_err().to_string();
    assert!(err.contains("no/such/words.txt"), "{err}");
}

#[test]
fn makemore_export_writes_the_exportable_models_and_refuses_the_others_up_front() {
    let dir = Scratch::new("makemore-export");
    let words = dir.join("words.txt");
    std::fs::write(
        &words,
        "anna
bob
carla
david
eve
frank
gina
hal
",
    )
    .unwrap();
    for kind in ["bigram", "mlp", "rnn", "gru", "lstm", "bow", "transformer"] {
        let path = dir.join(format!("{kind}.onnx"));
        let small = [
            "--type",
            kind,
            "--input",
            words.to_str().unwrap(),
            "--max-steps",
            "2",
            "--eval-every",
            "2",
            "--n-embd",
            "8",
            "--n-embd2",
            "8",
            "--n-layer",
            "1",
            "--n-head",
            "2",
            "--export",
            path.to_str().unwrap(),
        ];
        let work = dir.join(kind);
        let outcome = makemore::run(&makemore_args(&work, &small));
        if ["bigram", "bow", "transformer"].contains(&kind) {
            outcome.unwrap();
            let onnx = std::fs::read(&path).unwrap();
            assert!(contains(&onnx, "wte.embeddings") || contains(&onnx, "logits.embeddings"));
        } else {
            let err = outcome.unwrap_err().to_string();
            assert!(
                err.contains("cannot be exported") && err.contains("no ONNX export rule"),
                "{err}"
            );
            assert!(
                !path.exists() && !work.join("loss.svg").exists(),
                "refused before training"
            );
        }
    }
}
