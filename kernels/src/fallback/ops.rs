//! The host fallback of every op: download the inputs (and the output, whose elements outside
//! the op's range must survive), run the reference op ([`RefCpu`]) on the host, upload the
//! result. Generic over any backend's memory methods, so a backend that implements only those
//! runs the whole model (the first step of docs/BRINGUP.md). The defaults of the [`Backend`]
//! ops call these.

use crate::args::*;
use crate::backend::Backend;
use crate::error::Result;
use crate::reference::RefCpu;

/// A whole buffer on the host.
fn get<B: Backend + ?Sized>(b: &B, x: &B::Buf) -> Result<Vec<f32>> {
    let mut host = vec![0.0; b.buf_len(x)];
    b.download(x, 0, &mut host)?;
    Ok(host)
}

/// A whole id buffer on the host.
fn get_ids<B: Backend + ?Sized>(b: &B, ids: &B::Ids) -> Result<Vec<u32>> {
    let mut host = vec![0; b.ids_len(ids)];
    b.download_ids(ids, &mut host)?;
    Ok(host)
}

/// `f` on the host copy of `x`, then `x` uploaded back (an op writing `x` in place or into part of it).
fn update<B: Backend + ?Sized>(b: &B, x: &mut B::Buf, f: impl FnOnce(&mut Vec<f32>) -> Result<()>) -> Result<()> {
    let mut host = get(b, x)?;
    f(&mut host)?;
    b.upload(&host, x)
}

pub(crate) fn embed<B: Backend + ?Sized>(
    b: &B,
    a: &EmbedArgs,
    table: &B::Weight,
    ids: &B::Ids,
    out: &mut B::Buf,
) -> Result<()> {
    let (table, ids) = (b.host_weight(table)?, get_ids(b, ids)?);
    update(b, out, |out| RefCpu.embed(a, &table, &ids, out))
}

pub(crate) fn matmul<B: Backend + ?Sized>(
    b: &B,
    a: &MatmulArgs,
    x: &B::Buf,
    w: &B::Weight,
    out: &mut B::Buf,
) -> Result<()> {
    let (x, w) = (get(b, x)?, b.host_weight(w)?);
    update(b, out, |out| RefCpu.matmul(a, &x, &w, out))
}

pub(crate) fn rms_norm<B: Backend + ?Sized>(
    b: &B,
    a: &RmsNormArgs,
    x: &B::Buf,
    w: Option<&B::Weight>,
    out: &mut B::Buf,
) -> Result<()> {
    let (x, w) = (get(b, x)?, w.map(|w| b.host_weight(w)).transpose()?);
    update(b, out, |out| RefCpu.rms_norm(a, &x, w.as_ref(), out))
}

pub(crate) fn add_rms_norm<B: Backend + ?Sized>(
    b: &B,
    a: &RmsNormArgs,
    x: &B::Buf,
    w: &B::Weight,
    residual: &mut B::Buf,
) -> Result<()> {
    let (x, w) = (get(b, x)?, b.host_weight(w)?);
    update(b, residual, |residual| RefCpu.add_rms_norm(a, &x, &w, residual))
}

pub(crate) fn layer_norm<B: Backend + ?Sized>(
    b: &B,
    a: &LayerNormArgs,
    x: &B::Buf,
    w: &B::Weight,
    bias: &B::Weight,
    out: &mut B::Buf,
) -> Result<()> {
    let (x, w, bias) = (get(b, x)?, b.host_weight(w)?, b.host_weight(bias)?);
    update(b, out, |out| RefCpu.layer_norm(a, &x, &w, &bias, out))
}

pub(crate) fn rope<B: Backend + ?Sized>(b: &B, a: &RopeArgs, x: &mut B::Buf) -> Result<()> {
    update(b, x, |x| RefCpu.rope(a, x))
}

pub(crate) fn kv_write<B: Backend + ?Sized>(
    b: &B,
    a: &KvWriteArgs,
    k: &B::Buf,
    v: &B::Buf,
    cache_k: &mut B::Buf,
    cache_v: &mut B::Buf,
) -> Result<()> {
    let (k, v) = (get(b, k)?, get(b, v)?);
    let (mut ck, mut cv) = (get(b, cache_k)?, get(b, cache_v)?);
    RefCpu.kv_write(a, &k, &v, &mut ck, &mut cv)?;
    b.upload(&ck, cache_k)?;
    b.upload(&cv, cache_v)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn attention<B: Backend + ?Sized>(
    b: &B,
    a: &AttentionArgs,
    q: &B::Buf,
    k: &B::Buf,
    v: &B::Buf,
    cache_k: &B::Buf,
    cache_v: &B::Buf,
    out: &mut B::Buf,
) -> Result<()> {
    let (q, k, v) = (get(b, q)?, get(b, k)?, get(b, v)?);
    let (ck, cv) = (get(b, cache_k)?, get(b, cache_v)?);
    update(b, out, |out| RefCpu.attention(a, &q, &k, &v, &ck, &cv, out))
}

pub(crate) fn geglu<B: Backend + ?Sized>(
    b: &B,
    a: &GegluArgs,
    gate: &B::Buf,
    up: &B::Buf,
    out: &mut B::Buf,
) -> Result<()> {
    let (gate, up) = (get(b, gate)?, get(b, up)?);
    update(b, out, |out| RefCpu.geglu(a, &gate, &up, out))
}

pub(crate) fn copy<B: Backend + ?Sized>(b: &B, a: &CopyArgs, src: &B::Buf, dst: &mut B::Buf) -> Result<()> {
    let src = get(b, src)?;
    update(b, dst, |dst| RefCpu.copy(a, &src, dst))
}

pub(crate) fn softcap<B: Backend + ?Sized>(b: &B, a: &SoftcapArgs, x: &mut B::Buf) -> Result<()> {
    update(b, x, |x| RefCpu.softcap(a, x))
}

pub(crate) fn scale<B: Backend + ?Sized>(b: &B, a: &ScaleArgs, x: &mut B::Buf) -> Result<()> {
    update(b, x, |x| RefCpu.scale(a, x))
}

pub(crate) fn add<B: Backend + ?Sized>(b: &B, a: &AddArgs, x: &B::Buf, acc: &mut B::Buf) -> Result<()> {
    let x = get(b, x)?;
    update(b, acc, |acc| RefCpu.add(a, &x, acc))
}

pub(crate) fn argmax<B: Backend + ?Sized>(b: &B, a: &ArgmaxArgs, x: &B::Buf, out: &mut B::Buf) -> Result<()> {
    let x = get(b, x)?;
    update(b, out, |out| RefCpu.argmax(a, &x, out))
}

pub(crate) fn moe_route<B: Backend + ?Sized>(
    b: &B,
    a: &RouteArgs,
    scores: &B::Buf,
    per_expert_scale: &B::Weight,
    ids: &mut B::Ids,
    weights: &mut B::Buf,
) -> Result<()> {
    let (scores, scale) = (get(b, scores)?, b.host_weight(per_expert_scale)?);
    let (mut host_ids, mut host_weights) = (get_ids(b, ids)?, get(b, weights)?);
    RefCpu.moe_route(a, &scores, &scale, &mut host_ids, &mut host_weights)?;
    b.upload_ids(&host_ids, ids)?;
    b.upload(&host_weights, weights)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn moe_experts<B: Backend + ?Sized>(
    b: &B,
    a: &MoeArgs,
    x: &B::Buf,
    gate_up: &B::Weight,
    down: &B::Weight,
    ids: &B::Ids,
    weights: &B::Buf,
    out: &mut B::Buf,
) -> Result<()> {
    let (x, ids, weights) = (get(b, x)?, get_ids(b, ids)?, get(b, weights)?);
    let (gate_up, down) = (b.host_weight(gate_up)?, b.host_weight(down)?);
    update(b, out, |out| RefCpu.moe_experts(a, &x, &gate_up, &down, &ids, &weights, out))
}
