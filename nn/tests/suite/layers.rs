//! Layers as a user sees them: Keras shapes, defaults, parameter counts and names; building
//! and seeding; train/eval mode; dropout statistics; summaries.

use ndarray::{Array2, ArrayD, Axis, array};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Tape};
use tapegrad_nn::Module;
use tapegrad_nn::init::Initializer;
use tapegrad_nn::layers::{
    Activation, ActivationLayer, Dense, Dropout, Flatten, LayerNorm, Sequential,
};
use tapegrad_nn::losses::{self};

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn values<T: Float>(model: &impl Module<T>) -> Vec<ArrayD<T>> {
    model.params().iter().map(|p| p.value().clone()).collect()
}

// ---- Dense ----

#[test]
fn dense_has_keras_shapes_defaults_and_counts() {
    let mut dense = Dense::<f32>::new(128);
    assert!(!dense.is_built());
    assert_eq!(dense.activation_fn(), Activation::Linear);
    assert_eq!(dense.build(&[784], &mut rng(0)), vec![128]);
    let kernel = dense.kernel().unwrap();
    assert_eq!(kernel.shape(), &[784, 128]);
    assert_eq!(dense.bias().unwrap().shape(), &[128]);
    assert_eq!(dense.num_params(), 100_480);
    // Glorot uniform kernel, zero bias.
    let limit = (6.0_f32 / (784.0 + 128.0)).sqrt();
    assert!(kernel.value().iter().all(|w| w.abs() <= limit));
    let spread = kernel.value().mapv(|w| w * w).mean().unwrap().sqrt();
    assert!((spread - limit / 3.0_f32.sqrt()).abs() < 0.02 * limit);
    assert!(dense.bias().unwrap().value().iter().all(|&b| b == 0.0));
    // Named by its field; a container prefixes its path.
    assert_eq!(dense.params()[0].name(), "kernel");

    let mut no_bias = Dense::<f32>::new(128).use_bias(false);
    no_bias.build(&[784], &mut rng(0));
    assert!(no_bias.bias().is_none());
    assert_eq!(no_bias.num_params(), 100_352);
    assert_eq!(no_bias.params().len(), 1);
}

#[test]
fn dense_initializers_are_configurable() {
    let mut dense = Dense::<f64>::new(3)
        .kernel_initializer(Initializer::Constant(0.5))
        .bias_initializer(Initializer::Ones);
    dense.build(&[2], &mut rng(0));
    let tape = Tape::new();
    let y = dense.forward(tape.constant(array![[1.0, 2.0]].into_dyn()));
    assert_eq!(y.to_array(), array![[2.5, 2.5, 2.5]].into_dyn());
}

#[test]
fn dense_computes_x_kernel_plus_bias_then_the_activation() {
    let mut dense = Dense::<f64>::new(2).activation(Activation::Relu);
    dense.build(&[3], &mut rng(1));
    {
        let mut params = dense.params_mut();
        params[0].assign(array![[1.0, -1.0], [0.5, 2.0], [0.0, 1.0]].into_dyn());
        params[1].assign(array![0.25, -0.5].into_dyn());
    }
    let tape = Tape::new();
    let x = tape.constant(array![[1.0, 2.0, 3.0], [-1.0, 0.0, 0.0]].into_dyn());
    let y = dense.forward(x);
    // [1 + 1 + 0 + 0.25, -1 + 4 + 3 - 0.5] = [2.25, 5.5]; [-1 + 0.25, 1 - 0.5] = [-0.75, 0.5]
    assert_eq!(y.to_array(), array![[2.25, 5.5], [0.0, 0.5]].into_dyn());
}

#[test]
fn dense_forward_records_matmul_add_and_activation_only() {
    // x, kernel (bound, not copied), matmul, bias, add, relu: the bias broadcasts in the add.
    let mut dense = Dense::<f32>::new(16).activation(Activation::Relu);
    dense.build(&[8], &mut rng(0));
    let tape = Tape::new();
    let x = tape.constant(Array2::<f32>::ones((32, 8)).into_dyn());
    let before = tape.memory_bytes();
    let y = dense.forward(x);
    assert_eq!(tape.len(), 6);
    // Only the two (32, 16) results are owned by the tape; the parameters are borrowed.
    let owned = tape.memory_bytes() - before;
    let results = 2 * 32 * 16 * std::mem::size_of::<f32>();
    assert!(owned < results + 4096, "tape grew by {owned} bytes");
    let grads = y.sum().backward();
    assert_eq!(
        grads.param(dense.kernel().unwrap()).unwrap().shape(),
        &[8, 16]
    );
    assert_eq!(grads.param(dense.bias().unwrap()).unwrap().shape(), &[16]);
}

#[test]
fn dense_acts_on_the_last_axis() {
    let mut dense = Dense::<f32>::new(4);
    assert_eq!(dense.build(&[5, 3], &mut rng(0)), vec![5, 4]);
    assert_eq!(dense.kernel().unwrap().shape(), &[3, 4]);
    let tape = Tape::new();
    let y = dense.forward(tape.constant(ArrayD::zeros(vec![2, 5, 3])));
    assert_eq!(y.shape(), vec![2, 5, 4]);
}

#[test]
#[should_panic(expected = "is not built")]
fn dense_forward_before_build_panics() {
    let dense = Dense::<f32>::new(4);
    let tape = Tape::new();
    dense.forward(tape.constant(ArrayD::zeros(vec![2, 3])));
}

// ---- Sequential ----

fn mlp(seed: u64) -> Sequential<f32> {
    Sequential::new()
        .add(Dense::new(256).activation(Activation::Relu))
        .add(Dense::new(128).activation(Activation::Relu))
        .add(Dense::new(10))
        .seed(seed)
}

#[test]
fn sequential_counts_parameters_like_keras() {
    let model = mlp(0).with_input_shape(&[784]);
    assert_eq!(model.num_params(), 235_146);
    assert_eq!(model.input_shape(), Some(&[784][..]));
    assert_eq!(model.output_shape(), Some(&[10][..]));
    assert_eq!(
        model.layer_output_shapes().unwrap(),
        &[vec![256], vec![128], vec![10]]
    );
}

#[test]
fn sequential_names_layers_per_kind_and_params_after_them() {
    let model = Sequential::<f32>::new()
        .add(Flatten::new())
        .add(Dense::new(8))
        .add(Dropout::new(0.1))
        .add(Dense::new(8))
        .add(LayerNorm::new())
        .add(ActivationLayer::new(Activation::Tanh))
        .add(Dropout::new(0.1))
        .with_input_shape(&[2, 2]);
    let names = model.layer_names();
    assert_eq!(
        names,
        [
            "flatten_0",
            "dense_0",
            "dropout_0",
            "dense_1",
            "layer_norm_0",
            "activation_0",
            "dropout_1"
        ]
    );
    let params: Vec<&str> = model.params().iter().map(|p| p.name()).collect();
    assert_eq!(
        params,
        [
            "dense_0.kernel",
            "dense_0.bias",
            "dense_1.kernel",
            "dense_1.bias",
            "layer_norm_0.gamma",
            "layer_norm_0.beta"
        ]
    );
}

#[test]
fn nested_models_prefix_their_layers() {
    let encoder = Sequential::<f32>::new()
        .add(Dense::new(4))
        .add(Dense::new(2));
    let model = Sequential::new()
        .add(encoder)
        .add(Dense::new(3))
        .with_input_shape(&[5]);
    let params: Vec<&str> = model.params().iter().map(|p| p.name()).collect();
    assert_eq!(
        params,
        [
            "sequential_0.dense_0.kernel",
            "sequential_0.dense_0.bias",
            "sequential_0.dense_1.kernel",
            "sequential_0.dense_1.bias",
            "dense_0.kernel",
            "dense_0.bias"
        ]
    );
    assert_eq!(model.num_params(), (5 * 4 + 4) + (4 * 2 + 2) + (2 * 3 + 3));
    let tape = Tape::new();
    assert_eq!(
        model
            .forward(tape.constant(ArrayD::zeros(vec![7, 5])))
            .shape(),
        vec![7, 3]
    );
}

#[test]
fn building_is_seeded_and_independent_of_when_it_happens() {
    let at_once = mlp(3).with_input_shape(&[784]);
    let again = mlp(3).with_input_shape(&[784]);
    assert_eq!(values(&at_once), values(&again));
    let other_seed = mlp(4).with_input_shape(&[784]);
    assert_ne!(values(&at_once), values(&other_seed));

    // Input shape first, layers added (and built) one by one: the same values.
    let incremental = Sequential::<f32>::new()
        .seed(3)
        .with_input_shape(&[784])
        .add(Dense::new(256).activation(Activation::Relu))
        .add(Dense::new(128).activation(Activation::Relu))
        .add(Dense::new(10));
    assert_eq!(values(&at_once), values(&incremental));

    // Built through Module::build with a generator seeded the same way: the same values.
    let mut later = mlp(999);
    assert!(!later.is_built());
    later.build(&[784], &mut rng(3));
    assert!(later.is_built());
    assert_eq!(values(&at_once), values(&later));

    // f32 and f64 models from one seed start from the same values (up to rounding).
    let wide = Sequential::<f64>::new()
        .add(Dense::new(256).activation(Activation::Relu))
        .add(Dense::new(128).activation(Activation::Relu))
        .add(Dense::new(10))
        .seed(3)
        .with_input_shape(&[784]);
    for (a, b) in values(&at_once).iter().zip(values(&wide)) {
        assert!(a.iter().zip(b.iter()).all(|(x, y)| *x == *y as f32));
    }
}

#[test]
fn reseeding_a_built_model_rebuilds_it() {
    let a = mlp(1).with_input_shape(&[784]).seed(2);
    let b = mlp(2).with_input_shape(&[784]);
    assert_eq!(values(&a), values(&b));
}

#[test]
#[should_panic(expected = "is not built")]
fn sequential_forward_before_build_panics() {
    let model = mlp(0);
    let tape = Tape::new();
    model.forward(tape.constant(ArrayD::zeros(vec![2, 784])));
}

#[test]
#[should_panic(expected = "was built for inputs of shape (batch, 784), got shape [2, 783]")]
fn sequential_forward_checks_the_input_shape() {
    let model = mlp(0).with_input_shape(&[784]);
    let tape = Tape::new();
    model.forward(tape.constant(ArrayD::zeros(vec![2, 783])));
}

#[test]
fn empty_sequential_is_the_identity() {
    let model = Sequential::<f64>::new().with_input_shape(&[3]);
    assert_eq!(model.output_shape(), Some(&[3][..]));
    let tape = Tape::new();
    let x = array![[1.0, 2.0, 3.0]].into_dyn();
    assert_eq!(model.forward(tape.constant(x.clone())).to_array(), x);
    assert!(model.is_empty());
}

#[test]
fn a_training_step_updates_every_parameter() {
    let mut model = Sequential::<f64>::new()
        .add(Dense::new(8).activation(Activation::Tanh))
        .add(LayerNorm::new())
        .add(Dense::new(3))
        .with_input_shape(&[4]);
    let x = Array2::from_shape_fn((6, 4), |(i, j)| (i as f64 - j as f64) / 3.0).into_dyn();
    let labels = [0, 1, 2, 0, 1, 2];
    let loss_of = |model: &Sequential<f64>| {
        let tape = Tape::new();
        let logits = model.forward(tape.constant(x.clone()));
        losses::sparse_categorical_cross_entropy_indices(logits, &labels).item()
    };
    let before = loss_of(&model);
    for _ in 0..20 {
        let grads = {
            let tape = Tape::new();
            let logits = model.forward(tape.constant(x.clone()));
            losses::sparse_categorical_cross_entropy_indices(logits, &labels).backward()
        };
        assert_eq!(grads.num_params(), model.params().len());
        for p in model.params_mut() {
            let g = grads.param(p).unwrap().clone();
            p.value_mut().scaled_add(-0.5, &g);
        }
    }
    assert!(loss_of(&model) < 0.5 * before);
}

// ---- summary ----

#[test]
fn summary_of_an_unbuilt_model_shows_question_marks() {
    let summary = mlp(0).summary();
    assert!(summary.contains("dense_0 (Dense)              ?                         ?\n"));
    assert!(summary.contains("Total params: ? (not built"));
}

#[test]
fn summary_widens_columns_and_shows_nested_models() {
    let inner = Sequential::<f32>::new()
        .add(Dense::new(4))
        .add(LayerNorm::new());
    let model = Sequential::new()
        .add(Flatten::new())
        .add(inner)
        .add(ActivationLayer::new(Activation::Softmax))
        .with_input_shape(&[3, 10_000]);
    let summary = model.summary();
    let expected = r#"Model: "sequential"
_________________________________________________________________
Layer (type)                 Output Shape              Param #
=================================================================
flatten_0 (Flatten)          (None, 30000)             0
_________________________________________________________________
sequential_0 (Sequential)    (None, 4)                 120012
_________________________________________________________________
activation_0 (Activation)    (None, 4)                 0
=================================================================
Total params: 120,012
Trainable params: 120,012
Non-trainable params: 0
_________________________________________________________________
"#;
    assert_eq!(summary, expected);

    // A shape wider than its column widens the table.
    let wide = Sequential::<f32>::new()
        .add(ActivationLayer::new(Activation::Relu))
        .with_input_shape(&[10_000, 10_000, 10_000]);
    let expected = r#"Model: "sequential"
___________________________________________________________________
Layer (type)                 Output Shape                Param #
===================================================================
activation_0 (Activation)    (None, 10000, 10000, 10000) 0
===================================================================
Total params: 0
Trainable params: 0
Non-trainable params: 0
___________________________________________________________________
"#;
    assert_eq!(wide.summary(), expected);
}

// ---- Dropout, train/eval ----

fn dropout_output(dropout: &Dropout, x: &ArrayD<f64>) -> ArrayD<f64> {
    let tape = Tape::new();
    Module::<f64>::forward(dropout, tape.constant(x.clone())).to_array()
}

#[test]
fn dropout_zeros_about_rate_and_scales_survivors() {
    let x = ArrayD::from_elem(vec![100, 200], 2.0);
    for rate in [0.1, 0.5, 0.8] {
        let dropout = Dropout::new(rate).seed(11);
        let y = dropout_output(&dropout, &x);
        let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
        assert!(
            (dropped - rate).abs() < 0.015,
            "rate {rate}: dropped {dropped}"
        );
        let kept = 2.0 / (1.0 - rate);
        assert!(y.iter().all(|&v| v == 0.0 || (v - kept).abs() < 1e-12));
        // In expectation the output equals the input.
        assert!((y.mean().unwrap() - 2.0).abs() < 0.1);
    }
}

#[test]
fn dropout_is_seeded_and_draws_a_new_mask_per_call() {
    let x = ArrayD::ones(vec![8, 64]);
    let a = Dropout::new(0.5).seed(1);
    let b = Dropout::new(0.5).seed(1);
    let first = dropout_output(&a, &x);
    assert_eq!(first, dropout_output(&b, &x));
    assert_ne!(first, dropout_output(&a, &x));
    assert_ne!(first, dropout_output(&Dropout::new(0.5).seed(2), &x));
}

#[test]
fn dropout_gradient_is_the_mask() {
    let dropout = Dropout::new(0.3).seed(5);
    let tape = Tape::<f64>::new();
    let x = tape.var(ArrayD::from_elem(vec![4, 50], 3.0));
    let y = dropout.apply(x);
    let grads = y.sum().backward();
    let mask = y.to_array() / 3.0;
    assert_eq!(grads[x], mask);
}

#[test]
fn dropout_is_the_identity_in_eval_mode_and_at_rate_zero() {
    let x = ArrayD::from_elem(vec![4, 5], 1.5);
    let mut dropout = Dropout::new(0.5);
    Module::<f64>::set_training(&mut dropout, false);
    assert!(!dropout.is_training());
    let tape = Tape::<f64>::new();
    let input = tape.constant(x.clone());
    let output = Module::<f64>::forward(&dropout, input);
    assert_eq!(
        output.index(),
        input.index(),
        "no op is recorded in eval mode"
    );
    assert_eq!(dropout_output(&Dropout::new(0.0), &x), x);
}

#[test]
fn model_seed_drives_dropout_masks_and_mode_propagates() {
    let make = |seed| {
        Sequential::<f64>::new()
            .add(Dropout::new(0.5))
            .add(Sequential::new().add(Dropout::new(0.5)))
            .seed(seed)
            .with_input_shape(&[100])
    };
    let x = ArrayD::ones(vec![4, 100]);
    let run = |model: &Sequential<f64>| {
        let tape = Tape::new();
        model.forward(tape.constant(x.clone())).to_array()
    };
    let (a, b, c) = (make(7), make(7), make(8));
    assert_eq!(run(&a), run(&b));
    assert_ne!(run(&a), run(&c));

    let mut model = make(7);
    assert!(model.is_training());
    model.set_training(false);
    assert_eq!(run(&model), x, "eval mode reaches the nested dropout too");
    model.set_training(true);
    assert_ne!(run(&model), x);

    // A layer added to a model in eval mode starts in eval mode.
    let mut eval = Sequential::<f64>::new().with_input_shape(&[100]);
    eval.set_training(false);
    eval.push(Dropout::new(0.9));
    assert_eq!(run(&eval), x);
}

// ---- Flatten, LayerNorm, Activation ----

#[test]
fn flatten_merges_all_but_the_batch_axis() {
    let mut flatten = Flatten::new();
    assert_eq!(
        Module::<f32>::build(&mut flatten, &[28, 28], &mut rng(0)),
        vec![784]
    );
    assert_eq!(
        Module::<f32>::build(&mut flatten, &[], &mut rng(0)),
        vec![1]
    );
    let tape = Tape::<f64>::new();
    let x = tape.constant(array![[[1.0, 2.0], [3.0, 4.0]]].into_dyn());
    assert_eq!(
        flatten.forward(x).to_array(),
        array![[1.0, 2.0, 3.0, 4.0]].into_dyn()
    );
    let already_flat = tape.constant(array![[1.0, 2.0]].into_dyn());
    assert_eq!(flatten.forward(already_flat).index(), already_flat.index());
}

#[test]
fn layer_norm_normalizes_the_last_axis() {
    let mut norm = LayerNorm::<f64>::new();
    assert_eq!(norm.build(&[3, 4], &mut rng(0)), vec![3, 4]);
    assert!(norm.gamma().unwrap().value().iter().all(|&g| g == 1.0));
    assert!(norm.beta().unwrap().value().iter().all(|&b| b == 0.0));
    assert_eq!(norm.gamma().unwrap().shape(), &[4]);
    let x = ArrayD::from_shape_fn(vec![2, 3, 4], |i| {
        (i[0] * 12 + i[1] * 4 + i[2] * i[2]) as f64
    });
    let tape = Tape::new();
    let y = norm.forward(tape.constant(x)).to_array();
    for lane in y.lanes(Axis(2)) {
        assert!(lane.sum().abs() < 1e-12);
        let var = lane.mapv(|v| v * v).mean().unwrap();
        assert!((var - 1.0).abs() < 1e-5, "variance {var}");
    }
    // A large eps shrinks the output towards 0 (the variance here is 12.25).
    let mut loose = LayerNorm::<f64>::new().eps(12.25);
    loose.build(&[3, 4], &mut rng(0));
    let tape = Tape::new();
    let x = ArrayD::from_shape_fn(vec![1, 1, 4], |i| (i[2] * i[2]) as f64);
    let y = loose.forward(tape.constant(x)).to_array();
    let var = y.mapv(|v| v * v).mean().unwrap();
    assert!((var - 0.5).abs() < 1e-12, "variance {var}");
}

#[test]
fn activation_layer_applies_its_function() {
    let cases: [(Activation, [f64; 3]); 8] = [
        (Activation::Linear, [-1.0, 0.5, 2.0]),
        (Activation::Relu, [0.0, 0.5, 2.0]),
        (Activation::LeakyRelu(0.3), [-0.3, 0.5, 2.0]),
        (Activation::Elu(1.0), [(-1.0_f64).exp_m1(), 0.5, 2.0]),
        (
            Activation::Tanh,
            [(-1.0_f64).tanh(), 0.5_f64.tanh(), 2.0_f64.tanh()],
        ),
        (
            Activation::Sigmoid,
            [
                1.0 / (1.0 + 1.0_f64.exp()),
                1.0 / (1.0 + (-0.5_f64).exp()),
                1.0 / (1.0 + (-2.0_f64).exp()),
            ],
        ),
        (
            Activation::Softplus,
            [
                (-1.0_f64).exp().ln_1p(),
                0.5_f64.exp().ln_1p(),
                2.0_f64.exp().ln_1p(),
            ],
        ),
        (
            Activation::Gelu,
            [
                -0.158_655_253_931_457_07,
                0.345_731_230_637_006_56,
                1.954_499_736_103_641_6,
            ],
        ),
    ];
    for (activation, want) in cases {
        let layer = ActivationLayer::new(activation);
        let tape = Tape::<f64>::new();
        let y = layer
            .forward(tape.constant(array![[-1.0, 0.5, 2.0]].into_dyn()))
            .to_array();
        for (got, want) in y.iter().zip(want) {
            assert!(
                (got - want).abs() < 1e-12,
                "{activation:?}: {got} vs {want}"
            );
        }
        assert_eq!(Module::<f64>::kind(&layer), "activation");
    }
    let layer = ActivationLayer::from(Activation::Softmax);
    let tape = Tape::<f64>::new();
    let p = layer
        .forward(tape.constant(array![[1000.0, 0.0, -1000.0]].into_dyn()))
        .to_array();
    assert_eq!(p, array![[1.0, 0.0, 0.0]].into_dyn());
}
