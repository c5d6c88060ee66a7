//! Checkpoints with buffers: parameters and running statistics round-trip by name, a
//! missing or extra buffer is named and changes nothing, and checkpoint callbacks and early
//! stopping keep buffers with the weights.

use std::fs;

use tapegrad_nn::io::{IoError, save_weights};
use tapegrad_nn::layers::{Activation, Dense, Sequential};
use tapegrad_nn::model::{FitOptions, Loss, Model};
use tapegrad_optim::Sgd;

use super::{bn_model, buffer_values, data, param_values, scratch_dir};

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
