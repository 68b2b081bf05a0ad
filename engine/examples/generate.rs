//! Embedding garnet: load a checkpoint, open a session, stream a completion.
//! `cargo run --release -p garnet --example generate -- testdata/gemma4-tiny/edge_e2b_like/bf16 "Hello"`
use garnet::api::{Engine, LoadOptions, SessionOptions};
use garnet::sampling::Sampling;
use std::io::Write;

fn main() -> Result<(), garnet::Error> {
    let mut args = std::env::args().skip(1);
    let model = args.next().unwrap_or_else(|| "testdata/gemma4-tiny/edge_e2b_like/bf16".into());
    let prompt = args.next().unwrap_or_else(|| "The capital of France is".into());

    let engine = Engine::load(&model, LoadOptions::default())?;
    let mut session = engine.session(SessionOptions::default())?;
    let sampling = Sampling { max_new_tokens: 32, ..Sampling::greedy() };
    for token in session.generate(&prompt, &sampling)? {
        print!("{}", token?.text);
        std::io::stdout().flush().ok();
    }
    println!();
    Ok(())
}
