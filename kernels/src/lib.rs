//! garnet's kernels: the [`Backend`] trait (one method per op, typed argument structs) and the
//! CPU reference backend ([`reference::RefCpu`]), the oracle every other backend is tested against.
//!
//! Layering (see docs/ARCHITECTURE.md): the engine owns *what* to compute (the Gemma forward pass);
//! a backend owns *where and how* (buffers on a device, resident weights, one kernel per op).
//! All activations are f32; weights keep their storage dtype ([`DType`]) and are widened inside
//! the kernels, so a backend never needs a host copy of the model.

#![warn(missing_docs)]

pub mod args;
pub mod backend;
pub mod cpu;
pub mod cuda;
pub mod error;
pub mod fallback;
mod host;
pub mod op;
pub mod open;
pub mod opstest;
pub mod quant;
pub mod reference;
pub mod tensor;
#[cfg(feature = "wgpu")]
pub mod wgpu;

pub use args::*;
pub use backend::{Backend, DeviceStats, OpTimes};
pub use error::{KernelError, Result};
pub use fallback::HostFallback;
pub use op::{Op, OpSet};
pub use open::{open, BackendKind, OpenOptions, Precision, WithBackend};
pub use tensor::{DType, HostTensor, Storage};
