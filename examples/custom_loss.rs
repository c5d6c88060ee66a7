//! A loss of your own is a plain function of `Var`s: its gradient comes from autograd,
//! `gradcheck` proves it against finite differences, and `fit` trains with it.
//!
//! The pinball (quantile) loss `mean(max(τ·e, (τ − 1)·e))`, `e = target − prediction`,
//! is minimized by the τ-quantile of the targets instead of their mean. Fitted to noisy
//! data `y = 2x + 1 + (0.2 + x)·z` (z standard normal, so the spread grows with x), three
//! lines learn the 10 %, 50 % and 90 % quantiles: the fraction of points below each line
//! is τ, and its slope and intercept match the closed form `(2 + z_τ)·x + 1 + 0.2·z_τ`.
//!
//! ```text
//! cargo run --release --example custom_loss
//! ```

use ndarray::{Array1, Array2, ArrayD};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use tapegrad::autograd::{Float, GradcheckOptions, Var, gradcheck};
use tapegrad::nn::layers::{Dense, Sequential};
use tapegrad::nn::model::{FitOptions, Loss, Model};
use tapegrad::optim::AdamConfig;

/// The pinball loss of quantile `tau`: `mean(max(τ·e, (τ − 1)·e))` with `e = target − prediction`.
pub fn pinball<'t, T: Float>(prediction: Var<'t, T>, target: Var<'t, T>, tau: f64) -> Var<'t, T> {
    let error = target - prediction;
    (error * T::from_f64(tau))
        .maximum(error * T::from_f64(tau - 1.0))
        .mean()
}

/// One quantile's line: learned and closed-form coefficients, and the share of points below.
#[derive(Debug, Clone, Copy)]
pub struct QuantileFit {
    pub tau: f64,
    pub slope: f64,
    pub intercept: f64,
    pub true_slope: f64,
    pub true_intercept: f64,
    /// The fraction of the samples whose target lies below the line (ideally `tau`).
    pub coverage: f64,
}

/// The quantiles of the standard normal used here (z_τ for τ = 0.1, 0.5, 0.9).
const QUANTILES: [(f64, f64); 3] = [(0.1, -1.281_551_565_5), (0.5, 0.0), (0.9, 1.281_551_565_5)];

/// Checks the loss's gradient, then fits the three quantile lines to `samples` noisy points
/// for `epochs` epochs each.
pub fn run(samples: usize, epochs: usize) -> Result<Vec<QuantileFit>, Box<dyn std::error::Error>> {
    // 1. gradcheck: the gradient autograd derives agrees with finite differences.
    let mut rng = StdRng::seed_from_u64(3);
    let mut random = |n: usize| -> ArrayD<f64> {
        Array1::from_shape_simple_fn(n, || rng.sample(StandardNormal)).into_dyn()
    };
    let (prediction, target) = (random(16), random(16));
    for (tau, _) in QUANTILES {
        gradcheck(
            |_tape, v| pinball(v[0], v[1], tau),
            &[prediction.clone(), target.clone()],
            &GradcheckOptions::default(),
        )?;
    }
    println!("gradcheck: the pinball loss's gradients match finite differences");

    // 2. Noisy data whose spread grows with x.
    let mut rng = StdRng::seed_from_u64(0);
    let x = Array2::from_shape_simple_fn((samples, 1), || rng.random::<f64>());
    let y = x.mapv(|x| {
        let z: f64 = rng.sample(StandardNormal);
        2.0 * x + 1.0 + (0.2 + x) * z
    });

    // 3. One line per quantile, trained with `fit` on the custom loss.
    let mut fits = Vec::new();
    for (tau, z) in QUANTILES {
        let mut model = Model::new(Sequential::<f64>::new().add(Dense::new(1)));
        model.compile(
            AdamConfig::new(0.01).build()?,
            Loss::new(format!("pinball_{tau}"), move |p, t| pinball(p, t, tau)),
            &[],
        );
        model.fit(
            &x,
            &y,
            FitOptions::default()
                .epochs(epochs)
                .batch_size(250)
                .verbose(0),
        )?;
        let prediction = model.predict(&x, 1024)?;
        let below = y.iter().zip(&prediction).filter(|(y, p)| y < p).count();
        let params = model.params();
        let fit = QuantileFit {
            tau,
            slope: params[0].value()[[0, 0]],
            intercept: params[1].value()[[0]],
            true_slope: 2.0 + z,
            true_intercept: 1.0 + 0.2 * z,
            coverage: below as f64 / samples as f64,
        };
        println!(
            "tau {:.1}: y = {:.3} x + {:.3} (closed form {:.3} x + {:.3}), {:.1} % of the points below",
            fit.tau,
            fit.slope,
            fit.intercept,
            fit.true_slope,
            fit.true_intercept,
            100.0 * fit.coverage
        );
        fits.push(fit);
    }
    Ok(fits)
}

#[allow(dead_code)] // tests call `run` directly
fn main() -> Result<(), Box<dyn std::error::Error>> {
    run(5_000, 200)?;
    Ok(())
}
