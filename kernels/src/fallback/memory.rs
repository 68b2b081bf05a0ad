//! [`MemoryOnly`]: the smallest backend, buffers in host memory and nothing else. Every op runs
//! through the host fallback, so it runs the whole model exactly as the reference does: the
//! test that the fallback covers every op, and the skeleton a new backend starts from
//! (docs/BRINGUP.md).

use crate::backend::Backend;
use crate::error::Result;
use crate::host;
use crate::tensor::HostTensor;

/// A backend that implements only the memory methods (see the [module](self)).
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryOnly;

impl Backend for MemoryOnly {
    type Buf = Vec<f32>;
    type Ids = Vec<u32>;
    type Weight = HostTensor;

    fn name(&self) -> &'static str {
        "memory-only"
    }

    fn alloc(&self, len: usize) -> Result<Vec<f32>> {
        Ok(vec![0.0; len])
    }

    fn alloc_ids(&self, len: usize) -> Result<Vec<u32>> {
        Ok(vec![0; len])
    }

    fn buf_len(&self, buf: &Vec<f32>) -> usize {
        buf.len()
    }

    fn ids_len(&self, ids: &Vec<u32>) -> usize {
        ids.len()
    }

    fn upload(&self, src: &[f32], dst: &mut Vec<f32>) -> Result<()> {
        host::upload("upload", src, dst)
    }

    fn upload_ids(&self, src: &[u32], dst: &mut Vec<u32>) -> Result<()> {
        host::upload("upload_ids", src, dst)
    }

    fn download(&self, src: &Vec<f32>, offset: usize, dst: &mut [f32]) -> Result<()> {
        host::download("download", src, offset, dst)
    }

    fn download_ids(&self, src: &Vec<u32>, dst: &mut [u32]) -> Result<()> {
        host::download("download_ids", src, 0, dst)
    }

    fn weight(&self, t: &HostTensor) -> Result<HostTensor> {
        Ok(t.clone())
    }

    fn host_weight(&self, w: &HostTensor) -> Result<HostTensor> {
        Ok(w.clone())
    }
}
