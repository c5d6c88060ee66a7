//! tapegrad's ONNX export, checked in a real runtime: every exported layer and model is
//! read, optimized and run by tract (`tract-onnx`) on batches of several sizes (the batch
//! axis is dynamic), and its outputs are compared with tapegrad's inference outputs to 1e-5
//! (f32). One test binary, a module per topic.

mod custom;
mod layers;
mod models;
mod sequence;

use ndarray::ArrayD;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad_autograd::Tape;
use tapegrad_nn::Module;
use tapegrad_nn::module::{EntryMut, VisitorMut};
use tapegrad_nn::onnx;
use tract_onnx::prelude::{Framework, InferenceModelExt, Tensor, tvec};

/// The largest difference allowed between tract's outputs and tapegrad's (f32).
const TOLERANCE: f32 = 1e-5;

/// Reads the ONNX file `bytes` with tract, optimizes it and runs it on `x`.
fn run_tract(bytes: &[u8], x: &ArrayD<f32>) -> ArrayD<f32> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .expect("tract reads the file")
        .into_optimized()
        .expect("tract optimizes the model")
        .into_runnable()
        .expect("tract plans the model");
    let data: Vec<f32> = x.iter().copied().collect();
    let input = Tensor::from_shape(x.shape(), &data).expect("an input tensor");
    let outputs = model
        .run(tvec!(input.into()))
        .expect("tract runs the model");
    let view = outputs[0].to_array_view::<f32>().expect("f32 outputs");
    ArrayD::from_shape_vec(view.shape().to_vec(), view.iter().copied().collect()).unwrap()
}

/// tapegrad's output for `x`, without gradient recording.
fn predict<M: Module<f32> + ?Sized>(module: &M, x: &ArrayD<f32>) -> ArrayD<f32> {
    let tape = Tape::new();
    tape.no_grad(|| module.forward(tape.constant(x.clone())).to_array())
}

/// The largest absolute difference between `a` and `b`, which must have the same shape.
fn max_difference(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape(), "the runtime's output shape");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Exports `module` (in whatever mode it is: the export is the inference form) for samples
/// of `input_shape`, then checks tract's outputs against the module's in eval mode on
/// each input of `inputs` (batches of different sizes). Returns the file's bytes.
#[track_caller]
fn assert_runs_the_same<M: Module<f32>>(
    module: &mut M,
    input_shape: &[usize],
    inputs: &[ArrayD<f32>],
) -> Vec<u8> {
    let bytes = onnx::to_bytes(&*module, input_shape).expect("the module exports");
    module.set_training(false);
    for x in inputs {
        assert_eq!(&x.shape()[1..], input_shape, "a batch of samples");
        let expected = predict(&*module, x);
        let found = run_tract(&bytes, x);
        let difference = max_difference(&found, &expected);
        assert!(
            difference <= TOLERANCE,
            "batch of {}: tract's outputs differ from tapegrad's by up to {difference:e}",
            x.shape()[0]
        );
    }
    bytes
}

/// A batch of `batch` samples of `shape`, uniform in `[low, high)`, from `seed`.
fn uniform(batch: usize, shape: &[usize], low: f32, high: f32, seed: u64) -> ArrayD<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut full = vec![batch];
    full.extend_from_slice(shape);
    ArrayD::from_shape_simple_fn(full, || rng.random_range(low..high))
}

/// Batches of 1, 3 and 7 samples of `shape`, uniform in `[-2, 2)`.
fn batches(shape: &[usize]) -> Vec<ArrayD<f32>> {
    [1, 3, 7]
        .iter()
        .enumerate()
        .map(|(seed, &batch)| uniform(batch, shape, -2.0, 2.0, seed as u64))
        .collect()
}

/// Every parameter and buffer of `module` redrawn uniform in `[low, high)`: gains, offsets
/// and running statistics away from their initial ones and zeros.
fn randomize<M: Module<f32> + ?Sized>(module: &mut M, low: f32, high: f32, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut draw =
        |shape: Vec<usize>| ArrayD::from_shape_simple_fn(shape, || rng.random_range(low..high));
    module.visit_mut(&mut VisitorMut::new(&mut |_, entry| match entry {
        EntryMut::Param(p) => p.assign(draw(p.shape().to_vec())),
        EntryMut::Buffer(b) => *b.value_mut() = draw(b.shape()),
    }));
}
