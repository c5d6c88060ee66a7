//! `cross_entropy` over sequences: gradient checks (first and second order) on random
//! shapes with ignored targets and label smoothing, its panics, and training a tiny
//! sequence model through `Model::fit` on `[N, T]` targets padded with -1.

use ndarray::{Array2, ArrayD, Axis, array, s};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad_autograd::testing::array as random_array;
use tapegrad_autograd::{GradcheckOptions, Tape, gradcheck, gradgradcheck};
use tapegrad_nn::layers::{Embedding, Linear, Sequential};
use tapegrad_nn::losses::{CrossEntropy, cross_entropy};
use tapegrad_nn::model::{DataRole, FitError, FitOptions, Loss, Model};
use tapegrad_optim::Adam;

/// Logits `[leading..., C]` in `[-3, 3)` and one target per row in `-1..C`, the first row
/// never ignored (so the mean is over at least one row).
fn logits_and_targets() -> impl Strategy<Value = (ArrayD<f64>, Vec<i64>)> {
    (proptest::collection::vec(1..=3usize, 1..=2), 2..=5usize).prop_flat_map(|(lead, c)| {
        let rows: usize = lead.iter().product();
        let mut shape = lead;
        shape.push(c);
        (
            random_array(shape, -3.0, 3.0),
            proptest::collection::vec(-1..c as i64, rows),
            0..c as i64,
        )
            .prop_map(|(x, mut t, first)| {
                t[0] = first;
                (x, t)
            })
    })
}

fn smoothing() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), Just(0.1), Just(0.7)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn gradcheck_and_gradgradcheck((x, targets) in logits_and_targets(), epsilon in smoothing()) {
        let options = CrossEntropy::default().label_smoothing(epsilon);
        let check = GradcheckOptions::default();
        gradcheck(|_, v| cross_entropy(v[0], &targets, options), std::slice::from_ref(&x), &check)
            .unwrap();
        gradgradcheck(|_, v| cross_entropy(v[0], &targets, options), &[x], &check).unwrap();
    }

    #[test]
    fn ignored_rows_do_not_matter((x, targets) in logits_and_targets(), epsilon in smoothing()) {
        let options = CrossEntropy::default().label_smoothing(epsilon);
        let c = *x.shape().last().unwrap();
        let rows = targets.len();
        let flat = x.clone().into_shape_with_order((rows, c)).unwrap();
        let mut moved = flat.clone();
        for (r, &t) in targets.iter().enumerate() {
            if t == -1 {
                moved.row_mut(r).mapv_inplace(|v| v * 3.0 + 1.0);
            }
        }
        let tape = Tape::<f64>::new();
        let a = tape.var(flat.into_dyn());
        let b = tape.var(moved.into_dyn());
        let (la, lb) = (cross_entropy(a, &targets, options), cross_entropy(b, &targets, options));
        prop_assert_eq!(la.item(), lb.item());
        let g = la.backward()[a].clone();
        for (r, &t) in targets.iter().enumerate() {
            if t == -1 {
                prop_assert!(g.index_axis(Axis(0), r).iter().all(|&v| v == 0.0));
            }
        }
    }
}

#[test]
fn without_ignore_index_and_smoothing_it_is_the_sparse_cross_entropy() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![[[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]].into_dyn());
    let ours = cross_entropy(x, &[2, 0], CrossEntropy::default().ignore_index(None));
    let sparse = tapegrad_nn::losses::sparse_categorical_cross_entropy_indices(x, &[2, 0]);
    assert!((ours.item() - sparse.item()).abs() < 1e-15);
}

#[test]
fn all_targets_ignored_is_nan_with_a_zero_gradient() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![[1.0, 2.0], [3.0, 4.0]].into_dyn());
    let loss = cross_entropy(x, &[-1, -1], CrossEntropy::default());
    assert!(loss.item().is_nan());
    assert!(loss.backward()[x].iter().all(|&g| g == 0.0));
}

#[test]
fn another_ignore_index_is_honoured() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![[1.0, 2.0], [3.0, 4.0]].into_dyn());
    let options = CrossEntropy::default().ignore_index(Some(7));
    let one = cross_entropy(x, &[1, 7], options).item();
    let want = (1.0 + (-1.0_f64).exp()).ln();
    assert!((one - want).abs() < 1e-15);
}

#[test]
#[should_panic(
    expected = "cross_entropy: target 3 at position 1 is not a class index in 0..3 nor the ignored index -1"
)]
fn a_target_out_of_range_panics() {
    let tape = Tape::<f64>::new();
    let x = tape.var(ArrayD::zeros(vec![2, 3]));
    cross_entropy(x, &[0, 3], CrossEntropy::default());
}

#[test]
#[should_panic(expected = "cross_entropy: target -1 at position 0 is not a class index in 0..3")]
fn minus_one_panics_when_nothing_is_ignored() {
    let tape = Tape::<f64>::new();
    let x = tape.var(ArrayD::zeros(vec![2, 3]));
    cross_entropy(x, &[-1, 0], CrossEntropy::default().ignore_index(None));
}

#[test]
#[should_panic(
    expected = "cross_entropy: logits of shape [2, 2, 3] have 4 rows of 3 classes and need 4 targets, got 2"
)]
fn a_wrong_number_of_targets_panics() {
    let tape = Tape::<f64>::new();
    let x = tape.var(ArrayD::zeros(vec![2, 2, 3]));
    cross_entropy(x, &[0, 1], CrossEntropy::default());
}

#[test]
#[should_panic(expected = "cross_entropy: label_smoothing must be in [0, 1], got 1.5")]
fn label_smoothing_out_of_range_panics() {
    let tape = Tape::<f64>::new();
    let x = tape.var(ArrayD::zeros(vec![1, 3]));
    cross_entropy(x, &[0], CrossEntropy::default().label_smoothing(1.5));
}

const VOCAB: usize = 6;
const STEPS: usize = 5;

/// Sequences of tokens whose target at each step is the next token `(x + 1) % VOCAB`, each
/// of a random length; past its end `x` is 0 and `y` is -1.
fn sequences(n: usize, seed: u64) -> (Array2<f32>, Array2<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x = Array2::zeros((n, STEPS));
    let mut y = Array2::from_elem((n, STEPS), -1.0);
    for i in 0..n {
        let len = rng.random_range(1..=STEPS);
        for t in 0..len {
            let token = rng.random_range(0..VOCAB);
            x[[i, t]] = token as f32;
            y[[i, t]] = ((token + 1) % VOCAB) as f32;
        }
    }
    (x, y)
}

fn sequence_model() -> Model<f32, Sequential<f32>> {
    let mut model = Model::new(
        Sequential::new()
            .add(Embedding::new(VOCAB, 8))
            .add(Linear::new(8, VOCAB)),
    );
    model.compile(
        Adam::new(0.05).unwrap(),
        Loss::cross_entropy(CrossEntropy::default()),
        &[],
    );
    model
}

fn options() -> FitOptions<f32> {
    FitOptions::default()
        .verbose(0)
        .epochs(15)
        .batch_size(16)
        .seed(3)
}

#[test]
fn fit_trains_a_sequence_model_on_padded_targets() {
    let (x, y) = sequences(96, 1);
    let mut model = sequence_model();
    let history = model.fit(&x, &y, options()).unwrap();
    let losses = history.loss();
    assert!(
        losses[losses.len() - 1] < 0.5 * losses[0],
        "the loss should fall: {losses:?}"
    );

    // The evaluated loss is cross_entropy over the predictions' counted positions.
    let evaluated = model.evaluate(&x, &y, 96).unwrap().loss;
    let logits = model.predict(&x, 96).unwrap();
    let targets: Vec<i64> = y.iter().map(|&v| v as i64).collect();
    let tape = Tape::new();
    let direct = cross_entropy(tape.constant(logits), &targets, CrossEntropy::default());
    assert!((evaluated - f64::from(direct.item())).abs() < 1e-6);

    // Other tokens at the padded positions train exactly the same weights.
    let mut noisy = x.clone();
    let mut rng = StdRng::seed_from_u64(9);
    for (v, &t) in noisy.iter_mut().zip(&y) {
        if t == -1.0 {
            *v = rng.random_range(0..VOCAB) as f32;
        }
    }
    assert_ne!(noisy, x);
    let mut other = sequence_model();
    let other_history = other.fit(&noisy, &y, options()).unwrap();
    assert_eq!(other_history.loss(), losses);
    for (a, b) in model.params().iter().zip(other.params()) {
        assert_eq!(a.value(), b.value());
    }
}

#[test]
fn fit_and_evaluate_report_bad_targets_as_errors() {
    let (x, y) = sequences(8, 2);
    let mut model = sequence_model();
    for (value, at) in [(2.5, [3, 1]), (VOCAB as f32, [5, 0]), (-2.0, [7, 4])] {
        let mut bad = y.clone();
        bad[at] = value;
        let err = model.fit(&x, &bad, options().epochs(1)).unwrap_err();
        match err {
            FitError::InvalidTarget {
                data: DataRole::Training,
                row,
                position,
                value: v,
                num_classes: VOCAB,
                ignore_index: Some(-1),
            } => assert_eq!((row, position, v), (at[0], at[1], f64::from(value))),
            other => panic!("{other}"),
        }
    }
    let mut bad = y.clone();
    bad[[0, 0]] = 9.0;
    let err = model.evaluate(&x, &bad, 4).unwrap_err();
    assert_eq!(
        err.to_string(),
        "target 9 at row 0, position 0 of the evaluation data is not a class index in 0..6 nor \
         the ignored index -1 (loss `cross_entropy`)"
    );
    let err = model
        .fit(&x, &y.slice(s![.., ..4]), options().epochs(1))
        .unwrap_err();
    assert!(matches!(err, FitError::TargetShape { .. }), "{err}");
}

#[test]
fn fit_takes_one_target_per_sample_for_flat_outputs() {
    let x = array![[0.0_f32, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]];
    let mut model = Model::new(Sequential::new().add(Linear::new(2, 3)));
    model.compile(
        Adam::new(0.1).unwrap(),
        Loss::cross_entropy(CrossEntropy::default()),
        &[],
    );
    let labels = array![0.0_f32, 1.0, 2.0, -1.0];
    let history = model.fit(&x, &labels, options().epochs(20)).unwrap();
    assert!(history.loss()[19] < history.loss()[0]);
    let column = labels.clone().insert_axis(Axis(1));
    assert!(model.evaluate(&x, &column, 4).is_ok());
    let err = model
        .evaluate(
            &x,
            &array![[0.0_f32, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]],
            4,
        )
        .unwrap_err();
    assert!(matches!(err, FitError::TargetShape { .. }), "{err}");
}
