//! A 2-rank training job killed and resumed from its backup, as Open MPI runs it: one rank
//! kills itself with SIGKILL at a step drawn at random (either rank), or rank 0 is killed by
//! a file size limit in the middle of a backup write (SIGXFSZ); mpirun then ends the job,
//! the other rank included, within [`JOB_LIMIT`] (a hang fails the test), and the job is
//! started again until it finishes. Each rank's final state — weights, BatchNorm's running
//! statistics, its dropout generator, Adam's moments and rate, the history — is then, byte
//! for byte, the one of the same 2-rank job run once without a backup.
//!
//! The test starts its own jobs (`run-mpi 2 <this binary> child DIR PLAN`, see
//! `resume/job.rs`), so it runs as a plain process; under `run-mpi 2`, as `.ci/run` starts
//! every MPI test binary, rank 0 runs it (without starting MPI itself) and the other ranks
//! return at once.

mod harness;
#[path = "resume/job.rs"]
mod job;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use harness::{Outcome, ensure, err};
use job::{EPOCHS, Plan, backup_dir, final_state, marker, marker_text, pid_file};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The longest one job may run, from its start to mpirun's exit, before it counts as hung.
const JOB_LIMIT: Duration = Duration::from_secs(60);

/// mpirun's exit code when a rank died of SIGKILL: Open MPI's mpirun exits with the status
/// of the first rank that failed, 128 + the signal's number (Linux's) for a signal.
const KILLED: i32 = 128 + 9;
/// mpirun's exit code when a rank died of SIGXFSZ (a write past its file size limit).
const FILE_TOO_LARGE: i32 = 128 + 25;

/// How a job ended: its exit status and what mpirun and the ranks printed.
struct Ended {
    status: ExitStatus,
    output: String,
}

/// `run-mpi`, beside this crate's manifest.
fn run_mpi() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("run-mpi")
}

/// Whether `name` is set by Open MPI for a process it started (PMIx's and its runtime's
/// variables included): a job started from such a process must not inherit them, or its
/// mpirun takes itself for part of the outer job.
fn from_open_mpi(name: &str) -> bool {
    ["OMPI_", "PMIX_", "OPAL_", "ORTE_", "PRTE_"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// Whether the process `pid` still runs (a zombie has ended).
fn running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Sends SIGKILL to `target`: a process id, or minus a process group's (a job this test
/// started).
fn kill(target: &str) {
    let _ = Command::new("kill").args(["-KILL", "--", target]).status();
}

/// The process ids the ranks of the job in `dir` wrote.
fn rank_pids(dir: &Path) -> Vec<(usize, u32)> {
    (0..2)
        .filter_map(|rank| {
            let text = fs::read_to_string(pid_file(dir, rank)).ok()?;
            Some((rank, text.trim().parse().ok()?))
        })
        .collect()
}

/// Waits for `child` until [`JOB_LIMIT`] from `started`; past it, kills its process group
/// (mpirun and its helpers) and returns `None`.
fn wait_bounded(child: &mut Child, started: Instant) -> Result<Option<ExitStatus>, String> {
    loop {
        if let Some(status) = child.try_wait().map_err(err)? {
            return Ok(Some(status));
        }
        if started.elapsed() > JOB_LIMIT {
            kill(&format!("-{}", child.id()));
            child.wait().map_err(err)?;
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the job in `dir` with `plan` under `run-mpi 2`; an error when it ran longer than
/// [`JOB_LIMIT`] or left a rank running after mpirun's exit (both are killed then).
fn run_job(dir: &Path, plan: Plan) -> Result<Ended, String> {
    let log = dir.join("job.log");
    let output = fs::File::create(&log).map_err(err)?;
    let mut command = Command::new(run_mpi());
    command
        .arg("2")
        .arg(std::env::current_exe().map_err(err)?)
        .args(["child".as_ref(), dir.as_os_str(), plan.to_string().as_ref()])
        .stdin(Stdio::null())
        .stdout(output.try_clone().map_err(err)?)
        .stderr(output);
    for (name, _) in std::env::vars() {
        if from_open_mpi(&name) {
            command.env_remove(name);
        }
    }
    // A group of its own, so that a hung job is killed whole.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start run-mpi: {e}"))?;
    let status = wait_bounded(&mut child, started)?;
    let output = fs::read_to_string(&log).unwrap_or_default();
    // mpirun reaps its ranks before it exits: one still running is left behind.
    let left: Vec<String> = rank_pids(dir)
        .into_iter()
        .filter(|&(_, pid)| running(pid))
        .map(|(rank, pid)| {
            kill(&pid.to_string());
            format!("rank {rank} (pid {pid})")
        })
        .collect();
    let Some(status) = status else {
        return Err(format!(
            "{plan}: the job did not end within {JOB_LIMIT:?}\n{output}"
        ));
    };
    ensure(left.is_empty(), || {
        format!("{plan}: mpirun ended ({status}) but left running: {left:?}\n{output}")
    })?;
    Ok(Ended { status, output })
}

/// Checks that a killed job ended as `plan` says: mpirun reports the rank's signal, the
/// rank said it was that one, and a write cut by the size limit left its partial temporary
/// file. Then removes the marker and the process ids for the next start.
fn killed_as_planned(dir: &Path, plan: Plan, ended: &Ended) -> Outcome {
    let code = ended.status.code();
    let said = fs::read_to_string(marker(dir)).unwrap_or_default();
    let expected = if matches!(plan, Plan::InWrite { .. }) {
        FILE_TOO_LARGE
    } else {
        KILLED
    };
    ensure(code == Some(expected) && said == marker_text(plan), || {
        format!(
            "{plan}: mpirun exited with {code:?} (expected {expected}), the rank said {said:?}\n{}",
            ended.output
        )
    })?;
    if let Plan::InWrite { .. } = plan {
        let pid = rank_pids(dir)
            .into_iter()
            .find(|&(rank, _)| rank == 0)
            .map(|(_, pid)| pid);
        let prefix = format!(".training_state.safetensors.{}-", pid.unwrap_or(0));
        let partial = fs::read_dir(backup_dir(dir))
            .map_err(err)?
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with(&prefix));
        ensure(partial, || {
            format!("{plan}: rank 0 died without a partial backup write")
        })?;
    }
    fs::remove_file(marker(dir)).map_err(err)?;
    for rank in 0..2 {
        fs::remove_file(pid_file(dir, rank)).map_err(err)?;
    }
    Ok(())
}

/// Runs the job in `dir` to its end, killed as `rng` draws and started again each time;
/// returns the plans that killed it.
fn killed_until_done(dir: &Path, rng: &mut StdRng) -> Result<Vec<Plan>, String> {
    let mut kills = Vec::new();
    loop {
        // At least 2 steps in each start, so that each writes a backup before its kill.
        let step = rng.random_range(3..=6);
        let plan = match rng.random_range(0..3) {
            0 => Plan::InWrite { step },
            rank => Plan::Kill {
                rank: rank - 1,
                step,
            },
        };
        let ended = run_job(dir, plan)?;
        if ended.status.success() {
            return Ok(kills);
        }
        killed_as_planned(dir, plan, &ended)?;
        kills.push(plan);
        ensure(kills.len() < 12 * EPOCHS, || {
            format!("no end after {} kills", kills.len())
        })?;
    }
}

/// Where `a` and `b` first differ, in words: in the safetensors header (the description:
/// history, generators, rate, and the tensors' names) or in the tensors' data.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    let at = a.iter().zip(b).position(|(x, y)| x != y);
    let Some(at) = at else {
        return format!("{} bytes against {}", a.len(), b.len());
    };
    let header = a
        .get(..8)
        .and_then(|n| n.try_into().ok())
        .map_or(0, |n| 8 + u64::from_le_bytes(n) as usize);
    let part = if at < header { "header" } else { "tensor data" };
    format!("byte {at} of {} (in the {part})", a.len())
}

/// The job killed again and again ends, on both ranks, with the bytes of one never killed.
fn killed_jobs_resume_to_the_bytes_of_an_uninterrupted_job(root: &Path) -> Outcome {
    let reference = root.join("uninterrupted");
    let killed = root.join("killed");
    for dir in [&reference, &killed] {
        fs::create_dir_all(dir).map_err(err)?;
    }
    let ended = run_job(&reference, Plan::Plain)?;
    ensure(ended.status.success(), || {
        format!(
            "the uninterrupted job failed ({})\n{}",
            ended.status, ended.output
        )
    })?;
    let kills = killed_until_done(&killed, &mut StdRng::seed_from_u64(28))?;
    for rank in 0..2 {
        let expected = fs::read(final_state(&reference, rank)).map_err(err)?;
        let resumed = fs::read(final_state(&killed, rank)).map_err(err)?;
        ensure(resumed == expected, || {
            format!(
                "rank {rank}'s final state after {} kills differs: {}",
                kills.len(),
                first_difference(&resumed, &expected)
            )
        })?;
    }
    ensure(
        !backup_dir(&killed)
            .join("training_state.safetensors")
            .exists(),
        || "the backup is left after training ended".into(),
    )?;
    let count = |f: fn(&Plan) -> bool| kills.iter().filter(|p| f(p)).count();
    let rank0 = count(|p| matches!(p, Plan::Kill { rank: 0, .. }));
    let rank1 = count(|p| matches!(p, Plan::Kill { rank: 1, .. }));
    let in_write = count(|p| matches!(p, Plan::InWrite { .. }));
    println!(
        "{} kills: SIGKILL on rank 0 {rank0}, on rank 1 {rank1}, in a backup write {in_write}",
        kills.len()
    );
    ensure(kills.len() >= 5 && rank0 * rank1 * in_write > 0, || {
        format!("too few kills of some kind: {kills:?}")
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        return job::child(&args[1..]);
    }
    if std::env::var("OMPI_COMM_WORLD_RANK").is_ok_and(|rank| rank != "0") {
        return ExitCode::SUCCESS;
    }
    let root = std::env::temp_dir().join(format!("tapegrad-mpi-resume-{}", std::process::id()));
    let name = "killed_jobs_resume_to_the_bytes_of_an_uninterrupted_job";
    println!("running 1 scenario (2-rank jobs under run-mpi)");
    match killed_jobs_resume_to_the_bytes_of_an_uninterrupted_job(&root) {
        Ok(()) => {
            let _ = fs::remove_dir_all(&root);
            println!("test {name} ... ok\n1 passed, 0 failed");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!(
                "{name}: {msg}\n(the jobs' folders are kept in {})",
                root.display()
            );
            println!("test {name} ... FAILED\n0 passed, 1 failed");
            ExitCode::FAILURE
        }
    }
}
