//! `functional`: `vjp`, `jvp`, `hvp`, `jacobian` and `hessian` on random inputs, against
//! central finite differences and closed forms; `gradgradcheck` against a backward that is
//! right to first order and wrong to second.
#![cfg(feature = "proptest")]

use ndarray::{Array2, ArrayD, ArrayViewD, Ix2, IxDyn};
use proptest::prelude::*;
use tapegrad_autograd::functional::{
    hessian, hessian_matrix, hvp, jacobian, jacobian_matrix, jvp, vjp,
};
use tapegrad_autograd::testing::{array, arrays, shape};
use tapegrad_autograd::{CustomOp, GradcheckOptions, Inputs, Tape, Var, gradcheck, gradgradcheck};

/// Finite-difference step and tolerance: central differences of smooth functions of
/// inputs in [-1.5, 1.5] are good to ~1e-9 at this step.
const EPS: f64 = 1e-5;
const TOL: f64 = 1e-6;

/// A smooth function of two inputs of one shape, with a non-scalar output: both inputs
/// mix across elements (the sum of `y`) so the Jacobian is dense.
fn two_inputs<'t>(_tape: &'t Tape<'t, f64>, v: &Inputs<'t, '_, f64>) -> Var<'t, f64> {
    (v[0].sin() * v[1] + v[1].sum().tanh()) * v[0]
}

/// A smooth scalar function of two inputs of one shape.
fn scalar<'t>(tape: &'t Tape<'t, f64>, v: &Inputs<'t, '_, f64>) -> Var<'t, f64> {
    (two_inputs(tape, v).square().sum() + v[0].exp().sum()).sin()
}

/// The gradient of `scalar`, all inputs' gradients in one flat vector.
fn gradient<'t>(tape: &'t Tape<'t, f64>, v: &Inputs<'t, '_, f64>) -> Var<'t, f64> {
    let g = tape.grad(scalar(tape, v), v);
    let flat: Vec<Var<'_, f64>> = g.iter().map(|g| g.flatten_from(0)).collect();
    Var::concat(&flat, 0)
}

/// `½ wᵀ A w`.
fn quadratic<'t>(tape: &'t Tape<'t, f64>, w: Var<'t, f64>, a: &ArrayD<f64>) -> Var<'t, f64> {
    (w.matmul(tape.constant(a.clone()).matmul(w)) * 0.5).sum()
}

/// `Σ x³` through `CubeWithConstantBackward`.
fn cube<'t>(tape: &'t Tape<'t, f64>, v: &Inputs<'t, '_, f64>) -> Var<'t, f64> {
    tape.custom(CubeWithConstantBackward, &[v[0]])
}

/// `f` evaluated on arrays, through a fresh tape.
fn eval<'env, F>(f: &F, inputs: &[ArrayD<f64>]) -> ArrayD<f64>
where
    F: for<'t> Fn(&'t Tape<'t, f64>, &Inputs<'t, 'env, f64>) -> Var<'t, f64>,
{
    let tape = Tape::new();
    // Variables, not constants: `gradient` differentiates with respect to them.
    let vars: Vec<Var<'_, f64>> = inputs.iter().map(|x| tape.var(x.clone())).collect();
    f(&tape, &Inputs::new(&vars)).to_array()
}

/// The Jacobian by central differences, as a matrix `[output elements, input elements]`
/// per input.
fn numeric_jacobian<'env, F>(f: &F, inputs: &[ArrayD<f64>]) -> Vec<Array2<f64>>
where
    F: for<'t> Fn(&'t Tape<'t, f64>, &Inputs<'t, 'env, f64>) -> Var<'t, f64>,
{
    let n_out = eval(f, inputs).len();
    let mut shifted = inputs.to_vec();
    (0..inputs.len())
        .map(|i| {
            let n_in = inputs[i].len();
            let mut j = Array2::zeros((n_out, n_in));
            for e in 0..n_in {
                let original = flat(&inputs[i])[e];
                flat_mut(&mut shifted[i])[e] = original + EPS;
                let plus = eval(f, &shifted);
                flat_mut(&mut shifted[i])[e] = original - EPS;
                let minus = eval(f, &shifted);
                flat_mut(&mut shifted[i])[e] = original;
                for (o, (p, m)) in plus.iter().zip(minus.iter()).enumerate() {
                    j[[o, e]] = (p - m) / (2.0 * EPS);
                }
            }
            j
        })
        .collect()
}

fn flat(a: &ArrayD<f64>) -> &[f64] {
    a.as_slice().expect("standard layout")
}

fn flat_mut(a: &mut ArrayD<f64>) -> &mut [f64] {
    a.as_slice_mut().expect("standard layout")
}

/// An array as a matrix of `rows` rows (row-major).
fn as_matrix(a: &ArrayD<f64>, rows: usize) -> Array2<f64> {
    let cols = a.len() / rows.max(1);
    a.to_shape((rows, cols))
        .expect("standard layout")
        .into_dimensionality::<Ix2>()
        .expect("2-D")
        .to_owned()
}

/// An array as a column vector.
fn column(a: &ArrayD<f64>) -> Array2<f64> {
    as_matrix(a, a.len())
}

fn assert_close(
    what: &str,
    got: &ArrayD<f64>,
    want: &ArrayD<f64>,
    tol: f64,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.shape(), want.shape(), "{}: shapes differ", what);
    for (g, w) in got.iter().zip(want.iter()) {
        prop_assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{}: {} vs {} (got {:?}, want {:?})",
            what,
            g,
            w,
            got,
            want
        );
    }
    Ok(())
}

/// Two arrays of one random shape, and two more of it (directions).
fn inputs_and_directions() -> impl Strategy<Value = (Vec<ArrayD<f64>>, Vec<ArrayD<f64>>)> {
    shape(2, 3).prop_flat_map(|s| {
        (
            arrays(vec![s.clone(), s.clone()], -1.5, 1.5),
            arrays(vec![s.clone(), s], -1.0, 1.0),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn jacobian_matches_finite_differences((x, _) in inputs_and_directions()) {
        let j = jacobian(two_inputs, &x);
        let out_shape = eval(&two_inputs, &x).shape().to_vec();
        for (i, (analytic, numeric)) in j.iter().zip(numeric_jacobian(&two_inputs, &x)).enumerate() {
            let want: Vec<usize> = out_shape.iter().chain(x[i].shape()).copied().collect();
            prop_assert_eq!(analytic.shape(), &want[..]);
            let n_out = numeric.nrows();
            assert_close("jacobian", &as_matrix(analytic, n_out).into_dyn(), &numeric.into_dyn(), TOL)?;
        }
    }

    #[test]
    fn vjp_is_the_transposed_jacobian_times_the_cotangent(
        ((x, _), u) in inputs_and_directions().prop_flat_map(|(x, v)| {
            let s = x[0].shape().to_vec();
            (Just((x, v)), array(s, -1.0, 1.0))
        })
    ) {
        let (y, products) = vjp(two_inputs, &x, &u);
        assert_close("vjp output", &y, &eval(&two_inputs, &x), 1e-12)?;
        for (i, numeric) in numeric_jacobian(&two_inputs, &x).iter().enumerate() {
            let want = numeric.t().dot(&column(&u));
            assert_close("vjp", &column(&products[i]).into_dyn(), &want.into_dyn(), TOL)?;
        }
    }

    #[test]
    fn jvp_is_the_jacobian_times_the_tangents((x, v) in inputs_and_directions()) {
        let (y, product) = jvp(two_inputs, &x, &v);
        assert_close("jvp output", &y, &eval(&two_inputs, &x), 1e-12)?;
        let numeric = numeric_jacobian(&two_inputs, &x);
        let want = numeric[0].dot(&column(&v[0])) + numeric[1].dot(&column(&v[1]));
        assert_close("jvp", &column(&product).into_dyn(), &want.into_dyn(), TOL)?;
    }

    #[test]
    fn hessian_matches_finite_differences_of_the_gradient_and_is_symmetric(
        (x, _) in inputs_and_directions()
    ) {
        let h = hessian(scalar, &x);
        // Row block i of the Hessian is the Jacobian of the gradient with respect to x_i.
        let numeric = numeric_jacobian(&gradient, &x);
        let n = x[0].len();
        for (i, row) in h.iter().enumerate() {
            for (j, block) in row.iter().enumerate() {
                let want: Vec<usize> = x[i].shape().iter().chain(x[j].shape()).copied().collect();
                prop_assert_eq!(block.shape(), &want[..]);
                let numeric_block = numeric[j].slice(ndarray::s![i * n..(i + 1) * n, ..]).to_owned();
                assert_close("hessian", &as_matrix(block, n).into_dyn(), &numeric_block.into_dyn(), TOL)?;
                let mirror = as_matrix(&h[j][i], n).t().to_owned();
                assert_close("symmetry", &as_matrix(block, n).into_dyn(), &mirror.into_dyn(), 1e-12)?;
            }
        }
    }

    #[test]
    fn hvp_is_the_hessian_times_the_vectors((x, v) in inputs_and_directions()) {
        let (value, products) = hvp(scalar, &x, &v);
        prop_assert!((value - eval(&scalar, &x).sum()).abs() < 1e-12);
        let h = hessian(scalar, &x);
        let n = x[0].len();
        for (i, product) in products.iter().enumerate() {
            let want = as_matrix(&h[i][0], n).dot(&column(&v[0]))
                + as_matrix(&h[i][1], n).dot(&column(&v[1]));
            assert_close("hvp", &column(product).into_dyn(), &want.into_dyn(), 1e-10)?;
        }
    }

    /// A quadratic form has a closed-form Hessian: f(x) = ½ xᵀ A x gives H = (A + Aᵀ) / 2
    /// and H v = (A + Aᵀ) v / 2, whatever x.
    #[test]
    fn quadratic_form_hessian_and_hvp_are_the_symmetrized_matrix(
        (a, x, v) in (1usize..5).prop_flat_map(|n| (
            array(vec![n, n], -2.0, 2.0),
            array(vec![n], -2.0, 2.0),
            array(vec![n], -1.0, 1.0),
        ))
    ) {
        let a2 = a.clone().into_dimensionality::<Ix2>().unwrap();
        let sym = (&a2 + &a2.t()) * 0.5;
        let h = hessian(|t, w| quadratic(t, w[0], &a), std::slice::from_ref(&x));
        assert_close("hessian", &h[0][0], &sym.clone().into_dyn(), 1e-12)?;
        let (_, hv) = hvp(|t, w| quadratic(t, w[0], &a), &[x], std::slice::from_ref(&v));
        let want = sym.dot(&v.into_dimensionality::<ndarray::Ix1>().unwrap());
        assert_close("hvp", &hv[0], &want.into_dyn(), 1e-12)?;
    }

    #[test]
    fn gradgradcheck_passes_on_smooth_functions((x, _) in inputs_and_directions()) {
        gradgradcheck(two_inputs, &x, &GradcheckOptions::default())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        gradgradcheck(scalar, &x, &GradcheckOptions::default())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

/// `x³` with a backward that is right to first order (`3x² g`) but computed from the
/// arrays, as a constant: its second derivative is lost.
struct CubeWithConstantBackward;

impl CustomOp<f64> for CubeWithConstantBackward {
    fn name(&self) -> &str {
        "cube_with_constant_backward"
    }

    fn forward(&self, inputs: &[ArrayViewD<'_, f64>]) -> ArrayD<f64> {
        inputs[0].mapv(|x| x * x * x)
    }

    fn backward<'t>(
        &self,
        inputs: &[Var<'t, f64>],
        _output: Var<'t, f64>,
        grad: Var<'t, f64>,
    ) -> Vec<Option<Var<'t, f64>>> {
        let slope = inputs[0].value().mapv(|x| 3.0 * x * x);
        vec![Some(grad * inputs[0].tape().constant(slope))]
    }
}

#[test]
fn gradgradcheck_fails_where_a_backward_is_not_differentiable_and_gradcheck_passes() {
    let x = ndarray::array![0.5, -1.0, 1.5].into_dyn();
    let options = GradcheckOptions::default();
    gradcheck(cube, std::slice::from_ref(&x), &options).expect("first order is right");
    let error =
        gradgradcheck(cube, std::slice::from_ref(&x), &options).expect_err("second order is lost");
    assert_eq!(error.input, 0, "{error}");
    // The second derivative 6x is missing: the analytic value is 0.
    assert_eq!(error.analytic, 0.0, "{error}");
    assert!(error.numeric.abs() > 1.0, "{error}");
}

#[test]
#[should_panic(expected = "vjp: the cotangent has shape [2] but f's output has shape [3]")]
fn vjp_with_a_cotangent_of_the_wrong_shape_panics_naming_both_shapes() {
    let x = ArrayD::<f64>::zeros(IxDyn(&[3]));
    let _ = vjp(|_t, v| v[0].exp(), &[x], &ArrayD::zeros(IxDyn(&[2])));
}

/// A vector-valued function gets one Hessian per output element, in one call: row `o` of
/// `hessian` is `hessian` of the scalar `yₒ`.
#[test]
fn hessian_of_a_vector_valued_function_stacks_the_hessians_of_its_elements() {
    let x = ndarray::array![0.5, -1.0, 1.5].into_dyn();
    fn f<'t>(v: &[Var<'t, f64>]) -> Var<'t, f64> {
        v[0].sin() * v[0].sum().square()
    }
    let h = hessian(|_t, v| f(v), std::slice::from_ref(&x));
    assert_eq!(h[0][0].shape(), &[3, 3, 3]);
    for o in 0..3 {
        let h_o = hessian(
            |_t, v| f(v).slice(0, o, o + 1).sum(),
            std::slice::from_ref(&x),
        );
        assert_eq!(h[0][0].index_axis(ndarray::Axis(0), o), h_o[0][0]);
    }
    // y₀ = sin(x₀) s², s = Σx: ∂²y₀/∂x₁∂x₂ = 2 sin(x₀).
    assert!((h[0][0][[0, 1, 2]] - 2.0 * 0.5_f64.sin()).abs() < 1e-12);
}

/// `jacobian_matrix` and `hessian_matrix` are `jacobian` and `hessian` as `Array2`s, so
/// `dot` works on them directly.
#[test]
fn matrix_forms_equal_the_blocks_and_take_dot() {
    let x = ndarray::array![0.5_f64, -1.0, 1.5];
    let a = ndarray::array![[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]];
    let a_dyn = a.clone().into_dyn();
    // Borrowed from the environment for the tape's lifetime.
    let j = jacobian_matrix(|t, v| t.constant_ref(&a_dyn).matmul(v[0].tanh()), &x);
    let block = jacobian(
        |t, v| t.constant(a.clone().into_dyn()).matmul(v[0].tanh()),
        &[x.clone().into_dyn()],
    );
    assert_eq!(j.clone().into_dyn(), block[0]);
    assert_eq!(j.dim(), (2, 3));
    let h = hessian_matrix(|_t, v| v[0].powi(3).sum() + v[0].sum().square(), &x);
    let by_hand = ndarray::Array2::from_diag(&x.mapv(|x| 6.0 * x)) + 2.0;
    assert!(
        (&h - &by_hand).iter().all(|d| d.abs() < 1e-12),
        "{h} vs {by_hand}"
    );
    let v = ndarray::array![1.0, 0.0, -1.0];
    assert!(
        (h.dot(&v) - by_hand.dot(&v))
            .iter()
            .all(|d| d.abs() < 1e-12)
    );
    // A scalar function's Jacobian is one row: the gradient.
    let g = jacobian_matrix(|_t, v| v[0].square().sum(), &x);
    assert_eq!(g, (&x * 2.0).insert_axis(ndarray::Axis(0)));
}

#[test]
#[should_panic(expected = "hessian_matrix: f must return one element, got shape [3]")]
fn hessian_matrix_of_a_non_scalar_function_panics() {
    let _ = hessian_matrix(|_t, v| v[0].exp(), &ndarray::Array1::<f64>::zeros(3));
}

#[test]
#[should_panic(expected = "jvp: tangent 0 has shape [2] but input 0 has shape [3]")]
fn jvp_with_a_tangent_of_the_wrong_shape_panics() {
    let _ = jvp(
        |_t, v| v[0].exp(),
        &[ArrayD::<f64>::zeros(IxDyn(&[3]))],
        &[ArrayD::zeros(IxDyn(&[2]))],
    );
}
