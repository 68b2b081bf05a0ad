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
