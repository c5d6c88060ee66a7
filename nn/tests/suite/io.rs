//! Weights in safetensors: round trips, every kind of bad file, and atomic writes.

use std::fs;
use std::path::PathBuf;

use ndarray::{Array2, ArrayD, array};
use tapegrad_autograd::{Float, Param};
use tapegrad_nn::Module;
use tapegrad_nn::callbacks::{CallbackError, ModelCheckpoint};
use tapegrad_nn::io::{IoError, load_weights, read_weights, save_weights, weights_to_bytes};
use tapegrad_nn::layers::{Activation, Dense, Sequential};
use tapegrad_nn::model::{FitError, FitOptions, Loss, Model};
use tapegrad_optim::Sgd;

fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tapegrad-nn-io-{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn weights<T: Float, M: Module<T>>(model: &Model<T, M>) -> Vec<ArrayD<T>> {
    model.params().iter().map(|p| p.value().clone()).collect()
}

/// The article's line fit, trained.
fn trained_line_model() -> Model<f32> {
    let xs = array![[-1.0_f32], [0.0], [1.0], [2.0], [3.0], [4.0]];
    let ys = xs.mapv(|x| 5.0 * x + 1.0);
    let mut model = Model::new(Sequential::new().add(Dense::new(1)));
    model.compile(Sgd::new(0.01).unwrap(), Loss::mse(), &[]);
    model
        .fit(&xs, &ys, FitOptions::default().epochs(500).verbose(0))
        .unwrap();
    model
}

/// An untrained model of the same architecture as `trained_line_model`, built with another
/// seed (so its weights differ).
fn fresh_line_model() -> Model<f32> {
    let mut model = Model::new(Sequential::new().add(Dense::new(1)));
    model.build(&[1], 99).unwrap();
    model
}

#[test]
fn save_then_load_predicts_identically() {
    let dir = scratch_dir("roundtrip");
    let path = dir.join("line.safetensors");
    let trained = trained_line_model();
    trained.save(&path).unwrap();

    let mut restored = fresh_line_model();
    assert_ne!(weights(&restored), weights(&trained));
    restored.load(&path).unwrap();
    assert_eq!(weights(&restored), weights(&trained));
    let x = array![[10.0_f32], [-3.5]];
    assert_eq!(
        restored.predict(&x, 32).unwrap(),
        trained.predict(&x, 32).unwrap()
    );

    // The file holds one tensor per parameter path, in row-major order.
    let tensors = read_weights::<f32>(&path).unwrap();
    assert_eq!(
        tensors.keys().collect::<Vec<_>>(),
        ["dense_0.bias", "dense_0.kernel"]
    );
    assert_eq!(tensors["dense_0.kernel"].shape(), &[1, 1]);
    assert_eq!(tensors["dense_0.bias"].shape(), &[1]);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn f64_models_and_non_contiguous_parameters_round_trip_exactly() {
    let dir = scratch_dir("f64");
    let path = dir.join("mlp.safetensors");
    let mut model = Model::new(
        Sequential::<f64>::new()
            .add(Dense::new(4).activation(Activation::Tanh))
            .add(Dense::new(3)),
    );
    model.build(&[5], 1).unwrap();
    // A transposed (column-major) parameter value is written in logical order.
    let k = model.params()[2].value().clone(); // (4, 3)
    let transposed = k.t().to_owned().t().to_owned();
    model.module_mut().params_mut()[2].assign(transposed.into_dyn());
    model.save(&path).unwrap();

    let mut other = Model::new(
        Sequential::<f64>::new()
            .add(Dense::new(4).activation(Activation::Tanh))
            .add(Dense::new(3)),
    );
    other.build(&[5], 2).unwrap();
    other.load(&path).unwrap();
    assert_eq!(weights(&other), weights(&model));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn loading_a_bad_file_fails_with_a_typed_error_and_changes_nothing() {
    let dir = scratch_dir("bad");
    let good = dir.join("good.safetensors");
    trained_line_model().save(&good).unwrap();
    let mut model = fresh_line_model();
    let before = weights(&model);

    // Missing file.
    let err = model.load(dir.join("missing.safetensors")).unwrap_err();
    assert!(matches!(err, IoError::Io { action: "read", .. }), "{err}");

    // Truncated file (cut in the data, then in the header).
    let bytes = fs::read(&good).unwrap();
    for cut in [bytes.len() - 2, 12, 3] {
        let path = dir.join(format!("truncated-{cut}.safetensors"));
        fs::write(&path, &bytes[..cut]).unwrap();
        let err = model.load(&path).unwrap_err();
        assert!(matches!(err, IoError::Format { .. }), "cut at {cut}: {err}");
    }

    // Not a safetensors file at all.
    let junk = dir.join("junk.safetensors");
    fs::write(&junk, b"this is not a tensor file").unwrap();
    assert!(matches!(model.load(&junk), Err(IoError::Format { .. })));

    // Wrong shapes: a layer of two units.
    let wide = dir.join("wide.safetensors");
    let mut two_units = Model::new(Sequential::<f32>::new().add(Dense::new(2)));
    two_units.build(&[1], 0).unwrap();
    two_units.save(&wide).unwrap();
    let err = model.load(&wide).unwrap_err();
    // Both tensors of the layer are mis-shaped: one error lists them, by name.
    match &err {
        IoError::StateMismatch { shapes, .. } => {
            assert_eq!(shapes.len(), 2);
            for (name, expected, found) in shapes {
                assert!(name.starts_with("dense_0."));
                assert_ne!(expected, found);
            }
        }
        other => panic!("unexpected {other:?}"),
    }

    // A different architecture: missing and unexpected tensors.
    let deep = dir.join("deep.safetensors");
    let mut two_layers = Model::new(
        Sequential::<f32>::new()
            .add(Dense::new(1))
            .add(Dense::new(1)),
    );
    two_layers.build(&[1], 0).unwrap();
    two_layers.save(&deep).unwrap();
    let err = model.load(&deep).unwrap_err();
    assert!(
        matches!(&err, IoError::StateMismatch { unexpected, .. }
            if unexpected == &["dense_1.bias", "dense_1.kernel"]),
        "{err}"
    );
    let err = two_layers.load(&good).unwrap_err();
    assert!(
        matches!(&err, IoError::StateMismatch { missing, .. }
            if missing == &["dense_1.bias", "dense_1.kernel"]),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("missing `dense_1.bias`, `dense_1.kernel`"),
        "{err}"
    );

    // Wrong dtype: an f64 file into an f32 model.
    let double = dir.join("double.safetensors");
    let mut f64_model = Model::new(Sequential::<f64>::new().add(Dense::new(1)));
    f64_model.build(&[1], 0).unwrap();
    f64_model.save(&double).unwrap();
    let err = model.load(&double).unwrap_err();
    assert!(
        matches!(&err, IoError::DtypeMismatch { expected: "F32", found, .. } if found == "F64"),
        "{err}"
    );

    assert_eq!(weights(&model), before, "no failed load changed a weight");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failed_save_never_replaces_a_good_checkpoint() {
    let dir = scratch_dir("atomic");
    let path = dir.join("model.safetensors");
    trained_line_model().save(&path).unwrap();
    let good = fs::read(&path).unwrap();
    let other = fresh_line_model();

    // A folder left at the old fixed temporary name no longer blocks a save (temporary
    // names are unique per attempt), and is never removed. That a write failing midway
    // leaves the old checkpoint intact is tested by fault injection in `io::atomic_write`'s
    // unit test `a_write_failing_midway_leaves_the_old_file_and_no_temporary`.
    let temp = dir.join(format!(".model.safetensors.{}.tmp", std::process::id()));
    fs::create_dir(&temp).unwrap();
    fs::write(temp.join("keep"), b"x").unwrap();
    other.save(&path).unwrap();
    assert!(temp.join("keep").exists(), "a folder is never removed");
    fs::write(&path, &good).unwrap();
    fs::remove_dir_all(&temp).unwrap();

    // The rename fails: the destination is a folder. It is left alone, and so is no
    // temporary file.
    let folder = dir.join("folder.safetensors");
    fs::create_dir(&folder).unwrap();
    fs::write(folder.join("inside"), b"keep me").unwrap();
    let err = other.save(&folder).unwrap_err();
    assert!(
        matches!(
            err,
            IoError::Io {
                action: "rename into place",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(fs::read(folder.join("inside")).unwrap(), b"keep me");

    // A folder that does not exist.
    let err = other
        .save(dir.join("no/such/dir/m.safetensors"))
        .unwrap_err();
    assert!(matches!(err, IoError::Io { .. }), "{err}");

    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["folder.safetensors", "model.safetensors"]);

    // And a successful save replaces the file whole.
    other.save(&path).unwrap();
    let mut check = fresh_line_model();
    check.load(&path).unwrap();
    assert_eq!(weights(&check), weights(&other));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_checkpoint_that_cannot_be_written_stops_fit_with_an_error() {
    let dir = scratch_dir("checkpoint-error");
    let xs = Array2::<f32>::zeros((4, 1));
    let mut model = Model::new(Sequential::new().add(Dense::new(1)));
    model.compile(Sgd::new(0.01).unwrap(), Loss::mse(), &[]);
    let err = model
        .fit(
            &xs,
            &xs,
            FitOptions::default()
                .verbose(0)
                .epochs(3)
                .callback(ModelCheckpoint::new(dir.join("missing/w.safetensors"))),
        )
        .unwrap_err();
    match &err {
        FitError::Callback {
            callback: "ModelCheckpoint",
            epoch: Some(0),
            source,
        } => assert!(
            matches!(**source, CallbackError::Save(IoError::Io { .. })),
            "{err}"
        ),
        other => panic!("unexpected {other:?}"),
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn duplicate_parameter_names_are_rejected() {
    let a = Param::new("w", array![1.0_f32].into_dyn());
    let b = Param::new("w", array![2.0_f32].into_dyn());
    assert!(matches!(
        weights_to_bytes(&[&a, &b]),
        Err(IoError::DuplicateName { name }) if name == "w"
    ));
    let dir = scratch_dir("dup");
    let path = dir.join("w.safetensors");
    save_weights(&path, &[&a]).unwrap();
    let mut c = Param::new("w", array![0.0_f32].into_dyn());
    let mut d = Param::new("w", array![0.0_f32].into_dyn());
    assert!(matches!(
        load_weights(&path, &mut [&mut c, &mut d]),
        Err(IoError::DuplicateName { .. })
    ));
    fs::remove_dir_all(&dir).unwrap();
}
