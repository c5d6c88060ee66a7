//! Tape overhead: forward + backward of a chain of scalar ops, and a 256×256 matmul.
//!
//! `cargo bench -p tapegrad-benches --bench tape`. The chain is `x = tanh(x * w + b)` repeated: 3 ops per
//! link, 1,002 recorded ops in all (with the leaves); criterion's throughput line gives
//! the time per op.

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use ndarray::{Array2, arr0};
use tapegrad::autograd::{Param, Tape};

#[path = "common/mod.rs"]
mod common;

use common::{CHAIN_LINKS, scalar_chain};

fn scalar_chain_bench(c: &mut Criterion) {
    let w = Param::new("w", arr0(0.9_f32).into_dyn());
    let b = Param::new("b", arr0(0.1_f32).into_dyn());
    let mut group = c.benchmark_group("tape");
    group.throughput(Throughput::Elements((CHAIN_LINKS * 3) as u64));
    group.bench_function("scalar_chain_1000_ops_forward_backward", |bench| {
        bench.iter(|| black_box(scalar_chain(&w, &b)))
    });
    group.finish();
}

fn matmul_256(c: &mut Criterion) {
    let a = Param::new(
        "a",
        Array2::<f32>::from_shape_fn((256, 256), |(i, j)| ((i * 7 + j * 3) % 11) as f32 * 0.01)
            .into_dyn(),
    );
    let b = Param::new(
        "b",
        Array2::<f32>::from_shape_fn((256, 256), |(i, j)| ((i * 5 + j) % 13) as f32 * 0.01)
            .into_dyn(),
    );
    let mut group = c.benchmark_group("tape");
    group.throughput(Throughput::Elements(3 * 2 * 256 * 256 * 256));
    group.bench_function("matmul_256x256_forward_backward", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let y = tape.param(&a).matmul(tape.param(&b)).sum();
            black_box(y.backward().num_params())
        })
    });
    group.finish();
}

criterion_group!(benches, scalar_chain_bench, matmul_256);
criterion_main!(benches);
