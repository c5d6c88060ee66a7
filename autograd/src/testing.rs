//! `proptest` strategies for property-testing ops, losses and layers (feature `proptest`).
//!
//! ```
//! use proptest::prelude::*;
//! use tapegrad_autograd::testing::{array, shape};
//! use tapegrad_autograd::{gradcheck, GradcheckOptions};
//!
//! proptest!(ProptestConfig::with_cases(8), |(x in shape(3, 4).prop_flat_map(|s| array(s, -2.0, 2.0)))| {
//!     gradcheck(|_t, v| v[0].tanh().sum(), &[x], &GradcheckOptions::default()).unwrap();
//! });
//! ```

use ndarray::ArrayD;
use proptest::collection::vec;
use proptest::prelude::*;

/// Shapes of 1 to `max_rank` axes, each of length 1 to `max_dim`.
pub fn shape(max_rank: usize, max_dim: usize) -> impl Strategy<Value = Vec<usize>> {
    vec(1..=max_dim, 1..=max_rank)
}

/// Shapes of 0 to `max_rank` axes (0 is a scalar).
pub fn shape_or_scalar(max_rank: usize, max_dim: usize) -> impl Strategy<Value = Vec<usize>> {
    vec(1..=max_dim, 0..=max_rank)
}

/// Two shapes that broadcast together under NumPy rules: a common shape from which each
/// side drops some leading axes and sets some axes to 1.
pub fn broadcast_pair(
    max_rank: usize,
    max_dim: usize,
) -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    shape(max_rank, max_dim).prop_flat_map(|full| {
        let rank = full.len();
        (
            Just(full),
            0..=rank,
            0..=rank,
            vec(any::<bool>(), rank),
            vec(any::<bool>(), rank),
        )
            .prop_map(|(full, drop_a, drop_b, ones_a, ones_b)| {
                let derive = |drop: usize, ones: &[bool]| -> Vec<usize> {
                    full.iter()
                        .zip(ones)
                        .skip(drop)
                        .map(|(&d, &one)| if one { 1 } else { d })
                        .collect()
                };
                (derive(drop_a, &ones_a), derive(drop_b, &ones_b))
            })
    })
}

/// Shapes `(a, b)` that `matmul` accepts: 1-D or 2-D each, or batched with broadcast batch
/// axes.
pub fn matmul_pair(max_dim: usize) -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (1..=max_dim, 1..=max_dim, 1..=max_dim, 0usize..6, 1..=3usize).prop_map(
        |(m, k, n, kind, batch)| match kind {
            0 => (vec![m, k], vec![k, n]),
            1 => (vec![k], vec![k, n]),
            2 => (vec![m, k], vec![k]),
            3 => (vec![k], vec![k]),
            4 => (vec![batch, m, k], vec![k, n]),
            _ => (vec![batch, 1, m, k], vec![2, k, n]),
        },
    )
}

/// Shapes `(a, b)` that `solve` accepts: `a` a square matrix `[n, n]` or a batch of them,
/// `b` a matrix `[n, k]` or a vector `[n]` of right-hand sides, batched alike, shared by a
/// batch, or with broadcast batch axes. The values of `a` still have to make it regular
/// (`M + n·I` with `M` in `[-1, 1)` is strictly diagonally dominant).
///
/// ```
/// use proptest::prelude::*;
/// use tapegrad_autograd::testing::solve_pair;
///
/// proptest!(ProptestConfig::with_cases(8), |((a, b) in solve_pair(4))| {
///     let n = a[a.len() - 1];
///     prop_assert_eq!(a[a.len() - 2], n);
///     prop_assert!(b.len() == 1 || b[b.len() - 2] == n || b[b.len() - 1] == n);
/// });
/// ```
pub fn solve_pair(max_dim: usize) -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (1..=max_dim, 1..=max_dim, 0usize..7, 1..=3usize).prop_map(|(n, k, kind, batch)| match kind {
        0 => (vec![n, n], vec![n, k]),
        1 => (vec![n, n], vec![n]),
        2 => (vec![batch, n, n], vec![batch, n, k]),
        3 => (vec![batch, n, n], vec![batch, n]),
        4 => (vec![batch, n, n], vec![n, k]),
        5 => (vec![n, n], vec![batch, n, k]),
        _ => (vec![batch, 1, n, n], vec![2, n, k]),
    })
}

/// Arrays of `shape` with elements uniform in `[lo, hi)`.
pub fn array(shape: Vec<usize>, lo: f64, hi: f64) -> impl Strategy<Value = ArrayD<f64>> {
    let n: usize = shape.iter().product();
    vec(lo..hi, n)
        .prop_map(move |v| ArrayD::from_shape_vec(shape.clone(), v).expect("length matches shape"))
}

/// Arrays of `shape` in `[lo, hi)` with every element at least `margin` away from each of
/// the `kinks` (where an op is not differentiable: 0 for relu and abs, clamp bounds...).
pub fn array_away_from(
    shape: Vec<usize>,
    lo: f64,
    hi: f64,
    kinks: Vec<f64>,
    margin: f64,
) -> impl Strategy<Value = ArrayD<f64>> {
    array(shape, lo, hi).prop_map(move |a| {
        a.mapv(|mut x| {
            for &k in &kinks {
                if (x - k).abs() < margin {
                    x = if x >= k { k + margin } else { k - margin };
                }
            }
            x
        })
    })
}

/// Arrays whose elements are pairwise at least `gap` apart (so max/min and sorting have
/// no ties).
pub fn distinct_array(shape: Vec<usize>, gap: f64) -> impl Strategy<Value = ArrayD<f64>> {
    let n: usize = shape.iter().product();
    Just((0..n).collect::<Vec<usize>>())
        .prop_shuffle()
        .prop_map(move |order| {
            let v: Vec<f64> = order
                .iter()
                .map(|&i| (i as f64 - n as f64 / 2.0) * gap)
                .collect();
            ArrayD::from_shape_vec(shape.clone(), v).expect("length matches shape")
        })
}

/// One array per shape, elements in `[lo, hi)`.
pub fn arrays(
    shapes: Vec<Vec<usize>>,
    lo: f64,
    hi: f64,
) -> impl Strategy<Value = Vec<ArrayD<f64>>> {
    shapes
        .into_iter()
        .map(|s| array(s, lo, hi))
        .collect::<Vec<_>>()
}
