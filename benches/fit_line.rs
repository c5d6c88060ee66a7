//! The article's line fit: learn `y = 5x + 1` from `xs = -1..4` with one `Dense(1)` unit,
//! SGD lr 0.01 and the mean squared error, 500 epochs through `Model::fit` (verbose 0).
//!
//! `cargo bench -p tapegrad-benches --bench fit_line`. `model_fit_500_epochs` is what users run (a new model
//! each iteration, built and compiled outside the timing); `tape_hand_loop_500_epochs` is
//! the same training written directly on the tape, to show what `fit` adds.

use criterion::{BatchSize, Criterion, black_box, criterion_group, criterion_main};
use tapegrad::nn::layers::{Dense, Sequential};
use tapegrad::nn::model::{FitOptions, Loss, Model};
use tapegrad::optim::Sgd;

#[path = "common/mod.rs"]
mod common;

use common::{fit_line_by_hand, line_data};

const EPOCHS: usize = 500;

fn new_model() -> Model<f32> {
    let mut model = Model::new(Sequential::new().add(Dense::new(1)));
    model.compile(
        Sgd::new(0.01).expect("a valid learning rate"),
        Loss::mse(),
        &[],
    );
    model
}

fn fit(model: &mut Model<f32>) -> f64 {
    let (xs, ys) = line_data();
    let options = FitOptions::default().epochs(EPOCHS).verbose(0);
    let history = model.fit(&xs, &ys, options).expect("the line fit runs");
    history.loss()[EPOCHS - 1]
}

fn fit_line(c: &mut Criterion) {
    // Once, untimed: the benchmark measures a fit that actually learns the line.
    let mut model = new_model();
    fit(&mut model);
    let y = model
        .predict(&ndarray::array![[10.0_f32]], 32)
        .expect("predict runs");
    assert!((y[[0, 0]] - 51.0).abs() < 0.5, "predicted {}", y[[0, 0]]);
    let (w, b) = fit_line_by_hand(EPOCHS, 0.01);
    assert!(
        (w - 5.0).abs() < 0.1 && (b - 1.0).abs() < 0.5,
        "w = {w}, b = {b}"
    );

    let mut group = c.benchmark_group("fit_line");
    group.bench_function("model_fit_500_epochs", |bench| {
        bench.iter_batched(
            new_model,
            |mut model| black_box(fit(&mut model)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("tape_hand_loop_500_epochs", |bench| {
        bench.iter(|| black_box(fit_line_by_hand(EPOCHS, 0.01)))
    });
    group.finish();
}

criterion_group!(benches, fit_line);
criterion_main!(benches);
