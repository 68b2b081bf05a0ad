//! The tokenizer a GGUF file carries in its metadata (`tokenizer.ggml.*`), tokenized by
//! [`crate::spm`]: llama.cpp's model "llama" (SentencePiece: tokens ranked by `scores`) or
//! "gemma4" (the same SentencePiece-style BPE over raw UTF-8 with `▁` and byte tokens, where only
//! the pairs in `tokenizer.ggml.merges` merge, earliest first: HF's BPE).

use super::GgufFile;
use crate::error::{Error, Result};
use crate::spm::SpmVocab;
use crate::tokenizer::Tokenizer;

/// The file's vocabulary as a [`Tokenizer`], or `None` if it has no tokens.
pub fn tokenizer(file: &GgufFile) -> Result<Option<Tokenizer>> {
    let Some(tokens) = file.get("tokenizer.ggml.tokens").and_then(|v| v.as_strings()) else { return Ok(None) };
    let model = file.get("tokenizer.ggml.model").and_then(|v| v.as_str()).unwrap_or("llama");
    if model != "llama" && model != "gemma4" {
        return Err(Error::Tokenizer(format!("GGUF tokenizer model {model:?} is not supported (llama, gemma4)")));
    }
    let n = tokens.len();
    let scores =
        file.get("tokenizer.ggml.scores").and_then(|v| v.as_f32s()).map_or_else(|| vec![0.0; n], <[_]>::to_vec);
    let types =
        file.get("tokenizer.ggml.token_type").and_then(|v| v.as_i32s()).map_or_else(|| vec![1; n], <[_]>::to_vec);
    let space_prefix = file.get("tokenizer.ggml.add_space_prefix").and_then(|v| v.as_bool()).unwrap_or(false);
    let mut vocab = SpmVocab::new(tokens.to_vec(), scores, types, space_prefix)?;
    if let (true, Some(merges)) = (model == "gemma4", file.get("tokenizer.ggml.merges").and_then(|v| v.as_strings())) {
        vocab = vocab.with_merges(merges);
    }
    let id = |key: &str| token_id(file, key).map_err(Error::Tokenizer);
    let (bos, eos) = (id("tokenizer.ggml.bos_token_id")?, id("tokenizer.ggml.eos_token_id")?);
    Ok(Some(Tokenizer::from_spm(vocab, bos, eos)?))
}

/// Metadata `key` as a token id: an integer that fits in u32 (larger ones are refused, not
/// truncated), or `None` if absent.
pub(super) fn token_id(file: &GgufFile, key: &str) -> std::result::Result<Option<u32>, String> {
    match file.get(key) {
        None => Ok(None),
        Some(v) => match v.as_u64().map(u32::try_from) {
            Some(Ok(id)) => Ok(Some(id)),
            _ => Err(format!("{key} must be a token id (an integer below 2^32), got {v:?}")),
        },
    }
}
