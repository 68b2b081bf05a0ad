//! garnet: a Gemma 4 inference engine.
//!
//! ```no_run
//! use garnet::{Engine, LoadOptions, SessionOptions, Sampling};
//! let engine = Engine::load("path/to/checkpoint", LoadOptions::default())?;
//! let mut session = engine.session(SessionOptions::default())?;
//! let mut generation = session.generate("The capital of France is", &Sampling::greedy())?;
//! for token in generation.by_ref() {
//!     print!("{}", token?.text);
//! }
//! println!("\n{:?}, {:?}", generation.finish_reason(), generation.usage());
//! # Ok::<(), garnet::Error>(())
//! ```
//!
//! Modules, in the order a token flows through them (docs/ARCHITECTURE.md):
//! [`config`] → [`store`] (memory-mapped safetensors) → [`weights`] (typed, validated tensors) →
//! [`model`] (the forward pass over a [`garnet_kernels::Backend`]) with its [`kv`] cache →
//! [`sampling`] → [`tokenizer`] / [`chat`]; [`api`] ties them into `Engine` and `Session`.

#![warn(missing_docs)]

pub mod api;
pub mod chat;
pub mod config;
pub mod constrain;
pub mod error;
pub mod files;
pub mod footprint;
pub mod gguf;
pub mod kv;
pub mod logits;
pub mod model;
pub mod reply;
pub mod sampling;
pub mod spm;
pub mod store;
pub mod template;
pub mod tokenizer;
pub mod weights;

#[cfg(feature = "async")]
pub use api::GenerationStream;
pub use api::{
    BackendKind, CancelHandle, DType, DeviceStats, Engine, FinishReason, GenerateOptions, Generation, Isa, KernelError,
    LoadOptions, ModelInfo, Op, OpSet, OpTimes, Precision, Progress, Session, SessionOptions, Token, Usage,
};
pub use chat::{Message, Part, Role, ToolCall, ToolResponse};
pub use constrain::Constraint;
pub use error::{Error, Result};
pub use logits::LogitsProcessor;
pub use reply::ReplyParser;
pub use sampling::Sampling;
pub use template::ChatTemplate;
