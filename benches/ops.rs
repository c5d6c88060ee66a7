//! Single ops through the tape: matmul, conv2d, elementwise, reductions, softmax
//! cross-entropy.
//!
//! `cargo bench -p tapegrad-benches --bench ops` (or `-- matmul` for one group). Matmul throughputs are in
//! FLOPs, so criterion's `Gelem/s` reads as GFLOP/s: `2·m·k·n` for the forward product and
//! `3 × 2·m·k·n` for forward + backward (`G·Bᵀ` and `Aᵀ·G`); conv2d's likewise, with
//! `2·N·O·OH·OW·C·kh·kw` for the forward. Elementwise and reduction
//! throughputs are in elements. Threads: as configured (`RAYON_NUM_THREADS`; ndarray's
//! matmul is single-threaded unless built with `matrixmultiply-threading`).

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use ndarray::{Array2, ArrayD};
use tapegrad::autograd::{Conv2dOptions, Param, Tape};

#[path = "common/mod.rs"]
mod common;

use common::{SplitMix, cross_entropy, matrix};

/// `(m, k, n)`: the MLP's first layer at batch 128 and 32, and a large square product.
const MATMUL_SIZES: [(usize, usize, usize); 3] =
    [(128, 784, 256), (32, 784, 256), (1024, 1024, 1024)];

/// 1M elements, as a 1000 × 1000 matrix (so `max_axes` has rows to reduce).
const SIDE: usize = 1000;

fn matmul(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul");
    for &(m, k, n) in &MATMUL_SIZES {
        let a = Param::new("a", matrix(m, k, 1));
        let b = Param::new("b", matrix(k, n, 2));
        let flops = 2 * (m * k * n) as u64;
        let label = format!("{m}x{k}x{n}");
        if m * k * n >= 1 << 28 {
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(8));
        } else {
            group
                .sample_size(100)
                .measurement_time(Duration::from_secs(5));
        }

        group.throughput(Throughput::Elements(flops));
        group.bench_function(BenchmarkId::new("forward", &label), |bench| {
            bench.iter(|| {
                let tape = Tape::new();
                let y = tape.param(&a).matmul(tape.param(&b));
                black_box(y.value()[[0, 0]])
            })
        });
        group.bench_function(BenchmarkId::new("ndarray_dot", &label), |bench| {
            let (a2, b2) = (to_2d(a.value()), to_2d(b.value()));
            bench.iter(|| black_box(a2.dot(&b2)))
        });

        group.throughput(Throughput::Elements(3 * flops));
        group.bench_function(BenchmarkId::new("forward_backward", &label), |bench| {
            bench.iter(|| {
                let tape = Tape::new();
                let y = tape.param(&a).matmul(tape.param(&b)).sum();
                black_box(y.backward().num_params())
            })
        });
    }
    group.finish();
}

/// The second convolution of the Fashion-MNIST CNN at batch 32: `[32, 32, 14, 14]` by 64
/// filters 3×3, padding 1 (the output `[32, 64, 14, 14]`).
fn conv2d(c: &mut Criterion) {
    let (n, ch, side, filters) = (32, 32, 14, 64);
    let x = Param::new(
        "x",
        matrix(n, ch * side * side, 8)
            .into_shape_with_order(ndarray::IxDyn(&[n, ch, side, side]))
            .expect("n · c · h · w elements"),
    );
    let w = Param::new(
        "w",
        matrix(filters, ch * 9, 9)
            .into_shape_with_order(ndarray::IxDyn(&[filters, ch, 3, 3]))
            .expect("o · c · 3 · 3 elements"),
    );
    let options = Conv2dOptions::default().padding(1);
    let flops = 2 * (n * filters * side * side * ch * 9) as u64;
    let label = format!("{n}x{ch}x{side}x{side}_by_{filters}x3x3");
    let mut group = c.benchmark_group("conv2d");
    group.throughput(Throughput::Elements(flops));
    group.bench_function(BenchmarkId::new("forward", &label), |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let y = tape.param(&x).conv2d(tape.param(&w), None, &options);
            black_box(y.value()[[0, 0, 0, 0]])
        })
    });
    group.throughput(Throughput::Elements(3 * flops));
    group.bench_function(BenchmarkId::new("forward_backward", &label), |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let y = tape.param(&x).conv2d(tape.param(&w), None, &options).sum();
            black_box(y.backward().num_params())
        })
    });
    group.finish();
}

fn elementwise(c: &mut Criterion) {
    let x = Param::new("x", matrix(SIDE, SIDE, 3));
    let y = Param::new("y", matrix(SIDE, SIDE, 4));
    let mut group = c.benchmark_group("elementwise_1M");
    group.throughput(Throughput::Elements((SIDE * SIDE) as u64));

    group.bench_function("exp_forward", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            black_box(tape.param(&x).exp().value()[[0, 0]])
        })
    });
    group.bench_function("exp_forward_backward", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            black_box(tape.param(&x).exp().sum().backward().num_params())
        })
    });
    group.bench_function("add_forward", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let z = tape.param(&x) + tape.param(&y);
            black_box(z.value()[[0, 0]])
        })
    });
    group.bench_function("add_forward_backward", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let z = tape.param(&x) + tape.param(&y);
            black_box(z.sum().backward().num_params())
        })
    });
    group.bench_function("relu_forward", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            black_box(tape.param(&x).relu().value()[[0, 0]])
        })
    });
    group.bench_function("relu_forward_backward", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            black_box(tape.param(&x).relu().sum().backward().num_params())
        })
    });
    group.finish();
}

fn reductions(c: &mut Criterion) {
    let x = Param::new("x", matrix(SIDE, SIDE, 5));
    let mut group = c.benchmark_group("reduce_1M");
    group.throughput(Throughput::Elements((SIDE * SIDE) as u64));
    group.bench_function("sum_forward_backward", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            black_box(tape.param(&x).sum().backward().num_params())
        })
    });
    group.bench_function("max_axes_rows_forward_backward", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let m = tape.param(&x).max_axes([1], false);
            black_box(m.sum().backward().num_params())
        })
    });
    group.finish();
}

fn softmax_cross_entropy(c: &mut Criterion) {
    let (batch, classes) = (128, 10);
    let logits = Param::new("logits", matrix(batch, classes, 6));
    let mut rng = SplitMix::new(7);
    let labels: ArrayD<usize> =
        Array2::from_shape_simple_fn((batch, 1), || rng.below(classes)).into_dyn();
    let mut group = c.benchmark_group("softmax_cross_entropy");
    group.throughput(Throughput::Elements((batch * classes) as u64));
    group.bench_function("128x10_forward_backward", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let loss = cross_entropy(tape.param(&logits), &labels);
            black_box(loss.backward().num_params())
        })
    });
    group.finish();
}

fn to_2d(a: &ArrayD<f32>) -> Array2<f32> {
    a.clone()
        .into_dimensionality()
        .expect("the operands are matrices")
}

criterion_group!(
    benches,
    matmul,
    conv2d,
    elementwise,
    reductions,
    softmax_cross_entropy
);
criterion_main!(benches);
