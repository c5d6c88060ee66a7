//! The feed-forward and convolutional layers, each exported and run by tract.

use ndarray::ArrayD;
use tapegrad_autograd::Tape;
use tapegrad_nn::Module;
use tapegrad_nn::layers::{
    Activation, ActivationLayer, AvgPool2d, BatchNorm, Conv2d, Dense, Dropout, Embedding, Flatten,
    GlobalAvgPool2d, LayerNorm, Linear, MaxPool2d, Padding, Reshape, Residual, Sequential,
};

use super::{assert_runs_the_same, batches, randomize, uniform};

#[test]
fn dense_with_every_activation() {
    let activations = [
        Activation::Linear,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softmax,
        Activation::LeakyRelu(0.2),
        Activation::Elu(0.7),
        Activation::Gelu,
        Activation::Softplus,
    ];
    for activation in activations {
        let mut model = Sequential::new()
            .add(Dense::new(5).activation(activation))
            .add(ActivationLayer::new(activation))
            .seed(3)
            .with_input_shape(&[4]);
        randomize(&mut model, -1.0, 1.0, 7);
        assert_runs_the_same(&mut model, &[4], &batches(&[4]));
    }
}

#[test]
fn dense_and_linear_over_a_sequence_and_without_bias() {
    let mut model = Sequential::new()
        .add(Dense::new(6).activation(Activation::Tanh))
        .add(Linear::new(6, 3))
        .add(Dense::new(2).use_bias(false))
        .add(Linear::new(2, 4).bias_enabled(false))
        .with_input_shape(&[5, 4]);
    assert_runs_the_same(&mut model, &[5, 4], &batches(&[5, 4]));
}

#[test]
fn conv2d_paddings_strides_dilations_groups() {
    let convs = [
        Conv2d::new(3, 3),
        Conv2d::new(3, [4, 3]).padding(Padding::Same),
        Conv2d::new(2, 2)
            .padding(Padding::Same)
            .activation(Activation::Relu),
        Conv2d::new(3, 3).stride(2).padding(1),
        Conv2d::new(2, [3, 2])
            .stride([1, 2])
            .padding([2, 0])
            .dilation([2, 1]),
        Conv2d::new(4, 3)
            .groups(2)
            .use_bias(false)
            .activation(Activation::Sigmoid),
    ];
    for conv in convs {
        let mut model = Sequential::new()
            .add(conv)
            .seed(1)
            .with_input_shape(&[4, 9, 8]);
        assert_runs_the_same(&mut model, &[4, 9, 8], &batches(&[4, 9, 8]));
    }
}

#[test]
fn pooling_layers() {
    let shape = [3, 7, 6];
    let mut max = Sequential::new()
        .add(MaxPool2d::new(2))
        .with_input_shape(&shape);
    assert_runs_the_same(&mut max, &shape, &batches(&shape));
    let mut max = Sequential::new()
        .add(MaxPool2d::new(3).stride(2).padding(1))
        .with_input_shape(&shape);
    assert_runs_the_same(&mut max, &shape, &batches(&shape));
    for include in [true, false] {
        let pool = AvgPool2d::new(3)
            .stride([1, 2])
            .padding(1)
            .count_include_pad(include);
        let mut avg = Sequential::new()
            .add(pool)
            .add(AvgPool2d::new(2))
            .with_input_shape(&shape);
        assert_runs_the_same(&mut avg, &shape, &batches(&shape));
    }
    let mut global = Sequential::new()
        .add(GlobalAvgPool2d::new())
        .add(Dense::new(2))
        .with_input_shape(&shape);
    assert_runs_the_same(&mut global, &shape, &batches(&shape));
}

#[test]
fn batch_norm_in_inference_form_after_training_steps() {
    for shape in [vec![6], vec![3, 5], vec![3, 4, 4]] {
        let mut model = Sequential::new()
            .add(BatchNorm::new().eps(1e-3))
            .with_input_shape(&shape);
        randomize(&mut model, 0.5, 1.5, 2);
        // Train-mode passes move the running statistics.
        for seed in 0..3 {
            let x = uniform(8, &shape, -1.0, 3.0, 10 + seed);
            let tape = Tape::new();
            let _ = model.forward(tape.constant(x));
        }
        let mean = model.buffers()[0].value().clone();
        assert!(mean.iter().all(|&m| m != 0.0), "the running mean moved");
        // Exported in train mode: the rule writes the inference form all the same.
        assert!(model.is_training());
        assert_runs_the_same(&mut model, &shape, &batches(&shape));
    }
}

#[test]
fn layer_norm_over_the_last_axis() {
    for shape in [vec![5], vec![3, 6]] {
        let mut model = Sequential::new()
            .add(LayerNorm::new().eps(1e-4))
            .with_input_shape(&shape);
        randomize(&mut model, -1.0, 1.0, 4);
        assert_runs_the_same(&mut model, &shape, &batches(&shape));
    }
}

#[test]
fn reshape_flatten_and_dropout_as_identity() {
    let mut model = Sequential::new()
        .add(Reshape::new(&[2, -1]))
        .add(Dropout::new(0.5))
        .add(Dense::new(3))
        .add(Flatten::new())
        .add(Flatten::new())
        .add(Dropout::new(0.3))
        .with_input_shape(&[3, 4]);
    assert!(model.is_training(), "exported while dropout is active");
    assert_runs_the_same(&mut model, &[3, 4], &batches(&[3, 4]));
    // A model of dropout alone is the identity: one `Identity` node.
    let mut identity = Sequential::new()
        .add(Dropout::new(0.5))
        .with_input_shape(&[2]);
    assert_runs_the_same(&mut identity, &[2], &batches(&[2]));
}

#[test]
fn embedding_gathers_rows_of_float_indices() {
    for padding in [None, Some(2)] {
        let mut embedding = Embedding::new(10, 4);
        if let Some(index) = padding {
            embedding = embedding.padding_idx(index);
        }
        let mut model = Sequential::new()
            .add(embedding)
            .add(Flatten::new())
            .add(Dense::new(3))
            .with_input_shape(&[5]);
        let inputs: Vec<ArrayD<f32>> = [2, 6]
            .iter()
            .map(|&batch| uniform(batch, &[5], 0.0, 10.0, batch as u64).mapv(f32::floor))
            .collect();
        assert_runs_the_same(&mut model, &[5], &inputs);
    }
}

#[test]
fn residual_adds_its_input() {
    let mut model = Sequential::new()
        .add(Residual::new(Dense::new(4).activation(Activation::Tanh)))
        .add(Residual::new(LayerNorm::new()))
        .with_input_shape(&[4]);
    assert_runs_the_same(&mut model, &[4], &batches(&[4]));
}
