//! A wrong input shape given to `Model::fit`, `evaluate`, `predict` or `build`: a typed
//! [`FitError`] naming the layer, the shape it takes and the shape given, never a panic
//! inside a layer's `build`. One test per layer family, through the public API.

use ndarray::{Array2, Array3, Array4, ArrayD};
use tapegrad_nn::Module;
use tapegrad_nn::layers::{
    BatchNorm, CausalSelfAttention, Conv2d, DecoderBlock, Dense, Dropout, Embedding, Flatten,
    GlobalAvgPool2d, Gru, Linear, Lstm, LstmCell, MaxPool2d, MultiHeadAttention,
    PositionalEmbedding, Reshape, Rnn, Sequential, TransformerEncoderLayer,
};
use tapegrad_nn::model::{DataRole, FitError, FitOptions, Loss, Model};
use tapegrad_optim::Sgd;

fn compiled<M: Module<f32>>(module: M) -> Model<f32, M> {
    let mut model = Model::new(module);
    model.compile(Sgd::new(0.01).unwrap(), Loss::mse(), &[]);
    model
}

fn quiet() -> FitOptions<f32> {
    FitOptions::default().epochs(1).verbose(0)
}

/// Asserts that `err` is `FitError::InvalidInputShape` about `data`, naming `layer`, and
/// that its message is `message`.
#[track_caller]
fn assert_shape_error(err: FitError, data: DataRole, layer: &str, found: &[usize], message: &str) {
    match &err {
        FitError::InvalidInputShape { data: d, source } => {
            assert_eq!(*d, data, "{err}");
            assert_eq!(source.layer, layer, "{err}");
            assert_eq!(source.found, found, "{err}");
        }
        _ => panic!("expected InvalidInputShape, got: {err}"),
    }
    assert_eq!(err.to_string(), message);
}

/// The message for training samples of shape `found` that `conv2d_0`, a 3×3 `Conv2d`,
/// cannot take.
fn conv2d_3x3_message(found: &str) -> String {
    format!(
        "the training data does not fit the model: layer `conv2d_0` takes inputs of shape \
         (channels, height, width), the padded height and width at least the kernel [3, 3] \
         (dilation [1, 1]) (without the batch axis), got {found}"
    )
}

#[test]
fn conv2d_first_layer_rejects_2d_samples_in_fit_and_build() {
    let cnn = || {
        Sequential::<f32>::new()
            .add(Conv2d::new(4, 3))
            .add(Flatten::new())
            .add(Dense::new(2))
    };
    let mut model = compiled(cnn());
    let x = Array3::<f32>::zeros((8, 16, 16));
    let y = Array2::<f32>::zeros((8, 2));
    let err = model.fit(&x, &y, quiet()).unwrap_err();
    assert_shape_error(
        err,
        DataRole::Training,
        "conv2d_0",
        &[16, 16],
        &conv2d_3x3_message("[16, 16]"),
    );
    assert!(!model.is_built());
    // Nothing built, so evaluate and predict say so.
    assert!(matches!(model.evaluate(&x, &y, 4), Err(FitError::NotBuilt)));
    assert!(matches!(model.predict(&x, 4), Err(FitError::NotBuilt)));

    // A kernel larger than the image is a shape mistake too, and so is `build`'s.
    let small = Array4::<f32>::zeros((8, 1, 2, 2));
    let err = model.fit(&small, &y, quiet()).unwrap_err();
    assert_shape_error(
        err,
        DataRole::Training,
        "conv2d_0",
        &[1, 2, 2],
        &conv2d_3x3_message("[1, 2, 2]"),
    );
    let err = model.build(&[16, 16], 0).unwrap_err();
    assert!(matches!(err, FitError::InvalidInputShape { .. }), "{err}");

    // Built for (1, 16, 16), the 2-D samples are rejected by evaluate and predict too.
    let images = Array4::<f32>::zeros((8, 1, 16, 16));
    model.fit(&images, &y, quiet()).unwrap();
    let err = model.evaluate(&x, &y, 4).unwrap_err();
    assert!(
        matches!(&err, FitError::InputShape { data: DataRole::Evaluation, expected, found }
            if expected == &[1, 16, 16] && found == &[16, 16]),
        "{err}"
    );
    let err = model.predict(&x, 4).unwrap_err();
    assert!(
        matches!(
            err,
            FitError::InputShape {
                data: DataRole::Prediction,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn linear_and_dense_reject_a_wrong_feature_axis() {
    let mut model = compiled(Sequential::<f32>::new().add(Linear::new(8, 2)));
    let x = Array2::<f32>::zeros((4, 5));
    let y = Array2::<f32>::zeros((4, 2));
    let err = model.fit(&x, &y, quiet()).unwrap_err();
    assert_shape_error(
        err,
        DataRole::Training,
        "linear_0",
        &[5],
        "the training data does not fit the model: layer `linear_0` takes inputs of shape \
         (.., 8) (without the batch axis), got [5]",
    );

    // A bare layer (no Sequential) is named by its kind.
    let mut bare = compiled(Linear::<f32>::new(8, 2));
    let err = bare.fit(&x, &y, quiet()).unwrap_err();
    assert_shape_error(
        err,
        DataRole::Training,
        "linear",
        &[5],
        "the training data does not fit the model: layer `linear` takes inputs of shape \
         (.., 8) (without the batch axis), got [5]",
    );

    // Dense takes any feature axis when built; once built, another one is an error.
    let mut dense = compiled(Sequential::<f32>::new().add(Dense::new(2)));
    dense.fit(&x, &y, quiet()).unwrap();
    let wider = Array2::<f32>::zeros((4, 6));
    for err in [
        dense.fit(&wider, &y, quiet()).unwrap_err(),
        dense.evaluate(&wider, &y, 4).unwrap_err(),
        dense.predict(&wider, 4).unwrap_err(),
    ] {
        assert!(
            matches!(&err, FitError::InputShape { expected, found, .. }
                if expected == &[5] && found == &[6]),
            "{err}"
        );
    }
}

#[test]
fn recurrent_layers_reject_a_wrong_rank_or_input_size() {
    let y = Array2::<f32>::zeros((4, 5));
    let mut lstm = compiled(Sequential::<f32>::new().add(Lstm::new(3, 5)));
    let err = lstm
        .fit(&Array3::<f32>::zeros((4, 7, 4)), &y, quiet())
        .unwrap_err();
    assert_shape_error(
        err,
        DataRole::Training,
        "lstm_0",
        &[7, 4],
        "the training data does not fit the model: layer `lstm_0` takes inputs of shape \
         [T, 3] (without the batch axis), got [7, 4]",
    );
    // A 2-D batch (one step, no time axis) has the wrong rank.
    let err = lstm
        .fit(&Array2::<f32>::zeros((4, 3)), &y, quiet())
        .unwrap_err();
    assert_shape_error(
        err,
        DataRole::Training,
        "lstm_0",
        &[3],
        "the training data does not fit the model: layer `lstm_0` takes inputs of shape \
         [T, 3] (without the batch axis), got [3]",
    );

    let mut gru = compiled(Gru::<f32>::new(3, 5));
    let err = gru.build(&[7, 2], 0).unwrap_err();
    assert_shape_error(
        err,
        DataRole::Training,
        "gru",
        &[7, 2],
        "the training data does not fit the model: layer `gru` takes inputs of shape [T, 3] \
         (without the batch axis), got [7, 2]",
    );
    let mut rnn = compiled(Sequential::<f32>::new().add(Rnn::new(3, 5)));
    assert!(matches!(
        rnn.fit(&Array3::<f32>::zeros((4, 7, 2)), &y, quiet()),
        Err(FitError::InvalidInputShape { .. })
    ));

    let mut cell = compiled(Sequential::<f32>::new().add(LstmCell::new(3, 5)));
    let err = cell
        .fit(&Array2::<f32>::zeros((4, 4)), &y, quiet())
        .unwrap_err();
    assert_shape_error(
        err,
        DataRole::Training,
        "lstm_cell_0",
        &[4],
        "the training data does not fit the model: layer `lstm_cell_0` takes inputs of shape \
         [3] (without the batch axis), got [4]",
    );
}

#[test]
fn attention_layers_reject_a_wrong_rank_or_embedding_size() {
    let x = Array3::<f32>::zeros((2, 5, 6));
    let y = Array3::<f32>::zeros((2, 5, 8));
    let expected = |layer: &str| {
        format!(
            "the training data does not fit the model: layer `{layer}` takes inputs of shape \
             [T, 8] (without the batch axis), got [5, 6]"
        )
    };
    let mut mha = compiled(Sequential::<f32>::new().add(MultiHeadAttention::new(8, 2)));
    let err = mha.fit(&x, &y, quiet()).unwrap_err();
    assert_shape_error(
        err,
        DataRole::Training,
        "multi_head_attention_0",
        &[5, 6],
        &expected("multi_head_attention_0"),
    );
    let mut encoder = compiled(Sequential::<f32>::new().add(TransformerEncoderLayer::new(8, 2)));
    let err = encoder.fit(&x, &y, quiet()).unwrap_err();
    assert!(matches!(err, FitError::InvalidInputShape { .. }), "{err}");
    assert!(err.to_string().contains("[T, 8]"), "{err}");
    let mut block = compiled(Sequential::<f32>::new().add(DecoderBlock::new(8, 2)));
    let err = block.fit(&x, &y, quiet()).unwrap_err();
    assert!(err.to_string().contains("[T, 8]"), "{err}");
    let mut causal = compiled(CausalSelfAttention::<f32>::new(8, 2));
    let err = causal.fit(&x, &y, quiet()).unwrap_err();
    assert_shape_error(
        err,
        DataRole::Training,
        "causal_self_attention",
        &[5, 6],
        &expected("causal_self_attention"),
    );

    // A sequence longer than the positional table.
    let mut positional = compiled(Sequential::<f32>::new().add(PositionalEmbedding::new(4, 6)));
    let err = positional
        .fit(&x, &Array3::<f32>::zeros((2, 5, 6)), quiet())
        .unwrap_err();
    assert_shape_error(
        err,
        DataRole::Training,
        "positional_embedding_0",
        &[5, 6],
        "the training data does not fit the model: layer `positional_embedding_0` takes \
         inputs of shape [T, 6] with T at most 4 (without the batch axis), got [5, 6]",
    );
}

#[test]
fn embedding_models_reject_another_sequence_length_once_built() {
    // An embedding takes indices of any shape, so it builds for any; once built, samples of
    // another shape are the model's typed error in fit, evaluate and predict.
    let mut model = compiled(
        Sequential::<f32>::new()
            .add(Embedding::new(10, 4))
            .add(Flatten::new())
            .add(Dense::new(1)),
    );
    let x = Array2::<f32>::zeros((4, 6));
    let y = Array2::<f32>::zeros((4, 1));
    model.fit(&x, &y, quiet()).unwrap();
    let longer = ArrayD::<f32>::zeros(vec![4, 7]);
    for err in [
        model.fit(&longer, &y, quiet()).unwrap_err(),
        model.evaluate(&longer, &y, 2).unwrap_err(),
        model.predict(&longer, 2).unwrap_err(),
    ] {
        assert!(
            matches!(&err, FitError::InputShape { expected, found, .. }
                if expected == &[6] && found == &[7]),
            "{err}"
        );
    }
}

#[test]
fn normalization_pooling_and_reshape_layers_reject_a_wrong_shape() {
    let y = Array2::<f32>::zeros((4, 2));
    let x4 = ArrayD::<f32>::zeros(vec![4, 2, 3, 3, 3]);
    let mut bn = compiled(Sequential::<f32>::new().add(BatchNorm::new()));
    let err = bn.fit(&x4, &y, quiet()).unwrap_err();
    assert_shape_error(
        err,
        DataRole::Training,
        "batch_norm_0",
        &[2, 3, 3, 3],
        "the training data does not fit the model: layer `batch_norm_0` takes inputs of shape \
         (C,), (C, L) or (C, H, W) (without the batch axis), got [2, 3, 3, 3]",
    );

    let x2 = Array3::<f32>::zeros((4, 8, 8));
    let mut pool = compiled(Sequential::<f32>::new().add(MaxPool2d::new(2)));
    let err = pool.fit(&x2, &y, quiet()).unwrap_err();
    assert_shape_error(
        err,
        DataRole::Training,
        "max_pool2d_0",
        &[8, 8],
        "the training data does not fit the model: layer `max_pool2d_0` takes inputs of shape \
         (channels, height, width), the padded height and width at least the kernel [2, 2] \
         (without the batch axis), got [8, 8]",
    );
    let mut global = compiled(Sequential::<f32>::new().add(GlobalAvgPool2d::new()));
    assert!(matches!(
        global.fit(&x2, &y, quiet()),
        Err(FitError::InvalidInputShape { .. })
    ));

    let mut reshape = compiled(Sequential::<f32>::new().add(Reshape::new(&[3, -1])));
    let err = reshape
        .fit(&Array2::<f32>::zeros((4, 10)), &y, quiet())
        .unwrap_err();
    assert_shape_error(
        err,
        DataRole::Training,
        "reshape_0",
        &[10],
        "the training data does not fit the model: layer `reshape_0` takes inputs of shape \
         (..) whose elements fill [3, -1] (without the batch axis), got [10]",
    );
}

#[test]
fn a_later_layer_that_cannot_take_its_input_is_the_typed_error_too() {
    // The first layer takes any shape; the convolution after it (the first `conv2d`, so
    // `conv2d_0`) needs (C, H, W).
    let net = || {
        Sequential::<f32>::new()
            .add(Dropout::new(0.1))
            .add(Conv2d::new(4, 3))
            .add(Flatten::new())
            .add(Dense::new(2))
    };
    let mut model = compiled(net());
    let x = Array3::<f32>::zeros((8, 16, 16));
    let y = Array2::<f32>::zeros((8, 2));
    let err = model.fit(&x, &y, quiet()).unwrap_err();
    assert_shape_error(
        err,
        DataRole::Training,
        "conv2d_0",
        &[16, 16],
        &conv2d_3x3_message("[16, 16]"),
    );
    assert!(!model.is_built());
    assert!(matches!(model.predict(&x, 4), Err(FitError::NotBuilt)));

    // The same model then builds and trains on the right shape, with fresh parameters.
    let x = Array4::<f32>::zeros((8, 1, 16, 16));
    model.fit(&x, &y, quiet()).unwrap();
    assert!(model.is_built());
    assert_eq!(model.predict(&x, 4).unwrap().shape(), &[8, 2]);
}
