//! Profiling helper: the article's line fit (`Dense(1)`, SGD lr 0.01, MSE, 500 epochs
//! through `Model::fit`), repeated. `cargo run --release -p tapegrad-nn --features profiling
//! --example fit_profile -- 200`, or under `valgrind --tool=callgrind`.
use ndarray::Array2;
use tapegrad_nn::layers::{Dense, Sequential};
use tapegrad_nn::model::{FitOptions, Loss, Model};
use tapegrad_optim::Sgd;

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let xs = Array2::from_shape_fn((6, 1), |(i, _)| i as f32 - 1.0);
    let ys = xs.mapv(|x| 5.0 * x + 1.0);
    let mut elapsed = std::time::Duration::ZERO;
    let mut last = 0.0;
    for _ in 0..reps {
        let mut model = Model::new(Sequential::new().add(Dense::new(1)));
        model.compile(Sgd::new(0.01).expect("a valid rate"), Loss::mse(), &[]);
        let start = std::time::Instant::now();
        let history = model
            .fit(&xs, &ys, FitOptions::default().epochs(500).verbose(0))
            .expect("fit runs");
        elapsed += start.elapsed();
        last = history.loss()[499];
    }
    println!(
        "{:.3} ms per 500-epoch fit (final loss {last:.4})",
        elapsed.as_secs_f64() * 1e3 / reps as f64
    );
}
