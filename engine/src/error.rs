//! `garnet::Error`: one error type for the whole library, each variant saying what failed and where.

use std::path::PathBuf;

/// Everything that can go wrong in garnet. The library returns these; it never panics on user
/// input and never exits the process.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened, mapped or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A weights file is malformed (header, offsets, sizes).
    #[error("{path}: invalid weights file: {why}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The model configuration is missing, malformed or describes an unsupported model.
    #[error("{path}: bad config: {why}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A tensor the model needs is not in the checkpoint.
    #[error("tensor {name}: missing from the checkpoint")]
    MissingTensor {
        /// The tensor the model needs.
        name: String,
    },
    /// A tensor has another shape than the config implies.
    #[error("tensor {name}: shape {got:?}, expected {want:?}")]
    Shape {
        /// The tensor.
        name: String,
        /// Its shape in the file.
        got: Vec<usize>,
        /// The shape the config implies.
        want: Vec<usize>,
    },
    /// A tensor has a dtype garnet cannot use there.
    #[error("tensor {name}: dtype {got}, expected {want}")]
    DType {
        /// The tensor.
        name: String,
        /// Its dtype in the file.
        got: String,
        /// The dtypes garnet accepts there.
        want: String,
    },
    /// A token id is not in the vocabulary.
    #[error("token id {id} out of range (vocabulary has {vocab} tokens)")]
    TokenOutOfRange {
        /// The offending id.
        id: u32,
        /// Tokens in the vocabulary.
        vocab: usize,
    },
    /// The prompt plus generation does not fit the session's context.
    #[error("context overflow: {need} positions needed, the session's context is {ctx}")]
    ContextOverflow {
        /// Positions the request needs.
        need: usize,
        /// Positions the session holds.
        ctx: usize,
    },
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
