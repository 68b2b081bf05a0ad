//! MoE routing and experts on the device: not written yet.
use super::device::{unavailable, Gpu};
use super::{GpuBuf, GpuWeight};
use crate::args::{MoeArgs, RouteArgs};
use crate::error::Result;

pub(super) fn moe_route(
    _gpu: &Gpu,
    _a: &RouteArgs,
    _s: &GpuBuf,
    _pes: &GpuWeight,
    _ids: &mut GpuBuf,
    _w: &mut GpuBuf,
) -> Result<()> {
    Err(unavailable("moe_route: not written yet"))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn moe_experts(
    _gpu: &Gpu,
    _a: &MoeArgs,
    _x: &GpuBuf,
    _gu: &GpuWeight,
    _d: &GpuWeight,
    _ids: &GpuBuf,
    _w: &GpuBuf,
    _out: &mut GpuBuf,
) -> Result<()> {
    Err(unavailable("moe_experts: not written yet"))
}
