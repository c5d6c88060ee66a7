//! A user-defined op, written outside the crate the way a user would: forward on arrays,
//! backward as `Var` ops. It takes part in backward, `tape.grad` (higher order),
//! `gradcheck` and training exactly like a built-in op.

use ndarray::{Array2, ArrayD, ArrayViewD, IxDyn, array};
use tapegrad_autograd::{CustomOp, GradcheckOptions, Param, Tape, Var, gradcheck};

/// `ln(1 + eˣ)` computed without overflow: `max(x, 0) + ln(1 + e^(-|x|))`.
struct Log1pExp;

impl CustomOp<f64> for Log1pExp {
    fn name(&self) -> &str {
        "log1p_exp"
    }
    fn forward(&self, inputs: &[ArrayViewD<'_, f64>]) -> ArrayD<f64> {
        inputs[0].mapv(|x| x.max(0.0) + (-x.abs()).exp().ln_1p())
    }
    fn backward<'t>(
        &self,
        inputs: &[Var<'t, f64>],
        _output: Var<'t, f64>,
        grad: Var<'t, f64>,
    ) -> Vec<Option<Var<'t, f64>>> {
        // d/dx ln(1 + eˣ) = σ(x)
        vec![Some(grad * inputs[0].sigmoid())]
    }
}

/// `x σ(βx)` (swish with a learnable or fixed β), with a hand-written backward for both.
struct Swish;

impl CustomOp<f64> for Swish {
    fn name(&self) -> &str {
        "swish"
    }
    fn forward(&self, inputs: &[ArrayViewD<'_, f64>]) -> ArrayD<f64> {
        let beta = inputs[1].first().copied().expect("β is one element");
        inputs[0].mapv(|x| x / (1.0 + (-beta * x).exp()))
    }
    fn backward<'t>(
        &self,
        inputs: &[Var<'t, f64>],
        _output: Var<'t, f64>,
        grad: Var<'t, f64>,
    ) -> Vec<Option<Var<'t, f64>>> {
        let (x, beta) = (inputs[0], inputs[1]);
        let s = (x * beta).sigmoid();
        let ds = s * (1.0 - s); // σ' = σ(1 − σ)
        // ∂/∂x x σ(βx) = σ + βx σ'; ∂/∂β = x² σ'
        let dx = s + beta * x * ds;
        let dbeta = (grad * x.square() * ds).sum().reshape(&beta.shape());
        vec![Some(grad * dx), Some(dbeta)]
    }
}

/// Rows of `table` picked by an index given as a float input (which has no gradient).
struct PickRows;

impl CustomOp<f64> for PickRows {
    fn name(&self) -> &str {
        "pick_rows"
    }
    fn forward(&self, inputs: &[ArrayViewD<'_, f64>]) -> ArrayD<f64> {
        let rows: Vec<usize> = inputs[1].iter().map(|&i| i as usize).collect();
        inputs[0].select(ndarray::Axis(0), &rows)
    }
    fn backward<'t>(
        &self,
        inputs: &[Var<'t, f64>],
        _output: Var<'t, f64>,
        grad: Var<'t, f64>,
    ) -> Vec<Option<Var<'t, f64>>> {
        // The adjoint of a row selection scatters the rows back, adding repeats: with the
        // one-hot matrix P (P[k][r] = 1 where row r is the k-th pick), ∂/∂table = Pᵀ G.
        let n = inputs[0].shape()[0];
        let one_hot = inputs[1]
            .to_array()
            .iter()
            .flat_map(|&r| (0..n).map(move |j| if j == r as usize { 1.0 } else { 0.0 }))
            .collect::<Vec<f64>>();
        let picks = inputs[1].shape()[0];
        let p = ArrayD::from_shape_vec(IxDyn(&[picks, n]), one_hot).expect("picks × rows");
        let scattered = inputs[0].tape().constant(p).t().matmul(grad);
        vec![Some(scattered), None]
    }
}

/// `x²` with a deliberately wrong derivative (3x instead of 2x).
struct BrokenSquare;

impl CustomOp<f64> for BrokenSquare {
    fn name(&self) -> &str {
        "broken_square"
    }
    fn forward(&self, inputs: &[ArrayViewD<'_, f64>]) -> ArrayD<f64> {
        inputs[0].mapv(|x| x * x)
    }
    fn backward<'t>(
        &self,
        inputs: &[Var<'t, f64>],
        _output: Var<'t, f64>,
        grad: Var<'t, f64>,
    ) -> Vec<Option<Var<'t, f64>>> {
        vec![Some(grad * inputs[0] * 3.0)]
    }
}

/// Returns one gradient for two inputs.
struct WrongArity;

impl CustomOp<f64> for WrongArity {
    fn name(&self) -> &str {
        "wrong_arity"
    }
    fn forward(&self, inputs: &[ArrayViewD<'_, f64>]) -> ArrayD<f64> {
        &inputs[0] + &inputs[1]
    }
    fn backward<'t>(
        &self,
        _inputs: &[Var<'t, f64>],
        _output: Var<'t, f64>,
        grad: Var<'t, f64>,
    ) -> Vec<Option<Var<'t, f64>>> {
        vec![Some(grad)]
    }
}

fn inputs_1d() -> ArrayD<f64> {
    array![-30.0, -3.1, -0.7, 0.0, 0.4, 2.5, 40.0].into_dyn()
}

#[test]
fn log1p_exp_forward_is_stable_and_matches_the_builtin_softplus() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![-800.0, -3.0, 0.0, 3.0, 800.0].into_dyn());
    let y = tape.custom(Log1pExp, &[x]);
    let builtin = x.softplus();
    assert!(y.to_array().iter().all(|v| v.is_finite()));
    for (a, b) in y.to_array().iter().zip(builtin.to_array().iter()) {
        assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

#[test]
fn log1p_exp_passes_gradcheck_first_order() {
    gradcheck(
        |t, v| t.custom(Log1pExp, v),
        &[inputs_1d()],
        &GradcheckOptions::default(),
    )
    .unwrap();
}

#[test]
fn log1p_exp_passes_gradcheck_second_order_through_tape_grad() {
    // d²/dx² ln(1 + eˣ) = σ(x)(1 − σ(x)), from differentiating the Var backward rule.
    gradcheck(
        |t, v| t.grad(t.custom(Log1pExp, v).sum(), v)[0],
        &[inputs_1d()],
        &GradcheckOptions::default(),
    )
    .unwrap();
}

#[test]
fn swish_passes_gradcheck_first_and_second_order_for_both_inputs() {
    let x = array![[-2.0, -0.3, 0.5], [1.2, 3.0, -4.0]].into_dyn();
    let beta = array![0.8].into_dyn();
    let options = GradcheckOptions::default();
    gradcheck(
        |t, v| t.custom(Swish, v),
        &[x.clone(), beta.clone()],
        &options,
    )
    .unwrap();
    gradcheck(
        |t, v| {
            let g = t.grad(t.custom(Swish, v).square().sum(), v);
            Var::concat(&[g[0].flatten_from(0), g[1]], 0)
        },
        &[x, beta],
        &options,
    )
    .unwrap();
}

#[test]
fn a_custom_ops_constant_input_gets_no_gradient() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.0, -2.0].into_dyn());
    let beta = tape.constant(array![1.0].into_dyn());
    let grads = tape.custom(Swish, &[x, beta]).sum().backward();
    assert!(grads.get(x).is_some());
    assert!(grads.get(beta).is_none(), "a constant got a gradient");
}

#[test]
fn a_custom_op_may_leave_an_input_without_a_gradient() {
    let options = GradcheckOptions::default();
    let table = array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]].into_dyn();
    // The rows given as a constant: gradcheck differentiates the table only.
    gradcheck(
        |t, v| {
            let rows = t.constant(array![2.0, 0.0, 2.0].into_dyn());
            t.custom(PickRows, &[v[0], rows]).tanh()
        },
        std::slice::from_ref(&table),
        &options,
    )
    .unwrap();
    let tape = Tape::<f64>::new();
    let t = tape.var(table);
    let rows = tape.var(array![2.0, 0.0, 2.0].into_dyn());
    let grads = tape.custom(PickRows, &[t, rows]).sum().backward();
    // Row 2 picked twice, row 0 once, row 1 never.
    assert_eq!(
        grads[t],
        array![[1.0, 1.0], [0.0, 0.0], [2.0, 2.0]].into_dyn()
    );
    assert!(grads.get(rows).is_none());
}

#[test]
fn first_order_backward_of_a_custom_op_leaves_no_scratch_nodes_on_the_tape() {
    let tape = Tape::<f64>::new();
    let x = tape.var(inputs_1d());
    let y = tape.custom(Log1pExp, &[x]).sum();
    let before = tape.len();
    let grads = y.backward();
    assert_eq!(tape.len(), before);
    let want = inputs_1d().mapv(|v| 1.0 / (1.0 + (-v).exp()));
    for (g, w) in grads[x].iter().zip(want.iter()) {
        assert!((g - w).abs() < 1e-15);
    }
    assert!(tape.to_dot(y).contains("log1p_exp"));
}

#[test]
fn gradcheck_rejects_a_wrong_backward_naming_the_input_element_and_both_values() {
    let error = gradcheck(
        |t, v| t.custom(BrokenSquare, v),
        &[array![[0.5, -1.0], [2.0, 1.5]].into_dyn()],
        &GradcheckOptions::default(),
    )
    .expect_err("a wrong derivative is caught");
    assert_eq!(error.input, 0);
    assert_eq!(error.element, vec![0, 0]);
    // Gradcheck weighs a non-scalar output by fixed weights w: analytic 3x·w, numeric 2x·w.
    assert!(
        (error.analytic / error.numeric - 1.5).abs() < 1e-6,
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("input 0") && message.contains("[0, 0]"),
        "{message}"
    );
}

#[test]
#[should_panic(expected = "custom op `wrong_arity`: backward returned 1 gradients for 2 inputs")]
fn a_custom_op_whose_backward_returns_the_wrong_number_of_gradients_panics() {
    let tape = Tape::<f64>::new();
    let a = tape.var(array![1.0].into_dyn());
    let b = tape.var(array![2.0].into_dyn());
    let _ = tape.custom(WrongArity, &[a, b]).sum().backward();
}

#[test]
fn a_model_built_on_custom_ops_trains_with_plain_gradient_descent() {
    // Fit y = sin(x) on [-2, 2] with one hidden layer of log1p_exp units and a swish output
    // whose β is learned too.
    let xs = Array2::from_shape_fn((32, 1), |(i, _)| -2.0 + 4.0 * i as f64 / 31.0).into_dyn();
    let ys = xs.mapv(f64::sin);
    let mut params = [
        Param::new(
            "w1",
            Array2::from_shape_fn((1, 16), |(_, j)| ((j as f64) * 1.7).sin()).into_dyn(),
        ),
        Param::new(
            "b1",
            Array2::from_shape_fn((1, 16), |(_, j)| ((j as f64) * 0.9).cos()).into_dyn(),
        ),
        Param::new(
            "w2",
            Array2::from_shape_fn((16, 1), |(j, _)| ((j as f64) * 2.3).sin() * 0.3).into_dyn(),
        ),
        Param::new("beta", array![1.0].into_dyn()),
    ];
    let lr = 0.05;
    let loss_at = |params: &[Param<f64>]| -> (f64, tapegrad_autograd::Grads<f64>) {
        let tape = Tape::new();
        let x = tape.constant(xs.clone());
        let y = tape.constant(ys.clone());
        let [w1, b1, w2, beta] = [0, 1, 2, 3].map(|i| tape.param(&params[i]));
        let hidden = tape.custom(Log1pExp, &[x.matmul(w1) + b1]);
        let out = tape.custom(Swish, &[hidden.matmul(w2) - 1.0, beta]);
        let loss = (out - y).square().mean();
        (loss.item(), loss.backward())
    };
    let (first, _) = loss_at(&params);
    let mut last = first;
    for _ in 0..2000 {
        let (loss, grads) = loss_at(&params);
        last = loss;
        for p in params.iter_mut() {
            let g = grads[&*p].clone();
            p.value_mut().scaled_add(-lr, &g);
        }
    }
    assert!(last < 0.1 * first, "loss went from {first} to {last}");
    assert!(last < 0.02, "final loss {last}");
}
