//! `garnet bench`: llama-bench's two tests, and the decode bandwidth they imply.
//!
//! - `pp<p>`: one prefill of `p` random in-vocabulary ids (no BOS) from an empty context, only
//!   the last logits computed ([`Session::prefill`]); `p / seconds`.
//! - `tg<n>`: `n` single-token steps ([`Session::step`]) from an empty context, timed as a whole;
//!   `n / seconds`.
//! - With `-d DEPTH` (llama-bench's `-d`), both tests start after `DEPTH` other random tokens are
//!   in the cache (`pp512 @ d4096`): attention then reads a long context. The depth prefill is
//!   run before each timed run and not timed.
//!
//! Each test runs once to warm up, then `r` times, the session reset before each run; the table
//! shows mean ± sample standard deviation of the runs' tokens per second, as llama-bench does.
//! Decode bandwidth = weight bytes one step reads ([`garnet::footprint`]) × tg tok/s, compared
//! with the machine's read bandwidth measured on as many threads ([`bandwidth`]).

mod bandwidth;

use garnet::api::{BackendKind, LoadOptions, Session, SessionOptions};
use garnet::config::MAX_CONTEXT;
use garnet::Error;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint directory, .safetensors or .gguf file.
    #[arg(long)]
    model: PathBuf,
    /// Prompt tokens of the prefill test (0 = skip it).
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
    p: usize,
    /// Tokens of the generation test (0 = skip it).
    #[arg(short = 'n', long = "n-gen", default_value_t = 128)]
    n: usize,
    /// Tokens already in the cache when each test starts (llama-bench's context depth).
    #[arg(short = 'd', long = "n-depth", default_value_t = 0)]
    depth: usize,
    /// Timed repetitions of each test (after one warm-up run).
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    r: usize,
    /// Threads of rayon's pool [default: all cores].
    #[arg(short = 't', long)]
    threads: Option<usize>,
    /// Quantize the float weights at load: q8_0, q4_0 or q4_k.
    #[arg(long, value_parser = crate::parse_quant)]
    quant: Option<garnet_kernels::DType>,
    /// cpu, cpu-ref, wgpu or cuda.
    #[arg(long, default_value = "cpu")]
    backend: BackendKind,
    #[command(flatten)]
    dev: crate::DeviceArgs,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Per-op device times (GPU timestamp queries) of the generation test and its dispatches /
    /// host syncs per token, on stderr.
    #[arg(long)]
    profile: bool,
}

/// Table columns: (width, right-aligned), as llama-bench prints them.
const COLUMNS: [(usize, bool); 7] =
    [(28, false), (10, true), (8, true), (16, false), (7, true), (13, true), (16, true)];

/// Mean and sample standard deviation of tokens per second over the timed runs.
#[derive(Clone, Copy, Debug, Default)]
struct Rate {
    mean: f64,
    stddev: f64,
}

impl Rate {
    fn of(tokens: usize, seconds: &[f64]) -> Rate {
        let rates: Vec<f64> = seconds.iter().map(|s| tokens as f64 / s.max(1e-12)).collect();
        let n = rates.len() as f64;
        let mean = rates.iter().sum::<f64>() / n;
        let var = if rates.len() > 1 { rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
        Rate { mean, stddev: var.sqrt() }
    }
}

/// Most timed repetitions: llama-bench runs 5; 1000 runs of even the smallest test is hours.
const MAX_REPETITIONS: usize = 1000;
/// Most threads per core: past the core count threads only contend (oversubscription is worth
/// measuring, a pool of 100000 OS threads is not).
const MAX_THREADS_PER_CORE: usize = 4;

pub fn main(a: Args) -> garnet::Result<()> {
    if a.r == 0 || a.p.max(a.n) == 0 || a.threads == Some(0) {
        return Err(Error::Invalid(
            "bench needs --repetitions and --threads >= 1 and a test (-p or -n above 0)".into(),
        ));
    }
    if a.r > MAX_REPETITIONS {
        return Err(Error::Invalid(format!("--repetitions {} (at most {MAX_REPETITIONS})", a.r)));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(t) = a.threads.filter(|&t| t > MAX_THREADS_PER_CORE * cores) {
        let max = MAX_THREADS_PER_CORE * cores;
        return Err(Error::Invalid(format!("--threads {t} (at most {max}: {MAX_THREADS_PER_CORE} per core)")));
    }
    if let Some(t) = a.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .map_err(|e| Error::Invalid(format!("--threads {t}: {e}")))?;
    }
    let threads = rayon::current_num_threads();
    let start = Instant::now();
    let engine = crate::load(
        &a.model,
        LoadOptions {
            backend: a.backend,
            quant: a.quant,
            host_fallback: a.dev.host_fallback.0,
            cpu_isa: a.dev.cpu_isa,
            ..Default::default()
        },
    )?;
    let load_s = start.elapsed().as_secs_f64();
    let rss = rss_bytes();
    let footprint = garnet::footprint::of_checkpoint(&a.model, a.quant)?;
    let (cfg, info) = (engine.config(), engine.info());
    let context = a.p.max(a.n).checked_add(a.depth).filter(|&c| c <= MAX_CONTEXT);
    let context = context
        .ok_or_else(|| Error::Invalid(format!("-d {} -p {} -n {}: over {MAX_CONTEXT} positions", a.depth, a.p, a.n)))?;
    let mut session = engine.session(SessionOptions { context, ..Default::default() })?;
    // The depth's tokens, then the test's: one fixed sequence, so every run sees the same context.
    let ids = random_ids(context, cfg.vocab_size);
    let (fill, ids) = ids.split_at(a.depth);

    let pp = if a.p > 0 {
        let prompt = &ids[..a.p];
        Some(Rate::of(a.p, &timed(&mut session, fill, a.r, |s| s.prefill(prompt).map(drop))?))
    } else {
        None
    };
    let tg = if a.n > 0 {
        let steps = &ids[..a.n];
        let seconds = timed(&mut session, fill, a.r, |s| steps.iter().try_for_each(|&id| s.step(id).map(drop)))?;
        Some(Rate::of(a.n, &seconds))
    } else {
        None
    };
    if a.profile && a.n > 0 {
        // One more generation run, alone, so the table is the decode step's.
        session.reset();
        if !fill.is_empty() {
            session.prefill(fill)?;
        }
        let before = crate::profile::start(&engine, true);
        ids[..a.n].iter().try_for_each(|&id| session.step(id).map(drop))?;
        crate::profile::report(&engine, before, a.n);
    }
    let read_bw = bandwidth::read_gb_s(bandwidth::BUFFER_BYTES, 5);
    let decode_gb_s = tg.map(|t| footprint.per_token as f64 * t.mean / 1e9);

    let variant = match cfg.variant() {
        "custom" => format!("{}L H{}", cfg.n_layers(), cfg.hidden_size),
        v => v.to_string(),
    };
    let variant = format!("{} {variant}", format!("{:?}", cfg.arch).to_lowercase());
    let bpw = 8.0 * info.weight_bytes as f64 / info.params.max(1) as f64;
    if a.json {
        let out = json!({
            "model": info.path.display().to_string(),
            "variant": cfg.variant(),
            "backend": info.backend,
            "isa": isa_of(info.backend, a.dev.cpu_isa),
            "threads": threads,
            "p": a.p,
            "n": a.n,
            "depth": a.depth,
            "r": a.r,
            "params": info.params,
            "weight_bytes": footprint.weight_bytes,
            "bytes_per_token": footprint.per_token,
            "pp_tok_s": pp.map(|r| r.mean),
            "pp_tok_s_stddev": pp.map(|r| r.stddev),
            "tg_tok_s": tg.map(|r| r.mean),
            "tg_tok_s_stddev": tg.map(|r| r.stddev),
            "decode_gb_s": decode_gb_s,
            "read_bw_gb_s": read_bw,
            "decode_efficiency": decode_gb_s.map(|d| d / read_bw),
            "load_s": load_s,
            "rss_after_load_bytes": rss,
        });
        return outln!("{out}");
    }
    let model = format!("{variant} {bpw:.2} bpw");
    let size = match info.weight_bytes as f64 / (1u64 << 30) as f64 {
        gib if gib >= 1.0 => format!("{gib:.2} GiB"),
        gib => format!("{:.2} MiB", gib * 1024.0),
    };
    let params = match info.params as f64 {
        p if p >= 1e9 => format!("{:.2} B", p / 1e9),
        p => format!("{:.2} M", p / 1e6),
    };
    let row = |cells: [&str; 7]| {
        let line: Vec<String> = cells
            .iter()
            .zip(COLUMNS)
            .map(|(c, (w, right))| if right { format!("{c:>w$}") } else { format!("{c:<w$}") })
            .collect();
        outln!("| {} |", line.join(" | "))
    };
    row(["model", "size", "params", "backend", "threads", "test", "t/s"])?;
    let rule: Vec<String> = COLUMNS
        .iter()
        .map(|&(w, right)| if right { format!("{}:", "-".repeat(w - 1)) } else { "-".repeat(w) })
        .collect();
    outln!("| {} |", rule.join(" | "))?;
    // The CPU level beside the backend ("cpu avx2"), as llama-bench names its CPU variant.
    let backend = isa_of(info.backend, a.dev.cpu_isa).map_or(info.backend.to_string(), |i| format!("cpu {i}"));
    let at = if a.depth > 0 { format!(" @ d{}", a.depth) } else { String::new() };
    for (test, rate) in [(format!("pp{}{at}", a.p), pp), (format!("tg{}{at}", a.n), tg)] {
        if let Some(r) = rate {
            let t_s = format!("{:.2} ± {:.2}", r.mean, r.stddev);
            row([&model, &size, &params, &backend, &threads.to_string(), &test, &t_s])?;
        }
    }
    outln!()?;
    let per_token = footprint.per_token as f64 / 1e9;
    if let (Some(gb_s), Some(t)) = (decode_gb_s, tg) {
        outln!(
            "decode: {per_token:.3} GB of weights per token x {:.2} tok/s = {gb_s:.2} GB/s; machine read bandwidth \
             {read_bw:.2} GB/s ({threads} threads): {:.0}% of it",
            t.mean,
            100.0 * gb_s / read_bw
        )?;
    } else {
        outln!("decode: {per_token:.3} GB of weights per token; machine read bandwidth {read_bw:.2} GB/s ({threads} threads)")?;
    }
    let rss = rss.map_or(String::new(), |b| format!(", resident memory {:.0} MB after load", b as f64 / 1e6));
    outln!("load: {load_s:.3} s{rss}")
}

/// Seconds of `r` runs of `run` after one warm-up; before each (untimed), the session is reset
/// and `fill` (the depth) prefilled.
fn timed(
    session: &mut Session,
    fill: &[u32],
    r: usize,
    mut run: impl FnMut(&mut Session) -> garnet::Result<()>,
) -> garnet::Result<Vec<f64>> {
    let mut out = Vec::with_capacity(r);
    for i in 0..=r {
        session.reset();
        if !fill.is_empty() {
            session.prefill(fill)?;
        }
        let start = Instant::now();
        run(session)?;
        if i > 0 {
            out.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(out)
}

/// `n` ids uniform in `0..vocab` from a fixed seed.
fn random_ids(n: usize, vocab: usize) -> Vec<u32> {
    let mut state = 0x5EED_u64;
    (0..n).map(|_| (crate::synth::splitmix(&mut state) % vocab.max(1) as u64) as u32).collect()
}

/// The instruction-set level of the fast CPU backend's kernels: `--cpu-isa`, else the best this
/// CPU has; none on other backends.
fn isa_of(backend: &str, forced: Option<garnet_kernels::cpu::Isa>) -> Option<&'static str> {
    (backend == "cpu").then(|| forced.unwrap_or_else(garnet_kernels::cpu::Isa::detect).name())
}

/// Resident memory of this process (Linux: `VmRSS` of /proc/self/status).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim();
    kb.parse::<u64>().ok().map(|k| k * 1024)
}
