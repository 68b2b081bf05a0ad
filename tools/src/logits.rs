//! `garnet logits`: the verification command. Prefill the prompt in one forward, then greedy
//! steps through the KV cache, at reference precision (f32 activations and cache, HF's f32
//! scales). Writes `prefill_logits` F32 [P, V], `gen_ids` I64 [N], `step_logits` F32 [N, V]:
//! step 0 is the last prefill row, step i the logits after feeding `gen_ids[i-1]`.

use garnet::api::{BackendKind, LoadOptions, Precision, SessionOptions};
use safetensors::{tensor::TensorView, Dtype};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: PathBuf,
    /// Comma-separated prompt token ids, e.g. 2,17,300.
    #[arg(long, value_delimiter = ',', required = true)]
    prompt_ids: Vec<u32>,
    /// Greedy steps after the prompt.
    #[arg(long, default_value_t = 0)]
    gen: usize,
    /// Output safetensors file.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "cpu")]
    backend: BackendKind,
    /// Run these ops through the host fallback (download, reference, upload): `all` or op names
    /// as `ops-test --list` prints them, comma-separated (bring-up and tests).
    #[arg(long, default_value = "")]
    host_fallback: crate::HostFallbackArg,
}

pub fn main(a: Args) -> garnet::Result<()> {
    let opts = LoadOptions {
        backend: a.backend,
        precision: Precision::Reference,
        host_fallback: a.host_fallback.0,
        ..Default::default()
    };
    let engine = crate::load(&a.model, opts)?;
    let v = engine.config().vocab_size;
    let context = (a.prompt_ids.len() + a.gen).max(1);
    let mut session = engine.session(SessionOptions { context, prefill_chunk: a.prompt_ids.len().max(1) })?;
    let prefill = session.prefill_all(&a.prompt_ids)?;
    let mut steps: Vec<f32> = Vec::with_capacity(a.gen * v);
    let mut gen_ids: Vec<i64> = Vec::with_capacity(a.gen);
    let mut row = prefill[prefill.len() - v..].to_vec();
    for i in 0..a.gen {
        let id = garnet::sampling::argmax(&row);
        steps.extend_from_slice(&row);
        gen_ids.push(id as i64);
        if i + 1 < a.gen {
            row = session.step(id)?;
        }
    }
    let bytes = |x: &[f32]| x.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>();
    let (p_bytes, s_bytes) = (bytes(&prefill), bytes(&steps));
    let g_bytes: Vec<u8> = gen_ids.iter().flat_map(|i| i.to_le_bytes()).collect();
    let fmt = |e: safetensors::SafeTensorError| garnet::Error::Invalid(format!("writing {}: {e}", a.out.display()));
    let tensors = vec![
        ("prefill_logits", TensorView::new(Dtype::F32, vec![a.prompt_ids.len(), v], &p_bytes).map_err(fmt)?),
        ("gen_ids", TensorView::new(Dtype::I64, vec![a.gen], &g_bytes).map_err(fmt)?),
        ("step_logits", TensorView::new(Dtype::F32, vec![a.gen, v], &s_bytes).map_err(fmt)?),
    ];
    safetensors::serialize_to_file(tensors, None, &a.out).map_err(fmt)?;
    Ok(())
}
