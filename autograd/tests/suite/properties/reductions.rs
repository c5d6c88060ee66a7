//! Gradients of the reductions (sums, means, variances, max and min) and of the softmax
//! family against finite differences.

use proptest::prelude::*;
use tapegrad_autograd::testing::{distinct_array, shape_or_scalar};

use super::{
    DIM, RANK, check, distinct_values_with_axes, values, values_with_axes, values_with_axis,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

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
