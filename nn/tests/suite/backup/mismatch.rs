//! Corrupt, truncated, foreign and mismatched backups: typed errors naming what differs,
//! and `fit` refuses to start (or starts fresh when asked).

use std::fs;
use std::path::Path;

use ndarray::{Array1, Array2};
use tapegrad_nn::callbacks::BackupAndRestore;
use tapegrad_nn::layers::{Dense, Dropout, Sequential};
use tapegrad_nn::model::{FitError, FitOptions, Loss, Model};
use tapegrad_nn::snapshot::{SnapshotError, TrainingSnapshot};
use tapegrad_optim::{Adam, Optimizer, Sgd, SgdConfig};

use super::scratch_dir;

fn data() -> (Array2<f32>, Array2<f32>) {
    let x = Array2::from_shape_fn((20, 3), |(i, j)| ((i * 3 + j) % 7) as f32 / 7.0);
    let y = Array1::from_shape_fn(20, |i| (i % 3) as f32 / 3.0).insert_axis(ndarray::Axis(1));
    (x, y)
}

/// Fits a model of hidden width `width` with `opt` and a backup in `dir` kept at the end.
fn fit_with(
    dir: &Path,
    width: usize,
    opt: impl Optimizer<f32> + Send + 'static,
    fresh: bool,
) -> Result<usize, FitError> {
    let mut model = Model::new(
        Sequential::new()
            .add(Dense::new(width))
            .add(Dropout::new(0.2))
            .add(Dense::new(1)),
    );
    model.compile(opt, Loss::mse(), &[]);
    let (x, y) = data();
    let backup = BackupAndRestore::new(dir)
        .delete_on_completion(false)
        .start_fresh_on_error(fresh);
    let options = FitOptions::default()
        .epochs(2)
        .batch_size(8)
        .callback(backup);
    model.fit(&x, &y, options).map(|h| h.epochs())
}

fn backup_source(err: FitError) -> SnapshotError {
    match err {
        FitError::Backup { source, .. } => *source,
        other => panic!("expected a backup error, got {other}"),
    }
}

#[test]
fn mismatched_backups_name_what_differs_and_nothing_trains() {
    let dir = scratch_dir("mismatch");
    fit_with(&dir, 4, Adam::new(0.01).unwrap(), false).unwrap();
    let file = dir.join("training_state.safetensors");
    assert!(file.exists(), "kept when asked");
    let good = fs::read(&file).unwrap();

    // Another architecture: names the parameters whose shapes differ.
    let err = backup_source(fit_with(&dir, 5, Adam::new(0.01).unwrap(), false).unwrap_err());
    match &err {
        SnapshotError::Model { shapes, .. } => {
            assert!(
                shapes
                    .iter()
                    .any(|(name, ..)| name == "param dense_0.kernel"),
                "{err}"
            );
        }
        other => panic!("expected a model mismatch, got {other}"),
    }
    assert_eq!(
        fs::read(&file).unwrap(),
        good,
        "a refused backup is left as it was"
    );

    // Another optimizer: names both.
    let err = backup_source(fit_with(&dir, 4, Sgd::new(0.01).unwrap(), false).unwrap_err());
    assert!(
        matches!(&err, SnapshotError::Optimizer { expected: "SGD", found } if found == "Adam"),
        "{err}"
    );
    // Another configuration of the optimizer's state.
    let sgd = SgdConfig::new(0.1).momentum(0.9).build().unwrap();
    fit_with(&dir, 4, sgd, true).unwrap(); // starts fresh over the Adam backup, keeps its own
    let err = backup_source(fit_with(&dir, 4, Sgd::new(0.1).unwrap(), false).unwrap_err());
    assert!(matches!(err, SnapshotError::OptimizerState(_)), "{err}");
    fs::write(&file, &good).unwrap();

    // Truncated and corrupt files: typed format errors, nothing trains.
    for cut in [0, 7, 8, 100, good.len() / 2, good.len() - 1] {
        fs::write(&file, &good[..cut]).unwrap();
        let err = backup_source(fit_with(&dir, 4, Adam::new(0.01).unwrap(), false).unwrap_err());
        assert!(matches!(err, SnapshotError::Io(_)), "cut at {cut}: {err}");
        // Asked to, the run starts fresh and trains its 2 epochs.
        assert_eq!(
            fit_with(&dir, 4, Adam::new(0.01).unwrap(), true).unwrap(),
            2
        );
    }

    // A foreign file: a weights checkpoint is not a snapshot.
    let mut model = Model::new(
        Sequential::<f32>::new()
            .add(Dense::new(1))
            .with_input_shape(&[3]),
    );
    model.compile(Adam::new(0.01).unwrap(), Loss::mse(), &[]);
    model.save(&file).unwrap();
    let err = backup_source(fit_with(&dir, 4, Adam::new(0.01).unwrap(), false).unwrap_err());
    assert!(matches!(err, SnapshotError::NotASnapshot { .. }), "{err}");

    // Another element type.
    fs::write(&file, &good).unwrap();
    let err = TrainingSnapshot::<f64>::load(&file).unwrap_err();
    assert!(
        matches!(
            err,
            SnapshotError::Dtype {
                expected: "F64",
                ..
            }
        ),
        "{err}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_backup_of_other_callbacks_or_data_is_refused() {
    let dir = scratch_dir("other-run");
    fit_with(&dir, 4, Adam::new(0.01).unwrap(), false).unwrap();
    let mut model = Model::new(
        Sequential::new()
            .add(Dense::new(4))
            .add(Dropout::new(0.2))
            .add(Dense::new(1)),
    );
    model.compile(Adam::new(0.01).unwrap(), Loss::mse(), &[]);
    let (x, y) = data();
    // Another batch size: the data walk differs.
    let options = FitOptions::default()
        .epochs(2)
        .batch_size(4)
        .callback(BackupAndRestore::new(&dir));
    let err = backup_source(model.fit(&x, &y, options).unwrap_err());
    assert!(
        matches!(
            &err,
            SnapshotError::Mismatch {
                part: "data walk",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("batches of 4"), "{err}");
    fs::remove_dir_all(&dir).unwrap();
}
