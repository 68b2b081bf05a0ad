//! `garnet`: the command line. `run` generates text, `logits` writes verification logits in the
//! golden files' format, `info` describes a checkpoint, `perplexity` scores a text, `synth` writes
//! random-weight checkpoints of the released shapes, `bench` measures speed, `ops-test` checks
//! every backend's ops against the reference, `doctor` lists devices and builds every shader,
//! `chat-template` renders a chat request with the checkpoint's template.
//! Errors print one line on stderr and exit non-zero.

/// `println!` for results on stdout, returning a write error (closed pipe, full disk) as a
/// `garnet::Error` instead of panicking: `main` ends quietly on a closed pipe, with one line else.
macro_rules! outln {
    () => {
        $crate::out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod bench;
mod chat_template;
mod doctor;
mod info;
mod logits;
mod opstest;
mod perplexity;
mod profile;
mod ptx;
mod run;
mod synth;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "garnet", version, about = "Gemma 4 inference engine")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate text: a raw completion of --prompt, or an interactive chat with --chat.
    Run(run::Args),
    /// Prefill ids, decode N greedy steps, write the logits as safetensors (golden-file format).
    Logits(logits::Args),
    /// Describe a checkpoint: variant, layers, parameters, bytes, KV cache cost.
    Info(info::Args),
    /// Perplexity of a text file, llama.cpp's method (windows of --ctx, second half scored).
    Perplexity(perplexity::Args),
    /// Random-weight checkpoint with the tensor names and shapes of a released Gemma 4 model.
    Synth(synth::Args),
    /// llama-bench's pp / tg tests (mean ± stddev tok/s) and the decode bandwidth they imply.
    Bench(bench::Args),
    /// The adapters and devices found, their limits and features; builds every shader, runs a quick self-test.
    Doctor(doctor::Args),
    /// Every op on every backend against the CPU reference (llama.cpp's test-backend-ops).
    OpsTest(opstest::Args),
    /// Regenerate (or `--check`) the CUDA kernels' PTX with NVRTC, and assemble it with ptxas.
    Ptx(ptx::Args),
    /// Render a chat request (JSON) with the checkpoint's chat template; prints the prompt as is.
    ChatTemplate(chat_template::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Ctrl-C: outputs being written are temporaries beside their final names; remove them so an
    // interrupted run leaves the old files as they were and nothing half-written.
    let _ = ctrlc::set_handler(|| {
        garnet::files::remove_temporaries();
        std::process::exit(130);
    });
    let result = match cli.cmd {
        Cmd::Run(a) => run::main(a),
        Cmd::Logits(a) => logits::main(a),
        Cmd::Info(a) => info::main(a),
        Cmd::Perplexity(a) => perplexity::main(a),
        Cmd::Synth(a) => synth::main(a),
        Cmd::Bench(a) => bench::main(a),
        Cmd::Doctor(a) => doctor::main(a),
        Cmd::OpsTest(a) => opstest::main(a),
        Cmd::Ptx(a) => ptx::main(a),
        Cmd::ChatTemplate(a) => chat_template::main(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed stdout (`garnet ... | head`): the reader has what it wanted.
        Err(garnet::Error::Io { err, .. }) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("garnet: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `args` to stdout and flushes (see `outln!`).
pub(crate) fn out(args: std::fmt::Arguments) -> garnet::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_fmt(args).and_then(|()| stdout.flush()).map_err(stdout_error)
}

/// A failed write to stdout as an error naming it.
pub(crate) fn stdout_error(source: std::io::Error) -> garnet::Error {
    garnet::Error::Io { path: "stdout".into(), err: source }
}

/// `--quant` values: the block formats garnet quantizes to at load.
pub(crate) fn parse_quant(s: &str) -> Result<garnet_kernels::DType, String> {
    use garnet_kernels::DType;
    match s.to_ascii_lowercase().as_str() {
        "q8_0" => Ok(DType::Q8_0),
        "q4_0" => Ok(DType::Q4_0),
        "q4_k" => Ok(DType::Q4_K),
        _ => Err(format!("{s:?}: expected q8_0, q4_0 or q4_k")),
    }
}

/// Loads a model with a progress bar on stderr for checkpoints over 1 GiB.
pub(crate) fn load(model: &std::path::Path, mut opts: garnet::api::LoadOptions) -> garnet::Result<garnet::api::Engine> {
    use indicatif::{ProgressBar, ProgressStyle};
    use std::sync::{Arc, OnceLock};
    let bar: Arc<OnceLock<ProgressBar>> = Arc::default();
    let b = bar.clone();
    opts.progress = Some(Arc::new(move |done, total| {
        if total < 1 << 30 {
            return;
        }
        let pb = b.get_or_init(|| {
            let pb = ProgressBar::new(total);
            let style = ProgressStyle::with_template("loading {bar:40} {bytes}/{total_bytes} {elapsed}");
            pb.set_style(style.unwrap_or_else(|_| ProgressStyle::default_bar()));
            pb
        });
        pb.set_position(done);
    }));
    let (quant, auto) = (opts.quant, opts.backend == garnet::api::BackendKind::Auto);
    let engine = garnet::api::Engine::load(model, opts);
    if let Some(pb) = bar.get() {
        pb.finish_and_clear();
    }
    if let (Ok(e), Some(q)) = (&engine, quant) {
        let before = e.info().unquantized_bytes.unwrap_or(0) as f64 / 1e6;
        eprintln!(
            "quantized to {}: {before:.1} MB -> {:.1} MB of weights",
            q.name(),
            e.info().weight_bytes as f64 / 1e6
        );
    }
    if let (Ok(e), true) = (&engine, auto) {
        eprintln!("backend auto: {}", e.info().backend);
        for why in &e.info().fallback {
            eprintln!("  passed over: {why}");
        }
    }
    engine
}

/// How the backend runs, for bring-up, tests and measuring one CPU level on a machine with more.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct DeviceArgs {
    /// Run these ops through the host fallback (download, reference, upload): `all` or op names
    /// as `ops-test --list` prints them, comma-separated.
    #[arg(long, default_value = "")]
    pub host_fallback: HostFallbackArg,
    /// The CPU backend's instruction-set level: portable, avx2, avx512 or avx512-bf16 [default:
    /// the best this CPU has].
    #[arg(long)]
    pub cpu_isa: Option<garnet_kernels::cpu::Isa>,
}

/// `--host-fallback`: `all`, op names separated by commas, or nothing (the default: none).
#[derive(Clone, Copy, Debug, Default)]
pub struct HostFallbackArg(pub garnet_kernels::OpSet);

impl std::str::FromStr for HostFallbackArg {
    type Err = garnet_kernels::KernelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Ok(HostFallbackArg(garnet_kernels::OpSet::NONE));
        }
        s.parse().map(HostFallbackArg)
    }
}
