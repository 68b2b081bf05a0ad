//! `garnet ops-test`: llama.cpp's test-backend-ops for garnet. Every case of the kernels' list
//! (`garnet_kernels::opstest::cases`: real Gemma 4 shapes and edge shapes, every weight dtype)
//! runs on each backend and on the scalar reference from the same inputs; one line per case and
//! backend (`OK` / `FAIL`, normalised error against the bound, with `--perf` the time per call,
//! GB/s and GFLOP/s), a summary per backend, and a non-zero exit when any case fails.

use garnet::Error;
use garnet_kernels::opstest::{self, Case, Outcome};
use garnet_kernels::{BackendKind, Op, OpSet};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Backend to test: cpu, cpu-ref, wgpu, cuda or cuda-emulated; repeat for several [default:
    /// cpu, wgpu, cuda, cuda-emulated, skipping those not available here].
    #[arg(long)]
    backend: Vec<BackendKind>,
    /// Only the cases of this op (its name as `--list` prints it, e.g. matmul or layer_norm).
    #[arg(long)]
    op: Option<Op>,
    #[command(flatten)]
    dev: crate::DeviceArgs,
    /// Only the cases whose name contains this text (e.g. "Q4_K" or "head_dim=512").
    #[arg(long)]
    case: Option<String>,
    /// Time each case on the backend: warm-up, then calls for ~0.2 s.
    #[arg(long)]
    perf: bool,
    /// Print the selected cases' names and exit.
    #[arg(long)]
    list: bool,
    /// On cuda-emulated: the memory-transaction model per kernel and case (global requests,
    /// 32-byte sectors, sector efficiency, shared-memory bank conflicts per request, occupancy
    /// on sm_80 / 86 / 89 / 90) instead of timings.
    #[arg(long)]
    memory_model: bool,
    /// On cuda-emulated: the race detector on every launch (threads resumed in a random order;
    /// two unordered accesses to one word by different threads, one a store, fail the case).
    #[arg(long, conflicts_with_all = ["memory_model", "perf"])]
    races: bool,
    /// With --races: the seed of the random thread order.
    #[arg(long, default_value_t = 1, requires = "races")]
    seed: u64,
    /// With --memory-model: one JSON array of objects instead of the table.
    #[arg(long, requires = "memory_model")]
    json: bool,
}

/// One case's line: backend, verdict, time and rates with `--perf`, the case, what went wrong.
fn line(backend: &str, case: &Case, o: &Outcome) -> String {
    let perf = o.perf.map_or(String::new(), |p| {
        let us = p.per_call.as_secs_f64() * 1e6;
        let host =
            if o.fallback_calls > 0 { format!(" ({} host fallback calls)", o.fallback_calls) } else { String::new() };
        format!("{us:>11.1} us {:>9.3} GB/s {:>9.3} GFLOP/s{host}  ", p.gb_per_s(), p.gflop_per_s())
    });
    let message = o.message.as_ref().map_or(String::new(), |m| format!(": {m}"));
    format!("{backend:<14}{:<30} {perf}{}{message}", o.status(), case.name())
}

pub fn main(a: Args) -> garnet::Result<()> {
    let cases: Vec<Case> = opstest::cases()
        .into_iter()
        .filter(|c| a.op.is_none_or(|op| c.op() == op))
        .filter(|c| a.case.as_deref().is_none_or(|s| c.name().contains(s)))
        .collect();
    if cases.is_empty() {
        return Err(Error::Invalid("no ops-test case matches --op / --case (see --list)".into()));
    }
    if a.list {
        return cases.iter().try_for_each(|c| outln!("{}", c.name()));
    }
    if a.memory_model {
        return memory_model(&a, &cases);
    }
    if a.races && a.backend.iter().any(|b| *b != BackendKind::CudaEmulated) {
        return Err(Error::Invalid("--races runs on --backend cuda-emulated only".into()));
    }
    let explicit = !a.backend.is_empty() || a.races;
    let backends = if a.races {
        vec![BackendKind::CudaEmulated]
    } else if explicit {
        a.backend.clone()
    } else {
        opstest::DEFAULT_BACKENDS.to_vec()
    };

    let mut summaries = Vec::new();
    for kind in backends {
        let start = Instant::now();
        // The first failed write (closed pipe, full disk) is returned once the backend is done.
        let mut written = Ok(());
        let mut print = |case: &Case, o: &Outcome| {
            if written.is_ok() {
                written = outln!("{}", line(kind.name(), case, o));
            }
        };
        let result = if a.races {
            opstest::races(&cases, a.seed, &mut print)
        } else {
            opstest::run_backend(kind, a.dev.host_fallback.0, a.dev.cpu_isa, &cases, a.perf, &mut print)
        };
        written?;
        summaries.push((kind, result, start.elapsed()));
    }

    outln!()?;
    let mut failures = Vec::new();
    for (kind, result, took) in &summaries {
        match result {
            Ok(s) => {
                outln!("{}: {} passed, {} failed ({:.1?})", kind.name(), s.passed, s.failed.len(), took)?;
                failures.extend(s.failed.iter().map(|(case, o)| (kind.name(), case, o)));
            }
            Err(why) => outln!("{}: skipped: {why}", kind.name())?,
        }
    }
    for (backend, case, o) in &failures {
        outln!("FAILED {backend} {case}: {}", o.describe())?;
    }
    if let Some((backend, case, o)) = failures.first() {
        let worst =
            o.worst.map_or(String::new(), |w| format!(" (worst [{}] got {:e} want {:e})", w.index, w.got, w.want));
        return Err(Error::Invalid(format!(
            "{} ops-test case(s) failed, the first: {backend} {case}{worst}",
            failures.len()
        )));
    }
    if explicit {
        if let Some((kind, Err(why), _)) = summaries.iter().find(|(_, r, _)| r.is_err()) {
            return Err(Error::Invalid(format!("--backend {}: {why}", kind.name())));
        }
    }
    Ok(())
}

/// `garnet doctor`'s quick self-test: the small cases (under 2 MB moved each) on one backend,
/// one summary line; returns the number of failed cases. A backend that cannot run here is
/// reported as skipped.
pub fn selftest(kind: BackendKind) -> garnet::Result<usize> {
    let cases: Vec<Case> = opstest::cases().into_iter().filter(|c| c.cost().0 < 2 << 20).collect();
    let start = Instant::now();
    match opstest::run_backend(kind, OpSet::NONE, None, &cases, false, &mut |_, _| {}) {
        Ok(s) => {
            outln!(
                "self-test {}: {} of {} ops-test cases passed ({:.1?})",
                kind.name(),
                s.passed,
                cases.len(),
                start.elapsed()
            )?;
            for (case, o) in &s.failed {
                outln!("  FAILED {case}: {}", o.describe())?;
            }
            if !s.fallback_ops.is_empty() {
                let ops: Vec<&str> = s.fallback_ops.iter().map(|op| op.name()).collect();
                outln!("  through the host fallback: {}", ops.join(", "))?;
            }
            Ok(s.failed.len())
        }
        Err(why) => {
            outln!("self-test {}: skipped: {why}", kind.name())?;
            Ok(0)
        }
    }
}

/// `--memory-model`: the emulator's memory-transaction model over the cases.
fn memory_model(a: &Args, cases: &[Case]) -> garnet::Result<()> {
    use garnet_kernels::cuda::occupancy::{occupancy, usage, ARCHS};
    if a.backend.iter().any(|b| *b != BackendKind::CudaEmulated) {
        return Err(Error::Invalid("--memory-model runs on --backend cuda-emulated only".into()));
    }
    let mut rows = Vec::new();
    let mut failed = 0;
    opstest::memory_model(cases, &mut |case, o, kernels| {
        failed += usize::from(!o.passed);
        for (kernel, m, threads) in kernels {
            let occ: serde_json::Map<String, serde_json::Value> = ARCHS
                .iter()
                .filter_map(|arch| {
                    let u = usage(kernel, arch)?;
                    Some((arch.name.to_string(), serde_json::json!(occupancy(arch, u, *threads).fraction)))
                })
                .collect();
            rows.push(serde_json::json!({
                "kernel": kernel,
                "case": case.name(),
                "passed": o.passed,
                "threads": threads,
                "global_requests": m.global_requests,
                "global_bytes": m.global_bytes,
                "global_sectors": m.global_sectors,
                "global_lines": m.global_lines,
                "sector_efficiency": m.sector_efficiency(),
                "shared_requests": m.shared_requests,
                "shared_wavefronts": m.shared_wavefronts,
                "bank_conflicts_per_request": m.bank_conflicts_per_request(),
                "occupancy": occ,
            }));
        }
    })
    .map_err(|why| Error::Invalid(format!("--memory-model: {why}")))?;
    if a.json {
        outln!("{}", serde_json::Value::Array(rows))?;
    } else {
        outln!(
            "{:<22} {:>9} {:>10} {:>11} {:>15} {:<28} case",
            "kernel",
            "requests",
            "sectors",
            "efficiency",
            "conflicts/req",
            "occupancy sm_80/86/89/90"
        )?;
        for r in &rows {
            let occ: Vec<String> = ["sm_80", "sm_86", "sm_89", "sm_90"]
                .iter()
                .map(|t| r["occupancy"][t].as_f64().map_or("-".into(), |f| format!("{:.0}%", 100.0 * f)))
                .collect();
            outln!(
                "{:<22} {:>9} {:>10} {:>10.1}% {:>15.2} {:<28} {}",
                r["kernel"].as_str().unwrap_or(""),
                r["global_requests"],
                r["global_sectors"],
                100.0 * r["sector_efficiency"].as_f64().unwrap_or(0.0),
                r["bank_conflicts_per_request"].as_f64().unwrap_or(0.0),
                occ.join(" "),
                r["case"].as_str().unwrap_or("")
            )?;
        }
    }
    if failed > 0 {
        return Err(Error::Invalid(format!("--memory-model: {failed} case(s) failed their check")));
    }
    Ok(())
}
