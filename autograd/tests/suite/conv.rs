//! Convolution and pooling through the ops: every autograd case of `tests/data/conv.json`
//! (PyTorch in float64) replayed on the tape, values and `backward()` gradients to 1e-10
//! relative; gradcheck properties over random geometries, first and second order; a
//! Hessian-vector product through a small CNN against finite differences of its gradient;
//! the panics of bad geometries, at the caller's line.
//!
//! The `batch_norm*` and `embedding` cases of the same file belong to the `nn` crate.

use ndarray::{Array, ArrayD, IxDyn};
use serde_json::Value;
use tapegrad_autograd::{Conv2dOptions, Pool2dOptions, Tape, Var};

use super::golden_ops::{compare_with_pytorch, f64_array, load_golden, replay_all, usizes};
use super::tape::{assert_panics_at_their_lines, ignore, panic_message};

/// The cases of conv.json replayed by the nn crate, not here.
const NN_CASES: &[&str] = &[
    "batch_norm2d_train",
    "batch_norm1d_train",
    "batch_norm2d_eval",
    "embedding",
];

/// One number or `[h, w]`.
fn pair(v: &Value) -> [usize; 2] {
    match v {
        Value::Array(_) => {
            let hw = usizes(v);
            [hw[0], hw[1]]
        }
        _ => {
            let n = v.as_u64().expect("a size") as usize;
            [n, n]
        }
    }
}

fn pool_options(attrs: &Value) -> Pool2dOptions {
    let mut options = Pool2dOptions::new(pair(&attrs["kernel"]))
        .stride(pair(&attrs["stride"]))
        .padding(pair(&attrs["padding"]));
    if let Some(include) = attrs["count_include_pad"].as_bool() {
        options = options.count_include_pad(include);
    }
    options
}

/// The op of one case applied to its inputs, in the order of the case's `inputs`.
fn apply<'t>(case: &Value, x: &[Var<'t, f64>]) -> Var<'t, f64> {
    let op = case["op"].as_str().expect("op is a string");
    let attrs = &case["attrs"];
    if op.starts_with("conv2d") {
        let options = Conv2dOptions::default()
            .stride(pair(&attrs["stride"]))
            .padding(pair(&attrs["padding"]))
            .dilation(pair(&attrs["dilation"]))
            .groups(attrs["groups"].as_u64().expect("groups") as usize);
        let bias = attrs["bias"].as_bool().expect("bias flag").then(|| x[2]);
        return x[0].conv2d(x[1], bias, &options);
    }
    if op.starts_with("max_pool2d") {
        return x[0].max_pool2d(&pool_options(attrs));
    }
    if op.starts_with("avg_pool2d") {
        return x[0].avg_pool2d(&pool_options(attrs));
    }
    match op {
        "global_avg_pool2d" => x[0].global_avg_pool2d(),
        // conv2d(1->4, 3x3, pad 1) relu max_pool2d(2) conv2d(4->6, 3x3, pad 1) relu
        // global_avg_pool2d matmul(+bias)
        "small_cnn" => {
            let same = Conv2dOptions::default().padding(1);
            let h = x[0].conv2d(x[1], Some(x[2]), &same).relu();
            let h = h.max_pool2d(&Pool2dOptions::new(2));
            let h = h.conv2d(x[3], Some(x[4]), &same).relu();
            h.global_avg_pool2d().matmul(x[5]) + x[6]
        }
        other => panic!("no mapping for golden op `{other}`"),
    }
}

/// Replays one case; returns a description of every disagreement.
fn replay(case: &Value) -> Vec<String> {
    let tape = Tape::<f64>::new();
    let inputs = case["inputs"].as_array().expect("inputs is a list");
    let vars: Vec<Var<'_, f64>> = inputs
        .iter()
        .map(|input| tape.var(f64_array(&input["shape"], &input["values"])))
        .collect();
    let out = apply(case, &vars);
    compare_with_pytorch(case, out, &vars)
}

#[test]
fn every_conv_and_pool_golden_case_matches_pytorch_through_the_ops() {
    let replayed = replay_all(&load_golden("conv.json"), NN_CASES, replay);
    // 10 conv2d, 4 max_pool2d, 3 avg_pool2d, global_avg_pool2d, small_cnn.
    assert_eq!(replayed.len(), 19, "conv.json's autograd cases");
}

// ---- second order: a Hessian-vector product through a small CNN ----

/// A smooth CNN on fixed images: conv(3×3, stride 1, pad 1) → tanh → `pool` →
/// conv(2×2, dilation 1, groups 2) → tanh → global average pool → matmul, the squared
/// outputs summed. Its parameters are `p = [w1, w2, m]`.
fn small_cnn_loss<'t>(tape: &'t Tape<'t, f64>, p: &[Var<'t, f64>], max_pool: bool) -> Var<'t, f64> {
    let x = tape.constant(
        Array::linspace(-1.0, 1.3, 2 * 2 * 6 * 6)
            .mapv(|v: f64| (7.0 * v).sin())
            .into_shape_with_order(IxDyn(&[2, 2, 6, 6]))
            .expect("36 · 4 values"),
    );
    let h = x
        .conv2d(p[0], None, &Conv2dOptions::default().padding(1))
        .tanh();
    let pool = Pool2dOptions::new(3).stride(2).padding(1);
    let h = if max_pool {
        h.max_pool2d(&pool)
    } else {
        h.avg_pool2d(&pool.count_include_pad(false))
    };
    let h = h
        .conv2d(p[1], None, &Conv2dOptions::default().groups(2))
        .tanh();
    h.global_avg_pool2d().matmul(p[2]).square().sum()
}

fn cnn_params() -> Vec<ArrayD<f64>> {
    let init = |shape: &[usize], phase: f64| {
        let n: usize = shape.iter().product();
        Array::linspace(0.0, 1.0, n)
            .mapv(|v: f64| 0.6 * (11.0 * v + phase).sin())
            .into_shape_with_order(IxDyn(shape))
            .expect("n values")
    };
    vec![
        init(&[4, 2, 3, 3], 0.3),
        init(&[4, 2, 2, 2], 1.1),
        init(&[4, 3], 2.0),
    ]
}

/// `H v` by `tape.grad` twice, and by central differences of the gradient along `v`.
fn hvp_both_ways(max_pool: bool) -> (Vec<ArrayD<f64>>, Vec<ArrayD<f64>>) {
    let params = cnn_params();
    let direction: Vec<ArrayD<f64>> = params
        .iter()
        .map(|p| p.mapv(|v| (3.0 * v + 0.5).cos()))
        .collect();
    let tape = Tape::new();
    let p: Vec<Var<'_, f64>> = params.iter().map(|a| tape.var(a.clone())).collect();
    let grads = tape.grad(small_cnn_loss(&tape, &p, max_pool), &p);
    let gv = grads
        .iter()
        .zip(&direction)
        .map(|(g, v)| (*g * tape.constant(v.clone())).sum())
        .reduce(|a, b| a + b)
        .expect("three parameters");
    let hv: Vec<ArrayD<f64>> = tape.grad(gv, &p).iter().map(|h| h.to_array()).collect();

    let eps = 1e-5;
    let gradient_at = |sign: f64| -> Vec<ArrayD<f64>> {
        let tape = Tape::new();
        let p: Vec<Var<'_, f64>> = params
            .iter()
            .zip(&direction)
            .map(|(a, v)| tape.var(a + &(v * (sign * eps))))
            .collect();
        let grads = small_cnn_loss(&tape, &p, max_pool).backward();
        p.iter()
            .map(|v| grads.get(*v).expect("used").clone())
            .collect()
    };
    let (plus, minus) = (gradient_at(1.0), gradient_at(-1.0));
    let numeric = plus
        .iter()
        .zip(&minus)
        .map(|(a, b)| (a - b) / (2.0 * eps))
        .collect();
    (hv, numeric)
}

fn assert_hvp_agrees(max_pool: bool) {
    let (hv, numeric) = hvp_both_ways(max_pool);
    for (k, (a, n)) in hv.iter().zip(&numeric).enumerate() {
        let scale = n.iter().fold(0.0_f64, |m, v| m.max(v.abs())).max(1e-3);
        for (x, y) in a.iter().zip(n) {
            assert!(
                (x - y).abs() <= 1e-6 * scale,
                "parameter {k}: H v {x} against finite differences {y} (scale {scale})"
            );
        }
    }
}

#[test]
fn hessian_vector_product_through_a_cnn_with_max_pooling_matches_finite_differences() {
    assert_hvp_agrees(true);
}

#[test]
fn hessian_vector_product_through_a_cnn_with_avg_pooling_matches_finite_differences() {
    assert_hvp_agrees(false);
}

// ---- panics, anomaly mode and DOT ----

#[test]
fn every_bad_geometry_panics_naming_the_op_and_shapes_at_the_callers_line() {
    let tape = Tape::<f64>::new();
    let zeros = |shape: &[usize]| tape.var(ArrayD::zeros(IxDyn(shape)));
    let (x, w) = (zeros(&[1, 4, 5, 5]), zeros(&[6, 4, 3, 3]));
    let (w_big, w_groups, w_rank) = (
        zeros(&[6, 4, 7, 3]),
        zeros(&[6, 3, 3, 3]),
        zeros(&[6, 4, 3]),
    );
    let (x_rank, x3, bias5) = (zeros(&[4, 5, 5]), zeros(&[1, 3, 5, 5]), zeros(&[5]));
    let default = Conv2dOptions::default();
    type Case<'a> = (Box<dyn Fn() + 'a>, u32, &'static str, &'static str);
    // One line per case (a macro keeps rustfmt from splitting it): the op's call and
    // `line!()` share the line the panic must be reported at.
    macro_rules! case {
        ($op:literal, $want:literal, $e:expr) => {
            (
                Box::new(|| ignore($e)) as Box<dyn Fn()>,
                line!(),
                $op,
                $want,
            )
        };
    }
    #[rustfmt::skip]
    let cases: Vec<Case<'_>> = vec![
        case!("conv2d", "input [1, 4, 5, 5] and weight [6, 4, 7, 3]: the kernel's height (7 with dilation) exceeds the padded input's (5)", x.conv2d(w_big, None, &default)),
        case!("conv2d", "input [1, 4, 5, 5] and weight [6, 4, 3, 3]: the kernel's height (7 with dilation) exceeds the padded input's (5)", x.conv2d(w, None, &default.dilation([3, 1]))),
        case!("conv2d", "input [1, 4, 5, 5] and weight [6, 4, 3, 3]: stride [0, 1] has a zero", x.conv2d(w, None, &default.stride([0, 1]))),
        case!("conv2d", "input [1, 4, 5, 5] and weight [6, 4, 3, 3]: dilation [1, 0] has a zero", x.conv2d(w, None, &default.dilation([1, 0]))),
        case!("conv2d", "input [1, 3, 5, 5] and weight [6, 3, 3, 3]: 3 input channels are not divisible by 2 groups", x3.conv2d(w_groups, None, &default.groups(2))),
        case!("conv2d", "input [1, 4, 5, 5] and weight [6, 3, 3, 3]: the weight has 3 input channels per group", x.conv2d(w_groups, None, &default)),
        case!("conv2d", "input [4, 5, 5] and weight [6, 4, 3, 3]: input [4, 5, 5] is not [N, C, H, W]", x_rank.conv2d(w, None, &default)),
        case!("conv2d", "input [1, 4, 5, 5] and weight [6, 4, 3]: weight [6, 4, 3] is not", x.conv2d(w_rank, None, &default)),
        case!("conv2d", "bias [5] does not match the 6 output channels of weight [6, 4, 3, 3]", x.conv2d(w, Some(bias5), &default)),
        case!("max_pool2d", "input [4, 5, 5] with kernel [2, 2], stride [2, 2], padding [0, 0]: input [4, 5, 5] is not", x_rank.max_pool2d(&Pool2dOptions::new(2))),
        case!("max_pool2d", "input [1, 4, 5, 5] with kernel [3, 3], stride [1, 1], padding [2, 2]: padding [2, 2] exceeds half", x.max_pool2d(&Pool2dOptions::new(3).stride(1).padding(2))),
        case!("avg_pool2d", "input [1, 4, 5, 5] with kernel [6, 6], stride [6, 6], padding [0, 0]: the output's height would be empty", x.avg_pool2d(&Pool2dOptions::new(6))),
        case!("avg_pool2d", "input [1, 4, 5, 5] with kernel [2, 2], stride [0, 2], padding [0, 0]: stride [0, 2] has a zero", x.avg_pool2d(&Pool2dOptions::new(2).stride([0, 2]))),
        case!("global_avg_pool2d", "input [4, 5, 5] is not [N, C, H, W]", x_rank.global_avg_pool2d()),
    ];
    let cases = cases
        .into_iter()
        .map(|(case, line, op, want)| (case, line, op, format!("{op}: {want}")))
        .collect();
    assert_panics_at_their_lines(file!(), cases);
}

#[test]
#[should_panic(expected = "conv2d: input [2, 3, 4, 4] and weight [8, 3, 5, 5]")]
fn conv2d_with_a_kernel_larger_than_the_input_panics_naming_both_shapes() {
    let tape = Tape::<f64>::new();
    let x = tape.var(ArrayD::zeros(IxDyn(&[2, 3, 4, 4])));
    let w = tape.var(ArrayD::zeros(IxDyn(&[8, 3, 5, 5])));
    ignore(x.conv2d(w, None, &Conv2dOptions::default()));
}

#[test]
fn anomaly_mode_names_conv2d_and_the_users_line_for_a_nan_forward_value() {
    let tape = Tape::<f64>::new();
    let x = tape.var(ArrayD::from_elem(IxDyn(&[1, 1, 3, 3]), 1.0));
    let w = tape.var(ArrayD::from_elem(IxDyn(&[1, 1, 2, 2]), f64::NAN));
    tape.set_anomaly_detection(true);
    let line = line!() + 1; // the next line records `conv2d`
    let message = panic_message(|| ignore(x.conv2d(w, None, &Conv2dOptions::default())));
    assert!(message.contains("`conv2d`"), "{message}");
    assert!(
        message.contains(&format!("{}:{line}:", file!())),
        "{message}"
    );
}

#[test]
fn anomaly_mode_names_conv2d_when_its_backward_produces_infinity() {
    let tape = Tape::<f64>::new();
    let x = tape.var(ArrayD::from_elem(IxDyn(&[1, 1, 3, 3]), 1.0));
    let mut weight = ArrayD::from_elem(IxDyn(&[1, 1, 2, 2]), 0.5);
    weight[[0, 0, 1, 1]] = f64::INFINITY;
    let w = tape.var(weight);
    let y = x.conv2d(w, None, &Conv2dOptions::default()).sum(); // recorded before anomaly mode
    tape.set_anomaly_detection(true);
    // d/dx = input_grad(1, w) carries the infinite weight.
    let message = panic_message(|| ignore(y.backward()));
    assert!(message.contains("backward of `conv2d`"), "{message}");
}

#[test]
fn to_dot_shows_the_conv_and_pool_primitives_and_their_adjoints() {
    let tape = Tape::<f64>::new();
    let x = tape.var(ArrayD::from_elem(IxDyn(&[1, 2, 4, 4]), 0.5));
    let w = tape.var(ArrayD::from_elem(IxDyn(&[2, 2, 3, 3]), 0.1));
    let y = x
        .conv2d(w, None, &Conv2dOptions::default().padding(1))
        .avg_pool2d(&Pool2dOptions::new(2))
        .max_pool2d(&Pool2dOptions::new(2))
        .square()
        .sum();
    let g = tape.grad(y, &[x, w]);
    let z = (g[0].sum() + g[1].sum()).square();
    let dot = tape.to_dot(z);
    for name in [
        "conv2d\\n",
        "conv2d_input_grad",
        "conv2d_weight_grad",
        "avg_pool2d\\n",
        "avg_pool2d_adjoint",
        "max_pool2d",
        "scatter_add",
    ] {
        assert!(dot.contains(name), "`{name}` missing from:\n{dot}");
    }
}

/// `conv2d_relu` recorded on a tape (one fused pass, the pre-activation not kept) gives the
/// same bits as `conv2d` then `relu`: value, first-order gradients, and the second order
/// through `tape.grad` (a gradient's sum differentiated again); in anomaly mode it records
/// both values, and `to_dot` says which value was not kept.
#[test]
fn recorded_conv2d_relu_matches_conv2d_then_relu_to_the_second_order() {
    let filled = |shape: &[usize], phase: f64| {
        let n: usize = shape.iter().product();
        Array::linspace(-1.0, 1.0, n)
            .mapv(|v: f64| (5.0 * v + phase).sin())
            .into_shape_with_order(IxDyn(shape))
            .expect("n values")
    };
    let (x, w, b) = (
        filled(&[2, 3, 5, 5], 0.2),
        filled(&[4, 3, 3, 3], 1.3),
        filled(&[4], 0.7),
    );
    let options = Conv2dOptions::default().padding(1);
    let run = |fused: bool, anomaly: bool| {
        let tape = Tape::new();
        tape.set_anomaly_detection(anomaly);
        let p = [
            tape.var(x.clone()),
            tape.var(w.clone()),
            tape.var(b.clone()),
        ];
        let y = if fused {
            p[0].conv2d_relu(p[1], Some(p[2]), &options)
        } else {
            p[0].conv2d(p[1], Some(p[2]), &options).relu()
        };
        let loss = (y * y).sum();
        let grads = tape.grad(loss, &p);
        let again = tape.grad(
            grads
                .iter()
                .map(|g| g.square().sum())
                .reduce(|a, c| a + c)
                .expect("three"),
            &p,
        );
        let dot = tape.to_dot(loss);
        let arrays = |vs: &[Var<'_, f64>]| vs.iter().map(|v| v.to_array()).collect::<Vec<_>>();
        (y.to_array(), arrays(&grads), arrays(&again), dot)
    };
    let (y, grads, again, dot) = run(false, false);
    assert!(y.iter().any(|&v| v == 0.0) && y.iter().any(|&v| v > 0.0));
    for anomaly in [false, true] {
        let (fy, fgrads, fagain, fdot) = run(true, anomaly);
        assert_eq!(fy, y);
        assert_eq!(fgrads, grads);
        assert_eq!(fagain, again);
        assert_eq!(fdot.contains("(not kept)"), !anomaly, "{fdot}");
    }
    assert!(!dot.contains("(not kept)"), "{dot}");
}

#[cfg(feature = "proptest")]
mod properties {
    //! Gradcheck over random geometries: conv2d (stride, padding, dilation, groups, bias),
    //! max pooling on inputs without ties, average pooling with and without
    //! `count_include_pad` and ceil mode; and the second order through `tape.grad`, which
    //! exercises the adjoint primitives' rules.

    use ndarray::ArrayD;
    use proptest::prelude::*;
    use tapegrad_autograd::testing::{array, distinct_array};
    use tapegrad_autograd::{Conv2dOptions, GradcheckOptions, Pool2dOptions, Var, gradcheck};

    /// A convolution case: input, weight, bias (if any) and options.
    #[derive(Debug, Clone)]
    struct ConvCase {
        x: ArrayD<f64>,
        w: ArrayD<f64>,
        b: Option<ArrayD<f64>>,
        options: Conv2dOptions,
    }

    /// Random geometries with every axis small: 1–2 images, 1–3 groups of 1–2 input and
    /// output channels, kernels 1–3, stride 1–2, padding 0–2, dilation 1–2, and an input
    /// at least as large as the dilated kernel (padded) and at most 3 larger.
    fn conv_case() -> impl Strategy<Value = ConvCase> {
        (
            (1usize..=2, 1usize..=3, 1usize..=2, 1usize..=2),
            ([1usize..=3, 1usize..=3], [1usize..=2, 1usize..=2]),
            ([0usize..=2, 0usize..=2], [1usize..=2, 1usize..=2]),
            ([0usize..=3, 0usize..=3], any::<bool>()),
        )
            .prop_flat_map(|((n, groups, cg, og), (k, s), (p, d), (extra, bias))| {
                let hw: Vec<usize> = (0..2)
                    .map(|a| {
                        let extent = d[a] * (k[a] - 1) + 1;
                        extent.saturating_sub(2 * p[a]).max(1) + extra[a]
                    })
                    .collect();
                let (c, o) = (groups * cg, groups * og);
                let options = Conv2dOptions::default()
                    .stride(s)
                    .padding(p)
                    .dilation(d)
                    .groups(groups);
                (
                    array(vec![n, c, hw[0], hw[1]], -1.0, 1.0),
                    array(vec![o, cg, k[0], k[1]], -1.0, 1.0),
                    array(vec![o], -1.0, 1.0),
                )
                    .prop_map(move |(x, w, b)| ConvCase {
                        x,
                        w,
                        b: bias.then_some(b),
                        options,
                    })
            })
    }

    /// Images with every axis small and a valid pooling of them: kernel 1–3, stride 1–3
    /// (or the kernel), padding up to half the kernel, floor or ceil mode, either divisor.
    fn pool_case(distinct: bool) -> impl Strategy<Value = (ArrayD<f64>, Pool2dOptions)> {
        (
            ([1usize..=3, 1usize..=3], [1usize..=3, 1usize..=3]),
            ([0usize..=1, 0usize..=1], [0usize..=3, 0usize..=3]),
            (1usize..=2, 1usize..=2, any::<bool>()),
            (any::<bool>(), any::<bool>()),
        )
            .prop_flat_map(
                move |((k, s), (p, extra), (n, c, default_stride), (ceil, include))| {
                    let p = [p[0].min(k[0] / 2), p[1].min(k[1] / 2)];
                    let hw: Vec<usize> = (0..2)
                        .map(|a| k[a].saturating_sub(2 * p[a]).max(1) + extra[a])
                        .collect();
                    let mut options = Pool2dOptions::new(k)
                        .padding(p)
                        .ceil_mode(ceil)
                        .count_include_pad(include);
                    if !default_stride {
                        options = options.stride(s);
                    }
                    let shape = vec![n, c, hw[0], hw[1]];
                    let x = if distinct {
                        distinct_array(shape, 0.1).boxed()
                    } else {
                        array(shape, -1.0, 1.0).boxed()
                    };
                    x.prop_map(move |x| (x, options))
                },
            )
    }

    fn check<F>(f: F, inputs: &[ArrayD<f64>]) -> Result<(), TestCaseError>
    where
        F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
    {
        gradcheck(|_t, v| f(v), inputs, &GradcheckOptions::default())
            .map_err(|e| TestCaseError::fail(e.to_string()))
    }

    /// Gradcheck of `v ↦ ∇ f(v)` (as recorded by `tape.grad`): Hessian-vector products.
    fn check_second_order<F>(f: F, inputs: &[ArrayD<f64>]) -> Result<(), TestCaseError>
    where
        F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
    {
        gradcheck(
            |t, v| {
                let grads = t.grad(f(v), v);
                let flat: Vec<Var<'_, f64>> = grads.iter().map(|g| g.flatten_from(0)).collect();
                Var::concat(&flat, 0)
            },
            inputs,
            &GradcheckOptions::default(),
        )
        .map_err(|e| TestCaseError::fail(e.to_string()))
    }

    fn conv_inputs(case: &ConvCase) -> Vec<ArrayD<f64>> {
        let mut inputs = vec![case.x.clone(), case.w.clone()];
        inputs.extend(case.b.clone());
        inputs
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn conv2d_gradient_matches_finite_differences_over_random_geometries(case in conv_case()) {
            let options = case.options;
            check(|v| v[0].conv2d(v[1], v.get(2).copied(), &options), &conv_inputs(&case))?;
        }

        /// ∇ of Σ conv(x, w)² is input_grad and weight_grad of 2·conv(x, w): their rules
        /// (each written with the other two primitives) are checked here.
        #[test]
        fn conv2d_second_derivatives_match_finite_differences_of_tape_grad(case in conv_case()) {
            let options = case.options;
            check_second_order(
                |v| v[0].conv2d(v[1], v.get(2).copied(), &options).square().sum(),
                &conv_inputs(&case),
            )?;
        }

        #[test]
        fn max_pool2d_gradient_matches_finite_differences_without_ties(
            (x, options) in pool_case(true)
        ) {
            check(|v| v[0].max_pool2d(&options), &[x])?;
        }

        #[test]
        fn avg_pool2d_gradient_matches_finite_differences(
            (x, options) in pool_case(false)
        ) {
            check(|v| v[0].avg_pool2d(&options), &[x])?;
        }

        #[test]
        fn avg_pool2d_second_derivative_matches_finite_differences_of_tape_grad(
            (x, options) in pool_case(false)
        ) {
            check_second_order(|v| v[0].avg_pool2d(&options).square().sum(), &[x])?;
        }

        #[test]
        fn max_pool2d_second_derivative_matches_finite_differences_of_tape_grad(
            (x, options) in pool_case(true)
        ) {
            check_second_order(|v| v[0].max_pool2d(&options).powi(3).sum(), &[x])?;
        }
    }
}
