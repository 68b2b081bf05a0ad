//! The emulated CUDA device: host memory for device memory, and each launch run by the C++
//! build of the same kernel sources (`kernels/cuda/emu/`, compiled by `build.rs`) on the calling
//! thread, one block at a time, the block's threads as coroutines. Slow, exact in what it
//! models (see `cuda_emu.h`), and the way every CUDA kernel is tested where there is no GPU.

use super::device::{device_error, unavailable, Device, Dims, KernelTimes, Params};
use super::kernels::{EmuLaunch, Kernel, MemStats};
use crate::backend::{DeviceStats, OpTimes};
use crate::error::Result;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Guard bytes after every allocation: 0xff, so that a read past the end gives NaN (f32) or
/// garbage rather than zeros, and a write past the end is found after the launch.
const GUARD: usize = 256;

/// Emulated device memory: a zeroed host allocation, 256-byte aligned like `cuMemAlloc`'s,
/// followed by [`GUARD`] guard bytes.
pub struct EmuMem {
    ptr: std::ptr::NonNull<u8>,
    /// The usable bytes (the layout holds `GUARD` more).
    len: usize,
    layout: std::alloc::Layout,
    live: Arc<Live>,
}

/// The emulator's live allocations: address -> usable length.
type Live = Mutex<BTreeMap<usize, usize>>;

// SAFETY: the allocation is only touched through the emulator, which serialises every access
// (launches, reads, writes) behind its lock.
unsafe impl Send for EmuMem {}
// SAFETY: as above.
unsafe impl Sync for EmuMem {}

impl Drop for EmuMem {
    fn drop(&mut self) {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).remove(&(self.ptr.as_ptr() as usize));
        // SAFETY: allocated in `Emulator::alloc` with this layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// The emulated device.
pub struct Emulator {
    stats: Mutex<DeviceStats>,
    times: KernelTimes,
    live: Arc<Live>,
    /// The memory model's totals and last block size per kernel entry, once
    /// [`Emulator::model_memory`] is called.
    mem: Mutex<Option<BTreeMap<&'static str, (MemStats, u32)>>>,
    /// The race detector's seed and the launches since it was set, once
    /// [`Emulator::detect_races`] is called.
    races: Mutex<Option<(u64, u64)>>,
}

impl Emulator {
    /// The emulator, or why this build has none (it was compiled without a C++ compiler).
    pub fn new() -> Result<Emulator> {
        if cfg!(garnet_cuda_emu) {
            Ok(Emulator {
                stats: Mutex::new(DeviceStats::default()),
                times: KernelTimes::default(),
                live: Arc::default(),
                mem: Mutex::new(None),
                races: Mutex::new(None),
            })
        } else {
            Err(unavailable(
                "cuda-emulated",
                "this build has no CUDA emulator (kernels/build.rs found no C++ compiler)",
            ))
        }
    }

    /// Turns on the memory-transaction model (`cuda_emu.h`): from now on every launch adds the
    /// warp-level requests of its recorded accesses (`gld`/`gst`/`sld`/`sst` in the kernels) to
    /// its kernel's totals. Slower.
    pub fn model_memory(&self) {
        self.mem.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(BTreeMap::new);
    }

    /// Turns on the race detector (`cuda_emu.h`): from now on every launch resumes the threads of
    /// a block in a random order each round (drawn from `seed` and the launch's number, so a run
    /// is reproducible) and fails on two accesses to the same memory by different threads, one a
    /// store, with no barrier (or, within a warp, no collective) between them, or from different
    /// blocks. Only accesses through `gld`/`gst`/`sld`/`sst` are seen. Slower.
    pub fn detect_races(&self, seed: u64) {
        *self.races.lock().unwrap_or_else(|e| e.into_inner()) = Some((seed, 0));
    }

    /// The memory model's totals per kernel entry since [`Emulator::model_memory`], with the
    /// threads per block of the kernel's last launch.
    pub fn memory_stats(&self) -> Vec<(&'static str, MemStats, u32)> {
        let mem = self.mem.lock().unwrap_or_else(|e| e.into_inner());
        mem.iter().flat_map(|m| m.iter().map(|(k, (v, t))| (*k, *v, *t))).collect()
    }

    fn count(&self, f: impl FnOnce(&mut DeviceStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// `Err` naming `kernel` if it wrote into the guard bytes of any live allocation.
    fn check_guards(&self, kernel: &str) -> Result<()> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        for (&addr, &len) in live.iter() {
            // SAFETY: every live entry is an allocation of `len + GUARD` bytes (removed before it
            // is freed); no launch is running (launches are synchronous, this runs after one).
            let guard = unsafe { std::slice::from_raw_parts((addr + len) as *const u8, GUARD) };
            if let Some(at) = guard.iter().position(|&b| b != 0xff) {
                return Err(device_error(
                    "cuda-emulated",
                    format!("kernel {kernel} wrote past the end of a {len}-byte buffer (guard byte {at})"),
                ));
            }
        }
        Ok(())
    }

    /// Names the buffer and byte offset of the global address in a race report
    /// ("global memory at 0x..."), when it lies in a live allocation.
    fn locate(&self, msg: &mut String) {
        const AT: &str = "global memory at 0x";
        let Some(start) = msg.find(AT).map(|i| i + AT.len()) else { return };
        let hex: String = msg[start..].chars().take_while(char::is_ascii_hexdigit).collect();
        let Ok(addr) = usize::from_str_radix(&hex, 16) else { return };
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((&base, &len)) = live.range(..=addr).next_back().filter(|(&b, &l)| addr < b + l) {
            msg.insert_str(start + hex.len(), &format!(" (byte {} of a {len}-byte buffer)", addr - base));
        }
    }

    fn range(mem: &EmuMem, offset: usize, len: usize) -> Result<*mut u8> {
        match offset.checked_add(len) {
            Some(end) if end <= mem.len => {
                // SAFETY: offset + len is within the allocation.
                Ok(unsafe { mem.ptr.as_ptr().add(offset) })
            }
            _ => {
                Err(device_error("cuda-emulated", format!("copy of {len} bytes at {offset} outside {} bytes", mem.len)))
            }
        }
    }
}

impl Device for Emulator {
    type Mem = EmuMem;

    fn name(&self) -> &'static str {
        "cuda-emulated"
    }

    fn alloc(&self, bytes: usize) -> Result<EmuMem> {
        let layout = bytes
            .checked_add(GUARD)
            .and_then(|total| std::alloc::Layout::from_size_align(total, 256).ok())
            .ok_or_else(|| unavailable("cuda-emulated", format!("allocation of {bytes} bytes")))?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = std::ptr::NonNull::new(ptr)
            .ok_or_else(|| unavailable("cuda-emulated", format!("out of memory allocating {bytes} bytes")))?;
        // SAFETY: the guard bytes `bytes..bytes + GUARD` are inside the fresh allocation.
        unsafe { std::ptr::write_bytes(ptr.as_ptr().add(bytes), 0xff, GUARD) };
        self.live.lock().unwrap_or_else(|e| e.into_inner()).insert(ptr.as_ptr() as usize, bytes);
        Ok(EmuMem { ptr, len: bytes, layout, live: self.live.clone() })
    }

    fn ptr(&self, mem: &EmuMem) -> u64 {
        mem.ptr.as_ptr() as u64
    }

    fn write(&self, dst: &EmuMem, offset: usize, src: &[u8]) -> Result<()> {
        let p = Self::range(dst, offset, src.len())?;
        let _serial = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the range is inside the allocation, which no launch is using (launches hold
        // the lock and run to completion).
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), p, src.len()) };
        drop(_serial);
        self.count(|s| s.copies += 1);
        Ok(())
    }

    fn read(&self, src: &EmuMem, offset: usize, dst: &mut [u8]) -> Result<()> {
        let p = Self::range(src, offset, dst.len())?;
        {
            let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            // SAFETY: the range is inside the allocation; launches are complete (they are
            // synchronous and hold this lock).
            unsafe { std::ptr::copy_nonoverlapping(p, dst.as_mut_ptr(), dst.len()) };
            s.copies += 1;
            s.syncs += 1;
        }
        Ok(())
    }

    fn copy(&self, src: u64, dst: u64, bytes: usize) -> Result<()> {
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: both addresses come from `ptr` of live allocations, with the ranges checked
        // by the caller against the buffers' lengths; `copy` allows overlap.
        unsafe { std::ptr::copy(src as *const u8, dst as *mut u8, bytes) };
        s.copies += 1;
        Ok(())
    }

    fn launch<P: Params>(&self, kernel: Kernel, dims: Dims, params: &P) -> Result<()> {
        let f = kernel.emu.ok_or_else(|| unavailable("cuda-emulated", "this build has no CUDA emulator"))?;
        if dims.grid.contains(&0) {
            return Ok(()); // an empty grid launches nothing, as on the device
        }
        dims.check(kernel.entry)?;
        let modelled = self.mem.lock().unwrap_or_else(|e| e.into_inner()).is_some();
        let mut totals = MemStats::default();
        let mem = if modelled { &mut totals as *mut MemStats } else { std::ptr::null_mut() };
        let (races, seed) = match self.races.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some((seed, launches)) => {
                *launches += 1;
                (1, seed.wrapping_add(launches.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            }
            None => (0, 0),
        };
        let launch = EmuLaunch { grid: dims.grid, block: dims.block, mem, seed, races };
        let mut err = [0 as std::ffi::c_char; 512];
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let start = std::time::Instant::now();
        // SAFETY: `f` is the emulator entry of `kernel`, whose params struct is `P` (the
        // `Params` contract); every pointer in `params` was checked against its buffer by the
        // op; `err` is writable for its length.
        let rc = unsafe { f(&launch, params as *const P as *const std::ffi::c_void, err.as_mut_ptr(), err.len()) };
        let elapsed = start.elapsed();
        s.dispatches += 1;
        let guards = if rc == 0 { self.check_guards(kernel.entry) } else { Ok(()) };
        drop(s);
        if let Some(m) = self.mem.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let e = m.entry(kernel.entry).or_default();
            e.0.add(&totals);
            e.1 = dims.block.iter().product();
        }
        self.times.add(kernel.entry, elapsed);
        if rc != 0 {
            // SAFETY: the entry wrote a NUL-terminated message (snprintf) into `err`.
            let mut msg = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) }.to_string_lossy().into_owned();
            self.locate(&mut msg);
            return Err(device_error("cuda-emulated", format!("kernel {kernel:?}: {msg}")));
        }
        guards
    }

    fn stats(&self) -> DeviceStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enable_profiling(&self) -> bool {
        self.times.enable();
        true
    }

    fn profile(&self) -> OpTimes {
        self.times.rows()
    }
}
