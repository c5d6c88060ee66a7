//! Learning by backpropagation: a two-layer network (2 → 4 tanh → 1 sigmoid) learns XOR,
//! which no single neuron can. Each step records the forward pass on a tape, `backward`
//! propagates the error back through both layers, and SGD takes a step. The graph of one
//! training step is written as Graphviz DOT.
//!
//! ```text
//! cargo run --release --example xor [-- path/to/xor_step.dot]
//! dot -Tsvg target/xor_step.dot -o xor_step.svg
//! ```

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, array};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad::autograd::{Param, Tape, Var};
use tapegrad::optim::SgdConfig;

/// The network's outputs for the four inputs, the final loss, and where the graph went.
#[derive(Debug, Clone)]
pub struct Summary {
    pub predictions: Array1<f64>,
    pub targets: Array1<f64>,
    pub first_loss: f64,
    pub final_loss: f64,
    /// Whether every prediction is on the right side of 0.5.
    pub solved: bool,
    pub dot_path: PathBuf,
}

/// The network's parameters, initialized uniformly in ±1 from a seeded generator.
struct Network {
    hidden_weight: Param<f64>,
    hidden_bias: Param<f64>,
    output_weight: Param<f64>,
    output_bias: Param<f64>,
}

impl Network {
    fn new(hidden: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut uniform = |shape: &[usize]| {
            ndarray::ArrayD::from_shape_simple_fn(shape, || rng.random_range(-1.0..1.0))
        };
        Network {
            hidden_weight: Param::new("hidden.weight", uniform(&[2, hidden])),
            hidden_bias: Param::new("hidden.bias", uniform(&[hidden])),
            output_weight: Param::new("output.weight", uniform(&[hidden, 1])),
            output_bias: Param::new("output.bias", uniform(&[1])),
        }
    }

    /// Records `sigmoid(tanh(x · W₁ + b₁) · W₂ + b₂)` on `x`'s tape.
    fn forward<'t>(&'t self, x: Var<'t, f64>) -> Var<'t, f64> {
        let tape = x.tape();
        let hidden =
            (x.matmul(tape.param(&self.hidden_weight)) + tape.param(&self.hidden_bias)).tanh();
        (hidden.matmul(tape.param(&self.output_weight)) + tape.param(&self.output_bias)).sigmoid()
    }

    fn params_mut(&mut self) -> [&mut Param<f64>; 4] {
        [
            &mut self.hidden_weight,
            &mut self.hidden_bias,
            &mut self.output_weight,
            &mut self.output_bias,
        ]
    }
}

/// Trains for `epochs` full-batch steps (SGD, lr 0.5, momentum 0.9, mean squared error)
/// and writes the graph of the first step to `dot_path`.
pub fn run(epochs: usize, dot_path: &Path) -> Result<Summary, Box<dyn std::error::Error>> {
    let inputs: Array2<f64> = array![[0., 0.], [0., 1.], [1., 0.], [1., 1.]];
    let targets: Array2<f64> = array![[0.], [1.], [1.], [0.]];
    let (x, y) = (inputs.into_dyn(), targets.into_dyn());

    let mut network = Network::new(4, 7);
    let mut sgd = SgdConfig::new(0.5).momentum(0.9).build()?;
    let mut losses = Vec::with_capacity(epochs);
    for epoch in 0..epochs {
        let (loss, grads) = {
            let tape = Tape::new();
            let output = network.forward(tape.constant(x.clone()));
            let loss = (output - tape.constant(y.clone())).square().mean();
            if epoch == 0 {
                write_dot(dot_path, &tape.to_dot(loss))?;
            }
            (loss.item(), loss.backward()) // backpropagation: one reverse sweep
        };
        losses.push(loss);
        sgd.step(network.params_mut(), &grads)?;
        if epoch % (epochs / 5).max(1) == 0 {
            println!("epoch {epoch:>5}: loss {loss:.6}");
        }
    }

    let tape = Tape::new();
    let predictions: Array1<f64> = network
        .forward(tape.constant(x.clone()))
        .value()
        .iter()
        .copied()
        .collect();
    let targets: Array1<f64> = y.iter().copied().collect();
    let solved = predictions
        .iter()
        .zip(&targets)
        .all(|(p, t)| (p - t).abs() < 0.5);
    for (input, p) in x.outer_iter().zip(&predictions) {
        let (a, b) = (input[0], input[1]);
        println!("{a} xor {b} = {} -> network says {p:.4}", (a != b) as u8);
    }
    println!(
        "XOR {}: loss {:.6} -> {:.6} in {epochs} steps",
        if solved { "solved" } else { "NOT solved" },
        losses.first().copied().unwrap_or(f64::NAN),
        losses.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "the graph of one training step is in {} (render it: dot -Tsvg {} -o xor_step.svg)",
        dot_path.display(),
        dot_path.display()
    );
    Ok(Summary {
        predictions,
        targets,
        first_loss: losses.first().copied().unwrap_or(f64::NAN),
        final_loss: losses.last().copied().unwrap_or(f64::NAN),
        solved,
        dot_path: dot_path.to_path_buf(),
    })
}

fn write_dot(path: &Path, dot: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, dot)
}

#[allow(dead_code)] // tests call `run` directly
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dot_path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/xor_step.dot"));
    let summary = run(2_000, &dot_path)?;
    if !summary.solved {
        return Err("the network did not learn XOR".into());
    }
    Ok(())
}
