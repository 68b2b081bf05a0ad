//! Bytes of weights one decode step reads: what a benchmark divides by the time per token to get
//! the decode bandwidth.
//!
//! A decode step (one token) reads every matrix, norm and scale of every layer; the whole
//! embedding table, since the tied LM head multiplies by all of it; the one embedding row and the
//! one PLE-table row of the token (the PLE table is otherwise never read); and on MoE layers the
//! `top_k` experts the router picks: `top_k / n_experts` of the expert tensors. KV-cache reads are
//! not weights and are not counted.
//!
//! [`of_checkpoint`] gets the dtypes from the checkpoint's header (O(header), nothing is read or
//! quantized) and, with load-time quantization, from the rule of [`crate::weights::quantize`]:
//! the matrices become `target` blocks when their rows are whole blocks of it, else Q8_0 when
//! whole blocks of 32, else stay as stored; tensors already block-quantized stay as they are.

use crate::config::ModelConfig;
use crate::error::Result;
use crate::weights::{MoeWeights, Weights};
use garnet_kernels::{DType, HostTensor};
use std::path::Path;

/// Bytes a model holds and reads per decoded token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// Every weight the model uses, the PLE table included.
    pub weight_bytes: u64,
    /// Weights one decode step reads.
    pub per_token: u64,
}

/// The footprint of `w` (sizes in bytes of each weight, as loaded) and the PLE table
/// (`(bytes, rows)`) of a model of configuration `cfg`.
pub fn decode_footprint(cfg: &ModelConfig, w: &Weights<u64>, ple_table: Option<(u64, usize)>) -> Footprint {
    let mut all = 0u64;
    w.for_each(&mut |b| all += b);
    let experts: u64 = w.layers.iter().filter_map(|l| l.moe.as_ref()).map(|m| m.gate_up + m.down).sum();
    let active = cfg.moe.map_or(0, |m| experts * m.top_k as u64 / m.n_experts.max(1) as u64);
    let embed_row = w.embed / cfg.vocab_size.max(1) as u64;
    let (ple_bytes, ple_row) = ple_table.map_or((0, 0), |(bytes, rows)| (bytes, bytes / rows.max(1) as u64));
    Footprint { weight_bytes: all + ple_bytes, per_token: all - experts + active + embed_row + ple_row }
}

/// The footprint of the checkpoint at `path` (as [`crate::Engine::load`] takes it) loaded with
/// optional load-time quantization to `quant`.
pub fn of_checkpoint(path: &Path, quant: Option<DType>) -> Result<Footprint> {
    let (cfg, store, _) = crate::api::open_checkpoint(path, false)?;
    let (w, ple_table) = crate::weights::load(&store, &cfg)?;
    let sizes = match quant {
        Some(target) => quantized_sizes(&w, target)?,
        None => w.map(&mut |t| Ok(t.nbytes() as u64))?,
    };
    Ok(decode_footprint(&cfg, &sizes, ple_table.map(|t| (t.nbytes() as u64, t.shape()[0]))))
}

/// Bytes of `t` after load-time quantization to `target` (see the module doc).
fn quantized_bytes(t: &HostTensor, target: DType) -> u64 {
    let row = t.shape().last().copied().unwrap_or(0);
    let dtype = [target, DType::Q8_0].into_iter().find(|d| row % d.block().0 == 0);
    match dtype {
        Some(d) if !t.dtype().is_quantized() => d.bytes_for(t.numel()).unwrap_or(0) as u64,
        _ => t.nbytes() as u64,
    }
}

/// The sizes of `w` after [`crate::weights::quantize`] to `target`: the same tensors it converts.
fn quantized_sizes(w: &Weights<HostTensor>, target: DType) -> Result<Weights<u64>> {
    let q = |t: &HostTensor| quantized_bytes(t, target);
    let mut s = w.map(&mut |t| Ok(t.nbytes() as u64))?;
    s.embed = q(&w.embed);
    for (o, l) in s.layers.iter_mut().zip(&w.layers) {
        (o.q_proj, o.o_proj) = (q(&l.q_proj), q(&l.o_proj));
        (o.gate_proj, o.up_proj, o.down_proj) = (q(&l.gate_proj), q(&l.up_proj), q(&l.down_proj));
        if let (Some(okv), Some(kv)) = (o.kv.as_mut(), l.kv.as_ref()) {
            okv.k_proj = q(&kv.k_proj);
            okv.v_proj = kv.v_proj.as_ref().map(q);
        }
        if let (Some(om), Some(MoeWeights { gate_up, down, .. })) = (o.moe.as_mut(), l.moe.as_ref()) {
            (om.gate_up, om.down) = (q(gate_up), q(down));
        }
        if let (Some(op), Some(p)) = (o.ple.as_mut(), l.ple.as_ref()) {
            (op.input_gate, op.projection, op.model_projection) =
                (q(&p.input_gate), q(&p.projection), q(&p.model_projection));
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TensorStore;

    fn fixture(variant: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/gemma4-tiny").join(variant).join("bf16")
    }

    /// The predicted sizes are those `weights::quantize` produces.
    #[test]
    fn quantized_sizes_match_the_quantizer() {
        for variant in ["moe_26b_a4b_like", "edge_e2b_like"] {
            let path = fixture(variant);
            let (cfg, store) = (ModelConfig::load(&path).unwrap(), TensorStore::open(&path).unwrap());
            let (w, _) = crate::weights::load(&store, &cfg).unwrap();
            for target in [DType::Q8_0, DType::Q4_0, DType::Q4_K] {
                let real = crate::weights::quantize(&w, target).unwrap().map(&mut |t| Ok(t.nbytes() as u64)).unwrap();
                let (mut a, mut b) = (vec![], vec![]);
                real.for_each(&mut |x| a.push(*x));
                quantized_sizes(&w, target).unwrap().for_each(&mut |x| b.push(*x));
                assert_eq!(a, b, "{variant} {}", target.name());
            }
        }
    }

    #[test]
    fn moe_reads_top_k_of_the_experts_and_one_ple_row() {
        let moe = of_checkpoint(&fixture("moe_26b_a4b_like"), None).unwrap();
        let cfg = ModelConfig::load(&fixture("moe_26b_a4b_like")).unwrap();
        let m = cfg.moe.unwrap();
        let experts = (cfg.n_layers() * m.n_experts * 3 * m.inter * cfg.hidden_size * 2) as u64;
        let embed_row = (cfg.hidden_size * 2) as u64;
        assert_eq!(
            moe.per_token,
            moe.weight_bytes - experts + experts * m.top_k as u64 / m.n_experts as u64 + embed_row
        );
        let e2b = of_checkpoint(&fixture("edge_e2b_like"), None).unwrap();
        let c = ModelConfig::load(&fixture("edge_e2b_like")).unwrap();
        let table = (c.ple_vocab_size * c.n_layers() * c.ple_dim * 2) as u64;
        let row = (c.n_layers() * c.ple_dim * 2) as u64;
        assert_eq!(e2b.per_token, e2b.weight_bytes - table + row + (c.hidden_size * 2) as u64);
    }
}
