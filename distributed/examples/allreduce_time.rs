//! Times the all-reduce (sum) of f32 gradient buffers of several sizes across the ranks.
//!
//! ```sh
//! distributed/run-mpi 2 target/release/examples/allreduce_time [ELEMENTS...]
//! distributed/two-hosts --rate 100mbit target/release/examples/allreduce_time [ELEMENTS...]
//! ```
//!
//! `run-mpi` runs both ranks on this machine (shared memory); `two-hosts` runs them on two
//! simulated machines joined by a limited link (TCP; see the README's "Two machines on one").
//!
//! Defaults: the main job's gradients (101,770 parameters), the issue's 235,146 and ten
//! times that. Rank 0 prints, per size, the median and the mean time per call over 200
//! calls (20 for the largest), after 10 unmeasured ones.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use tapegrad_distributed::MpiCommunicator;
use tapegrad_nn::communicator::Communicator;

fn main() -> ExitCode {
    let comm = match MpiCommunicator::init() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start MPI: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut sizes: Vec<usize> = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.parse() {
            Ok(n) => sizes.push(n),
            Err(e) => {
                eprintln!("not a number of elements: {arg:?} ({e})");
                return ExitCode::FAILURE;
            }
        }
    }
    if sizes.is_empty() {
        sizes = vec![101_770, 235_146, 2_351_460];
    }
    if comm.is_root() {
        println!(
            "all-reduce (sum, f32) over {} ranks; host {}",
            comm.size(),
            comm.processor_name()
        );
    }
    for n in sizes {
        let mut buf = vec![1.0_f32; n];
        let reps = if n > 1_000_000 { 20 } else { 200 };
        let mut times = Vec::with_capacity(reps);
        for i in 0..reps + 10 {
            let start = Instant::now();
            if let Err(e) = comm.all_reduce_sum_f32(&mut buf) {
                eprintln!("all-reduce failed: {e}");
                comm.abort(1);
            }
            if i >= 10 {
                times.push(start.elapsed());
            }
        }
        times.sort();
        let mean = times.iter().sum::<Duration>() / reps as u32;
        if comm.is_root() {
            println!(
                "  {n:>9} elements ({:>6.2} MB): median {:>7.3} ms, mean {:>7.3} ms ({reps} calls)",
                (n * 4) as f64 / 1e6,
                times[reps / 2].as_secs_f64() * 1e3,
                mean.as_secs_f64() * 1e3,
            );
        }
    }
    ExitCode::SUCCESS
}
