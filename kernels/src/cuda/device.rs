//! What the CUDA backend needs of a device, and the two devices that provide it: the real GPU
//! through the driver API ([`super::driver::Driver`]) and the host emulator
//! ([`super::emulator::Emulator`]), which runs the same kernel sources compiled as C++. The
//! backend's op code is shared: grid sizes, parameter packing and argument checks are tested
//! in the emulator exactly as a GPU runs them.

use super::kernels::Kernel;
use crate::backend::{DeviceStats, OpTimes};
use crate::error::{KernelError, Result};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Grid and block sizes of a launch (x, y, z).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Blocks.
    pub grid: [u32; 3],
    /// Threads per block.
    pub block: [u32; 3],
}

impl Dims {
    /// A one-dimensional launch.
    pub fn linear(blocks: u32, threads: u32) -> Dims {
        Dims { grid: [blocks, 1, 1], block: [threads, 1, 1] }
    }

    /// `Err` (naming `kernel`) for a launch no CUDA device accepts: a grid beyond 2^31 - 1 blocks
    /// in x or 65535 in y or z, a block beyond 1024 threads in all or in x / y, or 64 in z. Both
    /// devices check it, so the emulator fails where the driver would.
    pub fn check(&self, kernel: &str) -> Result<()> {
        let [gx, gy, gz] = self.grid;
        let [bx, by, bz] = self.block;
        let threads = u64::from(bx) * u64::from(by) * u64::from(bz);
        if gx > i32::MAX as u32 || gy > 65535 || gz > 65535 || bx > 1024 || by > 1024 || bz > 64 || threads > 1024 {
            return Err(crate::error::bad_arg(
                "launch",
                format!("kernel {kernel}: grid {:?} x block {:?} exceeds CUDA's launch limits", self.grid, self.block),
            ));
        }
        Ok(())
    }
}

/// A kernel's parameter block, passed by value as its only argument.
///
/// # Safety
/// The type must be `#[repr(C)]`, hold only plain numbers (device pointers as `u64`), and match
/// the struct of the same name in the kernel's `.cu` file field for field.
pub unsafe trait Params: Copy + Send + Sync + 'static {}

/// A CUDA device: memory, copies and launches, in order on one stream.
pub trait Device: Send + Sync + 'static {
    /// An allocation, freed on drop.
    type Mem: Send + Sync;
    /// "cuda" or "cuda-emulated".
    fn name(&self) -> &'static str;
    /// `bytes` of zeroed device memory.
    fn alloc(&self, bytes: usize) -> Result<Self::Mem>;
    /// The device address of an allocation (what the kernels' params hold).
    fn ptr(&self, mem: &Self::Mem) -> u64;
    /// Copies host bytes to `dst + offset`, ordered after the work queued before.
    fn write(&self, dst: &Self::Mem, offset: usize, src: &[u8]) -> Result<()>;
    /// Copies device bytes at `src + offset` to the host after all queued work (a host sync).
    fn read(&self, src: &Self::Mem, offset: usize, dst: &mut [u8]) -> Result<()>;
    /// Device-to-device copy of `bytes` between addresses from [`Device::ptr`].
    fn copy(&self, src: u64, dst: u64, bytes: usize) -> Result<()>;
    /// Queues `kernel` over `dims` with `params`.
    fn launch<P: Params>(&self, kernel: Kernel, dims: Dims, params: &P) -> Result<()>;
    /// Launches, copies and host syncs so far.
    fn stats(&self) -> DeviceStats;
    /// Starts timing every launch (the GPU: events around each kernel; the emulator: host time).
    fn enable_profiling(&self) -> bool;
    /// Time per kernel since profiling started, slowest first (waits for queued work).
    fn profile(&self) -> OpTimes;
}

/// Calls and total time per kernel entry, once profiling is on.
#[derive(Default)]
pub struct KernelTimes(Mutex<Option<HashMap<&'static str, (u64, Duration)>>>);

impl KernelTimes {
    /// Starts (or restarts) counting.
    pub fn enable(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(HashMap::new());
    }
    /// Whether counting is on.
    pub fn on(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }
    /// Adds one call of `entry` taking `t`.
    pub fn add(&self, entry: &'static str, t: Duration) {
        if let Some(m) = self.0.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let slot = m.entry(entry).or_default();
            slot.0 += 1;
            slot.1 += t;
        }
    }
    /// `(kernel, calls, total)`, slowest first.
    pub fn rows(&self) -> OpTimes {
        let guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut rows: OpTimes = guard.iter().flatten().map(|(k, (n, t))| (*k, *n, *t)).collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.2));
        rows
    }
}

/// The backend cannot run here (no driver, no device, emulator not built).
pub fn unavailable(backend: &'static str, why: impl Into<String>) -> KernelError {
    KernelError::Unavailable { backend, why: why.into() }
}

/// `n` as a kernel's u32 parameter (`what` names it), or an argument error past 2^32.
pub(crate) fn u32_arg(op: &'static str, what: &str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| crate::error::bad_arg(op, format!("{what} {n} exceeds a u32")))
}

/// A device operation failed.
pub fn device_error(backend: &'static str, what: impl Into<String>) -> KernelError {
    KernelError::Device { backend, what: what.into() }
}

#[cfg(test)]
mod tests {
    use super::Dims;

    #[test]
    fn launches_beyond_cuda_limits_are_refused() {
        let ok = [
            Dims { grid: [i32::MAX as u32, 65535, 65535], block: [1024, 1, 1] },
            Dims { grid: [1; 3], block: [8, 8, 16] },
        ];
        for d in ok {
            assert!(d.check("k").is_ok(), "{d:?}");
        }
        let bad = [
            Dims { grid: [1, 65536, 1], block: [128, 1, 1] },
            Dims { grid: [1, 1, 65536], block: [128, 1, 1] },
            Dims { grid: [1 << 31, 1, 1], block: [128, 1, 1] },
            Dims { grid: [1; 3], block: [1025, 1, 1] },
            Dims { grid: [1; 3], block: [64, 32, 1] },
            Dims { grid: [1; 3], block: [1, 1, 65] },
        ];
        for d in bad {
            let e = d.check("gemm_tc_q4_0").unwrap_err().to_string();
            assert!(e.contains("gemm_tc_q4_0") && e.contains("launch limits"), "{d:?}: {e}");
        }
    }
}
