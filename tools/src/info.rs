//! `garnet info`: what a checkpoint is and what it costs.

use garnet::config::LayerKind;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint directory or .safetensors file.
    #[arg(long)]
    model: PathBuf,
    /// Report the sizes after quantizing the float weights at load: q8_0, q4_0 or q4_k.
    #[arg(long, value_parser = crate::parse_quant)]
    quant: Option<garnet_kernels::DType>,
}

pub fn main(a: Args) -> garnet::Result<()> {
    let engine = crate::load(&a.model, garnet::api::LoadOptions { quant: a.quant, ..Default::default() })?;
    let (c, i) = (engine.config(), engine.info());
    // Sizes in f64: they are only printed (3 digits), and products of config values cannot wrap.
    let n_layers = c.n_layers() as f64;
    let embed = c.vocab_size as f64 * c.hidden_size as f64;
    let ple = c.ple_vocab_size as f64 * n_layers * c.ple_dim as f64;
    let experts = c.moe.map_or(0.0, |m| n_layers * m.n_experts as f64 * 3.0 * m.inter as f64 * c.hidden_size as f64);
    let params = i.params as f64;
    let active = match c.moe {
        Some(m) => params - ple - experts + experts * m.top_k as f64 / m.n_experts as f64,
        None => params - ple,
    };
    let full_kv = c.kv_floats_per_position(LayerKind::Full) as f64 * 4.0;
    let sliding_kv = c.kv_floats_per_position(LayerKind::Sliding) as f64 * 4.0 * c.sliding_window as f64;
    let shared = c.layers.iter().filter(|l| l.kv_source.is_some()).count();
    let (first, last) = (&c.layers[0], &c.layers[c.layers.len() - 1]);
    outln!("model        {}", garnet::error::escape_path(&i.path))?;
    outln!(
        "variant      {} {} ({} layers, hidden {}, vocab {})",
        if c.arch == garnet::config::Arch::Gemma3 { "Gemma 3" } else { "Gemma 4" },
        c.variant(),
        c.n_layers(),
        c.hidden_size,
        c.vocab_size
    )?;
    outln!("layers       {}", c.layer_pattern())?;
    outln!(
        "attention    {} heads; sliding: {} KV heads x {}, window {}; full: {} KV heads x {}{}",
        c.n_heads,
        first.n_kv_heads,
        first.head_dim,
        c.sliding_window,
        last.n_kv_heads,
        last.head_dim,
        if c.layers.iter().any(|l| l.k_eq_v) { ", K=V" } else { "" }
    )?;
    if shared > 0 {
        outln!("kv sharing   last {shared} layers reuse earlier K/V")?;
    }
    if let Some(m) = c.moe {
        outln!("moe          {} experts, top-{}, expert width {}", m.n_experts, m.top_k, m.inter)?;
    }
    if c.ple_dim > 0 {
        outln!("ple          {} per layer ({} params in the table, memory-mapped)", c.ple_dim, count(ple))?;
    }
    outln!(
        "parameters   {} total, {} embedding (tied), {} active per token",
        count(params),
        count(embed),
        count(active)
    )?;
    outln!("weights      {}B used, {}B in the files", count(i.weight_bytes as f64), count(i.file_bytes as f64))?;
    let ctx = c.max_position_embeddings.min(4096);
    let cache = garnet::kv::cache_bytes(c, ctx).map_or(f64::INFINITY, |b| b as f64);
    outln!(
        "kv cache     {}B per position (full layers) + {}B fixed (sliding rings), f32: {}B at {ctx} positions",
        count(full_kv),
        count(sliding_kv),
        count(cache)
    )
}

/// `n` with a metric suffix: 4.629 G, 1.23 M, 96 k (beyond 1e12: 1.000e15).
fn count(n: f64) -> String {
    match n {
        n if n < 1e3 => format!("{n:.0}"),
        n if n < 1e6 => format!("{:.3} k", n / 1e3),
        n if n < 1e9 => format!("{:.3} M", n / 1e6),
        n if n < 1e12 => format!("{:.3} G", n / 1e9),
        n => format!("{n:.3e} "),
    }
}
