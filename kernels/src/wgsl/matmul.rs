//! Matmul on the device: not written yet.
use super::device::{unavailable, Gpu};
use super::{GpuBuf, GpuWeight};
use crate::args::MatmulArgs;
use crate::error::Result;

pub(super) fn matmul(_gpu: &Gpu, _a: &MatmulArgs, _x: &GpuBuf, _w: &GpuWeight, _out: &mut GpuBuf) -> Result<()> {
    Err(unavailable("matmul: not written yet"))
}
