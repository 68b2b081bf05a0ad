//! Shader compilation check for `garnet doctor`: builds the pipeline of every entry point of
//! every shader, and of every weight dtype for the shaders that decode weights.

use super::device::{Gpu, PipelineKey};
use super::shaders::Shader;
use crate::error::Result;
use crate::quant::FORMATS;
use crate::tensor::DType;

/// `(shader / entry [dtype], result)` for every pipeline garnet can build.
pub fn compile_all(gpu: &Gpu) -> Vec<(String, Result<()>)> {
    let mut out = Vec::new();
    for shader in Shader::ALL {
        for &entry in shader.entries() {
            // Every dtype with a device code (all of them: none is widened at upload).
            let variants: Vec<Option<DType>> = if shader.reads_weights() {
                FORMATS.iter().filter(|f| f.kernel_code.is_some()).map(|f| Some(f.dtype)).collect()
            } else {
                vec![None]
            };
            for dtype in variants {
                let constants = dtype.and_then(DType::kernel_code).map(|c| vec![("DTYPE", c)]).unwrap_or_default();
                let key = PipelineKey { shader, entry, constants };
                let name = match dtype {
                    Some(d) => format!("{} / {entry} [{}]", shader.file(), d.name()),
                    None => format!("{} / {entry}", shader.file()),
                };
                out.push((name, gpu.pipeline(&key).map(drop)));
            }
        }
    }
    out
}

/// One adapter as `garnet doctor` lists it.
#[derive(Clone, Debug)]
pub struct AdapterReport {
    /// Name, backend, device type and driver.
    pub description: String,
    /// `max_storage_buffer_binding_size`, bytes.
    pub max_binding: u64,
    /// `max_buffer_size`, bytes.
    pub max_buffer: u64,
    /// `max_compute_workgroup_storage_size`, bytes.
    pub workgroup_memory: u32,
    /// `max_compute_invocations_per_workgroup`.
    pub invocations: u32,
    /// `max_compute_workgroups_per_dimension`.
    pub workgroups_per_dim: u32,
    /// Timestamp queries (`--profile`).
    pub timestamps: bool,
    /// `shader-f16`.
    pub shader_f16: bool,
    /// Subgroup operations, with the subgroup size range.
    pub subgroups: Option<(u32, u32)>,
}

/// Every adapter wgpu finds, best first (the order of [`super::adapters`]).
pub fn adapter_reports() -> Vec<AdapterReport> {
    super::adapters()
        .iter()
        .map(|ad| {
            let (i, l, f) = (ad.get_info(), ad.limits(), ad.features());
            AdapterReport {
                description: format!(
                    "{} ({:?}, {:?}, driver {} {})",
                    i.name, i.backend, i.device_type, i.driver, i.driver_info
                ),
                max_binding: l.max_storage_buffer_binding_size,
                max_buffer: l.max_buffer_size,
                workgroup_memory: l.max_compute_workgroup_storage_size,
                invocations: l.max_compute_invocations_per_workgroup,
                workgroups_per_dim: l.max_compute_workgroups_per_dimension,
                timestamps: f.contains(wgpu::Features::TIMESTAMP_QUERY),
                shader_f16: f.contains(wgpu::Features::SHADER_F16),
                subgroups: f.contains(wgpu::Features::SUBGROUP).then_some((i.subgroup_min_size, i.subgroup_max_size)),
            }
        })
        .collect()
}
