//! Newton's method with second derivatives from autograd: `tape.grad` returns gradients as
//! variables on the tape, so they can be differentiated again to get `f''` (1-D) or the
//! Hessian (2-D). Each step is `x ← x − f''(x)⁻¹ f'(x)`.
//!
//! - 1-D: `f(x) = eˣ − 2x`, minimized at `x = ln 2` (where `f'(x) = eˣ − 2 = 0`).
//! - 2-D: Rosenbrock's `f(x, y) = (1 − x)² + 100 (y − x²)²`, minimized at `(1, 1)`.
//!
//! ```text
//! cargo run --release --example newton
//! ```

use ndarray::{Array1, arr0, arr1};
use tapegrad::autograd::{Tape, Var};

/// Where each method ended, the closed-form answers, and how many steps it took.
#[derive(Debug, Clone)]
pub struct Summary {
    pub x_1d: f64,
    pub closed_form_1d: f64,
    pub steps_1d: usize,
    pub x_2d: [f64; 2],
    pub closed_form_2d: [f64; 2],
    pub steps_2d: usize,
    /// The largest difference between the tape's Hessian and the hand-derived one, at the
    /// 2-D starting point.
    pub hessian_error: f64,
}

/// `f(x) = eˣ − 2x`.
fn f_1d<'t>(x: Var<'t, f64>) -> Var<'t, f64> {
    x.exp() - x * 2.0
}

/// Rosenbrock's function of `v = [x, y]`.
fn rosenbrock<'t>(v: Var<'t, f64>) -> Var<'t, f64> {
    let x = v.slice(0, 0, 1).sum();
    let y = v.slice(0, 1, 2).sum();
    (-x + 1.0).square() + (y - x.square()).square() * 100.0
}

/// The gradient and Hessian of `f` at `point`, both from the tape.
fn gradient_and_hessian(
    f: impl for<'t> Fn(Var<'t, f64>) -> Var<'t, f64>,
    point: &Array1<f64>,
) -> (Array1<f64>, [[f64; 2]; 2]) {
    let tape = Tape::new();
    let v = tape.var(point.clone().into_dyn());
    let gradient = tape.grad(f(v), &[v])[0];
    let mut hessian = [[0.0; 2]; 2];
    for (i, row) in hessian.iter_mut().enumerate() {
        // Row i of the Hessian is the gradient of ∂f/∂vᵢ.
        let row_i = tape.grad(gradient.slice(0, i, i + 1).sum(), &[v])[0].value();
        row.copy_from_slice(row_i.as_slice().expect("a fresh 1-D array"));
    }
    (gradient.value().iter().copied().collect(), hessian)
}

/// Runs Newton's method on both functions, at most `max_steps` steps each, stopping once a
/// step moves less than `tolerance`.
pub fn run(max_steps: usize, tolerance: f64) -> Summary {
    // 1-D, from x = 0.
    let mut x = 0.0_f64;
    let mut steps_1d = 0;
    println!("1-D: f(x) = e^x - 2x from x = 0");
    while steps_1d < max_steps {
        let tape = Tape::new();
        let v = tape.var(arr0(x).into_dyn());
        let first = tape.grad(f_1d(v), &[v])[0]; // f'(x) = eˣ − 2, a Var
        let second = tape.grad(first, &[v])[0]; // f''(x) = eˣ
        let step = first.item() / second.item();
        x -= step;
        steps_1d += 1;
        println!("  step {steps_1d}: x = {x:.15}");
        if step.abs() < tolerance {
            break;
        }
    }
    let closed_form_1d = std::f64::consts::LN_2;
    println!(
        "  Newton: {x:.15}, closed form ln 2 = {closed_form_1d:.15}, difference {:.1e}",
        (x - closed_form_1d).abs()
    );

    // 2-D, from Rosenbrock's classic start (-1.2, 1).
    let mut point = arr1(&[-1.2, 1.0]);
    let (_, hessian) = gradient_and_hessian(rosenbrock, &point);
    // By hand: ∂²f/∂x² = 2 − 400 (y − 3x²), ∂²f/∂x∂y = −400x, ∂²f/∂y² = 200.
    let (x0, y0) = (point[0], point[1]);
    let by_hand = [
        [2.0 - 400.0 * (y0 - 3.0 * x0 * x0), -400.0 * x0],
        [-400.0 * x0, 200.0],
    ];
    let hessian_error = (0..4)
        .map(|k| (hessian[k / 2][k % 2] - by_hand[k / 2][k % 2]).abs())
        .fold(0.0, f64::max);
    println!("2-D: Rosenbrock from (-1.2, 1)");
    println!("  Hessian from the tape {hessian:?}, by hand {by_hand:?}");
    let mut steps_2d = 0;
    while steps_2d < max_steps {
        let (g, [[a, b], [c, d]]) = gradient_and_hessian(rosenbrock, &point);
        // Solve H · step = g for the 2 × 2 Hessian (Cramer's rule).
        let det = a * d - b * c;
        let step = arr1(&[(d * g[0] - b * g[1]) / det, (a * g[1] - c * g[0]) / det]);
        point -= &step;
        steps_2d += 1;
        println!(
            "  step {steps_2d}: (x, y) = ({:.15}, {:.15})",
            point[0], point[1]
        );
        if step.iter().all(|s| s.abs() < tolerance) {
            break;
        }
    }
    let closed_form_2d = [1.0, 1.0];
    println!(
        "  Newton: ({:.15}, {:.15}), closed form (1, 1), difference {:.1e}",
        point[0],
        point[1],
        (point[0] - 1.0).abs().max((point[1] - 1.0).abs())
    );
    Summary {
        x_1d: x,
        closed_form_1d,
        steps_1d,
        x_2d: [point[0], point[1]],
        closed_form_2d,
        steps_2d,
        hessian_error,
    }
}

#[allow(dead_code)] // tests call `run` directly
fn main() {
    let summary = run(50, 1e-12);
    println!(
        "converged in {} steps (1-D) and {} steps (2-D)",
        summary.steps_1d, summary.steps_2d
    );
}
