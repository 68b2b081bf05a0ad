//! Attention and the KV cache write on the device: not written yet.
use super::device::{unavailable, Gpu};
use super::GpuBuf;
use crate::args::{AttentionArgs, KvWriteArgs};
use crate::error::Result;

pub(super) fn kv_write(
    _gpu: &Gpu,
    _a: &KvWriteArgs,
    _k: &GpuBuf,
    _v: &GpuBuf,
    _ck: &mut GpuBuf,
    _cv: &mut GpuBuf,
) -> Result<()> {
    Err(unavailable("kv_write: not written yet"))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn attention(
    _gpu: &Gpu,
    _a: &AttentionArgs,
    _q: &GpuBuf,
    _k: &GpuBuf,
    _v: &GpuBuf,
    _ck: &GpuBuf,
    _cv: &GpuBuf,
    _out: &mut GpuBuf,
) -> Result<()> {
    Err(unavailable("attention: not written yet"))
}
