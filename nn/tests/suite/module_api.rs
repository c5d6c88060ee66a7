//! The `Module` API as a user crate meets it: a layer made of layers in a few lines, path
//! names, a residual block trained, saved and reloaded; errors that print their message;
//! checkpoint mismatches reported in full; shape panics that name the layer.

use std::panic::{AssertUnwindSafe, catch_unwind};

use ndarray::{Array2, ArrayD};
use rand::rngs::StdRng;
use tapegrad_autograd::{Param, Tape, Var};
use tapegrad_nn::Module;
use tapegrad_nn::io::IoError;
use tapegrad_nn::layers::{Activation, Dense, Residual, Sequential};
use tapegrad_nn::model::{FitError, FitOptions, Loss, Model};
use tapegrad_nn::module::{UnregisteredParams, VisitorMut};
use tapegrad_optim::Adam;

/// `x + out(relu(hidden(x)))`: a two-layer residual block, written as a user would.
struct ResBlock {
    hidden: Dense<f32>,
    out: Dense<f32>,
}

impl ResBlock {
    fn new(width: usize, features: usize) -> Self {
        ResBlock {
            hidden: Dense::new(width).activation(Activation::Relu),
            out: Dense::new(features),
        }
    }
}

impl Module<f32> for ResBlock {
    fn forward<'t>(&'t self, x: Var<'t, f32>) -> Var<'t, f32> {
        x + self.out.forward(self.hidden.forward(x))
    }
    fn build(&mut self, shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        let hidden = self.hidden.build(shape, rng);
        self.out.build(&hidden, rng)
    }
    tapegrad_nn::register!(f32; module hidden, module out);
}

/// A fresh directory for one test's files.
fn scratch_dir(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tapegrad-nn-api-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn residual_model() -> Model<f32, Sequential<f32>> {
    Model::new(
        Sequential::new()
            .add(ResBlock::new(8, 2))
            .add(ResBlock::new(8, 2))
            .add(Dense::new(1)),
    )
}

fn data() -> (Array2<f32>, Array2<f32>) {
    let x = Array2::from_shape_fn((64, 2), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 11.0 - 0.5);
    let y = Array2::from_shape_fn((64, 1), |(i, _)| x[[i, 0]] * 2.0 - x[[i, 1]]);
    (x, y)
}

#[test]
fn residual_blocks_train_save_and_reload_under_their_paths() {
    let (x, y) = data();
    let mut model = residual_model();
    model.compile(Adam::new(0.01).unwrap(), Loss::mse(), &[]);
    let history = model
        .fit(&x, &y, FitOptions::default().epochs(30).verbose(0))
        .unwrap();
    let losses = history.loss();
    assert!(losses[losses.len() - 1] < losses[0] * 0.5, "{losses:?}");

    let names: Vec<String> = model
        .params()
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "res_block_0.hidden.kernel",
            "res_block_0.hidden.bias",
            "res_block_0.out.kernel",
            "res_block_0.out.bias",
            "res_block_1.hidden.kernel",
            "res_block_1.hidden.bias",
            "res_block_1.out.kernel",
            "res_block_1.out.bias",
            "dense_0.kernel",
            "dense_0.bias",
        ]
    );
    assert!(model.module().summary().contains("res_block_1 (ResBlock)"));

    let path = scratch_dir("residual").join("residual.safetensors");
    model.save(&path).unwrap();
    let mut fresh = residual_model();
    fresh.build(&[2], 99).unwrap();
    assert_ne!(
        fresh.predict(&x, 16).unwrap(),
        model.predict(&x, 16).unwrap()
    );
    fresh.load(&path).unwrap();
    assert_eq!(
        fresh.predict(&x, 16).unwrap(),
        model.predict(&x, 16).unwrap()
    );
}

#[test]
fn residual_wrapper_adds_its_input_and_no_path_segment() {
    let model = Sequential::<f32>::new()
        .add(Residual::new(Dense::new(3).use_bias(false)))
        .with_input_shape(&[3]);
    assert_eq!(model.named_params()[0].0, "residual_0.kernel");
    let x = ArrayD::from_elem(vec![2, 3], 1.0_f32);
    let tape = Tape::new();
    let y = model.forward(tape.constant(x.clone())).to_array();
    let kernel = model.params()[0].value().clone();
    let x2 = x.clone().into_dimensionality::<ndarray::Ix2>().unwrap();
    let w = kernel.into_dimensionality::<ndarray::Ix2>().unwrap();
    let expected = &x + &x2.dot(&w).into_dyn();
    assert_eq!(y, expected);
}

#[test]
fn errors_debug_print_their_message() {
    let error = FitError::NotCompiled;
    assert_eq!(format!("{error:?}"), error.to_string());
    assert!(format!("{error:?}").contains("compile"), "{error:?}");
    let boxed: Box<dyn std::error::Error> = Box::new(IoError::UnexpectedTensor {
        path: "w.safetensors".into(),
        name: "dense_9.kernel".into(),
    });
    assert_eq!(format!("{boxed:?}"), boxed.to_string());
}

#[test]
fn loading_another_architecture_lists_every_problem_in_name_order() {
    let path = scratch_dir("other").join("other.safetensors");
    let mut other = Model::new(
        Sequential::<f32>::new()
            .add(Dense::new(5))
            .add(Dense::new(3))
            .add(Dense::new(7))
            .with_input_shape(&[2]),
    );
    other.build(&[2], 0).unwrap();
    other.save(&path).unwrap();

    let messages: Vec<String> = (0..3)
        .map(|_| {
            let mut model = residual_model();
            model.build(&[2], 0).unwrap();
            match model.load(&path).unwrap_err() {
                IoError::StateMismatch {
                    missing,
                    unexpected,
                    shapes,
                    ..
                } => {
                    assert_eq!(missing[0], "res_block_0.hidden.bias");
                    assert_eq!(missing.len(), 8);
                    let mut sorted = missing.clone();
                    sorted.sort();
                    assert_eq!(missing, sorted);
                    assert_eq!(
                        unexpected,
                        [
                            "dense_1.bias",
                            "dense_1.kernel",
                            "dense_2.bias",
                            "dense_2.kernel"
                        ]
                    );
                    assert_eq!(
                        shapes,
                        [
                            ("dense_0.bias".to_string(), vec![1], vec![5]),
                            ("dense_0.kernel".to_string(), vec![2, 1], vec![2, 5]),
                        ]
                    );
                }
                other => panic!("expected StateMismatch, got {other}"),
            }
            let mut model = residual_model();
            model.build(&[2], 0).unwrap();
            model.load(&path).unwrap_err().to_string()
        })
        .collect();
    assert!(
        messages[0].contains("missing `res_block_0.hidden.bias`"),
        "{}",
        messages[0]
    );
    assert!(messages[0].contains("`dense_0.kernel` is [2, 5] in the file, [2, 1] in the model"));
    assert!(messages.iter().all(|m| *m == messages[0]));
}

/// Multiplies by a `[5, 2]` matrix whatever its input: a shape bug inside a layer.
struct Mismatched;

impl Module<f32> for Mismatched {
    fn forward<'t>(&'t self, x: Var<'t, f32>) -> Var<'t, f32> {
        x.matmul(x.tape().constant(ArrayD::zeros(vec![5, 2])))
    }
}

#[test]
fn a_shape_panic_inside_a_container_names_the_layer_path() {
    let inner = Sequential::new().add(Dense::new(3)).add(Mismatched);
    let model = Sequential::<f32>::new()
        .add(Dense::new(4))
        .add(inner)
        .with_input_shape(&[2]);
    let tape = Tape::new();
    let x = tape.constant(ArrayD::zeros(vec![4, 2]));
    let payload = catch_unwind(AssertUnwindSafe(|| model.forward(x))).unwrap_err();
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.starts_with("matmul: shapes [4, 3] and [5, 2] are incompatible"),
        "{message}"
    );
    assert!(
        message.ends_with(" in layer 'sequential_0.mismatched_0'"),
        "{message}"
    );
    // The scope is left on unwinding: a panic outside the model names no layer.
    let outside = catch_unwind(|| {
        let tape = Tape::<f32>::new();
        let a = tape.constant(ArrayD::zeros(vec![4, 3]));
        a.matmul(tape.constant(ArrayD::zeros(vec![5, 2])))
            .shape()
            .len()
    })
    .unwrap_err();
    let message = outside
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(!message.contains("in layer"), "{message}");
}

/// `y = x · W + b` over a list of heads summed, with an optional learned scale: every kind
/// of field `register!` takes (a module list, a renamed field, an optional parameter).
struct Heads {
    heads: Vec<Dense<f32>>,
    scale: Option<Param<f32>>,
    forgotten: Param<f32>,
}

impl Module<f32> for Heads {
    fn forward<'t>(&'t self, x: Var<'t, f32>) -> Var<'t, f32> {
        let tape = x.tape();
        let mut y = self.heads[0].forward(x);
        for head in &self.heads[1..] {
            y = y + head.forward(x);
        }
        if let Some(scale) = &self.scale {
            y = y * tape.param(scale);
        }
        y + tape.param(&self.forgotten)
    }
    fn build(&mut self, shape: &[usize], rng: &mut StdRng) -> Vec<usize> {
        let mut out = shape.to_vec();
        for head in &mut self.heads {
            out = head.build(shape, rng);
        }
        out
    }
    // `forgotten` is left out on purpose: `fit` must refuse to train without it.
    tapegrad_nn::register!(f32; modules heads as "head", param scale as "gain");
}

fn heads(scale: bool) -> Heads {
    Heads {
        heads: vec![Dense::new(1), Dense::new(1)],
        scale: scale.then(|| Param::new("gain", ArrayD::ones(vec![1]))),
        forgotten: Param::new("offset", ArrayD::zeros(vec![1])),
    }
}

#[test]
fn register_names_module_lists_renamed_and_optional_fields() {
    let mut layer = heads(true);
    layer.build(&[2], &mut rand::SeedableRng::seed_from_u64(0));
    let names: Vec<String> = layer.named_params().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "head.0.kernel",
            "head.0.bias",
            "head.1.kernel",
            "head.1.bias",
            "gain"
        ]
    );
    let mut mut_names = Vec::new();
    layer.visit_mut(&mut VisitorMut::new(&mut |path, _| {
        mut_names.push(path.to_string())
    }));
    assert_eq!(mut_names, names);

    let mut without = heads(false);
    without.build(&[2], &mut rand::SeedableRng::seed_from_u64(0));
    assert_eq!(without.params().len(), 4);
}

#[test]
fn fit_refuses_a_parameter_the_forward_uses_but_the_layer_does_not_register() {
    let (x, y) = data();
    let mut model = Model::new(heads(false));
    model.compile(Adam::new(0.01).unwrap(), Loss::mse(), &[]);
    let err = model
        .fit(&x, &y, FitOptions::default().epochs(1).verbose(0))
        .unwrap_err();
    match &err {
        FitError::UnregisteredParams(UnregisteredParams { shapes }) => {
            assert_eq!(shapes, &[vec![1]]);
        }
        other => panic!("expected UnregisteredParams, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("register!"), "{message}");

    // The same check in a hand loop, after the first backward.
    let layer = {
        let mut l = heads(false);
        l.build(&[2], &mut rand::SeedableRng::seed_from_u64(0));
        l
    };
    let tape = Tape::new();
    let loss = layer.forward(tape.constant(x.clone().into_dyn())).sum();
    assert!(layer.check_registered(&loss.backward()).is_err());
}
