//! Profiling helper: training steps of the 784-256-128-10 MLP (`Sequential` of `Dense`,
//! ReLU, softmax cross-entropy, SGD lr 0.1, f32) on random data, or with a third argument
//! `infer` its forward pass under `no_grad`, followed by the median time of each layer's
//! matrix product alone (what the forward cannot go below).
//! `cargo run --release -p tapegrad-nn --features profiling --example mlp_profile -- 128 2000`
//! (batch, steps[, infer]), or under `perf record`. Prints the median time of one.
use ndarray::Array2;
use tapegrad_autograd::Tape;
use tapegrad_nn::layers::{Activation, Dense, Sequential};
use tapegrad_nn::{Module, losses};
use tapegrad_optim::Sgd;

fn main() {
    let mut args = std::env::args().skip(1).map(|s| s.parse::<usize>().ok());
    let batch = args.next().flatten().unwrap_or(128);
    let steps = args.next().flatten().unwrap_or(1000);
    let infer = std::env::args().nth(3).as_deref() == Some("infer");
    let mut state = 42_u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let x = Array2::from_shape_simple_fn((batch, 784), &mut next).into_dyn();
    let labels: Vec<usize> = (0..batch).map(|_| (next() * 10.0) as usize % 10).collect();
    let mut model = Sequential::new()
        .add(Dense::new(256).activation(Activation::Relu))
        .add(Dense::new(128).activation(Activation::Relu))
        .add(Dense::new(10))
        .seed(42)
        .with_input_shape(&[784]);
    let mut sgd = Sgd::<f32>::new(0.1).expect("a valid rate");
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let start = std::time::Instant::now();
        if infer {
            let tape = Tape::new();
            let logits = tape.no_grad(|| model.forward(tape.constant_ref(&x)).value()[[0, 0]]);
            std::hint::black_box(logits);
            times.push(start.elapsed().as_secs_f64());
            continue;
        }
        let grads = {
            let tape = Tape::new();
            let logits = model.forward(tape.constant_ref(&x));
            let loss = losses::sparse_categorical_cross_entropy_indices(logits, &labels);
            loss.backward()
        };
        sgd.step(model.params_mut(), &grads).expect("finite");
        times.push(start.elapsed().as_secs_f64());
    }
    let median = |mut times: Vec<f64>| {
        times.sort_by(|a, b| a.total_cmp(b));
        times[times.len() / 2]
    };
    if infer {
        let kernels: Vec<_> = model
            .params()
            .into_iter()
            .filter(|p| p.shape().len() == 2)
            .collect();
        let mut total = 0.0;
        for kernel in kernels {
            let (k, n) = (kernel.shape()[0], kernel.shape()[1]);
            let input = Array2::from_shape_simple_fn((batch, k), &mut next).into_dyn();
            let product = median(
                (0..steps)
                    .map(|_| {
                        let start = std::time::Instant::now();
                        let tape = Tape::new();
                        let y = tape.no_grad(|| {
                            tape.constant_ref(&input).matmul(tape.param(kernel)).value()[[0, 0]]
                        });
                        std::hint::black_box(y);
                        start.elapsed().as_secs_f64()
                    })
                    .collect(),
            );
            total += product;
            let gflops = 2.0 * (batch * k * n) as f64 / product / 1e9;
            println!(
                "  product {batch}x{k}x{n} alone: {:.1} µs ({gflops:.0} GFLOP/s)",
                product * 1e6
            );
        }
        println!("  products alone: {:.1} µs", total * 1e6);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "batch {batch}: median {:.3} ms per {}, best {:.3} ms ({steps} repetitions)",
        times[steps / 2] * 1e3,
        if infer { "inference" } else { "step" },
        times[0] * 1e3
    );
}
