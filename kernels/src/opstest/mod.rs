//! The ops-test (`garnet ops-test`, llama.cpp's test-backend-ops): one typed list of cases
//! ([`cases`]), each run on a backend and on the reference [`RefCpu`](crate::reference::RefCpu) from the
//! same deterministic inputs, compared as normalised error `max |got - want| / max |want|` against
//! the case's bound, with any non-finite output a failure and an op error a failure.
//!
//! Files: `cases` (the list), `inputs` (PRNG, weights, buffers, comparison, timer), and one file
//! per op family building the inputs and running the op: `matmul` (embed, matmul), `norm`
//! (rms_norm, add_rms_norm, rope), `attention` (kv_write, attention), `elementwise` (geglu,
//! softcap, scale, add, copy), `moe` (moe_route, moe_experts), `sample` (argmax).
//!
//! Output buffers start as NaN over the op's range plus a few guard elements that are compared
//! too, so an element the op leaves unwritten or a write past the range fails the case. With
//! `perf`, the backend's call is timed (warm-up, then repeated for ~0.2 s, a download as the sync)
//! and the case reports the bytes an op must move and its FLOPs.

mod attention;
mod cases;
mod elementwise;
mod inputs;
mod matmul;
mod moe;
mod norm;
mod sample;

pub use cases::cases;
pub use inputs::Worst;

use crate::args::*;
use crate::backend::Backend;
use crate::fallback::HostFallback;
use crate::op::{Op, OpSet};
use crate::open::{BackendKind, Precision, WithBackend};
use crate::tensor::DType;
use inputs::{on_both, Failed, Rng};
use std::time::Duration;

/// One op with typed parameters (the op's argument struct plus what its inputs need).
#[derive(Clone, Debug, PartialEq)]
pub enum Case {
    /// Gather from a `[rows, row_len]` table of `dtype`.
    Embed {
        /// The op's arguments.
        args: EmbedArgs,
        /// Table rows.
        rows: usize,
        /// Table row length.
        row_len: usize,
        /// Table dtype.
        dtype: DType,
    },
    /// `x W^T` with a weight of `dtype`.
    Matmul {
        /// The op's arguments.
        args: MatmulArgs,
        /// Weight dtype.
        dtype: DType,
    },
    /// RMSNorm with a weight of `weight` (or none).
    RmsNorm {
        /// The op's arguments.
        args: RmsNormArgs,
        /// Weight dtype; `None`: the scale-free norm.
        weight: Option<DType>,
    },
    /// `residual += RMSNorm(x) * w`.
    AddRmsNorm {
        /// The op's arguments.
        args: RmsNormArgs,
        /// Weight dtype.
        weight: DType,
    },
    /// LayerNorm with a weight and a bias of `weight`'s dtype.
    LayerNorm {
        /// The op's arguments.
        args: LayerNormArgs,
        /// Weight and bias dtype.
        weight: DType,
    },
    /// RoPE in place (default, proportional or frequency-scaled, as the arguments say).
    Rope {
        /// The op's arguments.
        args: RopeArgs,
    },
    /// Keys and values into a cache ring.
    KvWrite {
        /// The op's arguments.
        args: KvWriteArgs,
    },
    /// Causal GQA attention over a cache filled with a random history.
    Attention {
        /// The op's arguments.
        args: AttentionArgs,
    },
    /// `gelu_tanh(gate) * up`.
    Geglu {
        /// The op's arguments.
        args: GegluArgs,
    },
    /// `cap * tanh(x / cap)`.
    Softcap {
        /// The op's arguments.
        args: SoftcapArgs,
    },
    /// `x *= factor`.
    Scale {
        /// The op's arguments.
        args: ScaleArgs,
    },
    /// `acc = (acc + x) * scale`.
    Add {
        /// The op's arguments.
        args: AddArgs,
    },
    /// A range of one buffer into another.
    Copy {
        /// The op's arguments.
        args: CopyArgs,
    },
    /// Top-k routing; `ties` makes runs of equal scores (ties go to the lower id).
    MoeRoute {
        /// The op's arguments.
        args: RouteArgs,
        /// Scores on a coarse grid, so that many are equal.
        ties: bool,
    },
    /// The selected experts' FFNs, weights of `dtype`.
    MoeExperts {
        /// The op's arguments.
        args: MoeArgs,
        /// Dtype of `gate_up` and `down`.
        dtype: DType,
    },
    /// Greedy choice per row; `special` adds repeated maxima and rows without a choice.
    Argmax {
        /// The op's arguments.
        args: ArgmaxArgs,
        /// Ties, NaN, +inf and all -inf rows.
        special: bool,
    },
}

/// The bound of a product with weights of `dtype`: f32 weights leave only summation order;
/// f16/bf16 weights allow a backend that rounds activations to f16; block formats allow one that
/// quantizes activations to 8-bit blocks (llama.cpp's q8_1 / q8_K: about 4e-3 on these inputs).
fn product_bound(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 1e-5,
        DType::F16 | DType::BF16 => 2e-3,
        _ => 1e-2,
    }
}

impl Case {
    /// The op.
    pub fn op(&self) -> Op {
        match self {
            Case::Embed { .. } => Op::Embed,
            Case::Matmul { .. } => Op::Matmul,
            Case::RmsNorm { .. } => Op::RmsNorm,
            Case::AddRmsNorm { .. } => Op::AddRmsNorm,
            Case::LayerNorm { .. } => Op::LayerNorm,
            Case::Rope { .. } => Op::Rope,
            Case::KvWrite { .. } => Op::KvWrite,
            Case::Attention { .. } => Op::Attention,
            Case::Geglu { .. } => Op::Geglu,
            Case::Softcap { .. } => Op::Softcap,
            Case::Scale { .. } => Op::Scale,
            Case::Add { .. } => Op::Add,
            Case::Copy { .. } => Op::Copy,
            Case::MoeRoute { .. } => Op::MoeRoute,
            Case::MoeExperts { .. } => Op::MoeExperts,
            Case::Argmax { .. } => Op::Argmax,
        }
    }

    /// A readable, unique name: the op, then its parameters (`matmul m=1 n=2048 k=1536 Q4_K`).
    pub fn name(&self) -> String {
        let op = self.op().name();
        match self {
            Case::Embed { args: a, rows, row_len, dtype } => format!(
                "{op} tokens={} width={} col_offset={} scale={} table={rows}x{row_len} {}",
                a.tokens,
                a.width,
                a.col_offset,
                a.scale,
                dtype.name()
            ),
            Case::Matmul { args: a, dtype } => format!("{op} m={} n={} k={} {}", a.m, a.n, a.k, dtype.name()),
            Case::RmsNorm { args: a, weight } => {
                let w = weight.map_or("none", |d| d.name());
                format!("{op} rows={} dim={} eps={:e} w={w}", a.rows, a.dim, a.eps)
            }
            Case::AddRmsNorm { args: a, weight } => {
                format!("{op} rows={} dim={} eps={:e} w={}", a.rows, a.dim, a.eps, weight.name())
            }
            Case::LayerNorm { args: a, weight } => {
                format!("{op} rows={} dim={} eps={:e} w={}", a.rows, a.dim, a.eps, weight.name())
            }
            Case::Rope { args: a } => {
                let kind = match (a.rotary_pairs * 2 == a.head_dim, a.freq_scale == 1.0) {
                    (true, true) => "default",
                    (false, true) => "proportional",
                    (true, false) => "freq_scale",
                    (false, false) => "proportional freq_scale",
                };
                format!(
                    "{op} tokens={} heads={} head_dim={} pairs={} theta={} pos0={} freq_scale={} ({kind})",
                    a.tokens, a.heads, a.head_dim, a.rotary_pairs, a.theta, a.pos0, a.freq_scale
                )
            }
            Case::KvWrite { args: a } => {
                format!("{op} tokens={} kv_dim={} pos0={} capacity={}", a.tokens, a.kv_dim, a.pos0, a.capacity)
            }
            Case::Attention { args: a } => format!(
                "{op} tokens={} heads={}/{} head_dim={} pos0={} capacity={} window={} scale={}",
                a.tokens,
                a.n_heads,
                a.n_kv_heads,
                a.head_dim,
                a.pos0,
                a.capacity,
                a.window.map_or("none".into(), |w| w.to_string()),
                a.scale
            ),
            Case::Geglu { args: a } => format!("{op} rows={} width={}", a.rows, a.width),
            Case::Softcap { args: a } => format!("{op} len={} cap={}", a.len, a.cap),
            Case::Scale { args: a } => format!("{op} len={} factor={}", a.len, a.factor),
            Case::Add { args: a } => format!("{op} len={} scale={}", a.len, a.scale),
            Case::Copy { args: a } => {
                format!("{op} len={} src_offset={} dst_offset={}", a.len, a.src_offset, a.dst_offset)
            }
            Case::MoeRoute { args: a, ties } => format!(
                "{op} tokens={} experts={} top_k={}{}",
                a.tokens,
                a.n_experts,
                a.top_k,
                if *ties { " ties" } else { "" }
            ),
            Case::MoeExperts { args: a, dtype } => format!(
                "{op} tokens={} hidden={} inter={} experts={} top_k={} {}",
                a.tokens,
                a.hidden,
                a.inter,
                a.n_experts,
                a.top_k,
                dtype.name()
            ),
            Case::Argmax { args: a, special } => {
                format!("{op} rows={} len={}{}", a.rows, a.len, if *special { " special" } else { "" })
            }
        }
    }

    /// The largest normalised error that passes. Pure data movement must be exact; arithmetic
    /// ops allow f32 rounding; transcendentals (tanh, exp, sin/cos) the error of a GPU's
    /// built-ins; products with weights depend on the dtype ([`product_bound`]).
    pub fn bound(&self) -> f64 {
        match self {
            Case::Embed { dtype, .. } if dtype.is_quantized() => 1e-6, // d * q may be evaluated in another order
            Case::Embed { .. } | Case::KvWrite { .. } | Case::Copy { .. } => 0.0,
            Case::Scale { .. } | Case::Add { .. } => 1e-6,
            Case::RmsNorm { .. } | Case::AddRmsNorm { .. } | Case::LayerNorm { .. } => 1e-5,
            Case::Geglu { .. } | Case::Softcap { .. } | Case::MoeRoute { .. } | Case::Argmax { .. } => 1e-5,
            Case::Attention { .. } => 5e-5,
            Case::Rope { .. } => 1e-4, // sin/cos of angles up to thousands of radians
            Case::Matmul { dtype, .. } | Case::MoeExperts { dtype, .. } => product_bound(*dtype),
        }
    }

    /// (bytes an op must read and write at least, floating-point operations) per call.
    pub fn cost(&self) -> (u64, u64) {
        let (bytes, flops) = match self {
            Case::Embed { args, dtype, .. } => matmul::embed_cost(args, *dtype),
            Case::Matmul { args, dtype } => matmul::matmul_cost(args, *dtype),
            Case::RmsNorm { args, weight } => norm::rms_norm_cost(args, weight.is_some(), false),
            Case::AddRmsNorm { args, .. } => norm::rms_norm_cost(args, true, true),
            Case::LayerNorm { args, .. } => norm::layer_norm_cost(args),
            Case::Rope { args } => norm::rope_cost(args),
            Case::KvWrite { args } => attention::kv_write_cost(args),
            Case::Attention { args } => attention::attention_cost(args),
            Case::Geglu { args } => (12 * args.rows * args.width, 20 * args.rows * args.width),
            Case::Softcap { args } => (8 * args.len, 20 * args.len),
            Case::Scale { args } => (8 * args.len, args.len),
            Case::Add { args } => (12 * args.len, 2 * args.len),
            Case::Copy { args } => (8 * args.len, 0),
            Case::MoeRoute { args, .. } => moe::route_cost(args),
            Case::MoeExperts { args, dtype } => moe::experts_cost(args, *dtype),
            Case::Argmax { args, .. } => sample::argmax_cost(args),
        };
        (bytes as u64, flops as u64)
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
pub fn run<B: Backend>(backend: &B, case: &Case, perf: bool) -> Outcome {
    let bound = case.bound();
    let fallback_calls = || backend.fallback_calls().iter().map(|c| c.1).sum::<u64>();
    let before = fallback_calls();
    let pair = match run_op(backend, case, perf) {
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
        perf: pair.per_call.map(|per_call| Perf { per_call, bytes, flops }),
        fallback_calls: fallback_calls() - before,
    }
}

/// Builds the case's inputs and runs it on both backends; outputs as comparable f32 vectors.
fn run_op<B: Backend>(be: &B, case: &Case, perf: bool) -> Result<inputs::Pair<Vec<f32>>, Failed> {
    let rng = &mut Rng::for_case(&case.name());
    match case {
        Case::Embed { args, rows, row_len, dtype } => {
            on_both(be, &matmul::Embed::new(rng, *args, *rows, *row_len, *dtype)?, perf)
        }
        Case::Matmul { args, dtype } => on_both(be, &matmul::Matmul::new(rng, *args, *dtype)?, perf),
        Case::RmsNorm { args, weight } => on_both(be, &norm::Norm::new(rng, *args, *weight, false)?, perf),
        Case::AddRmsNorm { args, weight } => on_both(be, &norm::Norm::new(rng, *args, Some(*weight), true)?, perf),
        Case::LayerNorm { args, weight } => on_both(be, &norm::LayerNorm::new(rng, *args, *weight)?, perf),
        Case::Rope { args } => on_both(be, &norm::Rope::new(rng, *args), perf),
        Case::KvWrite { args } => on_both(be, &attention::KvWrite::new(rng, *args), perf),
        Case::Attention { args } => on_both(be, &attention::Attention::new(rng, *args), perf),
        Case::Geglu { args } => on_both(be, &elementwise::Geglu::new(rng, *args), perf),
        Case::Softcap { args } => on_both(be, &elementwise::Softcap::new(rng, *args), perf),
        Case::Scale { args } => on_both(be, &elementwise::Scale::new(rng, *args), perf),
        Case::Add { args } => on_both(be, &elementwise::Add::new(rng, *args), perf),
        Case::Copy { args } => on_both(be, &elementwise::Copy::new(rng, *args), perf),
        Case::MoeRoute { args, ties } => moe::route(be, &moe::Route::new(rng, *args, *ties)?, perf),
        Case::MoeExperts { args, dtype } => on_both(be, &moe::Experts::new(rng, *args, *dtype)?, perf),
        Case::Argmax { args, special } => sample::argmax(be, &sample::Argmax::new(rng, *args, *special), perf),
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
/// fallback, calling `each` after every case. `Err(why)` when the backend cannot run here (no
/// adapter, not built): the caller reports it as skipped.
pub fn run_backend(
    kind: BackendKind,
    host_fallback: OpSet,
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
    let result = crate::open(kind, precision(kind), host_fallback, run).map_err(|e| e.to_string())?;
    result.map_err(|e| match kind {
        BackendKind::Wgpu => format!("no wgpu adapter ({e})"),
        BackendKind::Cuda => format!("no CUDA device ({e})"),
        _ => e,
    })
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
