//! One training step of a 784-256-128-10 MLP (ReLU, softmax cross-entropy, SGD lr 0.1,
//! f32) at batch 32 and 128, and the inference forward pass.
//!
//! `cargo bench -p tapegrad-benches --bench mlp`. Variants:
//!
//! - `autograd_manual_sgd`: the model written on the autograd API, the update by hand
//!   (`w.value_mut().scaled_add(-lr, grad)`);
//! - `autograd_optim_sgd`: the same step with `tapegrad_optim::Sgd`;
//! - `nn_sequential_sgd`: `Sequential` of `Dense` layers, `losses::sparse_categorical_cross_entropy_indices`
//!   and `Sgd` (what users write by hand);
//! - `nn_model_fit_8_steps`: `Model::fit` for one epoch of 8 batches (one call = 8 steps,
//!   including batching, shuffling and loss bookkeeping);
//! - `inference_*`: the forward pass under `tape.no_grad`.
//!
//! Every sample restarts from the same initial weights (`iter_custom`), and batches are
//! cycled from a pool of random-label data, so the measured steps are ordinary training
//! steps, never a saturated softmax.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use ndarray::{ArrayD, Axis};
use tapegrad::autograd::{Param, Tape};
use tapegrad::nn::model::{FitOptions, Loss, Model};
use tapegrad::nn::{Module, losses};
use tapegrad::optim::{Optimizer, Sgd};

#[path = "common/mod.rs"]
mod common;

use common::{Mlp, flat_labels, mnist_like, sequential};

const LR: f32 = 0.1;
const BATCHES: [usize; 2] = [32, 128];
const POOL: usize = 16;

fn snapshot(params: &[&Param<f32>]) -> Vec<ArrayD<f32>> {
    params.iter().map(|p| p.value().clone()).collect()
}

fn restore(params: Vec<&mut Param<f32>>, values: &[ArrayD<f32>]) {
    for (p, v) in params.into_iter().zip(values) {
        p.value_mut().assign(v);
    }
}

fn train_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("mlp_train_step");
    group.measurement_time(Duration::from_secs(6));
    for &batch in &BATCHES {
        let data = mnist_like(batch, POOL, 11);
        group.throughput(Throughput::Elements(batch as u64));

        let init = Mlp::new(42);
        let mut mlp = Mlp::new(42);
        group.bench_function(BenchmarkId::new("autograd_manual_sgd", batch), |bench| {
            bench.iter_custom(|iters| {
                mlp.copy_from(&init);
                let start = Instant::now();
                for i in 0..iters as usize {
                    let (x, y) = &data[i % POOL];
                    black_box(mlp.step_manual(x, y, LR));
                }
                start.elapsed()
            })
        });

        let mut sgd = Sgd::<f32>::new(f64::from(LR)).expect("a valid learning rate");
        group.bench_function(BenchmarkId::new("autograd_optim_sgd", batch), |bench| {
            bench.iter_custom(|iters| {
                mlp.copy_from(&init);
                let start = Instant::now();
                for i in 0..iters as usize {
                    let (x, y) = &data[i % POOL];
                    let (grads, loss) = mlp.grads(x, y);
                    sgd.step(&mut mlp.params_mut(), &grads)
                        .expect("finite gradients");
                    black_box(loss);
                }
                start.elapsed()
            })
        });

        let mut model = sequential(42);
        let model_init = snapshot(&model.params());
        let labels: Vec<Vec<usize>> = data.iter().map(|(_, y)| flat_labels(y)).collect();
        group.bench_function(BenchmarkId::new("nn_sequential_sgd", batch), |bench| {
            bench.iter_custom(|iters| {
                restore(model.params_mut(), &model_init);
                let start = Instant::now();
                for i in 0..iters as usize {
                    let (x, _) = &data[i % POOL];
                    let grads = {
                        let tape = Tape::new();
                        let logits = model.forward(tape.constant_ref(x));
                        let loss = losses::sparse_categorical_cross_entropy_indices(
                            logits,
                            &labels[i % POOL],
                        );
                        black_box(loss.item());
                        loss.backward()
                    };
                    sgd.step(&mut model.params_mut(), &grads)
                        .expect("finite gradients");
                }
                start.elapsed()
            })
        });

        // Model::fit over 8 batches (one epoch): x and y as whole arrays, labels as f32.
        let steps = 8;
        let xs: Vec<_> = data[..steps].iter().map(|(x, _)| x.view()).collect();
        let ys: Vec<_> = data[..steps]
            .iter()
            .map(|(_, y)| y.mapv(|l| l as f32))
            .collect();
        let fit_x = ndarray::concatenate(Axis(0), &xs).expect("same sample shape");
        let fit_y = ndarray::concatenate(Axis(0), &ys.iter().map(|y| y.view()).collect::<Vec<_>>())
            .expect("same label shape");
        let mut fitted = Model::new(sequential(42));
        fitted.compile(
            Sgd::new(f64::from(LR)).expect("a valid learning rate"),
            Loss::sparse_categorical_cross_entropy(),
            &[],
        );
        let fitted_init = snapshot(&fitted.params());
        group.throughput(Throughput::Elements((batch * steps) as u64));
        group.bench_function(BenchmarkId::new("nn_model_fit_8_steps", batch), |bench| {
            bench.iter_custom(|iters| {
                restore(fitted.module_mut().params_mut(), &fitted_init);
                let start = Instant::now();
                for _ in 0..iters {
                    let options = FitOptions::default().epochs(1).batch_size(batch).verbose(0);
                    let history = fitted.fit(&fit_x, &fit_y, options).expect("fit runs");
                    black_box(history.epochs());
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

fn inference(c: &mut Criterion) {
    let mut group = c.benchmark_group("mlp_inference");
    let mlp = Mlp::new(42);
    let model = sequential(42);
    for &batch in &BATCHES {
        let data = mnist_like(batch, 1, 13);
        let x = &data[0].0;
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::new("autograd_no_grad", batch), |bench| {
            bench.iter(|| black_box(mlp.predict(x)))
        });
        group.bench_function(BenchmarkId::new("nn_sequential_no_grad", batch), |bench| {
            bench.iter(|| {
                let tape = Tape::new();
                tape.no_grad(|| {
                    let logits = model.forward(tape.constant_ref(x));
                    black_box(logits.value()[[0, 0]])
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, train_step, inference);
criterion_main!(benches);
