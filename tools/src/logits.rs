//! `garnet logits`: the verification command. Prefill the prompt in one forward, then greedy
//! steps through the KV cache, at reference precision (f32 activations and cache, HF's f32
//! scales). Writes `prefill_logits` F32 [P, V], `gen_ids` I64 [N], `step_logits` F32 [N, V]:
//! step 0 is the last prefill row, step i the logits after feeding `gen_ids[i-1]`.

use garnet::api::{BackendKind, LoadOptions, Precision, SessionOptions};
use garnet::Error;
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
    #[command(flatten)]
    dev: crate::DeviceArgs,
}

pub fn main(a: Args) -> garnet::Result<()> {
    let opts = LoadOptions {
        backend: a.backend,
        precision: Precision::Reference,
        host_fallback: a.dev.host_fallback.0,
        cpu_isa: a.dev.cpu_isa,
        ..Default::default()
    };
    let engine = crate::load(&a.model, opts)?;
    let v = engine.config().vocab_size;
    let p = a.prompt_ids.len();
    let context = p.checked_add(a.gen).ok_or_else(|| Error::Invalid(format!("--gen {} overflows", a.gen)))?.max(1);
    let max = engine.config().max_position_embeddings;
    if context > max {
        let why = format!("prompt + --gen: {context} positions exceeds the model's maximum {max}");
        return Err(Error::Invalid(why));
    }
    // The session checks the context against the model and the machine; the step logits are
    // `gen x vocab` floats on top, reserved before any work.
    let mut session = engine.session(SessionOptions { context, prefill_chunk: p.max(1) })?;
    let mut steps: Vec<f32> = Vec::new();
    let too_big = || Error::Invalid(format!("--gen {}: {} x {v} step logits do not fit in memory", a.gen, a.gen));
    a.gen.checked_mul(v).filter(|&n| steps.try_reserve_exact(n).is_ok()).ok_or_else(too_big)?;
    let prefill = session.prefill_all(&a.prompt_ids)?;
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
    let fmt = |e: safetensors::SafeTensorError| Error::Invalid(format!("writing {}: {e}", a.out.display()));
    let tensors = vec![
        ("prefill_logits", TensorView::new(Dtype::F32, vec![p, v], &p_bytes).map_err(fmt)?),
        ("gen_ids", TensorView::new(Dtype::I64, vec![a.gen], &g_bytes).map_err(fmt)?),
        ("step_logits", TensorView::new(Dtype::F32, vec![a.gen, v], &s_bytes).map_err(fmt)?),
    ];
    let file = safetensors::serialize(tensors, None).map_err(fmt)?;
    // A temporary beside --out, renamed when complete: an interrupted run leaves the old file.
    garnet::files::write_atomic(&a.out, |w| {
        w.write_all(&file).map_err(|source| Error::Io { path: a.out.clone(), err: source })
    })
}
