//! tapegrad's side of the comparison with PyTorch and JAX (`benches/compare/run.sh` runs all
//! three sides).
//!
//! `cargo bench -p tapegrad-benches --bench compare` prints a table; `-- --json` after it
//! prints the medians as one JSON object, with the same keys as `torch_bench.py` and
//! `jax_bench.py`:
//!
//! - `mlp_step_b{32,128}_ms`: one training step of the 784-256-128-10 MLP (ReLU, softmax
//!   cross-entropy, SGD lr 0.1, f32), written on the autograd API with `tapegrad_optim::Sgd`;
//!   `mlp_step_nn_b{32,128}_ms` the same through `nn::Sequential` of `Dense` layers;
//! - `mlp_infer_b{32,128}_ms`: the forward pass under `no_grad`;
//! - `scalar_chain_ns_per_op`: `x = tanh(x * w + b)` × 334 (1,002 ops), forward + backward,
//!   per op;
//! - `fit_line_ms`: the article's 500-epoch line fit through `Model::fit`;
//!   `fit_line_hand_ms` the same loop written on the tape;
//! - `matmul_{m}x{k}x{n}_{fwd,fwd_bwd}_gflops`: `A·B` through the tape, forward alone
//!   (`2mkn` FLOPs) and forward + backward of `sum(A·B)` (`6mkn` FLOPs);
//! - `cnn_step_b{32,128}_ms`: one training step (Adam, lr 1e-3) of the Fashion-MNIST CNN of
//!   `examples/fashion_mnist.rs --model cnn` (conv 32 3×3 same → relu → maxpool 2 → conv 64
//!   3×3 same → relu → maxpool 2 → dense 128 relu → dense 10) on `(batch, 1, 28, 28)`
//!   images; `cnn_infer_b128_ms` its forward pass under `no_grad`;
//! - `conv2d_fwd_gflops`, `conv2d_fwd_bwd_gflops`: the CNN's second convolution alone,
//!   `[32, 32, 14, 14]` images by 64 filters `3×3` (padding 1, no bias) through the tape,
//!   forward (`2·N·O·OH·OW·C·kh·kw` FLOPs) and forward + both gradients of `sum(y)` (three
//!   times that).
//! - `makemore_{transformer,gru}_step_ms`: one AdamW step (lr 5e-4, weight decay 0.01, betas
//!   0.9/0.99) of makemore's Transformer and GRU language models
//!   (`tapegrad::models::makemore`, the models of `examples/makemore.rs`) on 32 random rows of
//!   `data/names/names.txt`; `makemore_{transformer,gru}_sample_ms` sampling 10 names (15
//!   forward passes over the growing prefix under `no_grad`, softmax and a categorical draw).
//! - `*_faults` (tapegrad's side only): the minor page faults per step, once warm, of the
//!   MLP through `nn` (batches 32 and 128), the CNN (32 and 128), makemore's Transformer and
//!   the line fit's hand-written loop (per epoch), from `getrusage` (every thread).
//!
//! `-- --only GROUP[,GROUP…]` measures only some groups of figures (see [`GROUPS`]).
//!
//! Every figure is the median of many timed repetitions. Run without `--bench` (as
//! `cargo test -p tapegrad-benches --benches` does) it only checks that each workload runs, with a few
//! repetitions.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ndarray::{ArrayD, Axis, arr0};
use tapegrad::autograd::{Conv2dOptions, Param, Tape};
use tapegrad::models::makemore::{Config as MakemoreConfig, Kind, language_model};
use tapegrad::models::small_cnn;
use tapegrad::nn::data::{CharVocab, block_size as longest_row, encode_rows, read_words};
use tapegrad::nn::layers::{Dense, Sequential};
use tapegrad::nn::losses::{CrossEntropy, cross_entropy};
use tapegrad::nn::model::{FitOptions, Loss, Model};
use tapegrad::nn::sampling::{Sampling, sample_categorical};
use tapegrad::nn::{Module, losses};
use tapegrad::optim::AdamWConfig;
use tapegrad::optim::{Adam, Sgd};
use tapegrad::rand::rngs::StdRng;
use tapegrad::rand::{Rng, SeedableRng};

#[path = "../common/mod.rs"]
mod common;

use common::{
    CHAIN_LINKS, Mlp, faults_per_step, fit_line_by_hand, flat_labels, line_data, matrix,
    mnist_like, scalar_chain, sequential,
};

/// How long each figure is measured for, and the fewest repetitions.
#[derive(Clone, Copy)]
struct Budget {
    time: Duration,
    min_reps: usize,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Runs `f` (after `warmup` untimed calls) until the budget is spent; the median seconds.
fn time_median(budget: Budget, warmup: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < budget.min_reps || start.elapsed() < budget.time {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64());
    }
    median(samples)
}

const LR: f32 = 0.1;
const POOL: usize = 16;
/// Steps per block: each block restarts from the initial weights (as in torch_bench.py).
const BLOCK: usize = 20;

fn mlp_step(budget: Budget, batch: usize) -> f64 {
    let data = mnist_like(batch, POOL, 11);
    let init = Mlp::new(42);
    let mut mlp = Mlp::new(42);
    let mut sgd = Sgd::<f32>::new(f64::from(LR)).expect("a valid learning rate");
    let mut samples = Vec::new();
    let start = Instant::now();
    let mut i = 0;
    while samples.len() < budget.min_reps * BLOCK || start.elapsed() < budget.time {
        mlp.copy_from(&init);
        for step in 0..BLOCK + 2 {
            let (x, y) = &data[i % POOL];
            i += 1;
            let t = Instant::now();
            let (grads, loss) = mlp.grads(x, y);
            sgd.step(mlp.params_mut(), &grads)
                .expect("finite gradients");
            black_box(loss);
            if step >= 2 {
                samples.push(t.elapsed().as_secs_f64());
            }
        }
    }
    median(samples)
}

/// One training step of the MLP through `nn::Sequential` (SGD) on the next of `POOL`
/// batches, each call (without `mlp_step_nn`'s restarts from the initial weights).
fn mlp_nn_stepper(batch: usize) -> impl FnMut() {
    let data = mnist_like(batch, POOL, 11);
    let labels: Vec<Vec<usize>> = data.iter().map(|(_, y)| flat_labels(y)).collect();
    let mut model = sequential(42);
    let mut sgd = Sgd::<f32>::new(f64::from(LR)).expect("a valid learning rate");
    let mut i = 0;
    move || {
        let (x, _) = &data[i % POOL];
        let grads = {
            let tape = Tape::new();
            let logits = model.forward(tape.constant_ref(x));
            let loss = losses::sparse_categorical_cross_entropy_indices(logits, &labels[i % POOL]);
            black_box(loss.item());
            loss.backward()
        };
        sgd.step(model.params_mut(), &grads)
            .expect("finite gradients");
        i += 1;
    }
}

fn mlp_step_nn(budget: Budget, batch: usize) -> f64 {
    let data = mnist_like(batch, POOL, 11);
    let labels: Vec<Vec<usize>> = data.iter().map(|(_, y)| flat_labels(y)).collect();
    let mut model = sequential(42);
    let init: Vec<ArrayD<f32>> = model.params().iter().map(|p| p.value().clone()).collect();
    let mut sgd = Sgd::<f32>::new(f64::from(LR)).expect("a valid learning rate");
    let mut samples = Vec::new();
    let start = Instant::now();
    let mut i = 0;
    while samples.len() < budget.min_reps * BLOCK || start.elapsed() < budget.time {
        for (p, v) in model.params_mut().into_iter().zip(&init) {
            p.value_mut().assign(v);
        }
        for step in 0..BLOCK + 2 {
            let (x, _) = &data[i % POOL];
            let t = Instant::now();
            let grads = {
                let tape = Tape::new();
                let logits = model.forward(tape.constant_ref(x));
                let loss =
                    losses::sparse_categorical_cross_entropy_indices(logits, &labels[i % POOL]);
                black_box(loss.item());
                loss.backward()
            };
            sgd.step(model.params_mut(), &grads)
                .expect("finite gradients");
            if step >= 2 {
                samples.push(t.elapsed().as_secs_f64());
            }
            i += 1;
        }
    }
    median(samples)
}

fn mlp_infer(budget: Budget, batch: usize) -> f64 {
    let data = mnist_like(batch, 1, 13);
    let mlp = Mlp::new(42);
    time_median(budget, 5, || {
        black_box(mlp.predict(&data[0].0));
    })
}

fn scalar_chain_ns(budget: Budget) -> f64 {
    let w = Param::new("w", arr0(0.9_f32).into_dyn());
    let b = Param::new("b", arr0(0.1_f32).into_dyn());
    let per_run = time_median(budget, 20, || {
        black_box(scalar_chain(&w, &b));
    });
    per_run / (CHAIN_LINKS * 3) as f64
}

fn fit_line(budget: Budget) -> f64 {
    let (xs, ys) = line_data();
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < budget.min_reps || start.elapsed() < budget.time {
        let mut model = Model::new(Sequential::new().add(Dense::new(1)));
        model.compile(
            Sgd::new(0.01).expect("a valid learning rate"),
            Loss::mse(),
            &[],
        );
        let t = Instant::now();
        let history = model
            .fit(&xs, &ys, FitOptions::default().epochs(500).verbose(0))
            .expect("the line fit runs");
        samples.push(t.elapsed().as_secs_f64());
        black_box(history.epochs());
    }
    median(samples)
}

fn fit_line_hand(budget: Budget) -> f64 {
    time_median(budget, 2, || {
        black_box(fit_line_by_hand(500, 0.01));
    })
}

/// The CNN of `examples/fashion_mnist.rs --model cnn` ([`small_cnn`]), built for
/// `(1, 28, 28)` images.
fn cnn(seed: u64) -> Sequential<f32> {
    small_cnn(28, 28).seed(seed).with_input_shape(&[1, 28, 28])
}

/// `mnist_like` batches as `(batch, 1, 28, 28)` images with flat labels.
fn image_batches(batch: usize, batches: usize, seed: u64) -> Vec<(ArrayD<f32>, Vec<usize>)> {
    mnist_like(batch, batches, seed)
        .into_iter()
        .map(|(x, y)| {
            let x = x
                .into_shape_with_order(vec![batch, 1, 28, 28])
                .expect("784 pixels an image");
            (x, flat_labels(&y))
        })
        .collect()
}

fn cnn_step(budget: Budget, batch: usize) -> f64 {
    time_median(budget, 2, cnn_stepper(batch))
}

/// One training step of the CNN on the next of `POOL` batches, each call.
fn cnn_stepper(batch: usize) -> impl FnMut() {
    let data = image_batches(batch, POOL, 11);
    let mut model = cnn(42);
    let mut adam = Adam::<f32>::new(1e-3).expect("a valid learning rate");
    let mut i = 0;
    move || {
        let (x, y) = &data[i % POOL];
        i += 1;
        let grads = {
            let tape = Tape::new();
            let loss = losses::sparse_categorical_cross_entropy_indices(
                model.forward(tape.constant_ref(x)),
                y,
            );
            black_box(loss.item());
            loss.backward()
        };
        adam.step(model.params_mut(), &grads)
            .expect("finite gradients");
    }
}

fn cnn_infer(budget: Budget, batch: usize) -> f64 {
    let data = image_batches(batch, 1, 13);
    let model = cnn(42);
    time_median(budget, 2, || {
        let tape = Tape::new();
        tape.no_grad(|| {
            let logits = model.forward(tape.constant_ref(&data[0].0));
            black_box(logits.value()[[0, 0]]);
        });
    })
}

/// The second convolution of the CNN alone: `[32, 32, 14, 14]` by `[64, 32, 3, 3]`, padding
/// 1, forward (`fwd_bwd` false) or forward + the input and weight gradients of `sum(y)`, in
/// GFLOP/s counting `2·N·O·OH·OW·C·kh·kw` FLOPs per product.
fn conv2d_gflops(budget: Budget, fwd_bwd: bool) -> f64 {
    let x = matrix(32 * 32, 14 * 14, 17).into_shape_with_order(vec![32, 32, 14, 14]);
    let w = matrix(64, 32 * 9, 5).into_shape_with_order(vec![64, 32, 3, 3]);
    let x = Param::new("x", x.expect("32 · 32 · 196 elements"));
    let w = Param::new("w", w.expect("64 · 288 elements"));
    let options = Conv2dOptions::default().padding(1);
    let secs = time_median(budget, 3, || {
        let tape = Tape::new();
        let y = tape.param(&x).conv2d(tape.param(&w), None, &options);
        if fwd_bwd {
            black_box(y.sum().backward().num_params());
        } else {
            black_box(y.value()[[0, 0, 0, 0]]);
        }
    });
    let products = if fwd_bwd { 3.0 } else { 1.0 };
    products * 2.0 * (32 * 64 * 14 * 14 * 32 * 9) as f64 / secs / 1e9
}

/// The groups of figures `--only` selects (the same names as in `torch_bench.py`):
/// `matmul` is 128×784×256 and 32×784×256, `matmul_large` 1024³; `cnn` the CNN's steps
/// and inference; `faults` (tapegrad's side only) the minor page faults per training step.
const GROUPS: [&str; 11] = [
    "mlp_b32",
    "mlp_b128",
    "infer",
    "chain",
    "fit_line",
    "matmul",
    "matmul_large",
    "cnn",
    "conv",
    "makemore",
    "faults",
];

const MATMULS: [(usize, usize, usize); 3] = [(128, 784, 256), (32, 784, 256), (1024, 1024, 1024)];

fn matmul_fwd(budget: Budget, (m, k, n): (usize, usize, usize)) -> f64 {
    let a = Param::new("a", matrix(m, k, 1));
    let b = Param::new("b", matrix(k, n, 2));
    let secs = time_median(budget, 3, || {
        let tape = Tape::new();
        let y = tape.param(&a).matmul(tape.param(&b));
        black_box(y.value()[[0, 0]]);
    });
    2.0 * (m * k * n) as f64 / secs / 1e9
}

fn matmul_fwd_bwd(budget: Budget, (m, k, n): (usize, usize, usize)) -> f64 {
    let a = Param::new("a", matrix(m, k, 1));
    let b = Param::new("b", matrix(k, n, 2));
    let secs = time_median(budget, 3, || {
        let tape = Tape::new();
        let y = tape.param(&a).matmul(tape.param(&b)).sum();
        black_box(y.backward().num_params());
    });
    6.0 * (m * k * n) as f64 / secs / 1e9
}

/// makemore's rows of `data/names/names.txt` (`x`, `y` as `[words, block]`), its vocabulary
/// size and block size.
fn names_rows() -> (ndarray::Array2<f32>, ndarray::Array2<f32>, usize, usize) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/names/names.txt");
    let words = read_words(path).expect("data/names/names.txt");
    let vocab = CharVocab::new(&words);
    let block = longest_row(&words);
    let (x, y) = encode_rows::<f32, _>(&words, &vocab, block).expect("known characters");
    (x, y, vocab.len(), block)
}

/// A built makemore model of `kind` for names.txt, seeded.
fn makemore_model(kind: Kind, vocab: usize, block: usize) -> Box<dyn Module<f32> + Send + Sync> {
    let mut model = language_model::<f32>(kind, &MakemoreConfig::new(vocab, block));
    model.build(&[block], &mut StdRng::seed_from_u64(3407));
    model
}

fn makemore_step(budget: Budget, kind: Kind) -> f64 {
    time_median(budget, 3, makemore_stepper(kind))
}

/// One AdamW step of makemore's `kind` model on 32 random rows, each call.
fn makemore_stepper(kind: Kind) -> impl FnMut() {
    let (x, y, vocab, block) = names_rows();
    let mut model = makemore_model(kind, vocab, block);
    let mut opt = AdamWConfig::new(5e-4)
        .betas(0.9, 0.99)
        .eps(1e-8)
        .weight_decay(0.01)
        .build()
        .expect("valid hyper-parameters");
    let mut rng = StdRng::seed_from_u64(3407);
    let mut rows = vec![0; 32];
    move || {
        for r in &mut rows {
            *r = rng.random_range(0..x.nrows());
        }
        let xb = x.select(Axis(0), &rows).into_dyn();
        let yb: Vec<i64> = y.select(Axis(0), &rows).iter().map(|&v| v as i64).collect();
        let grads = {
            let tape = Tape::new();
            let loss = cross_entropy(
                model.forward(tape.constant(xb)),
                &yb,
                CrossEntropy::default(),
            );
            black_box(loss.item());
            loss.backward()
        };
        opt.step(model.params_mut(), &grads)
            .expect("finite gradients");
    }
}

fn makemore_sample(budget: Budget, kind: Kind) -> f64 {
    let (_, _, vocab, block) = names_rows();
    let model = makemore_model(kind, vocab, block);
    let mut rng = StdRng::seed_from_u64(3407);
    let sampling = Sampling::default();
    time_median(budget, 2, || {
        let mut rows = ndarray::Array2::<f32>::zeros((10, 1));
        for _ in 0..block - 1 {
            let tape = Tape::new();
            let next = tape.no_grad(|| {
                let logits = model.forward(tape.constant(rows.clone().into_dyn()));
                let t = logits.shape()[1];
                let last = logits.value().index_axis(Axis(1), t - 1).to_owned();
                let last = last
                    .into_dimensionality::<ndarray::Ix2>()
                    .expect("[rows, vocab]");
                sample_categorical(last.view(), &sampling, &mut rng)
            });
            let column = ndarray::Array2::from_shape_fn((10, 1), |(i, _)| next[i] as f32);
            rows = ndarray::concatenate![Axis(1), rows, column];
        }
        black_box(rows[[0, 1]]);
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then a quick check.
    let full = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--quick");
    let (short, long) = if full {
        (
            Budget {
                time: Duration::from_millis(1500),
                min_reps: 10,
            },
            Budget {
                time: Duration::from_millis(2500),
                min_reps: 5,
            },
        )
    } else {
        (
            Budget {
                time: Duration::ZERO,
                min_reps: 1,
            },
            Budget {
                time: Duration::ZERO,
                min_reps: 1,
            },
        )
    };

    // `--only GROUP[,GROUP…]` measures some groups (what `run.sh` uses to interleave the
    // two sides figure by figure); the default is every group.
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        // A missing list reads as one empty group name, which is refused below (rather
        // than silently measuring every group).
        .map(|i| args.get(i + 1).map_or("", String::as_str))
        .map(|list| list.split(',').map(str::to_owned).collect());
    if let Some(unknown) = only
        .iter()
        .flatten()
        .find(|g| !GROUPS.contains(&g.as_str()))
    {
        eprintln!("unknown group `{unknown}`; the groups are {GROUPS:?}");
        std::process::exit(2);
    }
    let wanted = |group: &str| match &only {
        None => true,
        Some(groups) => groups.iter().any(|g| g == group),
    };

    let mut figures: Vec<(String, f64)> = Vec::new();
    let mut record = |name: String, value: f64| {
        if !json {
            println!("{name:<36} {value:>12.4}");
        }
        figures.push((name, value));
    };
    for batch in [32, 128] {
        if !wanted(&format!("mlp_b{batch}")) {
            continue;
        }
        record(
            format!("mlp_step_b{batch}_ms"),
            mlp_step(short, batch) * 1e3,
        );
        record(
            format!("mlp_step_nn_b{batch}_ms"),
            mlp_step_nn(short, batch) * 1e3,
        );
    }
    if wanted("infer") {
        for batch in [32, 128] {
            record(
                format!("mlp_infer_b{batch}_ms"),
                mlp_infer(short, batch) * 1e3,
            );
        }
    }
    if wanted("chain") {
        record(
            "scalar_chain_ns_per_op".into(),
            scalar_chain_ns(short) * 1e9,
        );
    }
    if wanted("fit_line") {
        record("fit_line_ms".into(), fit_line(long) * 1e3);
        record("fit_line_hand_ms".into(), fit_line_hand(long) * 1e3);
    }
    for size in MATMULS {
        let (m, k, n) = size;
        let large = m * k * n >= 1 << 28;
        if !wanted(if large { "matmul_large" } else { "matmul" }) {
            continue;
        }
        let budget = if large { long } else { short };
        record(
            format!("matmul_{m}x{k}x{n}_fwd_gflops"),
            matmul_fwd(budget, size),
        );
        record(
            format!("matmul_{m}x{k}x{n}_fwd_bwd_gflops"),
            matmul_fwd_bwd(budget, size),
        );
    }
    if wanted("cnn") {
        for batch in [32, 128] {
            record(format!("cnn_step_b{batch}_ms"), cnn_step(long, batch) * 1e3);
        }
        record("cnn_infer_b128_ms".into(), cnn_infer(long, 128) * 1e3);
    }
    if wanted("conv") {
        record("conv2d_fwd_gflops".into(), conv2d_gflops(short, false));
        record("conv2d_fwd_bwd_gflops".into(), conv2d_gflops(short, true));
    }

    if wanted("makemore") {
        for kind in [Kind::Transformer, Kind::Gru] {
            let name = kind.name();
            record(
                format!("makemore_{name}_step_ms"),
                makemore_step(long, kind) * 1e3,
            );
            record(
                format!("makemore_{name}_sample_ms"),
                makemore_sample(long, kind) * 1e3,
            );
        }
    }

    if wanted("faults") {
        // Minor page faults per training step once warm (every thread of the process),
        // counted, not timed: what the buffer pool leaves to the operating system.
        let steps = if full { 50 } else { 3 };
        for batch in [32, 128] {
            let faults = faults_per_step(5, steps, mlp_nn_stepper(batch));
            record(format!("mlp_step_nn_b{batch}_faults"), faults);
            let faults = faults_per_step(5, steps, cnn_stepper(batch));
            record(format!("cnn_step_b{batch}_faults"), faults);
        }
        let faults = faults_per_step(5, steps, makemore_stepper(Kind::Transformer));
        record("makemore_transformer_step_faults".into(), faults);
        let epochs = || {
            black_box(fit_line_by_hand(500, 0.01));
        };
        let faults = faults_per_step(1, steps, epochs) / 500.0;
        record("fit_line_hand_faults".into(), faults);
    }

    if json {
        let body: Vec<String> = figures
            .iter()
            .map(|(name, value)| format!("  \"{name}\": {value:.6}"))
            .collect();
        println!("{{\n{}\n}}", body.join(",\n"));
    }
}
