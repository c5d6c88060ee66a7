//! makemore's `--backup DIR`: the whole state of its training loop — the model, AdamW's
//! moments, step count and rate, the generator of the batch rows, evaluation rows and
//! samples, the step, and the evaluations so far — in one
//! [`TrainingSnapshot`] (`DIR/training_state.safetensors`, written atomically). A run killed
//! and started again with the same arguments resumes from it and ends with the same bytes
//! as a run never interrupted.
//!
//! The generator is ChaCha12, the algorithm of rand's `StdRng`, whose state is its seed and
//! a word position: the snapshot keeps both (as the generator entries `rows.seed` and
//! `rows.position`), so a resumed run draws the rows an uninterrupted one would.

use std::cell::Cell;
use std::io;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha12Rng;
use tapegrad::autograd::Var;
use tapegrad::nn::Module;
use tapegrad::nn::history::History;
use tapegrad::nn::module::{Visitor, VisitorMut};
use tapegrad::nn::snapshot::{SnapshotError, TrainingSnapshot};
use tapegrad::optim::Optimizer;

use super::Model;

/// The backup's file name in its folder (`BackupAndRestore`'s).
pub const FILE_NAME: &str = "training_state.safetensors";

/// The columns of the evaluations in the snapshot's history, one row per evaluation.
const COLUMNS: [&str; 3] = ["step", "train_loss", "test_loss"];

/// The most words [`continue_stream`] looks through (16 GiB of random bits, far more than
/// any model's initialization draws).
const MAX_WORDS: u64 = 1 << 32;

/// What can go wrong while backing up or resuming.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The snapshot cannot be written, read or restored, or is of another run.
    #[error("backup: {0}")]
    Snapshot(#[from] SnapshotError),
    /// The backup folder or file cannot be created, inspected or removed.
    #[error("backup: cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The folder or file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// `StdRng` is not ChaCha12 seeded the same way in this build of rand, so its stream
    /// cannot be continued by a generator whose position can be saved.
    #[error(
        "rand's StdRng is not ChaCha12 of the same seed in this build, its stream cannot be \
         continued"
    )]
    Stream,
    /// The generator's word position does not fit in the snapshot's 64 bits.
    #[error("the generator's position {0} does not fit in 64 bits")]
    Position(u128),
}

/// `rng`, which is `StdRng::seed_from_u64(seed)` after some draws, as a ChaCha12 generator
/// at the same place in the same stream (it draws what `rng` would).
///
/// rand 0.9's `StdRng` is ChaCha12 but hides its position: a fresh `StdRng` of `seed` is
/// advanced one word at a time until it equals `rng` (equal generators are at the same
/// word), and the ChaCha12 generator of `seed` is set to that many words.
///
/// # Errors
///
/// [`BackupError::Stream`] if the two generators draw differently, or `rng` is not within
/// 2³² words of `seed`'s start.
pub fn continue_stream(rng: &StdRng, seed: u64) -> Result<ChaCha12Rng, BackupError> {
    let mut probe = StdRng::seed_from_u64(seed);
    let mut words = 0;
    while probe != *rng {
        if words == MAX_WORDS {
            return Err(BackupError::Stream);
        }
        probe.next_u32();
        words += 1;
    }
    let mut chacha = ChaCha12Rng::seed_from_u64(seed);
    chacha.set_word_pos(u128::from(words));
    let (mut a, mut b) = (rng.clone(), chacha.clone());
    if (0..4).any(|_| a.next_u64() != b.next_u64()) {
        return Err(BackupError::Stream);
    }
    Ok(chacha)
}

/// The model and the generator as one module: the snapshot keeps the model's entries under
/// their own paths, and the generator's seed and word position as `rows.seed` and
/// `rows.position`.
struct RunState<'m> {
    model: &'m mut Model,
    seed: Cell<u64>,
    position: Cell<u64>,
}

impl Module<f32> for RunState<'_> {
    fn forward<'t>(&'t self, x: Var<'t, f32>) -> Var<'t, f32> {
        self.model.forward(x)
    }
    fn visit<'a>(&'a self, v: &mut Visitor<'a, '_, f32>) {
        v.module("", &*self.model);
        v.generator("rows.seed", &self.seed);
        v.generator("rows.position", &self.position);
    }
    fn visit_mut<'a>(&'a mut self, v: &mut VisitorMut<'a, '_, f32>) {
        v.module("", &mut *self.model);
    }
    fn kind(&self) -> &'static str {
        "makemore run"
    }
}

/// Where a resumed run continues.
pub struct Resumed {
    /// The steps already taken.
    pub steps: usize,
    /// `(step, train loss, test loss)` of the evaluations already made.
    pub evaluations: Vec<(usize, f64, f64)>,
}

/// Where and how often a run backs up (`--backup`, `--backup-every`, `--keep-backup`).
pub struct Backup {
    dir: PathBuf,
    every: usize,
    keep: bool,
}

impl Backup {
    /// Backups into the folder `dir` every `every` steps (0: at the end only) and at the
    /// end, kept once training ends if `keep`.
    pub fn new(dir: &Path, every: usize, keep: bool) -> Self {
        Backup {
            dir: dir.to_path_buf(),
            every,
            keep,
        }
    }

    /// The backup file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Whether the run backs up after `done` of its `max_steps` steps.
    pub fn due(&self, done: usize, max_steps: usize) -> bool {
        (self.every > 0 && done.is_multiple_of(self.every)) || done == max_steps
    }

    /// Writes the state after `steps` steps (replacing the last backup atomically).
    pub fn save(
        &self,
        model: &mut Model,
        optimizer: &(impl Optimizer<f32> + ?Sized),
        rng: &ChaCha12Rng,
        seed: u64,
        steps: usize,
        evaluations: &[(usize, f64, f64)],
    ) -> Result<(), BackupError> {
        let position = rng.get_word_pos();
        let position = u64::try_from(position).map_err(|_| BackupError::Position(position))?;
        let state = RunState {
            model,
            seed: Cell::new(seed),
            position: Cell::new(position),
        };
        let mut history = History::new(&COLUMNS);
        for &(step, train, test) in evaluations {
            history.push_epoch(&[step as f64, train, test]);
        }
        std::fs::create_dir_all(&self.dir).map_err(|source| BackupError::Io {
            action: "create",
            path: self.dir.clone(),
            source,
        })?;
        TrainingSnapshot::capture(&state, optimizer)?
            .with_history(&history)
            .at(0, steps)
            .save(self.path())?;
        Ok(())
    }

    /// Restores the backup into `model`, `optimizer` and `rng` (whose seed is `seed`), if
    /// the folder holds one.
    ///
    /// # Errors
    ///
    /// [`BackupError::Snapshot`] if the file cannot be read or is of another run: another
    /// model type or sizes ([`SnapshotError::Model`] names each difference), optimizer or
    /// seed.
    pub fn resume(
        &self,
        model: &mut Model,
        optimizer: &mut (impl Optimizer<f32> + ?Sized),
        rng: &mut ChaCha12Rng,
        seed: u64,
    ) -> Result<Option<Resumed>, BackupError> {
        let path = self.path();
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(BackupError::Io {
                    action: "inspect",
                    path,
                    source,
                });
            }
            Ok(_) => {}
        }
        let snapshot = TrainingSnapshot::<f32>::load(&path)?;
        let evaluations = evaluations(snapshot.history())?;
        let mut state = RunState {
            model,
            seed: Cell::new(seed),
            position: Cell::new(0),
        };
        snapshot.restore(&mut state, optimizer)?;
        if state.seed.get() != seed {
            return Err(SnapshotError::Mismatch {
                part: "seed",
                expected: seed.to_string(),
                found: state.seed.get().to_string(),
            }
            .into());
        }
        rng.set_word_pos(u128::from(state.position.get()));
        Ok(Some(Resumed {
            steps: snapshot.batch(),
            evaluations,
        }))
    }

    /// Removes the backup once training ended, unless it is kept.
    pub fn finish(&self) -> Result<(), BackupError> {
        if self.keep {
            return Ok(());
        }
        match std::fs::remove_file(self.path()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(BackupError::Io {
                action: "remove",
                path: self.path(),
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

/// The evaluations a snapshot's history holds.
fn evaluations(history: Option<&History>) -> Result<Vec<(usize, f64, f64)>, SnapshotError> {
    let columns = history.map(|h| COLUMNS.map(|name| h.get(name)));
    let Some([Some(steps), Some(train), Some(test)]) = columns else {
        return Err(SnapshotError::Mismatch {
            part: "history",
            expected: COLUMNS.join(", "),
            found: history.map_or("none".to_string(), |h| {
                h.names().collect::<Vec<_>>().join(", ")
            }),
        });
    };
    Ok(steps
        .iter()
        .zip(train)
        .zip(test)
        .map(|((&step, &train), &test)| (step as usize, train, test))
        .collect())
}
