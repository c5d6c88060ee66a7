//! Profiling driver: `cnn_profile [step|infer] BATCH REPS` runs training steps (Adam, lr
//! 1e-3) or `no_grad` forward passes of the Fashion-MNIST CNN ([`small_cnn`]) on random
//! images, a fixed number of times, and prints the median and best time of one. Fixed work,
//! so `perf stat` counts (instructions, page faults) compare between builds. Built with
//! `cargo build --release -p tapegrad-benches --features profiling --example cnn_profile`.
use std::hint::black_box;
use std::time::Instant;

use ndarray::{Array, IxDyn};
use tapegrad::autograd::Tape;
use tapegrad::models::small_cnn;
use tapegrad::nn::{Module, losses};
use tapegrad::optim::Adam;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let infer = args.first().is_some_and(|a| a == "infer");
    let number =
        |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let (batch, reps) = (number(1, 128), number(2, 20));
    let mut state = 7_u64;
    let x = Array::from_shape_simple_fn(IxDyn(&[batch, 1, 28, 28]), || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 40) as f32 / (1u64 << 24) as f32
    });
    let labels: Vec<usize> = (0..batch).map(|i| i * 7 % 10).collect();
    let mut model = small_cnn(28, 28).seed(42).with_input_shape(&[1, 28, 28]);
    let mut adam = Adam::<f32>::new(1e-3).expect("a valid learning rate");
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        let tape = Tape::new();
        if infer {
            tape.no_grad(|| black_box(model.forward(tape.constant_ref(&x)).value()[[0, 0]]));
        } else {
            let logits = model.forward(tape.constant_ref(&x));
            let grads =
                losses::sparse_categorical_cross_entropy_indices(logits, &labels).backward();
            adam.step(model.params_mut(), &grads)
                .expect("finite gradients");
        }
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{} batch {batch}: median {:.2} ms, best {:.2} ms ({reps} reps)",
        if infer { "inference" } else { "step" },
        times[reps / 2],
        times[0]
    );
}
