//! The real CUDA device through the driver API (cudarc's thin `result` layer, the library loaded
//! at run time): one context (the device's primary), one stream, the committed PTX modules
//! JIT-compiled by the driver on first use of each.
//!
//! Start-up checks in order, each failure a clear [`KernelError::Unavailable`]: the driver
//! library (`libcuda.so.1`) is present (cudarc panics without it, so this is checked first),
//! `cuInit` succeeds, a device exists. Driver errors are reported by their CUresult name,
//! without calling back into a driver that may be broken.

use super::device::{device_error, unavailable, Device, Dims, KernelTimes, Params};
use super::kernels::{Kernel, Module};
use crate::backend::{DeviceStats, OpTimes};
use crate::error::{KernelError, Result};
use cudarc::driver::{result, sys};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const NAME: &str = "cuda";

fn err(what: &str, e: result::DriverError) -> KernelError {
    device_error(NAME, format!("{what}: {:?}", e.0))
}

/// Facts about the device, for `garnet doctor`.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    /// The driver's CUDA version, e.g. 12040 for 12.4.
    pub driver_version: i32,
    /// Device ordinal.
    pub ordinal: usize,
    /// Marketing name.
    pub name: String,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
    /// Global memory in bytes.
    pub memory: usize,
    /// Streaming multiprocessors.
    pub sms: i32,
}

struct Context {
    dev: sys::CUdevice,
    ctx: sys::CUcontext,
    stream: sys::CUstream,
}

// SAFETY: CUDA contexts and streams may be used from any thread once made current there, which
// every call does (`Driver::current`); the handles are only read.
unsafe impl Send for Context {}
// SAFETY: as above.
unsafe impl Sync for Context {}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the stream and the primary-context reference were created in `Driver::new`
        // and are released once; errors at teardown have nowhere to go.
        unsafe {
            let _ = result::ctx::set_current(self.ctx);
            let _ = result::stream::synchronize(self.stream);
            let _ = result::stream::destroy(self.stream);
            let _ = result::primary_ctx::release(self.dev);
        }
    }
}

/// A device allocation, freed on drop.
pub struct DriverMem {
    ptr: sys::CUdeviceptr,
    bytes: usize,
    ctx: Arc<Context>,
}

impl Drop for DriverMem {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `malloc_sync` in this context and is freed once; the stream is
        // synchronised first so no queued kernel still uses it.
        unsafe {
            let _ = result::ctx::set_current(self.ctx.ctx);
            let _ = result::stream::synchronize(self.ctx.stream);
            let _ = result::free_sync(self.ptr);
        }
    }
}

/// A launch timed by two events, resolved at the next host sync.
struct Timed {
    entry: &'static str,
    start: sys::CUevent,
    end: sys::CUevent,
}

struct Function(sys::CUfunction);
// SAFETY: a CUfunction handle is immutable and valid in its context on any thread.
unsafe impl Send for Function {}

/// The GPU.
pub struct Driver {
    ctx: Arc<Context>,
    info: DeviceInfo,
    modules: Mutex<HashMap<Module, sys::CUmodule>>,
    functions: Mutex<HashMap<Kernel, Function>>,
    stats: Mutex<DeviceStats>,
    times: KernelTimes,
    pending: Mutex<Vec<Timed>>,
}

// SAFETY: the module handles are only used under their mutex, in the device's context.
unsafe impl Send for Driver {}
// SAFETY: as above.
unsafe impl Sync for Driver {}

/// The driver's CUDA version once `cuInit` succeeds, or why there is no usable driver. Never
/// panics: the library is looked for before any cudarc call that would panic without it.
pub fn probe() -> Result<i32> {
    // SAFETY: only tries to dlopen the candidate library names.
    if !unsafe { sys::is_culib_present() } {
        return Err(unavailable(NAME, "no NVIDIA driver: libcuda.so.1 (nvcuda.dll) not found"));
    }
    result::init()
        .map_err(|e| unavailable(NAME, format!("cuInit failed: {:?} (driver present, no usable GPU?)", e.0)))?;
    let mut version = 0;
    // SAFETY: writes one int.
    unsafe { sys::cuDriverGetVersion(&mut version) }
        .result()
        .map_err(|e| unavailable(NAME, format!("cuDriverGetVersion: {:?}", e.0)))?;
    Ok(version)
}

/// Devices present (at least one), after [`probe`].
pub fn device_count() -> Result<usize> {
    let count = result::device::get_count().map_err(|e| unavailable(NAME, format!("cuDeviceGetCount: {:?}", e.0)))?;
    if count <= 0 {
        return Err(unavailable(NAME, "no CUDA device"));
    }
    Ok(count as usize)
}

impl Driver {
    /// The backend's device `ordinal`, or why it cannot run here.
    pub fn new(ordinal: usize) -> Result<Driver> {
        let driver_version = probe()?;
        let count = device_count()?;
        if ordinal >= count {
            return Err(unavailable(NAME, format!("device {ordinal} requested, {count} present")));
        }
        let dev = result::device::get(ordinal as i32).map_err(|e| err("cuDeviceGet", e))?;
        let attr = |a| {
            // SAFETY: `dev` is a valid device handle.
            unsafe { result::device::get_attribute(dev, a) }.map_err(|e| err("cuDeviceGetAttribute", e))
        };
        use sys::CUdevice_attribute as A;
        let cc = (
            attr(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
            attr(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?,
        );
        if cc.0 < 8 {
            return Err(unavailable(
                NAME,
                format!("compute capability {}.{}: the kernels need sm_80 or later", cc.0, cc.1),
            ));
        }
        let info = DeviceInfo {
            driver_version,
            ordinal,
            name: result::device::get_name(dev).unwrap_or_default(),
            compute_capability: cc,
            // SAFETY: `dev` is a valid device handle.
            memory: unsafe { result::device::total_mem(dev) }.unwrap_or(0),
            sms: attr(A::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?,
        };
        // SAFETY: retains the primary context of a valid device; released in `Context::drop`.
        let ctx = unsafe { result::primary_ctx::retain(dev) }.map_err(|e| err("cuDevicePrimaryCtxRetain", e))?;
        // SAFETY: `ctx` was just retained.
        unsafe { result::ctx::set_current(ctx) }.map_err(|e| err("cuCtxSetCurrent", e))?;
        let stream =
            result::stream::create(result::stream::StreamKind::NonBlocking).map_err(|e| err("cuStreamCreate", e))?;
        Ok(Driver {
            ctx: Arc::new(Context { dev, ctx, stream }),
            info,
            modules: Mutex::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
            stats: Mutex::new(DeviceStats::default()),
            times: KernelTimes::default(),
            pending: Mutex::new(Vec::new()),
        })
    }

    /// The device's description.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn current(&self) -> Result<()> {
        // SAFETY: the context lives as long as `self`.
        unsafe { result::ctx::set_current(self.ctx.ctx) }.map_err(|e| err("cuCtxSetCurrent", e))
    }

    fn function(&self, k: Kernel) -> Result<sys::CUfunction> {
        let mut fns = self.functions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = fns.get(&k) {
            return Ok(f.0);
        }
        let mut mods = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        let module = match mods.get(&k.module) {
            Some(m) => *m,
            None => {
                let src = std::ffi::CString::new(k.module.ptx())
                    .map_err(|_| device_error(NAME, format!("{}.ptx holds a NUL byte", k.module.stem())))?;
                // SAFETY: a NUL-terminated PTX image; the driver JIT-compiles it for this device.
                let m = unsafe { result::module::load_data(src.as_ptr() as *const _) }.map_err(|e| {
                    device_error(
                        NAME,
                        format!(
                            "loading {}.ptx: {:?} (the PTX is ISA 8.4 from NVRTC 12.4: the driver must be R550 or later)",
                            k.module.stem(),
                            e.0
                        ),
                    )
                })?;
                mods.insert(k.module, m);
                m
            }
        };
        let name = std::ffi::CString::new(k.entry).expect("entry names have no NUL");
        // SAFETY: `module` is loaded in this context; `name` is NUL-terminated.
        let f = unsafe { result::module::get_function(module, name) }.map_err(|e| err(k.entry, e))?;
        fns.insert(k, Function(f));
        Ok(f)
    }

    /// Adds the timed launches to the totals (after a stream sync: every event has completed).
    fn resolve_times(&self) {
        let done = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for t in done {
            // SAFETY: both events were recorded on the stream, which has been synchronised; each
            // is destroyed once, here.
            unsafe {
                if let Ok(ms) = result::event::elapsed(t.start, t.end) {
                    self.times.add(t.entry, std::time::Duration::from_secs_f64(ms as f64 / 1e3));
                }
                let _ = result::event::destroy(t.start);
                let _ = result::event::destroy(t.end);
            }
        }
    }

    fn count(&self, f: impl FnOnce(&mut DeviceStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn check(mem: &DriverMem, offset: usize, len: usize) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= mem.bytes => Ok(()),
            _ => Err(device_error(NAME, format!("copy of {len} bytes at {offset} outside {} bytes", mem.bytes))),
        }
    }
}

impl Device for Driver {
    type Mem = DriverMem;

    fn name(&self) -> &'static str {
        NAME
    }

    fn alloc(&self, bytes: usize) -> Result<DriverMem> {
        self.current()?;
        // SAFETY: allocates in the current context; zeroed before use; freed by `DriverMem`.
        let ptr = unsafe { result::malloc_sync(bytes.max(1)) }.map_err(|e| err("cuMemAlloc", e))?;
        let mem = DriverMem { ptr, bytes, ctx: self.ctx.clone() };
        // SAFETY: `ptr` holds `bytes.max(1)` bytes; the memset is queued on the stream, so work
        // queued after it sees zeros.
        unsafe { result::memset_d8_async(ptr, 0, bytes.max(1), self.ctx.stream) }
            .map_err(|e| err("cuMemsetD8Async", e))?;
        Ok(mem)
    }

    fn ptr(&self, mem: &DriverMem) -> u64 {
        mem.ptr
    }

    fn write(&self, dst: &DriverMem, offset: usize, src: &[u8]) -> Result<()> {
        Self::check(dst, offset, src.len())?;
        self.current()?;
        // SAFETY: the range is inside the allocation. Queued on the stream (after the kernels
        // before it, before those after it) with no host sync: from pageable memory the driver
        // stages `src` before returning, so the caller may reuse it at once.
        unsafe { result::memcpy_htod_async(dst.ptr + offset as u64, src, self.ctx.stream) }
            .map_err(|e| err("cuMemcpyHtoDAsync", e))?;
        self.count(|s| s.copies += 1);
        Ok(())
    }

    fn read(&self, src: &DriverMem, offset: usize, dst: &mut [u8]) -> Result<()> {
        Self::check(src, offset, dst.len())?;
        self.current()?;
        // SAFETY: the range is inside the allocation; the stream is drained first.
        unsafe {
            result::stream::synchronize(self.ctx.stream).map_err(|e| err("cuStreamSynchronize", e))?;
            result::memcpy_dtoh_sync(dst, src.ptr + offset as u64).map_err(|e| err("cuMemcpyDtoH", e))?;
        }
        self.resolve_times();
        self.count(|s| {
            s.copies += 1;
            s.syncs += 1;
        });
        Ok(())
    }

    fn copy(&self, src: u64, dst: u64, bytes: usize) -> Result<()> {
        self.current()?;
        // SAFETY: the caller checked both ranges against live buffers; queued on the stream.
        unsafe { result::memcpy_dtod_async(dst, src, bytes, self.ctx.stream) }.map_err(|e| err("cuMemcpyDtoD", e))?;
        self.count(|s| s.copies += 1);
        Ok(())
    }

    fn launch<P: Params>(&self, kernel: Kernel, dims: Dims, params: &P) -> Result<()> {
        if dims.grid.contains(&0) {
            return Ok(());
        }
        dims.check(kernel.entry)?;
        self.current()?;
        let f = self.function(kernel)?;
        let mut args = [params as *const P as *mut std::ffi::c_void];
        let g = dims.grid;
        let b = dims.block;
        let timed = if self.times.on() {
            let ev =
                || result::event::create(sys::CUevent_flags::CU_EVENT_DEFAULT).map_err(|e| err("cuEventCreate", e));
            let (start, end) = (ev()?, ev()?);
            // SAFETY: a fresh event recorded on this context's stream.
            unsafe { result::event::record(start, self.ctx.stream) }.map_err(|e| err("cuEventRecord", e))?;
            Some(Timed { entry: kernel.entry, start, end })
        } else {
            None
        };
        // SAFETY: `f` takes one parameter, the struct `P` (the `Params` contract); the driver
        // copies it at launch; every device pointer in it was checked by the op.
        unsafe { result::launch_kernel(f, (g[0], g[1], g[2]), (b[0], b[1], b[2]), 0, self.ctx.stream, &mut args) }
            .map_err(|e| err(kernel.entry, e))?;
        if let Some(t) = timed {
            // SAFETY: as above.
            unsafe { result::event::record(t.end, self.ctx.stream) }.map_err(|e| err("cuEventRecord", e))?;
            self.pending.lock().unwrap_or_else(|e| e.into_inner()).push(t);
        }
        self.count(|s| s.dispatches += 1);
        Ok(())
    }

    fn stats(&self) -> DeviceStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enable_profiling(&self) -> bool {
        self.times.enable();
        true
    }

    fn profile(&self) -> OpTimes {
        if self.current().is_ok() {
            // SAFETY: the stream belongs to this context.
            let _ = unsafe { result::stream::synchronize(self.ctx.stream) };
            self.resolve_times();
        }
        self.times.rows()
    }
}
