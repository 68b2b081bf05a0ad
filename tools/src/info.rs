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
    let embed = (c.vocab_size * c.hidden_size) as u64;
    let ple = (c.ple_vocab_size * c.n_layers() * c.ple_dim) as u64;
    let experts = c.moe.map_or(0, |m| (c.n_layers() * m.n_experts * 3 * m.inter * c.hidden_size) as u64);
    let active = match c.moe {
        Some(m) => i.params - ple - experts + experts * m.top_k as u64 / m.n_experts as u64,
        None => i.params - ple,
    };
    let full_kv = c.kv_floats_per_position(LayerKind::Full) * 4;
    let sliding_kv = c.kv_floats_per_position(LayerKind::Sliding) * 4 * c.sliding_window;
    let shared = c.layers.iter().filter(|l| l.kv_source.is_some()).count();
    println!("model        {}", i.path.display());
    println!(
        "variant      {} {} ({} layers, hidden {}, vocab {})",
        if c.arch == garnet::config::Arch::Gemma3 { "Gemma 3" } else { "Gemma 4" },
        c.variant(),
        c.n_layers(),
        c.hidden_size,
        c.vocab_size
    );
    println!("layers       {}", c.layer_pattern());
    println!(
        "attention    {} heads; sliding: {} KV heads x {}, window {}; full: {} KV heads x {}{}",
        c.n_heads,
        c.layers[0].n_kv_heads,
        c.layers[0].head_dim,
        c.sliding_window,
        c.layers.last().map_or(0, |l| l.n_kv_heads),
        c.layers.last().map_or(0, |l| l.head_dim),
        if c.layers.iter().any(|l| l.k_eq_v) { ", K=V" } else { "" }
    );
    if shared > 0 {
        println!("kv sharing   last {shared} layers reuse earlier K/V");
    }
    if let Some(m) = c.moe {
        println!("moe          {} experts, top-{}, expert width {}", m.n_experts, m.top_k, m.inter);
    }
    if c.ple_dim > 0 {
        println!("ple          {} per layer ({} params in the table, memory-mapped)", c.ple_dim, count(ple));
    }
    println!(
        "parameters   {} total, {} embedding (tied), {} active per token",
        count(i.params),
        count(embed),
        count(active)
    );
    println!("weights      {}B used, {}B in the files", count(i.weight_bytes), count(i.file_bytes));
    let ctx = c.max_position_embeddings.min(4096);
    println!(
        "kv cache     {}B per position (full layers) + {}B fixed (sliding rings), f32: {}B at {ctx} positions",
        count(full_kv as u64),
        count(sliding_kv as u64),
        count(garnet::kv::cache_bytes(c, ctx) as u64)
    );
    Ok(())
}

/// `n` with a metric suffix: 4.629 G, 1.23 M, 96 k.
fn count(n: u64) -> String {
    let (v, unit) = match n {
        0..1_000 => return n.to_string(),
        1_000..1_000_000 => (n as f64 / 1e3, "k"),
        1_000_000..1_000_000_000 => (n as f64 / 1e6, "M"),
        _ => (n as f64 / 1e9, "G"),
    };
    format!("{v:.3} {unit}")
}
