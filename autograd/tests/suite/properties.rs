//! Property tests: every differentiable op's gradient agrees with central finite differences
//! (`gradcheck`, f64) on random shapes and values, and `tape.grad` is itself differentiable.
//!
//! Needs the crate's `proptest` feature (the strategies of `tapegrad_autograd::testing`):
//! `cargo test --workspace` turns it on through the root package's dev-dependency, and
//! `cargo test -p tapegrad-autograd --features proptest` does too.
#![cfg(feature = "proptest")]

use ndarray::{ArrayD, IxDyn};
use proptest::collection::vec;
use proptest::prelude::*;
use tapegrad_autograd::testing::{
    array, array_away_from, broadcast_pair, distinct_array, matmul_pair, shape, shape_or_scalar,
};
use tapegrad_autograd::{GradcheckOptions, Inputs, Tape, Var, gradcheck, gradgradcheck};

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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    // ---- arithmetic (broadcasting) ----

    #[test]
    fn add_gradient_matches_finite_differences_with_broadcasting((a, b) in broadcast_values(-2.0, 2.0)) {
        check(|_t, v| v[0] + v[1], &[a, b])?;
    }

    #[test]
    fn sub_gradient_matches_finite_differences_with_broadcasting((a, b) in broadcast_values(-2.0, 2.0)) {
        check(|_t, v| v[0] - v[1], &[a, b])?;
    }

    #[test]
    fn mul_gradient_matches_finite_differences_with_broadcasting((a, b) in broadcast_values(-2.0, 2.0)) {
        check(|_t, v| v[0] * v[1], &[a, b])?;
    }

    #[test]
    fn div_gradient_matches_finite_differences_with_broadcasting(
        (a, b) in broadcast_pair(RANK, DIM).prop_flat_map(|(a, b)| {
            (array(a, -2.0, 2.0), array_away_from(b, -2.0, 2.0, vec![0.0], 0.5))
        })
    ) {
        check(|_t, v| v[0] / v[1], &[a, b])?;
    }

    #[test]
    fn neg_gradient_matches_finite_differences(x in values(-2.0, 2.0)) {
        check(|_t, v| -v[0], &[x])?;
    }

    #[test]
    fn scalar_arithmetic_on_either_side_matches_finite_differences(
        x in values_away_from(-2.0, 2.0, vec![0.0])
    ) {
        check(|_t, v| 2.0 - v[0] * 3.0 + 1.5 / v[0] - v[0] / 4.0 + (1.0 + v[0]) * (0.5 * v[0]), &[x])?;
    }

    // ---- elementwise maths ----

    #[test]
    fn powf_gradient_matches_finite_differences_for_positive_inputs(
        x in values(0.2, 3.0), p in -1.5f64..3.0
    ) {
        check(|_t, v| v[0].powf(p), &[x])?;
    }

    #[test]
    fn powi_gradient_matches_finite_differences(
        x in values_away_from(-2.0, 2.0, vec![0.0]), n in -3i32..=4
    ) {
        check(|_t, v| v[0].powi(n), &[x])?;
    }

    #[test]
    fn square_gradient_matches_finite_differences(x in values(-2.0, 2.0)) {
        check(|_t, v| v[0].square(), &[x])?;
    }

    #[test]
    fn recip_gradient_matches_finite_differences_away_from_zero(
        x in values_away_from(-2.0, 2.0, vec![0.0])
    ) {
        // away_from keeps |x| ≥ 0.05; scale so |x| ≥ 0.5 and 1/x stays well conditioned.
        let x = x.mapv(|v| v.signum() * (v.abs() + 0.45));
        check(|_t, v| v[0].recip(), &[x])?;
    }

    #[test]
    fn exp_gradient_matches_finite_differences(x in values(-2.0, 2.0)) {
        check(|_t, v| v[0].exp(), &[x])?;
    }

    #[test]
    fn ln_gradient_matches_finite_differences_for_positive_inputs(x in values(0.2, 3.0)) {
        check(|_t, v| v[0].ln(), &[x])?;
    }

    #[test]
    fn sqrt_gradient_matches_finite_differences_for_positive_inputs(x in values(0.2, 3.0)) {
        check(|_t, v| v[0].sqrt(), &[x])?;
    }

    #[test]
    fn abs_gradient_matches_finite_differences_away_from_zero(
        x in values_away_from(-2.0, 2.0, vec![0.0])
    ) {
        check(|_t, v| v[0].abs(), &[x])?;
    }

    #[test]
    fn sin_gradient_matches_finite_differences(x in values(-3.0, 3.0)) {
        check(|_t, v| v[0].sin(), &[x])?;
    }

    #[test]
    fn cos_gradient_matches_finite_differences(x in values(-3.0, 3.0)) {
        check(|_t, v| v[0].cos(), &[x])?;
    }

    #[test]
    fn erf_gradient_matches_finite_differences(x in values(-3.0, 3.0)) {
        check(|_t, v| v[0].erf(), &[x])?;
    }

    // ---- activations ----

    #[test]
    fn tanh_gradient_matches_finite_differences(x in values(-3.0, 3.0)) {
        check(|_t, v| v[0].tanh(), &[x])?;
    }

    #[test]
    fn sigmoid_gradient_matches_finite_differences(x in values(-5.0, 5.0)) {
        check(|_t, v| v[0].sigmoid(), &[x])?;
    }

    #[test]
    fn relu_gradient_matches_finite_differences_away_from_zero(
        x in values_away_from(-2.0, 2.0, vec![0.0])
    ) {
        check(|_t, v| v[0].relu(), &[x])?;
    }

    #[test]
    fn leaky_relu_gradient_matches_finite_differences_away_from_zero(
        x in values_away_from(-2.0, 2.0, vec![0.0]), slope in 0.0f64..0.5
    ) {
        check(|_t, v| v[0].leaky_relu(slope), &[x])?;
    }

    #[test]
    fn elu_gradient_matches_finite_differences_away_from_zero(
        x in values_away_from(-3.0, 3.0, vec![0.0]), alpha in 0.1f64..2.0
    ) {
        check(|_t, v| v[0].elu(alpha), &[x])?;
    }

    #[test]
    fn gelu_gradient_matches_finite_differences(x in values(-4.0, 4.0)) {
        check(|_t, v| v[0].gelu(), &[x])?;
    }

    #[test]
    fn gelu_tanh_gradient_matches_finite_differences(x in values(-4.0, 4.0)) {
        check(|_t, v| v[0].gelu_tanh(), &[x])?;
    }

    #[test]
    fn softplus_gradient_matches_finite_differences(x in values(-10.0, 10.0)) {
        check(|_t, v| v[0].softplus(), &[x])?;
    }

    #[test]
    fn log_sigmoid_gradient_matches_finite_differences(x in values(-10.0, 10.0)) {
        check(|_t, v| v[0].log_sigmoid(), &[x])?;
    }

    #[test]
    fn rsub_and_rdiv_gradients_match_finite_differences(x in values(0.5, 3.0)) {
        check(|_t, v| v[0].rsub(2.0) * v[0].rdiv(3.0), &[x])?;
    }

    #[test]
    fn clamp_gradient_matches_finite_differences_away_from_the_bounds(
        x in values_away_from(-2.0, 2.0, vec![-0.5, 0.7])
    ) {
        check(|_t, v| v[0].clamp(-0.5, 0.7), &[x])?;
    }

    #[test]
    fn maximum_gradient_matches_finite_differences_with_broadcasting((a, b) in untied_broadcast_values()) {
        check(|_t, v| v[0].maximum(v[1]), &[a, b])?;
    }

    #[test]
    fn minimum_gradient_matches_finite_differences_with_broadcasting((a, b) in untied_broadcast_values()) {
        check(|_t, v| v[0].minimum(v[1]), &[a, b])?;
    }

    #[test]
    fn where_gradient_reaches_only_the_selected_side_with_broadcasting(
        ((a, b), cond) in broadcast_pair(RANK, DIM).prop_flat_map(|(sa, sb)| {
            let full = broadcast_shapes(&sa, &sb);
            let n = full.iter().product::<usize>();
            (
                (array(sa, -2.0, 2.0), array(sb, -2.0, 2.0)),
                vec(any::<bool>(), n).prop_map(move |bits| {
                    ArrayD::from_shape_vec(IxDyn(&full), bits.iter().map(|&b| b as u8 as f64).collect())
                        .expect("length matches shape")
                }),
            )
        })
    ) {
        check(|t, v| Var::where_(t.constant(cond.clone()), v[0], v[1]), &[a, b])?;
    }

    // ---- matmul ----

    #[test]
    fn matmul_gradient_matches_finite_differences_for_1d_2d_and_batched_operands(
        (a, b) in matmul_pair(DIM).prop_flat_map(|(a, b)| (array(a, -2.0, 2.0), array(b, -2.0, 2.0)))
    ) {
        check(|_t, v| v[0].matmul(v[1]), &[a, b])?;
    }

    // ---- movement ----

    #[test]
    fn t_gradient_matches_finite_differences(
        x in shape(2, DIM).prop_flat_map(|s| array(s, -2.0, 2.0))
    ) {
        check(|_t, v| v[0].t(), &[x])?;
    }

    #[test]
    fn transpose_gradient_matches_finite_differences(
        (x, a, b) in shape(RANK, DIM).prop_flat_map(|s| {
            let r = s.len() as isize;
            (array(s, -2.0, 2.0), -r..r, -r..r)
        })
    ) {
        check(|_t, v| v[0].transpose(a, b), &[x])?;
    }

    #[test]
    fn permute_gradient_matches_finite_differences(
        (x, axes) in shape(RANK, DIM).prop_flat_map(|s| {
            // Every other axis counted from the end: both conventions in one permutation.
            let r = s.len() as isize;
            let order: Vec<isize> = (0..r).map(|a| if a % 2 == 1 { a - r } else { a }).collect();
            (array(s, -2.0, 2.0), Just(order).prop_shuffle())
        })
    ) {
        check(|_t, v| v[0].permute(&axes), &[x])?;
    }

    #[test]
    fn reshape_gradient_matches_finite_differences(
        (x, new_shape) in shape(RANK, DIM).prop_flat_map(|s| {
            let flat = vec![s.iter().product::<usize>()];
            (array(s.clone(), -2.0, 2.0), prop_oneof![Just(flat), Just(s).prop_shuffle()])
        })
    ) {
        check(|_t, v| v[0].reshape(&new_shape), &[x])?;
    }

    #[test]
    fn broadcast_to_gradient_sums_over_the_broadcast_axes(
        (x, target) in broadcast_pair(RANK, DIM).prop_flat_map(|(a, b)| {
            let target = broadcast_shapes(&a, &b);
            (array(a, -2.0, 2.0), Just(target))
        })
    ) {
        check(|_t, v| v[0].broadcast_to(&target), &[x])?;
    }

    #[test]
    fn squeeze_gradient_matches_finite_differences(
        (x, axis) in shape(RANK, DIM).prop_flat_map(|s| (Just(s.clone()), 0..=s.len()))
            .prop_flat_map(|(mut s, axis)| {
                s.insert(axis, 1);
                (array(s, -2.0, 2.0), Just(axis as isize))
            })
    ) {
        check(|_t, v| v[0].squeeze(axis), &[x])?;
    }

    #[test]
    fn unsqueeze_gradient_matches_finite_differences(
        (x, axis) in shape_or_scalar(RANK, DIM).prop_flat_map(|s| {
            let r = s.len() as isize;
            (array(s, -2.0, 2.0), -(r + 1)..=r)
        })
    ) {
        check(|_t, v| v[0].unsqueeze(axis), &[x])?;
    }

    #[test]
    fn flatten_from_gradient_matches_finite_differences(
        (x, start) in shape(RANK, DIM).prop_flat_map(|s| {
            let r = s.len() as isize;
            (array(s, -2.0, 2.0), -r..r)
        })
    ) {
        check(|_t, v| v[0].flatten_from(start), &[x])?;
    }

    #[test]
    fn concat_gradient_splits_back_to_each_input(
        (a, b, axis) in shape(RANK, DIM).prop_flat_map(|s| {
            let r = s.len();
            (Just(s), 0..r, 1..=DIM)
        }).prop_flat_map(|(s, axis, other_len)| {
            let mut s2 = s.clone();
            s2[axis] = other_len;
            let negative = axis as isize - s.len() as isize;
            (array(s, -2.0, 2.0), array(s2, -2.0, 2.0), prop_oneof![Just(axis as isize), Just(negative)])
        })
    ) {
        check(|_t, v| Var::concat(&[v[0], v[1], v[0]], axis), &[a, b])?;
    }

    #[test]
    fn stack_gradient_matches_finite_differences(
        (a, b, axis) in shape(RANK, DIM).prop_flat_map(|s| {
            let r = s.len();
            (array(s.clone(), -2.0, 2.0), array(s, -2.0, 2.0), 0..=r)
        })
    ) {
        check(|_t, v| Var::stack(&[v[0], v[1]], axis as isize), &[a, b])?;
    }

    #[test]
    fn slice_gradient_is_zero_outside_the_slice(
        (x, axis, start, end) in shape(RANK, DIM)
            .prop_flat_map(|s| (Just(s.clone()), 0..s.len()))
            .prop_flat_map(|(s, axis)| (Just(s.clone()), Just(axis), 0..s[axis]))
            .prop_flat_map(|(s, axis, start)| {
                let len = s[axis];
                (array(s, -2.0, 2.0), Just(axis), Just(start), start + 1..=len)
            })
    ) {
        check(|_t, v| v[0].slice(axis as isize, start, end), &[x])?;
    }

    #[test]
    fn index_select_gradient_adds_up_repeated_indices(
        (x, axis, indices) in shape(RANK, DIM)
            .prop_flat_map(|s| (Just(s.clone()), 0..s.len()))
            .prop_flat_map(|(s, axis)| {
                let len = s[axis];
                (array(s, -2.0, 2.0), Just(axis), vec(0..len, 1..=5))
            })
    ) {
        check(|_t, v| v[0].index_select(axis as isize, &indices), &[x])?;
    }

    #[test]
    fn gather_gradient_scatters_back_and_adds_up_repeats(
        (x, axis, index) in shape(RANK, DIM)
            .prop_flat_map(|s| (Just(s.clone()), 0..s.len(), 1..=DIM))
            .prop_flat_map(|(s, axis, picks)| {
                let mut index_shape = s.clone();
                index_shape[axis] = picks;
                let n: usize = index_shape.iter().product();
                let len = s[axis];
                (
                    array(s, -2.0, 2.0),
                    Just(axis),
                    vec(0..len, n).prop_map(move |values| index_array(index_shape.clone(), values)),
                )
            })
    ) {
        check(|_t, v| v[0].gather(axis as isize, &index), &[x])?;
    }

    // ---- reductions ----

    #[test]
    fn sum_gradient_is_one_everywhere(x in values(-2.0, 2.0)) {
        check(|_t, v| v[0].sum(), &[x])?;
    }

    #[test]
    fn sum_axes_gradient_matches_finite_differences_with_and_without_keepdim(
        (x, axes, keepdim) in values_with_axes()
    ) {
        check(|_t, v| v[0].sum_axes(&axes, keepdim), &[x])?;
    }

    #[test]
    fn mean_gradient_matches_finite_differences(x in values(-2.0, 2.0)) {
        check(|_t, v| v[0].mean(), &[x])?;
    }

    #[test]
    fn mean_axes_gradient_matches_finite_differences_with_and_without_keepdim(
        (x, axes, keepdim) in values_with_axes()
    ) {
        check(|_t, v| v[0].mean_axes(&axes, keepdim), &[x])?;
    }

    #[test]
    fn var_gradient_matches_finite_differences(x in values(-2.0, 2.0)) {
        check(|_t, v| v[0].var(), &[x])?;
    }

    #[test]
    fn var_axes_gradient_matches_finite_differences_with_and_without_keepdim(
        (x, axes, keepdim) in values_with_axes()
    ) {
        check(|_t, v| v[0].var_axes(&axes, keepdim), &[x])?;
    }

    #[test]
    fn max_over_all_gradient_reaches_only_the_largest_element(
        x in shape_or_scalar(RANK, DIM).prop_flat_map(|s| distinct_array(s, 0.1))
    ) {
        check(|_t, v| v[0].max(), &[x])?;
    }

    #[test]
    fn min_over_all_gradient_reaches_only_the_smallest_element(
        x in shape_or_scalar(RANK, DIM).prop_flat_map(|s| distinct_array(s, 0.1))
    ) {
        check(|_t, v| v[0].min(), &[x])?;
    }

    #[test]
    fn max_axes_gradient_matches_finite_differences_without_ties(
        (x, axes, keepdim) in distinct_values_with_axes()
    ) {
        check(|_t, v| v[0].max_axes(&axes, keepdim), &[x])?;
    }

    #[test]
    fn min_axes_gradient_matches_finite_differences_without_ties(
        (x, axes, keepdim) in distinct_values_with_axes()
    ) {
        check(|_t, v| v[0].min_axes(&axes, keepdim), &[x])?;
    }

    // ---- softmax family ----

    #[test]
    fn logsumexp_gradient_matches_finite_differences_with_keepdim(
        (x, axis) in values_with_axis()
    ) {
        check(|_t, v| v[0].logsumexp(axis, true), &[x])?;
    }

    #[test]
    fn logsumexp_gradient_matches_finite_differences_without_keepdim(
        (x, axis) in values_with_axis()
    ) {
        check(|_t, v| v[0].logsumexp(axis, false), &[x])?;
    }

    #[test]
    fn softmax_gradient_matches_finite_differences((x, axis) in values_with_axis()) {
        check(|_t, v| v[0].softmax(axis), &[x])?;
    }

    #[test]
    fn log_softmax_gradient_matches_finite_differences((x, axis) in values_with_axis()) {
        check(|_t, v| v[0].log_softmax(axis), &[x])?;
    }
}

// ---- higher order: `tape.grad` records differentiable gradients ----

/// `gradgradcheck` with the default tolerances, as a proptest outcome: Hessian-vector
/// products of `f` against finite differences of the gradient that `tape.grad` records.
fn check_second_order<F>(f: F, inputs: &[ArrayD<f64>]) -> Result<(), TestCaseError>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
{
    gradgradcheck(|_t, v| f(v), inputs, &GradcheckOptions::default())
        .map_err(|e| TestCaseError::fail(e.to_string()))
}

/// Every op of the library applied to one input `x` (elements in [-2, 2], at least
/// `POLE_MARGIN` from 0 and `MARGIN` from -0.5 and 0.7): the table the higher-order properties sweep over.
const OPS: usize = 46;

fn apply_op<'t>(op: usize, x: Var<'t, f64>) -> Var<'t, f64> {
    let t = x.tape();
    let n = x.shape().iter().product::<usize>();
    let positive = x.square() + 0.5;
    match op {
        0 => x.tanh(),
        1 => x.sigmoid(),
        2 => x.exp(),
        3 => positive.ln(),
        4 => positive.sqrt(),
        5 => positive.powf(1.7),
        6 => x.powi(3),
        7 => x.sin(),
        8 => x.cos(),
        9 => x.relu() * x,
        10 => x.abs() * x,
        11 => x.leaky_relu(0.1) * x,
        12 => x.elu(1.0),
        13 => x.gelu(),
        14 => x.gelu_tanh(),
        15 => x.softplus(),
        16 => x.erf(),
        17 => x.clamp(-0.5, 0.7) * x,
        18 => x.recip(),
        19 => x.softmax(-1),
        20 => x.log_softmax(0),
        21 => x.logsumexp(-1, false),
        22 => x.max_axes([-1], true),
        23 => x.min(),
        24 => x.var_axes([0], false),
        25 => x.mean(),
        26 => x.transpose(0, -1),
        27 => x.permute(&(0..x.ndim() as isize).rev().collect::<Vec<_>>()),
        28 => x.reshape(&[n]),
        29 => x
            .unsqueeze(0)
            .broadcast_to(&[&[2][..], &x.shape()].concat()),
        30 => Var::concat(&[x, x * 2.0], 0),
        31 => Var::stack(&[x, x.sin()], -1),
        32 => x.slice(0, 0, 1),
        33 => x.index_select(0, &[0, 0]),
        34 => {
            let mut index_shape = x.shape();
            index_shape[0] = 2;
            x.gather(0, &ArrayD::zeros(IxDyn(&index_shape)))
        }
        35 => Var::where_(x.gt_scalar(0.0), x * x, x * 3.0),
        36 => x.maximum(x.sin() * 0.5),
        37 => x.minimum(t.constant(ArrayD::from_elem(IxDyn(&[]), 0.3))) * x,
        38 => x.reshape(&[1, n]).matmul(x.reshape(&[n, 1])),
        39 => x.sum_axes([0], true) * x,
        40 => x / (x.square() + 1.0),
        41 => x.flatten_from(0) - x.reshape(&[n]).exp(),
        42 => (x * x).max(),
        43 => x.log_sigmoid(),
        44 => x.rsub(1.5) * x.rdiv(2.0),
        _ => x.unsqueeze(-1).matmul(x.unsqueeze(-2)),
    }
}

/// Arrays for the op table: continuous values (so no ties), pushed `POLE_MARGIN` from 0
/// and `MARGIN` from the kinks -0.5 and 0.7 without merging values.
fn table_input() -> impl Strategy<Value = ArrayD<f64>> {
    shape(RANK, DIM).prop_flat_map(|s| {
        array(s, -2.0, 2.0).prop_map(|a| {
            a.mapv(|mut x| {
                for (k, margin) in [(0.0, POLE_MARGIN), (-0.5, MARGIN), (0.7, MARGIN)] {
                    if (x - k).abs() < margin {
                        x += if x >= k { margin } else { -margin };
                    }
                }
                x
            })
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn tanh_second_derivative_matches_finite_differences_of_tape_grad(x in values(-2.0, 2.0)) {
        check_second_order(|v| v[0].tanh().sum(), &[x])?;
    }

    #[test]
    fn sigmoid_second_derivative_matches_finite_differences_of_tape_grad(x in values(-3.0, 3.0)) {
        check_second_order(|v| v[0].sigmoid().sum(), &[x])?;
    }

    #[test]
    fn exp_second_derivative_matches_finite_differences_of_tape_grad(x in values(-2.0, 2.0)) {
        check_second_order(|v| v[0].exp().sum(), &[x])?;
    }

    #[test]
    fn mul_second_derivatives_match_finite_differences_of_tape_grad((a, b) in broadcast_values(-2.0, 2.0)) {
        check_second_order(|v| (v[0] * v[1] * v[0]).sum(), &[a, b])?;
    }

    #[test]
    fn div_second_derivatives_match_finite_differences_of_tape_grad(
        (a, b) in broadcast_pair(RANK, DIM).prop_flat_map(|(a, b)| {
            (array(a, -2.0, 2.0), array_away_from(b, -2.0, 2.0, vec![0.0], 0.5))
        })
    ) {
        check_second_order(|v| (v[0] / v[1]).sum(), &[a, b])?;
    }

    #[test]
    fn matmul_second_derivatives_match_finite_differences_of_tape_grad(
        (a, b) in matmul_pair(DIM).prop_flat_map(|(a, b)| (array(a, -1.0, 1.0), array(b, -1.0, 1.0)))
    ) {
        check_second_order(|v| v[0].matmul(v[1]).tanh().sum(), &[a, b])?;
    }

    #[test]
    fn softmax_second_derivative_matches_finite_differences_of_tape_grad((x, axis) in values_with_axis()) {
        check_second_order(|v| v[0].softmax(axis).square().sum(), &[x])?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `tape.grad` (the rules applied to `Var`s) and `backward` (the same rules applied to
    /// arrays) give the same first-order gradients for every op.
    #[test]
    fn tape_grad_and_backward_agree_on_every_op(op in 0..OPS, x in table_input()) {
        let tape = Tape::<f64>::new();
        let xv = tape.var(x);
        let y = apply_op(op, xv).sin().sum();
        let recorded = tape.grad(y, &[xv])[0].to_array();
        let swept = y.backward()[xv].clone();
        prop_assert_eq!(recorded.shape(), swept.shape());
        for (r, s) in recorded.iter().zip(swept.iter()) {
            prop_assert!((r - s).abs() <= 1e-12 + 1e-12 * s.abs(), "op {}: tape.grad {} vs backward {}", op, r, s);
        }
    }

    /// Every op's backward is itself differentiable: the gradient `tape.grad` records has
    /// the derivative finite differences predict (Hessian-vector products of `sin(op(x))`).
    #[test]
    fn every_op_has_a_differentiable_backward(op in 0..OPS, x in table_input()) {
        check_second_order(|v| apply_op(op, v[0]).sin().sum(), &[x])?;
    }
}
