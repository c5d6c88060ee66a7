//! Replays every `multihead_attention`, `scaled_dot_product_attention` and
//! `transformer_encoder_layer` case of the workspace's `tests/data/seq.json` (PyTorch 2.15,
//! float64): the layers load PyTorch's parameters by their state-dict names, and the outputs,
//! the gradients of `Σ_k sum(outputs[k] · upstream[k])` with respect to every f64 input (data
//! and parameters) and, where the case has one, the Hessian-vector product (the gradient of
//! `Σ_i ⟨grads[i], direction[i]⟩`, through `tape.grad` twice) agree to 1e-10 relative.
//!
//! Some entries are exactly zero in exact arithmetic and cancel to rounding noise on both
//! sides (the key part of `in_proj_bias`' gradient, which the softmax's invariance to a
//! shift makes 0; the query of the first position under a causal mask, which sees one key
//! only): [`assert_close_or_cancelled`] compares such entries absolutely, at 1e-12 of the
//! array's largest magnitude.

use ndarray::{ArrayD, IxDyn};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;
use tapegrad_autograd::{Tape, Var};
use tapegrad_nn::Module;
use tapegrad_nn::layers::{
    Activation, AttendOptions, MultiHeadAttention, TransformerEncoderLayer,
    scaled_dot_product_attention,
};

use super::golden::{array, assert_close, cases};

/// [`assert_close`], except that an element within 1e-12 of the largest magnitude of `want`
/// counts as equal: the rounding noise of entries that cancel to zero.
#[track_caller]
fn assert_close_or_cancelled(what: &str, got: &ArrayD<f64>, want: &ArrayD<f64>) {
    let floor = 1e-12 * want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    let mut got = got.clone();
    got.zip_mut_with(want, |g, &w| {
        if (*g - w).abs() <= floor {
            *g = w;
        }
    });
    assert_close(what, &got, want);
}

/// The cases of seq.json whose op is `op`.
fn seq_cases(op: &str) -> Vec<Value> {
    let all: Vec<Value> = cases("seq.json")
        .into_iter()
        .filter(|c| c["op"] == op)
        .collect();
    assert!(!all.is_empty(), "no `{op}` case in seq.json");
    all
}

/// The input named `name` of `case`, if any: its position and the input.
fn find<'c>(case: &'c Value, name: &str) -> Option<(usize, &'c Value)> {
    case["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .find(|(_, input)| input["name"] == name)
}

fn f64_input(input: &Value) -> ArrayD<f64> {
    array(&input["shape"], &input["values"])
}

/// The boolean input `name` (a mask), if the case has it.
fn mask(case: &Value, name: &str) -> Option<ArrayD<bool>> {
    let (_, input) = find(case, name)?;
    assert_eq!(input["dtype"], "bool");
    let shape: Vec<usize> = input["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let values: Vec<bool> = input["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_bool().unwrap())
        .collect();
    Some(ArrayD::from_shape_vec(IxDyn(&shape), values).unwrap())
}

/// Assigns every f64 input of `case` named like one of `module`'s parameters to it, and
/// checks that each parameter got one.
fn load<M: Module<f64>>(module: &mut M, case: &Value) {
    let names: Vec<String> = module.named_params().into_iter().map(|(n, _)| n).collect();
    for (name, param) in names.iter().zip(module.params_mut()) {
        let (_, input) = find(case, name).unwrap_or_else(|| panic!("no input `{name}`"));
        param.assign(f64_input(input));
    }
}

/// The f64 inputs of `case` on `tape`, in the case's order, each paired with its position:
/// data inputs as new variables, parameters as their bindings (`tape.param`).
fn input_vars<'t, M: Module<f64>>(
    tape: &'t Tape<'t, f64>,
    module: &'t M,
    case: &Value,
) -> Vec<(usize, String, Var<'t, f64>)> {
    let params = module.named_params();
    case["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, input)| input["dtype"] == "f64")
        .map(|(i, input)| {
            let name = input["name"].as_str().unwrap().to_string();
            let var = match params.iter().find(|(n, _)| *n == name) {
                Some((_, p)) => tape.param(p),
                None => tape.var(f64_input(input)),
            };
            (i, name, var)
        })
        .collect()
}

/// Checks `outputs` against the case's, then the gradients of every f64 input and, when
/// the case has them, the Hessian-vector products.
fn check<'t>(
    tape: &'t Tape<'t, f64>,
    case: &Value,
    inputs: &[(usize, String, Var<'t, f64>)],
    outputs: &[Var<'t, f64>],
) {
    let what = |s: &str| format!("{} {}: {s}", case["op"], case["attrs"]);
    let mut loss: Option<Var<'t, f64>> = None;
    for (k, out) in outputs.iter().enumerate() {
        let want = &case["outputs"][k];
        let name = want["name"].as_str().unwrap();
        assert_close(
            &what(name),
            &out.to_array(),
            &array(&want["shape"], &want["values"]),
        );
        let upstream = tape.constant(array(&want["shape"], &case["upstream"][k]));
        let term = (*out * upstream).sum();
        loss = Some(loss.map_or(term, |l| l + term));
    }
    assert_eq!(outputs.len(), case["outputs"].as_array().unwrap().len());
    let vars: Vec<Var<'t, f64>> = inputs.iter().map(|(_, _, v)| *v).collect();
    let grads = tape.grad(loss.unwrap(), &vars);
    for ((i, name, _), g) in inputs.iter().zip(&grads) {
        let shape = &case["inputs"][*i]["shape"];
        let want = array(shape, &case["grads"][*i]);
        assert_close_or_cancelled(&what(&format!("gradient of {name}")), &g.to_array(), &want);
    }
    if case.get("hvp").is_none() {
        return;
    }
    let dot = inputs
        .iter()
        .zip(&grads)
        .map(|((i, _, _), g)| {
            let direction = array(&case["inputs"][*i]["shape"], &case["direction"][*i]);
            (*g * tape.constant(direction)).sum()
        })
        .reduce(|a, b| a + b)
        .unwrap();
    let hvp = tape.grad(dot, &vars);
    for ((i, name, _), h) in inputs.iter().zip(&hvp) {
        let want = array(&case["inputs"][*i]["shape"], &case["hvp"][*i]);
        assert_close_or_cancelled(&what(&format!("hvp of {name}")), &h.to_array(), &want);
    }
}

#[test]
fn scaled_dot_product_attention_cases() {
    for case in seq_cases("scaled_dot_product_attention") {
        let is_causal = case["attrs"]["is_causal"].as_bool().unwrap();
        let tape = Tape::new();
        let vars: Vec<(usize, String, Var<'_, f64>)> = ["query", "key", "value"]
            .iter()
            .map(|name| {
                let (i, input) = find(&case, name).unwrap();
                (i, name.to_string(), tape.var(f64_input(input)))
            })
            .collect();
        let out = scaled_dot_product_attention(vars[0].2, vars[1].2, vars[2].2, None, is_causal);
        check(&tape, &case, &vars, &[out]);
    }
}

#[test]
fn multihead_attention_cases() {
    for case in seq_cases("multihead_attention") {
        let attrs = &case["attrs"];
        let embed_dim = attrs["embed_dim"].as_u64().unwrap() as usize;
        let num_heads = attrs["num_heads"].as_u64().unwrap() as usize;
        let mut mha = MultiHeadAttention::<f64>::new(embed_dim, num_heads);
        mha.init(&mut StdRng::seed_from_u64(0));
        load(&mut mha, &case);
        let (attn_mask, padding) = (mask(&case, "attn_mask"), mask(&case, "key_padding_mask"));
        assert_eq!(
            padding.is_some(),
            attrs["key_padding_mask"].as_bool().unwrap()
        );

        let tape = Tape::new();
        let inputs = input_vars(&tape, &mha, &case);
        let var = |name: &str| {
            inputs
                .iter()
                .find(|(_, n, _)| n == name)
                .map(|(_, _, v)| *v)
        };
        let query = var("query").unwrap();
        // Self-attention passes the query three times (one in-projection product).
        let (key, value) = match attrs["self_attention"].as_bool().unwrap() {
            true => (query, query),
            false => (var("key").unwrap(), var("value").unwrap()),
        };
        let options = AttendOptions {
            attn_mask: attn_mask.as_ref(),
            key_padding_mask: padding.as_ref(),
            need_weights: true,
            is_causal: attrs["causal"].as_bool().unwrap(),
        };
        let (out, weights) = mha.attend(query, key, value, options);
        check(&tape, &case, &inputs, &[out, weights.unwrap()]);
    }
}

#[test]
fn transformer_encoder_layer_cases() {
    for case in seq_cases("transformer_encoder_layer") {
        let attrs = &case["attrs"];
        let int = |key: &str| attrs[key].as_u64().unwrap() as usize;
        let activation = match attrs["activation"].as_str().unwrap() {
            "relu" => Activation::Relu,
            "gelu" => Activation::Gelu,
            other => panic!("activation {other}"),
        };
        let mut layer = TransformerEncoderLayer::<f64>::new(int("d_model"), int("nhead"))
            .dim_feedforward(int("dim_feedforward"))
            .dropout(attrs["dropout"].as_f64().unwrap())
            .activation(activation)
            .norm_first(attrs["norm_first"].as_bool().unwrap())
            .layer_norm_eps(attrs["layer_norm_eps"].as_f64().unwrap());
        let src_shape = &find(&case, "src").unwrap().1["shape"];
        let seq_len = src_shape[1].as_u64().unwrap() as usize;
        layer.build(&[seq_len, int("d_model")], &mut StdRng::seed_from_u64(0));
        load(&mut layer, &case);
        let names: Vec<String> = layer.named_params().into_iter().map(|(n, _)| n).collect();
        let want: Vec<&str> = case["inputs"].as_array().unwrap()[1..]
            .iter()
            .map(|input| input["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, want, "the state dict's names, in its order");

        let tape = Tape::new();
        let inputs = input_vars(&tape, &layer, &case);
        let src = inputs[0].2;
        let src_mask = mask(&case, "src_mask");
        let out = layer.forward_with_mask(
            src,
            src_mask.as_ref(),
            None,
            attrs["causal"].as_bool().unwrap(),
        );
        check(&tape, &case, &inputs, &[out]);
    }
}
