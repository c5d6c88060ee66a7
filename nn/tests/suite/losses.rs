//! Losses at the edges: finite at extreme inputs, label and target shapes, reductions, and
//! losses as plain functions.

use ndarray::{ArrayD, array};
use tapegrad_autograd::{Float, Tape, Var};
use tapegrad_nn::losses::{self, Reduction};

#[test]
fn sparse_categorical_cross_entropy_is_finite_for_huge_logits() {
    fn check<T: Float>() {
        let tape = Tape::<T>::new();
        let big = T::from_f64(1000.0);
        let logits = tape.var(
            ArrayD::from_shape_vec(
                vec![3, 3],
                vec![big, -big, T::zero(), -big, -big, big, big, big, -big],
            )
            .unwrap(),
        );
        let labels = tape.constant(
            ArrayD::from_shape_vec(vec![3], vec![T::from_f64(1.0), T::from_f64(2.0), T::zero()])
                .unwrap(),
        );
        let loss = losses::sparse_categorical_cross_entropy(logits, labels);
        // -log_softmax: 2000, 0, ln 2
        let want = (2000.0 + 0.0 + 2.0_f64.ln()) / 3.0;
        assert!((Float::to_f64(loss.item()) - want).abs() < 1e-3 * want);
        let grads = loss.backward();
        assert!(grads[logits].iter().all(|g| g.is_finite()));
        // softmax - one_hot, over 3 examples
        let g = grads[logits].mapv(|v| Float::to_f64(v) * 3.0);
        let want = [1.0, -1.0, 0.0, 0.0, 0.0, 0.0, -0.5, 0.5, 0.0];
        assert!(
            g.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6),
            "{g:?}"
        );
        let each =
            losses::sparse_categorical_cross_entropy_reduced(logits, labels, Reduction::None);
        assert_eq!(each.shape(), vec![3]);
        let categorical = losses::categorical_cross_entropy(
            logits,
            tape.constant(ArrayD::from_shape_fn(vec![3, 3], |i| {
                let label = [1, 2, 0][i[0]];
                if i[1] == label { T::one() } else { T::zero() }
            })),
        );
        assert!((Float::to_f64(categorical.item()) - Float::to_f64(loss.item())).abs() < 1e-3);
        assert!(categorical.backward()[logits].iter().all(|g| g.is_finite()));
    }
    check::<f32>();
    check::<f64>();
}

#[test]
fn sparse_labels_may_have_a_trailing_unit_axis() {
    let tape = Tape::<f64>::new();
    let logits = tape.var(array![[1.0, 2.0], [0.5, -0.5]].into_dyn());
    let flat = losses::sparse_categorical_cross_entropy(
        logits,
        tape.constant(array![1.0, 0.0].into_dyn()),
    );
    let column = losses::sparse_categorical_cross_entropy(
        logits,
        tape.constant(array![[1.0], [0.0]].into_dyn()),
    );
    assert_eq!(flat.item(), column.item());
}

#[test]
#[should_panic(expected = "label 1.5 at position 1 is not a class index")]
fn sparse_labels_must_be_integers() {
    let tape = Tape::<f64>::new();
    let logits = tape.var(ArrayD::zeros(vec![2, 3]));
    losses::sparse_categorical_cross_entropy(logits, tape.constant(array![0.0, 1.5].into_dyn()));
}

#[test]
#[should_panic(expected = "label 3 at position 0 is out of range for 3 classes")]
fn sparse_labels_must_be_in_range() {
    let tape = Tape::<f64>::new();
    let logits = tape.var(ArrayD::zeros(vec![1, 3]));
    losses::sparse_categorical_cross_entropy_indices(logits, &[3]);
}

#[test]
fn binary_cross_entropy_stays_finite_at_zero_and_one() {
    fn check<T: Float>(floor_log: f64) {
        let tape = Tape::<T>::new();
        let p = tape.var(
            ArrayD::from_shape_vec(vec![4], [0.0, 1.0, 0.0, 1.0].map(T::from_f64).to_vec())
                .unwrap(),
        );
        let y = tape.constant(
            ArrayD::from_shape_vec(vec![4], [1.0, 0.0, 0.0, 1.0].map(T::from_f64).to_vec())
                .unwrap(),
        );
        let each = losses::binary_cross_entropy_reduced(p, y, Reduction::None).to_array();
        let got: Vec<f64> = each.iter().map(|&v| Float::to_f64(v)).collect();
        assert!(
            (got[0] + floor_log).abs() < 1e-3 && (got[1] + floor_log).abs() < 1e-3,
            "{got:?}"
        );
        assert_eq!(&got[2..], &[0.0, 0.0]);
        let grads = losses::binary_cross_entropy(p, y).backward();
        assert!(grads[p].iter().all(|g| g.is_finite()), "{:?}", grads[p]);
    }
    check::<f64>(-100.0);
    check::<f32>(f32::MIN_POSITIVE.ln() as f64);
}

#[test]
fn binary_cross_entropy_with_logits_is_exact_at_zero_and_finite_at_extremes() {
    for dtype_big in [1000.0_f64, 1e30] {
        let tape = Tape::<f64>::new();
        let x = tape.var(array![0.0, 0.0, dtype_big, -dtype_big].into_dyn());
        let y = tape.constant(array![0.0, 1.0, 1.0, 1.0].into_dyn());
        let each =
            losses::binary_cross_entropy_with_logits_reduced(x, y, Reduction::None).to_array();
        assert_eq!(
            each,
            array![2.0_f64.ln(), 2.0_f64.ln(), 0.0, dtype_big].into_dyn()
        );
        let grads =
            losses::binary_cross_entropy_with_logits_reduced(x, y, Reduction::Sum).backward();
        // σ(x) - y: 0.5, -0.5 at zero (exactly), 0 and -1 at the extremes
        assert_eq!(grads[x], array![0.5, -0.5, 0.0, -1.0].into_dyn());
    }
    let tape = Tape::<f32>::new();
    let x = tape.var(array![1000.0_f32, -1000.0].into_dyn());
    let y = tape.constant(array![0.0_f32, 1.0].into_dyn());
    let loss = losses::binary_cross_entropy_with_logits(x, y);
    assert_eq!(loss.item(), 1000.0);
    assert!(loss.backward()[x].iter().all(|g| g.is_finite()));
}

#[test]
fn reductions_agree() {
    let tape = Tape::<f64>::new();
    let p = tape.var(array![[0.2, 0.9], [0.4, 0.6], [0.7, 0.1]].into_dyn());
    let t = tape.constant(array![[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]].into_dyn());
    type Loss = for<'t> fn(Var<'t, f64>, Var<'t, f64>, Reduction) -> Var<'t, f64>;
    let elementwise: [(&str, Loss); 5] = [
        ("mse", losses::mse_reduced),
        ("mae", losses::mae_reduced),
        ("huber", |p, t, r| losses::huber_reduced(p, t, 0.3, r)),
        ("bce", losses::binary_cross_entropy_reduced),
        (
            "bce_logits",
            losses::binary_cross_entropy_with_logits_reduced,
        ),
    ];
    for (name, loss) in elementwise {
        let none = loss(p, t, Reduction::None);
        assert_eq!(none.shape(), vec![3, 2], "{name}");
        let sum = loss(p, t, Reduction::Sum).item();
        let mean = loss(p, t, Reduction::Mean).item();
        assert!((none.to_array().sum() - sum).abs() < 1e-12, "{name}");
        assert!((sum / 6.0 - mean).abs() < 1e-12, "{name}");
    }
    // Categorical losses reduce over examples.
    let probabilities = tape.constant(array![[0.3, 0.7], [1.0, 0.0], [0.5, 0.5]].into_dyn());
    let none = losses::categorical_cross_entropy_reduced(p, probabilities, Reduction::None);
    assert_eq!(none.shape(), vec![3]);
    let sum = losses::categorical_cross_entropy_reduced(p, probabilities, Reduction::Sum).item();
    let mean = losses::categorical_cross_entropy(p, probabilities).item();
    assert!((none.to_array().sum() - sum).abs() < 1e-12);
    assert!((sum / 3.0 - mean).abs() < 1e-12);
    let sparse_sum =
        losses::sparse_categorical_cross_entropy_indices_reduced(p, &[1, 0, 1], Reduction::Sum)
            .item();
    let sparse_mean = losses::sparse_categorical_cross_entropy_indices(p, &[1, 0, 1]).item();
    assert!((sparse_sum / 3.0 - sparse_mean).abs() < 1e-12);
}

#[test]
fn loss_targets_may_drop_a_trailing_unit_axis() {
    let tape = Tape::<f64>::new();
    let p = tape.var(array![[1.0], [2.0]].into_dyn());
    let column = losses::mse(p, tape.constant(array![[0.0], [0.0]].into_dyn())).item();
    let flat = losses::mse(p, tape.constant(array![0.0, 0.0].into_dyn())).item();
    assert_eq!(column, flat);
    assert_eq!(flat, 2.5);
}

#[test]
#[should_panic(expected = "mse: the prediction has shape [2, 3] but the target has shape [3]")]
fn loss_shapes_must_match() {
    let tape = Tape::<f64>::new();
    let p = tape.var(ArrayD::zeros(vec![2, 3]));
    losses::mse(p, tape.constant(ArrayD::zeros(vec![3])));
}

/// Built-in losses and closures fit wherever a user-defined loss is expected.
#[test]
fn losses_are_plain_functions() {
    fn evaluate(loss: impl for<'t> Fn(Var<'t, f64>, Var<'t, f64>) -> Var<'t, f64>) -> f64 {
        let tape = Tape::new();
        let p = tape.var(array![0.5, 1.5].into_dyn());
        let t = tape.constant(array![0.0, 1.0].into_dyn());
        loss(p, t).item()
    }
    assert_eq!(evaluate(losses::mse), 0.25);
    assert_eq!(evaluate(losses::mae), 0.5);
    assert_eq!(
        evaluate(|p, t| losses::huber(p, t, 0.25)),
        0.25 * (0.5 - 0.125)
    );
    assert_eq!(evaluate(|p, t| (p - t).powi(4).sum()), 0.125);
}
