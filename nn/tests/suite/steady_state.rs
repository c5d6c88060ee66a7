//! What a training step allocates once the loop is warm: the heap allocations (count and
//! bytes) of each step of an MLP and a CNN trained by `Model::fit`, and of a makemore
//! Transformer trained by makemore's hand-written loop, counted by the binary's counting
//! allocator on a one-thread pool (`counting_allocator`).
//!
//! Every array a step computes (activations, gradients, workspaces, the batch `fit`
//! gathers) comes from the library's buffer pool and goes back to it. Two things still
//! allocate, and each test asserts both exactly apart:
//!
//! - the `gemm` crate, inside every matrix product it computes (above 4,096 multiply-adds):
//!   a flag per block of rows and, when it packs an operand, its packing buffer. Its share
//!   depends on the CPU (its blocking follows the caches and the vector width), so the tests
//!   check that it is the same every step, not its size;
//! - the tape's node arena: one chunk per 256 nodes and the list of chunks (its nodes
//!   borrow the tape's lifetime, so no drop hook can hand the chunks back), and in the
//!   hand-written loop the list `params_mut()` returns, which the optimizer consumes.

use std::cell::RefCell;
use std::rc::Rc;

use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad_autograd::Tape;
use tapegrad_nn::Module;
use tapegrad_nn::callbacks::{BatchLogs, Callback, Control};
use tapegrad_nn::layers::{
    Activation, Conv2d, DecoderBlock, Dense, Embedding, Flatten, LayerNorm, Linear, MaxPool2d,
    Padding, PositionalEmbedding, Reshape, Sequential,
};
use tapegrad_nn::losses::{CrossEntropy, cross_entropy};
use tapegrad_nn::model::{FitOptions, Loss, Model};
use tapegrad_optim::{AdamConfig, AdamWConfig, Optimizer, SgdConfig};

use crate::counting_allocator::{
    Allocated, Origins, attributed, on_one_thread, per_step, start_attributing, stop_attributing,
};

/// What the steps of one run allocated: each step's totals, and one step's by origin.
struct Measured {
    steps: Vec<Allocated>,
    origins: Origins,
}

/// Records the thread's allocation totals at the end of every batch, into a list made
/// before training (so recording allocates nothing), and sorts the allocations of the step
/// that ends at batch `attributed + 1` by origin.
struct CountAtBatchEnd {
    marks: Rc<RefCell<Vec<Allocated>>>,
    attributed: usize,
    origins: Rc<RefCell<Origins>>,
}

impl Callback<f32> for CountAtBatchEnd {
    fn name(&self) -> &'static str {
        "count_at_batch_end"
    }
    fn on_batch_end(&mut self, logs: &BatchLogs) -> Control {
        let now = Allocated::now();
        if logs.batch == self.attributed + 1 {
            *self.origins.borrow_mut() = stop_attributing();
        }
        let mut marks = self.marks.borrow_mut();
        assert!(marks.len() < marks.capacity(), "room for every batch");
        marks.push(now);
        if logs.batch == self.attributed {
            start_attributing();
        }
        Control::Continue
    }
}

/// `batches · batch` samples of `shape` (per sample) with one of `classes` labels each,
/// from a seeded generator.
fn labelled(
    batches: usize,
    batch: usize,
    shape: &[usize],
    classes: usize,
) -> (ArrayD<f32>, ArrayD<f32>) {
    let mut rng = StdRng::seed_from_u64(29);
    let n = batches * batch;
    let mut x_shape = vec![n];
    x_shape.extend_from_slice(shape);
    let len = x_shape.iter().product();
    let x = ArrayD::from_shape_vec(
        IxDyn(&x_shape),
        (0..len).map(|_| rng.random::<f32>()).collect(),
    )
    .expect("n samples");
    let y = ArrayD::from_shape_vec(
        IxDyn(&[n]),
        (0..n)
            .map(|_| rng.random_range(0..classes) as f32)
            .collect(),
    )
    .expect("n labels");
    (x, y)
}

/// The allocations of each step of one epoch of `fit` over `batches` batches (from the end
/// of one batch to the end of the next: the optimizer's step, the next batch's rows,
/// forward, loss and backward), the fourth step's by origin.
fn fit_steps(
    module: Sequential<f32>,
    optimizer: impl Optimizer<f32> + Send + 'static,
    (x, y): (ArrayD<f32>, ArrayD<f32>),
    batches: usize,
    batch: usize,
) -> Measured {
    let marks = Rc::new(RefCell::new(Vec::with_capacity(batches)));
    let origins = Rc::new(RefCell::new(Origins::default()));
    let mut model = Model::new(module);
    model.compile(optimizer, Loss::sparse_categorical_cross_entropy(), &[]);
    let options = FitOptions::default()
        .batch_size(batch)
        .verbose(0)
        .callback(CountAtBatchEnd {
            marks: marks.clone(),
            attributed: 3,
            origins: origins.clone(),
        });
    model.fit(&x, &y, options).expect("training runs");
    let marks = marks.borrow();
    let origins = *origins.borrow();
    Measured {
        steps: marks.windows(2).map(|w| w[1].since(w[0])).collect(),
        origins,
    }
}

/// The makemore Transformer's layers (makemore's defaults: 4 blocks of 4 heads, width 64)
/// for 27 symbols and rows of 16.
fn transformer() -> Sequential<f32> {
    let (vocab, block, width) = (27, 16, 64);
    let mut model = Sequential::new()
        .add(Embedding::new(vocab, width))
        .add(PositionalEmbedding::new(block, width));
    for _ in 0..4 {
        model = model.add(DecoderBlock::new(width, 4));
    }
    model
        .add(LayerNorm::new())
        .add(Linear::new(width, vocab).bias_enabled(false))
        .with_input_shape(&[block])
}

/// makemore's training loop for `steps` steps, then one more by origin (AdamW, lr 5e-4,
/// batches of 32 random rows, cross-entropy with the ignored index), the batch gathered
/// into buffers made before the loop.
fn transformer_steps(steps: usize) -> Measured {
    let (vocab, block, rows) = (27, 16, 32);
    let mut model = transformer();
    let mut optimizer = AdamWConfig::new(5e-4)
        .betas(0.9, 0.99)
        .build()
        .expect("valid");
    let mut rng = StdRng::seed_from_u64(3407);
    let mut x = ArrayD::<f32>::zeros(IxDyn(&[rows, block]));
    let mut targets = vec![0_i64; rows * block];
    let mut step = || {
        // Rows as makemore pads them: the last positions of each row are ignored (-1).
        for (k, (i, t)) in x.iter_mut().zip(&mut targets).enumerate() {
            *i = rng.random_range(0..vocab) as f32;
            *t = if k % block < block - 3 {
                rng.random_range(0..vocab as i64)
            } else {
                -1
            };
        }
        let grads = {
            let tape = Tape::new();
            let logits = model.forward(tape.constant_ref(&x));
            cross_entropy(logits, &targets, CrossEntropy::default()).backward()
        };
        optimizer
            .step(model.params_mut(), &grads)
            .expect("finite gradients");
    };
    let steps = per_step(steps, &mut step);
    Measured {
        steps,
        origins: attributed(step),
    }
}

/// Checks that every step after the second allocates the same, that one step's
/// allocations split into the gemm crate's and `rest`, and prints each model's figures.
#[track_caller]
fn assert_steady(name: &str, measured: &Measured, rest: Allocated) {
    let (steps, origins) = (&measured.steps, measured.origins);
    eprintln!(
        "{name}: first {:?}, then {:?}; one step by origin: {origins:?}",
        steps[0],
        &steps[1..]
    );
    let steady = steps[2];
    assert!(
        steps[2..].iter().all(|c| *c == steady),
        "{name}: steps after the second allocate differently: {steps:?}"
    );
    assert_eq!(
        origins.rest, rest,
        "{name}: allocations outside the gemm crate"
    );
    assert_eq!(
        (
            origins.gemm.count + origins.rest.count,
            origins.gemm.bytes + origins.rest.bytes
        ),
        (steady.count, steady.bytes),
        "{name}: the step split by origin is a steady step"
    );
}

#[test]
fn a_warm_mlp_step_of_fit_allocates_only_in_gemm_and_the_tapes_arena() {
    let (batches, batch) = (8, 32);
    let measured = on_one_thread(|| {
        let module = Sequential::new()
            .add(Dense::new(256).activation(Activation::Relu))
            .add(Dense::new(10));
        let sgd = SgdConfig::new(0.1).build().expect("valid");
        let data = labelled(batches, batch, &[784], 10);
        fit_steps(module, sgd, data, batches, batch)
    });
    // The arena's list of chunks and its one chunk.
    let arena = Allocated {
        count: 2,
        bytes: 2_144,
    };
    assert_steady("mlp", &measured, arena);
}

#[test]
fn a_warm_cnn_step_of_fit_allocates_only_in_gemm_and_the_tapes_arena() {
    let (batches, batch) = (6, 32);
    let measured = on_one_thread(|| {
        let conv = |filters| {
            Conv2d::new(filters, 3)
                .padding(Padding::Same)
                .activation(Activation::Relu)
        };
        let module = Sequential::new()
            .add(Reshape::new(&[1, 28, 28]))
            .add(conv(32))
            .add(MaxPool2d::new(2))
            .add(conv(64))
            .add(MaxPool2d::new(2))
            .add(Flatten::new())
            .add(Dense::new(128).activation(Activation::Relu))
            .add(Dense::new(10));
        let adam = AdamConfig::new(1e-3).build().expect("valid");
        let data = labelled(batches, batch, &[28, 28], 10);
        fit_steps(module, adam, data, batches, batch)
    });
    // The arena's list of chunks and its one chunk.
    let arena = Allocated {
        count: 2,
        bytes: 4_192,
    };
    assert_steady("cnn", &measured, arena);
}

#[test]
fn a_warm_transformer_step_allocates_only_in_gemm_the_tapes_arena_and_params_mut() {
    let measured = on_one_thread(|| transformer_steps(6));
    // The arena's list and two chunks of 256 nodes (16 KiB each), and the list of the 53
    // parameters `params_mut()` hands the optimizer.
    let arena_and_params = Allocated {
        count: 4,
        bytes: 33_288,
    };
    assert_steady("transformer", &measured, arena_and_params);
}
