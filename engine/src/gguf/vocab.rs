//! The tokenizer a GGUF file carries in its metadata (`tokenizer.ggml.*`).

use super::GgufFile;
use crate::error::Result;
use crate::tokenizer::Tokenizer;

/// The file's SentencePiece vocabulary as a [`Tokenizer`], or `None` if it has none.
pub fn tokenizer(_file: &GgufFile) -> Result<Option<Tokenizer>> {
    // Wired to the SentencePiece backend (engine/src/spm.rs) as soon as it lands.
    Ok(None)
}
