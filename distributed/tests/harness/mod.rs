//! The runner of an MPI test binary (a plain `main`, no libtest harness): every rank runs
//! every scenario in the same order (collectives must match); a scenario passes when it
//! passed on every rank; rank 0 prints one line per scenario and `N passed, N failed`.
//!
//! A watchdog ends the process when one scenario runs longer than [`SCENARIO_LIMIT`], so
//! that a rank left waiting in a collective fails the run (mpirun then ends the other
//! ranks) instead of hanging it.

// Each test binary uses its own part of the harness.
#![allow(dead_code)]

use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tapegrad_distributed::MpiCommunicator;
use tapegrad_nn::communicator::{Communicator, broadcast};

/// What a scenario gives back on one rank.
pub type Outcome = Result<(), String>;

/// A named scenario, run on every rank.
pub type Scenario = (&'static str, fn(&Rc<MpiCommunicator>) -> Outcome);

/// The longest a scenario may run before the watchdog aborts the process.
pub const SCENARIO_LIMIT: Duration = Duration::from_secs(60);

/// Any error as a test failure's message.
pub fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A folder named by `binary` and rank 0's process id (the same on every rank), created by
/// rank 0.
pub fn shared_dir(c: &MpiCommunicator, binary: &str) -> Result<std::path::PathBuf, String> {
    let mut id = vec![f64::from(std::process::id())];
    c.broadcast_f64(&mut id, 0).map_err(err)?;
    let dir = std::env::temp_dir().join(format!("tapegrad-mpi-{binary}-{}", id[0]));
    if c.is_root() {
        std::fs::create_dir_all(&dir).map_err(err)?;
    }
    Ok(dir)
}

/// `Ok` when `cond`, else `msg()`.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Outcome {
    if cond { Ok(()) } else { Err(msg()) }
}

/// Whether `values` are rank 0's, bit for bit (one broadcast).
pub fn same_as_root(comm: &MpiCommunicator, values: &[f64]) -> Result<bool, String> {
    let mut root = values.to_vec();
    let mut len = vec![values.len() as f64];
    comm.broadcast_f64(&mut len, 0).map_err(err)?;
    if len[0] != values.len() as f64 {
        // Every rank still takes part in the same broadcast (of rank 0's length).
        root.resize(len[0] as usize, 0.0);
    }
    broadcast(comm, &mut root, 0).map_err(err)?;
    Ok(root.len() == values.len()
        && root
            .iter()
            .zip(values)
            .all(|(a, b)| a.to_bits() == b.to_bits()))
}

/// Starts the watchdog thread; `current` holds the index of the running scenario plus one
/// (zero between scenarios).
fn watchdog(rank: usize, names: Vec<&'static str>, current: Arc<AtomicUsize>) {
    std::thread::spawn(move || {
        let tick = Duration::from_millis(200);
        let (mut watched, mut waited) = (0, Duration::ZERO);
        loop {
            std::thread::sleep(tick);
            let now = current.load(Ordering::Relaxed);
            if now != watched {
                (watched, waited) = (now, Duration::ZERO);
                continue;
            }
            waited += tick;
            if watched > 0 && waited > SCENARIO_LIMIT {
                eprintln!(
                    "rank {rank}: {} did not finish within {SCENARIO_LIMIT:?}: aborting",
                    names[watched - 1]
                );
                std::process::abort();
            }
        }
    });
}

/// Starts MPI and runs `scenarios` ([`run`]): a test binary's `main`.
pub fn main(scenarios: &[Scenario]) -> ExitCode {
    match MpiCommunicator::init() {
        Ok(comm) => run(&Rc::new(comm), scenarios),
        Err(e) => {
            eprintln!("cannot start MPI: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `scenarios` on every rank and gathers the verdicts.
pub fn run(comm: &Rc<MpiCommunicator>, scenarios: &[Scenario]) -> ExitCode {
    if comm.is_root() {
        println!(
            "running {} scenarios on {} rank(s)",
            scenarios.len(),
            comm.size()
        );
    }
    let current = Arc::new(AtomicUsize::new(0));
    watchdog(
        comm.rank(),
        scenarios.iter().map(|(name, _)| *name).collect(),
        Arc::clone(&current),
    );
    let mut failures = vec![0.0_f64; scenarios.len()];
    for (i, (name, scenario)) in scenarios.iter().enumerate() {
        current.store(i + 1, Ordering::Relaxed);
        if let Err(msg) = scenario(comm) {
            eprintln!("rank {}: {name}: {msg}", comm.rank());
            failures[i] = 1.0;
        }
        current.store(0, Ordering::Relaxed);
    }
    if let Err(e) = comm.all_reduce_sum_f64(&mut failures) {
        eprintln!("rank {}: cannot gather the results: {e}", comm.rank());
        return ExitCode::FAILURE;
    }
    let failed = failures.iter().filter(|&&f| f > 0.0).count();
    if comm.is_root() {
        for ((name, _), f) in scenarios.iter().zip(&failures) {
            let verdict = if *f > 0.0 { "FAILED" } else { "ok" };
            println!("test {name} ... {verdict}");
        }
        println!("{} passed, {failed} failed", scenarios.len() - failed);
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
