//! One sigmoid neuron with three inputs, trained twice from the same initial weights for
//! 10,000 iterations: once with the article's hand-written update rule
//! `weights += inputsᵀ · (error × output × (1 − output))`, once with gradients from
//! autograd of `½ Σ error²`. Both runs must agree to 1e-7.
//!
//! ```text
//! cargo run --release --example neuron
//! ```

use ndarray::{Array1, Array2, array};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad::autograd::{Param, Tape};
use tapegrad::optim::SgdConfig;

/// Both trained weight vectors, how far apart they are, and each one's prediction for
/// the new situation `[1, 0, 0]`.
#[derive(Debug, Clone)]
pub struct Summary {
    pub initial: Array1<f64>,
    pub by_hand: Array1<f64>,
    pub by_autograd: Array1<f64>,
    pub max_difference: f64,
    pub prediction_by_hand: f64,
    pub prediction_by_autograd: f64,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Trains the neuron for `iterations` iterations both ways.
pub fn run(iterations: usize) -> Result<Summary, Box<dyn std::error::Error>> {
    let inputs: Array2<f64> = array![[0., 0., 1.], [1., 1., 1.], [1., 0., 1.], [0., 1., 1.]];
    let outputs: Array2<f64> = array![[0.], [1.], [1.], [0.]];
    // The article's `2 * random((3, 1)) - 1`, with a seeded generator.
    let mut rng = StdRng::seed_from_u64(1);
    let initial = Array2::from_shape_simple_fn((3, 1), || 2.0 * rng.random::<f64>() - 1.0);

    // 1. By hand: the derivative of the sigmoid is output × (1 − output).
    let mut weights = initial.clone();
    for _ in 0..iterations {
        let output = inputs.dot(&weights).mapv(sigmoid);
        let error = &outputs - &output;
        weights += &inputs.t().dot(&(error * &output * (1.0 - &output)));
    }

    // 2. By autograd: gradient descent (lr 1) on ½ Σ error², whose gradient is minus the
    //    hand-written adjustment.
    let mut param = Param::new("weights", initial.clone().into_dyn());
    let mut sgd = SgdConfig::new(1.0).build()?;
    let (x, y) = (inputs.clone().into_dyn(), outputs.clone().into_dyn());
    for _ in 0..iterations {
        let grads = {
            let tape = Tape::new();
            let output = tape
                .constant(x.clone())
                .matmul(tape.param(&param))
                .sigmoid();
            let error = tape.constant(y.clone()) - output;
            (error.square().sum() * 0.5).backward()
        };
        sgd.step([&mut param], &grads)?;
    }

    let by_hand = weights.column(0).to_owned();
    let by_autograd = param.value().iter().copied().collect::<Array1<f64>>();
    let max_difference = (&by_hand - &by_autograd)
        .iter()
        .fold(0.0_f64, |m, d| m.max(d.abs()));
    let new_input = array![1.0, 0.0, 0.0];
    let summary = Summary {
        initial: initial.column(0).to_owned(),
        prediction_by_hand: sigmoid(new_input.dot(&by_hand)),
        prediction_by_autograd: sigmoid(new_input.dot(&by_autograd)),
        by_hand,
        by_autograd,
        max_difference,
    };
    println!("initial weights:     {:.8}", summary.initial);
    println!("weights by hand:     {:.8}", summary.by_hand);
    println!("weights by autograd: {:.8}", summary.by_autograd);
    println!(
        "largest difference:  {:.3e} ({} 1e-7)",
        summary.max_difference,
        if summary.max_difference < 1e-7 {
            "equal: below"
        } else {
            "NOT equal: above"
        }
    );
    println!(
        "new situation [1, 0, 0] -> {:.8} (by hand), {:.8} (by autograd)",
        summary.prediction_by_hand, summary.prediction_by_autograd
    );
    Ok(summary)
}

#[allow(dead_code)] // tests call `run` directly
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let summary = run(10_000)?;
    if summary.max_difference >= 1e-7 {
        return Err("the two trainings disagree by more than 1e-7".into());
    }
    Ok(())
}
