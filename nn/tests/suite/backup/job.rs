//! The training job of the backup tests: a small MLP (with BatchNorm and dropout) or a small
//! CNN, Adam with a per-batch schedule, shuffling, validation, early stopping, a best-only
//! checkpoint and a backup every 2 steps; and the fingerprint of its final state (every
//! value's bits).

use std::fmt::Write as _;
use std::path::Path;

use ndarray::{Array1, Array2, Array4, ArrayD};
use tapegrad_nn::callbacks::{
    BackupAndRestore, BatchLogs, Callback, Control, EarlyStopping, ModelCheckpoint,
};
use tapegrad_nn::history::History;
use tapegrad_nn::layers::{
    Activation, ActivationLayer, BatchNorm, Conv2d, Dense, Dropout, Flatten, Sequential,
};
use tapegrad_nn::model::{FitError, FitOptions, Loss, Metric, Model, SchedulePer};
use tapegrad_nn::module::{Entry, Module, Visitor};
use tapegrad_optim::AdamConfig;
use tapegrad_optim::schedules::ExponentialLr;

/// Which model the job trains.
#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
    Mlp,
    Cnn,
}

impl Kind {
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Mlp => "mlp",
            Kind::Cnn => "cnn",
        }
    }

    pub(super) fn from_name(name: &str) -> Kind {
        if name == "cnn" { Kind::Cnn } else { Kind::Mlp }
    }
}

/// Samples, features and labels of a small 3-class problem (deterministic).
fn data(kind: Kind) -> (ArrayD<f32>, ArrayD<f32>) {
    let n = 80;
    let label = |i: usize| (i * 7 % 3) as f32;
    let y = Array1::from_shape_fn(n, label).into_dyn();
    let noise = |i: usize, j: usize| (((i * 31 + j * 17) % 23) as f32 / 23.0 - 0.5) * 0.6;
    let x = match kind {
        Kind::Mlp => Array2::from_shape_fn((n, 6), |(i, j)| {
            label(i) * (j as f32 - 2.5) / 3.0 + noise(i, j)
        })
        .into_dyn(),
        Kind::Cnn => Array4::from_shape_fn((n, 1, 6, 6), |(i, _, r, c)| {
            label(i) * ((r + c) as f32 - 5.0) / 5.0 + noise(i, r * 6 + c)
        })
        .into_dyn(),
    };
    (x, y)
}

fn model(kind: Kind) -> Sequential<f32> {
    match kind {
        Kind::Mlp => Sequential::new()
            .add(Dense::new(12))
            .add(BatchNorm::new())
            .add(ActivationLayer::new(Activation::Relu))
            .add(Dropout::new(0.3))
            .add(Dense::new(3)),
        Kind::Cnn => Sequential::new()
            .add(Conv2d::new(3, 3).activation(Activation::Relu))
            .add(Flatten::new())
            .add(Dropout::new(0.25))
            .add(Dense::new(3)),
    }
}

/// Kills this process at its `at`-th batch (counted from its start, 1-based): with SIGKILL,
/// or, `in_write`, by a file size limit of half the last backup's size, so that the next
/// backup write is killed in the middle (SIGXFSZ).
pub(super) struct KillAt {
    pub(super) at: Option<usize>,
    pub(super) in_write: bool,
    pub(super) backup: std::path::PathBuf,
    pub(super) seen: usize,
}

impl Callback<f32> for KillAt {
    fn name(&self) -> &'static str {
        "KillAt"
    }

    fn on_batch_end(&mut self, _batch: &BatchLogs) -> Control {
        self.seen += 1;
        if Some(self.seen) != self.at {
            return Control::Continue;
        }
        let pid = std::process::id().to_string();
        let size = std::fs::metadata(&self.backup).map_or(0, |m| m.len());
        if self.in_write && size > 64 {
            let limit = format!("--fsize={}", size / 2);
            let status = std::process::Command::new("prlimit")
                .args(["--pid", &pid, "--core=0", &limit])
                .status();
            if status.is_ok_and(|s| s.success()) {
                return Control::Continue;
            }
        }
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}

/// How the job runs.
pub(super) struct Job<'a> {
    pub(super) kind: Kind,
    pub(super) dir: &'a Path,
    pub(super) backup: bool,
    pub(super) kill: KillAt,
}

impl Job<'_> {
    /// Trains (resuming from the backup in `dir` if there is one) and returns the model
    /// and the history.
    pub(super) fn run(self) -> Result<(Model<f32, Sequential<f32>>, History), FitError> {
        let mut model = Model::new(model(self.kind));
        let opt = AdamConfig::new(0.02).weight_decay(1e-3).build().unwrap();
        model.compile(
            opt,
            Loss::sparse_categorical_cross_entropy(),
            &[Metric::Accuracy],
        );
        let (x, y) = data(self.kind);
        let mut options = FitOptions::default()
            .epochs(8)
            .batch_size(16)
            .validation_split(0.2)
            .seed(11)
            .lr_schedule(ExponentialLr::new(0.02, 0.97).unwrap(), SchedulePer::Batch)
            .callback(self.kill)
            .callback(EarlyStopping::new().patience(3).restore_best_weights(true))
            .callback(ModelCheckpoint::new(self.dir.join("best.safetensors")).save_best_only(true));
        if self.backup {
            options =
                options.callback(BackupAndRestore::new(self.dir.join("backup")).every_steps(2));
        }
        let history = model.fit(&x, &y, options)?;
        Ok((model, history))
    }
}

/// Every value's bits of the model's parameters, buffers and generators, the optimizer's
/// state and rate, and the history (values and stop reason), one line each.
pub(super) fn fingerprint(model: &Model<f32, Sequential<f32>>, history: &History) -> String {
    let mut out = String::new();
    let bits = |out: &mut String, name: &str, values: &mut dyn Iterator<Item = u64>| {
        let _ = write!(out, "{name}:");
        for v in values {
            let _ = write!(out, " {v:x}");
        }
        out.push('\n');
    };
    model
        .module()
        .visit(&mut Visitor::new(&mut |path, entry| match entry {
            Entry::Param(p) => bits(
                &mut out,
                path,
                &mut p.value().iter().map(|v| v.to_bits().into()),
            ),
            Entry::Buffer(b) => bits(
                &mut out,
                path,
                &mut b.value().iter().map(|v| v.to_bits().into()),
            ),
            Entry::Generator(g) => bits(&mut out, path, &mut std::iter::once(g.get())),
        }));
    let opt = model.optimizer().unwrap();
    let state = opt.state_dict(&model.params()).unwrap();
    for (key, value) in &state {
        bits(&mut out, key, &mut value.iter().map(|v| v.to_bits().into()));
    }
    bits(&mut out, "lr", &mut std::iter::once(opt.lr().to_bits()));
    for name in history.names() {
        let column = history.get(name).unwrap();
        bits(&mut out, name, &mut column.iter().map(|v| v.to_bits()));
    }
    let _ = writeln!(out, "stop: {:?}", history.stop_reason());
    out
}
