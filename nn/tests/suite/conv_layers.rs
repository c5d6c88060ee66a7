//! The convolution and pooling layers as a user sees them: shapes through a small CNN, its
//! Keras-style summary, its gradients against finite differences, a weights round trip;
//! `Same` padding (odd totals included) and its rejection with a stride.

use std::path::Path;

use ndarray::{Array, ArrayD, IxDyn};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tapegrad_autograd::{GradcheckOptions, Tape};
use tapegrad_nn::Module;
use tapegrad_nn::io::{load_weights_from_bytes, weights_to_bytes};
use tapegrad_nn::layers::{
    Activation, AvgPool2d, Conv2d, Dense, GlobalAvgPool2d, MaxPool2d, Padding, Sequential,
};
use tapegrad_nn::module::gradcheck_module;

/// Conv2d(4, 3×3, same, tanh) → MaxPool2d(2) → Conv2d(6, 3×3, pad 1, tanh) →
/// GlobalAvgPool2d → Dense(3), for images `(2, 8, 8)`.
fn cnn(seed: u64) -> Sequential<f64> {
    Sequential::new()
        .add(
            Conv2d::new(4, 3)
                .padding(Padding::Same)
                .activation(Activation::Tanh),
        )
        .add(MaxPool2d::new(2))
        .add(Conv2d::new(6, 3).padding(1).activation(Activation::Tanh))
        .add(GlobalAvgPool2d::new())
        .add(Dense::new(3))
        .seed(seed)
        .with_input_shape(&[2, 8, 8])
}

fn images(n: usize) -> ArrayD<f64> {
    Array::linspace(-1.0, 1.0, n * 2 * 8 * 8)
        .mapv(|v: f64| (9.0 * v).sin() + 0.1 * v)
        .into_shape_with_order(IxDyn(&[n, 2, 8, 8]))
        .expect("n · 128 values")
}

#[test]
fn a_small_cnn_has_the_expected_shapes_parameters_and_names() {
    let model = cnn(0);
    let shapes: Vec<Vec<usize>> = model.layer_output_shapes().unwrap().to_vec();
    assert_eq!(
        shapes,
        vec![
            vec![4, 8, 8],
            vec![4, 4, 4],
            vec![6, 4, 4],
            vec![6],
            vec![3]
        ]
    );
    let names: Vec<(&str, Vec<usize>)> = model
        .params()
        .iter()
        .map(|p| (p.name(), p.shape().to_vec()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("conv2d_0.kernel", vec![4, 2, 3, 3]),
            ("conv2d_0.bias", vec![4]),
            ("conv2d_1.kernel", vec![6, 4, 3, 3]),
            ("conv2d_1.bias", vec![6]),
            ("dense_0.kernel", vec![6, 3]),
            ("dense_0.bias", vec![3]),
        ]
    );
    // PyTorch's default initialization: U(±1/√fan_in), fan_in = 2 · 3 · 3 for the first.
    let bound = 1.0 / 18f64.sqrt();
    for p in &model.params()[..2] {
        assert!(p.value().iter().all(|v| v.abs() <= bound), "{}", p.name());
    }
    let tape = Tape::new();
    let y = model.forward(tape.constant(images(5)));
    assert_eq!(y.shape(), vec![5, 3]);
}

#[test]
fn the_summary_lists_output_shapes_and_parameter_counts_as_keras_does() {
    let summary = cnn(0).summary();
    // (name (Type), output shape with the batch as None, parameters)
    let rows = [
        ("conv2d_0 (Conv2d)", "(None, 4, 8, 8)", "76"), // 4 · 2 · 3 · 3 + 4
        ("max_pool2d_0 (MaxPool2d)", "(None, 4, 4, 4)", "0"),
        ("conv2d_1 (Conv2d)", "(None, 6, 4, 4)", "222"), // 6 · 4 · 3 · 3 + 6
        ("global_avg_pool2d_0 (GlobalAvgPool2d)", "(None, 6)", "0"),
        ("dense_0 (Dense)", "(None, 3)", "21"), // 6 · 3 + 3
    ];
    for (name, shape, count) in rows {
        let line = summary
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name} in:\n{summary}"));
        let rest = line[name.len()..].trim_start();
        assert!(rest.starts_with(shape), "{line}");
        assert!(rest.ends_with(&format!(" {count}")), "{line}");
    }
    assert!(summary.contains("Total params: 319\n"), "{summary}");
}

#[test]
fn without_gradients_a_sequential_frees_each_intermediate_value() {
    let model = cnn(3);
    let x = images(5);
    let recorded = Tape::new();
    let expected = model.forward(recorded.constant_ref(&x)).to_array();

    let tape = Tape::new();
    let y = tape.no_grad(|| model.forward(tape.constant_ref(&x)));
    assert_eq!(y.to_array(), expected, "the same values, bit for bit");
    // Each layer's output is one node here (fused conv + activation, pooling without
    // indices), and all but the last are freed: the tape holds the output alone.
    let output_bytes = expected.len() * size_of::<f64>();
    let arena_bytes = tape.memory_bytes() - output_bytes;
    assert!(
        arena_bytes < 4096,
        "{arena_bytes} bytes besides the output (the recording path holds {})",
        recorded.memory_bytes()
    );
}

#[test]
fn the_cnn_gradients_match_finite_differences() {
    let mut model = cnn(3);
    gradcheck_module(&mut model, &images(2), &GradcheckOptions::default()).unwrap();
}

#[test]
fn weights_round_trip_through_safetensors_bytes() {
    let trained = cnn(1);
    let bytes = weights_to_bytes(&trained.params()).unwrap();
    let mut restored = cnn(2);
    let predict = |model: &Sequential<f64>| {
        let tape = Tape::new();
        model.forward(tape.constant(images(3))).to_array()
    };
    assert_ne!(predict(&trained), predict(&restored));
    load_weights_from_bytes(Path::new("memory"), &bytes, &mut restored.params_mut()).unwrap();
    assert_eq!(predict(&trained), predict(&restored));
}

#[test]
fn same_padding_keeps_the_size_with_even_kernels_and_dilation() {
    let mut rng = StdRng::seed_from_u64(0);
    let mut layer = Conv2d::<f64>::new(2, [2, 4])
        .padding(Padding::Same)
        .dilation([1, 3]);
    assert_eq!(layer.build(&[3, 5, 6], &mut rng), vec![2, 5, 6]);
    let x = images(1)
        .into_shape_with_order(IxDyn(&[1, 2, 8, 8]))
        .unwrap();
    let x = x.slice_move(ndarray::s![.., .., ..5, ..6]).into_dyn();
    let mut layer2 = Conv2d::<f64>::new(2, [2, 4])
        .padding(Padding::Same)
        .dilation([1, 3]);
    layer2.build(&[2, 5, 6], &mut rng);
    let tape = Tape::new();
    assert_eq!(
        layer2.forward(tape.constant(x.clone())).shape(),
        vec![1, 2, 5, 6]
    );
    gradcheck_module(&mut layer2, &x, &GradcheckOptions::default()).unwrap();
}

#[test]
fn pooling_layers_build_to_pytorchs_sizes() {
    let mut rng = StdRng::seed_from_u64(0);
    let mut max = MaxPool2d::new(3).stride(2).padding(1);
    assert_eq!(
        Module::<f64>::build(&mut max, &[4, 7, 7], &mut rng),
        vec![4, 4, 4]
    );
    let mut avg = AvgPool2d::new([2, 3])
        .stride([1, 2])
        .count_include_pad(false);
    assert_eq!(
        Module::<f64>::build(&mut avg, &[4, 5, 7], &mut rng),
        vec![4, 4, 3]
    );
    let tape = Tape::<f64>::new();
    let x = tape.constant(ArrayD::zeros(IxDyn(&[2, 4, 5, 7])));
    assert_eq!(avg.forward(x).shape(), vec![2, 4, 4, 3]);
}

#[test]
#[should_panic(expected = "padding Same is not supported with stride [2, 2]")]
fn same_padding_with_a_stride_is_rejected_at_build_time() {
    let mut layer = Conv2d::<f64>::new(2, 3).padding(Padding::Same).stride(2);
    layer.build(&[1, 8, 8], &mut StdRng::seed_from_u64(0));
}

#[test]
#[should_panic(expected = "3 input channels and 4 filters must both be multiples of groups 2")]
fn groups_that_do_not_divide_the_channels_are_rejected_at_build_time() {
    let mut layer = Conv2d::<f64>::new(4, 3).groups(2);
    layer.build(&[3, 8, 8], &mut StdRng::seed_from_u64(0));
}

#[test]
#[should_panic(expected = "1 input channel and 4 filters must both be multiples of groups 2")]
fn one_input_channel_is_named_in_the_singular() {
    let mut layer = Conv2d::<f64>::new(4, 3).groups(2);
    layer.build(&[1, 8, 8], &mut StdRng::seed_from_u64(0));
}
