//! The job that `resume.rs` starts under `run-mpi 2` and kills: a small MLP with BatchNorm
//! and dropout, Adam with weight decay and a per-batch schedule, shuffling, validation and
//! a metric, backed up every 2 steps; one rank kills itself at the step its [`Plan`] names.
//! Each rank writes its process id when it starts and, when training ends, the bytes of its
//! final state (a [`TrainingSnapshot`] with the history) for the test to compare.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::rc::Rc;
use std::str::FromStr;

use ndarray::{Array1, Array2};
use tapegrad_distributed::MpiCommunicator;
use tapegrad_nn::callbacks::{BackupAndRestore, BatchLogs, Callback, Control};
use tapegrad_nn::communicator::Communicator;
use tapegrad_nn::layers::{Activation, ActivationLayer, BatchNorm, Dense, Dropout, Sequential};
use tapegrad_nn::model::{FitOptions, Loss, Metric, Model, SchedulePer};
use tapegrad_nn::snapshot::TrainingSnapshot;
use tapegrad_optim::AdamConfig;
use tapegrad_optim::schedules::ExponentialLr;

use crate::harness::err;

/// Epochs of the job; with 80 training rows and 2 ranks × 8 rows per step, 5 steps each.
pub const EPOCHS: usize = 6;

/// What one start of the job does; its text is the child's command-line argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Trains to the end without a backup (`plain`): the run the others must match.
    Plain,
    /// Trains with the backup, and `rank` kills itself with SIGKILL at its `step`-th step
    /// (`kill:<rank>:<step>`), before that step's update.
    Kill { rank: usize, step: usize },
    /// Trains with the backup, and at its `step`-th step rank 0 limits the size of the
    /// files it writes to half the backup's, so that its next backup write dies in the
    /// middle with SIGXFSZ (`write:<step>`).
    InWrite { step: usize },
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Plan::Plain => write!(f, "plain"),
            Plan::Kill { rank, step } => write!(f, "kill:{rank}:{step}"),
            Plan::InWrite { step } => write!(f, "write:{step}"),
        }
    }
}

impl FromStr for Plan {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let number = |n: &str| n.parse::<usize>().map_err(|e| format!("{s:?}: {e}"));
        match s.split(':').collect::<Vec<_>>()[..] {
            ["plain"] => Ok(Plan::Plain),
            ["kill", rank, step] => Ok(Plan::Kill {
                rank: number(rank)?,
                step: number(step)?,
            }),
            ["write", step] => Ok(Plan::InWrite {
                step: number(step)?,
            }),
            _ => Err(format!("not a plan: {s:?}")),
        }
    }
}

/// The backup folder of the job in `dir`.
pub fn backup_dir(dir: &Path) -> PathBuf {
    dir.join("backup")
}

/// The file where `rank` writes its process id when it starts.
pub fn pid_file(dir: &Path, rank: usize) -> PathBuf {
    dir.join(format!("pid.{rank}"))
}

/// The file where `rank` writes its final state.
pub fn final_state(dir: &Path, rank: usize) -> PathBuf {
    dir.join(format!("final.{rank}.safetensors"))
}

/// The file where the rank that kills itself (or arms the size limit) says so first.
pub fn marker(dir: &Path) -> PathBuf {
    dir.join("killed")
}

/// What the marker says for `plan`.
pub fn marker_text(plan: Plan) -> String {
    match plan {
        Plan::Plain => String::new(),
        Plan::Kill { rank, step } => format!("rank {rank}: SIGKILL at step {step}"),
        Plan::InWrite { step } => format!("rank 0: file size limit at step {step}"),
    }
}

/// 100 rows of 6 features in 3 classes (the same on every rank), offset from zero so that
/// BatchNorm's running statistics move.
fn data() -> (Array2<f32>, Array1<f32>) {
    let class = |i: usize| (i * 5 % 3) as f32;
    let x = Array2::from_shape_fn((100, 6), |(i, j)| {
        let wobble = ((i * 13 + j * 7) % 19) as f32 / 19.0 - 0.5;
        2.0 + 0.5 * j as f32 + class(i) * (j as f32 - 2.5) / 2.0 + wobble
    });
    (x, Array1::from_shape_fn(100, class))
}

/// Kills this rank at the step of its plan (counted from this start of the job).
struct KillAt {
    plan: Plan,
    rank: usize,
    dir: PathBuf,
    steps: usize,
}

impl KillAt {
    /// Writes the marker, then kills this process with SIGKILL.
    fn kill(&self) -> ! {
        let _ = fs::write(marker(&self.dir), marker_text(self.plan));
        let pid = std::process::id().to_string();
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }

    /// Writes the marker, then sets this process's file size limit (soft) to half the
    /// backup's size, and its core size limit to zero.
    fn limit_file_size(&self) {
        let backup = backup_dir(&self.dir).join("training_state.safetensors");
        let size = fs::metadata(&backup).map_or(0, |m| m.len());
        assert!(
            size > 64,
            "no backup to cut in half at {}",
            backup.display()
        );
        fs::write(marker(&self.dir), marker_text(self.plan)).expect("the marker is written");
        let pid = std::process::id().to_string();
        let fsize = format!("--fsize={}:", size / 2);
        let status = Command::new("prlimit")
            .args(["--pid", &pid, "--core=0:", &fsize])
            .status();
        assert!(
            status.as_ref().is_ok_and(|s| s.success()),
            "prlimit failed: {status:?}"
        );
    }
}

impl Callback<f32> for KillAt {
    fn name(&self) -> &'static str {
        "KillAt"
    }

    fn on_batch_end(&mut self, _logs: &BatchLogs) -> Control {
        self.steps += 1;
        match self.plan {
            Plan::Kill { rank, step } if (rank, step) == (self.rank, self.steps) => self.kill(),
            Plan::InWrite { step } if (0, step) == (self.rank, self.steps) => {
                self.limit_file_size();
            }
            _ => {}
        }
        Control::Continue
    }
}

/// Trains (from the backup in `dir` when there is one) and writes this rank's final state.
fn train(comm: &Rc<MpiCommunicator>, dir: &Path, plan: Plan) -> Result<(), String> {
    let rank = comm.rank();
    fs::write(pid_file(dir, rank), std::process::id().to_string()).map_err(err)?;
    let net = Sequential::new()
        .seed(5)
        .add(Dense::new(12))
        .add(BatchNorm::new())
        .add(ActivationLayer::new(Activation::Relu))
        .add(Dropout::new(0.3))
        .add(Dense::new(3))
        .with_input_shape(&[6]);
    let mut model = Model::new(net);
    model.compile(
        AdamConfig::new(0.02)
            .weight_decay(1e-3)
            .build()
            .map_err(err)?,
        Loss::sparse_categorical_cross_entropy(),
        &[Metric::Accuracy],
    );
    let kill = KillAt {
        plan,
        rank,
        dir: dir.to_path_buf(),
        steps: 0,
    };
    let mut options = FitOptions::default()
        .epochs(EPOCHS)
        .batch_size(8)
        .validation_split(0.2)
        .seed(11)
        .verbose(0)
        .lr_schedule(
            ExponentialLr::new(0.02, 0.97).map_err(err)?,
            SchedulePer::Batch,
        )
        .communicator(comm.clone())
        .callback(kill);
    if plan != Plan::Plain {
        options = options.callback(BackupAndRestore::new(backup_dir(dir)).every_steps(2));
    }
    let (x, y) = data();
    let history = model.fit(&x, &y, options).map_err(err)?;
    let optimizer = model.optimizer().ok_or("the model lost its optimizer")?;
    let state = TrainingSnapshot::capture(model.module(), optimizer)
        .map_err(err)?
        .with_history(&history)
        .to_bytes()
        .map_err(err)?;
    fs::write(final_state(dir, rank), state).map_err(err)
}

/// The child's `main`: `child DIR PLAN`, one rank of the job under `run-mpi 2`.
pub fn child(args: &[String]) -> ExitCode {
    let [dir, plan] = args else {
        eprintln!("usage: resume child DIR PLAN, got {args:?}");
        return ExitCode::from(2);
    };
    let plan = match plan.parse::<Plan>() {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let comm = match MpiCommunicator::init() {
        Ok(comm) => Rc::new(comm),
        Err(e) => {
            eprintln!("cannot start MPI: {e}");
            return ExitCode::FAILURE;
        }
    };
    match train(&comm, Path::new(dir), plan) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rank {}: {e}", comm.rank());
            ExitCode::FAILURE
        }
    }
}
