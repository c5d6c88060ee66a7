//! Bad input to `fit`, `evaluate` and `predict`: typed errors, never a panic.

use ndarray::{Array2, ArrayD, array};
use tapegrad_nn::layers::{Dense, Sequential};
use tapegrad_nn::model::{DataRole, FitError, Loss, Metric, Model};
use tapegrad_optim::Sgd;

use super::{classifier, clusters, line_data, line_model, quiet, weights};

#[test]
fn fit_rejects_bad_input_with_typed_errors() {
    let (xs, ys) = line_data();

    let mut uncompiled = Model::new(Sequential::<f32>::new().add(Dense::new(1)));
    assert!(matches!(
        uncompiled.fit(&xs, &ys, quiet()),
        Err(FitError::NotCompiled)
    ));
    assert!(matches!(
        uncompiled.evaluate(&xs, &ys, 32),
        Err(FitError::NotCompiled)
    ));
    assert!(matches!(
        uncompiled.predict(&xs, 32),
        Err(FitError::NotBuilt)
    ));

    let mut model = line_model();
    let err = model
        .fit(&xs, &ys.slice(ndarray::s![..5, ..]), quiet())
        .unwrap_err();
    assert!(
        matches!(
            err,
            FitError::LengthMismatch {
                data: DataRole::Training,
                x_rows: 6,
                y_rows: 5
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "the training data has 6 inputs but 5 targets"
    );

    let empty = Array2::<f32>::zeros((0, 1));
    assert!(matches!(
        model.fit(&empty, &empty, quiet()),
        Err(FitError::EmptyDataset {
            data: DataRole::Training
        })
    ));
    assert!(matches!(
        model.fit(&xs, &ys, quiet().batch_size(0)),
        Err(FitError::InvalidBatchSize)
    ));
    for split in [1.0, -0.1, f64::NAN, 2.0] {
        assert!(
            matches!(
                model.fit(&xs, &ys, quiet().validation_split(split)),
                Err(FitError::InvalidValidationSplit { .. })
            ),
            "split {split}"
        );
    }
    // A split that leaves nothing to train on.
    let one_x = array![[1.0_f32]];
    assert!(matches!(
        model.fit(&one_x, &one_x, quiet().validation_split(0.5)),
        Err(FitError::EmptyDataset {
            data: DataRole::Training
        })
    ));

    // Built for one feature, two features are an input-shape error.
    model.build(&[1], 0).unwrap();
    let wide = Array2::<f32>::zeros((6, 2));
    let err = model.fit(&wide, &ys, quiet()).unwrap_err();
    assert!(
        matches!(&err, FitError::InputShape { expected, found, .. } if expected == &[1] && found == &[2]),
        "{err}"
    );
    assert!(matches!(
        model.predict(&wide, 32),
        Err(FitError::InputShape {
            data: DataRole::Prediction,
            ..
        })
    ));
    assert!(matches!(
        model.evaluate(&wide, &ys, 32),
        Err(FitError::InputShape {
            data: DataRole::Evaluation,
            ..
        })
    ));

    // Targets that do not match the output (no silent broadcasting).
    let err = model
        .fit(&xs, &Array2::<f32>::zeros((6, 2)), quiet())
        .unwrap_err();
    assert!(matches!(err, FitError::TargetShape { .. }), "{err}");

    // Bad validation data.
    let err = model
        .fit(
            &xs,
            &ys,
            quiet().validation_data(ArrayD::zeros(vec![3, 1]), ArrayD::zeros(vec![2, 1])),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            FitError::LengthMismatch {
                data: DataRole::Validation,
                x_rows: 3,
                y_rows: 2
            }
        ),
        "{err}"
    );

    // A loss that does not reduce to one value.
    let mut elementwise = Model::new(Sequential::<f32>::new().add(Dense::new(1)));
    elementwise.compile(
        Sgd::new(0.01).unwrap(),
        Loss::new("squares", |p, t| (p - t).square()),
        &[],
    );
    let err = elementwise.fit(&xs, &ys, quiet()).unwrap_err();
    assert!(
        matches!(&err, FitError::LossNotScalar { loss, shape } if loss == "squares" && shape == &[6, 1]),
        "{err}"
    );

    // A metric that cannot compare these shapes: one-hot accuracy against class labels.
    let mut wrong_metric = Model::new(Sequential::<f32>::new().add(Dense::new(3)));
    wrong_metric.compile(
        Sgd::new(0.01).unwrap(),
        Loss::sparse_categorical_cross_entropy(),
        &[Metric::CategoricalAccuracy],
    );
    let labels = array![0.0_f32, 1.0, 2.0, 0.0, 1.0, 2.0];
    let err = wrong_metric.fit(&xs, &labels, quiet()).unwrap_err();
    assert!(
        matches!(
            err,
            FitError::MetricShape {
                metric: "categorical_accuracy",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn epochs_zero_trains_nothing() {
    let (xs, ys) = line_data();
    let mut model = line_model();
    let history = model.fit(&xs, &ys, quiet().epochs(0)).unwrap();
    assert!(history.is_empty());
    assert_eq!(history.names().collect::<Vec<_>>(), ["loss"]);
    let mut reference = line_model();
    reference.build(&[1], 0).unwrap();
    assert_eq!(weights(&model), weights(&reference));
}

#[test]
fn sparse_labels_out_of_range_name_the_first_bad_row() {
    let (x, mut y) = clusters(4);
    let mut model = classifier();
    for (bad, row) in [(3.0_f32, 5), (-1.0, 2), (1.5, 7), (f32::NAN, 0)] {
        let saved = y[row];
        y[row] = bad;
        let err = model.fit(&x, &y, quiet()).unwrap_err();
        match &err {
            FitError::InvalidLabel {
                data: DataRole::Training,
                row: r,
                label,
                num_classes: 3,
            } => {
                assert_eq!(*r, row);
                assert!(
                    label.to_bits() == f64::from(bad).to_bits() || (label.is_nan() && bad.is_nan())
                );
            }
            other => panic!("label {bad}: unexpected {other:?}"),
        }
        assert!(err.to_string().contains(&format!("at row {row}")), "{err}");
        y[row] = saved;
    }
    // Evaluation data is checked the same way.
    y[1] = 9.0;
    assert!(matches!(
        model.evaluate(&x, &y, 32),
        Err(FitError::InvalidLabel {
            data: DataRole::Evaluation,
            row: 1,
            ..
        })
    ));
}
