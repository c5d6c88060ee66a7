//! scikit-learn's handwritten digits (1,797 images of 8×8 pixels, bundled in `data/digits/`)
//! with `Sequential` + `fit`: Dense(64, relu) → Dense(10), Adam, sparse categorical
//! cross-entropy, 20 % of the data held out for validation, and early stopping that puts
//! back the weights of the best epoch.
//!
//! ```text
//! cargo run --release --example digits
//! ```

use tapegrad::datasets::bundled_data_dir;
use tapegrad::nn::callbacks::EarlyStopping;
use tapegrad::nn::data::{read_digits_csv, shuffled_indices, take_rows};
use tapegrad::nn::history::StopReason;
use tapegrad::nn::layers::{Activation, Dense, Sequential};
use tapegrad::nn::model::{FitOptions, Loss, Metric, Model};
use tapegrad::optim::AdamConfig;

/// How training went.
#[derive(Debug, Clone)]
pub struct Summary {
    pub train_samples: usize,
    pub validation_samples: usize,
    pub epochs_run: usize,
    /// The epoch whose weights were kept (0-based), when early stopping fired.
    pub best_epoch: Option<usize>,
    pub stopped_early: bool,
    /// Validation accuracy of the final (restored) weights.
    pub validation_accuracy: f64,
}

/// Trains for at most `max_epochs` epochs, stopping after `patience` epochs without a
/// better validation loss.
pub fn run(
    max_epochs: usize,
    patience: usize,
    verbose: u8,
) -> Result<Summary, Box<dyn std::error::Error>> {
    let (pixels, labels) = read_digits_csv(bundled_data_dir().join("digits/digits.csv.gz"))?;
    // The file's last digits come from other writers than its first ones: shuffle once
    // (deterministically) so that the validation split is a fair sample of the whole.
    let order = shuffled_indices(labels.len(), 0);
    let x = take_rows(&pixels, &order).mapv(|p| f32::from(p) / 16.0); // pixels are 0..=16
    let y = take_rows(&labels, &order).mapv(f32::from);

    let mut model = Model::new(
        Sequential::new()
            .add(Dense::new(64).activation(Activation::Relu))
            .add(Dense::new(10)),
    );
    model.compile(
        AdamConfig::new(1e-3).build()?,
        Loss::sparse_categorical_cross_entropy(),
        &[Metric::Accuracy],
    );
    let history = model.fit(
        &x,
        &y,
        FitOptions::default()
            .epochs(max_epochs)
            .batch_size(32)
            .validation_split(0.2)
            .verbose(verbose)
            .seed(0)
            .callback(
                EarlyStopping::new()
                    .monitor("val_loss")
                    .patience(patience)
                    .restore_best_weights(true),
            ),
    )?;

    // Keras' split: the last 20 % of the rows, before `fit` shuffles the training rows.
    let split_at = (x.nrows() as f64 * 0.8).floor() as usize;
    let (x_val, y_val) = (
        x.slice(ndarray::s![split_at.., ..]),
        y.slice(ndarray::s![split_at..]),
    );
    let validation_accuracy = model
        .evaluate(&x_val, &y_val, 256)?
        .get("accuracy")
        .unwrap_or(f64::NAN);

    let (stopped_early, best_epoch) = match history.stop_reason() {
        Some(StopReason::EarlyStopping { best_epoch, .. }) => (true, Some(*best_epoch)),
        _ => (false, None),
    };
    let val_loss = history.val_loss().unwrap_or(&[]);
    let val_accuracy = history.get("val_accuracy").unwrap_or(&[]);
    // Every 10th epoch, then every epoch from the best one on (the patience window).
    let from = best_epoch.unwrap_or(val_loss.len().saturating_sub(1));
    println!("epoch  val_loss  val_accuracy");
    for (epoch, (l, a)) in val_loss.iter().zip(val_accuracy).enumerate() {
        if epoch % 10 == 0 || epoch >= from {
            let mark = if Some(epoch) == best_epoch {
                "  <- best"
            } else {
                ""
            };
            println!("{epoch:>5}  {l:>8.4}  {a:>12.4}{mark}");
        }
    }
    match history.stop_reason() {
        Some(reason) => println!("{reason}"),
        None => println!("ran all {max_epochs} epochs without stopping early"),
    }
    println!(
        "validation accuracy {:.2} % on {} digits (trained on {})",
        100.0 * validation_accuracy,
        x.nrows() - split_at,
        split_at
    );
    Ok(Summary {
        train_samples: split_at,
        validation_samples: x.nrows() - split_at,
        epochs_run: history.epochs(),
        best_epoch,
        stopped_early,
        validation_accuracy,
    })
}

#[allow(dead_code)] // tests call `run` directly
fn main() -> Result<(), Box<dyn std::error::Error>> {
    run(200, 5, 0)?;
    Ok(())
}
