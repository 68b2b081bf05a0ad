//! `garnet run`: streamed generation. stdout carries only the generated text; timings go to stderr.

use garnet::api::{BackendKind, Generation, LoadOptions, Precision, SessionOptions};
use garnet::chat::{Message, Role};
use garnet::sampling::Sampling;
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint directory or .safetensors file.
    #[arg(long)]
    model: PathBuf,
    /// Raw completion of this text (bos + text, no chat template).
    #[arg(long, conflicts_with = "chat", required_unless_present = "chat")]
    prompt: Option<String>,
    /// Interactive chat: each line on stdin is a user turn.
    #[arg(long)]
    chat: bool,
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// Sampling temperature; 0 = greedy.
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Keep the k most likely tokens (0 = off).
    #[arg(long, default_value_t = 64)]
    top_k: usize,
    /// Nucleus sampling mass (1 = off).
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Drop tokens below min_p * p_max (0 = off).
    #[arg(long, default_value_t = 0.0)]
    min_p: f32,
    /// Repetition penalty (1 = off).
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    /// Recent tokens the repetition penalty looks at (0 = the whole context).
    #[arg(long, default_value_t = 64)]
    repeat_last_n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Context length of the session (prompt + generation) [default: 4096 or the model's maximum].
    #[arg(long)]
    ctx: Option<usize>,
    #[arg(long, default_value = "cpu")]
    backend: BackendKind,
    #[command(flatten)]
    dev: crate::DeviceArgs,
    /// native (activations quantized in the matmuls, as llama.cpp) or reference (f32 throughout).
    #[arg(long, default_value = "native")]
    precision: Precision,
    /// Quantize the float weights at load: q8_0, q4_0 or q4_k.
    #[arg(long, value_parser = crate::parse_quant)]
    quant: Option<garnet_kernels::DType>,
    /// Per-op device times (GPU timestamp queries) and dispatches / host syncs per token, on stderr.
    #[arg(long)]
    profile: bool,
}

pub fn main(a: Args) -> garnet::Result<()> {
    let engine = crate::load(
        &a.model,
        LoadOptions {
            backend: a.backend,
            quant: a.quant,
            precision: a.precision,
            host_fallback: a.dev.host_fallback.0,
            cpu_isa: a.dev.cpu_isa,
            ..Default::default()
        },
    )?;
    let max = engine.config().max_position_embeddings;
    // The library caps a context over the model's maximum; asked for explicitly, it is an error.
    if let Some(ctx) = a.ctx.filter(|&c| c > max) {
        return Err(garnet::Error::Invalid(format!("--ctx {ctx} exceeds the model's maximum {max}")));
    }
    let ctx = a.ctx.unwrap_or(max.min(4096));
    let mut session = engine.session(SessionOptions { context: ctx, ..Default::default() })?;
    let sampling = Sampling {
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        min_p: a.min_p,
        repetition_penalty: a.repeat_penalty,
        repeat_last_n: a.repeat_last_n,
        seed: a.seed,
        max_new_tokens: a.max_tokens,
        stop_tokens: None,
        top_logprobs: 0,
    };
    let before = crate::profile::start(&engine, a.profile);
    if let Some(prompt) = &a.prompt {
        let n = stream(session.generate(prompt, &sampling)?)?;
        if a.profile {
            crate::profile::report(&engine, before, n);
        }
        return Ok(());
    }
    let mut stdin = std::io::stdin().lock();
    while let Some(line) = read_line(&mut stdin, MAX_LINE_BYTES)? {
        if line.trim().is_empty() {
            continue;
        }
        let turn = [Message::new(Role::User, line)];
        let n = stream(session.chat(&turn, &sampling)?)?;
        outln!()?;
        if a.profile {
            crate::profile::report(&engine, before, n);
        }
    }
    Ok(())
}

/// Longest chat turn read from stdin: 4 MiB of text is about a million tokens, beyond any
/// Gemma context (256K), so a longer line could never run; it is refused before it is buffered.
const MAX_LINE_BYTES: usize = 4 << 20;

/// The next line of `input` without its line ending, `None` at the end; an error if it is longer
/// than `cap` bytes or not UTF-8.
fn read_line(input: &mut impl BufRead, cap: usize) -> garnet::Result<Option<String>> {
    let stdin_err = |e: std::io::Error| garnet::Error::Io { path: "stdin".into(), err: e };
    let mut line = Vec::new();
    // One byte more than a full line (cap bytes and '\n') tells a line that is too long.
    (&mut *input).take(cap as u64 + 2).read_until(b'\n', &mut line).map_err(stdin_err)?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    if line.len() > cap {
        return Err(garnet::Error::Invalid(format!("a line on stdin is longer than {} MiB", cap >> 20)));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map(Some).map_err(|e| garnet::Error::Invalid(format!("stdin: a line is not UTF-8 ({e})")))
}

/// Prints tokens as they come; reports prompt and generation speed on stderr. Returns the
/// number of tokens generated.
fn stream(mut gen: Generation<'_>) -> garnet::Result<usize> {
    let start = Instant::now();
    let mut out = std::io::stdout().lock();
    for tok in gen.by_ref() {
        // A failed write ends generation: `main` is quiet about a closed pipe (`| head`), and
        // reports anything else (a full disk).
        write!(out, "{}", tok?.text).and_then(|_| out.flush()).map_err(crate::stdout_error)?;
    }
    let decode = start.elapsed().as_secs_f64();
    let usage = gen.usage();
    let pre = usage.prefill_time.as_secs_f64();
    let n = usage.generated_tokens;
    eprintln!(
        "\nprompt: {} tokens in {:.2} s ({:.1} tok/s); generation: {} tokens in {:.2} s ({:.1} tok/s)",
        usage.prompt_tokens,
        pre,
        usage.prompt_tokens as f64 / pre.max(1e-9),
        n,
        decode,
        n as f64 / decode.max(1e-9)
    );
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::read_line;

    #[test]
    fn lines_are_capped_before_they_are_buffered() {
        let mut input = std::io::Cursor::new(b"hi\r\nfour\nfive5\n".to_vec());
        assert_eq!(read_line(&mut input, 4).unwrap().as_deref(), Some("hi"));
        assert_eq!(read_line(&mut input, 4).unwrap().as_deref(), Some("four"));
        assert!(read_line(&mut input, 4).unwrap_err().to_string().contains("longer than"));
        let mut endless = std::io::Read::take(std::io::repeat(b'x'), 1 << 40);
        let mut endless = std::io::BufReader::new(&mut endless);
        assert!(read_line(&mut endless, 1 << 20).is_err());
        assert_eq!(read_line(&mut std::io::Cursor::new(b"last".to_vec()), 4).unwrap().as_deref(), Some("last"));
        assert_eq!(read_line(&mut std::io::Cursor::new(Vec::new()), 4).unwrap(), None);
    }
}
