//! `garnet::Error`: one error type for the whole library, each variant saying what failed and where.

use std::path::PathBuf;

/// Everything that can go wrong in garnet. The library returns these; it never panics on user
/// input and never exits the process.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened, mapped or read.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A weights file is malformed (header, offsets, sizes).
    #[error("{path}: invalid weights file: {why}")]
    Format { path: PathBuf, why: String },
    /// The model configuration is missing, malformed or describes an unsupported model.
    #[error("{path}: bad config: {why}")]
    Config { path: PathBuf, why: String },
    /// A tensor the model needs is not in the checkpoint.
    #[error("tensor {name}: missing from the checkpoint")]
    MissingTensor { name: String },
    /// A tensor has another shape than the config implies.
    #[error("tensor {name}: shape {got:?}, expected {want:?}")]
    Shape { name: String, got: Vec<usize>, want: Vec<usize> },
    /// A tensor has a dtype garnet cannot use there.
    #[error("tensor {name}: dtype {got}, expected {want}")]
    DType { name: String, got: String, want: String },
    /// A token id is not in the vocabulary.
    #[error("token id {id} out of range (vocabulary has {vocab} tokens)")]
    TokenOutOfRange { id: u32, vocab: usize },
    /// The prompt plus generation does not fit the session's context.
    #[error("context overflow: {need} positions needed, the session's context is {ctx}")]
    ContextOverflow { need: usize, ctx: usize },
    /// Tokenizer missing, malformed, or failing on the input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A caller-supplied option or argument is invalid (sampling parameters, empty prompt...).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A backend failed or was asked something it cannot do.
    #[error("backend: {0}")]
    Kernel(#[from] garnet_kernels::KernelError),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
