//! Non-trainable state and the layers of the convolutional-networks issue, one module per
//! subject: BatchNorm's running statistics as buffers (here: naming, train/eval switching,
//! summaries; `training`: through `Model` and optimizers; `checkpoints`), and Embedding's
//! index checks and Reshape (`embedding_and_reshape`). This module holds the helpers they
//! share.

mod checkpoints;
mod embedding_and_reshape;
mod training;

use std::fs;
use std::path::PathBuf;

use ndarray::{Array2, ArrayD, Axis, array};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Tape};
use tapegrad_nn::layers::{Activation, BatchNorm, Dense, Embedding, Flatten, Reshape, Sequential};
use tapegrad_nn::model::{Loss, Model};
use tapegrad_nn::{Buffer, Module};
use tapegrad_optim::Sgd;

fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tapegrad-state-{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn buffer_values<T: Float>(buffers: &[&Buffer<T>]) -> Vec<ArrayD<T>> {
    buffers.iter().map(|b| b.value().clone()).collect()
}

fn param_values<T: Float>(module: &impl Module<T>) -> Vec<ArrayD<T>> {
    module.params().iter().map(|p| p.value().clone()).collect()
}

/// Inputs `(n, 3)` with per-feature means far from 0 and variances far from 1, and a
/// regression target.
fn data(n: usize) -> (Array2<f64>, Array2<f64>) {
    let x = Array2::from_shape_fn((n, 3), |(i, j)| {
        let t = i as f64 * 0.37 + j as f64;
        5.0 * (j as f64 + 1.0) + (j as f64 + 2.0) * t.sin()
    });
    let y = x
        .map_axis(Axis(1), |r| r[0] * 0.1 - r[2] * 0.05)
        .insert_axis(Axis(1));
    (x, y)
}

fn bn_model(seed: u64) -> Model<f64> {
    let mut model = Model::new(
        Sequential::new()
            .add(Dense::new(4).activation(Activation::Tanh))
            .add(BatchNorm::new())
            .add(Dense::new(1))
            .seed(seed)
            .with_input_shape(&[3]),
    );
    model.compile(Sgd::new(0.05).unwrap(), Loss::mse(), &[]);
    model
}

// ---- buffers in modules ----

#[test]
fn batch_norm_buffers_are_named_by_path_and_kept_out_of_params() {
    let model = Sequential::<f32>::new()
        .add(Dense::new(4))
        .add(
            Sequential::new()
                .add(BatchNorm::new())
                .add(BatchNorm::new().momentum(0.01).eps(1e-3)),
        )
        .with_input_shape(&[3]);
    let params: Vec<&str> = model.params().iter().map(|p| p.name()).collect();
    assert_eq!(
        params,
        [
            "dense_0.kernel",
            "dense_0.bias",
            "sequential_0.batch_norm_0.gamma",
            "sequential_0.batch_norm_0.beta",
            "sequential_0.batch_norm_1.gamma",
            "sequential_0.batch_norm_1.beta",
        ]
    );
    let buffers: Vec<&str> = model.buffers().iter().map(|b| b.name()).collect();
    assert_eq!(
        buffers,
        [
            "sequential_0.batch_norm_0.running_mean",
            "sequential_0.batch_norm_0.running_var",
            "sequential_0.batch_norm_1.running_mean",
            "sequential_0.batch_norm_1.running_var",
        ]
    );
    assert_eq!(model.num_params(), 3 * 4 + 4 + 2 * 8);
    assert_eq!(model.num_non_trainable(), 16);
    assert_eq!(*model.buffers()[0].value(), ArrayD::<f32>::zeros(vec![4]));
    assert_eq!(*model.buffers()[1].value(), ArrayD::<f32>::ones(vec![4]));
    // Layers without state have no buffers.
    assert!(Module::<f32>::buffers(&Dense::<f32>::new(2)).is_empty());
}

#[test]
fn set_training_switches_batch_norm_between_batch_and_running_statistics() {
    let mut model = Sequential::<f64>::new()
        .add(BatchNorm::new())
        .with_input_shape(&[2]);
    let x = array![[1.0, 10.0], [3.0, 30.0], [5.0, 50.0]].into_dyn();
    assert!(model.is_training());
    {
        let tape = Tape::new();
        let y = model.forward(tape.constant(x.clone())).to_array();
        // Batch statistics: every column has mean 0.
        for column in y.columns() {
            assert!(column.sum().abs() < 1e-12);
        }
    }
    let after_train = buffer_values(&model.buffers());
    // running_mean = 0.9 · 0 + 0.1 · (3, 30); running_var = 0.9 · 1 + 0.1 · (4, 400).
    let expected = [array![0.3, 3.0], array![1.3, 40.9]];
    for (got, want) in after_train.iter().zip(&expected) {
        assert!(
            (got - &want.clone().into_dyn())
                .iter()
                .all(|d| d.abs() < 1e-12),
            "{got}"
        );
    }
    model.set_training(false);
    let tape = Tape::new();
    let y = model.forward(tape.constant(x.clone())).to_array();
    let (mean, var) = (&after_train[0], &after_train[1]);
    let want = (&x - mean) / var.mapv(|v| (v + 1e-5).sqrt());
    assert!((&y - &want).iter().all(|d| d.abs() < 1e-12));
    assert_eq!(
        buffer_values(&model.buffers()),
        after_train,
        "eval mode updates nothing"
    );
}

#[test]
fn batch_norm_with_one_value_per_channel_keeps_the_running_variance() {
    let mut bn = BatchNorm::<f64>::new();
    bn.build(&[2], &mut StdRng::seed_from_u64(0));
    let tape = Tape::new();
    let y = bn
        .forward(tape.var(array![[4.0, -2.0]].into_dyn()))
        .to_array();
    assert_eq!(y, array![[0.0, 0.0]].into_dyn(), "beta for a single sample");
    assert_eq!(
        *bn.running_mean().unwrap().value(),
        array![0.4, -0.2].into_dyn()
    );
    assert_eq!(
        *bn.running_var().unwrap().value(),
        array![1.0, 1.0].into_dyn()
    );
}

#[test]
#[should_panic(expected = "layer `batch_norm` was built for inputs of rank 4 with 3 channels")]
fn batch_norm_rejects_inputs_of_another_layout() {
    let mut bn = BatchNorm::<f32>::new();
    bn.build(&[3, 4, 4], &mut StdRng::seed_from_u64(0));
    let tape = Tape::new();
    bn.forward(tape.constant(ArrayD::zeros(vec![2, 4, 4, 3])));
}

// ---- summary ----

#[test]
fn summary_counts_buffers_as_non_trainable_params() {
    let model = Sequential::<f32>::new()
        .add(Embedding::new(1000, 8))
        .add(Reshape::new(&[4, 2, -1]))
        .add(BatchNorm::new())
        .add(Flatten::new())
        .add(Dense::new(16))
        .add(BatchNorm::new())
        .with_input_shape(&[10]);
    assert_eq!(
        model.summary(),
        r#"Model: "sequential"
_________________________________________________________________
Layer (type)                 Output Shape              Param #
=================================================================
embedding_0 (Embedding)      (None, 10, 8)             8000
_________________________________________________________________
reshape_0 (Reshape)          (None, 4, 2, 10)          0
_________________________________________________________________
batch_norm_0 (BatchNorm)     (None, 4, 2, 10)          16
_________________________________________________________________
flatten_0 (Flatten)          (None, 80)                0
_________________________________________________________________
dense_0 (Dense)              (None, 16)                1296
_________________________________________________________________
batch_norm_1 (BatchNorm)     (None, 16)                64
=================================================================
Total params: 9,376
Trainable params: 9,336
Non-trainable params: 40
_________________________________________________________________
"#
    );
}
