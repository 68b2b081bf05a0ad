//! `garnet perplexity`: llama.cpp's method, so the numbers compare. The text is tokenized with
//! `<bos>` and cut into non-overlapping windows of `--ctx` tokens; each window starts with `<bos>`
//! and runs as one prompt; the second half of each window is scored (every token predicted from
//! at least ctx/2 tokens of context). The last line is `PPL = <value> +/- <stderr>`.

use garnet::api::{BackendKind, LoadOptions, Precision, SessionOptions};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: PathBuf,
    /// Text file to score.
    #[arg(long)]
    file: PathBuf,
    /// Window length in tokens.
    #[arg(long, default_value_t = 512)]
    ctx: usize,
    /// Score at most this many windows (0 = all).
    #[arg(long, default_value_t = 0)]
    chunks: usize,
    #[arg(long, default_value = "cpu")]
    backend: BackendKind,
    /// native (activations quantized in the matmuls, as llama.cpp) or reference (f32 throughout).
    #[arg(long, default_value = "native")]
    precision: Precision,
    /// Quantize the float weights at load: q8_0, q4_0 or q4_k.
    #[arg(long, value_parser = crate::parse_quant)]
    quant: Option<garnet_kernels::DType>,
}

pub fn main(a: Args) -> garnet::Result<()> {
    let text = garnet::files::read_text_capped(&a.file, garnet::files::MAX_TEXT_BYTES, "text")?;
    let engine = crate::load(
        &a.model,
        LoadOptions { backend: a.backend, quant: a.quant, precision: a.precision, ..Default::default() },
    )?;
    let tok = engine.tokenizer().ok_or_else(|| garnet::Error::Tokenizer("the model has no tokenizer".into()))?;
    let bos = engine.config().bos_token_id;
    let tokens = tok.encode(&text, true)?;
    if a.ctx < 4 {
        return Err(garnet::Error::Invalid("--ctx must be at least 4".into()));
    }
    let mut windows = tokens.len() / a.ctx;
    if a.chunks > 0 {
        windows = windows.min(a.chunks);
    }
    if windows == 0 {
        return Err(garnet::Error::Invalid(format!("{} tokens do not fill one window of {}", tokens.len(), a.ctx)));
    }
    let first = a.ctx / 2;
    let v = engine.config().vocab_size;
    let mut session = engine.session(SessionOptions { context: a.ctx, prefill_chunk: a.ctx })?;
    let (mut nll, mut nll2, mut count) = (0f64, 0f64, 0usize);
    let start = std::time::Instant::now();
    for w in 0..windows {
        let mut ids = tokens[w * a.ctx..(w + 1) * a.ctx].to_vec();
        ids[0] = bos;
        session.reset();
        // Rows first..ctx-1 predict tokens first+1..ctx.
        let logits = session.prefill_from(&ids[..a.ctx - 1], first)?;
        for (row, &target) in logits.chunks_exact(v).zip(&ids[first + 1..]) {
            let lp = log_softmax_at(row, target as usize);
            nll -= lp;
            nll2 += lp * lp;
            count += 1;
        }
        let ppl = (nll / count as f64).exp();
        eprintln!("[{}/{}] {:.4}  ({:.1} s)", w + 1, windows, ppl, start.elapsed().as_secs_f64());
    }
    let mean = nll / count as f64;
    let ppl = mean.exp();
    let var = (nll2 / count as f64 - mean * mean).max(0.0);
    let stderr = if count > 1 { (var / (count - 1) as f64).sqrt() * ppl } else { 0.0 };
    outln!("{count} tokens scored in {windows} windows of {}", a.ctx)?;
    outln!("PPL = {ppl:.4} +/- {stderr:.5}")
}

/// `log softmax(row)[i]` in f64.
fn log_softmax_at(row: &[f32], i: usize) -> f64 {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
    row[i] as f64 - max - sum.ln()
}
