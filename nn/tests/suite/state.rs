//! Non-trainable state and the layers of the convolutional-networks issue: BatchNorm's
//! running statistics as buffers (train/eval switching through `Model`, checkpoints,
//! optimizers), Embedding's index checks, Reshape, and their summaries.

use std::fs;
use std::path::PathBuf;

use ndarray::{Array2, ArrayD, Axis, array};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tapegrad_autograd::{Float, Tape};
use tapegrad_nn::io::{IoError, save_weights};
use tapegrad_nn::layers::{Activation, BatchNorm, Dense, Embedding, Flatten, Reshape, Sequential};
use tapegrad_nn::model::{DataRole, FitError, FitOptions, Loss, Model};
use tapegrad_nn::{Buffer, Module};
use tapegrad_optim::{Adam, Optimizer, Sgd};

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

// ---- train/eval through Model ----

#[test]
fn fit_updates_running_statistics_and_evaluate_and_predict_do_not() {
    let (x, y) = data(40);
    let mut model = bn_model(1);
    let initial = buffer_values(&model.buffers());
    let history = model
        .fit(
            &x,
            &y,
            FitOptions::default().epochs(3).batch_size(8).verbose(0),
        )
        .unwrap();
    assert_eq!(history.epochs(), 3);
    let trained = buffer_values(&model.buffers());
    assert_ne!(trained[0], initial[0], "fit updates the running mean");
    assert_ne!(trained[1], initial[1], "fit updates the running variance");
    assert!(
        !model.module().is_training(),
        "fit leaves the model in eval mode"
    );

    model.evaluate(&x, &y, 8).unwrap();
    let first = model.predict(&x, 7).unwrap();
    let second = model.predict(&x, 40).unwrap();
    assert_eq!(buffer_values(&model.buffers()), trained);
    // Eval mode: each sample's output does not depend on the rest of its batch.
    assert!((&first - &second).iter().all(|d| d.abs() < 1e-12));
}

#[test]
fn validation_during_fit_does_not_update_running_statistics() {
    // One epoch of one batch, then validation: the running statistics move exactly once.
    let (x, y) = data(16);
    let mut with_validation = bn_model(2);
    let mut without = bn_model(2);
    let options = || {
        FitOptions::default()
            .epochs(1)
            .batch_size(16)
            .shuffle(false)
            .verbose(0)
    };
    with_validation
        .fit(
            &x,
            &y,
            options().validation_data(x.clone().into_dyn(), y.clone().into_dyn()),
        )
        .unwrap();
    without.fit(&x, &y, options()).unwrap();
    assert_eq!(
        buffer_values(&with_validation.buffers()),
        buffer_values(&without.buffers())
    );
}

// ---- optimizers ----

#[test]
fn optimizers_never_see_or_change_buffers() {
    let mut model = Sequential::<f64>::new()
        .add(Dense::new(3))
        .add(BatchNorm::new())
        .with_input_shape(&[2]);
    model.set_training(false);
    // Distinctive running statistics.
    for (i, b) in model.buffers_mut().into_iter().enumerate() {
        b.value_mut().fill(0.25 + i as f64);
    }
    let before = buffer_values(&model.buffers());
    let mut optimizers: Vec<Box<dyn Optimizer<f64>>> = vec![
        Box::new(Sgd::new(0.1).unwrap()),
        Box::new(Adam::new(0.1).unwrap()),
    ];
    for optimizer in &mut optimizers {
        for _ in 0..3 {
            let params_before = param_values(&model);
            let grads = {
                let tape = Tape::new();
                let out = model.forward(tape.constant(array![[1.0, -2.0], [0.5, 3.0]].into_dyn()));
                out.square().sum().backward()
            };
            assert_eq!(grads.num_params(), 4, "kernel, bias, gamma, beta");
            optimizer.step(model.params_mut(), &grads).unwrap();
            assert_ne!(param_values(&model), params_before);
        }
    }
    assert!(
        model.params().iter().all(|p| !p.name().contains("running")),
        "buffers are not parameters"
    );
    assert_eq!(buffer_values(&model.buffers()), before);
}

// ---- checkpoints ----

#[test]
fn checkpoints_round_trip_buffers_and_predictions() {
    let dir = scratch_dir("round-trip");
    let path = dir.join("bn.safetensors");
    let (x, y) = data(32);
    let mut trained = bn_model(3);
    trained
        .fit(
            &x,
            &y,
            FitOptions::default().epochs(2).batch_size(8).verbose(0),
        )
        .unwrap();
    trained.save(&path).unwrap();

    let mut fresh = bn_model(99);
    assert_ne!(
        buffer_values(&fresh.buffers()),
        buffer_values(&trained.buffers())
    );
    fresh.load(&path).unwrap();
    assert_eq!(
        buffer_values(&fresh.buffers()),
        buffer_values(&trained.buffers())
    );
    assert_eq!(param_values(fresh.module()), param_values(trained.module()));
    assert_eq!(
        fresh.predict(&x, 32).unwrap(),
        trained.predict(&x, 32).unwrap()
    );

    // The file holds parameters and buffers by name, in one namespace.
    let names: Vec<String> = tapegrad_nn::io::read_weights::<f64>(&path)
        .unwrap()
        .into_keys()
        .collect();
    assert!(names.contains(&"batch_norm_0.running_mean".to_string()));
    assert!(names.contains(&"batch_norm_0.running_var".to_string()));
    assert!(names.contains(&"batch_norm_0.gamma".to_string()));
    assert_eq!(names.len(), 4 + 4);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_checkpoint_missing_a_buffer_names_it_and_changes_nothing() {
    let dir = scratch_dir("missing-buffer");
    let path = dir.join("params-only.safetensors");
    let source = bn_model(4);
    // A weights file without the buffers (as written for a model without BatchNorm).
    save_weights(&path, &source.params()).unwrap();

    let mut model = bn_model(5);
    let (params, buffers) = (
        param_values(model.module()),
        buffer_values(&model.buffers()),
    );
    let err = model.load(&path).unwrap_err();
    match &err {
        IoError::StateMismatch {
            missing,
            missing_buffers,
            ..
        } => {
            assert!(missing.is_empty());
            assert_eq!(
                missing_buffers,
                &["batch_norm_0.running_mean", "batch_norm_0.running_var"]
            );
        }
        other => panic!("expected StateMismatch, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("batch_norm_0.running_mean"), "{message}");
    assert!(message.contains("buffer"), "{message}");
    assert_eq!(param_values(model.module()), params);
    assert_eq!(buffer_values(&model.buffers()), buffers);

    // A checkpoint with an extra buffer is rejected too, for a model without BatchNorm.
    let plain_path = dir.join("with-buffers.safetensors");
    source.save(&plain_path).unwrap();
    let mut plain = Model::<f64>::new(
        Sequential::new()
            .add(Dense::new(4).activation(Activation::Tanh))
            .add(Dense::new(1))
            .with_input_shape(&[3]),
    );
    let err = plain.load(&plain_path).unwrap_err();
    assert!(
        matches!(&err, IoError::StateMismatch { unexpected, .. }
            if unexpected.iter().all(|n| n.starts_with("batch_norm_0.")) && unexpected.len() == 4),
        "{err:?}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn checkpoints_without_buffers_still_load_into_models_without_buffers() {
    let dir = scratch_dir("no-buffers");
    let path = dir.join("dense.safetensors");
    let build = |seed| {
        Model::<f32>::new(
            Sequential::new()
                .add(Dense::new(2))
                .seed(seed)
                .with_input_shape(&[3]),
        )
    };
    let source = build(1);
    save_weights(&path, &source.params()).unwrap();
    let mut target = build(2);
    target.load(&path).unwrap();
    assert_eq!(param_values(target.module()), param_values(source.module()));
    fs::remove_dir_all(&dir).unwrap();
}

// ---- Embedding ----

fn embedding_model() -> Model<f64> {
    let mut model = Model::new(
        Sequential::new()
            .add(Embedding::new(5, 3))
            .add(Flatten::new())
            .add(Dense::new(1))
            .with_input_shape(&[2]),
    );
    model.compile(Sgd::new(0.1).unwrap(), Loss::mse(), &[]);
    model
}

#[test]
fn embedding_table_is_standard_normal_and_trains_through_fit() {
    let mut layer = Embedding::<f64>::new(200, 50);
    layer.build(&[4], &mut StdRng::seed_from_u64(7));
    let table = layer.embeddings().unwrap().value();
    assert_eq!(table.shape(), &[200, 50]);
    let n = table.len() as f64;
    let mean = table.sum() / n;
    let var = table.mapv(|v| (v - mean).powi(2)).sum() / n;
    assert!(
        mean.abs() < 0.05 && (var - 1.0).abs() < 0.05,
        "{mean} {var}"
    );
    assert_eq!(layer.params()[0].name(), "embeddings");

    let mut model = embedding_model();
    let x = array![[0.0, 1.0], [2.0, 3.0], [4.0, 0.0], [1.0, 1.0]];
    let y = array![[1.0], [-1.0], [0.5], [0.0]];
    let before = param_values(model.module());
    let history = model
        .fit(&x, &y, FitOptions::default().epochs(20).verbose(0))
        .unwrap();
    assert!(history.loss()[19] < history.loss()[0]);
    assert_ne!(param_values(model.module())[0], before[0]);
}

#[test]
#[should_panic(
    expected = "layer `embedding` got 5 at position [1, 0] of its input, which is not an integer index in 0..5"
)]
fn embedding_panics_on_an_index_out_of_range() {
    let mut layer = Embedding::<f32>::new(5, 2);
    layer.build(&[2], &mut StdRng::seed_from_u64(0));
    let tape = Tape::new();
    layer.forward(tape.constant(array![[0.0, 4.0], [5.0, 1.0]].into_dyn()));
}

#[test]
#[should_panic(expected = "got 1.5 at position [0, 1]")]
fn embedding_panics_on_a_fractional_index() {
    let mut layer = Embedding::<f32>::new(5, 2);
    layer.build(&[2], &mut StdRng::seed_from_u64(0));
    let tape = Tape::new();
    layer.forward(tape.constant(array![[0.0, 1.5]].into_dyn()));
}

#[test]
fn invalid_embedding_indices_are_typed_errors_through_the_model() {
    let mut model = embedding_model();
    let bad = array![[0.0, 1.0], [2.0, -1.0]];
    let err = model.predict(&bad, 32).unwrap_err();
    match &err {
        FitError::InvalidInput { data, source } => {
            assert_eq!(*data, DataRole::Prediction);
            assert_eq!(source.layer, "embedding_0");
            assert_eq!(source.position, [1, 1]);
            assert_eq!(source.value, -1.0);
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert!(err.to_string().contains("embedding_0"), "{err}");

    let y = array![[0.0], [1.0]];
    let err = model.fit(
        &array![[0.0, 1.0], [2.5, 1.0]],
        &y,
        FitOptions::default().verbose(0),
    );
    assert!(
        matches!(
            err,
            Err(FitError::InvalidInput {
                data: DataRole::Training,
                ..
            })
        ),
        "{err:?}"
    );
    let err = model.evaluate(&array![[0.0, 7.0], [2.0, 1.0]], &y, 32);
    assert!(
        matches!(
            err,
            Err(FitError::InvalidInput {
                data: DataRole::Evaluation,
                ..
            })
        ),
        "{err:?}"
    );
}

// ---- Reshape ----

#[test]
fn reshape_infers_one_dimension() {
    let model = Sequential::<f32>::new()
        .add(Reshape::new(&[2, -1]))
        .add(Reshape::new(&[3, 2, 2]))
        .with_input_shape(&[12]);
    assert_eq!(
        model.layer_output_shapes().unwrap(),
        &[vec![2, 6], vec![3, 2, 2]]
    );
    let tape = Tape::new();
    let x = ArrayD::from_shape_fn(vec![2, 12], |i| (i[0] * 12 + i[1]) as f32);
    let y = model.forward(tape.constant(x.clone())).to_array();
    assert_eq!(y.shape(), &[2, 3, 2, 2]);
    assert_eq!(
        y.iter().copied().collect::<Vec<_>>(),
        x.iter().copied().collect::<Vec<_>>()
    );
}

#[test]
#[should_panic(expected = "cannot reshape samples of shape [10] (10 elements) to [3, -1]")]
fn reshape_rejects_incompatible_shapes() {
    let _ = Sequential::<f32>::new()
        .add(Reshape::new(&[3, -1]))
        .with_input_shape(&[10]);
}

#[test]
#[should_panic(expected = "at most one -1")]
fn reshape_allows_one_inferred_dimension() {
    let _ = Reshape::new(&[-1, -1]);
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

#[test]
fn checkpoint_callbacks_and_early_stopping_keep_buffers_with_the_weights() {
    use tapegrad_nn::callbacks::{EarlyStopping, Mode, ModelCheckpoint};
    let dir = scratch_dir("callbacks");
    let (x, y) = data(40);
    let (x_val, y_val) = data(12);
    let mut model = bn_model(6);
    model.compile(Sgd::new(0.3).unwrap(), Loss::mse(), &[]);
    let options = FitOptions::default()
        .epochs(8)
        .batch_size(8)
        .verbose(0)
        .validation_data(x_val.into_dyn(), y_val.into_dyn())
        .callback(ModelCheckpoint::new(dir.join("epoch-{epoch}.safetensors")))
        .callback(
            // "Best" is the highest validation loss, so an early epoch is restored.
            EarlyStopping::new()
                .mode(Mode::Max)
                .patience(100)
                .restore_best_weights(true),
        );
    let history = model.fit(&x, &y, options).unwrap();
    let val = history.val_loss().unwrap();
    let best = (0..val.len())
        .max_by(|&a, &b| val[a].total_cmp(&val[b]))
        .unwrap();
    assert!(
        best + 1 < val.len(),
        "the best epoch is not the last: {val:?}"
    );
    // The checkpoint of the best epoch holds its running statistics, and early stopping
    // put them back with the parameters.
    let saved = tapegrad_nn::io::read_weights::<f64>(dir.join(format!("epoch-{best}.safetensors")))
        .unwrap();
    for b in model.buffers() {
        assert_eq!(saved[b.name()], *b.value(), "{}", b.name());
    }
    for p in model.params() {
        assert_eq!(saved[p.name()], *p.value(), "{}", p.name());
    }
    fs::remove_dir_all(&dir).unwrap();
}
