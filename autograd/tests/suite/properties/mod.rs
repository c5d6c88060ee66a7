//! Property tests: every differentiable op's gradient agrees with central finite differences
//! (`gradcheck`, f64) on random shapes and values, and `tape.grad` is itself differentiable;
//! one module per family of ops. This module holds the strategies they share.
//!
//! Needs the crate's `proptest` feature (the strategies of `tapegrad_autograd::testing`):
//! `cargo test --workspace` turns it on through the root package's dev-dependency, and
//! `cargo test -p tapegrad-autograd --features proptest` does too.
#![cfg(feature = "proptest")]

mod elementwise;
mod higher_order;
mod matmul_and_movement;
mod reductions;

use ndarray::{ArrayD, IxDyn};
use proptest::collection::vec;
use proptest::prelude::*;
use tapegrad_autograd::testing::{
    array, array_away_from, broadcast_pair, distinct_array, shape, shape_or_scalar,
};
use tapegrad_autograd::{GradcheckOptions, Inputs, Tape, Var, gradcheck};

/// Shapes up to rank 3 with axes up to 4 long keep each case fast.
const RANK: usize = 3;
const DIM: usize = 4;
/// Distance kept from the points where an op has no derivative.
const MARGIN: f64 = 0.05;
/// Distance of the op table's inputs from 0, where `recip` and `ln` have poles: at 0.05 the
/// finite differences of second derivatives of `1/x` are off by ~7e-5 relative (a fourth
/// derivative of 24/x⁵), beyond gradcheck's 1e-5; at 0.2 they are ~1,000× more accurate.
const POLE_MARGIN: f64 = 0.2;

/// `gradcheck` with the default tolerances, as a proptest outcome.
fn check<'env, F>(f: F, inputs: &[ArrayD<f64>]) -> Result<(), TestCaseError>
where
    F: for<'t> Fn(&'t Tape<'t, f64>, &Inputs<'t, 'env, f64>) -> Var<'t, f64>,
{
    gradcheck(f, inputs, &GradcheckOptions::default())
        .map_err(|e| TestCaseError::fail(e.to_string()))
}

/// The NumPy broadcast of two compatible shapes.
fn broadcast_shapes(a: &[usize], b: &[usize]) -> Vec<usize> {
    let n = a.len().max(b.len());
    let at = |s: &[usize], i: usize| {
        if i + s.len() >= n {
            s[i + s.len() - n]
        } else {
            1
        }
    };
    (0..n).map(|i| at(a, i).max(at(b, i))).collect()
}

/// One array of a random shape (a scalar included), elements in `[lo, hi)`.
fn values(lo: f64, hi: f64) -> impl Strategy<Value = ArrayD<f64>> {
    shape_or_scalar(RANK, DIM).prop_flat_map(move |s| array(s, lo, hi))
}

/// One array of a random shape with every element at least `MARGIN` from each kink.
fn values_away_from(lo: f64, hi: f64, kinks: Vec<f64>) -> impl Strategy<Value = ArrayD<f64>> {
    shape_or_scalar(RANK, DIM)
        .prop_flat_map(move |s| array_away_from(s, lo, hi, kinks.clone(), MARGIN))
}

/// Two arrays whose shapes broadcast together.
fn broadcast_values(lo: f64, hi: f64) -> impl Strategy<Value = (ArrayD<f64>, ArrayD<f64>)> {
    broadcast_pair(RANK, DIM).prop_flat_map(move |(a, b)| (array(a, lo, hi), array(b, lo, hi)))
}

/// Values on the grid `k/5 + offset`: two grids with different offsets never tie.
fn grid(shape: Vec<usize>, offset: f64) -> impl Strategy<Value = ArrayD<f64>> {
    array(shape, -2.0, 2.0).prop_map(move |a| a.mapv(|x| (x * 5.0).round() / 5.0 + offset))
}

/// Two broadcastable arrays that differ everywhere by at least 0.1 (no ties for
/// `maximum`/`minimum`).
fn untied_broadcast_values() -> impl Strategy<Value = (ArrayD<f64>, ArrayD<f64>)> {
    broadcast_pair(RANK, DIM).prop_flat_map(|(a, b)| (grid(a, 0.0), grid(b, 0.1)))
}

/// An array (rank ≥ 1) with a valid axis, negative half of the time.
fn values_with_axis() -> impl Strategy<Value = (ArrayD<f64>, isize)> {
    shape(RANK, DIM).prop_flat_map(|s| {
        let r = s.len() as isize;
        (array(s, -3.0, 3.0), -r..r)
    })
}

/// A non-empty set of distinct axes (some negative) and a keepdim flag.
fn axes_of(rank: usize) -> impl Strategy<Value = (Vec<isize>, bool)> {
    (
        vec(any::<bool>(), rank),
        vec(any::<bool>(), rank),
        0..rank,
        any::<bool>(),
    )
        .prop_map(move |(pick, negative, fallback, keepdim)| {
            let mut axes: Vec<isize> = (0..rank)
                .filter(|&i| pick[i])
                .map(|i| {
                    if negative[i] {
                        i as isize - rank as isize
                    } else {
                        i as isize
                    }
                })
                .collect();
            if axes.is_empty() {
                axes.push(fallback as isize);
            }
            (axes, keepdim)
        })
}

/// An array with axes to reduce (and keepdim).
fn values_with_axes() -> impl Strategy<Value = (ArrayD<f64>, Vec<isize>, bool)> {
    shape(RANK, DIM).prop_flat_map(|s| {
        let r = s.len();
        (array(s, -2.0, 2.0), axes_of(r)).prop_map(|(x, (axes, keepdim))| (x, axes, keepdim))
    })
}

/// An array without ties (pairwise 0.1 apart) with axes to reduce (and keepdim).
fn distinct_values_with_axes() -> impl Strategy<Value = (ArrayD<f64>, Vec<isize>, bool)> {
    shape(RANK, DIM).prop_flat_map(|s| {
        let r = s.len();
        (distinct_array(s, 0.1), axes_of(r)).prop_map(|(x, (axes, keepdim))| (x, axes, keepdim))
    })
}

fn index_array(shape: Vec<usize>, values: Vec<usize>) -> ArrayD<usize> {
    ArrayD::from_shape_vec(IxDyn(&shape), values).expect("length matches shape")
}
