//! `solve` (`torch.linalg.solve`): PyTorch's values and gradients (`tests/data/extra.json`:
//! matrix and vector right-hand sides, batched, broadcast, a system that needs row swaps),
//! the shapes of PyTorch's vector rule, singular matrices, shape panics, and gradcheck /
//! gradgradcheck over random regular systems.

use ndarray::{ArrayD, array};
use serde_json::Value;
use tapegrad_autograd::Tape;

use super::golden_ops::{compare_with_pytorch, f64_array, load_golden, replay_all};

/// `solve` of one case of `extra.json`, compared with PyTorch.
fn replay(case: &Value) -> Vec<String> {
    let tape = Tape::<f64>::new();
    let (a, b) = (&case["inputs"][0], &case["inputs"][1]);
    let a = tape.var(f64_array(&a["shape"], &a["values"]));
    let b = tape.var(f64_array(&b["shape"], &b["values"]));
    compare_with_pytorch(case, a.solve(b), &[a, b])
}

#[test]
fn solve_matches_pytorch_values_and_gradients() {
    let cases: Vec<Value> = load_golden("extra.json")
        .into_iter()
        .filter(|c| c["op"].as_str().is_some_and(|op| op.starts_with("solve")))
        .collect();
    let replayed = replay_all(&cases, &[], replay);
    assert_eq!(replayed.len(), 6, "{replayed:?}");
}

/// By hand: A = diag(2, 4), b = [1, 1], so x = [1/2, 1/4]. With L = x₀ + 2 x₁ (G = [1, 2]):
/// ∂L/∂b = A⁻ᵀ G = [1/2, 1/2], and ∂L/∂A = −(∂L/∂b) xᵀ = −[[1/4, 1/8], [1/4, 1/8]]: the
/// off-diagonal entries get a gradient too, though they are zero.
#[test]
fn solve_gradient_of_a_diagonal_system_by_hand() {
    let tape = Tape::<f64>::new();
    let a = tape.var(array![[2.0, 0.0], [0.0, 4.0]].into_dyn());
    let b = tape.var(array![1.0, 1.0].into_dyn());
    let x = a.solve(b);
    assert_eq!(x.to_array(), array![0.5, 0.25].into_dyn());
    let grads = x.backward_with_seed(array![1.0, 2.0].into_dyn());
    assert_eq!(grads[b], array![0.5, 0.5].into_dyn());
    assert_eq!(
        grads[a],
        array![[-0.25, -0.125], [-0.25, -0.125]].into_dyn()
    );
}

/// By hand, one equation a x = b (one-element values, held inline on the tape): x = b/a,
/// ∂x/∂a = −b/a², ∂²x/∂a² = 2b/a³, ∂²x/∂a∂b = −1/a²; at a = 2, b = 3: −0.75, 0.75, −0.25.
#[test]
fn solve_second_derivatives_of_one_equation_by_hand() {
    let tape = Tape::<f64>::new();
    let a = tape.var(array![[2.0]].into_dyn());
    let b = tape.var(array![3.0].into_dyn());
    let x = a.solve(b).sum();
    assert_eq!(x.item(), 1.5);
    let da = tape.grad(x, &[a])[0];
    assert_eq!(da.item(), -0.75);
    let second = tape.grad(da.sum(), &[a, b]);
    assert_eq!((second[0].item(), second[1].item()), (0.75, -0.25));
}

/// PyTorch's rule: `B` is a vector when 1-D or shaped like `A` without its last axis, and
/// batch axes broadcast.
#[test]
fn solve_result_shapes_follow_pytorch() {
    let tape = Tape::<f64>::new();
    let eye = |shape: &[usize]| {
        let n = shape[shape.len() - 1];
        let mut a = ArrayD::zeros(shape);
        a.indexed_iter_mut()
            .filter(|(i, _)| i[shape.len() - 1] == i[shape.len() - 2])
            .for_each(|(_, v)| *v = n as f64);
        tape.var(a)
    };
    let cases: [(&[usize], &[usize], &[usize]); 7] = [
        (&[3, 3], &[3], &[3]),
        (&[3, 3], &[3, 2], &[3, 2]),
        (&[2, 3, 3], &[3], &[2, 3]),
        (&[2, 3, 3], &[2, 3], &[2, 3]),
        (&[2, 3, 3], &[3, 1], &[2, 3, 1]),
        (&[2, 1, 3, 3], &[4, 3, 2], &[2, 4, 3, 2]),
        (&[3, 3], &[5, 3, 2], &[5, 3, 2]),
    ];
    for (a, b, want) in cases {
        let b_var = tape.var(ArrayD::ones(b));
        let x = eye(a).solve(b_var);
        assert_eq!(x.shape(), want, "A {a:?}, B {b:?}");
        // A = n·I: every element of X is 1/n.
        assert!(
            x.value().iter().all(|&v| v == 1.0 / 3.0),
            "A {a:?}, B {b:?}"
        );
    }
}

/// A singular matrix gives NaN (PyTorch raises instead), only for that matrix of a batch,
/// and NaN gradients.
#[test]
fn solve_of_a_singular_matrix_is_nan() {
    let tape = Tape::<f64>::new();
    let a = tape.var(array![[[1.0, 2.0], [2.0, 4.0]], [[2.0, 0.0], [0.0, 4.0]]].into_dyn());
    let b = tape.var(array![1.0, 1.0].into_dyn());
    let x = a.solve(b);
    let value = x.to_array();
    assert!(value[[0, 0]].is_nan() && value[[0, 1]].is_nan());
    assert_eq!((value[[1, 0]], value[[1, 1]]), (0.5, 0.25));
    let grads = x.sum().backward();
    assert!(grads[b].iter().all(|g| g.is_nan()));
    assert!(grads[a].iter().take(4).all(|g| g.is_nan()));
    assert!(grads[a].iter().skip(4).all(|g| g.is_finite()));
}

#[test]
#[should_panic(expected = "the forward value of `solve`")]
fn anomaly_mode_names_solve_for_a_singular_matrix() {
    let tape = Tape::<f64>::new();
    tape.set_anomaly_detection(true);
    let a = tape.var(array![[1.0, 2.0], [2.0, 4.0]].into_dyn());
    let _ = a.solve(tape.var(array![1.0, 1.0].into_dyn()));
}

#[test]
#[should_panic(expected = "solve: A must be a square matrix or a batch of them, got shapes [2, 3]")]
fn solve_panics_on_a_matrix_that_is_not_square() {
    let tape = Tape::<f64>::new();
    let _ = tape
        .var(ArrayD::zeros(vec![2, 3]))
        .solve(tape.var(ArrayD::zeros(vec![2])));
}

#[test]
#[should_panic(expected = "solve: shapes [3, 3] and [2, 2] are incompatible (B needs 3 rows")]
fn solve_panics_when_b_has_the_wrong_number_of_rows() {
    let tape = Tape::<f64>::new();
    let _ = tape
        .var(ArrayD::zeros(vec![3, 3]))
        .solve(tape.var(ArrayD::zeros(vec![2, 2])));
}

#[test]
#[should_panic(expected = "(batch axes [2] and [3] cannot be broadcast together)")]
fn solve_panics_when_batch_axes_do_not_broadcast() {
    let tape = Tape::<f64>::new();
    let _ = tape
        .var(ArrayD::zeros(vec![2, 3, 3]))
        .solve(tape.var(ArrayD::zeros(vec![3, 3, 1])));
}

#[cfg(feature = "proptest")]
mod properties {
    use ndarray::Dimension;
    use proptest::prelude::*;
    use tapegrad_autograd::testing::{array, solve_pair};
    use tapegrad_autograd::{GradcheckOptions, gradcheck, gradgradcheck};

    use super::*;

    /// `M + n·I` for the square matrices of `shape`, `M` uniform in `[-1, 1)`: each row's
    /// off-diagonal magnitudes sum to less than n − 1, below its diagonal, so the matrix is
    /// strictly diagonally dominant (regular, and well conditioned for finite differences).
    fn regular(shape: Vec<usize>) -> impl Strategy<Value = ArrayD<f64>> {
        let n = shape[shape.len() - 1];
        array(shape, -1.0, 1.0).prop_map(move |mut m| {
            for (i, v) in m.indexed_iter_mut() {
                let i = i.slice();
                if i[i.len() - 1] == i[i.len() - 2] {
                    *v += n as f64;
                }
            }
            m
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn solve_passes_gradcheck_and_gradgradcheck(
            (a, b) in solve_pair(4).prop_flat_map(|(a, b)| (regular(a), array(b, -2.0, 2.0)))
        ) {
            let options = GradcheckOptions::default();
            let inputs = [a, b];
            gradcheck(|_t, v| v[0].solve(v[1]), &inputs, &options)
                .map_err(|e| TestCaseError::fail(format!("solve: {e}")))?;
            gradgradcheck(|_t, v| v[0].solve(v[1]), &inputs, &options)
                .map_err(|e| TestCaseError::fail(format!("solve, second order: {e}")))?;
        }
    }
}
