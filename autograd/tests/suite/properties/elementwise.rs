//! Gradients of the elementwise ops against finite differences: arithmetic (with
//! broadcasting), maths functions, activations, `maximum`/`minimum` and `where_`.

use ndarray::{ArrayD, IxDyn};
use proptest::collection::vec;
use proptest::prelude::*;
use tapegrad_autograd::Var;
use tapegrad_autograd::testing::{array, array_away_from, broadcast_pair};

use super::{
    DIM, RANK, broadcast_shapes, broadcast_values, check, untied_broadcast_values, values,
    values_away_from,
};

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
}
