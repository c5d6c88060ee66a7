//! The products against the textbook loop, every layout and threading, bit for bit on one
//! and two threads.

use std::mem::MaybeUninit;

use ndarray::{Array2, ArrayView2, ShapeBuilder};

use super::halves::{Threading, threading};
use super::{mat_mul_into, mat_mul_new, write_product_threaded};
use crate::kernels::testing::on_threads;

fn naive(a: &ArrayView2<'_, f64>, b: &ArrayView2<'_, f64>) -> Array2<f64> {
    let (m, k) = a.dim();
    let n = b.dim().1;
    Array2::from_shape_fn((m, n), |(i, j)| (0..k).map(|p| a[[i, p]] * b[[p, j]]).sum())
}

fn filled(rows: usize, cols: usize, seed: f64) -> Array2<f64> {
    Array2::from_shape_fn((rows, cols), |(i, j)| {
        ((i * 31 + j * 17) as f64 * 0.37 + seed).sin()
    })
}

/// Small, medium (single-threaded), cut in halves by rows (`m > n`) and by columns
/// (410³ too, once threaded by the gemm crate), and a one-row product in the halves range
/// (its first half is empty).
const SIZES: [(usize, usize, usize); 10] = [
    (3, 5, 4),
    (1, 7, 1),
    (70, 90, 60),
    (100, 100, 104),
    (64, 128, 128),
    (210, 250, 170),
    (110, 250, 330),
    (330, 250, 110),
    (410, 410, 410),
    (1, 1 << 23, 1),
];

#[test]
fn the_sizes_reach_every_threading() {
    on_threads(2, || {
        let kinds: Vec<Threading> = SIZES
            .iter()
            .map(|&(m, k, n)| threading(m * k * n))
            .collect();
        assert_eq!(
            kinds,
            [
                Threading::One,
                Threading::One,
                Threading::One,
                Threading::One,
                Threading::Halves,
                Threading::Halves,
                Threading::Halves,
                Threading::Halves,
                Threading::Halves,
                Threading::Halves,
            ]
        );
    });
}

#[test]
fn threaded_writes_cover_a_nan_filled_output() {
    on_threads(2, || {
        for &(m, k, n) in &SIZES {
            let (a, b) = (filled(m, k, 0.1), filled(k, n, 0.2));
            let want = naive(&a.view(), &b.view());
            let mut out = Array2::from_elem((m, n), MaybeUninit::new(f64::NAN));
            write_product_threaded(&a.view(), &b.view(), out.view_mut(), |_, _| {});
            let (a32, b32) = (a.mapv(|v| v as f32), b.mapv(|v| v as f32));
            let mut out32 = Array2::from_elem((m, n), MaybeUninit::new(f32::NAN));
            write_product_threaded(&a32.view(), &b32.view(), out32.view_mut(), |_, _| {});
            for ((got, got32), w) in out.iter().zip(&out32).zip(&want) {
                // SAFETY: every element was initialised (to NaN) before the call.
                let (got, got32) = unsafe { (got.assume_init(), got32.assume_init()) };
                assert!((got - w).abs() < 1e-9, "{m}×{k}×{n}: {got} vs {w}");
                assert!(
                    (f64::from(got32) - w).abs() < 1e-5 * k as f64,
                    "f32 {m}×{k}×{n}: {got32} vs {w}"
                );
            }
        }
    });
}

#[test]
fn matches_the_naive_product_for_every_layout() {
    // All but the 1 × 2²³ × 1 product (its six layouts would build 64 MB operands each;
    // `threaded_writes_cover_a_nan_filled_output` covers it).
    on_threads(2, || every_layout(&SIZES[..SIZES.len() - 1]));
}

fn every_layout(sizes: &[(usize, usize, usize)]) {
    for &(m, k, n) in sizes {
        let a = filled(m, k, 0.1);
        let b = filled(k, n, 0.2);
        let a_t = filled(k, m, 0.1).reversed_axes(); // column-major m × k
        let b_t = filled(n, k, 0.2).reversed_axes();
        let a_f = Array2::from_shape_vec((m, k).f(), a.t().iter().copied().collect())
            .expect("m·k elements");
        let neg = a.slice(ndarray::s![..;-1, ..]);
        for (x, y) in [
            (a.view(), b.view()),
            (a_t.view(), b.view()),
            (a.view(), b_t.view()),
            (a_t.view(), b_t.view()),
            (a_f.view(), b.view()),
            (neg, b.view()),
        ] {
            let want = naive(&x, &y);
            let mut got = Array2::<f64>::from_elem((m, n), f64::NAN);
            mat_mul_into(&x, &y, &mut got.view_mut());
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-9, "{m}×{k}×{n}: {g} vs {w}");
            }
            // The fresh output of `mat_mul_new` is never zero-filled: every element
            // must come from the product (a NaN-filled output above shows the kernel
            // reads none of it).
            let fresh = mat_mul_new(&x, &y);
            assert_eq!(fresh.dim(), (m, n));
            for (g, w) in fresh.iter().zip(&want) {
                assert!((g - w).abs() < 1e-9, "new {m}×{k}×{n}: {g} vs {w}");
            }
            let (x32, y32) = (x.mapv(|v| v as f32), y.mapv(|v| v as f32));
            let mut got32 = Array2::<f32>::from_elem((m, n), f32::NAN);
            mat_mul_into(&x32.view(), &y32.view(), &mut got32.view_mut());
            let fresh32 = mat_mul_new(&x32.view(), &y32.view());
            let tol = 1e-5 * k as f64;
            for ((g, f), w) in got32.iter().zip(&fresh32).zip(&want) {
                assert!(
                    (f64::from(*g) - w).abs() < tol && (f64::from(*f) - w).abs() < tol,
                    "f32 {m}×{k}×{n}: {g}, {f} vs {w}"
                );
            }
        }
    }
}

#[test]
fn products_are_bit_identical_on_one_and_two_threads() {
    // Every threading, both axes of the halves, odd sizes, transposed operands and an
    // existing (column-major) output; f32 and f64.
    let shapes = [
        (7, 300, 9),
        (64, 128, 128),
        (128, 784, 256),
        (256, 128, 784),
        (33, 1000, 65),
        (301, 97, 203),
        (410, 410, 410),
        (1, 1 << 20, 3),
    ];
    let run = |threads: usize| {
        on_threads(threads, || {
            let mut bits: Vec<Vec<u64>> = Vec::new();
            for &(m, k, n) in &shapes {
                let (a, b) = (filled(m, k, 0.3), filled(k, n, 0.7));
                let a_t = filled(k, m, 0.3).reversed_axes();
                let (a32, b32) = (a.mapv(|v| v as f32), b.mapv(|v| v as f32));
                bits.push(
                    mat_mul_new(&a.view(), &b.view())
                        .iter()
                        .map(|v| v.to_bits())
                        .collect(),
                );
                bits.push(
                    mat_mul_new(&a_t.view(), &b.view())
                        .iter()
                        .map(|v| v.to_bits())
                        .collect(),
                );
                bits.push(
                    mat_mul_new(&a32.view(), &b32.view())
                        .iter()
                        .map(|v| u64::from(v.to_bits()))
                        .collect(),
                );
                let mut out = Array2::<f32>::zeros((m, n).f());
                mat_mul_into(&a32.view(), &b32.view(), &mut out.view_mut());
                bits.push(out.iter().map(|v| u64::from(v.to_bits())).collect());
            }
            bits
        })
    };
    let (one, two) = (run(1), run(2));
    for (i, (x, y)) in one.iter().zip(&two).enumerate() {
        assert!(
            x == y,
            "product {i} ({:?}) differs between 1 and 2 threads",
            shapes[i / 4]
        );
    }
}

#[test]
fn broadcast_operands_and_empty_inner_dimension() {
    let row = ndarray::arr1(&[1.0, 2.0, 3.0]);
    let a = row.broadcast((4, 3)).expect("broadcast a row");
    let b = filled(3, 2, 0.5);
    let mut got = Array2::<f64>::zeros((4, 2));
    mat_mul_into(&a, &b.view(), &mut got.view_mut());
    let want = naive(&a, &b.view());
    assert!(got.iter().zip(&want).all(|(g, w)| (g - w).abs() < 1e-12));

    let (a, b) = (Array2::<f32>::zeros((2, 0)), Array2::<f32>::zeros((0, 3)));
    let mut out = Array2::<f32>::from_elem((2, 3), 7.0);
    mat_mul_into(&a.view(), &b.view(), &mut out.view_mut());
    assert!(out.iter().all(|&v| v == 0.0));
}
