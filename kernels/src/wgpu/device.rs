//! The wgpu device every WGSL op runs on: adapter choice, buffers, the one command encoder that
//! records a forward pass, the pipeline cache, the dispatch helper and the timestamp profiler.
//!
//! Ordering: every op and every upload is recorded into the same encoder, in call order
//! (uploads are buffer-to-buffer copies from a fresh staging buffer, not `queue.write_buffer`,
//! which would jump ahead of the recorded work). [`Gpu::read`] is the only place that submits
//! and waits: a decode step is one submission and one host sync, for the logits.

use super::shaders::Shader;
use crate::backend::{DeviceStats, OpTimes};
use crate::error::{KernelError, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

const BACKEND: &str = "wgpu";

pub(crate) fn unavailable(why: impl Into<String>) -> KernelError {
    KernelError::Unavailable { backend: BACKEND, why: why.into() }
}

/// A compiled pipeline: one entry point of one shader with its `override` constants.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PipelineKey {
    /// The `.wgsl` file.
    pub shader: Shader,
    /// The `@compute` entry point.
    pub entry: &'static str,
    /// `override` constants by name (dtype codes, head_dim, workgroup sizes): all integers.
    pub constants: Vec<(&'static str, u32)>,
}

/// Timestamp queries, two per dispatch, resolved at each sync.
struct Profiler {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    labels: Vec<&'static str>,
    totals: HashMap<&'static str, (u64, Duration)>,
}

const MAX_TIMED_PASSES: u32 = 2048;

/// The device, its queue and the recording state.
pub struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) info: wgpu::AdapterInfo,
    pub(crate) limits: wgpu::Limits,
    pub(crate) features: wgpu::Features,
    /// Shaders use subgroup operations (the adapter has them and they were not turned off).
    subgroups: bool,
    encoder: Mutex<Option<wgpu::CommandEncoder>>,
    pipelines: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
    stats: Mutex<DeviceStats>,
    profiler: Mutex<Option<Profiler>>,
}

/// The adapters wgpu finds on this machine (Vulkan, Metal, DX12), best first.
pub fn adapters() -> Vec<wgpu::Adapter> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let mut all = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
    all.sort_by_key(|a| match a.get_info().device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    });
    all
}

/// The best adapter's name when it is hardware (not a software rasteriser such as lavapipe,
/// which runs slower than the CPU backend), else why not.
pub fn hardware_adapter() -> std::result::Result<String, String> {
    match adapters().first().map(|a| a.get_info()) {
        Some(i) if i.device_type != wgpu::DeviceType::Cpu => Ok(i.name),
        Some(i) => Err(format!("wgpu: only a software adapter ({})", i.name)),
        None => Err("wgpu: no adapter".into()),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Gpu {
    /// Opens the adapter `index` of [`adapters`] (the best one when `None`) with its own limits
    /// and the optional features garnet uses (timestamps, f16, subgroups) where present.
    /// `GARNET_WGPU_NO_SUBGROUPS=1` keeps the shaders off subgroup operations.
    pub fn new(index: Option<usize>) -> Result<Self> {
        let off = std::env::var("GARNET_WGPU_NO_SUBGROUPS").is_ok_and(|v| v == "1");
        Self::with_subgroups(index, !off)
    }

    /// [`Gpu::new`] with subgroup operations allowed or not (the workgroup-memory reductions
    /// are the portable fallback; tests run both).
    pub fn with_subgroups(index: Option<usize>, allow_subgroups: bool) -> Result<Self> {
        let mut all = adapters();
        if all.is_empty() {
            return Err(unavailable(
                "no Vulkan/Metal/DX12 adapter found (on Linux without a GPU install Mesa's lavapipe: \
                 apt install mesa-vulkan-drivers)",
            ));
        }
        let i = index.unwrap_or(0);
        if i >= all.len() {
            return Err(unavailable(format!("adapter {i} requested, {} found", all.len())));
        }
        let adapter = all.swap_remove(i);
        let info = adapter.get_info();
        let wanted = wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP;
        let features = adapter.features() & wanted;
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("garnet"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| unavailable(format!("{}: {e}", info.name)))?;
        Ok(Gpu {
            device,
            queue,
            info,
            limits,
            features,
            subgroups: allow_subgroups && features.contains(wgpu::Features::SUBGROUP),
            encoder: Mutex::new(None),
            pipelines: Mutex::new(HashMap::new()),
            stats: Mutex::new(DeviceStats::default()),
            profiler: Mutex::new(None),
        })
    }

    /// The adapter's name, backend and driver.
    pub fn describe(&self) -> String {
        let i = &self.info;
        format!("{} ({:?}, {:?}, {} {})", i.name, i.backend, i.device_type, i.driver, i.driver_info)
    }

    /// The largest storage binding, in bytes (weights are split into chunks below it).
    pub fn max_binding(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size)
    }

    /// True when shaders use subgroup operations (`subgroupAdd` reductions).
    pub fn subgroups(&self) -> bool {
        self.subgroups
    }

    /// Work counters.
    pub fn stats(&self) -> DeviceStats {
        *lock(&self.stats)
    }

    /// Zeroes the work counters.
    pub fn reset_stats(&self) {
        *lock(&self.stats) = DeviceStats::default();
    }

    /// Starts timing every dispatch with timestamp queries; false if the adapter has none.
    pub fn enable_profiling(&self) -> bool {
        if !self.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            return false;
        }
        let set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("garnet timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * MAX_TIMED_PASSES,
        });
        let resolve =
            self.buffer(16 * MAX_TIMED_PASSES as u64, wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC);
        *lock(&self.profiler) = Some(Profiler { set, resolve, labels: Vec::new(), totals: HashMap::new() });
        true
    }

    /// Device time per op since profiling started, slowest first.
    pub fn profile(&self) -> OpTimes {
        let guard = lock(&self.profiler);
        let mut rows: OpTimes = match guard.as_ref() {
            Some(p) => p.totals.iter().map(|(k, (n, t))| (*k, *n, *t)).collect(),
            None => Vec::new(),
        };
        rows.sort_by_key(|r| std::cmp::Reverse(r.2));
        rows
    }

    /// A raw buffer (no data); wgpu zero-initialises it.
    pub(crate) fn buffer(&self, bytes: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bytes.max(4),
            usage,
            mapped_at_creation: false,
        })
    }

    /// A buffer holding `bytes` (padded to 4), written through a mapping at creation.
    pub(crate) fn buffer_with(&self, bytes: &[u8], usage: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
        let size = (bytes.len() as u64).next_multiple_of(4).max(4);
        if size > self.limits.max_buffer_size {
            return Err(unavailable(format!(
                "a buffer of {size} bytes exceeds the adapter's max_buffer_size {}",
                self.limits.max_buffer_size
            )));
        }
        let buf =
            self.device.create_buffer(&wgpu::BufferDescriptor { label: None, size, usage, mapped_at_creation: true });
        {
            let mut view = buf.get_mapped_range_mut(..).map_err(|e| unavailable(format!("mapping: {e}")))?;
            view.slice(..bytes.len()).copy_from_slice(bytes);
        }
        buf.unmap();
        Ok(buf)
    }

    /// A zeroed storage buffer of `bytes` for activations or ids, checked against the limits.
    pub(crate) fn storage(&self, bytes: u64) -> Result<wgpu::Buffer> {
        if bytes > self.max_binding() {
            return Err(unavailable(format!(
                "an activation buffer of {bytes} bytes exceeds the adapter's binding limit {}",
                self.max_binding()
            )));
        }
        use wgpu::BufferUsages as U;
        Ok(self.buffer(bytes.next_multiple_of(4), U::STORAGE | U::COPY_SRC | U::COPY_DST))
    }

    /// Runs `f` on the encoder of the pass being recorded (creating it if needed).
    fn record<T>(&self, f: impl FnOnce(&mut wgpu::CommandEncoder) -> T) -> T {
        let mut guard = lock(&self.encoder);
        let enc = guard.get_or_insert_with(|| self.device.create_command_encoder(&Default::default()));
        f(enc)
    }

    /// Records `dst[dst_off..][..bytes] = bytes` in call order (through a staging buffer).
    pub(crate) fn write(&self, bytes: &[u8], dst: &wgpu::Buffer, dst_off: u64) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let staging = self.buffer_with(bytes, wgpu::BufferUsages::COPY_SRC)?;
        self.copy(&staging, 0, dst, dst_off, (bytes.len() as u64).next_multiple_of(4))
    }

    /// Records a buffer-to-buffer copy (offsets and size in bytes, multiples of 4).
    pub(crate) fn copy(
        &self,
        src: &wgpu::Buffer,
        src_off: u64,
        dst: &wgpu::Buffer,
        dst_off: u64,
        bytes: u64,
    ) -> Result<()> {
        if bytes == 0 {
            return Ok(());
        }
        self.record(|enc| enc.copy_buffer_to_buffer(src, src_off, dst, dst_off, bytes));
        lock(&self.stats).copies += 1;
        Ok(())
    }

    /// Submits everything recorded, copies `bytes` of `src` from `offset` to the host and waits:
    /// the one host sync of a forward pass. Offset and size are multiples of 4.
    pub(crate) fn read(&self, src: &wgpu::Buffer, offset: u64, bytes: u64) -> Result<Vec<u8>> {
        use wgpu::BufferUsages as U;
        let staging = self.buffer(bytes, U::MAP_READ | U::COPY_DST);
        // The encoder stays locked until its work is submitted: another thread's recording or
        // submission cannot slip in between (locks are taken encoder first, then profiler).
        let mut guard = lock(&self.encoder);
        let mut enc = guard.take().unwrap_or_else(|| self.device.create_command_encoder(&Default::default()));
        if bytes > 0 {
            enc.copy_buffer_to_buffer(src, offset, &staging, 0, bytes);
        }
        let timed = self.resolve_timestamps(&mut enc);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        self.queue.submit([enc.finish()]);
        drop(guard);
        let error = pollster::block_on(scope.pop());
        {
            let mut s = lock(&self.stats);
            s.submits += 1;
            s.syncs += 1;
            s.copies += 1;
        }
        if let Some(e) = error {
            return Err(unavailable(format!("device error: {e}")));
        }
        let mut out = map_read(&self.device, &staging, bytes)?;
        if let Some((labels, buf)) = timed {
            let raw = map_read(&self.device, &buf, 16 * labels.len() as u64)?;
            self.account(&labels, &raw);
        }
        out.truncate(bytes as usize);
        Ok(out)
    }

    /// Gets (building once) the pipeline of `key`.
    pub(crate) fn pipeline(&self, key: &PipelineKey) -> Result<wgpu::ComputePipeline> {
        if let Some(p) = lock(&self.pipelines).get(key) {
            return Ok(p.clone());
        }
        let source = key.shader.source(self.subgroups);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(key.shader.file()),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let constants: Vec<(&str, f64)> = key.constants.iter().map(|&(k, v)| (k, v as f64)).collect();
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(key.entry),
            layout: None,
            module: &module,
            entry_point: Some(key.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(unavailable(format!("{} / {}: {e}", key.shader.file(), key.entry)));
        }
        lock(&self.pipelines).insert(key.clone(), pipeline.clone());
        Ok(pipeline)
    }

    /// Records one dispatch of `key` over `groups` workgroups. Binding 0 is the uniform `params`
    /// (a `#[repr(C)]` struct mirrored in the shader); bindings 1.. are `buffers` in order.
    pub(crate) fn dispatch<P: bytemuck::Pod>(
        &self,
        key: &PipelineKey,
        label: &'static str,
        params: &P,
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) -> Result<()> {
        let max = self.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(unavailable(format!("{label}: {groups:?} workgroups exceed the limit {max} per dimension")));
        }
        if groups.contains(&0) {
            return Ok(());
        }
        let pipeline = self.pipeline(key)?;
        let uniform = self.buffer_with(bytemuck::bytes_of(params), wgpu::BufferUsages::UNIFORM)?;
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() }];
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.as_entire_binding() });
        }
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let mut enc = lock(&self.encoder);
        let mut prof = lock(&self.profiler);
        let slot = prof.as_mut().and_then(|p| {
            let i = p.labels.len() as u32;
            (i < MAX_TIMED_PASSES).then(|| {
                p.labels.push(label);
                i
            })
        });
        let timestamps = match (&*prof, slot) {
            (Some(p), Some(i)) => Some(wgpu::ComputePassTimestampWrites {
                query_set: &p.set,
                beginning_of_pass_write_index: Some(2 * i),
                end_of_pass_write_index: Some(2 * i + 1),
            }),
            _ => None,
        };
        let enc = enc.get_or_insert_with(|| self.device.create_command_encoder(&Default::default()));
        {
            let mut pass = enc
                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(label), timestamp_writes: timestamps });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &group, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
        drop(prof);
        lock(&self.stats).dispatches += 1;
        Ok(())
    }

    /// `n` workgroups laid out as `[x, y, 1]` under the per-dimension limit; shaders take the
    /// linear index `wid.x + wid.y * nwg.x` and skip indices `>= n`.
    pub(crate) fn grid(&self, n: usize) -> Result<[u32; 3]> {
        let max = self.limits.max_compute_workgroups_per_dimension as usize;
        let x = n.min(max);
        let y = n.div_ceil(max.max(1));
        if y > max {
            return Err(unavailable(format!("{n} workgroups exceed the device's grid")));
        }
        Ok([x as u32, y as u32, 1])
    }

    /// Appends the timestamp resolve to `enc`; returns the labels and the buffer to read.
    fn resolve_timestamps(&self, enc: &mut wgpu::CommandEncoder) -> Option<(Vec<&'static str>, wgpu::Buffer)> {
        let mut prof = lock(&self.profiler);
        let p = prof.as_mut()?;
        if p.labels.is_empty() {
            return None;
        }
        let n = p.labels.len() as u32;
        enc.resolve_query_set(&p.set, 0..2 * n, &p.resolve, 0);
        use wgpu::BufferUsages as U;
        let out = self.buffer(16 * n as u64, U::MAP_READ | U::COPY_DST);
        enc.copy_buffer_to_buffer(&p.resolve, 0, &out, 0, 16 * n as u64);
        Some((std::mem::take(&mut p.labels), out))
    }

    fn account(&self, labels: &[&'static str], raw: &[u8]) {
        let period = self.queue.get_timestamp_period() as f64;
        let mut prof = lock(&self.profiler);
        let Some(p) = prof.as_mut() else { return };
        for (i, label) in labels.iter().enumerate() {
            let at = |j: usize| u64::from_le_bytes(raw[8 * j..8 * j + 8].try_into().unwrap_or([0; 8]));
            let ns = at(2 * i + 1).saturating_sub(at(2 * i)) as f64 * period;
            let e = p.totals.entry(label).or_default();
            e.0 += 1;
            e.1 += Duration::from_nanos(ns as u64);
        }
    }
}

/// Maps a `MAP_READ` buffer after the last submission and copies out its first `bytes`.
fn map_read(device: &wgpu::Device, buf: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
    if bytes == 0 {
        return Ok(Vec::new());
    }
    let done: Arc<Mutex<Option<Result<(), wgpu::BufferAsyncError>>>> = Arc::default();
    let flag = done.clone();
    buf.map_async(wgpu::MapMode::Read, 0..bytes, move |r| *lock(&flag) = Some(r));
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| unavailable(format!("waiting for the device: {e}")))?;
    match lock(&done).take() {
        Some(Ok(())) => {}
        Some(Err(e)) => return Err(unavailable(format!("reading back: {e}"))),
        None => return Err(unavailable("reading back: the mapping never completed")),
    }
    let out = buf.get_mapped_range(0..bytes).map_err(|e| unavailable(format!("reading back: {e}")))?.to_vec();
    buf.unmap();
    Ok(out)
}
