//! The attention layers through gradient checking (f64, tiny random sizes): first
//! derivatives of inputs and parameters (`gradcheck`, `gradcheck_module`) and second
//! derivatives of the inputs (`gradgradcheck`); and what masks promise: padded keys change
//! nothing and get no gradient, fully hidden rows are NaN, long sequences are refused.

use ndarray::{ArrayD, Dimension, IxDyn};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad_autograd::testing::array;
use tapegrad_autograd::{GradcheckOptions, Inputs, Tape, Var, gradcheck, gradgradcheck};
use tapegrad_nn::Module;
use tapegrad_nn::init::Initializer;
use tapegrad_nn::layers::{
    Activation, AttendOptions, DecoderBlock, MultiHeadAttention, PositionalEmbedding,
    TransformerEncoderLayer, scaled_dot_product_attention,
};
use tapegrad_nn::module::gradcheck_module;

const CASES: u32 = 12;

/// The layer norms' `eps` in the gradchecks of whole blocks. A layer norm over a row of
/// variance `σ²` has third derivatives of order `(σ² + eps)^{-3/2}`; with the default 1e-5
/// a row of nearly equal features (the block's input, or the residual stream before the
/// second norm, which the random weights can make so) puts the central difference's error
/// `h² f‴ / 6` above the checker's tolerance (seen once in 1,000-3,000 cases). At 0.1 the
/// third derivative stays under ~30 for every input, and the rule is the same code.
const WELL_CONDITIONED_EPS: f64 = 0.1;

fn options() -> GradcheckOptions {
    GradcheckOptions::default()
}

/// `module` built for inputs `[T, E]`, its parameters redrawn uniform in ±1 (biases away
/// from their zeros, gains from their ones).
fn built<M: Module<f64>>(mut module: M, input_shape: &[usize], seed: u64) -> M {
    let mut rng = StdRng::seed_from_u64(seed);
    module.build(input_shape, &mut rng);
    for p in module.params_mut() {
        let values = Initializer::Uniform {
            low: -1.0,
            high: 1.0,
        }
        .init::<f64, _>(p.shape(), &mut rng);
        p.assign(values);
    }
    module
}

/// `gradcheck` and `gradgradcheck` of `f` at `inputs`.
fn check_first_and_second<'env, F>(f: F, inputs: &[ArrayD<f64>])
where
    F: for<'t> Fn(&'t Tape<'t, f64>, &Inputs<'t, 'env, f64>) -> Var<'t, f64>,
{
    gradcheck(&f, inputs, &options()).unwrap();
    gradgradcheck(&f, inputs, &options()).unwrap();
}

/// A random boolean mask of `shape` (`[..., L, S]`) that leaves key 0 visible to every
/// query, so no row is fully hidden.
fn mask(shape: &[usize], seed: u64) -> ArrayD<bool> {
    let mut rng = StdRng::seed_from_u64(seed);
    ArrayD::from_shape_fn(IxDyn(shape), |ix| {
        ix[ix.ndim() - 1] != 0 && rng.random_bool(0.4)
    })
}

/// `q [B, L, d]`, `k [B, S, d]`, `v [B, S, dv]` with small random sizes.
fn qkv() -> impl Strategy<Value = Vec<ArrayD<f64>>> {
    (1..=2usize, 1..=3usize, 1..=3usize, 1..=3usize, 1..=2usize).prop_flat_map(
        |(b, l, s, d, dv)| {
            (
                array(vec![b, l, d], -1.5, 1.5),
                array(vec![b, s, d], -1.5, 1.5),
                array(vec![b, s, dv], -1.5, 1.5),
            )
                .prop_map(|(q, k, v)| vec![q, k, v])
        },
    )
}

/// `[N, T, E]` inputs with `E = heads · head_dim`: `(x, heads)`.
fn sequence(max_t: usize) -> impl Strategy<Value = (ArrayD<f64>, usize)> {
    (1..=2usize, 1..=max_t, 1..=2usize, 1..=2usize).prop_flat_map(|(n, t, heads, head_dim)| {
        (array(vec![n, t, heads * head_dim], -1.5, 1.5), Just(heads))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn sdpa(inputs in qkv(), causal in any::<bool>(), masked in any::<bool>(), seed in any::<u64>()) {
        let (l, s) = (inputs[0].shape()[1], inputs[1].shape()[1]);
        // Key 0 stays visible to every query (causal too), so no row is fully hidden.
        let hidden = masked.then(|| mask(&[l, s], seed));
        check_first_and_second(
            |_, v| scaled_dot_product_attention(v[0], v[1], v[2], hidden.as_ref(), causal),
            &inputs,
        );
    }

    #[test]
    fn multi_head_self_attention((x, heads) in sequence(3), causal in any::<bool>(), seed in any::<u64>()) {
        let (t, e) = (x.shape()[1], x.shape()[2]);
        let mut mha = built(MultiHeadAttention::new(e, heads).causal(causal), &[t, e], seed);
        gradcheck_module(&mut mha, &x, &options()).unwrap();
        gradgradcheck(|_, v| mha.forward(v[0]), std::slice::from_ref(&x), &options()).unwrap();
    }

    #[test]
    fn multi_head_cross_attention(
        (query, heads) in sequence(3),
        s in 1..=3usize,
        seed in any::<u64>(),
    ) {
        let (n, l, e) = (query.shape()[0], query.shape()[1], query.shape()[2]);
        let mut rng = StdRng::seed_from_u64(seed);
        let uniform = Initializer::Uniform { low: -1.5, high: 1.5 };
        let key = uniform.init::<f64, _>(&[n, s, e], &mut rng);
        let value = uniform.init::<f64, _>(&[n, s, e], &mut rng);
        let attn_mask = mask(&[l, s], seed);
        let padding = mask(&[n, s], seed ^ 1);
        let mha = built(MultiHeadAttention::new(e, heads), &[l, e], seed);
        check_first_and_second(
            |_, v| {
                let options = AttendOptions::default()
                    .attn_mask(&attn_mask)
                    .key_padding_mask(&padding)
                    .need_weights(true);
                let (out, weights) = mha.attend(v[0], v[1], v[2], options);
                // Both outputs side by side, [N, L, E + S].
                Var::concat(&[out, weights.unwrap()], -1)
            },
            &[query, key, value],
        );
    }

    #[test]
    fn transformer_encoder_layer(
        (x, heads) in sequence(3).prop_filter("layer norm over 2+ features", |(x, _)| x.shape()[2] >= 2),
        norm_first in any::<bool>(),
        causal in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let (t, e) = (x.shape()[1], x.shape()[2]);
        let layer = TransformerEncoderLayer::new(e, heads)
            .dim_feedforward(3)
            .dropout(0.0)
            .activation(Activation::Gelu)
            .layer_norm_eps(WELL_CONDITIONED_EPS)
            .norm_first(norm_first)
            .causal(causal);
        let mut layer = built(layer, &[t, e], seed);
        gradcheck_module(&mut layer, &x, &options()).unwrap();
        gradgradcheck(|_, v| layer.forward(v[0]), std::slice::from_ref(&x), &options()).unwrap();
    }

    #[test]
    fn decoder_block(
        (x, heads) in sequence(3).prop_filter("layer norm over 2+ features", |(x, _)| x.shape()[2] >= 2),
        exact in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let (t, e) = (x.shape()[1], x.shape()[2]);
        let block = DecoderBlock::new(e, heads)
            .exact_gelu(exact)
            .layer_norm_eps(WELL_CONDITIONED_EPS);
        let mut block = built(block, &[t, e], seed);
        gradcheck_module(&mut block, &x, &options()).unwrap();
        gradgradcheck(|_, v| block.forward(v[0]), std::slice::from_ref(&x), &options()).unwrap();
    }

    #[test]
    fn positional_embedding((x, _) in sequence(3), extra in 0..=2usize, seed in any::<u64>()) {
        let (t, e) = (x.shape()[1], x.shape()[2]);
        let mut positions = built(PositionalEmbedding::new(t + extra, e), &[t, e], seed);
        gradcheck_module(&mut positions, &x, &options()).unwrap();
        gradgradcheck(|_, v| positions.forward(v[0]), std::slice::from_ref(&x), &options()).unwrap();
    }
}

/// Changing the keys and values at padded positions changes no output (bit for bit) and
/// their gradients are exactly zero.
#[test]
fn key_padding_masked_positions_change_nothing() {
    let (n, l, s, e) = (2, 3, 5, 4);
    let mha = built(MultiHeadAttention::<f64>::new(e, 2), &[l, e], 7);
    let mut rng = StdRng::seed_from_u64(11);
    let uniform = Initializer::Uniform {
        low: -1.0,
        high: 1.0,
    };
    let query = uniform.init::<f64, _>(&[n, l, e], &mut rng);
    let key = uniform.init::<f64, _>(&[n, s, e], &mut rng);
    let value = uniform.init::<f64, _>(&[n, s, e], &mut rng);
    // Sample 0 pads its last two keys, sample 1 its last one.
    let padding = ArrayD::from_shape_fn(IxDyn(&[n, s]), |ix| ix[1] >= s - 2 + ix[0]);
    let padded = |ix: &[usize]| padding[[ix[0], ix[1]]];

    let run = |key: &ArrayD<f64>, value: &ArrayD<f64>| {
        let tape = Tape::new();
        let (q, k, v) = (
            tape.var(query.clone()),
            tape.var(key.clone()),
            tape.var(value.clone()),
        );
        let options = AttendOptions::default()
            .key_padding_mask(&padding)
            .need_weights(true);
        let (out, weights) = mha.attend(q, k, v, options);
        let grads = tape.grad((out * out).sum(), &[k, v]);
        (
            out.to_array(),
            weights.unwrap().to_array(),
            grads[0].to_array(),
            grads[1].to_array(),
        )
    };
    let (out, weights, key_grad, value_grad) = run(&key, &value);
    for ((ix, &kg), &vg) in key_grad.indexed_iter().zip(value_grad.iter()) {
        if padded(ix.slice()) {
            assert_eq!((kg, vg), (0.0, 0.0), "gradient at padded position {ix:?}");
        }
    }
    for (ix, &w) in weights.indexed_iter() {
        if padding[[ix[0], ix[2]]] {
            assert_eq!(w, 0.0, "weight of padded key at {ix:?}");
        }
    }

    let mut changed = (key.clone(), value.clone());
    for (ix, k) in changed.0.indexed_iter_mut() {
        if padded(ix.slice()) {
            *k += 100.0;
        }
    }
    for (ix, v) in changed.1.indexed_iter_mut() {
        if padded(ix.slice()) {
            *v = -*v * 3.0 + 50.0;
        }
    }
    let (out2, weights2, key_grad2, value_grad2) = run(&changed.0, &changed.1);
    assert_eq!(out, out2);
    assert_eq!(weights, weights2);
    assert_eq!(key_grad, key_grad2);
    assert_eq!(value_grad, value_grad2);
}

/// A query whose keys are all hidden gets NaN, as in PyTorch; the other rows are finite.
#[test]
fn fully_hidden_row_is_nan() {
    let tape = Tape::<f64>::new();
    let x = tape.var(ArrayD::from_shape_fn(IxDyn(&[1, 2, 3]), |ix| {
        (ix[1] * 3 + ix[2]) as f64 * 0.1
    }));
    let hidden = ArrayD::from_shape_fn(IxDyn(&[2, 2]), |ix| ix[0] == 1);
    let out = scaled_dot_product_attention(x, x, x, Some(&hidden), false).to_array();
    assert!(
        out.slice(ndarray::s![0, 0, ..])
            .iter()
            .all(|v| v.is_finite())
    );
    assert!(out.slice(ndarray::s![0, 1, ..]).iter().all(|v| v.is_nan()));
}

/// A causal mask leaves the first query one key: its output is the first value.
#[test]
fn causal_first_query_sees_only_the_first_key() {
    let tape = Tape::<f64>::new();
    let q = tape.var(ArrayD::from_elem(IxDyn(&[2, 4, 3]), 0.3));
    let k = tape.var(ArrayD::from_shape_fn(IxDyn(&[2, 4, 3]), |ix| ix[1] as f64));
    let v = tape.var(ArrayD::from_shape_fn(IxDyn(&[2, 4, 2]), |ix| {
        (ix[1] * 2 + ix[2]) as f64
    }));
    let out = scaled_dot_product_attention(q, k, v, None, true).to_array();
    assert_eq!(out[[1, 0, 0]], 0.0);
    assert_eq!(out[[1, 0, 1]], 1.0);
}

#[test]
#[should_panic(expected = "has 4 positions, got a sequence of length 5")]
fn positional_embedding_refuses_long_sequences() {
    let positions = built(PositionalEmbedding::<f64>::new(4, 2), &[3, 2], 0);
    let tape = Tape::new();
    positions.forward(tape.var(ArrayD::zeros(IxDyn(&[1, 5, 2]))));
}

#[test]
#[should_panic(expected = "MultiHeadAttention::attend")]
fn multi_head_attention_names_the_shapes() {
    let mha = built(MultiHeadAttention::<f64>::new(4, 2), &[3, 4], 0);
    let tape = Tape::new();
    mha.forward(tape.var(ArrayD::zeros(IxDyn(&[1, 3, 5]))));
}

#[test]
fn encoder_layer_names_and_decoder_block_size() {
    let layer = built(TransformerEncoderLayer::<f64>::new(8, 2), &[4, 8], 0);
    let names: Vec<String> = layer.named_params().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "self_attn.in_proj_weight",
            "self_attn.in_proj_bias",
            "self_attn.out_proj.weight",
            "self_attn.out_proj.bias",
            "linear1.weight",
            "linear1.bias",
            "linear2.weight",
            "linear2.bias",
            "norm1.weight",
            "norm1.bias",
            "norm2.weight",
            "norm2.bias",
        ]
    );
    assert_eq!(layer.params()[4].shape(), [2048, 8]);

    let mut block = DecoderBlock::<f32>::new(64, 4);
    block.build(&[8, 64], &mut StdRng::seed_from_u64(0));
    let sizes: Vec<(String, usize)> = block
        .named_params()
        .into_iter()
        .map(|(n, p)| (n, p.len()))
        .collect();
    assert_eq!(block.num_params(), 49_984);
    assert_eq!(sizes[0], ("ln_1.weight".to_string(), 64));
    assert_eq!(sizes[2], ("attn.c_attn.weight".to_string(), 64 * 192));
    assert_eq!(sizes[11], ("mlp.c_proj.bias".to_string(), 64));

    // PyTorch's initial values: zero biases in the attention, ones and zeros in the norms.
    let mut mha = MultiHeadAttention::<f64>::new(8, 2);
    mha.init(&mut StdRng::seed_from_u64(3));
    assert!(
        mha.in_proj_bias()
            .unwrap()
            .value()
            .iter()
            .all(|&b| b == 0.0)
    );
    let limit = (6.0f64 / 32.0).sqrt();
    assert!(
        mha.in_proj_weight()
            .unwrap()
            .value()
            .iter()
            .all(|w| w.abs() <= limit)
    );
    let out_bias = &mha.named_params()[3];
    assert_eq!(out_bias.0, "out_proj.bias");
    assert!(out_bias.1.value().iter().all(|&b| b == 0.0));
}

/// A small GPT-style stack inside a `Sequential`: the layers' one-tensor `forward`, paths
/// prefixed by the layer names.
#[test]
fn layers_stack_in_a_sequential() {
    use tapegrad_nn::layers::Sequential;
    let model = Sequential::<f64>::new()
        .add(PositionalEmbedding::new(8, 4))
        .add(DecoderBlock::new(4, 2))
        .add(
            TransformerEncoderLayer::new(4, 2)
                .dim_feedforward(8)
                .causal(true),
        )
        .add(MultiHeadAttention::new(4, 2).causal(true))
        .with_input_shape(&[6, 4]);
    assert_eq!(
        model.layer_names(),
        [
            "positional_embedding_0",
            "decoder_block_0",
            "transformer_encoder_layer_0",
            "multi_head_attention_0"
        ]
    );
    let names: Vec<&str> = model.params().iter().map(|p| p.name()).collect();
    assert_eq!(names[0], "positional_embedding_0.weight");
    assert_eq!(names[3], "decoder_block_0.attn.c_attn.weight");
    assert!(names.contains(&"transformer_encoder_layer_0.norm2.bias"));
    assert_eq!(names.last(), Some(&"multi_head_attention_0.out_proj.bias"));

    let tape = Tape::new();
    let x = tape.var(ArrayD::from_elem(IxDyn(&[2, 6, 4]), 0.25));
    let y = model.forward(x);
    assert_eq!(y.shape(), [2, 6, 4]);
    assert!(y.to_array().iter().all(|v| v.is_finite()));
}

/// Dropout acts in train mode only; in eval mode the layer is the one without dropout
/// (same seed, same parameters).
#[test]
fn encoder_dropout_follows_the_mode() {
    let new = |p: f64| {
        let mut layer = TransformerEncoderLayer::<f64>::new(4, 2)
            .dim_feedforward(8)
            .dropout(p);
        layer.build(&[5, 4], &mut StdRng::seed_from_u64(3));
        layer
    };
    let (mut noisy, plain) = (new(0.5), new(0.0));
    let x = ArrayD::from_shape_fn(IxDyn(&[2, 5, 4]), |ix| (ix[1] as f64 - ix[2] as f64) * 0.3);
    let run = |layer: &TransformerEncoderLayer<f64>| {
        let tape = Tape::new();
        layer.forward(tape.var(x.clone())).to_array()
    };
    assert_ne!(run(&noisy), run(&plain));
    noisy.set_training(false);
    assert_eq!(run(&noisy), run(&plain));

    let no_bias = built(MultiHeadAttention::<f64>::new(4, 2).bias(false), &[5, 4], 0);
    let names: Vec<String> = no_bias.named_params().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["in_proj_weight", "out_proj.weight"]);
}

/// The shared in-projection products (self-attention: one for q, k, v; key = value: one
/// for k, v) give what three separate products give.
#[test]
fn shared_projections_match_separate_ones() {
    let mha = built(MultiHeadAttention::<f64>::new(6, 3), &[4, 6], 5);
    let mut rng = StdRng::seed_from_u64(9);
    let uniform = Initializer::Uniform {
        low: -1.0,
        high: 1.0,
    };
    let x = uniform.init::<f64, _>(&[2, 4, 6], &mut rng);
    let memory = uniform.init::<f64, _>(&[2, 3, 6], &mut rng);
    let tape = Tape::new();
    let options = AttendOptions::default().need_weights(true).is_causal(true);
    let attend = |q, k, v| {
        let (out, weights) = mha.attend(q, k, v, options);
        Var::concat(&[out, weights.unwrap()], -1).to_array()
    };
    let close = |a: &ArrayD<f64>, b: &ArrayD<f64>| {
        a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-12 * x.abs().max(1.0))
    };
    let xs: Vec<_> = (0..3).map(|_| tape.var(x.clone())).collect();
    assert!(close(
        &attend(xs[0], xs[0], xs[0]),
        &attend(xs[0], xs[1], xs[2])
    ));
    let ms: Vec<_> = (0..2).map(|_| tape.var(memory.clone())).collect();
    assert!(close(
        &attend(xs[0], ms[0], ms[0]),
        &attend(xs[0], ms[0], ms[1])
    ));
}
