//! Work split across threads gives the numbers of the single-threaded path: matrix products
//! large enough to use two threads (the output cut in halves, the two gradients side by
//! side) match ndarray's independent single-threaded product, and elementwise ops above the
//! parallel threshold match the scalar formula.

use ndarray::{Array2, ArrayD};
use tapegrad_autograd::Tape;

use super::assert_close;

fn filled(rows: usize, cols: usize, seed: f64) -> Array2<f64> {
    Array2::from_shape_fn((rows, cols), |(i, j)| {
        ((i * 7 + j * 13) as f64 * 0.01 + seed).sin()
    })
}

#[test]
fn threaded_products_and_their_gradients_match_single_threaded_ones() {
    // On a pool of two threads whatever the machine, so every path runs.
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a pool of two threads")
        .install(threaded_products);
}

fn threaded_products() {
    // m × k × n, multiply-adds per product (a·b, g·bᵀ and aᵀ·g have the same count):
    // - 16 × 128 × 128 (0.26 M): one thread each, one after the other;
    // - 64 × 128 × 96 (0.79 M): one thread each, the two gradients side by side;
    // - 256 × 384 × 128 and 384 × 256 × 128 (12.6 M): halves — a·b cut by rows (outputs
    //   256 × 128, 384 × 128), g·bᵀ by columns then by rows (256 × 384, 384 × 256),
    //   aᵀ·g by rows (384 × 128, 256 × 128);
    // - 512 × 512 × 256 (2²⁶ = 67 M): the gemm crate's threads.
    for &(m, k, n) in &[
        (16, 128, 128),
        (64, 128, 96),
        (256, 384, 128),
        (384, 256, 128),
        (512, 512, 256),
    ] {
        let (a0, b0) = (filled(m, k, 0.3), filled(k, n, 0.7));
        let g0 = filled(m, n, 1.1);
        let tape = Tape::new();
        let (a, b) = (
            tape.var(a0.clone().into_dyn()),
            tape.var(b0.clone().into_dyn()),
        );
        let y = a.matmul(b);
        let loss = (y * tape.constant(g0.clone().into_dyn())).sum();
        let grads = loss.backward();
        let close = |got: &ArrayD<f64>, want: &Array2<f64>, what: &str| {
            assert_eq!(got.shape(), want.shape(), "{what} at {m}×{k}×{n}");
            for (x, w) in got.iter().zip(want) {
                assert!(
                    (x - w).abs() <= 1e-9 * (1.0 + w.abs()),
                    "{what} at {m}×{k}×{n}: {x} vs {w}"
                );
            }
        };
        close(&y.to_array(), &a0.dot(&b0), "a·b");
        close(&grads[a], &g0.dot(&b0.t()), "g·bᵀ");
        close(&grads[b], &a0.t().dot(&g0), "aᵀ·g");
    }
}

#[test]
fn elementwise_ops_above_the_parallel_threshold_agree_with_the_scalar_formula() {
    let x_data = Array2::from_shape_fn((300, 300), |(i, j)| {
        ((i * 300 + j) as f64 * 1e-4).sin() * 3.0
    })
    .into_dyn();
    let tape = Tape::<f64>::new();
    let x = tape.var(x_data.clone());
    let y = x.tanh();
    assert_eq!(y.to_array(), x_data.mapv(f64::tanh));
    let grads = y.sum().backward();
    // d tanh = 1 − tanh²
    assert_close(&grads[x], &x_data.mapv(|v| 1.0 - v.tanh().powi(2)), 1e-15);
}
