//! Behaviour of the tape as a user sees it: higher-order gradients, deep graphs, gradient
//! accumulation, what gets a gradient and what does not, flat memory over long training,
//! parameters bound without copies, DOT output, anomaly mode and shape errors that point
//! at the user's line.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;
use std::sync::atomic::Ordering;

use ndarray::{Array2, ArrayD, IxDyn, arr0, array};
use tapegrad_autograd::{Grads, Param, ParamId, Tape, Var};

use crate::counting_allocator::{LIVE_BYTES, thread_live_bytes};

// ---------------------------------------------------------------------------------------
// Helpers.

fn scalar(v: f64) -> ArrayD<f64> {
    arr0(v).into_dyn()
}

fn assert_close(got: &ArrayD<f64>, want: &ArrayD<f64>, tol: f64) {
    assert_eq!(got.shape(), want.shape(), "shapes differ");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "got {got}, want {want}"
        );
    }
}

/// Discards a value (an op called only for its panic).
pub(crate) fn ignore<T>(_: T) {}

/// The panic message of `f`, which must panic.
pub(crate) fn panic_message(f: impl FnOnce()) -> String {
    payload_message(&*catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic"))
}

/// The message of a caught panic's payload (empty if it is neither a `String` nor a `&str`).
pub(crate) fn payload_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

thread_local! {
    static LAST_PANIC_LOCATION: RefCell<Option<(String, u32)>> = const { RefCell::new(None) };
}

/// The source location the panic hook reports for the panic of `f`, and its message. The
/// hook records it per thread and then calls the previous hook as usual.
pub(crate) fn panic_location(f: impl FnOnce()) -> ((String, u32), String) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(location) = info.location() {
                let _ = LAST_PANIC_LOCATION.try_with(|last| {
                    *last.borrow_mut() = Some((location.file().to_string(), location.line()))
                });
            }
            previous(info);
        }));
    });
    LAST_PANIC_LOCATION.with(|last| *last.borrow_mut() = None);
    let message = panic_message(f);
    let location = LAST_PANIC_LOCATION
        .with(|last| last.borrow_mut().take())
        .expect("the panic hook saw a location");
    (location, message)
}

/// One shape-error case: the call that must panic, the `line!()` of that call (in `file`),
/// the op, and the start its message must have.
pub(crate) type LocatedPanic<'a> = (Box<dyn Fn() + 'a>, u32, &'static str, String);

/// Runs every case and fails, listing them all, where a message does not start as it must
/// or a panic is not reported at its call's line of `file`.
#[track_caller]
pub(crate) fn assert_panics_at_their_lines(file: &str, cases: Vec<LocatedPanic<'_>>) {
    let mut wrong = Vec::new();
    for (case, line, op, start) in cases {
        let ((reported_file, reported_line), message) = panic_location(case);
        if !message.starts_with(&start) {
            wrong.push(format!(
                "{op}: message `{message}` does not start with `{start}`"
            ));
        }
        if reported_file != file || reported_line != line {
            wrong.push(format!(
                "{op}: reported at {reported_file}:{reported_line}, called at {file}:{line}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------------------
// Higher order.

#[test]
fn second_derivative_of_x_cubed_is_six_x_via_tape_grad_twice() {
    let tape = Tape::<f64>::new();
    let x = tape.var(scalar(1.5));
    let y = x * x * x;
    let dy = tape.grad(y, &[x])[0]; // 3x² = 6.75
    let d2y = tape.grad(dy, &[x])[0]; // 6x = 9
    let d3y = tape.grad(d2y, &[x])[0]; // 6
    assert!((dy.item() - 6.75).abs() < 1e-12);
    assert!((d2y.item() - 9.0).abs() < 1e-12);
    assert!((d3y.item() - 6.0).abs() < 1e-12);
    // The recorded gradients are ordinary variables: backward works on them too.
    let grads = d2y.backward();
    assert!((grads[x][[]] - 6.0).abs() < 1e-12);
}

/// A 2-layer tanh MLP's mean squared error as a function of its parameters.
fn mlp_loss<'t>(tape: &'t Tape<'t, f64>, params: &[Var<'t, f64>]) -> Var<'t, f64> {
    let x = tape.constant(
        array![
            [0.5, -1.0, 2.0],
            [1.5, 0.3, -0.7],
            [-0.2, 0.8, 0.1],
            [1.0, 1.0, -1.0],
            [0.0, -0.4, 0.9]
        ]
        .into_dyn(),
    );
    let y = tape.constant(array![[0.3], [-0.5], [0.9], [0.1], [-0.2]].into_dyn());
    let (w1, b1, w2, b2) = (params[0], params[1], params[2], params[3]);
    let hidden = (x.matmul(w1) + b1).tanh();
    let out = hidden.matmul(w2) + b2;
    (out - y).square().mean()
}

fn mlp_params() -> Vec<ArrayD<f64>> {
    vec![
        array![
            [0.2, -0.4, 0.6, 0.1],
            [0.5, 0.3, -0.2, -0.7],
            [-0.3, 0.8, 0.4, 0.2]
        ]
        .into_dyn(),
        array![0.1, -0.1, 0.05, 0.0].into_dyn(),
        array![[0.7], [-0.6], [0.3], [0.9]].into_dyn(),
        array![0.05].into_dyn(),
    ]
}

fn mlp_gradient(params: &[ArrayD<f64>]) -> Vec<ArrayD<f64>> {
    let tape = Tape::new();
    let vars: Vec<_> = params.iter().map(|p| tape.var(p.clone())).collect();
    let grads = mlp_loss(&tape, &vars).backward();
    vars.iter().map(|v| grads[*v].clone()).collect()
}

#[test]
fn hessian_vector_product_of_an_mlp_loss_matches_finite_differences_of_its_gradient() {
    let theta = mlp_params();
    let direction: Vec<ArrayD<f64>> = theta
        .iter()
        .enumerate()
        .map(|(k, p)| p.mapv(|v| (v * 7.0 + k as f64).sin()))
        .collect();

    // H v = ∇(∇L · v), recorded on the tape.
    let tape = Tape::new();
    let vars: Vec<_> = theta.iter().map(|p| tape.var(p.clone())).collect();
    let grads = tape.grad(mlp_loss(&tape, &vars), &vars);
    let dot = grads
        .iter()
        .zip(&direction)
        .map(|(g, v)| (*g * tape.constant(v.clone())).sum())
        .reduce(|a, b| a + b)
        .unwrap();
    let hvp: Vec<ArrayD<f64>> = tape.grad(dot, &vars).iter().map(|h| h.to_array()).collect();

    // H v ≈ (∇L(θ + εv) − ∇L(θ − εv)) / 2ε.
    let eps = 1e-5;
    let shifted = |sign: f64| -> Vec<ArrayD<f64>> {
        let moved: Vec<_> = theta
            .iter()
            .zip(&direction)
            .map(|(p, v)| p + &(v * (sign * eps)))
            .collect();
        mlp_gradient(&moved)
    };
    let (plus, minus) = (shifted(1.0), shifted(-1.0));
    for (k, h) in hvp.iter().enumerate() {
        let numeric = (&plus[k] - &minus[k]) / (2.0 * eps);
        for (a, n) in h.iter().zip(numeric.iter()) {
            assert!(
                (a - n).abs() < 1e-6,
                "parameter {k}: H v = {h}, finite differences {numeric}"
            );
        }
    }
}

#[test]
fn tape_grad_differentiates_with_respect_to_intermediate_values_too() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![0.3, -1.2].into_dyn());
    let h = x.tanh();
    let y = (h * h).sum();
    // dy/dh = 2h; dy/dx = 2h (1 − h²)
    let [dh, dx] = [0, 1].map(|k| tape.grad(y, &[h, x])[k].to_array());
    let hv = h.to_array();
    assert_close(&dh, &(&hv * 2.0), 1e-15);
    assert_close(&dx, &(&hv * 2.0 * hv.mapv(|t| 1.0 - t * t)), 1e-15);
    // backward keeps leaves' gradients only, as PyTorch does.
    let grads = y.backward();
    assert!(grads.get(h).is_none());
    assert_close(&grads[x], &dx, 1e-15);
}

#[test]
fn a_seed_gives_the_vector_jacobian_product_of_a_non_scalar_output() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.0, 2.0, 3.0].into_dyn());
    let y = x * x; // Jacobian diag(2x)
    let seed = array![1.0, -1.0, 0.5].into_dyn();
    let grads = y.backward_with_seed(seed.clone());
    assert_eq!(grads[x], array![2.0, -4.0, 3.0].into_dyn());
    let recorded = tape.grad_with_seed(y, seed, &[x])[0];
    assert_eq!(recorded.to_array(), array![2.0, -4.0, 3.0].into_dyn());
}

#[test]
#[should_panic(expected = "backward: the seed gradient has shape [2] but the output has shape [3]")]
fn a_seed_of_the_wrong_shape_panics_naming_both_shapes() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.0, 2.0, 3.0].into_dyn());
    let _ = (x * 2.0).backward_with_seed(array![1.0, 1.0].into_dyn());
}

#[test]
#[should_panic(expected = "the seed gradient has shape [1] but the output has shape [3]")]
fn a_recorded_gradient_with_a_seed_of_the_wrong_shape_panics_naming_both_shapes() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.0, 2.0, 3.0].into_dyn());
    let _ = tape.grad_with_seed(x * 2.0, array![1.0].into_dyn(), &[x]);
}

// ---------------------------------------------------------------------------------------
// Deep graphs.

#[test]
fn a_one_million_op_chain_runs_forward_and_backward_without_stack_overflow() {
    const STEPS: i32 = 500_000; // two ops per step
    let (a, b) = (1.000_000_1_f64, 1e-7);
    let tape = Tape::<f64>::new();
    let x = tape.var(scalar(0.5));
    let mut y = x;
    for _ in 0..STEPS {
        y = y * a + b;
    }
    assert_eq!(tape.len(), 1 + 2 * STEPS as usize);
    // y = aᴺ x + b (aᴺ − 1)/(a − 1), so dy/dx = aᴺ.
    let grads = y.backward();
    let want = a.powi(STEPS);
    assert!(
        (grads[x][[]] - want).abs() < 1e-9 * want,
        "{} vs {want}",
        grads[x][[]]
    );
    let value = a.powi(STEPS) * 0.5 + b * (a.powi(STEPS) - 1.0) / (a - 1.0);
    assert!((y.item() - value).abs() < 1e-8);
}

#[test]
fn tape_grad_through_a_hundred_thousand_op_chain_needs_no_recursion() {
    const STEPS: usize = 50_000; // (x * w).tanh(): two ops per step
    let w = 0.9;
    let tape = Tape::<f64>::new();
    let x = tape.var(scalar(0.8));
    let mut y = x;
    for _ in 0..STEPS {
        y = (y * w).tanh();
    }
    let dy = tape.grad(y, &[x])[0].item();
    // dy/dx = Π w (1 − yᵢ²) along the forward recurrence.
    let (mut v, mut want) = (0.8_f64, 1.0);
    for _ in 0..STEPS {
        v = (v * w).tanh();
        want *= w * (1.0 - v * v);
    }
    assert!((y.item() - v).abs() < 1e-12);
    assert!(
        (dy - want).abs() <= 1e-9 * want.abs() + 1e-300,
        "{dy} vs {want}"
    );
}

// ---------------------------------------------------------------------------------------
// Accumulation and what gets a gradient.

#[test]
fn a_variable_used_many_times_gets_the_sum_of_its_uses_gradients() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.0, -2.0, 3.0].into_dyn());
    // d/dx x·x·x = 3x²
    let grads = (x * x * x).sum().backward();
    assert_eq!(grads[x], array![3.0, 12.0, 27.0].into_dyn());
    // d/dx (x + x + x) = 3
    let grads = (x + x + x).sum().backward();
    assert_eq!(grads[x], array![3.0, 3.0, 3.0].into_dyn());
    // A diamond: a = sin x used twice, d/dx (a² + a) = (2a + 1) cos x
    let a = x.sin();
    let grads = (a * a + a).sum().backward();
    let want = x.to_array().mapv(|v| (2.0 * v.sin() + 1.0) * v.cos());
    assert_close(&grads[x], &want, 1e-14);
}

#[test]
fn a_branch_that_does_not_lead_to_the_output_gets_no_gradient_and_is_not_visited() {
    let tape = Tape::<f64>::new();
    tape.set_anomaly_detection(true);
    let x = tape.var(array![1.0, 2.0].into_dyn());
    let unused = tape.var(array![0.0, 4.0].into_dyn());
    // The backward of sqrt at 0 is infinite: anomaly mode would panic if backward ran it.
    let _dead_branch = unused.sqrt() * x;
    let zero = tape.constant(array![0.0, 0.0].into_dyn());
    let y = (x * 2.0 + zero.sqrt()).sum(); // sqrt of a constant: no gradient needed there
    let grads = y.backward();
    assert_eq!(grads[x], array![2.0, 2.0].into_dyn());
    assert!(grads.get(unused).is_none());
    assert!(grads.get(zero).is_none());
    // tape.grad gives such an input an explicit zero.
    let g = tape.grad(y, &[unused])[0];
    assert_eq!(g.to_array(), array![0.0, 0.0].into_dyn());
}

#[test]
fn constants_and_detach_stop_gradients() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.5, -2.0].into_dyn());
    let c = tape.constant(array![3.0, 4.0].into_dyn());
    assert!(!c.requires_grad());
    assert!(!x.detach().requires_grad());
    // d/dx (x · stop(x) · c) = stop(x) · c, not 2x·c
    let grads = (x * x.detach() * c).sum().backward();
    assert_eq!(grads[x], array![4.5, -8.0].into_dyn());
    assert!(grads.get(c).is_none());
}

#[test]
fn no_grad_results_require_no_gradient_and_recording_resumes_after() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.0, 2.0].into_dyn());
    let y = tape.no_grad(|| {
        assert!(!tape.is_grad_enabled());
        (x * 3.0).exp()
    });
    assert!(tape.is_grad_enabled());
    assert!(!y.requires_grad());
    let z = x * y;
    assert!(z.requires_grad());
    // y is a constant: dz/dx = y
    let grads = z.sum().backward();
    assert_eq!(grads[x], y.to_array());
}

#[test]
fn no_grad_restores_recording_when_its_closure_panics() {
    let tape = Tape::<f64>::new();
    let x = tape.var(scalar(2.0));
    let caught = catch_unwind(AssertUnwindSafe(|| {
        tape.no_grad(|| -> Var<'_, f64> { panic!("inside no_grad") })
    }));
    assert!(caught.is_err());
    assert!(tape.is_grad_enabled());
    assert!((x * x).requires_grad());
}

#[test]
fn backward_of_an_output_that_needs_no_gradient_gives_no_gradients() {
    let tape = Tape::<f64>::new();
    let c = tape.constant(array![1.0, 2.0].into_dyn());
    let grads = (c * c).sum().backward();
    assert!(grads.get(c).is_none());
    assert_eq!(grads.num_params(), 0);
}

// ---------------------------------------------------------------------------------------
// Parameters and Grads.

#[test]
fn grads_are_indexed_by_var_and_by_param_and_outlive_the_tape() {
    let w = Param::new("w", array![[1.0, 2.0], [3.0, 4.0]].into_dyn());
    let b = Param::new("b", array![0.5, -0.5].into_dyn());
    let (grads, x_grad) = {
        let tape = Tape::new();
        let x = tape.var(array![[1.0, -1.0]].into_dyn());
        let y = (x.matmul(tape.param(&w)) + tape.param(&b)).sum();
        let grads = y.backward();
        let x_grad = grads[x].clone();
        (grads, x_grad)
    }; // the tape is gone; the parameters' gradients remain
    // y = Σⱼ (Σᵢ xᵢ wᵢⱼ + bⱼ): ∂y/∂w = xᵀ 1, ∂y/∂b = 1, ∂y/∂x = w 1
    assert_eq!(grads[&w], array![[1.0, 1.0], [-1.0, -1.0]].into_dyn());
    assert_eq!(grads[&b], array![1.0, 1.0].into_dyn());
    assert_eq!(grads.param(&w), grads.by_id(w.id()));
    assert_eq!(x_grad, array![[3.0, 7.0]].into_dyn());
    assert_eq!(grads.num_params(), 2);
}

#[test]
fn a_parameter_bound_twice_gets_one_summed_gradient() {
    let p = Param::new("p", array![2.0, -3.0].into_dyn());
    let tape = Tape::new();
    let first = tape.param(&p);
    let second = tape.param(&p);
    assert_eq!(first.index(), second.index());
    // d/dp (p · p + 3p) = 2p + 3
    let grads = (first * second + second * 3.0).sum().backward();
    assert_eq!(grads[&p], array![7.0, -3.0].into_dyn());
    assert_eq!(grads.num_params(), 1);
}

#[test]
fn a_parameter_first_bound_inside_no_grad_still_gets_its_gradient_outside() {
    let p = Param::new("p", array![2.0, -3.0].into_dyn());
    let tape = Tape::new();
    let evaluated = tape.no_grad(|| (tape.param(&p) * 2.0).sum());
    assert!(!evaluated.requires_grad());
    let loss = (tape.param(&p) * tape.param(&p)).sum();
    assert!(loss.requires_grad());
    assert_eq!(loss.backward()[&p], array![4.0, -6.0].into_dyn());
}

#[test]
fn binding_a_parameter_does_not_copy_its_data() {
    let big = Param::new("big", ArrayD::<f64>::ones(IxDyn(&[1000, 1000])));
    let param_bytes = 1000 * 1000 * std::mem::size_of::<f64>();
    let tape = Tape::new();
    let before_bytes = thread_live_bytes();
    let w = tape.param(&big);
    let allocated = thread_live_bytes() - before_bytes;
    assert!(allocated < 64 * 1024, "binding allocated {allocated} bytes");
    assert!(
        tape.memory_bytes() < param_bytes / 100,
        "memory_bytes {} after binding an 8 MB parameter",
        tape.memory_bytes()
    );
    // ... while a computed value of the same size is owned and counted.
    let _doubled = w * 2.0;
    assert!(tape.memory_bytes() >= param_bytes);
}

#[test]
fn grads_edited_by_hand_keep_each_parameters_gradient_apart() {
    let (a, b, c) = (ParamId::fresh(), ParamId::fresh(), ParamId::fresh());
    let mut grads = Grads::<f64>::new();
    grads.insert(a, array![1.0].into_dyn());
    grads.insert(b, array![2.0].into_dyn());
    assert_eq!(grads.remove(a), Some(array![1.0].into_dyn()));
    grads.insert(c, array![3.0].into_dyn());
    assert_eq!(grads.by_id(b), Some(&array![2.0].into_dyn()));
    assert_eq!(grads.by_id(c), Some(&array![3.0].into_dyn()));
    assert_eq!(grads.by_id(a), None);
    assert_eq!(grads.num_params(), 2);
    grads.insert(b, array![5.0].into_dyn()); // replaces
    *grads.by_id_mut(c).unwrap() *= 2.0;
    let mut all: Vec<(u64, f64)> = grads.params().map(|(id, g)| (id.get(), g[[0]])).collect();
    all.sort_by_key(|&(id, _)| id);
    assert_eq!(all, vec![(b.get(), 5.0), (c.get(), 6.0)]);
}

#[test]
fn grads_of_two_steps_accumulate_parameter_by_parameter() {
    let w = Param::new("w", array![1.0, 2.0].into_dyn());
    let v = Param::new("v", array![3.0].into_dyn());
    let step = |scale: f64| {
        let tape = Tape::new();
        ((tape.param(&w) * scale).sum() + tape.param(&v).sum()).backward()
    };
    let mut total = step(1.0);
    let second = step(2.0);
    total.accumulate(&second);
    assert_eq!(total[&w], array![3.0, 3.0].into_dyn());
    assert_eq!(total[&v], array![2.0].into_dyn());
    let mut by_hand = Grads::new();
    by_hand.accumulate(&second);
    assert_eq!(by_hand[&w], array![2.0, 2.0].into_dyn());
    assert_eq!(by_hand.num_params(), 2);
}

// ---------------------------------------------------------------------------------------
// Matrix products large enough to use two threads (the output cut in halves, the two
// gradients side by side) give the same numbers as ndarray's
// independent single-threaded product.

fn filled(rows: usize, cols: usize, seed: f64) -> Array2<f64> {
    Array2::from_shape_fn((rows, cols), |(i, j)| {
        ((i * 7 + j * 13) as f64 * 0.01 + seed).sin()
    })
}

#[test]
fn threaded_products_and_their_gradients_match_single_threaded_ones() {
    // On a pool of two threads whatever the machine, so every path runs.
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a pool of two threads")
        .install(threaded_products);
}

fn threaded_products() {
    // m × k × n, multiply-adds per product (a·b, g·bᵀ and aᵀ·g have the same count):
    // - 16 × 128 × 128 (0.26 M): one thread each, one after the other;
    // - 64 × 128 × 96 (0.79 M): one thread each, the two gradients side by side;
    // - 256 × 384 × 128 and 384 × 256 × 128 (12.6 M): halves — a·b cut by rows (outputs
    //   256 × 128, 384 × 128), g·bᵀ by columns then by rows (256 × 384, 384 × 256),
    //   aᵀ·g by rows (384 × 128, 256 × 128);
    // - 512 × 512 × 256 (2²⁶ = 67 M): the gemm crate's threads.
    for &(m, k, n) in &[
        (16, 128, 128),
        (64, 128, 96),
        (256, 384, 128),
        (384, 256, 128),
        (512, 512, 256),
    ] {
        let (a0, b0) = (filled(m, k, 0.3), filled(k, n, 0.7));
        let g0 = filled(m, n, 1.1);
        let tape = Tape::new();
        let (a, b) = (
            tape.var(a0.clone().into_dyn()),
            tape.var(b0.clone().into_dyn()),
        );
        let y = a.matmul(b);
        let loss = (y * tape.constant(g0.clone().into_dyn())).sum();
        let grads = loss.backward();
        let close = |got: &ArrayD<f64>, want: &Array2<f64>, what: &str| {
            assert_eq!(got.shape(), want.shape(), "{what} at {m}×{k}×{n}");
            for (x, w) in got.iter().zip(want) {
                assert!(
                    (x - w).abs() <= 1e-9 * (1.0 + w.abs()),
                    "{what} at {m}×{k}×{n}: {x} vs {w}"
                );
            }
        };
        close(&y.to_array(), &a0.dot(&b0), "a·b");
        close(&grads[a], &g0.dot(&b0.t()), "g·bᵀ");
        close(&grads[b], &a0.t().dot(&g0), "aᵀ·g");
    }
}

// ---------------------------------------------------------------------------------------
// Memory over a long training run.

#[test]
fn memory_stays_flat_over_ten_thousand_training_steps_with_a_fresh_tape_each() {
    let x_data =
        Array2::from_shape_fn((8, 4), |(i, j)| ((i * 4 + j) as f64 * 0.37).sin()).into_dyn();
    let y_data = Array2::from_shape_fn((8, 1), |(i, _)| (i as f64 * 0.5).cos()).into_dyn();
    let mut params = [
        Param::new(
            "w1",
            Array2::from_shape_fn((4, 8), |(i, j)| ((i * 8 + j) as f64).sin() * 0.5).into_dyn(),
        ),
        Param::new("b1", ArrayD::zeros(IxDyn(&[8]))),
        Param::new(
            "w2",
            Array2::from_shape_fn((8, 1), |(i, _)| (i as f64).cos() * 0.5).into_dyn(),
        ),
        Param::new("b2", ArrayD::zeros(IxDyn(&[1]))),
    ];
    let lr = 0.05;
    let mut tape_len = None;
    let mut first_loss = None;
    let mut last_loss = 0.0;
    let mut live_at_step_100 = 0;
    for step in 1..=10_000 {
        let (grads, loss, len) = {
            let tape = Tape::new();
            let x = tape.constant(x_data.clone());
            let y = tape.constant(y_data.clone());
            let (w1, b1, w2, b2) = (
                tape.param(&params[0]),
                tape.param(&params[1]),
                tape.param(&params[2]),
                tape.param(&params[3]),
            );
            let out = (x.matmul(w1) + b1).tanh().matmul(w2) + b2;
            let loss = (out - y).square().mean();
            (loss.backward(), loss.item(), tape.len())
        }; // the tape is dropped here: the parameters can be updated
        assert_eq!(
            *tape_len.get_or_insert(len),
            len,
            "step {step} recorded a different graph"
        );
        for p in params.iter_mut() {
            let g = grads[&*p].clone();
            p.value_mut().scaled_add(-lr, &g);
        }
        drop(grads);
        first_loss.get_or_insert(loss);
        last_loss = loss;
        if step == 100 {
            live_at_step_100 = thread_live_bytes();
        }
    }
    let live_at_step_10000 = thread_live_bytes();
    assert!(
        (live_at_step_10000 - live_at_step_100).abs() <= 256,
        "live heap bytes grew from {live_at_step_100} at step 100 to {live_at_step_10000} at step 10,000 \
         (process-wide now: {})",
        LIVE_BYTES.load(Ordering::Relaxed)
    );
    assert!(
        last_loss < first_loss.unwrap() * 0.5,
        "training made progress"
    );
}

// ---------------------------------------------------------------------------------------
// Inspection.

#[test]
fn tape_len_counts_every_recorded_node_and_to_dot_shows_ops_and_edges() {
    let tape = Tape::<f64>::new();
    assert!(tape.is_empty());
    let x = tape.var(array![1.0, 2.0].into_dyn()); // #0
    let w = Param::new("w", array![0.5, -0.5].into_dyn());
    let wv = tape.param(&w); // #1
    let _unused = x.exp(); // #2, not on the path to the output
    let y = (x * wv).tanh().sum(); // #3 mul, #4 tanh, #5 sum
    assert_eq!(tape.len(), 6);
    let dot = tape.to_dot(y);
    assert!(dot.starts_with("digraph"), "{dot}");
    for name in ["leaf", "param", "mul", "tanh", "sum"] {
        assert!(dot.contains(name), "`{name}` missing from\n{dot}");
    }
    for edge in ["n0 -> n3", "n1 -> n3", "n3 -> n4", "n4 -> n5"] {
        assert!(dot.contains(edge), "edge `{edge}` missing from\n{dot}");
    }
    assert!(
        !dot.contains("exp"),
        "an op off the output's path is drawn:\n{dot}"
    );
}

#[test]
fn elementwise_ops_above_the_parallel_threshold_agree_with_the_scalar_formula() {
    let x_data = Array2::from_shape_fn((300, 300), |(i, j)| {
        ((i * 300 + j) as f64 * 1e-4).sin() * 3.0
    })
    .into_dyn();
    let tape = Tape::<f64>::new();
    let x = tape.var(x_data.clone());
    let y = x.tanh();
    assert_eq!(y.to_array(), x_data.mapv(f64::tanh));
    let grads = y.sum().backward();
    // d tanh = 1 − tanh²
    assert_close(&grads[x], &x_data.mapv(|v| 1.0 - v.tanh().powi(2)), 1e-15);
}

// ---------------------------------------------------------------------------------------
// Ties follow PyTorch.

#[test]
fn maximum_and_minimum_split_the_gradient_equally_at_ties_like_pytorch() {
    let tape = Tape::<f64>::new();
    let a = tape.var(array![1.0, 2.0, 3.0].into_dyn());
    let b = tape.var(array![1.0, 5.0, 0.0].into_dyn());
    let grads = a.maximum(b).sum().backward();
    assert_eq!(a.maximum(b).to_array(), array![1.0, 5.0, 3.0].into_dyn());
    assert_eq!(grads[a], array![0.5, 0.0, 1.0].into_dyn());
    assert_eq!(grads[b], array![0.5, 1.0, 0.0].into_dyn());
    let grads = a.minimum(b).sum().backward();
    assert_eq!(grads[a], array![0.5, 1.0, 0.0].into_dyn());
    assert_eq!(grads[b], array![0.5, 0.0, 1.0].into_dyn());
}

#[test]
fn max_and_min_reductions_share_the_gradient_among_ties_like_torch_amax() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![[3.0, 1.0, 3.0], [0.0, 0.0, 0.0]].into_dyn());
    let grads = x.max_axes([1], false).sum().backward();
    assert_eq!(
        grads[x],
        array![[0.5, 0.0, 0.5], [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]].into_dyn()
    );
    let grads = x.max().backward();
    assert_eq!(
        grads[x],
        array![[0.5, 0.0, 0.5], [0.0, 0.0, 0.0]].into_dyn()
    );
    let grads = x.min().backward();
    assert_eq!(
        grads[x],
        array![[0.0, 0.0, 0.0], [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]].into_dyn()
    );
}

// ---------------------------------------------------------------------------------------
// Anomaly mode.

#[test]
#[should_panic(expected = "`ln`")]
fn anomaly_mode_names_ln_when_it_produces_nan() {
    let tape = Tape::<f64>::new();
    tape.set_anomaly_detection(true);
    let x = tape.var(array![1.0, -1.0].into_dyn());
    let _ = x.ln();
}

#[test]
fn anomaly_mode_reports_the_users_file_and_line_for_a_nan_forward_value() {
    let tape = Tape::<f64>::new();
    tape.set_anomaly_detection(true);
    let x = tape.var(array![-2.0].into_dyn());
    let line = line!() + 1; // the next line records `ln`
    let message = panic_message(|| ignore(x.ln()));
    assert!(message.contains("`ln`"), "{message}");
    let here = format!("{}:{line}:", file!());
    assert!(message.contains(&here), "`{here}` missing from: {message}");
    assert!(file!().ends_with("tape.rs"));
}

#[test]
fn anomaly_mode_names_the_op_whose_backward_produced_nan_or_infinity() {
    let tape = Tape::<f64>::new();
    tape.set_anomaly_detection(true);
    let x = tape.var(array![0.0, 4.0].into_dyn());
    let y = x.sqrt().sum(); // forward is finite; d√x = 1/(2√x) is infinite at 0
    let message = panic_message(|| {
        let _ = y.backward();
    });
    assert!(message.contains("backward of `sqrt`"), "{message}");
    assert!(message.contains(file!()), "{message}");
}

#[test]
fn without_anomaly_mode_nan_flows_through_silently() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![-1.0].into_dyn());
    assert!(x.ln().item().is_nan());
}

// ---------------------------------------------------------------------------------------
// One-element values are stored inline and differentiated on plain numbers; these tests
// pin that path to the array path and to finite differences.

#[test]
fn one_element_values_mixed_with_arrays_pass_gradcheck() {
    use tapegrad_autograd::{GradcheckOptions, gradcheck};
    let inputs = [
        scalar(0.3),                                           // 0-d
        array![[1.7]].into_dyn(),                              // shape [1, 1]
        array![[0.5, -1.0, 2.0], [0.1, 0.2, -0.3]].into_dyn(), // an array
    ];
    gradcheck(
        |_, v| {
            let (a, b, m) = (v[0], v[1], v[2]);
            // One-element chain (a, b), then `a` broadcast into an array op as well, and a
            // reduction (one element again) feeding one-element ops.
            let s = ((a * b).tanh() + a.exp() / b - a.sigmoid() * 2.0).powi(2);
            let t = (m * a).sum() * b + m.sum().sin();
            (s * t).relu() + (s - t).abs() + a.clamp(-1.0, 1.0) * b.sqrt().ln()
        },
        &inputs,
        &GradcheckOptions::default(),
    )
    .unwrap();
}

#[test]
fn one_element_results_keep_the_broadcast_shape_and_second_order_works() {
    let tape = Tape::<f64>::new();
    let a = tape.var(scalar(2.0));
    let b = tape.var(array![[3.0]].into_dyn());
    let y = a * b; // [] * [1, 1] -> [1, 1]
    assert_eq!(y.shape(), vec![1, 1]);
    assert_eq!(y.to_array(), array![[6.0]].into_dyn());
    assert_eq!(y.item(), 6.0);
    // Gradients get their inputs' shapes.
    let grads = (y * y).backward();
    assert_eq!(grads.get(a).unwrap(), &scalar(2.0 * 6.0 * 3.0));
    assert_eq!(grads.get(b).unwrap(), &array![[2.0 * 6.0 * 2.0]].into_dyn());
    // And the recorded (differentiable) path agrees: d²(a³)/da² = 6a.
    let cube = a.powi(3);
    let da = tape.grad(cube, &[a])[0];
    let d2a = tape.grad(da, &[a])[0];
    assert_eq!(d2a.item(), 12.0);
}

#[test]
fn a_one_element_value_used_by_array_ops_and_scalar_ops_gets_both_gradients() {
    let tape = Tape::<f64>::new();
    let a = tape.var(scalar(0.5));
    let m = tape.constant(array![1.0, 2.0, 3.0].into_dyn());
    // `a` receives a gradient from an array op (as an array) and from scalar ops (as a
    // number), in both orders along the sweep.
    let y = (m * a).sum() + a * a + (a.exp() * m).sum();
    let g = y.backward().get(a).unwrap()[[]];
    let want = 6.0 + 2.0 * 0.5 + 0.5_f64.exp() * 6.0;
    assert!((g - want).abs() < 1e-12, "{g} vs {want}");
}

#[test]
fn anomaly_mode_names_the_op_whose_one_element_backward_produced_infinity() {
    let tape = Tape::<f64>::new();
    tape.set_anomaly_detection(true);
    let x = tape.var(scalar(0.0));
    let y = x.sqrt() * 2.0;
    let message = panic_message(|| ignore(y.backward()));
    assert!(message.contains("backward of `sqrt`"), "{message}");
}

/// Every op records the line of its caller (not a line inside the library), so anomaly
/// messages point at the user's code.
#[test]
fn every_op_records_the_callers_line_for_anomaly_messages() {
    macro_rules! located {
        ($x:ident => $e:expr) => {
            (
                Box::new(|$x: Var<'_, f64>| {
                    let _ = $e;
                }) as Box<dyn Fn(Var<'_, f64>)>,
                line!(),
                stringify!($e),
            )
        };
    }
    let cases = vec![
        located!(x => x + x),
        located!(x => x * 2.0),
        located!(x => -x),
        located!(x => x.exp()),
        located!(x => x.gelu()),
        located!(x => x.matmul(x.t())),
        located!(x => x.t()),
        located!(x => x.transpose(0, 1)),
        located!(x => x.permute(&[1, 0])),
        located!(x => x.reshape(&[4])),
        located!(x => x.broadcast_to(&[3, 2, 2])),
        located!(x => x.unsqueeze(0)),
        located!(x => x.flatten_from(0)),
        located!(x => x.sum()),
        located!(x => x.sum_axes([0], true)),
        located!(x => x.mean()),
        located!(x => x.var()),
        located!(x => x.max()),
        located!(x => x.min_axes([1], false)),
        located!(x => x.softmax(1)),
        located!(x => x.log_softmax(0)),
        located!(x => x.logsumexp(1, false)),
        located!(x => Var::concat(&[x, x], 0)),
        located!(x => Var::stack(&[x, x], 0)),
        located!(x => x.slice(0, 0, 1)),
        located!(x => x.index_select(0, &[1, 0])),
        located!(x => x.gather(1, &ArrayD::zeros(IxDyn(&[2, 1])))),
        located!(x => Var::where_(x.gt_scalar(0.0), x, x)),
        located!(x => x.maximum(x)),
        located!(x => x.clamp(0.0, 1.0)),
        located!(x => x.relu()),
        located!(x => x.abs()),
        located!(x => x.leaky_relu(0.01)),
        located!(x => x.elu(1.0)),
        located!(x => x.softplus()),
        located!(x => x.sigmoid()),
        located!(x => x.minimum(x * 2.0)),
        located!(x => x.maximum(x) * 1.0),
        located!(x => x.powi(2)),
        located!(x => x.square()),
    ];
    let mut wrong = Vec::new();
    for (op, line, text) in cases {
        let tape = Tape::<f64>::new();
        let x = tape.var(array![[f64::NAN, 1.0], [2.0, 3.0]].into_dyn());
        tape.set_anomaly_detection(true);
        let here = format!("{}:{line}:", file!());
        match catch_unwind(AssertUnwindSafe(|| op(x))) {
            Ok(()) => wrong.push(format!("{text}: the NaN went undetected")),
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_default();
                if !message.contains(&here) {
                    wrong.push(format!("{text}: {message}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "ops that do not report the caller's line:\n{}",
        wrong.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Shape errors: each names the op and the shapes, and points at the caller's line.

#[test]
#[should_panic(expected = "add: shapes [2, 3] and [4] cannot be broadcast together")]
fn add_of_incompatible_shapes_panics_naming_both_shapes() {
    let tape = Tape::<f64>::new();
    let _ = tape.var(ArrayD::zeros(IxDyn(&[2, 3]))) + tape.var(ArrayD::zeros(IxDyn(&[4])));
}

#[test]
#[should_panic(expected = "matmul: shapes [2, 3] and [4, 5] are incompatible")]
fn matmul_of_mismatched_inner_dimensions_panics_naming_both_shapes() {
    let tape = Tape::<f64>::new();
    let _ = tape
        .var(ArrayD::zeros(IxDyn(&[2, 3])))
        .matmul(tape.var(ArrayD::zeros(IxDyn(&[4, 5]))));
}

#[test]
#[should_panic(
    expected = "reshape: cannot reshape shape [2, 3] (6 elements) into shape [4, 2] (8 elements)"
)]
fn reshape_to_a_different_element_count_panics_naming_both_shapes() {
    let tape = Tape::<f64>::new();
    let _ = tape.var(ArrayD::zeros(IxDyn(&[2, 3]))).reshape(&[4, 2]);
}

#[test]
#[should_panic(expected = "sum_axes: axis 2 is out of range for shape [2, 3]")]
fn sum_axes_with_an_axis_out_of_range_panics() {
    let tape = Tape::<f64>::new();
    let _ = tape.var(ArrayD::zeros(IxDyn(&[2, 3]))).sum_axes([2], false);
}

#[test]
#[should_panic(expected = "softmax: axis -3 is out of range for shape [2, 3]")]
fn softmax_with_an_axis_out_of_range_panics_naming_softmax() {
    let tape = Tape::<f64>::new();
    let _ = tape.var(ArrayD::zeros(IxDyn(&[2, 3]))).softmax(-3);
}

#[test]
#[should_panic(expected = "gather: index 4 is out of bounds for axis 1 of shape [3, 4]")]
fn gather_with_an_index_out_of_bounds_panics_naming_the_shape() {
    let tape = Tape::<f64>::new();
    let index = array![[0], [4], [1]].into_dyn();
    let _ = tape.var(ArrayD::zeros(IxDyn(&[3, 4]))).gather(1, &index);
}

#[test]
#[should_panic(expected = "index_select: index 5 is out of bounds for axis 0 of shape [4, 3]")]
fn index_select_with_an_index_out_of_bounds_panics_naming_the_shape() {
    let tape = Tape::<f64>::new();
    let _ = tape
        .var(ArrayD::zeros(IxDyn(&[4, 3])))
        .index_select(0, &[1, 5]);
}

#[test]
#[should_panic(expected = "concat: shapes [2, 3] and [3, 2] differ outside axis 1")]
fn concat_of_shapes_that_differ_outside_the_axis_panics_naming_both_shapes() {
    let tape = Tape::<f64>::new();
    let a = tape.var(ArrayD::zeros(IxDyn(&[2, 3])));
    let b = tape.var(ArrayD::zeros(IxDyn(&[3, 2])));
    let _ = Var::concat(&[a, b], 1);
}

#[test]
#[should_panic(expected = "backward: the output has shape [2, 3]")]
fn backward_of_a_non_scalar_output_without_a_seed_panics() {
    let tape = Tape::<f64>::new();
    let _ = (tape.var(ArrayD::zeros(IxDyn(&[2, 3]))) * 2.0).backward();
}

#[test]
#[should_panic(expected = "broadcast_to: shape [3] cannot be broadcast to shape [2, 4]")]
fn broadcast_to_an_incompatible_shape_panics_naming_both_shapes() {
    let tape = Tape::<f64>::new();
    let _ = tape.var(ArrayD::zeros(IxDyn(&[3]))).broadcast_to(&[2, 4]);
}

#[test]
#[should_panic(expected = "Grads::get: this variable was recorded on another tape")]
fn looking_up_a_gradient_with_a_variable_of_another_tape_panics() {
    let first = Tape::<f64>::new();
    let second = Tape::<f64>::new();
    let x = first.var(array![1.0].into_dyn());
    let y = second.var(array![1.0].into_dyn());
    let grads = (x * 2.0).sum().backward();
    let _ = grads.get(y);
}

#[test]
fn every_shape_error_is_reported_at_the_callers_line() {
    let tape = Tape::<f64>::new();
    let m23 = tape.var(ArrayD::zeros(IxDyn(&[2, 3])));
    let m45 = tape.var(ArrayD::zeros(IxDyn(&[4, 5])));
    let v4 = tape.var(ArrayD::zeros(IxDyn(&[4])));
    type Case<'a> = (Box<dyn Fn() + 'a>, u32, &'static str);
    // One line per case (a macro keeps rustfmt from splitting it): the op's call and
    // `line!()` share the line the panic must be reported at.
    macro_rules! case {
        ($op:literal, $e:expr) => {
            (Box::new(|| ignore($e)) as Box<dyn Fn()>, line!(), $op)
        };
    }
    let cases: Vec<Case<'_>> = vec![
        case!("add", m23 + v4),
        case!("mul", m23 * v4),
        case!("matmul", m23.matmul(m45)),
        case!("matmul", v4.matmul(m23)),
        case!("reshape", m23.reshape(&[5])),
        case!("sum_axes", m23.sum_axes(3, true)),
        case!("sum_axes", m23.sum_axes([0, -2], true)),
        case!("mean_axes", m23.mean_axes([-3], true)),
        case!("var_axes", m23.var_axes([2], true)),
        case!("max_axes", m23.max_axes(2, true)),
        case!("min_axes", m23.min_axes([0, -3], true)),
        case!("softmax", m23.softmax(2)),
        case!("log_softmax", m23.log_softmax(2)),
        case!("logsumexp", m23.logsumexp(2, true)),
        case!("gather", m23.gather(1, &array![[3], [0]].into_dyn())),
        case!("index_select", m23.index_select(0, &[2])),
        case!("concat", Var::concat(&[m23, m45], 0)),
        case!("backward", m23.backward()),
        case!("broadcast_to", v4.broadcast_to(&[4, 3])),
        case!("permute", m23.permute(&[0, 0])),
        case!("permute", m23.permute(&[0, -3])),
        case!("flatten_from", m23.flatten_from(2)),
        case!("unsqueeze", m23.unsqueeze(-4)),
        case!("stack", Var::stack(&[m23, m23], 3)),
        case!("transpose", m23.transpose(0, 2)),
        case!("slice", m23.slice(1, 2, 4)),
        case!("squeeze", m23.squeeze(0)),
        case!("item", m23.item()),
    ];
    let cases = cases
        .into_iter()
        .map(|(case, line, op)| (case, line, op, format!("{op}:")))
        .collect();
    assert_panics_at_their_lines(file!(), cases);
}

#[test]
fn a_one_element_operand_broadcast_over_an_array_gets_the_sum_of_its_gradient() {
    // Every way a one-element operand can broadcast (no axes, and one to three axes of 1,
    // some of them over axes of 1 in the other operand), by `backward` (arrays) and by
    // `Tape::grad` (recorded operations, for higher-order use).
    for big in [vec![6, 1], vec![2, 3, 1], vec![4, 5], vec![1, 1]] {
        for small in [vec![], vec![1], vec![1, 1], vec![1, 1, 1]] {
            let n: usize = big.iter().product();
            let c = ArrayD::from_shape_vec(
                IxDyn(&big),
                (0..n).map(|i| (i as f64 * 0.37).sin()).collect(),
            )
            .unwrap();
            let want: f64 = c.sum();
            let tape = Tape::new();
            let a = tape.var(ArrayD::from_elem(IxDyn(&big), 0.5));
            let b = tape.var(ArrayD::from_elem(IxDyn(&small), 2.0));
            let weights = tape.constant(c.clone());
            let sum = ((a + b) * weights).sum();
            let diff = ((a - b) * weights).sum();
            for (loss, sign) in [(sum, 1.0), (diff, -1.0)] {
                let by_graph = tape.grad(loss, &[b])[0].to_array();
                assert_eq!(by_graph.shape(), &small[..], "{big:?} and {small:?}");
                assert!((by_graph.sum() - sign * want).abs() < 1e-12);
            }
            let grads = (sum + diff).backward();
            let gb = &grads[b];
            assert_eq!(gb.shape(), &small[..], "{big:?} and {small:?}");
            assert!(
                gb.iter().all(|&g| g.abs() < 1e-12),
                "the two sums cancel: {gb}"
            );
            let grads = sum.backward();
            assert!((grads[b].sum() - want).abs() < 1e-12);
            assert_eq!(grads[a], c);
        }
    }
}

#[test]
#[should_panic(expected = "while a `Var::value()` borrow of this tape is alive")]
fn recording_while_a_value_borrow_is_alive_panics_naming_the_fix() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.0, 2.0].into_dyn());
    let borrowed = x.value();
    let _ = x.exp();
    drop(borrowed);
}

#[test]
fn value_borrows_and_to_array_copies() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.0, 2.0].into_dyn());
    let copy = x.to_array();
    assert_eq!(x.value()[[1]], 2.0);
    let y = x * 3.0; // the borrow above ended with its statement
    assert_eq!(*y.value(), &copy * 3.0);
    assert_eq!(y.to_array(), array![3.0, 6.0].into_dyn());
}

/// `ln σ(x)` in closed form, `min(x, 0) − ln(1 + e^−|x|)`, and its derivative `σ(−x)`.
fn log_sigmoid_exact(x: f64) -> (f64, f64) {
    (x.min(0.0) - (-x.abs()).exp().ln_1p(), 1.0 / (1.0 + x.exp()))
}

#[test]
fn log_sigmoid_is_finite_and_exact_far_out_where_ln_of_sigmoid_is_not() {
    let xs = [
        -1000.0, -745.0, -30.0, -20.0, -1.0, 0.0, 1.0, 20.0, 40.0, 1000.0,
    ];
    let tape = Tape::<f64>::new();
    let x = tape.var(ArrayD::from_shape_vec(IxDyn(&[xs.len()]), xs.to_vec()).unwrap());
    let y = x.log_sigmoid();
    let naive = x.sigmoid().ln();
    assert_eq!(
        naive.value()[0],
        f64::NEG_INFINITY,
        "ln σ(-1000) underflows"
    );
    let grads = y.sum().backward();
    for (i, &xi) in xs.iter().enumerate() {
        let (value, slope) = log_sigmoid_exact(xi);
        let got = y.value()[i];
        // Below -20 softplus's threshold returns x itself: off by e^x < 2.1e-9.
        assert!(
            (got - value).abs() <= 1e-15 * value.abs().max(1.0) + 2.1e-9 * f64::from(xi < -20.0),
            "log_sigmoid({xi}) = {got}, exact {value}"
        );
        assert!(
            (grads[x][i] - slope).abs() <= 1e-15,
            "d log_sigmoid({xi}) = {}, exact {slope}",
            grads[x][i]
        );
    }
}

#[test]
fn reverse_scalar_operators_agree_with_the_f32_and_f64_operators() {
    let tape = Tape::<f32>::new();
    let x = tape.var(array![0.5_f32, 2.0].into_dyn());
    assert_eq!(x.rsub(1.0).to_array(), (1.0 - x).to_array());
    assert_eq!(x.rdiv(1.0).to_array(), (1.0 / x).to_array());
    assert_eq!(x.rsub(1.0).to_array(), array![0.5_f32, -1.0].into_dyn());
    let grads = (x.rsub(3.0) * x.rdiv(2.0)).sum().backward();
    // d/dx (3 - x)(2 / x) = -2/x - (3 - x) 2/x² = -6/x².
    assert_eq!(grads[x], array![-24.0_f32, -1.5].into_dyn());
}

#[test]
fn a_released_value_frees_its_array_and_cannot_be_read_again() {
    let tape = Tape::<f64>::new();
    let x = tape.no_grad(|| {
        tape.constant(ndarray::Array1::linspace(0.0, 1.0, 1000).into_dyn())
            .exp()
    });
    let y = tape.no_grad(|| x.sum());
    let before = tape.memory_bytes();
    tape.release_value(x);
    assert_eq!(tape.memory_bytes(), before - 1000 * size_of::<f64>());
    assert!(y.item() > 1000.0, "values computed from it stay");
    let read = catch_unwind(AssertUnwindSafe(|| x.to_array()));
    let message = payload_message(&*read.expect_err("reading a released value panics"));
    assert!(message.contains("released"), "{message}");
}

#[test]
#[should_panic(expected = "kept for the backward pass")]
fn a_value_that_requires_a_gradient_is_not_released() {
    let tape = Tape::<f64>::new();
    let x = tape.var(ndarray::arr1(&[1.0, 2.0]).into_dyn());
    tape.release_value(x);
}
