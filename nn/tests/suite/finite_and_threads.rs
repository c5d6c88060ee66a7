//! NaN and infinities in the data are reported before any training or computation, naming
//! the data and the value's index; training gives the same bits on one thread and on two.

use ndarray::{Array2, array};
use tapegrad_nn::io::weights_to_bytes;
use tapegrad_nn::layers::{Activation, Dense, Sequential};
use tapegrad_nn::model::{DataRole, FitError, Loss, Model};
use tapegrad_optim::{Adam, Sgd};

use crate::model::{line_model, quiet};

fn expect_non_finite(err: FitError, data: DataRole, part: &str, index: &[usize]) -> f64 {
    let message = err.to_string();
    match err {
        FitError::NonFinite {
            data: d,
            part: p,
            index: i,
            value,
        } => {
            assert_eq!((d, p, &i[..]), (data, part, index), "{message}");
            assert!(
                message.contains(&format!("at index {index:?} (sample {})", index[0])),
                "{message}"
            );
            value
        }
        other => panic!("expected NonFinite, got {other}"),
    }
}

#[test]
fn nan_and_inf_in_fit_data_are_reported_before_training_with_role_row_and_column() {
    let x = Array2::from_shape_fn((6, 3), |(i, j)| (i * 3 + j) as f32 * 0.1);
    let y = Array2::from_shape_fn((6, 1), |(i, _)| i as f32);
    let mut model = Model::new(Sequential::new().add(Dense::new(1)));
    model.compile(Sgd::new(0.01).unwrap(), Loss::mse(), &[]);
    model.fit(&x, &y, quiet().epochs(1)).unwrap();
    let before = weights_to_bytes(&model.params()).unwrap();

    let mut bad_x = x.clone();
    bad_x[[4, 2]] = f32::NAN;
    let err = model.fit(&bad_x, &y, quiet()).unwrap_err();
    assert!(expect_non_finite(err, DataRole::Training, "x", &[4, 2]).is_nan());

    let mut bad_y = y.clone();
    bad_y[[1, 0]] = f32::INFINITY;
    let err = model.fit(&x, &bad_y, quiet()).unwrap_err();
    assert_eq!(
        expect_non_finite(err, DataRole::Training, "y", &[1, 0]),
        f64::INFINITY
    );

    let mut val_x = x.clone();
    val_x[[5, 0]] = f32::NEG_INFINITY;
    let err = model
        .fit(
            &x,
            &y,
            quiet().validation_data(val_x.into_dyn(), y.clone().into_dyn()),
        )
        .unwrap_err();
    expect_non_finite(err, DataRole::Validation, "x", &[5, 0]);
    let err = model
        .fit(
            &x,
            &y,
            quiet().validation_data(x.clone().into_dyn(), bad_y.clone().into_dyn()),
        )
        .unwrap_err();
    expect_non_finite(err, DataRole::Validation, "y", &[1, 0]);

    // Nothing was trained by the failed calls.
    assert_eq!(weights_to_bytes(&model.params()).unwrap(), before);

    // A 3-D input: the index is the value's own, sample first.
    let mut cube = ndarray::Array3::<f32>::zeros((4, 2, 3));
    cube[[3, 1, 1]] = f32::NAN;
    let mut model3 = Model::new(
        Sequential::new()
            .add(tapegrad_nn::layers::Flatten::new())
            .add(Dense::new(1)),
    );
    model3.compile(Sgd::new(0.01).unwrap(), Loss::mse(), &[]);
    let err = model3
        .fit(&cube, &Array2::<f32>::zeros((4, 1)), quiet())
        .unwrap_err();
    expect_non_finite(err, DataRole::Training, "x", &[3, 1, 1]);

    // Opting out: training starts, and the optimizer finds the NaN gradient later.
    let err = model
        .fit(
            &bad_x,
            &y,
            quiet().batch_size(2).shuffle(false).check_finite(false),
        )
        .unwrap_err();
    assert!(matches!(err, FitError::Optimizer { batch: 2, .. }), "{err}");
    // The optimizer's message points at anomaly detection.
    assert!(
        err.to_string().contains("set_anomaly_detection(true)"),
        "{err}"
    );
}

#[test]
fn evaluate_and_predict_report_non_finite_rows_unless_told_not_to() {
    let (x, y) = (
        array![[0.0_f32], [1.0], [2.0], [3.0]],
        array![[1.0_f32], [6.0], [11.0], [16.0]],
    );
    let mut model = line_model();
    model.fit(&x, &y, quiet()).unwrap();
    let mut bad_x = x.clone();
    bad_x[[2, 0]] = f32::NAN;
    let err = model.evaluate(&bad_x, &y, 2).unwrap_err();
    expect_non_finite(err, DataRole::Evaluation, "x", &[2, 0]);
    let mut bad_y = y.clone();
    bad_y[[3, 0]] = f32::NEG_INFINITY;
    let err = model.evaluate(&x, &bad_y, 2).unwrap_err();
    expect_non_finite(err, DataRole::Evaluation, "y", &[3, 0]);
    let err = model.predict(&bad_x, 2).unwrap_err();
    expect_non_finite(err, DataRole::Prediction, "x", &[2, 0]);

    // Opted out: the NaN flows through, as before.
    model.set_check_finite(false);
    assert!(model.evaluate(&bad_x, &y, 2).unwrap().loss.is_nan());
    assert!(model.predict(&bad_x, 2).unwrap()[[2, 0]].is_nan());
    model.set_check_finite(true);
    assert!(model.evaluate(&x, &y, 2).unwrap().loss.is_finite());
}

/// Runs `f` on a rayon pool of `threads` threads.
fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
        .install(f)
}

#[test]
fn training_gives_the_same_bits_on_one_and_two_threads() {
    // Products of 64×512×1024 and larger (above the two-thread threshold, cut in halves
    // by rows and by columns) in the forward and backward passes, and a 512×1024 weight
    // updated in two halves by the optimizer.
    let x = Array2::from_shape_fn((256, 512), |(i, j)| ((i * 7 + j * 13) % 29) as f32 / 29.0);
    let y = Array2::from_shape_fn((256, 1), |(i, _)| (i % 10) as f32);
    let train = || {
        let mut model = Model::new(
            Sequential::new()
                .add(Dense::new(1024).activation(Activation::Relu))
                .add(Dense::new(10)),
        );
        model.compile(
            Adam::new(1e-3).unwrap(),
            Loss::sparse_categorical_cross_entropy(),
            &[],
        );
        let options = quiet().epochs(1).batch_size(64).seed(3);
        let history = model.fit(&x, &y, options).unwrap();
        let prediction = model.predict(&x, 128).unwrap();
        (
            weights_to_bytes(&model.params()).unwrap(),
            history.loss().to_vec(),
            prediction.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        )
    };
    let one = on_threads(1, train);
    let two = on_threads(2, train);
    assert!(one.0 == two.0, "the weights differ between 1 and 2 threads");
    assert_eq!(
        one.1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        two.1.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert!(
        one.2 == two.2,
        "the predictions differ between 1 and 2 threads"
    );
}
