//! Unit tests of `metrics`.

use super::*;
use ndarray::{Array2, array};

#[test]
fn accuracy_kinds() {
    let logits = array![[2.0_f32, 1.0, 0.0], [0.0, 0.0, 3.0], [0.0, 5.0, 0.0]];
    assert_eq!(accuracy(&logits, &array![0.0_f32, 2.0, 0.0]), 2.0 / 3.0);
    assert_eq!(accuracy(&logits, &array![[0.0_f32], [2.0], [1.0]]), 1.0);
    let one_hot = array![[1.0_f32, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
    assert_eq!(accuracy(&logits, &one_hot), 2.0 / 3.0);
    let probabilities = array![[0.51_f32], [0.49], [0.5]];
    assert_eq!(
        accuracy(&probabilities, &array![1.0_f32, 1.0, 0.0]),
        2.0 / 3.0
    );
    let vector = array![0.51_f32, 0.49, 0.5];
    assert_eq!(accuracy(&vector, &array![1.0_f32, 1.0, 0.0]), 2.0 / 3.0);
}

#[test]
fn binary_threshold_is_strict() {
    assert_eq!(binary_accuracy(&array![0.5_f64], &array![0.0], 0.5), 1.0);
    assert_eq!(
        binary_accuracy(&array![0.0_f64, 0.1], &array![0.0, 1.0], 0.0),
        1.0
    );
}

#[test]
fn argmax_ties_pick_the_first_and_nan_never_wins() {
    let a = array![[1.0_f64, 1.0, 0.0], [f64::NAN, 0.0, 2.0]];
    assert_eq!(argmax_rows(&a), vec![0, 2]);
    let batched = Array2::<f64>::zeros((4, 1)).into_dyn();
    assert_eq!(argmax_rows(&batched), vec![0; 4]);
}

#[test]
fn errors_and_totals() {
    let p = array![[1.0_f64], [2.0], [4.0]];
    let t = array![1.5_f64, 3.0, 2.0];
    assert_eq!(mean_absolute_error(&p, &t), 3.5 / 3.0);
    assert_eq!(mean_squared_error(&p, &t), 5.25 / 3.0);
    let mut total = Metric::MeanAbsoluteError.total(&p, &t);
    total += Metric::MeanAbsoluteError.total(&array![0.0_f64], &array![1.0]);
    assert_eq!(total, MetricTotal { sum: 4.5, count: 4 });
    assert!(MetricTotal::default().mean().is_nan());
    assert!(Metric::Accuracy.higher_is_better());
    assert!(!Metric::MeanSquaredError.higher_is_better());
    assert_eq!(
        Metric::SparseCategoricalAccuracy.name(),
        "sparse_categorical_accuracy"
    );
}

#[test]
#[should_panic(expected = "need labels of shape [2]")]
fn sparse_labels_must_fit() {
    sparse_categorical_accuracy(&array![[0.0_f64, 1.0], [1.0, 0.0]], &array![0.0, 1.0, 1.0]);
}
