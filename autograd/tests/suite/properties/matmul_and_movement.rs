//! Gradients of `matmul` and of the movement ops (transposes, reshapes, broadcasts,
//! concatenation, slicing, indexing) against finite differences.

use proptest::collection::vec;
use proptest::prelude::*;
use tapegrad_autograd::Var;
use tapegrad_autograd::testing::{array, broadcast_pair, matmul_pair, shape, shape_or_scalar};

use super::{DIM, RANK, broadcast_shapes, check, index_array};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

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
}
