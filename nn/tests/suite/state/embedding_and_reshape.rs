//! Embedding (its initial table, training through `fit`, index checks as panics and as
//! typed errors through the model) and Reshape (one inferred dimension, shape errors).

use ndarray::{ArrayD, array};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tapegrad_autograd::Tape;
use tapegrad_nn::Module;
use tapegrad_nn::layers::{Dense, Embedding, Flatten, Reshape, Sequential};
use tapegrad_nn::model::{DataRole, FitError, FitOptions, Loss, Model};
use tapegrad_optim::Sgd;

use super::param_values;

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
