//! Profiling helper: runs the scalar chain of `benches/tape.rs` many times.
use ndarray::arr0;
use tapegrad_autograd::{Param, Tape};

fn main() {
    let w = Param::new("w", arr0(0.9_f32).into_dyn());
    let b = Param::new("b", arr0(0.1_f32).into_dyn());
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let start = std::time::Instant::now();
    let mut total = 0.0;
    for _ in 0..reps {
        let tape = Tape::new();
        let (wv, bv) = (tape.param(&w), tape.param(&b));
        let mut x = tape.var(arr0(0.5_f32).into_dyn());
        for _ in 0..334 {
            x = (x * wv + bv).tanh();
        }
        let grads = x.backward();
        total += grads.param(&w).unwrap()[[]];
    }
    let per_op = start.elapsed().as_secs_f64() / (reps * 1002) as f64;
    println!("{:.1} ns per op (checksum {total})", per_op * 1e9);
}
