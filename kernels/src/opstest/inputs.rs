//! The ops-test's plumbing: deterministic inputs (splitmix64 seeded from the case name, random
//! weights of every dtype), host <-> backend buffers, the comparison (normalised error, worst
//! element, non-finite outputs) and the timer of `--perf`.
//!
//! Every case runs its op through [`Exec::exec`], called once with the reference and once with
//! the backend under test ([`on_both`]), both seen as a [`Device`].

use super::device::{AnyBuf, Device};
use crate::error::{KernelError, Result};
use crate::reference::RefCpu;
use crate::tensor::{DType, HostTensor};
use half::f16;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// splitmix64: a tiny deterministic PRNG (the same generator as the kernel tests), seeded per
/// case: what a case builds its inputs from.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `name` (FNV-1a), so a case's inputs do not depend on which other
    /// cases run.
    pub(super) fn for_case(name: &str) -> Self {
        let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        Rng(seed)
    }
    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    pub(super) fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Uniform in `[-scale, scale)`.
    pub(super) fn uniform(&mut self, scale: f32) -> f32 {
        (self.unit() * 2.0 - 1.0) * scale
    }
    pub(super) fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(scale)).collect()
    }
    /// Uniform in `[1 - spread, 1 + spread)`: norm weights, expert scales, routing weights.
    pub(super) fn around_one(&mut self, n: usize, spread: f32) -> Vec<f32> {
        (0..n).map(|_| 1.0 + self.uniform(spread)).collect()
    }
    /// Uniform in `0..n`.
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// `k` distinct values of `0..n` in random order (partial Fisher-Yates).
    pub(super) fn distinct(&mut self, n: usize, k: usize) -> Vec<u32> {
        let mut all: Vec<u32> = (0..n as u32).collect();
        for i in 0..k.min(n) {
            let j = i + self.below(n - i);
            all.swap(i, j);
        }
        all.truncate(k);
        all
    }
}

/// A weight of `shape` in `dtype` with elements of magnitude about `scale`: float dtypes hold
/// rounded uniform values; block formats hold random bytes (every quant and sub-scale bit
/// pattern) with their f16 scale (and min) fields (Q8_K: its f32 d) replaced by random values of
/// either sign, so that no decoder sees an infinite, NaN or subnormal scale.
pub(super) fn weight(rng: &mut Rng, dtype: DType, shape: &[usize], scale: f32) -> Result<HostTensor> {
    let n: usize = shape.iter().product();
    if !dtype.is_quantized() {
        return HostTensor::from_f32_as(&rng.vec(n, scale), shape.to_vec(), dtype);
    }
    let (elems, size) = dtype.block();
    let blocks = n.checked_div(elems).unwrap_or(0);
    let mut bytes = vec![0u8; blocks * size];
    for chunk in bytes.chunks_mut(8) {
        let r = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    // Byte offsets of the f16 scale (and min) fields, and the largest |quant * sub-scale| that
    // multiplies them, so that elements come out about `scale`.
    let (fields, reach): (&[usize], f32) = match dtype {
        DType::Q8_0 => (&[0], 127.0),
        DType::Q4_0 => (&[0], 8.0),
        DType::Q5_0 => (&[0], 16.0),
        DType::Q4_1 => (&[0, 2], 16.0),
        DType::Q5_1 => (&[0, 2], 32.0),
        DType::Q4_K | DType::Q5_K => (&[0, 2], 63.0 * 16.0),
        DType::Q2_K => (&[80, 82], 15.0 * 3.0),
        DType::Q3_K => (&[108], 32.0 * 4.0),
        DType::Q6_K => (&[208], 128.0 * 32.0),
        DType::Q8_K => (&[0], 128.0),
        _ => return Err(KernelError::DType { op: "ops-test weight", dtype: dtype.name() }),
    };
    for block in bytes.chunks_exact_mut(size) {
        for &at in fields {
            // |d| in [0.25, 1) * scale / reach, and at least 1e-4 (f16's normal range starts at 6.1e-5).
            let d = (rng.uniform(0.375) + 0.625 * if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 }) * scale / reach;
            let d = if d.abs() < 1e-4 { 1e-4f32.copysign(d) } else { d };
            if dtype == DType::Q8_K {
                block[at..at + 4].copy_from_slice(&d.to_le_bytes()); // Q8_K's d is an f32
            } else {
                block[at..at + 2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
            }
        }
    }
    HostTensor::new(Arc::new(bytes), 0, dtype, shape.to_vec())
}

/// Trailing elements appended to every output buffer and compared too: an op that writes past
/// its range changes them.
pub(super) const GUARD: usize = 3;
/// The value the guard elements hold.
const GUARD_VALUE: f32 = 7.25;

/// An output buffer's initial contents: NaN over the op's `len` elements (an element the op
/// fails to write stays NaN and fails the non-finite check), then the guard.
pub(super) fn poisoned(len: usize) -> Vec<f32> {
    let mut v = vec![f32::NAN; len + GUARD];
    v[len..].fill(GUARD_VALUE);
    v
}

/// `x` with the guard appended (in-place ops: the guard must come back unchanged).
pub(super) fn guarded(x: Vec<f32>) -> Vec<f32> {
    let mut v = x;
    v.extend([GUARD_VALUE; GUARD]);
    v
}

/// A backend buffer holding `x`.
pub(super) fn put(be: &dyn Device, x: &[f32]) -> Result<AnyBuf> {
    let mut b = be.alloc(x.len())?;
    be.upload(x, &mut b)?;
    Ok(b)
}

/// A backend id buffer holding `x`.
pub(super) fn put_ids(be: &dyn Device, x: &[u32]) -> Result<AnyBuf> {
    let mut b = be.alloc_ids(x.len())?;
    be.upload_ids(x, &mut b)?;
    Ok(b)
}

/// The whole of a backend buffer, on the host.
pub(super) fn get(be: &dyn Device, b: &AnyBuf) -> Result<Vec<f32>> {
    let mut out = vec![0.0; be.buf_len(b)?];
    be.download(b, 0, &mut out)?;
    Ok(out)
}

/// The first `len` elements of an output buffer made by [`poisoned`] or [`guarded`]; an error if
/// the op changed the guard after them.
pub(super) fn get_out(be: &dyn Device, b: &AnyBuf, len: usize) -> Result<Vec<f32>> {
    let mut out = get(be, b)?;
    check_guard(&out, len, |v| v.to_bits() == GUARD_VALUE.to_bits())?;
    out.truncate(len);
    Ok(out)
}

/// Fails unless every element of `buf` past `len` passes `intact`.
pub(super) fn check_guard<T: Copy + std::fmt::Debug>(buf: &[T], len: usize, intact: impl Fn(T) -> bool) -> Result<()> {
    match buf.iter().enumerate().skip(len).find(|(_, v)| !intact(**v)) {
        Some((i, v)) => Err(KernelError::Shape {
            op: "ops-test",
            what: format!("the op wrote past its {len} output elements: [{i}] = {v:?}"),
        }),
        None => Ok(()),
    }
}

/// Times an op for `--perf`: one warm-up call, then as many calls as fill about
/// [`Timer::TARGET`], with a one-element download as the sync at the end (it waits for all
/// queued work). Off, it does nothing.
pub(super) struct Timer<'a> {
    be: &'a dyn Device,
    on: bool,
    pub(super) per_call: Option<Duration>,
}

impl<'a> Timer<'a> {
    const TARGET: Duration = Duration::from_millis(200);
    const MAX_CALLS: u32 = 10_000;

    pub(super) fn new(be: &'a dyn Device, on: bool) -> Self {
        Timer { be, on, per_call: None }
    }

    /// Times `op` (call it after the checked call and its download: in-place ops change their
    /// buffers each time).
    pub(super) fn time(&mut self, mut op: impl FnMut() -> Result<()>) -> Result<()> {
        if !self.on {
            return Ok(());
        }
        let sync_buf = self.be.alloc(1)?;
        let sync = || self.be.download(&sync_buf, 0, &mut [0.0]);
        sync()?;
        let start = Instant::now();
        op()?;
        sync()?;
        let first = start.elapsed().as_secs_f64().max(1e-7);
        let calls = (Self::TARGET.as_secs_f64() / first).ceil().clamp(1.0, Self::MAX_CALLS as f64) as u32;
        let start = Instant::now();
        for _ in 0..calls {
            op()?;
        }
        sync()?;
        self.per_call = Some(start.elapsed() / calls);
        Ok(())
    }
}

/// An op of one case on its host inputs: uploads them to `be`, runs the op (the checked call,
/// then `t.time`), downloads the outputs.
pub(super) trait Exec {
    /// The outputs on the host.
    type Out;
    /// Runs the op on `be`.
    fn exec(&self, be: &dyn Device, t: &mut Timer) -> Result<Self::Out>;
}

/// Why a case produced no comparable output.
#[derive(Debug)]
pub enum Failed {
    /// The inputs could not be built (a bug of the case list).
    Setup(KernelError),
    /// The reference failed (a bug of the case list: its arguments are invalid).
    Reference(String),
    /// The backend under test returned an error or panicked.
    Backend(String),
    /// Outputs that are not numbers disagree (routing: the chosen experts).
    Mismatch(String),
}

/// Both backends' outputs of one case, and the backend's time per call with `--perf`.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair<T> {
    /// The reference's.
    pub want: T,
    /// The backend's.
    pub got: T,
    /// The backend's time per call (with `perf`).
    pub per_call: Option<Duration>,
}

/// Runs `op` on the reference, then on `be` (timed with `perf`). A panic in either is caught
/// and reported as that side's failure.
pub(super) fn on_both<E: Exec>(be: &dyn Device, op: &E, perf: bool) -> Result<Pair<E::Out>, Failed> {
    let reference: &dyn Device = &RefCpu::new();
    let want = guarded_call(|| op.exec(reference, &mut Timer::new(reference, false))).map_err(Failed::Reference)?;
    let mut t = Timer::new(be, perf);
    let got = guarded_call(|| op.exec(be, &mut t)).map_err(Failed::Backend)?;
    Ok(Pair { want, got, per_call: t.per_call })
}

/// `f()`, with its error or panic as text.
fn guarded_call<T>(f: impl FnOnce() -> Result<T>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown payload".into());
            Err(format!("panicked: {msg}"))
        }
    }
}

/// The element with the largest `|got - want|`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Worst {
    /// Flat index into the op's outputs (several outputs are concatenated in argument order).
    pub index: usize,
    /// The backend's value.
    pub got: f32,
    /// The reference's value.
    pub want: f32,
}

/// The comparison of two outputs.
pub(super) struct Diff {
    /// `max |got - want| / max |want|` (0 when equal; infinite when `want` is all zero and `got`
    /// is not).
    pub(super) error: f64,
    /// The largest difference (the first non-finite output when there is one).
    pub(super) worst: Option<Worst>,
    /// Non-finite elements in `got` or `want`.
    pub(super) non_finite: usize,
}

/// Compares `got` with `want` element by element (lengths are equal: both come from the same
/// [`Exec`]; a difference is reported as a non-finite count so the case fails).
pub(super) fn diff(got: &[f32], want: &[f32]) -> Diff {
    let mut non_finite = got.len().abs_diff(want.len());
    let (mut max_diff, mut max_want) = (0.0f64, 0.0f64);
    let (mut worst, mut first_bad) = (None, None);
    for (index, (&g, &w)) in got.iter().zip(want).enumerate() {
        if !(g.is_finite() && w.is_finite()) {
            non_finite += 1;
            first_bad.get_or_insert(Worst { index, got: g, want: w });
            continue;
        }
        max_want = max_want.max(w.abs() as f64);
        let d = (g as f64 - w as f64).abs();
        if d > max_diff || worst.is_none() {
            max_diff = max_diff.max(d);
            worst = Some(Worst { index, got: g, want: w });
        }
    }
    let error = match (max_diff, max_want) {
        (0.0, _) => 0.0,
        (_, 0.0) => f64::INFINITY,
        (d, m) => d / m,
    };
    Diff { error, worst: first_bad.or(worst), non_finite }
}
