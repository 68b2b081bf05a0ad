//! `--profile` on `run` and `bench`: device time per op from the backend's timestamp queries,
//! and the dispatches and host syncs per decoded token, printed on stderr.

use garnet::api::Engine;
use garnet_kernels::DeviceStats;

/// Starts timing if asked; says so on stderr when the backend cannot.
pub fn start(engine: &Engine, on: bool) -> DeviceStats {
    if on && !engine.enable_profiling() {
        eprintln!("profile: backend {} has no device timestamps; only counters are reported", engine.info().backend);
    }
    engine.device_stats()
}

/// Prints the per-op table and the work counters since `before`, per token of `tokens`.
pub fn report(engine: &Engine, before: DeviceStats, tokens: usize) {
    let rows = engine.profile();
    let total: f64 = rows.iter().map(|r| r.2.as_secs_f64()).sum();
    if !rows.is_empty() {
        eprintln!("\n{:<16} {:>8} {:>12} {:>10} {:>7}", "op", "calls", "total ms", "us/call", "share");
        for (op, calls, t) in &rows {
            let ms = t.as_secs_f64() * 1e3;
            eprintln!(
                "{op:<16} {calls:>8} {ms:>12.3} {:>10.1} {:>6.1}%",
                1e3 * ms / (*calls).max(1) as f64,
                100.0 * t.as_secs_f64() / total.max(1e-12)
            );
        }
        eprintln!("{:<16} {:>8} {:>12.3}", "total", rows.iter().map(|r| r.1).sum::<u64>(), total * 1e3);
    }
    for (op, calls) in engine.fallback_calls() {
        eprintln!("host fallback: {op} {calls} calls ({:.1} per token)", calls as f64 / tokens.max(1) as f64);
    }
    let s = engine.device_stats();
    let n = tokens.max(1) as f64;
    if s.dispatches + s.submits > 0 {
        eprintln!(
            "device work: {:.1} dispatches, {:.1} copies, {:.2} submissions, {:.2} host syncs per token ({tokens} tokens)",
            (s.dispatches - before.dispatches) as f64 / n,
            (s.copies - before.copies) as f64 / n,
            (s.submits - before.submits) as f64 / n,
            (s.syncs - before.syncs) as f64 / n,
        );
    }
}
