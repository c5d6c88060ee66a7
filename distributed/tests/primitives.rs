//! The MPI communicator's collectives, under `mpirun -np 2` (any number of ranks works).
//!
//! Run by `harness::run` (a plain `main`, no libtest harness; a watchdog aborts a scenario
//! that hangs).

mod harness;

use std::process::ExitCode;
use std::rc::Rc;
use std::time::Instant;

use harness::{Outcome, Scenario, ensure};
use tapegrad_distributed::MpiCommunicator;
use tapegrad_nn::communicator::{
    CommError, Communicator, all_reduce_sum, broadcast, broadcast_message,
};

fn comm_err(e: CommError) -> String {
    e.to_string()
}

fn rank_and_size(c: &Rc<MpiCommunicator>) -> Outcome {
    ensure(c.rank() < c.size(), || {
        format!("rank {} of {}", c.rank(), c.size())
    })?;
    ensure(c.is_root() == (c.rank() == 0), || "is_root".into())
}

fn all_reduce_f32(c: &Rc<MpiCommunicator>) -> Outcome {
    let (r, p) = (c.rank() as f32, c.size() as f32);
    let mut buf: Vec<f32> = (0..1000).map(|i| r + 1.0 + i as f32).collect();
    all_reduce_sum(&**c, &mut buf).map_err(comm_err)?;
    for (i, v) in buf.iter().enumerate() {
        let expected = p * (p + 1.0) / 2.0 + p * i as f32;
        ensure(*v == expected, || format!("element {i}: {v} != {expected}"))?;
    }
    Ok(())
}

fn all_reduce_f64(c: &Rc<MpiCommunicator>) -> Outcome {
    let (r, p) = (c.rank() as f64, c.size() as f64);
    let mut buf = vec![0.25 * (r + 1.0), -r, 1e-300];
    c.all_reduce_sum_f64(&mut buf).map_err(comm_err)?;
    let expected = [0.25 * p * (p + 1.0) / 2.0, -p * (p - 1.0) / 2.0, p * 1e-300];
    ensure(buf == expected, || format!("{buf:?} != {expected:?}"))?;
    // Empty buffers are fine.
    c.all_reduce_sum_f64(&mut []).map_err(comm_err)
}

/// Bit-identical results on every rank (what keeps replicas from drifting), on a buffer
/// of the size of the main job's gradients with values whose sums round.
fn all_reduce_same_bits_everywhere(c: &Rc<MpiCommunicator>) -> Outcome {
    let n = 235_146;
    let mut buf: Vec<f32> = (0..n)
        .map(|i| ((i * 7919 + c.rank() * 104_729) % 1000) as f32 * 1e-3 + 1.0 / 3.0)
        .collect();
    all_reduce_sum(&**c, &mut buf).map_err(comm_err)?;
    let mut root = buf.clone();
    broadcast(&**c, &mut root, 0).map_err(comm_err)?;
    let same = buf
        .iter()
        .zip(&root)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    ensure(same, || "rank 0's sums differ from this rank's".into())
}

fn broadcast_from_each_root(c: &Rc<MpiCommunicator>) -> Outcome {
    for root in 0..c.size() {
        let mut f = vec![c.rank() as f32; 5];
        let mut d = vec![c.rank() as f64 + 0.5; 3];
        let mut b = vec![c.rank() as u8; 4];
        broadcast(&**c, &mut f, root).map_err(comm_err)?;
        c.broadcast_f64(&mut d, root).map_err(comm_err)?;
        c.broadcast_bytes(&mut b, root).map_err(comm_err)?;
        ensure(f.iter().all(|&v| v == root as f32), || format!("f32 {f:?}"))?;
        ensure(d.iter().all(|&v| v == root as f64 + 0.5), || {
            format!("f64 {d:?}")
        })?;
        ensure(b.iter().all(|&v| v == root as u8), || {
            format!("bytes {b:?}")
        })?;
    }
    Ok(())
}

fn message_from_last_rank(c: &Rc<MpiCommunicator>) -> Outcome {
    let root = c.size() - 1;
    let mine = format!("error on rank {} — ünïcode", c.rank());
    let got = broadcast_message(&**c, &mine, root).map_err(comm_err)?;
    let expected = format!("error on rank {root} — ünïcode");
    ensure(got == expected, || format!("{got:?} != {expected:?}"))
}

fn invalid_root_is_an_error(c: &Rc<MpiCommunicator>) -> Outcome {
    let mut buf = vec![0.0_f32; 2];
    match c.broadcast_f32(&mut buf, c.size()) {
        Err(CommError::InvalidRoot { root, size }) if root == c.size() && size == c.size() => {
            Ok(())
        }
        other => Err(format!("expected InvalidRoot, got {other:?}")),
    }
}

fn barrier_and_stats(c: &Rc<MpiCommunicator>) -> Outcome {
    let before = c.stats().barrier.calls;
    c.barrier().map_err(comm_err)?;
    ensure(c.stats().barrier.calls == before + 1, || {
        "barrier not counted".into()
    })
}

/// Times the all-reduce of the main job's gradient buffer (235,146 f32 + 3 status words,
/// 0.94 MB); rank 0 prints the figure.
fn time_all_reduce(c: &Rc<MpiCommunicator>) -> Outcome {
    let mut buf = vec![1.0_f32; 235_149];
    for _ in 0..5 {
        c.all_reduce_sum_f32(&mut buf).map_err(comm_err)?;
    }
    c.barrier().map_err(comm_err)?;
    c.reset_stats();
    let reps = 200;
    let start = Instant::now();
    for _ in 0..reps {
        c.all_reduce_sum_f32(&mut buf).map_err(comm_err)?;
    }
    let wall = start.elapsed();
    let stats = c.stats().all_reduce;
    if c.is_root() {
        println!(
            "  all-reduce of {} f32 ({:.2} MB) over {} ranks: {:.3} ms per call \
             (mean of {reps}; wall {:.3} ms per call)",
            buf.len(),
            (buf.len() * 4) as f64 / 1e6,
            c.size(),
            stats.mean().as_secs_f64() * 1e3,
            wall.as_secs_f64() * 1e3 / reps as f64,
        );
    }
    ensure(stats.calls == reps, || {
        format!("{} calls counted", stats.calls)
    })
}

fn main() -> ExitCode {
    let scenarios: [Scenario; 9] = [
        ("rank_and_size", rank_and_size),
        ("all_reduce_f32", all_reduce_f32),
        ("all_reduce_f64", all_reduce_f64),
        (
            "all_reduce_same_bits_everywhere",
            all_reduce_same_bits_everywhere,
        ),
        ("broadcast_from_each_root", broadcast_from_each_root),
        ("message_from_last_rank", message_from_last_rank),
        ("invalid_root_is_an_error", invalid_root_is_an_error),
        ("barrier_and_stats", barrier_and_stats),
        ("time_all_reduce", time_all_reduce),
    ];
    harness::main(&scenarios)
}
