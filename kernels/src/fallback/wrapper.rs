//! [`HostFallback`]: a backend whose ops run natively where it supports them and is not forced
//! otherwise, and through the counted host fallback everywhere else.

use crate::args::*;
use crate::backend::host_fallback as ops;
use crate::backend::{Backend, DeviceStats, OpTimes};
use crate::error::Result;
use crate::op::{Op, OpSet};
use crate::tensor::HostTensor;
use std::sync::atomic::{AtomicU64, Ordering};

/// Backend `B` with the host fallback: see the [module](super).
pub struct HostFallback<B> {
    inner: B,
    forced: OpSet,
    calls: [AtomicU64; Op::ALL.len()],
}

impl<B: Backend> HostFallback<B> {
    /// `inner`, with the ops of `forced` always through the fallback.
    pub fn new(inner: B, forced: OpSet) -> Self {
        HostFallback { inner, forced, calls: std::array::from_fn(|_| AtomicU64::new(0)) }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Whether `op` runs on the backend's own kernel; counts a fallback call when not.
    fn native(&self, op: Op) -> bool {
        if self.supports(op) {
            return true;
        }
        self.calls[op as usize].fetch_add(1, Ordering::Relaxed);
        false
    }
}

/// The op methods of [`HostFallback`]: the backend's own kernel when [`HostFallback::native`],
/// else the host fallback.
macro_rules! route {
    ($($(#[$doc:meta])* $op:ident $name:ident($args:ident; $($p:ident: $kind:ident),*) = $reference:path;)*) => {
        $(
            fn $name(&self, a: &$args, $($p: crate::op::buffer_type!(Self, $kind)),*) -> Result<()> {
                match self.native(Op::$op) {
                    true => self.inner.$name(a, $($p),*),
                    false => ops::$name(&self.inner, a, $($p),*),
                }
            }
        )*
    };
}

impl<B: Backend> Backend for HostFallback<B> {
    type Buf = B::Buf;
    type Ids = B::Ids;
    type Weight = B::Weight;

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn supports(&self, op: Op) -> bool {
        !self.forced.contains(op) && self.inner.supports(op)
    }

    fn fallback_calls(&self) -> Vec<(Op, u64)> {
        let counted = Op::ALL.into_iter().map(|op| (op, self.calls[op as usize].load(Ordering::Relaxed)));
        counted.filter(|&(_, n)| n > 0).collect()
    }

    fn stats(&self) -> DeviceStats {
        self.inner.stats()
    }

    fn enable_profiling(&self) -> bool {
        self.inner.enable_profiling()
    }

    fn profile(&self) -> OpTimes {
        self.inner.profile()
    }

    fn alloc(&self, len: usize) -> Result<B::Buf> {
        self.inner.alloc(len)
    }

    fn alloc_ids(&self, len: usize) -> Result<B::Ids> {
        self.inner.alloc_ids(len)
    }

    fn buf_len(&self, buf: &B::Buf) -> usize {
        self.inner.buf_len(buf)
    }

    fn ids_len(&self, ids: &B::Ids) -> usize {
        self.inner.ids_len(ids)
    }

    fn upload(&self, src: &[f32], dst: &mut B::Buf) -> Result<()> {
        self.inner.upload(src, dst)
    }

    fn upload_ids(&self, src: &[u32], dst: &mut B::Ids) -> Result<()> {
        self.inner.upload_ids(src, dst)
    }

    fn download(&self, src: &B::Buf, offset: usize, dst: &mut [f32]) -> Result<()> {
        self.inner.download(src, offset, dst)
    }

    fn download_ids(&self, src: &B::Ids, dst: &mut [u32]) -> Result<()> {
        self.inner.download_ids(src, dst)
    }

    fn weight(&self, t: &HostTensor) -> Result<B::Weight> {
        self.inner.weight(t)
    }

    fn host_weight(&self, w: &B::Weight) -> Result<HostTensor> {
        self.inner.host_weight(w)
    }

    fn embed_host(&self, a: &EmbedArgs, table: &HostTensor, ids: &[u32], out: &mut B::Buf) -> Result<()> {
        self.inner.embed_host(a, table, ids, out)
    }

    // Every op of the table in `crate::op`, e.g.
    //
    //     fn rope(&self, a: &RopeArgs, x: &mut B::Buf) -> Result<()> {
    //         match self.native(Op::Rope) {
    //             true => self.inner.rope(a, x),
    //             false => ops::rope(&self.inner, a, x),
    //         }
    //     }
    crate::op::for_each_op!(route);
}
