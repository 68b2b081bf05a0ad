//! RoPE on the device: not written yet.
use super::device::{unavailable, Gpu};
use super::GpuBuf;
use crate::args::RopeArgs;
use crate::error::Result;

pub(super) fn rope(_gpu: &Gpu, _a: &RopeArgs, _x: &mut GpuBuf) -> Result<()> {
    Err(unavailable("rope: not written yet"))
}
