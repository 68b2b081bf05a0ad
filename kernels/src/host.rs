//! Host memory as the CPU backends (and [`crate::fallback::MemoryOnly`]) hold it (`Vec<f32>` / `Vec<u32>` buffers, the mapped
//! [`crate::HostTensor`]s as weights): the memory methods they share, so that no backend
//! imports another.

use crate::args::CopyArgs;
use crate::error::{bad_arg, check_len, Result};

/// Copies `src` to the start of `dst`.
pub(crate) fn upload<T: Copy>(op: &'static str, src: &[T], dst: &mut [T]) -> Result<()> {
    check_len(op, "dst", dst.len(), src.len())?;
    dst[..src.len()].copy_from_slice(src);
    Ok(())
}

/// Copies `dst.len()` elements of `src` from `offset` on to `dst`.
pub(crate) fn download<T: Copy>(op: &'static str, src: &[T], offset: usize, dst: &mut [T]) -> Result<()> {
    let end = offset
        .checked_add(dst.len())
        .ok_or_else(|| bad_arg(op, format!("offset {offset} + {} overflows", dst.len())))?;
    check_len(op, "src", src.len(), end)?;
    dst.copy_from_slice(&src[offset..end]);
    Ok(())
}

/// `dst[dst_offset..][..len] = src[src_offset..][..len]` (the `copy` op on host buffers).
pub(crate) fn copy(a: &CopyArgs, src: &[f32], dst: &mut [f32]) -> Result<()> {
    let (src_end, dst_end) = a.check(src.len(), dst.len())?;
    dst[a.dst_offset..dst_end].copy_from_slice(&src[a.src_offset..src_end]);
    Ok(())
}

/// The associated types of a host-memory backend: `Vec` buffers, the mapped tensors as weights.
macro_rules! memory_types {
    () => {
        type Buf = Vec<f32>;
        type Ids = Vec<u32>;
        type Weight = $crate::tensor::HostTensor;
    };
}
pub(crate) use memory_types;

/// The memory methods of a host-memory backend (see [`memory_types`]), one definition for the
/// CPU backends and [`crate::fallback::MemoryOnly`].
macro_rules! memory_methods {
    () => {
        fn alloc(&self, len: usize) -> $crate::error::Result<Vec<f32>> {
            Ok(vec![0.0; len])
        }

        fn alloc_ids(&self, len: usize) -> $crate::error::Result<Vec<u32>> {
            Ok(vec![0; len])
        }

        fn buf_len(&self, buf: &Vec<f32>) -> usize {
            buf.len()
        }

        fn ids_len(&self, ids: &Vec<u32>) -> usize {
            ids.len()
        }

        fn upload(&self, src: &[f32], dst: &mut Vec<f32>) -> $crate::error::Result<()> {
            $crate::host::upload("upload", src, dst)
        }

        fn upload_ids(&self, src: &[u32], dst: &mut Vec<u32>) -> $crate::error::Result<()> {
            $crate::host::upload("upload_ids", src, dst)
        }

        fn download(&self, src: &Vec<f32>, offset: usize, dst: &mut [f32]) -> $crate::error::Result<()> {
            $crate::host::download("download", src, offset, dst)
        }

        fn download_ids(&self, src: &Vec<u32>, dst: &mut [u32]) -> $crate::error::Result<()> {
            $crate::host::download("download_ids", src, 0, dst)
        }

        fn weight(&self, t: &$crate::tensor::HostTensor) -> $crate::error::Result<$crate::tensor::HostTensor> {
            Ok(t.clone())
        }

        fn host_weight(&self, w: &$crate::tensor::HostTensor) -> $crate::error::Result<$crate::tensor::HostTensor> {
            Ok(w.clone())
        }
    };
}
pub(crate) use memory_methods;
