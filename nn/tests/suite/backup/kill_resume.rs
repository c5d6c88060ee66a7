//! A child process trains (an MLP and a CNN: Adam with a per-batch schedule, dropout,
//! shuffling, validation, early stopping, a checkpoint) and is killed at random steps —
//! with SIGKILL, or by a file size limit in the middle of a backup write (SIGXFSZ) — and
//! restarted until it finishes: its final state is bit for bit an uninterrupted run's.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::job::{Job, KillAt, Kind, fingerprint};
use super::scratch_dir;

/// Set in the child: `<folder>;<kind>;<kill at>;<in write>;<backup>`.
const CHILD_ENV: &str = "TAPEGRAD_BACKUP_CHILD";

fn full_test_name(name: &str) -> String {
    match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::{name}"),
        None => name.to_string(),
    }
}

/// The child: runs the job described by `TAPEGRAD_BACKUP_CHILD` and writes the fingerprint
/// of its final state to `<folder>/fingerprint`. Without the variable, does nothing.
#[test]
fn backup_child_trains_until_killed() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split(';').collect();
    let dir = Path::new(parts[0]);
    let job = Job {
        kind: Kind::from_name(parts[1]),
        dir,
        backup: parts[4] == "1",
        kill: KillAt {
            at: parts[2].parse().ok(),
            in_write: parts[3] == "1",
            backup: dir.join("backup").join("training_state.safetensors"),
            seen: 0,
        },
    };
    let (model, history) = job.run().unwrap();
    fs::write(dir.join("fingerprint"), fingerprint(&model, &history)).unwrap();
}

/// Runs the child once: `Ok` when it finished, else the signal that ended it.
fn run_child(
    dir: &Path,
    kind: Kind,
    kill_at: Option<usize>,
    in_write: bool,
    backup: bool,
) -> Result<(), Option<i32>> {
    let spec = format!(
        "{};{};{};{};{}",
        dir.display(),
        kind.name(),
        kill_at.map_or("-".to_string(), |k| k.to_string()),
        u8::from(in_write),
        u8::from(backup)
    );
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            &full_test_name("backup_child_trains_until_killed"),
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD_ENV, spec)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .unwrap();
    if status.success() {
        Ok(())
    } else {
        Err(std::os::unix::process::ExitStatusExt::signal(&status))
    }
}

/// SIGXFSZ: a write past the file size limit (Linux's number).
const SIGXFSZ: i32 = 25;

/// The fingerprint a finished child left in `dir`.
fn read_fingerprint(dir: &Path) -> String {
    fs::read_to_string(dir.join("fingerprint")).unwrap()
}

/// Kills runs of `kind` until one finishes; returns (kills, kills in a backup write).
fn killed_until_done(kind: Kind, dir: &Path, rng: &mut StdRng) -> (usize, usize) {
    let (mut kills, mut in_writes) = (0, 0);
    loop {
        // At least 2 steps in each life, so that a backup is written before the kill.
        let at = rng.random_range(3..=6);
        let in_write = rng.random_bool(0.35);
        match run_child(dir, kind, Some(at), in_write, true) {
            Ok(()) => return (kills, in_writes),
            Err(signal) => {
                assert!(
                    signal.is_some(),
                    "{kind:?}: the child failed without being killed"
                );
                in_writes += usize::from(signal == Some(SIGXFSZ));
            }
        }
        kills += 1;
        assert!(kills < 60, "{kind:?}: no end after {kills} kills");
    }
}

#[test]
fn killed_runs_resume_to_the_bits_of_an_uninterrupted_run() {
    let mut rng = StdRng::seed_from_u64(28);
    let mut total = 0;
    for kind in [Kind::Mlp, Kind::Cnn] {
        let plain = scratch_dir(&format!("plain-{}", kind.name()));
        assert_eq!(run_child(&plain, kind, None, false, false), Ok(()));
        let expected = read_fingerprint(&plain);

        let backed = scratch_dir(&format!("backed-{}", kind.name()));
        assert_eq!(run_child(&backed, kind, None, false, true), Ok(()));
        assert_eq!(
            read_fingerprint(&backed),
            expected,
            "{kind:?}: a backup changed the run"
        );
        assert!(
            !backed
                .join("backup")
                .join("training_state.safetensors")
                .exists(),
            "the backup is deleted when training ends"
        );

        let killed = scratch_dir(&format!("killed-{}", kind.name()));
        let (kills, in_writes) = killed_until_done(kind, &killed, &mut rng);
        let resumed = read_fingerprint(&killed);
        if resumed != expected {
            let diff = resumed
                .lines()
                .zip(expected.lines())
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("resumed:  {a:.200}\nexpected: {b:.200}"));
            panic!("{kind:?} after {kills} kills: the final state differs\n{diff:?}");
        }
        assert!(
            in_writes > 0,
            "{kind:?}: no kill in the middle of a backup write"
        );
        eprintln!("{kind:?}: {kills} kills ({in_writes} in a backup write), same bits");
        total += kills;
        for dir in [plain, backed, killed] {
            fs::remove_dir_all(dir).unwrap();
        }
    }
    assert!(total >= 20, "only {total} kills");
}
