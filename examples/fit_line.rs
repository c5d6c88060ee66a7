//! The "hello world" of deep learning: learn `y = 5x + 1` from six points with one dense
//! unit, plain SGD (lr 0.01) and the mean squared error, for 500 epochs; then the same fit
//! with the bare tape, no `nn` at all.
//!
//! ```text
//! cargo run --release --example fit_line
//! ```

use ndarray::{Array1, arr0, array};
use tapegrad::autograd::{Param, Tape};
use tapegrad::nn::layers::{Dense, Sequential};
use tapegrad::nn::model::{FitOptions, Loss, Model};
use tapegrad::optim::SgdConfig;

/// What both fits learned.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// `nn` (Keras-style `fit`): weight, bias and the prediction for x = 10.
    pub weight: f32,
    pub bias: f32,
    pub prediction: f32,
    /// The bare tape: weight, bias and the prediction for x = 10.
    pub tape_weight: f32,
    pub tape_bias: f32,
    pub tape_prediction: f32,
}

/// Fits the line twice, for `epochs` epochs (the article: 500), printing what it learns.
pub fn run(epochs: usize) -> Result<Summary, Box<dyn std::error::Error>> {
    let xs = array![[-1.0_f32], [0.0], [1.0], [2.0], [3.0], [4.0]];
    let ys = xs.mapv(|x| 5.0 * x + 1.0);

    // 1. Keras' model: Dense(units=1, input_shape=[1]), sgd, mean_squared_error.
    let mut model = Model::new(Sequential::new().add(Dense::new(1)));
    model.compile(SgdConfig::new(0.01).build()?, Loss::mse(), &[]);
    let history = model.fit(&xs, &ys, FitOptions::default().epochs(epochs).verbose(0))?;
    let params = model.params();
    let (weight, bias) = (params[0].value()[[0, 0]], params[1].value()[[0]]);
    let prediction = model.predict(&array![[10.0_f32]], 1)?[[0, 0]];
    println!(
        "nn:   loss {:.6} -> {:.6} after {} epochs",
        history.loss()[0],
        history.loss()[history.epochs() - 1],
        history.epochs()
    );
    println!("nn:   weight {weight:.5}, bias {bias:.5}, prediction for x = 10: {prediction:.5}");

    // 2. The same fit on the bare tape: record, backward, step.
    let x = Array1::from_iter(xs.iter().copied()).into_dyn();
    let y = Array1::from_iter(ys.iter().copied()).into_dyn();
    let mut w = Param::new("w", arr0(0.0_f32).into_dyn());
    let mut b = Param::new("b", arr0(0.0_f32).into_dyn());
    let mut sgd = SgdConfig::new(0.01).build()?;
    for _ in 0..epochs {
        let grads = {
            let tape = Tape::new();
            let prediction = tape.constant(x.clone()) * tape.param(&w) + tape.param(&b);
            let loss = (prediction - tape.constant(y.clone())).square().mean();
            loss.backward()
        };
        sgd.step([&mut w, &mut b], &grads)?;
    }
    let (tape_weight, tape_bias) = (w.value()[[]], b.value()[[]]);
    let tape_prediction = tape_weight * 10.0 + tape_bias;
    println!(
        "tape: weight {tape_weight:.5}, bias {tape_bias:.5}, prediction for x = 10: {tape_prediction:.5}"
    );

    Ok(Summary {
        weight,
        bias,
        prediction,
        tape_weight,
        tape_bias,
        tape_prediction,
    })
}

#[allow(dead_code)] // tests call `run` directly
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let summary = run(500)?;
    println!(
        "y = 5x + 1 predicts 51 for x = 10; the article's Keras run printed 50.98739, tapegrad {:.5}",
        summary.prediction
    );
    Ok(())
}
