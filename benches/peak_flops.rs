//! The machine's peak `f32` multiply-add rate: independent chains of fused multiply-adds on
//! registers (no memory traffic), on one thread and then on every core rayon sees, for the
//! widest vectors the CPU has (AVX-512, else AVX2 + FMA). The figure against which the
//! products' GFLOP/s in `benches/README.md` are read.
//!
//! `cargo run --release -p tapegrad-benches --features profiling --example peak_flops`
//!
//! `unsafe` here is only the calls of `#[target_feature]` functions, each made after
//! `is_x86_feature_detected!` has confirmed the features it is compiled for.

#[cfg(target_arch = "x86_64")]
mod fma {
    use std::arch::x86_64::*;

    /// Twelve independent accumulators: enough multiply-adds in flight to cover the
    /// latency of two FMA pipes.
    const CHAINS: usize = 12;

    /// `rounds × 12` multiply-adds of 16 lanes; returns a checksum so nothing is elided.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512(rounds: usize) -> f32 {
        let mut acc = [_mm512_set1_ps(0.0); CHAINS];
        let (a, b) = (_mm512_set1_ps(0.999_999_9), _mm512_set1_ps(1e-7));
        for _ in 0..rounds {
            for x in &mut acc {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        acc.iter().map(|&x| _mm512_reduce_add_ps(x)).sum()
    }

    /// `rounds × 12` multiply-adds of 8 lanes.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2(rounds: usize) -> f32 {
        let mut acc = [_mm256_set1_ps(0.0); CHAINS];
        let (a, b) = (_mm256_set1_ps(0.999_999_9), _mm256_set1_ps(1e-7));
        for _ in 0..rounds {
            for x in &mut acc {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        let mut lanes = [0.0_f32; 8];
        let mut sum = 0.0;
        for x in acc {
            // SAFETY: the store writes 8 `f32`s into `lanes`, which holds 8.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), x) };
            sum += lanes.iter().sum::<f32>();
        }
        sum
    }

    /// A kernel of one vector width.
    pub struct Kernel {
        pub name: &'static str,
        pub lanes: usize,
        pub run: fn(usize) -> f32,
    }

    /// The widest kernel this CPU runs.
    pub fn widest() -> Option<Kernel> {
        if is_x86_feature_detected!("avx512f") {
            Some(Kernel {
                name: "AVX-512",
                lanes: 16,
                // SAFETY: AVX-512F was detected just above.
                run: |r| unsafe { avx512(r) },
            })
        } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            Some(Kernel {
                name: "AVX2+FMA",
                lanes: 8,
                // SAFETY: AVX2 and FMA were detected just above.
                run: |r| unsafe { avx2(r) },
            })
        } else {
            None
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn main() {
    use std::time::Instant;
    let Some(fma::Kernel { name, lanes, run }) = fma::widest() else {
        println!("no AVX2+FMA or AVX-512 on this CPU");
        return;
    };
    let rounds = 50_000_000;
    let flops = (rounds * 12 * lanes * 2) as f64;
    let threads = rayon::current_num_threads();
    for _ in 0..3 {
        let start = Instant::now();
        std::hint::black_box(run(rounds));
        let one = flops / start.elapsed().as_secs_f64() / 1e9;
        let start = Instant::now();
        rayon::broadcast(|_| std::hint::black_box(run(rounds)));
        let all = threads as f64 * flops / start.elapsed().as_secs_f64() / 1e9;
        println!("{name} f32 multiply-adds: {one:.1} GFLOP/s on 1 thread, {all:.1} on {threads}");
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    println!("peak_flops measures x86-64 CPUs only");
}
