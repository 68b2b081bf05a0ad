//! The host fallback, as ggml's scheduler falls back to the CPU: every [`Backend`] op has a
//! default that downloads its inputs, runs the reference op and uploads the result
//! (`crate::backend::host_fallback`), and
//! [`HostFallback`] wraps a backend to route each call either to the backend's own kernel or
//! to that fallback:
//!
//! - through the fallback when the backend does not [`Backend::supports`] the op, or when the op
//!   is in the forced set (`--host-fallback all|OP[,OP...]`: bring-up and tests);
//! - every fallback call is counted per op ([`Backend::fallback_calls`]), and shown by
//!   `--profile`, `ops-test --perf` and `doctor`.
//!
//! [`open`](crate::open) wraps every backend it opens, so the engine, the ops-test and doctor
//! all run ops this way. The fallback is slow on a GPU (each call is two transfers and a host
//! sync) and exact: it is the reference itself.

mod memory;
mod wrapper;

pub use memory::MemoryOnly;
pub use wrapper::HostFallback;
