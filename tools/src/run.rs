//! `garnet run`: streamed generation. stdout carries only the generated text; timings go to stderr.

use garnet::api::{BackendKind, FinishReason, GenerateOptions, Generation, LoadOptions, Precision, SessionOptions};
use garnet::chat::{Message, ToolResponse};
use garnet::reply::{Channel, Reply};
use garnet::sampling::Sampling;
use garnet::Constraint;
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
    /// Interactive chat: each line on stdin is a user turn; the whole conversation is kept and
    /// rendered with the checkpoint's chat template each turn. After a reply with tool calls
    /// (see --tools) the next line is the tool's result (a JSON value, else taken as a string).
    #[arg(long)]
    chat: bool,
    /// Chat: a system message before the first user turn.
    #[arg(long, conflicts_with = "prompt")]
    system: Option<String>,
    /// Chat: let the model think before answering (the template's enable_thinking). The
    /// thinking is hidden unless --show-thinking.
    #[arg(long, conflicts_with = "prompt")]
    think: bool,
    /// Print the model's thinking on stderr (stdout keeps only the answer).
    #[arg(long)]
    show_thinking: bool,
    /// Chat: a JSON array of tool declarations ({"type":"function","function":{"name",
    /// "description","parameters"}}). Tool calls are printed on stdout as
    /// `tool call: NAME {json args}`, one per line.
    #[arg(long, conflicts_with = "prompt", value_name = "FILE.json")]
    tools: Option<PathBuf>,
    /// Constrain the reply to JSON valid under this JSON Schema file.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["regex", "grammar", "force_tool"])]
    json_schema: Option<PathBuf>,
    /// Constrain the reply to match this regular expression (as a whole).
    #[arg(long, value_name = "PATTERN", conflicts_with_all = ["grammar", "force_tool"])]
    regex: Option<String>,
    /// Constrain the reply to this Lark grammar file (llguidance syntax).
    #[arg(long, value_name = "FILE", conflicts_with = "force_tool")]
    grammar: Option<PathBuf>,
    /// Force every reply to be a call of this tool (one of --tools), with valid arguments.
    #[arg(long, value_name = "NAME", requires = "tools")]
    force_tool: Option<String>,
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
    let tools = match &a.tools {
        Some(path) => read_tools(path)?,
        None => Vec::new(),
    };
    // Checked before anything runs, so a bad constraint is one line and no generation.
    let make_constraint = || constraint(&engine, &a, &tools);
    make_constraint()?;
    let before = crate::profile::start(&engine, a.profile);
    if let Some(prompt) = &a.prompt {
        let mut opts = GenerateOptions::default();
        if let Some(c) = make_constraint()? {
            opts = opts.processor(c);
        }
        let (n, _) = stream(session.generate_with(prompt, &sampling, opts)?, engine.tokenizer(), a.show_thinking)?;
        if a.profile {
            crate::profile::report(&engine, before, n);
        }
        return Ok(());
    }
    let mut messages = Vec::new();
    if let Some(system) = &a.system {
        messages.push(Message::system(system.clone()));
    }
    let mut stdin = std::io::stdin().lock();
    // The tool calls of the last reply, whose result the next line is.
    let mut pending_calls: Vec<garnet::ToolCall> = Vec::new();
    while let Some(line) = read_line(&mut stdin, MAX_LINE_BYTES)? {
        if line.trim().is_empty() {
            continue;
        }
        if pending_calls.is_empty() {
            messages.push(Message::user(line));
        } else {
            // One line answers every call of the reply (the same result for each when there
            // are several: keep it simple).
            let value = serde_json::from_str(&line).unwrap_or(serde_json::Value::String(line));
            let responses = pending_calls.drain(..).map(|c| ToolResponse::new(c.name, value.clone())).collect();
            messages.push(Message::tool(responses));
        }
        let mut opts = GenerateOptions::default().thinking(a.think);
        for t in &tools {
            opts = opts.tool(t.clone());
        }
        if let Some(c) = make_constraint()? {
            opts = opts.processor(c);
        }
        let (n, reply) = stream(session.chat_with(&messages, &sampling, opts)?, engine.tokenizer(), a.show_thinking)?;
        outln!()?;
        for call in &reply.tool_calls {
            outln!("tool call: {} {}", call.name, call.arguments)?;
        }
        pending_calls = reply.tool_calls.clone();
        messages.push(Message::model(reply.content).with_tool_calls(reply.tool_calls));
        if a.profile {
            crate::profile::report(&engine, before, n);
        }
    }
    Ok(())
}

/// The tool declarations of `path`: a JSON array of objects.
fn read_tools(path: &std::path::Path) -> garnet::Result<Vec<serde_json::Value>> {
    let v = read_json(path)?;
    match v {
        serde_json::Value::Array(items) if items.iter().all(|t| t.is_object()) => Ok(items),
        _ => Err(garnet::Error::Invalid(format!("{}: expected a JSON array of tool declarations", path.display()))),
    }
}

fn read_json(path: &std::path::Path) -> garnet::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|err| garnet::Error::Io { path: path.into(), err })?;
    serde_json::from_str(&text).map_err(|e| garnet::Error::Invalid(format!("{}: not valid JSON ({e})", path.display())))
}

/// A tool declaration's name and parameters schema (HF/OpenAI style, or a bare function).
fn tool_parts(t: &serde_json::Value) -> (Option<&str>, Option<&serde_json::Value>) {
    let f = t.get("function").unwrap_or(t);
    (f.get("name").and_then(|n| n.as_str()), f.get("parameters"))
}

/// The constraint the options ask for, if any (a fresh one per reply).
fn constraint(
    engine: &garnet::api::Engine,
    a: &Args,
    tools: &[serde_json::Value],
) -> garnet::Result<Option<Constraint>> {
    let need = a.json_schema.is_some() || a.regex.is_some() || a.grammar.is_some() || a.force_tool.is_some();
    if !need {
        return Ok(None);
    }
    let tok = engine.tokenizer().ok_or_else(|| {
        garnet::Error::Invalid("constrained output needs a tokenizer; this checkpoint has none".into())
    })?;
    let c = if let Some(path) = &a.json_schema {
        Constraint::json_schema(tok, &read_json(path)?)?
    } else if let Some(rx) = &a.regex {
        Constraint::regex(tok, rx)?
    } else if let Some(path) = &a.grammar {
        let text = std::fs::read_to_string(path).map_err(|err| garnet::Error::Io { path: path.into(), err })?;
        Constraint::lark(tok, &text)?
    } else {
        let name = a.force_tool.as_deref().unwrap_or_default();
        let tool = tools
            .iter()
            .find(|t| tool_parts(t).0 == Some(name))
            .ok_or_else(|| garnet::Error::Invalid(format!("--force-tool {name}: no tool of that name in --tools")))?;
        let empty = serde_json::json!({"type": "object", "properties": {}});
        Constraint::gemma4_tool_call(tok, name, tool_parts(tool).1.unwrap_or(&empty))?
    };
    Ok(Some(c))
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

/// Prints the answer as it comes (thinking on stderr with `show_thinking`, else hidden; tool
/// call text hidden: the caller prints the parsed calls); then the finish reason, usage and
/// speed on stderr. Returns the number of tokens generated and the parsed reply.
fn stream(
    mut gen: Generation<'_>,
    tok: Option<&garnet::tokenizer::Tokenizer>,
    show_thinking: bool,
) -> garnet::Result<(usize, Reply)> {
    let start = Instant::now();
    let mut out = std::io::stdout().lock();
    let mut thinking = false;
    for t in gen.by_ref() {
        let t = t?;
        match t.channel {
            // A failed write ends generation: `main` is quiet about a closed pipe (`| head`),
            // and reports anything else (a full disk).
            Channel::Answer => write!(out, "{}", t.text).and_then(|_| out.flush()).map_err(crate::stdout_error)?,
            Channel::Thought if show_thinking => {
                thinking = true;
                eprint!("{}", t.text);
            }
            _ => {}
        }
    }
    if thinking {
        eprintln!();
    }
    let decode = start.elapsed().as_secs_f64();
    let usage = gen.usage();
    let pre = usage.prefill_time.as_secs_f64();
    let n = usage.generated_tokens;
    let why = match gen.finish_reason() {
        Some(FinishReason::Stop(id)) => {
            format!("stop: {}", tok.and_then(|t| t.token_str(*id)).unwrap_or_else(|| format!("token {id}")))
        }
        Some(FinishReason::StopString(s)) => format!("stop string: {s:?}"),
        Some(FinishReason::Length) => "length".into(),
        Some(FinishReason::ContextFull) => "context full".into(),
        Some(FinishReason::Cancelled) => "cancelled".into(),
        Some(FinishReason::Constraint) => "constraint complete".into(),
        Some(other) => format!("{other:?}"),
        None => "?".into(),
    };
    eprintln!(
        "\n[{why} | {} prompt + {n} generated tokens, prefill {pre:.2} s ({:.1} tok/s), decode {decode:.2} s ({:.1} tok/s)]",
        usage.prompt_tokens,
        usage.prompt_tokens as f64 / pre.max(1e-9),
        n as f64 / decode.max(1e-9)
    );
    // A malformed tool call: the text is shown, the reply has no calls.
    let reply = gen.reply().unwrap_or_else(|e| {
        eprintln!("garnet: warning: {e}");
        Reply { content: gen.text().to_string(), ..Reply::default() }
    });
    Ok((n, reply))
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
