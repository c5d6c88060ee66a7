//! Every loss and every layer through gradient checking (f64), on random small shapes and
//! values from `tapegrad_autograd::testing`: losses with `gradcheck`, layers (input and
//! parameters) with `gradcheck_module`.

use ndarray::ArrayD;
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tapegrad_autograd::testing::{array, array_away_from, distinct_array, shape};
use tapegrad_autograd::{GradcheckOptions, Param, Var, gradcheck, gradgradcheck};
use tapegrad_nn::Module;
use tapegrad_nn::layers::{
    Activation, ActivationLayer, BatchNorm, Dense, Dropout, Flatten, LayerNorm, Sequential,
};
use tapegrad_nn::losses::{self, Reduction};
use tapegrad_nn::module::gradcheck_module;

const CASES: u32 = 64;

fn options() -> GradcheckOptions {
    GradcheckOptions::default()
}

fn reduction() -> impl Strategy<Value = Reduction> {
    prop_oneof![
        Just(Reduction::Mean),
        Just(Reduction::Sum),
        Just(Reduction::None)
    ]
}

/// Two arrays of one random shape: a prediction and a target in `[lo, hi)`.
fn pair(lo: f64, hi: f64) -> impl Strategy<Value = (ArrayD<f64>, ArrayD<f64>)> {
    shape(3, 4).prop_flat_map(move |s| (array(s.clone(), lo, hi), array(s, lo, hi)))
}

/// A target, and a prediction whose difference to it stays `margin` away from `kinks`.
fn pair_away_from(
    kinks: Vec<f64>,
    margin: f64,
) -> impl Strategy<Value = (ArrayD<f64>, ArrayD<f64>)> {
    shape(3, 4).prop_flat_map(move |s| {
        (
            array(s.clone(), -2.0, 2.0),
            array_away_from(s, -3.0, 3.0, kinks.clone(), margin),
        )
            .prop_map(|(target, difference)| (&target + &difference, target))
    })
}

/// `(batch, classes)` logits in `[-4, 4)`.
fn logits() -> impl Strategy<Value = ArrayD<f64>> {
    (1..=4usize, 2..=5usize).prop_flat_map(|(b, c)| array(vec![b, c], -4.0, 4.0))
}

fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::Linear),
        Just(Activation::Relu),
        Just(Activation::Sigmoid),
        Just(Activation::Tanh),
        Just(Activation::Softmax),
        Just(Activation::LeakyRelu(0.2)),
        Just(Activation::Elu(1.0)),
        Just(Activation::Gelu),
        Just(Activation::Softplus),
    ]
}

/// Piecewise activations have a kink at 0: keep inputs away from it.
fn kinked(activation: Activation) -> bool {
    matches!(
        activation,
        Activation::Relu | Activation::LeakyRelu(_) | Activation::Elu(_)
    )
}

fn built<M: Module<f64>>(mut module: M, input_shape: &[usize], seed: u64) -> M {
    module.build(input_shape, &mut StdRng::seed_from_u64(seed));
    module
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    // ---- losses ----

    #[test]
    fn mse((p, t) in pair(-2.0, 2.0), r in reduction()) {
        gradcheck(|_, v| losses::mse_reduced(v[0], v[1], r), &[p, t], &options()).unwrap();
    }

    #[test]
    fn mae((p, t) in pair_away_from(vec![0.0], 0.05), r in reduction()) {
        gradcheck(|_, v| losses::mae_reduced(v[0], v[1], r), &[p, t], &options()).unwrap();
    }

    #[test]
    fn huber(
        (p, t) in pair_away_from(vec![-0.7, 0.0, 0.7], 0.05),
        r in reduction(),
    ) {
        // delta 0.7: errors fall on both sides of the quadratic/linear switch.
        gradcheck(|_, v| losses::huber_reduced(v[0], v[1], 0.7, r), &[p, t], &options()).unwrap();
    }

    #[test]
    fn smooth_l1(
        (p, t) in pair_away_from(vec![-0.7, 0.0, 0.7], 0.05),
        r in reduction(),
        beta in prop_oneof![Just(0.0), Just(0.7), Just(2.0)],
    ) {
        // beta 0.7: errors on both sides of the switch; 0: the L1 loss.
        gradcheck(|_, v| losses::smooth_l1_reduced(v[0], v[1], beta, r), &[p.clone(), t.clone()], &options())
            .unwrap();
        if beta > 0.0 {
            gradgradcheck(|_, v| losses::smooth_l1_reduced(v[0], v[1], beta, r), &[p, t], &options())
                .unwrap();
        }
    }

    #[test]
    fn binary_cross_entropy(
        (p, t) in shape(3, 4).prop_flat_map(|s| (array(s.clone(), 0.05, 0.95), array(s, 0.0, 1.0))),
        r in reduction(),
    ) {
        gradcheck(
            |_, v| losses::binary_cross_entropy_reduced(v[0], v[1], r),
            &[p, t],
            &options(),
        )
        .unwrap();
    }

    #[test]
    fn binary_cross_entropy_with_logits(
        (x, t) in shape(3, 4).prop_flat_map(|s| (array(s.clone(), -8.0, 8.0), array(s, 0.0, 1.0))),
        r in reduction(),
    ) {
        // Smooth everywhere, including at x = 0: no kink to avoid.
        gradcheck(
            |_, v| losses::binary_cross_entropy_with_logits_reduced(v[0], v[1], r),
            &[x, t],
            &options(),
        )
        .unwrap();
    }

    #[test]
    fn categorical_cross_entropy(
        (x, t) in logits().prop_flat_map(|x| {
            let s = x.shape().to_vec();
            (Just(x), array(s, 0.05, 1.0))
        }),
        r in reduction(),
    ) {
        // Soft targets: each row normalized to sum 1 (the loss is differentiable in them too).
        let t = &t / &t.sum_axis(ndarray::Axis(1)).insert_axis(ndarray::Axis(1));
        gradcheck(
            |_, v| losses::categorical_cross_entropy_reduced(v[0], v[1], r),
            &[x, t],
            &options(),
        )
        .unwrap();
    }

    #[test]
    fn sparse_categorical_cross_entropy(
        (x, labels) in logits().prop_flat_map(|x| {
            let (b, c) = (x.shape()[0], x.shape()[1]);
            (Just(x), proptest::collection::vec(0..c, b))
        }),
        r in reduction(),
    ) {
        let as_floats = ArrayD::from_shape_vec(vec![labels.len()], labels.iter().map(|&l| l as f64).collect()).unwrap();
        gradcheck(
            |tape, v| losses::sparse_categorical_cross_entropy_reduced(v[0], tape.constant(as_floats.clone()), r),
            std::slice::from_ref(&x),
            &options(),
        )
        .unwrap();
        gradcheck(
            |_, v| losses::sparse_categorical_cross_entropy_indices_reduced(v[0], &labels, r),
            &[x],
            &options(),
        )
        .unwrap();
    }

    // ---- activations and layers ----

    #[test]
    fn activations(
        activation in activation(),
        x in shape(3, 4).prop_flat_map(|s| array_away_from(s, -3.0, 3.0, vec![0.0], 0.01)),
    ) {
        gradcheck(move |_, v| activation.apply(v[0]), std::slice::from_ref(&x), &options()).unwrap();
        let mut layer = built(ActivationLayer::new(activation), &x.shape()[1..], 0);
        gradcheck_module(&mut layer, &x, &options()).unwrap();
    }

    #[test]
    fn dense(
        activation in activation(),
        use_bias in any::<bool>(),
        units in 1..=4usize,
        seed in any::<u64>(),
        x in (1..=3usize, prop::collection::vec(1..=4usize, 1..=2))
            .prop_flat_map(|(batch, rest)| {
                let mut s = vec![batch];
                s.extend(rest);
                array(s, -2.0, 2.0)
            }),
    ) {
        let mut layer = built(
            Dense::new(units).activation(activation).use_bias(use_bias),
            &x.shape()[1..],
            seed,
        );
        if use_bias {
            // A non-zero bias, so its gradient is checked at a generic point.
            let bias = layer.params_mut().pop().unwrap();
            bias.value_mut().mapv_inplace(|_| 0.1);
        }
        prop_assume!(!kinked(activation) || pre_activations_away_from_zero(&layer, &x));
        gradcheck_module(&mut layer, &x, &options()).unwrap();
    }

    #[test]
    fn layer_norm(
        x in (1..=3usize, 2..=5usize).prop_flat_map(|(b, d)| array(vec![b, d], -2.0, 2.0)),
        seed in any::<u64>(),
    ) {
        let features = x.shape()[1];
        let mut norm = built(LayerNorm::new(), &[features], 0);
        // gamma and beta away from their initial ones and zeros.
        let mut rng = StdRng::seed_from_u64(seed);
        for p in norm.params_mut() {
            let values = tapegrad_nn::init::Initializer::Uniform { low: -1.5, high: 1.5 }
                .init::<f64, _>(p.shape(), &mut rng);
            p.assign(values);
        }
        gradcheck_module(&mut norm, &x, &options()).unwrap();
    }

    /// BatchNorm in training mode (batch statistics) over `[N, C]`, `[N, C, L]` and
    /// `[N, C, H, W]`, with at least two values per channel; the values are distinct (a
    /// spread of at least 0.1) so no channel's batch variance is near 0.
    #[test]
    fn batch_norm_train(
        x in prop_oneof![
            (2..=5usize, 1..=4usize).prop_map(|(n, c)| vec![n, c]),
            (1..=3usize, 1..=3usize, 2..=4usize).prop_map(|(n, c, l)| vec![n, c, l]),
            (1..=2usize, 1..=3usize, 1..=3usize, 2..=3usize)
                .prop_map(|(n, c, h, w)| vec![n, c, h, w]),
        ]
        .prop_flat_map(|s| distinct_array(s, 0.1)),
        seed in any::<u64>(),
    ) {
        let mut bn = built(BatchNorm::new(), &x.shape()[1..], 0);
        prop_assert!(bn.is_training());
        // gamma and beta away from their initial ones and zeros.
        let mut rng = StdRng::seed_from_u64(seed);
        for p in bn.params_mut() {
            let values = tapegrad_nn::init::Initializer::Uniform { low: -1.5, high: 1.5 }
                .init::<f64, _>(p.shape(), &mut rng);
            p.assign(values);
        }
        gradcheck_module(&mut bn, &x, &options()).unwrap();
    }

    #[test]
    fn flatten(x in shape(3, 3).prop_flat_map(|s| {
        let mut full = vec![2];
        full.extend(s);
        array(full, -2.0, 2.0)
    })) {
        let mut flatten = built(Flatten::new(), &x.shape()[1..], 0);
        gradcheck_module(&mut flatten, &x, &options()).unwrap();
    }

    #[test]
    fn dropout(
        rate in 0.0..0.9f64,
        seed in any::<u64>(),
        x in shape(3, 4).prop_flat_map(|s| array(s, -2.0, 2.0)),
    ) {
        // Train mode: a fresh layer with the same seed draws the same mask at every call,
        // so finite differences see one fixed function.
        gradcheck(move |_, v| Dropout::new(rate).seed(seed).apply(v[0]), std::slice::from_ref(&x), &options())
            .unwrap();
        // Eval mode: the identity.
        let mut dropout = built(Dropout::new(rate).seed(seed), &x.shape()[1..], 0);
        Module::<f64>::set_training(&mut dropout, false);
        gradcheck_module(&mut dropout, &x, &options()).unwrap();
    }

    #[test]
    fn sequential(
        seed in any::<u64>(),
        x in (1..=3usize, 1..=4usize).prop_flat_map(|(b, d)| array(vec![b, d], -2.0, 2.0)),
    ) {
        let inner = Sequential::new()
            .add(Dense::new(3).activation(Activation::Tanh))
            .add(LayerNorm::new());
        let mut model = Sequential::new()
            .add(Dense::new(4).activation(Activation::Gelu))
            .add(Dropout::new(0.5))
            .add(inner)
            .add(Dense::new(2).activation(Activation::Softplus))
            .seed(seed)
            .with_input_shape(&x.shape()[1..]);
        model.set_training(false);
        gradcheck_module(&mut model, &x, &options()).unwrap();
    }
}

/// Whether every pre-activation `x · kernel + bias` is at least 1e-3 away from 0.
fn pre_activations_away_from_zero(layer: &Dense<f64>, x: &ArrayD<f64>) -> bool {
    let mut linear = built(
        Dense::new(layer.units()).use_bias(layer.bias().is_some()),
        &x.shape()[1..],
        0,
    );
    for (to, from) in linear.params_mut().into_iter().zip(layer.params()) {
        to.assign(from.value().clone());
    }
    let tape = tapegrad_autograd::Tape::new();
    let z = linear.forward(tape.constant(x.clone())).to_array();
    z.iter().all(|v| v.abs() > 1e-3)
}

/// `y = x * scale`, but the scale enters the tape as a constant: its gradient is lost.
struct DetachedScale {
    scale: Param<f64>,
}

impl Module<f64> for DetachedScale {
    fn forward<'t>(&'t self, x: Var<'t, f64>) -> Var<'t, f64> {
        x * x.tape().constant(self.scale.value().clone())
    }
    tapegrad_nn::register!(f64; param scale);
}

#[test]
fn gradcheck_module_names_the_parameter_whose_gradient_is_off() {
    let scale = ndarray::array![2.0, -0.5].into_dyn();
    // In a Sequential, the parameter's path is `<kind>_0.scale`, the kind taken from the
    // type's name.
    let mut module = Sequential::new()
        .add(DetachedScale {
            scale: Param::new("scale", scale),
        })
        .with_input_shape(&[2]);
    let x = ndarray::array![[1.0, 3.0], [2.0, -0.5]].into_dyn();
    let error = gradcheck_module(&mut module, &x, &options())
        .expect_err("the lost parameter gradient is caught");
    assert_eq!(error.target, "detached_scale_0.scale");
    assert_eq!(error.mismatch.element, vec![0]);
    assert_eq!(error.mismatch.analytic, 0.0);
    // Numeric: w₀₀·1 + w₁₀·2 with weights in [0.5, 1.5).
    assert!(error.mismatch.numeric >= 1.5, "{error}");
    let message = error.to_string();
    assert!(
        message.starts_with(
            "gradcheck_module failed for detached_scale_0.scale at element [0]: analytic"
        ),
        "{message}"
    );
    // The parameter is restored after the check.
    assert_eq!(
        module.params()[0].value(),
        &ndarray::array![2.0, -0.5].into_dyn()
    );
}
