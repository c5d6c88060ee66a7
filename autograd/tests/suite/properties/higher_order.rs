//! Higher order: `tape.grad` records differentiable gradients. Second derivatives against
//! finite differences of the recorded gradient, and a table of every op swept for agreement
//! of `tape.grad` with `backward` and for a differentiable backward.

use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use tapegrad_autograd::testing::{array, array_away_from, broadcast_pair, matmul_pair, shape};
use tapegrad_autograd::{GradcheckOptions, Tape, Var, gradgradcheck};

use super::{DIM, MARGIN, POLE_MARGIN, RANK, broadcast_values, values, values_with_axis};

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
