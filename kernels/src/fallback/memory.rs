//! [`MemoryOnly`]: the smallest backend, buffers in host memory and nothing else. Every op runs
//! through the host fallback, so it runs the whole model exactly as the reference does: the
//! test that the fallback covers every op, and the skeleton a new backend starts from
//! (docs/BRINGUP.md).

use crate::backend::Backend;

/// A backend that implements only the memory methods (see the [module](self)).
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryOnly;

impl Backend for MemoryOnly {
    crate::host::memory_types!();

    fn name(&self) -> &'static str {
        "memory-only"
    }

    crate::host::memory_methods!();
}
