//! Making up names: makemore's character-level language models (karpathy/makemore) trained
//! on `names.txt` (32,032 names) and sampled. Each model reads a name one character at a
//! time and predicts the next; sampling draws one character after another until the end
//! token.
//!
//! Same data, split, models, sizes and optimizer as `makemore.py`: the last 1,000 words of a
//! seeded shuffle held out, rows `x = [start, word]`, `y = [word, end]` with the rest of `y`
//! ignored (-1) by the masked cross-entropy, AdamW (lr 5e-4, weight decay 0.01, betas 0.9 /
//! 0.99, eps 1e-8), batches of 32 drawn at random. Every 500 steps: the train and test loss
//! and ten samples, each marked new or seen; the best model (lowest test loss) is saved.
//!
//! ```sh
//! cargo run --release --example makemore                        # the transformer, 2,000 steps
//! cargo run --release --example makemore -- --type gru --max-steps 5000
//! cargo run --release --example makemore -- --sample-only       # load the saved model, print 50 names
//! cargo run --release --example makemore -- --input words.txt   # any file of one word per line
//! cargo run --release --example makemore -- --backup target/makemore/backup  # resumable when killed
//! cargo run --release --example makemore -- --export makemore.onnx  # for ONNX runtimes
//! cargo run --release --example makemore -- --help
//! ```

use std::collections::HashSet;
use std::error::Error;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array2, ArrayD, Axis, s};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad::autograd::Tape;
use tapegrad::models::makemore::{Config, Kind, language_model};
use tapegrad::nn::Module;
use tapegrad::nn::data::{
    CharVocab, block_size as longest_row, encode_rows, read_words, split_last,
};
use tapegrad::nn::io::{load_weights, save_weights};
use tapegrad::nn::losses::{CrossEntropy, cross_entropy};
use tapegrad::nn::module::assign_paths;
use tapegrad::nn::onnx;
use tapegrad::nn::sampling::{Sampling, sample_categorical};
use tapegrad::nn::tensorboard::SummaryWriter;
use tapegrad::optim::AdamWConfig;

// A file of its own beside this one; the path is spelled out so that `tests/examples.rs`,
// which includes this file with `#[path]`, finds it too.
#[path = "makemore/backup.rs"]
pub mod backup;
use backup::{Backup, continue_stream};

/// Train one of makemore's language models on a file of words and make up new ones.
#[derive(Parser, Debug, Clone)]
#[command(name = "makemore", version)]
pub struct Args {
    /// The words to learn from, one per line
    #[arg(
        long,
        short = 'i',
        value_name = "FILE",
        default_value = "data/names/names.txt"
    )]
    pub input: PathBuf,
    /// Where the best model (model.safetensors) and the loss curves (loss.svg) go
    #[arg(
        long,
        short = 'o',
        value_name = "DIR",
        default_value = "target/makemore"
    )]
    pub work_dir: PathBuf,
    /// Which model: makemore's types (bigram, mlp, rnn, gru, bow, transformer) or an LSTM
    #[arg(long = "type", default_value = "transformer", value_parser = model_kind)]
    pub model_type: Kind,
    /// Gradient steps to take
    #[arg(long, default_value_t = 2000)]
    pub max_steps: usize,
    /// Seeds the split, the initial weights, the batches and the samples
    #[arg(long, default_value_t = 3407)]
    pub seed: u64,
    /// Load the saved model from the work dir, print 50 samples and stop
    #[arg(long)]
    pub sample_only: bool,
    /// Sample only from the k most likely characters (default: all)
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Rows per gradient step
    #[arg(long, short = 'b', default_value_t = 32)]
    pub batch_size: usize,
    /// AdamW's learning rate
    #[arg(long, short = 'l', default_value_t = 5e-4)]
    pub learning_rate: f64,
    /// AdamW's decoupled weight decay
    #[arg(long, short = 'w', default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Evaluate, sample and checkpoint every this many steps
    #[arg(long, default_value_t = 500)]
    pub eval_every: usize,
    /// Transformer blocks
    #[arg(long, default_value_t = 4)]
    pub n_layer: usize,
    /// Attention heads
    #[arg(long, default_value_t = 4)]
    pub n_head: usize,
    /// Embedding width
    #[arg(long, default_value_t = 64)]
    pub n_embd: usize,
    /// Hidden width (mlp, rnn, gru, lstm, bow)
    #[arg(long, default_value_t = 64)]
    pub n_embd2: usize,
    /// Back up the whole training state into DIR every --backup-every steps and at the end;
    /// a run killed and started again with the same arguments resumes there and ends with
    /// the same bytes (the backup is deleted once training ends, unless --keep-backup)
    #[arg(long, value_name = "DIR")]
    pub backup: Option<PathBuf>,
    /// Steps between backups (0: at the end only)
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub backup_every: usize,
    /// Keep the backup once training ends (a run with a larger --max-steps continues it)
    #[arg(long)]
    pub keep_backup: bool,
    /// Log the train and test losses of each evaluation for TensorBoard into DIR
    /// (`tensorboard --logdir DIR`), as makemore's `Loss/train` and `Loss/test`
    #[arg(long, value_name = "DIR")]
    pub logdir: Option<PathBuf>,
    /// Export the model, once trained (or loaded with --sample-only), to PATH as an ONNX file
    /// for inference runtimes: input `input`, rows of block-size token indices (as floats)
    /// with any number of rows; output `output`, the next-token logits at every position.
    /// The bigram, bow and transformer models export
    #[arg(long, value_name = "PATH")]
    pub export: Option<PathBuf>,
}

/// `--type`'s parser: a makemore model name.
fn model_kind(name: &str) -> Result<Kind, String> {
    Kind::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        format!(
            "unknown model type `{name}`; the types are {}",
            names.join(", ")
        )
    })
}

/// Words held out for testing (makemore: 10 % of the words, at most 1,000).
const MAX_TEST_WORDS: usize = 1000;
/// Rows per evaluation batch, and batches of training rows the train loss averages.
const EVAL_BATCH: usize = 100;
const EVAL_TRAIN_BATCHES: usize = 10;

type Model = Box<dyn Module<f32> + Send + Sync>;

/// The words of one split, encoded as makemore's rows.
pub struct Split {
    /// The words, for telling samples seen in training from new ones.
    pub words: HashSet<String>,
    /// `[rows, block_size]`: the start token, then the word, then zeros.
    pub x: Array2<f32>,
    /// `[rows, block_size]`: the word, the end token, then -1 (ignored).
    pub y: Array2<f32>,
}

/// What a run printed and measured.
#[derive(Debug)]
pub struct Report {
    /// `(step, train loss, test loss)` at each evaluation.
    pub evaluations: Vec<(usize, f64, f64)>,
    /// The median step time in milliseconds.
    pub median_step_ms: f64,
    /// The number of trainable parameters.
    pub num_params: usize,
}

#[allow(dead_code)] // tests call `run` directly
fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reads the words, splits them, encodes them: the vocabulary, the block size and the two
/// splits.
pub fn load_data(
    input: &Path,
    seed: u64,
) -> Result<(CharVocab, usize, Split, Split), Box<dyn Error>> {
    let words = read_words(input)?;
    let vocab = CharVocab::new(&words);
    let block_size = longest_row(&words);
    let n_test = MAX_TEST_WORDS.min(words.len() / 10).max(1);
    let (train, test) = split_last(&words, n_test, seed);
    let encode = |words: Vec<String>| -> Result<Split, Box<dyn Error>> {
        let (x, y) = encode_rows::<f32, _>(&words, &vocab, block_size)?;
        Ok(Split {
            words: words.into_iter().collect(),
            x,
            y,
        })
    };
    let (train, test) = (encode(train)?, encode(test)?);
    Ok((vocab, block_size, train, test))
}

/// Trains (or, with `--sample-only`, loads) and samples, printing as it goes.
pub fn run(args: &Args) -> Result<Report, Box<dyn Error>> {
    run_with(args, &mut |_| {})
}

/// [`run`], calling `after_step` with the number of steps taken after each step (and its
/// evaluation and backup).
pub fn run_with(args: &Args, after_step: &mut dyn FnMut(usize)) -> Result<Report, Box<dyn Error>> {
    let (vocab, block_size, train, test) = load_data(&args.input, args.seed)?;
    println!(
        "{} words ({} for training, {} held out), {} symbols, block size {block_size}",
        train.x.nrows() + test.x.nrows(),
        train.x.nrows(),
        test.x.nrows(),
        vocab.len()
    );
    let config = Config {
        n_layer: args.n_layer,
        n_head: args.n_head,
        n_embd: args.n_embd,
        n_embd2: args.n_embd2,
        ..Config::new(vocab.len(), block_size)
    };
    let kind = args.model_type;
    let mut model: Model = language_model(kind, &config);
    let mut build_rng = StdRng::seed_from_u64(args.seed);
    model.build(&[block_size], &mut build_rng);
    // The rest of the stream (rows, samples), from a generator whose position a backup saves.
    let mut rng = continue_stream(&build_rng, args.seed)?;
    assign_paths(&mut model);
    let num_params = model.num_params();
    println!("model: {}, {num_params} parameters", kind.name());
    if args.export.is_some() {
        // Before training: a model without an export rule is refused now, naming it.
        onnx::to_model(&model, &[block_size]).map_err(|e| {
            format!(
                "--export: the {} model cannot be exported: {e}",
                kind.name()
            )
        })?;
    }
    std::fs::create_dir_all(&args.work_dir)?;
    let checkpoint = args.work_dir.join("model.safetensors");

    let sampling = Sampling {
        top_k: args.top_k,
        ..Sampling::default()
    };
    if args.sample_only {
        load_weights(&checkpoint, &mut model.params_mut())?;
        let names = sample(
            &model,
            kind.context(&config),
            block_size,
            50,
            &sampling,
            &mut rng,
        );
        print_samples(&names, &vocab, &train, &test);
        export(args, &model, block_size)?;
        return Ok(Report {
            evaluations: Vec::new(),
            median_step_ms: f64::NAN,
            num_params,
        });
    }

    let mut optimizer = AdamWConfig::new(args.learning_rate)
        .betas(0.9, 0.99)
        .eps(1e-8)
        .weight_decay(args.weight_decay)
        .build()?;
    let backup = args
        .backup
        .as_ref()
        .map(|dir| Backup::new(dir, args.backup_every, args.keep_backup));
    let (mut first_step, mut evaluations) = (0, Vec::new());
    if let Some(backup) = &backup
        && let Some(resumed) = backup.resume(&mut model, &mut optimizer, &mut rng, args.seed)?
    {
        let path = backup.path();
        println!(
            "resumed from {} after step {}",
            path.display(),
            resumed.steps
        );
        (first_step, evaluations) = (resumed.steps, resumed.evaluations);
    }
    // The lowest test loss so far (the saved model's).
    let mut best = evaluations
        .iter()
        .map(|e| e.2)
        .fold(f64::INFINITY, f64::min);
    let bar = progress_bar(args.max_steps);
    bar.set_position(first_step.min(args.max_steps) as u64);
    let mut step_ms = Vec::with_capacity(args.max_steps);
    let mut rows = vec![0; args.batch_size];
    let mut writer = match &args.logdir {
        Some(dir) => Some(SummaryWriter::new(dir)?),
        None => None,
    };
    for step in first_step..args.max_steps {
        let started = Instant::now();
        for row in &mut rows {
            *row = rng.random_range(0..train.x.nrows());
        }
        let (loss, grads) = {
            let tape = Tape::new();
            let x = tape.constant(train.x.select(Axis(0), &rows).into_dyn());
            let targets = targets(&train.y.select(Axis(0), &rows).into_dyn());
            let loss = cross_entropy(model.forward(x), &targets, CrossEntropy::default());
            (loss.item(), loss.backward())
        }; // the tape is gone: the parameters may change
        optimizer.step(model.params_mut(), &grads)?;
        step_ms.push(started.elapsed().as_secs_f64() * 1e3);
        bar.set_message(format!("loss {loss:.4}"));
        bar.inc(1);

        let done = step + 1;
        if done % args.eval_every == 0 || done == args.max_steps {
            let train_loss = mean_loss(&model, &train, EVAL_TRAIN_BATCHES, &mut rng);
            let test_loss = mean_loss(&model, &test, usize::MAX, &mut rng);
            evaluations.push((done, train_loss, test_loss));
            if let Some(writer) = writer.as_mut() {
                writer.add_scalar("Loss/train", train_loss, done)?;
                writer.add_scalar("Loss/test", test_loss, done)?;
                writer.flush()?;
            }
            bar.suspend(|| -> Result<(), Box<dyn Error>> {
                println!("step {done}: train loss {train_loss:.4}, test loss {test_loss:.4}");
                if test_loss < best {
                    best = test_loss;
                    save_weights(&checkpoint, &model.params())?;
                    println!("  best so far, saved to {}", checkpoint.display());
                }
                let names = sample(
                    &model,
                    kind.context(&config),
                    block_size,
                    10,
                    &sampling,
                    &mut rng,
                );
                print_samples(&names, &vocab, &train, &test);
                Ok(())
            })?;
        }
        if let Some(backup) = backup.as_ref().filter(|b| b.due(done, args.max_steps)) {
            backup.save(&mut model, &optimizer, &rng, args.seed, done, &evaluations)?;
        }
        after_step(done);
    }
    bar.finish_and_clear();
    if let Some(backup) = &backup {
        backup.finish()?;
    }
    let median_step_ms = median(&mut step_ms);
    println!(
        "{} steps, median step {median_step_ms:.2} ms; best test loss {best:.4}; peak memory {}",
        args.max_steps,
        peak_rss().map_or("unknown".into(), |kb| format!("{} MB", kb / 1024))
    );
    let svg = args.work_dir.join("loss.svg");
    plot_losses(&evaluations, kind.name(), &svg)?;
    println!("loss curves: {}", svg.display());
    export(args, &model, block_size)?;
    Ok(Report {
        evaluations,
        median_step_ms,
        num_params,
    })
}

/// `--export`: writes `model` as an ONNX file for rows of `block_size` tokens.
fn export(args: &Args, model: &Model, block_size: usize) -> Result<(), Box<dyn Error>> {
    if let Some(path) = &args.export {
        onnx::export(model, &[block_size], path)
            .map_err(|e| format!("cannot export the model to {}: {e}", path.display()))?;
        println!(
            "model exported to {} (ONNX opset {}: rows of {block_size} tokens in, next-token \
             logits out)",
            path.display(),
            onnx::OPSET_VERSION
        );
    }
    Ok(())
}

/// The targets of a `[rows, T]` batch as integers, `-1` for the ignored positions.
fn targets(y: &ArrayD<f32>) -> Vec<i64> {
    y.iter().map(|&v| v as i64).collect()
}

/// The mean masked cross-entropy over the split's rows in batches of [`EVAL_BATCH`]: all
/// rows in order when `batches` covers them, else `batches` batches of random rows.
fn mean_loss(model: &Model, split: &Split, batches: usize, rng: &mut impl Rng) -> f64 {
    let n = split.x.nrows();
    let rows: Vec<usize> = if batches.saturating_mul(EVAL_BATCH) >= n {
        (0..n).collect()
    } else {
        (0..batches * EVAL_BATCH)
            .map(|_| rng.random_range(0..n))
            .collect()
    };
    let mut total = 0.0;
    for chunk in rows.chunks(EVAL_BATCH) {
        let tape = Tape::new();
        let loss = tape.no_grad(|| {
            let x = tape.constant(split.x.select(Axis(0), chunk).into_dyn());
            let y = targets(&split.y.select(Axis(0), chunk).into_dyn());
            cross_entropy(model.forward(x), &y, CrossEntropy::default()).item()
        });
        total += f64::from(loss) * chunk.len() as f64;
    }
    total / rows.len() as f64
}

/// `count` rows sampled one character at a time from the start token, each step reading at
/// most the last `context` characters (makemore's `generate`, without the start token).
pub fn sample(
    model: &Model,
    context: usize,
    block_size: usize,
    count: usize,
    sampling: &Sampling,
    rng: &mut (impl Rng + ?Sized),
) -> Vec<Vec<usize>> {
    let mut rows = Array2::<f32>::zeros((count, 1));
    for _ in 0..block_size - 1 {
        let t = rows.ncols();
        let window = rows.slice(s![.., t.saturating_sub(context)..]).to_owned();
        let tape = Tape::new();
        let next = tape.no_grad(|| {
            let logits = model.forward(tape.constant(window.into_dyn()));
            let last = logits
                .value()
                .index_axis(Axis(1), logits.shape()[1] - 1)
                .to_owned();
            let last = last
                .into_dimensionality::<ndarray::Ix2>()
                .expect("[rows, vocab]");
            sample_categorical(last.view(), sampling, rng)
        });
        let column = Array2::from_shape_fn((count, 1), |(i, _)| next[i] as f32);
        rows = ndarray::concatenate![Axis(1), rows, column];
    }
    rows.rows()
        .into_iter()
        .map(|row| {
            row.iter()
                .skip(1)
                .map(|&v| v as usize)
                .take_while(|&v| v != 0)
                .collect()
        })
        .collect()
}

/// Prints the sampled names, each marked as seen in training, in the test set, or new.
fn print_samples(names: &[Vec<usize>], vocab: &CharVocab, train: &Split, test: &Split) {
    for row in names {
        let word = vocab.decode(row);
        let mark = if train.words.contains(&word) {
            "in train"
        } else if test.words.contains(&word) {
            "in test"
        } else {
            "new"
        };
        println!("  {word:<16} {mark}");
    }
}

fn progress_bar(steps: usize) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} steps {elapsed_precise} ({eta} left) {msg}",
        )
        .expect("a valid template"),
    );
    bar
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The process's peak resident memory in KiB (`VmHWM` of `/proc/self/status`), where
/// Linux reports it.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The train and test losses at each evaluation, as an SVG.
fn plot_losses(
    evaluations: &[(usize, f64, f64)],
    name: &str,
    path: &Path,
) -> Result<(), Box<dyn Error>> {
    use plotters::prelude::*;

    if evaluations.is_empty() {
        return Ok(());
    }
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let last_step = evaluations.last().map_or(1, |e| e.0) as f64;
    let losses = evaluations.iter().flat_map(|e| [e.1, e.2]);
    let (low, high) = losses.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let pad = ((high - low) * 0.1).max(0.01);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("makemore {name}: mean masked cross-entropy"),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..last_step, (low - pad)..(high + pad))?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("loss")
        .draw()?;
    for (label, color, pick) in [("train", BLUE, 1usize), ("test", RED, 2usize)] {
        let points = evaluations.iter().map(|e| {
            let v = if pick == 1 { e.1 } else { e.2 };
            (e.0 as f64, v)
        });
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
