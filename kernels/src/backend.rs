//! The `Backend` trait: device memory, resident weights and one method per op.
//!
//! A forward pass is a fixed sequence of these calls on buffers that stay on the device; only
//! [`Backend::download`] brings data back (the logits). A GPU backend records the ops into a
//! command stream and may run them asynchronously: `download` is the synchronisation point.
//! Every op checks its arguments (their `check`, [`crate::args`]) against the buffer sizes and
//! returns an error, never panics.
//!
//! Only the memory methods are required. Every op has a default, the host fallback
//! ([`crate::fallback`]): download the inputs, run the reference, upload the result. A backend
//! overrides the ops it implements and lists them in [`Backend::supports`].

use crate::args::*;
use crate::error::Result;
use crate::op::Op;
use crate::tensor::HostTensor;
use std::time::Duration;

/// Work a device backend has recorded since it was created (all zero on the CPU backends, which
/// run each op as it is called).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Compute dispatches (kernel launches).
    pub dispatches: u64,
    /// Buffer copies (uploads, `copy`, downloads).
    pub copies: u64,
    /// Command buffers submitted.
    pub submits: u64,
    /// Times the host waited for the device.
    pub syncs: u64,
}

/// Device time per op from timestamp queries: `(op, calls, total time)`, slowest first.
pub type OpTimes = Vec<(&'static str, u64, Duration)>;

/// The `Backend` op methods of the table, each defaulting to its [`host_fallback`] function.
macro_rules! fallback_defaults {
    ($($(#[$doc:meta])* $op:ident $name:ident($args:ident; $($p:ident: $kind:ident),*) = $reference:path;)*) => {
        $(
            $(#[$doc])*
            #[allow(clippy::too_many_arguments)]
            fn $name(&self, a: &$args, $($p: crate::op::buffer_type!(Self, $kind)),*) -> Result<()> {
                host_fallback::$name(self, a, $($p),*)
            }
        )*
    };
}

/// A compute backend: [`crate::reference::RefCpu`] (`cpu-ref`, the scalar reference, the
/// oracle), [`crate::cpu::FastCpu`] (`cpu`), `crate::wgpu::Wgpu` (`wgpu`) and
/// [`crate::cuda::Cuda`] (`cuda`, `cuda-emulated`).
pub trait Backend: Send + Sync + 'static {
    /// An f32 activation buffer on the device.
    type Buf: Send + Sync + 'static;
    /// A u32 buffer on the device (token ids, expert ids).
    type Ids: Send + Sync + 'static;
    /// A weight resident on (or, for the CPU, mapped for) the device, in its storage dtype.
    type Weight: Send + Sync + 'static;

    /// Short name: "cpu-ref", "cpu", "wgpu", "cuda".
    fn name(&self) -> &'static str;

    /// Whether this backend implements `op` itself (ggml's `supports_op`); the others run through
    /// the host fallback. Weight dtypes a backend cannot decode it widens at upload
    /// ([`Backend::weight`]), so every supported op takes every dtype.
    fn supports(&self, op: Op) -> bool {
        let _ = op;
        false
    }
    /// Calls per op that went through the host fallback (see [`crate::fallback::HostFallback`],
    /// which counts them); only ops with calls.
    fn fallback_calls(&self) -> Vec<(Op, u64)> {
        Vec::new()
    }

    // ---- instrumentation (device backends) ----
    /// Dispatches, copies, submissions and host syncs so far.
    fn stats(&self) -> DeviceStats {
        DeviceStats::default()
    }
    /// Starts timing every op on the device; false when the backend cannot (no timestamp queries).
    fn enable_profiling(&self) -> bool {
        false
    }
    /// Device time per op since profiling started.
    fn profile(&self) -> OpTimes {
        Vec::new()
    }

    // ---- memory ----
    /// A zeroed f32 buffer of `len` elements.
    fn alloc(&self, len: usize) -> Result<Self::Buf>;
    /// A zeroed u32 buffer of `len` elements.
    fn alloc_ids(&self, len: usize) -> Result<Self::Ids>;
    /// Elements in a buffer.
    fn buf_len(&self, buf: &Self::Buf) -> usize;
    /// Ids in an id buffer.
    fn ids_len(&self, ids: &Self::Ids) -> usize;
    /// Copies `src` to the start of `dst`.
    fn upload(&self, src: &[f32], dst: &mut Self::Buf) -> Result<()>;
    /// Copies `src` to the start of `dst`.
    fn upload_ids(&self, src: &[u32], dst: &mut Self::Ids) -> Result<()>;
    /// Copies `dst.len()` elements starting at `offset` of `src` to the host, after all queued work.
    fn download(&self, src: &Self::Buf, offset: usize, dst: &mut [f32]) -> Result<()>;
    /// Copies the first `dst.len()` ids of `src` to the host, after all queued work.
    fn download_ids(&self, src: &Self::Ids, dst: &mut [u32]) -> Result<()>;
    /// Makes a weight resident. The CPU keeps the mapped bytes; a GPU uploads them once.
    fn weight(&self, t: &HostTensor) -> Result<Self::Weight>;
    /// The weight as the host fallback reads it: the tensor it was made from (a cheap clone:
    /// the bytes are shared).
    fn host_weight(&self, w: &Self::Weight) -> Result<HostTensor>;

    // ---- ops ----
    /// Embedding gather from a table that stays in host memory (the PLE table): only the rows of
    /// `ids` are read. The default gathers on the host and uploads the rows.
    fn embed_host(&self, a: &EmbedArgs, table: &HostTensor, ids: &[u32], out: &mut Self::Buf) -> Result<()> {
        let rows = crate::reference::embed::gather_rows(a, table, ids)?;
        self.upload(&rows, out)
    }

    // One method per op of the table in `crate::op` (`for_each_op!`, where each one's arguments and
    // doc comment are written), each defaulting to its host fallback:
    //
    //     fn layer_norm(&self, a: &LayerNormArgs, x: &Self::Buf, w: &Self::Weight,
    //                   bias: &Self::Weight, out: &mut Self::Buf) -> Result<()> {
    //         host_fallback::layer_norm(self, a, x, w, bias, out)
    //     }
    crate::op::for_each_op!(fallback_defaults);
}

/// The host fallback of every op: download the inputs (and the output, whose elements outside
/// the op's range must survive), run the reference op on the host, upload the result. Generic
/// over any backend's memory methods, so a backend that implements only those runs the whole
/// model (docs/BRINGUP.md). The [`Backend`] defaults and [`crate::HostFallback`] call these.
pub(crate) mod host_fallback {
    use super::Backend;
    use crate::args::*;
    use crate::error::Result;

    /// A whole buffer on the host.
    fn get<B: Backend + ?Sized>(b: &B, x: &B::Buf) -> Result<Vec<f32>> {
        let mut host = vec![0.0; b.buf_len(x)];
        b.download(x, 0, &mut host)?;
        Ok(host)
    }

    /// A whole id buffer on the host.
    fn get_ids<B: Backend + ?Sized>(b: &B, ids: &B::Ids) -> Result<Vec<u32>> {
        let mut host = vec![0; b.ids_len(ids)];
        b.download_ids(ids, &mut host)?;
        Ok(host)
    }

    /// The reference's view of a buffer of kind `$kind` (see `crate::op::for_each_op!`): the host
    /// copy made by `fetch!`.
    macro_rules! host_arg {
        (Buf, $p:ident) => {
            &$p
        };
        (Ids, $p:ident) => {
            &$p
        };
        (Weight, $p:ident) => {
            &$p
        };
        (OptWeight, $p:ident) => {
            $p.as_ref()
        };
        (BufMut, $p:ident) => {
            &mut $p.0
        };
        (IdsMut, $p:ident) => {
            &mut $p.0
        };
    }

    /// Shadows the device buffer `$p` with its host copy; a written one (`BufMut`, `IdsMut`) with
    /// `(host copy, device buffer)`, which `store!` uploads back (the whole buffer: elements
    /// outside the op's range must survive).
    macro_rules! fetch {
        ($b:ident, Buf, $p:ident) => {
            let $p = get($b, $p)?;
        };
        ($b:ident, Ids, $p:ident) => {
            let $p = get_ids($b, $p)?;
        };
        ($b:ident, Weight, $p:ident) => {
            let $p = $b.host_weight($p)?;
        };
        ($b:ident, OptWeight, $p:ident) => {
            let $p = $p.map(|w| $b.host_weight(w)).transpose()?;
        };
        ($b:ident, BufMut, $p:ident) => {
            let mut $p = (get($b, $p)?, $p);
        };
        ($b:ident, IdsMut, $p:ident) => {
            let mut $p = (get_ids($b, $p)?, $p);
        };
    }

    /// Uploads a written buffer's host copy (see `fetch!`); nothing for an input.
    macro_rules! store {
        ($b:ident, BufMut, $p:ident) => {
            $b.upload(&$p.0, $p.1)?;
        };
        ($b:ident, IdsMut, $p:ident) => {
            $b.upload_ids(&$p.0, $p.1)?;
        };
        ($b:ident, $kind:ident, $p:ident) => {};
    }

    /// One function per op: its inputs and outputs downloaded, the reference run, the outputs
    /// uploaded.
    macro_rules! fallbacks {
        ($($(#[$doc:meta])* $op:ident $name:ident($args:ident; $($p:ident: $kind:ident),*) = $reference:path;)*) => {
            $(
                #[allow(clippy::too_many_arguments)]
                pub(crate) fn $name<B: Backend + ?Sized>(
                    b: &B,
                    a: &$args,
                    $($p: crate::op::buffer_type!(B, $kind)),*
                ) -> Result<()> {
                    $(fetch!(b, $kind, $p);)*
                    $reference(a, $(host_arg!($kind, $p)),*)?;
                    $(store!(b, $kind, $p);)*
                    Ok(())
                }
            )*
        };
    }

    crate::op::for_each_op!(fallbacks);
}
