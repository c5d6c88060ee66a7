//! The convolution's three maps one at a time — the forward product, the input gradient and
//! the weight gradient — on the two layers of the Fashion-MNIST CNN (`--model cnn`: 3×3,
//! padding 1, no bias), at batch 32 and 128, in f32, on one thread and on two.
//!
//! `cargo bench -p tapegrad-benches --bench conv` (or `-- conv2d_1_thread` for one group).
//! Throughputs are in FLOPs counted as a direct convolution, `2·N·O·OH·OW·C·kh·kw` for each
//! map, so criterion's `Gelem/s` reads as GFLOP/s whichever kernel runs: the first layer
//! (one input channel) goes through im2col, the second through Winograd. A gradient is
//! timed alone: the convolution is recorded once, with only the input (or only the weights)
//! requiring a gradient, and each run is a backward pass from a fixed output gradient, whose
//! copy `backward_with_seed` takes is made outside the timing. Threads: a rayon pool of one
//! thread, then of two (tapegrad's kernels run their two halves side by side only when the
//! pool has two).

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use ndarray::{ArrayD, IxDyn};
use tapegrad::autograd::{Conv2dOptions, Param, Tape};

#[path = "common/mod.rs"]
mod common;

use common::matrix;

/// The CNN's convolutions: name, input channels, input side, filters.
const LAYERS: [(&str, usize, usize, usize); 2] = [("first", 1, 28, 32), ("second", 32, 14, 64)];

/// The batch sizes of `benches/compare`'s CNN figures.
const BATCHES: [usize; 2] = [32, 128];

/// One of the three maps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Map {
    Forward,
    InputGrad,
    WeightGrad,
}

impl Map {
    const ALL: [Map; 3] = [Map::Forward, Map::InputGrad, Map::WeightGrad];

    fn name(self) -> &'static str {
        match self {
            Map::Forward => "forward",
            Map::InputGrad => "input_grad",
            Map::WeightGrad => "weight_grad",
        }
    }
}

/// A 4-D array of uniform values in `[-1, 1)`.
fn array4(shape: [usize; 4], seed: u64) -> ArrayD<f32> {
    matrix(shape[0], shape[1] * shape[2] * shape[3], seed)
        .into_shape_with_order(IxDyn(&shape))
        .expect("n · c · h · w elements")
}

/// The total time of `iters` runs of `map`, each timed alone: the tape, the recorded
/// convolution and the output gradient's copy are made outside the timing.
fn time(map: Map, x: &Param<f32>, w: &Param<f32>, grad_out: &ArrayD<f32>, iters: u64) -> Duration {
    let options = Conv2dOptions::default().padding(1);
    let mut total = Duration::ZERO;
    if map == Map::Forward {
        for _ in 0..iters {
            let tape = Tape::new();
            let (xv, wv) = (tape.constant_ref(x.value()), tape.constant_ref(w.value()));
            let start = Instant::now();
            let y = xv.conv2d(wv, None, &options);
            total += start.elapsed();
            black_box(y);
        }
        return total;
    }
    let tape = Tape::new();
    let (xv, wv) = if map == Map::InputGrad {
        (tape.param(x), tape.constant_ref(w.value()))
    } else {
        (tape.constant_ref(x.value()), tape.param(w))
    };
    let y = xv.conv2d(wv, None, &options);
    for _ in 0..iters {
        let seed = grad_out.clone();
        let start = Instant::now();
        let grads = y.backward_with_seed(seed);
        total += start.elapsed();
        black_box(grads);
    }
    total
}

fn conv2d_maps(c: &mut Criterion) {
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        let plural = if threads == 1 { "" } else { "s" };
        let mut group = c.benchmark_group(format!("conv2d_{threads}_thread{plural}"));
        group.sample_size(20);
        for (layer, channels, side, filters) in LAYERS {
            for n in BATCHES {
                let x = Param::new("x", array4([n, channels, side, side], 1));
                let w = Param::new("w", array4([filters, channels, 3, 3], 2));
                let grad_out = array4([n, filters, side, side], 3);
                let flops = 2 * (n * filters * side * side * channels * 9) as u64;
                let label = format!("{layer}_{n}x{channels}x{side}x{side}_by_{filters}x3x3");
                group.throughput(Throughput::Elements(flops));
                for map in Map::ALL {
                    group.bench_function(BenchmarkId::new(map.name(), &label), |bench| {
                        bench.iter_custom(|iters| {
                            pool.install(|| time(map, &x, &w, &grad_out, iters))
                        })
                    });
                }
            }
        }
        group.finish();
    }
}

criterion_group!(benches, conv2d_maps);
criterion_main!(benches);
