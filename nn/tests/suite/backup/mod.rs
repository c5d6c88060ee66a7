//! Backups of the whole training state ([`BackupAndRestore`], [`TrainingSnapshot`]): a run
//! killed at any step (or in the middle of a backup write) and restarted until it finishes
//! ends with the same bits as a run never interrupted; corrupt, foreign and mismatched
//! backups are typed errors and stop `fit` before it trains; mutated backups never panic.
//!
//! | file | what |
//! |---|---|
//! | `bytes.rs` | the same state saved twice: the same bytes |
//! | `job.rs` | the training job of the tests (an MLP and a CNN) and its fingerprint |
//! | `kill_resume.rs` | runs killed at random steps and resumed, against uninterrupted runs |
//! | `mismatch.rs` | corrupt, truncated, foreign and mismatched backups |
//! | `mutation.rs` | randomly mutated backups: errors, never panics |

mod bytes;
mod job;
mod kill_resume;
mod mismatch;
mod mutation;

use std::fs;
use std::path::PathBuf;

/// A fresh scratch folder for one test.
fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tapegrad-backup-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}
