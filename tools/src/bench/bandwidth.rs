//! The machine's read bandwidth, the ceiling of a memory-bound decode: a streaming sum over a
//! buffer far larger than the last-level cache, on every thread of rayon's global pool (the
//! benchmark's `--threads`), best of a few passes.

use rayon::prelude::*;
use std::time::Instant;

/// Bytes of the buffer: 1 GiB, 32 times this machine's 32 MiB L3.
pub const BUFFER_BYTES: usize = 1 << 30;
/// u64s per task (1 MiB).
const TASK: usize = 1 << 17;

/// Best read bandwidth in GB/s (1e9 bytes per second) over `passes` sums of `bytes` bytes.
pub fn read_gb_s(bytes: usize, passes: usize) -> f64 {
    let mut buf = vec![0u64; bytes / 8];
    // Touch every page with non-zero data (an untouched zero page would read from the cache) from
    // the threads that will read it.
    buf.par_chunks_mut(TASK).enumerate().for_each(|(c, chunk)| {
        for (i, x) in chunk.iter_mut().enumerate() {
            *x = (c * TASK + i) as u64 | 1;
        }
    });
    let mut best = f64::INFINITY;
    for _ in 0..passes.max(1) {
        let start = Instant::now();
        let sum = buf.par_chunks(TASK).map(sum).reduce(|| 0, u64::wrapping_add);
        std::hint::black_box(sum);
        best = best.min(start.elapsed().as_secs_f64());
    }
    (buf.len() * 8) as f64 / best.max(1e-9) / 1e9
}

/// Wrapping sum in eight independent lanes (so the loop vectorises and is not latency-bound).
fn sum(x: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    let mut lanes = x.chunks_exact(8);
    for c in &mut lanes {
        for (a, v) in acc.iter_mut().zip(c) {
            *a = a.wrapping_add(*v);
        }
    }
    let tail = lanes.remainder().iter().fold(0u64, |a, v| a.wrapping_add(*v));
    acc.iter().fold(tail, |a, v| a.wrapping_add(*v))
}

#[cfg(test)]
mod tests {
    #[test]
    fn small_buffer_gives_a_positive_rate() {
        let gb_s = super::read_gb_s(1 << 20, 2);
        assert!(gb_s.is_finite() && gb_s > 0.0);
        assert_eq!(super::sum(&[1, 2, 3, u64::MAX, 5, 6, 7, 8, 9]), 40);
    }
}
