//! Load a checkpoint, open a session, stream a completion, say why it ended and what it cost.
//! cargo run -p garnet --no-default-features --example generate -- testdata/gemma4-tiny/edge_e2b_like/bf16
use garnet::{Engine, GenerateOptions, LoadOptions, Sampling, SessionOptions};
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args.next().ok_or("usage: generate MODEL [PROMPT]")?;
    let prompt = args.next().unwrap_or_else(|| "The capital of France is".to_string());
    run(&model, &prompt, &mut std::io::stdout())
}

/// Streams up to 32 greedy tokens of `prompt` to `out`, stopping early at a blank line.
pub fn run(model: &str, prompt: &str, out: &mut impl Write) -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::load(model, LoadOptions::default())?;
    // A context over the model's maximum is capped to it.
    let mut session = engine.session(SessionOptions { context: 8192, ..Default::default() })?;
    let sampling = Sampling { max_new_tokens: 32, ..Sampling::greedy() };
    let options = GenerateOptions::default().stop_string("\n\n");
    let mut generation = session.generate_with(prompt, &sampling, options)?;
    for token in generation.by_ref() {
        write!(out, "{}", token?.text)?;
        out.flush()?;
    }
    let usage = generation.usage();
    writeln!(out)?;
    eprintln!(
        "finished: {:?}; {} prompt tokens in {:?}, {} generated in {:?}",
        generation.finish_reason(),
        usage.prompt_tokens,
        usage.prefill_time,
        usage.generated_tokens,
        usage.decode_time
    );
    Ok(())
}
