//! The sequence layers — recurrent layers and cells, attention, Transformer blocks —
//! exported and run by tract.

use tapegrad_nn::layers::{
    Activation, DecoderBlock, Dense, Embedding, Flatten, Gru, GruCell, Lstm, LstmCell,
    MultiHeadAttention, PositionalEmbedding, Rnn, RnnCell, Sequential, TransformerEncoderLayer,
};

use super::{assert_runs_the_same, batches, uniform};

/// Sequences of 6 steps of 3 features.
const SEQUENCE: [usize; 2] = [6, 3];

#[test]
fn lstm_one_layer_last_state_and_stacked_bidirectional_sequences() {
    let mut last = Sequential::new()
        .add(Lstm::new(3, 5))
        .with_input_shape(&SEQUENCE);
    assert_runs_the_same(&mut last, &SEQUENCE, &batches(&SEQUENCE));
    let mut stacked = Sequential::new()
        .add(
            Lstm::new(3, 4)
                .num_layers(2)
                .bidirectional(true)
                .return_sequences(true),
        )
        .add(Lstm::new(8, 3).bidirectional(true).bias(false))
        .with_input_shape(&SEQUENCE);
    assert_runs_the_same(&mut stacked, &SEQUENCE, &batches(&SEQUENCE));
}

#[test]
fn gru_one_layer_last_state_and_stacked_bidirectional_sequences() {
    let mut last = Sequential::new()
        .add(Gru::new(3, 5))
        .with_input_shape(&SEQUENCE);
    assert_runs_the_same(&mut last, &SEQUENCE, &batches(&SEQUENCE));
    let mut stacked = Sequential::new()
        .add(
            Gru::new(3, 4)
                .num_layers(3)
                .bidirectional(true)
                .return_sequences(true),
        )
        .add(Gru::new(8, 3).num_layers(2).bias(false))
        .with_input_shape(&SEQUENCE);
    assert_runs_the_same(&mut stacked, &SEQUENCE, &batches(&SEQUENCE));
}

#[test]
fn rnn_tanh_one_layer_and_stacked_bidirectional_sequences() {
    // tract reads every `RNN` node as tanh (it ignores `activations`): a relu `Rnn` is
    // checked in ONNX Runtime (`check.py`), and its attribute in tapegrad-nn's tests.
    let mut stacked = Sequential::new()
        .add(
            Rnn::new(3, 4)
                .num_layers(2)
                .bidirectional(true)
                .return_sequences(true),
        )
        .add(Rnn::new(8, 3))
        .with_input_shape(&SEQUENCE);
    assert_runs_the_same(&mut stacked, &SEQUENCE, &batches(&SEQUENCE));
}

#[test]
fn cells_one_step_from_zero_states() {
    let mut lstm = Sequential::new()
        .add(LstmCell::new(3, 4))
        .with_input_shape(&[3]);
    assert_runs_the_same(&mut lstm, &[3], &batches(&[3]));
    let mut gru = Sequential::new()
        .add(GruCell::new(3, 4))
        .with_input_shape(&[3]);
    assert_runs_the_same(&mut gru, &[3], &batches(&[3]));
    let mut rnn = Sequential::new()
        .add(RnnCell::new(3, 4))
        .with_input_shape(&[3]);
    assert_runs_the_same(&mut rnn, &[3], &batches(&[3]));
}

#[test]
fn multi_head_attention_plain_causal_and_without_bias() {
    let shape = [5, 8];
    for attention in [
        MultiHeadAttention::new(8, 2),
        MultiHeadAttention::new(8, 4).causal(true).dropout(0.2),
        MultiHeadAttention::new(8, 1).bias(false),
    ] {
        let mut model = Sequential::new().add(attention).with_input_shape(&shape);
        assert_runs_the_same(&mut model, &shape, &batches(&shape));
    }
}

#[test]
fn transformer_encoder_layers_post_and_pre_norm() {
    let shape = [5, 8];
    let layer = || TransformerEncoderLayer::new(8, 2).dim_feedforward(16);
    for encoder in [
        layer(),
        layer().norm_first(true).activation(Activation::Gelu),
        layer().causal(true).layer_norm_eps(1e-3),
    ] {
        let mut model = Sequential::new()
            .add(encoder)
            .add(layer())
            .with_input_shape(&shape);
        assert_runs_the_same(&mut model, &shape, &batches(&shape));
    }
}

#[test]
fn a_gpt_style_decoder_on_token_indices() {
    let tokens = [5];
    for exact_gelu in [false, true] {
        let mut model = Sequential::new()
            .add(Embedding::new(11, 8))
            // A table longer than the rows (a `Slice` of it), or as long.
            .add(PositionalEmbedding::new(if exact_gelu { 5 } else { 7 }, 8))
            .add(DecoderBlock::new(8, 2).exact_gelu(exact_gelu))
            .add(DecoderBlock::new(8, 4))
            .add(Flatten::new())
            .add(Dense::new(3))
            .with_input_shape(&tokens);
        let inputs: Vec<_> = [1, 4]
            .iter()
            .map(|&batch| uniform(batch, &tokens, 0.0, 11.0, batch as u64).mapv(f32::floor))
            .collect();
        assert_runs_the_same(&mut model, &tokens, &inputs);
    }
}
