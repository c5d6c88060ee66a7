//! A bare module's state (PyTorch's `state_dict`): `Module::save`, the strict
//! `Module::load` and `Module::load_non_strict`, buffers included; and loading into a model
//! that is not built.

use std::fs;
use std::path::PathBuf;

use ndarray::{Array2, ArrayD};
use tapegrad_autograd::Tape;
use tapegrad_nn::Module;
use tapegrad_nn::io::{IncompatibleKeys, IoError};
use tapegrad_nn::layers::{BatchNorm, Dense, Sequential};
use tapegrad_nn::model::Model;

fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tapegrad-nn-module-state-{test}-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Dense, then BatchNorm (two parameters, two buffers), then Dense, built for 3 features.
fn net(seed: u64) -> Sequential<f64> {
    Sequential::new()
        .add(Dense::new(4))
        .add(BatchNorm::new())
        .add(Dense::new(2))
        .seed(seed)
        .with_input_shape(&[3])
}

/// Every parameter's and buffer's value, by path.
fn state(m: &impl Module<f64>) -> Vec<(String, ArrayD<f64>)> {
    let mut out: Vec<(String, ArrayD<f64>)> = m
        .named_params()
        .into_iter()
        .map(|(name, p)| (name, p.value().clone()))
        .collect();
    out.extend(
        m.buffers()
            .into_iter()
            .map(|b| (b.name().to_string(), b.value().clone())),
    );
    out
}

fn outputs(m: &impl Module<f64>, x: &ArrayD<f64>) -> ArrayD<f64> {
    let tape = Tape::new();
    m.forward(tape.constant(x.clone())).value().clone()
}

#[test]
fn a_bare_sequential_with_batch_norm_round_trips_params_and_buffers() {
    let dir = scratch_dir("round-trip");
    let path = dir.join("net.safetensors");
    let x = Array2::from_shape_fn((5, 3), |(i, j)| (i * 3 + j) as f64 * 0.7 - 4.0).into_dyn();

    // One training-mode pass moves the running statistics away from their initial values.
    let mut trained = net(1);
    trained.set_training(true);
    outputs(&trained, &x);
    trained.set_training(false);
    let mean = trained.buffers()[0].value().clone();
    assert!(mean.iter().any(|&m| m != 0.0), "running mean {mean}");
    trained.save(&path).unwrap();

    let mut fresh = net(2);
    fresh.set_training(false);
    assert_ne!(state(&fresh), state(&trained));
    fresh.load(&path).unwrap();
    assert_eq!(state(&fresh), state(&trained));
    let names: Vec<String> = state(&fresh).into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"batch_norm_0.running_mean".to_string()));
    assert!(names.contains(&"batch_norm_0.running_var".to_string()));
    assert_eq!(outputs(&fresh, &x), outputs(&trained, &x));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_non_strict_load_of_a_partial_file_reports_missing_and_unexpected_names() {
    let dir = scratch_dir("non-strict");
    let path = dir.join("partial.safetensors");
    // The file: a first Dense of the same shape, and a layer the target does not have.
    let source = Sequential::<f64>::new()
        .add(Dense::new(4))
        .add(Dense::new(7))
        .add(Dense::new(1))
        .seed(3)
        .with_input_shape(&[3]);
    source.save(&path).unwrap();

    let mut target = Sequential::<f64>::new()
        .add(Dense::new(4))
        .add(BatchNorm::new())
        .seed(4)
        .with_input_shape(&[3]);
    let before = state(&target);

    // Strict, the same file is an error that names the problems, and nothing changes.
    let err = target.load(&path).unwrap_err();
    assert!(matches!(err, IoError::StateMismatch { .. }), "{err}");
    assert!(err.to_string().contains("dense_1.kernel"), "{err}");
    assert_eq!(state(&target), before);

    let keys = target.load_non_strict(&path).unwrap();
    assert_eq!(
        keys,
        IncompatibleKeys {
            missing: [
                "batch_norm_0.beta",
                "batch_norm_0.gamma",
                "batch_norm_0.running_mean",
                "batch_norm_0.running_var",
            ]
            .map(String::from)
            .to_vec(),
            unexpected: [
                "dense_1.bias",
                "dense_1.kernel",
                "dense_2.bias",
                "dense_2.kernel"
            ]
            .map(String::from)
            .to_vec(),
        }
    );
    let after = state(&target);
    // dense_0 comes from the file, batch_norm_0 is as it was.
    assert_eq!(after[..2], state(&source)[..2]);
    assert_eq!(after[2..], before[2..]);

    // Shapes must still match: a first Dense of another width is an error, nothing loaded.
    let mut wider = Sequential::<f64>::new()
        .add(Dense::new(5))
        .seed(5)
        .with_input_shape(&[3]);
    let before = state(&wider);
    let err = wider.load_non_strict(&path).unwrap_err();
    assert!(matches!(err, IoError::StateMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("mis-shaped `dense_0.bias`"),
        "{err}"
    );
    assert_eq!(state(&wider), before);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_corrupt_and_unbuilt_loads_are_typed_errors() {
    let dir = scratch_dir("errors");
    let good = dir.join("good.safetensors");
    net(1).save(&good).unwrap();
    let mut model = net(2);
    let before = state(&model);

    let err = model.load(dir.join("missing.safetensors")).unwrap_err();
    assert!(matches!(err, IoError::Io { .. }), "{err}");
    let err = model
        .load_non_strict(dir.join("missing.safetensors"))
        .unwrap_err();
    assert!(matches!(err, IoError::Io { .. }), "{err}");

    let bytes = fs::read(&good).unwrap();
    let truncated = dir.join("truncated.safetensors");
    fs::write(&truncated, &bytes[..bytes.len() - 3]).unwrap();
    let junk = dir.join("junk.safetensors");
    fs::write(&junk, b"definitely not a checkpoint").unwrap();
    for bad in [&truncated, &junk] {
        let err = model.load(bad).unwrap_err();
        assert!(matches!(err, IoError::Format { .. }), "{err}");
        let err = model.load_non_strict(bad).unwrap_err();
        assert!(matches!(err, IoError::Format { .. }), "{err}");
    }
    assert_eq!(state(&model), before);

    // A module not built yet has nothing to load into: a bare one and one in a Model.
    let mut unbuilt = Sequential::<f64>::new().add(Dense::new(4));
    let err = unbuilt.load(&good).unwrap_err();
    assert!(matches!(err, IoError::NotBuilt { .. }), "{err}");
    let mut unbuilt_model = Model::new(Sequential::<f64>::new().add(Dense::new(4)));
    let err = unbuilt_model.load(&good).unwrap_err();
    assert!(matches!(err, IoError::NotBuilt { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot load {} into a model that is not built (it has no parameters or buffers \
             yet): build it first (`Model::build(input_shape, seed)`, `fit`, \
             `Sequential::with_input_shape` or `Module::build`)",
            good.display()
        )
    );
    // Once built, the load compares names: this file has more layers than the model.
    unbuilt_model.build(&[3], 0).unwrap();
    let err = unbuilt_model.load(&good).unwrap_err();
    assert!(matches!(err, IoError::StateMismatch { .. }), "{err}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn into_module_leaves_the_module_in_eval_mode() {
    let model = Model::new(net(1));
    let module = model.into_module();
    assert!(!module.is_training());
}
