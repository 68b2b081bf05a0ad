//! Random tensor data, generated in parallel and streamed to a writer.
//!
//! A tensor is cut into chunks of [`CHUNK`] elements; chunk `c` of a tensor draws from its own
//! splitmix64 stream seeded by (the tensor's seed, `c`), so the bytes depend only on the seed, not
//! on the thread count or the output format (a BF16 safetensors file and a GGUF of the same seed
//! hold the same values, rounded or quantized). Chunks of a piece of up to [`PIECE`] elements are
//! filled and encoded (floats rounded to nearest even, Q8_0 / Q4_0 blocks by
//! `garnet_kernels::quant::quantize`) by rayon; a writer thread writes finished pieces while the
//! next one is generated, so memory stays at a few pieces whatever the model size.

use super::arch::Init;
use garnet_kernels::DType;
use half::bf16;
use indicatif::ProgressBar;
use rayon::prelude::*;
use std::io::Write;
use std::sync::mpsc;

/// Elements per independently seeded chunk (a multiple of every block size).
const CHUNK: usize = 1 << 16;
/// Elements per piece handed to the writer thread.
const PIECE: usize = 1 << 22;

/// One tensor's data to write.
#[derive(Clone, Debug)]
pub struct Job {
    /// How to fill it.
    pub init: Init,
    /// Stored dtype.
    pub dtype: DType,
    /// Elements (whole blocks of `dtype`).
    pub numel: usize,
    /// Seed of its random stream.
    pub seed: u64,
    /// Zero bytes written after the data (GGUF alignment).
    pub pad: usize,
}

/// splitmix64: the next value of the stream whose state is `x`.
pub fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of tensor `name` in a model of seed `seed` (FNV-1a of the name, mixed).
pub fn tensor_seed(seed: u64, name: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut s = seed ^ h;
    splitmix(&mut s)
}

/// Fills `out` with chunk `chunk`'s values: `center + half_width * U[-1, 1)` (24-bit uniforms, two
/// per draw).
fn fill(seed: u64, chunk: usize, center: f32, half_width: f32, out: &mut [f32]) {
    let mut state = seed ^ (chunk as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    let scale = half_width / (1u32 << 23) as f32;
    let offset = center - half_width;
    for pair in out.chunks_mut(2) {
        let r = splitmix(&mut state);
        for (o, bits) in pair.iter_mut().zip([r as u32, (r >> 32) as u32]) {
            *o = (bits >> 8) as f32 * scale + offset;
        }
    }
}

/// Encodes elements `start..start + len` of `job` into `out` (exactly their bytes): floats
/// rounded to nearest even, blocks by `garnet_kernels::quant::quantize`.
fn encode(job: &Job, start: usize, len: usize, out: &mut [u8]) -> Result<(), String> {
    let mut buf;
    let vals = match &job.init {
        Init::Values(v) => v.get(start..start + len).ok_or("value list shorter than the tensor")?,
        &Init::Uniform { center, half_width } => {
            buf = vec![0f32; len];
            fill(job.seed, start / CHUNK, center, half_width, &mut buf);
            &buf[..]
        }
    };
    match job.dtype {
        DType::F32 => out.chunks_exact_mut(4).zip(vals).for_each(|(o, v)| o.copy_from_slice(&v.to_le_bytes())),
        DType::BF16 => {
            out.chunks_exact_mut(2).zip(vals).for_each(|(o, v)| o.copy_from_slice(&bf16::from_f32(*v).to_le_bytes()))
        }
        d => out.copy_from_slice(&garnet_kernels::quant::quantize(d, vals).map_err(|e| e.to_string())?),
    }
    Ok(())
}

/// The bytes [`write`] writes for `jobs`.
pub fn total_bytes(jobs: &[Job]) -> u64 {
    jobs.iter().map(|j| j.dtype.bytes_for(j.numel).unwrap_or(0) as u64 + j.pad as u64).sum()
}

/// Generates every job's data (plus its padding) and writes it to `out` in order, advancing
/// `bar` by the bytes written. Returns the bytes written.
pub fn write(out: &mut (impl Write + Send), jobs: &[Job], bar: &ProgressBar) -> std::io::Result<u64> {
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(2);
    std::thread::scope(|s| {
        let writer = s.spawn(move || -> std::io::Result<u64> {
            let mut n = 0u64;
            for piece in rx {
                out.write_all(&piece)?;
                n += piece.len() as u64;
                bar.inc(piece.len() as u64);
            }
            out.flush()?;
            Ok(n)
        });
        let generated = (|| -> Result<(), String> {
            for job in jobs {
                if job.dtype.bytes_for(job.numel).is_none() {
                    return Err(format!("{} elements are not whole {} blocks", job.numel, job.dtype.name()));
                }
                for start in (0..job.numel).step_by(PIECE) {
                    let len = PIECE.min(job.numel - start);
                    let last = start + len == job.numel;
                    let bytes = job.dtype.bytes_for(len).unwrap_or(0);
                    let mut piece = vec![0u8; bytes + if last { job.pad } else { 0 }];
                    let chunk_bytes = job.dtype.bytes_for(CHUNK).unwrap_or(1);
                    piece[..bytes].par_chunks_mut(chunk_bytes).enumerate().try_for_each(|(i, out)| {
                        let at = start + i * CHUNK;
                        encode(job, at, CHUNK.min(start + len - at), out)
                    })?;
                    // A closed channel means the writer failed: its error is reported below.
                    if tx.send(piece).is_err() {
                        return Ok(());
                    }
                }
                if job.numel == 0 && job.pad > 0 && tx.send(vec![0; job.pad]).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        })();
        drop(tx);
        let written = writer.join().map_err(|_| std::io::Error::other("the writer thread panicked"))?;
        generated.map_err(std::io::Error::other)?;
        written
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_independent_of_pieces_and_in_range() {
        let job = |dtype| Job {
            init: Init::Uniform { center: 1.0, half_width: 0.5 },
            dtype,
            numel: 3 * CHUNK + 64,
            seed: 7,
            pad: 3,
        };
        let mut out = Vec::new();
        let n = write(&mut out, &[job(DType::F32)], &ProgressBar::hidden()).unwrap();
        assert_eq!(n, total_bytes(&[job(DType::F32)]));
        let vals: Vec<f32> =
            out[..out.len() - 3].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        assert!(vals.iter().all(|v| (0.5..1.5).contains(v)));
        let mean = vals.iter().sum::<f32>() / vals.len() as f32;
        assert!((mean - 1.0).abs() < 0.01, "{mean}");
        // Chunk 2 alone gives the same values.
        let mut chunk = vec![0u8; 4 * CHUNK];
        encode(&job(DType::F32), 2 * CHUNK, CHUNK, &mut chunk).unwrap();
        assert_eq!(chunk, out[8 * CHUNK..12 * CHUNK]);
        let mut q = Vec::new();
        write(&mut q, &[job(DType::Q4_0)], &ProgressBar::hidden()).unwrap();
        assert_eq!(q.len() as u64, total_bytes(&[job(DType::Q4_0)]));
    }
}
