//! Embedding gather on the device: not written yet.
use super::device::{unavailable, Gpu};
use super::{GpuBuf, GpuWeight};
use crate::args::EmbedArgs;
use crate::error::Result;

pub(super) fn embed(_gpu: &Gpu, _a: &EmbedArgs, _table: &GpuWeight, _ids: &GpuBuf, _out: &mut GpuBuf) -> Result<()> {
    Err(unavailable("embed: not written yet"))
}
