//! `garnet::Error`: one error type for the whole library, each variant saying what failed and where.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in garnet. The library returns these; it never panics on user
/// input and never exits the process. Every string is escaped when displayed ([`escape`]): names
/// and paths come from files, and an error stays one line that cannot drive the terminal.
///
/// The displayed message is complete: it includes the underlying cause (the OS error, the
/// backend's error), and [`std::error::Error::source`] returns `None`, so a printer that walks
/// the chain of causes prints each cause once. New variants may be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, mapped or read.
    #[error("{}: {}", escape_path(path), escape(&err.to_string()))]
    Io {
        /// The file, as the caller named it.
        path: PathBuf,
        /// The OS error (part of the message, not a separate cause).
        err: std::io::Error,
    },
    /// A weights file is malformed (header, offsets, sizes).
    #[error("{}: invalid weights file: {}", escape_path(path), escape(why))]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The model configuration is missing, malformed or describes an unsupported model.
    #[error("{}: bad config: {}", escape_path(path), escape(why))]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A tensor the model needs is not in the checkpoint.
    #[error("tensor {}: missing from the checkpoint", escape(name))]
    MissingTensor {
        /// The tensor the model needs.
        name: String,
    },
    /// A tensor has another shape than the config implies.
    #[error("tensor {}: shape {got:?}, expected {want:?}", escape(name))]
    Shape {
        /// The tensor.
        name: String,
        /// Its shape in the file.
        got: Vec<usize>,
        /// The shape the config implies.
        want: Vec<usize>,
    },
    /// A tensor has a dtype garnet cannot use there.
    #[error("tensor {}: dtype {}, expected {want}", escape(name), escape(got))]
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
    #[error("tokenizer: {}", escape(.0))]
    Tokenizer(String),
    /// A caller-supplied option or argument is invalid (sampling parameters, empty prompt...).
    #[error("invalid argument: {}", escape(.0))]
    Invalid(String),
    /// The model's output logits hold a NaN or an infinity (broken weights or a backend fault):
    /// nothing is sampled or scored from them.
    #[error("the model's logits hold NaN or infinity ({0}): the weights or the backend are broken")]
    NonFinite(String),
    /// A backend failed or was asked something it cannot do.
    #[error("backend: {}", escape(&.0.to_string()))]
    Kernel(garnet_kernels::KernelError),
    /// A JSON schema, regex or grammar is invalid, or generation left what it allows.
    #[error("grammar: {}", escape(.0))]
    Grammar(String),
    /// A chat template failed to load or render, or a chat request or model reply is malformed.
    #[error("chat template: {}", escape(.0))]
    Template(String),
}

impl From<garnet_kernels::KernelError> for Error {
    /// Wraps a backend error as [`Error::Kernel`].
    fn from(e: garnet_kernels::KernelError) -> Self {
        Error::Kernel(e)
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `s` with control characters and bidirectional overrides escaped (`\n`, `\u{1b}`, ...), so a
/// string from a file cannot move the cursor, recolour the terminal or break a one-line error.
pub fn escape(s: &str) -> Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`escape`] for a path (lossy on non-UTF-8 names).
pub fn escape_path(p: &Path) -> String {
    escape(&p.to_string_lossy()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_characters_only() {
        assert_eq!(escape("blk.0 \"q\" é ▁"), "blk.0 \"q\" é ▁");
        assert_eq!(escape("a\u{1b}[31mb\nc\u{202e}"), "a\\u{1b}[31mb\\nc\\u{202e}");
    }

    #[test]
    fn causes_print_once() {
        use std::error::Error as _;
        let e = Error::Io { path: "x".into(), err: std::io::ErrorKind::NotFound.into() };
        assert!(e.to_string().contains("not found"), "{e}");
        assert!(e.source().is_none());
        let k = Error::from(garnet_kernels::KernelError::Invalid { what: "no such op".into() });
        assert!(k.source().is_none(), "{k}");
    }
}
