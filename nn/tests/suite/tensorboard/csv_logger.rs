//! `CsvLogger`: a header and one row per epoch, replaced or appended to, and continued
//! exactly by a run resumed from a backup.

use std::cell::Cell;
use std::fs;
use std::path::Path;
use std::rc::Rc;

use ndarray::{Array1, Array2};
use tapegrad_nn::callbacks::{BackupAndRestore, CsvLogger};
use tapegrad_nn::history::History;
use tapegrad_nn::layers::{Dense, Dropout, Sequential};
use tapegrad_nn::model::{FitError, FitOptions, Loss, Metric, Model};
use tapegrad_optim::Adam;

use super::{FailAt, scratch_dir};

/// Fits a small classifier for 5 epochs (5 steps each, validation) with `csv` first.
fn fit(csv: CsvLogger, fail: Option<FailAt>, backup: Option<&Path>) -> Result<History, FitError> {
    let mut model = Model::new(
        Sequential::new()
            .add(Dense::new(6))
            .add(Dropout::new(0.1))
            .add(Dense::new(2)),
    );
    model.compile(
        Adam::new(0.01).unwrap(),
        Loss::sparse_categorical_cross_entropy(),
        &[Metric::Accuracy],
    );
    let x = Array2::from_shape_fn((50, 3), |(i, j)| ((i * 5 + j) % 9) as f32 / 9.0);
    let y = Array1::from_shape_fn(50, |i| (i % 2) as f32).insert_axis(ndarray::Axis(1));
    let mut options = FitOptions::default()
        .epochs(5)
        .batch_size(8)
        .validation_split(0.2)
        .seed(3)
        .verbose(0)
        .callback(csv);
    if let Some(fail) = fail {
        options = options.callback(fail);
    }
    if let Some(dir) = backup {
        options = options.callback(BackupAndRestore::new(dir).every_steps(3));
    }
    model.fit(&x, &y, options)
}

#[test]
fn one_row_per_epoch_in_the_history_order_equal_to_the_history() {
    let dir = scratch_dir("csv-rows");
    let path = dir.join("log.csv");
    let history = fit(CsvLogger::new(&path), None, None).unwrap();
    let csv = fs::read_to_string(&path).unwrap();
    assert_eq!(csv, history.to_csv());
    assert!(
        csv.starts_with("epoch,loss,accuracy,val_loss,val_accuracy\n0,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 6);
}

#[test]
fn a_new_run_replaces_the_file_or_appends_without_a_second_header() {
    let dir = scratch_dir("csv-append");
    let path = dir.join("log.csv");
    fit(CsvLogger::new(&path), None, None).unwrap();
    let first = fs::read_to_string(&path).unwrap();
    fit(CsvLogger::new(&path), None, None).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), first, "replaced");

    fit(CsvLogger::new(&path).append(true), None, None).unwrap();
    let appended = fs::read_to_string(&path).unwrap();
    let rows = first.split_once('\n').unwrap().1;
    assert_eq!(appended, format!("{first}{rows}"));
    assert_eq!(appended.matches("epoch,").count(), 1);

    // Appending to a file that is not there writes the header.
    let fresh = dir.join("fresh.csv");
    fit(CsvLogger::new(&fresh).append(true), None, None).unwrap();
    assert_eq!(fs::read_to_string(&fresh).unwrap(), first);
}

#[test]
fn a_resumed_run_continues_the_file_as_an_uninterrupted_run_writes_it() {
    let dir = scratch_dir("csv-resume");
    let whole = dir.join("whole.csv");
    fit(CsvLogger::new(&whole), None, None).unwrap();
    let expected = fs::read_to_string(&whole).unwrap();

    for (append, at) in [(false, 2), (true, 0), (false, 4)] {
        let path = dir.join(format!("resumed-{append}-{at}.csv"));
        let backup = dir.join(format!("backup-{append}-{at}"));
        let armed = Rc::new(Cell::new(true));
        let csv = || CsvLogger::new(&path).append(append);
        let fail = || {
            Some(FailAt {
                at,
                armed: Rc::clone(&armed),
            })
        };
        assert!(fit(csv(), fail(), Some(&backup)).is_err());
        let killed = fs::read_to_string(&path).unwrap();
        assert_eq!(
            killed.lines().count(),
            at + 2,
            "the killed run wrote epoch {at}'s row"
        );
        armed.set(false);
        fit(csv(), fail(), Some(&backup)).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            expected,
            "append {append}, killed at {at}"
        );
    }
}
