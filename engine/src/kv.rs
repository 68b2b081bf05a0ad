//! The KV cache of a session: one key and one value buffer per layer that computes its own K/V.
//!
//! Layout per layer: `[capacity, n_kv_heads * head_dim]` f32 on the backend, position `p` in slot
//! `p % capacity`. Sliding layers keep a ring of `sliding_window` slots; full layers keep one slot
//! per position of the session's context. KV-shared layers own no cache: they read their source
//! layer's (see `config::LayerConfig::kv_source`).

use crate::config::{LayerKind, ModelConfig};
use crate::error::Result;
use garnet_kernels::Backend;

/// Keys and values of one layer.
pub struct LayerCache<B: Backend> {
    /// Keys `[capacity, kv_dim]`.
    pub k: B::Buf,
    /// Values `[capacity, kv_dim]`.
    pub v: B::Buf,
    /// Slots in the ring (`sliding_window`, or the context on full layers).
    pub capacity: usize,
}

/// All layers' caches for one session.
pub struct KvCache<B: Backend> {
    /// `None` for KV-shared layers.
    pub layers: Vec<Option<LayerCache<B>>>,
}

impl<B: Backend> KvCache<B> {
    /// Allocates the cache for `context` positions.
    pub fn new(b: &B, cfg: &ModelConfig, context: usize) -> Result<Self> {
        let mut layers = Vec::with_capacity(cfg.n_layers());
        for l in &cfg.layers {
            layers.push(match l.kv_source {
                Some(_) => None,
                None => {
                    let capacity = match l.kind {
                        LayerKind::Sliding => l.window.unwrap_or(context).min(context),
                        LayerKind::Full => context,
                    };
                    let len = capacity * l.n_kv_heads * l.head_dim;
                    Some(LayerCache { k: b.alloc(len)?, v: b.alloc(len)?, capacity })
                }
            });
        }
        Ok(KvCache { layers })
    }
}

/// Bytes of f32 cache a session of `context` positions allocates, or `None` if that overflows.
pub fn cache_bytes(cfg: &ModelConfig, context: usize) -> Option<usize> {
    cfg.layers.iter().filter(|l| l.kv_source.is_none()).try_fold(0usize, |sum, l| {
        let cap = if l.kind == LayerKind::Sliding { l.window.unwrap_or(context).min(context) } else { context };
        let bytes = [cap, l.n_kv_heads, l.head_dim, 4].iter().try_fold(2usize, |a, &x| a.checked_mul(x))?;
        sum.checked_add(bytes)
    })
}

/// Whether this process can allocate `bytes` more of host memory: a session's buffers are checked
/// before they are allocated, since a failed allocation aborts the process. The probe reserves
/// and frees address space only (pages are committed on first touch), so it costs nothing.
pub fn host_can_allocate(bytes: usize) -> bool {
    Vec::<u8>::new().try_reserve_exact(bytes).is_ok()
}
