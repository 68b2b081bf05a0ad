//! The ops-test (`garnet ops-test`, llama.cpp's test-backend-ops): one list of cases
//! ([`cases`]), each run on a backend and on the reference [`RefCpu`](crate::reference::RefCpu) from the
//! same deterministic inputs, compared as normalised error `max |got - want| / max |want|` against
//! the case's bound, with any non-finite output a failure and an op error a failure.
//!
//! A case is an [`OpCase`]: its op, name, bound, cost, and how it runs. Files: `cases` (the
//! list), `inputs` (PRNG, weights, buffers, comparison, timer), `device` (a backend with
//! type-erased buffers, what a case runs on), and one file per op family holding its case types
//! (their inputs, the op call, the bound and cost): `matmul` (also embed), `norm` (also rope),
//! `attention` (also kv_write), `elementwise`, `moe`, `sample`. A new op's cases are a type in
//! its family's file and lines in `cases`.
//!
//! Output buffers start as NaN over the op's range plus a few guard elements that are compared
//! too, so an element the op leaves unwritten or a write past the range fails the case. With
//! `perf`, the backend's call is timed (warm-up, then repeated for ~0.2 s, a download as the sync)
//! and the case reports the bytes an op must move and its FLOPs.

pub mod attention;
mod cases;
mod device;
pub mod elementwise;
mod inputs;
pub mod matmul;
pub mod moe;
pub mod norm;
pub mod sample;

pub use cases::cases;
pub use device::{AnyBuf, Device};
pub use inputs::{Failed, Pair, Rng, Worst};

use crate::backend::Backend;
use crate::fallback::HostFallback;
use crate::op::{Op, OpSet};
use crate::open::{BackendKind, Precision, WithBackend};
use std::time::Duration;

/// One ops-test case: an op with typed parameters (its argument struct plus what its inputs
/// need). Each op family's file defines its case types; [`cases`] lists them.
pub trait OpCase: Send + Sync {
    /// The op.
    fn op(&self) -> Op;
    /// A readable, unique name: the op, then its parameters (`matmul m=1 n=2048 k=1536 Q4_K`).
    /// It is what `--list` prints and it seeds the inputs.
    fn name(&self) -> String;
    /// The largest normalised error that passes. Pure data movement must be exact; arithmetic
    /// ops allow f32 rounding; transcendentals (tanh, exp, sin/cos) the error of a GPU's
    /// built-ins; products with weights depend on the dtype.
    fn bound(&self) -> f64;
    /// (bytes an op must read and write at least, floating-point operations) per call.
    fn cost(&self) -> (usize, usize);
    /// Builds the inputs from `rng` and runs the op on the reference and on `be` (timed with
    /// `perf`): both outputs as comparable values.
    fn run(&self, rng: &mut Rng, be: &dyn Device, perf: bool) -> Result<Pair<Vec<f32>>, Failed>;
}

/// A case of the list.
pub type Case = Box<dyn OpCase>;

/// A boxed case is a case (so that `&Case` is a `&dyn OpCase`).
impl OpCase for Case {
    fn op(&self) -> Op {
        (**self).op()
    }
    fn name(&self) -> String {
        (**self).name()
    }
    fn bound(&self) -> f64 {
        (**self).bound()
    }
    fn cost(&self) -> (usize, usize) {
        (**self).cost()
    }
    fn run(&self, rng: &mut Rng, be: &dyn Device, perf: bool) -> Result<Pair<Vec<f32>>, Failed> {
        (**self).run(rng, be, perf)
    }
}

/// The time of one call and what it moves and computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Perf {
    /// Wall time per call (the backend's queue drained once per batch of calls).
    pub per_call: Duration,
    /// Bytes the op must read and write at least.
    pub bytes: u64,
    /// Floating-point operations.
    pub flops: u64,
}

impl Perf {
    /// Bytes per second, in GB/s.
    pub fn gb_per_s(&self) -> f64 {
        self.bytes as f64 / self.per_call.as_secs_f64().max(1e-12) / 1e9
    }
    /// FLOPs per second, in GFLOP/s.
    pub fn gflop_per_s(&self) -> f64 {
        self.flops as f64 / self.per_call.as_secs_f64().max(1e-12) / 1e9
    }
}

/// The result of one case on one backend.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Error within the bound, every output finite, no error from the op.
    pub passed: bool,
    /// The normalised error (`None` when the op failed before producing outputs).
    pub error: Option<f64>,
    /// The case's bound.
    pub bound: f64,
    /// The element with the largest difference, or the first non-finite one.
    pub worst: Option<Worst>,
    /// Non-finite outputs.
    pub non_finite: usize,
    /// What went wrong when not a number: the op's error, a panic, a routing mismatch.
    pub message: Option<String>,
    /// Time, bytes and FLOPs (with `perf`, when the op ran).
    pub perf: Option<Perf>,
    /// Calls of the backend that went through the host fallback (see [`crate::fallback`]).
    pub fallback_calls: u64,
}

impl Outcome {
    /// The verdict in one line: `OK err 1.2e-7 <= 1e-5`, or `FAIL` with the error, the non-finite
    /// count and the worst element (without [`Outcome::message`]).
    pub fn status(&self) -> String {
        let mut s = String::from(if self.passed { "OK  " } else { "FAIL" });
        if let Some(e) = self.error {
            let rel = if e <= self.bound { "<=" } else { ">" };
            s += &format!(" err {e:.2e} {rel} {:.0e}", self.bound);
        }
        if self.non_finite > 0 {
            s += &format!(" {} non-finite", self.non_finite);
        }
        if let (false, Some(w)) = (self.passed, self.worst) {
            s += &format!(" worst [{}] got {:e} want {:e}", w.index, w.got, w.want);
        }
        s
    }

    /// [`Outcome::status`] followed by the message, if any.
    pub fn describe(&self) -> String {
        match &self.message {
            Some(m) => format!("{} {m}", self.status()),
            None => self.status(),
        }
    }

    fn failed(bound: f64, message: String) -> Self {
        let (worst, perf) = (None, None);
        Outcome {
            passed: false,
            error: None,
            bound,
            worst,
            non_finite: 0,
            message: Some(message),
            perf,
            fallback_calls: 0,
        }
    }
}

/// Runs `case` on `backend` and on the reference from the same inputs and compares them.
/// Never panics on a backend's panic (it is caught and reported); `perf` times the backend.
pub fn run<B: Backend>(backend: &B, case: &dyn OpCase, perf: bool) -> Outcome {
    let bound = case.bound();
    let fallback_calls = || backend.fallback_calls().iter().map(|c| c.1).sum::<u64>();
    let before = fallback_calls();
    let pair = match case.run(&mut Rng::for_case(&case.name()), backend, perf) {
        Ok(p) => p,
        Err(Failed::Setup(e)) => return Outcome::failed(bound, format!("inputs: {e}")),
        Err(Failed::Reference(e)) => return Outcome::failed(bound, format!("reference failed: {e}")),
        Err(Failed::Backend(e)) => return Outcome::failed(bound, format!("error: {e}")),
        Err(Failed::Mismatch(e)) => return Outcome::failed(bound, e),
    };
    let d = inputs::diff(&pair.got, &pair.want);
    let (bytes, flops) = case.cost();
    Outcome {
        passed: d.non_finite == 0 && d.error <= bound,
        error: Some(d.error),
        bound,
        worst: d.worst,
        non_finite: d.non_finite,
        message: None,
        perf: pair.per_call.map(|per_call| Perf { per_call, bytes: bytes as u64, flops: flops as u64 }),
        fallback_calls: fallback_calls() - before,
    }
}

/// The backends `garnet ops-test` runs when none is named, in order.
pub const DEFAULT_BACKENDS: [BackendKind; 4] =
    [BackendKind::Cpu, BackendKind::Wgpu, BackendKind::Cuda, BackendKind::CudaEmulated];

/// The numerics a backend is tested with: the CPU with f32 activations (its quantized ones
/// are measured on the real model instead, docs/KERNELS.md), the GPUs as they run natively.
fn precision(kind: BackendKind) -> Precision {
    match kind {
        BackendKind::Cpu | BackendKind::CpuRef => Precision::Reference,
        _ => Precision::Native,
    }
}

/// The results of one backend over a list of cases.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Cases that passed.
    pub passed: usize,
    /// The failed cases' names and outcomes.
    pub failed: Vec<(String, Outcome)>,
    /// The ops whose cases ran (in part) through the host fallback, in [`Op`] order.
    pub fallback_ops: Vec<Op>,
}

/// Runs `cases` on backend `kind` with the ops of `host_fallback` forced through the host
/// fallback (the fast CPU backend at level `cpu_isa` when given), calling `each` after every case. `Err(why)` when the backend cannot run here (no
/// adapter, not built): the caller reports it as skipped.
pub fn run_backend(
    kind: BackendKind,
    host_fallback: OpSet,
    cpu_isa: Option<crate::cpu::Isa>,
    cases: &[Case],
    perf: bool,
    each: &mut dyn FnMut(&Case, &Outcome),
) -> Result<Summary, String> {
    struct Run<'a> {
        cases: &'a [Case],
        perf: bool,
        each: &'a mut dyn FnMut(&Case, &Outcome),
    }
    impl WithBackend for Run<'_> {
        type Output = Result<Summary, String>;
        fn with<B: Backend>(self, make: &dyn Fn() -> crate::Result<HostFallback<B>>) -> Self::Output {
            run_cases(make, self.cases, self.perf, self.each)
        }
    }
    let run = Run { cases, perf, each };
    let o = crate::OpenOptions { precision: precision(kind), host_fallback, cpu_isa };
    let result = crate::open(kind, o, run).map_err(|e| e.to_string())?;
    result.map_err(|e| match kind {
        BackendKind::Wgpu => format!("no wgpu adapter ({e})"),
        BackendKind::Cuda => format!("no CUDA device ({e})"),
        _ => e,
    })
}

/// One kernel's memory-model totals in a case, and its threads per block.
pub type KernelMemory = (&'static str, crate::cuda::kernels::MemStats, u32);

/// `garnet ops-test --memory-model`: runs `cases` on the emulated CUDA device with its
/// memory-transaction model on (`Emulator::model_memory`) and calls `each` with every case's
/// outcome and the totals of each kernel it launched (with its threads per block). Only the
/// accesses the kernels make through `gld` / `gst` / `sld` / `sst` are modelled. `Err(why)` when
/// this build has no emulator.
pub fn memory_model(cases: &[Case], each: &mut dyn FnMut(&Case, &Outcome, &[KernelMemory])) -> Result<(), String> {
    let be = HostFallback::new(crate::cuda::Cuda::emulated(Precision::Native).map_err(|e| e.to_string())?, OpSet::NONE);
    let dev = be.inner().device();
    dev.model_memory();
    for case in cases {
        let before = dev.memory_stats();
        let outcome = run(&be, case.as_ref(), false);
        let delta: Vec<_> = dev
            .memory_stats()
            .into_iter()
            .filter_map(|(kernel, after, threads)| {
                let old = before.iter().find(|(k, ..)| *k == kernel).map(|(_, m, _)| *m).unwrap_or_default();
                let d = after.minus(&old);
                (d != Default::default()).then_some((kernel, d, threads))
            })
            .collect();
        each(case, &outcome, &delta);
    }
    Ok(())
}

/// `garnet ops-test --races`: runs `cases` on the emulated CUDA device with its race detector on
/// (`Emulator::detect_races(seed)`: threads resumed in a random order, unordered conflicting
/// accesses an error that fails the case), calling `each` after every case. `Err(why)` when this
/// build has no emulator.
pub fn races(cases: &[Case], seed: u64, each: &mut dyn FnMut(&Case, &Outcome)) -> Result<Summary, String> {
    let make = || {
        let be = HostFallback::new(crate::cuda::Cuda::emulated(Precision::Native)?, OpSet::NONE);
        be.inner().device().detect_races(seed);
        Ok(be)
    };
    run_cases(&make, cases, false, each)
}

/// Runs every case on a backend from `make`, and on a fresh one after a case panicked (a panic
/// may leave a device backend's recording state broken for the cases after it).
fn run_cases<B: Backend>(
    make: &dyn Fn() -> crate::Result<B>,
    cases: &[Case],
    perf: bool,
    each: &mut dyn FnMut(&Case, &Outcome),
) -> Result<Summary, String> {
    let mut be = Ok(make().map_err(|e| e.to_string())?);
    let mut summary = Summary::default();
    for case in cases {
        let outcome = match &be {
            Ok(be) => run(be, case, perf),
            Err(e) => Outcome::failed(case.bound(), format!("backend not recreated after a panic: {e}")),
        };
        each(case, &outcome);
        let panicked = outcome.message.as_deref().is_some_and(|m| m.starts_with("error: panicked"));
        if outcome.fallback_calls > 0 && !summary.fallback_ops.contains(&case.op()) {
            summary.fallback_ops.push(case.op());
            summary.fallback_ops.sort();
        }
        if outcome.passed {
            summary.passed += 1;
        } else {
            summary.failed.push((case.name(), outcome));
        }
        if panicked {
            be = make();
        }
    }
    Ok(summary)
}
