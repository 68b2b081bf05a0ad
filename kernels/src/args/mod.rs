//! Typed arguments of every op, one struct per op, in one file per op family (named as the op
//! files of every backend). Shapes are in elements; all activation buffers are f32, row-major,
//! with the last dimension contiguous.
//!
//! Each struct checks itself (`check`: shapes, lengths, ranges, with the op's error messages),
//! so every backend runs the same checks before touching a buffer and no backend needs another
//! one's code. The structs hold only plain numbers: the WGSL and CUDA kernels mirror them.

mod attention;
mod elementwise;
mod embed;
mod matmul;
mod moe;
mod norm;
mod rope;
mod sample;

// Whole families: a new op's arguments need no line here.
pub use attention::*;
pub use elementwise::*;
pub use embed::*;
pub use matmul::*;
pub use moe::*;
pub use norm::*;
pub use rope::*;
pub use sample::*;
