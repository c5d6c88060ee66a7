//! `prod` and `prod_axis`: PyTorch's values and gradients (`tests/data/extra.json`, with one
//! zero and several in the input), and gradcheck / gradgradcheck over random shapes, axes
//! and zeros.

use ndarray::ArrayD;
use serde_json::Value;
use tapegrad_autograd::Tape;

use super::golden_ops::{compare_with_pytorch, f64_array, load_golden, replay_all};

/// `prod` of one case of `extra.json`, compared with PyTorch.
fn replay(case: &Value) -> Vec<String> {
    let tape = Tape::<f64>::new();
    let input = &case["inputs"][0];
    let x = tape.var(f64_array(&input["shape"], &input["values"]));
    let out = match case["attrs"]["axis"].as_i64() {
        Some(axis) => x.prod_axis(axis as isize, case["attrs"]["keepdim"] == true),
        None => x.prod(),
    };
    compare_with_pytorch(case, out, &[x])
}

#[test]
fn prod_matches_pytorch_values_and_gradients_with_and_without_zeros() {
    let cases: Vec<Value> = load_golden("extra.json")
        .into_iter()
        .filter(|c| c["op"].as_str().is_some_and(|op| op.starts_with("prod")))
        .collect();
    let replayed = replay_all(&cases, &[], replay);
    assert_eq!(replayed.len(), 6, "{replayed:?}");
}

/// By hand: x = [2, 0, 3, 0]: every gradient Π_{j≠i} xⱼ holds a zero; with one zero only the
/// zero's gradient, 2·3·4 = 24, is not.
#[test]
fn prod_gradient_at_zeros_is_the_product_of_the_others() {
    let tape = Tape::<f64>::new();
    let two = tape.var(ndarray::array![2.0, 0.0, 3.0, 0.0].into_dyn());
    assert_eq!(
        two.prod().backward()[two],
        ndarray::array![0.0, 0.0, 0.0, 0.0].into_dyn()
    );
    let one = tape.var(ndarray::array![2.0, 0.0, 3.0, 4.0].into_dyn());
    assert_eq!(
        one.prod().backward()[one],
        ndarray::array![0.0, 24.0, 0.0, 0.0].into_dyn()
    );
    // Second order at one zero: ∂²/∂x₁∂x₀ = x₂ x₃ = 12.
    let g = tape.grad(one.prod(), &[one])[0];
    let h_row = tape.grad(g.slice(0, 1, 2).sum(), &[one])[0];
    assert_eq!(
        h_row.to_array(),
        ndarray::array![12.0, 0.0, 8.0, 6.0].into_dyn()
    );
}

#[test]
#[should_panic(expected = "prod_axis")]
fn prod_axis_out_of_range_panics_naming_the_op() {
    let tape = Tape::<f64>::new();
    let _ = tape.var(ArrayD::zeros(vec![2, 3])).prod_axis(2, false);
}

#[cfg(feature = "proptest")]
mod properties {
    use proptest::prelude::*;
    use tapegrad_autograd::testing::{array, shape};
    use tapegrad_autograd::{GradcheckOptions, gradcheck, gradgradcheck};

    use super::*;

    /// A random array of up to 3 axes with up to two elements set to zero, and an axis.
    fn with_zeros() -> impl Strategy<Value = (ArrayD<f64>, isize, bool)> {
        shape(3, 4)
            .prop_flat_map(|s| {
                let n = s.iter().product::<usize>();
                let rank = s.len() as isize;
                (
                    array(s, -1.5, 1.5),
                    proptest::collection::vec(0..n, 0..=2),
                    -rank..rank,
                    any::<bool>(),
                )
            })
            .prop_map(|(mut x, zeros, axis, keepdim)| {
                for z in zeros {
                    x.as_slice_mut().expect("standard layout")[z] = 0.0;
                }
                (x, axis, keepdim)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn prod_passes_gradcheck_and_gradgradcheck_with_zeros((x, axis, keepdim) in with_zeros()) {
            let options = GradcheckOptions::default();
            let inputs = std::slice::from_ref(&x);
            gradcheck(|_t, v| v[0].prod(), inputs, &options)
                .map_err(|e| TestCaseError::fail(format!("prod: {e}")))?;
            gradcheck(|_t, v| v[0].prod_axis(axis, keepdim), inputs, &options)
                .map_err(|e| TestCaseError::fail(format!("prod_axis: {e}")))?;
            gradgradcheck(|_t, v| v[0].prod(), inputs, &options)
                .map_err(|e| TestCaseError::fail(format!("prod, second order: {e}")))?;
            gradgradcheck(|_t, v| v[0].prod_axis(axis, keepdim), inputs, &options)
                .map_err(|e| TestCaseError::fail(format!("prod_axis, second order: {e}")))?;
        }
    }
}
