//! The `TensorBoard` callback in `fit`: Keras' runs and series, at the expected steps,
//! flushed at each epoch's end.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;

use ndarray::{Array1, Array2};
use tapegrad_autograd::Float;
use tapegrad_nn::Module;
use tapegrad_nn::callbacks::{
    BackupAndRestore, BatchLogs, Callback, CallbackError, Control, EpochLogs, StepGradients,
    TensorBoard, TrainingState, UpdateFreq,
};
use tapegrad_nn::layers::{Activation, Dense, Sequential};
use tapegrad_nn::model::{FitOptions, Loss, Metric, Model};
use tapegrad_nn::tensorboard::proto::ValueKind;
use tapegrad_optim::Sgd;

use super::{FailAt, event_files, read_events, run_values, scalars, scratch_dir};

/// 40 samples of 3 features in 3 classes.
fn data() -> (Array2<f32>, Array2<f32>) {
    let x = Array2::from_shape_fn((40, 3), |(i, j)| ((i * 3 + j) % 7) as f32 / 7.0);
    let y = Array1::from_shape_fn(40, |i| (i % 3) as f32).insert_axis(ndarray::Axis(1));
    (x, y)
}

fn model() -> Model<f32, Sequential<f32>> {
    let mut model = Model::new(
        Sequential::new()
            .add(Dense::new(8).activation(Activation::Relu))
            .add(Dense::new(3)),
    );
    model.compile(
        Sgd::new(0.05).unwrap(),
        Loss::sparse_categorical_cross_entropy(),
        &[Metric::Accuracy],
    );
    model
}

/// Counts, at each epoch's end, the `epoch_loss` points already in the `train` run's files.
struct Probe {
    train: PathBuf,
    seen: Rc<RefCell<Vec<usize>>>,
}

impl<T: Float> Callback<T> for Probe {
    fn name(&self) -> &'static str {
        "Probe"
    }
    fn on_epoch_end(
        &mut self,
        _logs: &EpochLogs<'_>,
        _state: &mut TrainingState<'_, T>,
    ) -> Result<Control, CallbackError> {
        self.seen
            .borrow_mut()
            .push(scalars(&self.train, "epoch_loss").len());
        Ok(Control::Continue)
    }
}

/// Each epoch and the first kernel's gradient at its last step.
type LastSteps = Rc<RefCell<Vec<(usize, Vec<f32>)>>>;

/// Keeps a copy of the first kernel's gradient at the last step of each epoch.
struct GradientProbe {
    last_steps: LastSteps,
}

impl Callback<f32> for GradientProbe {
    fn name(&self) -> &'static str {
        "GradientProbe"
    }

    fn on_gradients(&mut self, batch: &BatchLogs, gradients: &StepGradients<'_, f32>) {
        if batch.batch + 1 == batch.batches {
            let (path, kernel) = gradients.named().next().unwrap();
            assert_eq!(path, "dense_0.kernel");
            let values = kernel.iter().copied().collect();
            self.last_steps.borrow_mut().push((batch.epoch, values));
        }
    }
}

#[test]
fn fit_writes_keras_runs_and_series_at_their_steps() {
    let dir = scratch_dir("callback");
    let seen = Rc::new(RefCell::new(Vec::new()));
    let last_steps = Rc::new(RefCell::new(Vec::new()));
    let mut model = model();
    let (x, y) = data();
    let options = FitOptions::default()
        .epochs(3)
        .batch_size(8)
        .validation_split(0.2)
        .verbose(0)
        .callback(
            TensorBoard::new(&dir)
                .histogram_freq(2)
                .update_freq(UpdateFreq::Batches(2)),
        )
        .callback(Probe {
            train: dir.join("train"),
            seen: Rc::clone(&seen),
        })
        .callback(GradientProbe {
            last_steps: Rc::clone(&last_steps),
        });
    let history = model.fit(&x, &y, options).unwrap();
    let (train, validation) = (dir.join("train"), dir.join("validation"));
    assert_eq!(event_files(&train).len(), 1);
    assert_eq!(event_files(&validation).len(), 1);

    // Each epoch's points are in the file when the epoch ends.
    assert_eq!(*seen.borrow(), [1, 2, 3]);

    let as_points = |values: &[f64]| -> Vec<(i64, f32)> {
        values
            .iter()
            .enumerate()
            .map(|(e, &v)| (e as i64, v as f32))
            .collect()
    };
    assert_eq!(scalars(&train, "epoch_loss"), as_points(history.loss()));
    assert_eq!(
        scalars(&train, "epoch_accuracy"),
        as_points(history.get("accuracy").unwrap())
    );
    assert_eq!(
        scalars(&train, "epoch_learning_rate"),
        as_points(&[0.05; 3])
    );
    assert_eq!(
        scalars(&validation, "epoch_loss"),
        as_points(history.val_loss().unwrap())
    );
    assert_eq!(
        scalars(&validation, "epoch_accuracy"),
        as_points(history.get("val_accuracy").unwrap())
    );
    assert!(scalars(&validation, "epoch_learning_rate").is_empty());

    // 32 training samples in batches of 8: 4 steps an epoch, 12 in all; every second one.
    let batch: Vec<i64> = scalars(&train, "batch_loss").iter().map(|p| p.0).collect();
    assert_eq!(batch, [2, 4, 6, 8, 10, 12]);

    // Histograms of every parameter and of its gradient at epochs 0 and 2.
    let values = run_values(&train);
    for name in [
        "dense_0.kernel",
        "dense_0.bias",
        "dense_1.kernel",
        "dense_1.bias",
    ] {
        for tag in [format!("{name}/histogram"), format!("{name}/gradient")] {
            let steps: Vec<i64> = values
                .iter()
                .filter(|(_, v)| v.tag == tag)
                .map(|(step, v)| {
                    assert!(matches!(v.value, Some(ValueKind::Histo(_))), "{tag}");
                    *step
                })
                .collect();
            assert_eq!(steps, [0, 2], "{tag}");
        }
    }
    // The gradient histogram at epoch 2 is the gradient of that epoch's last step.
    let last_steps = last_steps.borrow();
    assert_eq!(
        last_steps.iter().map(|(e, _)| *e).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    let gradient = &last_steps[2].1;
    let histogram = values
        .iter()
        .find_map(|(step, v)| match &v.value {
            Some(ValueKind::Histo(h)) if v.tag == "dense_0.kernel/gradient" && *step == 2 => {
                Some(h.clone())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(histogram.num, gradient.len() as f64);
    assert_eq!(
        histogram.min,
        gradient.iter().fold(f32::MAX, |a, &b| a.min(b)) as f64
    );
    assert_eq!(
        histogram.max,
        gradient.iter().fold(f32::MIN, |a, &b| a.max(b)) as f64
    );
    // The last histogram of a kernel holds the trained weights.
    let kernel = model.module().params()[0].value().clone();
    let last = values
        .iter()
        .rev()
        .find_map(|(_, v)| match &v.value {
            Some(ValueKind::Histo(h)) if v.tag == "dense_0.kernel/histogram" => Some(h.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(last.num, 3.0 * 8.0);
    assert_eq!(
        last.max,
        kernel.iter().fold(f32::MIN, |a, &b| a.max(b)) as f64
    );

    // The model summary: a table of the parameters, at step 0.
    let (step, summary) = values
        .iter()
        .find(|(_, v)| v.tag == "model_summary/text_summary")
        .unwrap();
    assert_eq!(*step, 0);
    let Some(ValueKind::Tensor(t)) = &summary.value else {
        panic!("a text tensor")
    };
    let text = String::from_utf8(t.string_val[0].clone()).unwrap();
    assert!(text.contains("| dense_0.kernel | [3, 8] | 24 |"), "{text}");
    assert!(text.contains("Trainable parameters: 59"), "{text}");
    assert!(text.contains("SGD"), "{text}");
}

#[test]
fn without_validation_there_is_no_validation_run_and_a_given_summary_is_kept() {
    let dir = scratch_dir("callback-train-only");
    let mut model = model();
    let (x, y) = data();
    let options = FitOptions::default()
        .epochs(2)
        .batch_size(40)
        .verbose(0)
        .callback(TensorBoard::new(&dir).model_summary("Model: \"mlp\"\n___\ndense (Dense)"));
    model.fit(&x, &y, options).unwrap();
    assert!(!dir.join("validation").exists());
    let train = dir.join("train");
    assert_eq!(scalars(&train, "epoch_loss").len(), 2);
    assert!(
        scalars(&train, "batch_loss").is_empty(),
        "update_freq epoch"
    );
    assert!(
        !run_values(&train)
            .iter()
            .any(|(_, v)| v.tag.ends_with("/histogram"))
    );
    let (_, summary) = run_values(&train)
        .into_iter()
        .find(|(_, v)| v.tag == "model_summary/text_summary")
        .unwrap();
    let Some(ValueKind::Tensor(t)) = summary.value else {
        panic!("a text tensor")
    };
    assert_eq!(
        t.string_val[0],
        b"    Model: \"mlp\"\n    ___\n    dense (Dense)\n"
    );
}

#[test]
fn the_logging_callbacks_run_on_rank_0_only() {
    assert!(Callback::<f32>::root_only(&TensorBoard::new("x")));
    assert!(Callback::<f32>::root_only(
        &tapegrad_nn::callbacks::CsvLogger::new("x")
    ));
}

#[test]
fn a_resumed_run_writes_new_files_and_counts_steps_on_from_the_backup() {
    let dir = scratch_dir("callback-resume");
    let (x, y) = data();
    let armed = Rc::new(Cell::new(true));
    let run = || {
        let mut model = model();
        // 40 samples in batches of 8: 5 steps an epoch; backups every 3 steps and at epoch
        // ends; killed at the end of epoch 1 (step 10), after the backup of step 9.
        let options = FitOptions::default()
            .epochs(3)
            .batch_size(8)
            .verbose(0)
            .callback(TensorBoard::new(dir.join("logs")).update_freq(UpdateFreq::Batches(1)))
            .callback(FailAt {
                at: 1,
                armed: Rc::clone(&armed),
            })
            .callback(BackupAndRestore::new(dir.join("backup")).every_steps(3));
        model.fit(&x, &y, options)
    };
    assert!(run().is_err());
    armed.set(false);
    run().unwrap();

    let files = event_files(&dir.join("logs").join("train"));
    assert_eq!(files.len(), 2);
    let points = |file: &PathBuf, tag: &str| -> Vec<i64> {
        read_events(file)
            .into_iter()
            .filter(|e| matches!(&e.what, Some(tapegrad_nn::tensorboard::proto::EventKind::Summary(s)) if s.value[0].tag == tag))
            .map(|e| e.step)
            .collect()
    };
    assert_eq!(
        points(&files[0], "batch_loss"),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(
        points(&files[1], "batch_loss"),
        (10..=15).collect::<Vec<_>>()
    );
    assert_eq!(points(&files[0], "epoch_loss"), [0, 1]);
    assert_eq!(points(&files[1], "epoch_loss"), [1, 2]);
}
