//! `synth --vocab-from FILE`: a real tokenizer vocabulary in the synthesized GGUF, so that
//! llama.cpp loads the very same file as garnet (benchmarks compare engines on one file).
//!
//! - From a GGUF (e.g. Gemma 3's): every `tokenizer.*` key, copied value for value.
//! - From a `tokenizer.json`: llama.cpp's `gemma4` tokenizer model as its converter writes it
//!   (`conversion/gemma.py`, `Gemma4Model.set_vocab`): tokens by id, BPE merges, token types
//!   (control for special added tokens, user-defined for the other added tokens and the chat
//!   markers the parser must see, byte for `<0xHH>`), no space prefix, BOS added.
//!
//! Either way the vocabulary has exactly the model's `vocab` rows: a tokenizer.json's missing ids
//! become `[PADi]` (unused) as in the converter, ids past the model's vocabulary are left out; a
//! GGUF's token count must match.

use super::gguf_write::Value;
use garnet::gguf::{GgufFile, MetaArray, MetaValue};
use garnet::Error;
use serde_json::Value as Json;
use std::path::Path;

/// llama.cpp's `TokenType`.
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;
const BYTE: i32 = 6;

/// Tokens the `gemma4` converter marks user-defined so that they are rendered in the output.
const VISIBLE: [&str; 7] =
    ["<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", "<|tool_response>", "<tool_response|>", "<|\"|>"];

/// The vocabulary of `path` as GGUF metadata, and its token count.
pub fn metadata(path: &Path, vocab: Option<usize>) -> garnet::Result<(Vec<(String, Value)>, usize)> {
    let is_gguf = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    if is_gguf {
        from_gguf(path, vocab)
    } else {
        let vocab = vocab.unwrap_or(super::arch::VOCAB);
        Ok((from_tokenizer_json(path, vocab)?, vocab))
    }
}

fn bad(path: &Path, why: String) -> Error {
    Error::Invalid(format!("--vocab-from {}: {why}", path.display()))
}

fn from_gguf(path: &Path, vocab: Option<usize>) -> garnet::Result<(Vec<(String, Value)>, usize)> {
    let file = GgufFile::open(path)?;
    let n = file.get("tokenizer.ggml.tokens").and_then(MetaValue::as_strings).map(<[_]>::len);
    let Some(n) = n else { return Err(bad(path, "has no tokenizer.ggml.tokens".into())) };
    if vocab.is_some_and(|v| v != n) {
        return Err(bad(path, format!("has {n} tokens, --vocab says {}", vocab.unwrap_or(0))));
    }
    let meta = file
        .metadata()
        .iter()
        .filter(|(k, _)| k.starts_with("tokenizer."))
        .map(|(k, v)| (k.clone(), Value::Meta(v.clone())))
        .collect();
    Ok((meta, n))
}

fn from_tokenizer_json(path: &Path, vocab: usize) -> garnet::Result<Vec<(String, Value)>> {
    let text = garnet::files::read_text_capped(path, garnet::files::MAX_TOKENIZER_BYTES, "tokenizer")?;
    let json: Json = serde_json::from_str(&text).map_err(|e| bad(path, format!("not JSON: {e}")))?;
    let model = &json["model"];
    if model["type"].as_str() != Some("BPE") {
        return Err(bad(path, "not a BPE tokenizer.json (model.type)".into()));
    }
    let mut tokens: Vec<Option<String>> = vec![None; vocab];
    let mut types = vec![UNUSED; vocab];
    let mut put = |id: Option<u64>, text: &str, ty: i32| {
        if let Some(i) = id.and_then(|i| usize::try_from(i).ok()).filter(|&i| i < vocab) {
            tokens[i] = Some(text.to_string());
            types[i] = if VISIBLE.contains(&text) { USER_DEFINED } else { ty };
        }
    };
    let Some(words) = model["vocab"].as_object() else { return Err(bad(path, "model.vocab is not an object".into())) };
    for (text, id) in words {
        put(id.as_u64(), text, if is_byte_token(text) { BYTE } else { NORMAL });
    }
    for t in json["added_tokens"].as_array().map_or(&[][..], Vec::as_slice) {
        let text = t["content"].as_str().unwrap_or_default();
        put(t["id"].as_u64(), text, if t["special"].as_bool() == Some(true) { CONTROL } else { USER_DEFINED });
    }
    let merges: Vec<String> = match model["merges"].as_array() {
        Some(m) => m.iter().filter_map(merge).collect(),
        None => return Err(bad(path, "model.merges is missing".into())),
    };
    let id_of = |text: &str| tokens.iter().position(|t| t.as_deref() == Some(text));
    let tokens: Vec<String> =
        tokens.iter().enumerate().map(|(i, t)| t.clone().unwrap_or_else(|| format!("[PAD{i}]"))).collect();
    let arr = |a: MetaArray| Value::Meta(MetaValue::Array(a));
    let mut meta = vec![
        ("tokenizer.ggml.model".to_string(), Value::Str("gemma4".into())),
        ("tokenizer.ggml.tokens".into(), arr(MetaArray::String(tokens))),
        ("tokenizer.ggml.scores".into(), arr(MetaArray::F32(vec![0.0; vocab]))),
        ("tokenizer.ggml.token_type".into(), arr(MetaArray::I32(types))),
        ("tokenizer.ggml.merges".into(), arr(MetaArray::String(merges))),
        ("tokenizer.ggml.add_space_prefix".into(), Value::Meta(MetaValue::Bool(false))),
        ("tokenizer.ggml.add_bos_token".into(), Value::Meta(MetaValue::Bool(true))),
    ];
    for (key, text) in [("bos", "<bos>"), ("eos", "<eos>"), ("unknown", "<unk>"), ("padding", "<pad>")] {
        if let Some(id) = id_of(text) {
            meta.push((format!("tokenizer.ggml.{key}_token_id"), Value::U32(id as u32)));
        }
    }
    Ok(meta)
}

/// `<0xHH>`: a byte-fallback token.
fn is_byte_token(t: &str) -> bool {
    t.len() == 6 && t.starts_with("<0x") && t.ends_with('>') && t[3..5].chars().all(|c| c.is_ascii_hexdigit())
}

/// A merge as GGUF stores it, `"left right"`, from either tokenizer.json spelling (a string or a
/// pair).
fn merge(m: &Json) -> Option<String> {
    match m {
        Json::String(s) => Some(s.clone()),
        Json::Array(pair) => match pair.as_slice() {
            [Json::String(a), Json::String(b)] => Some(format!("{a} {b}")),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_tokens_and_merges() {
        assert!(is_byte_token("<0x0A>") && !is_byte_token("<0xZZ>") && !is_byte_token("<bos>"));
        assert_eq!(merge(&serde_json::json!(["▁a", "b"])).as_deref(), Some("▁a b"));
        assert_eq!(merge(&serde_json::json!("▁a b")).as_deref(), Some("▁a b"));
        assert_eq!(merge(&serde_json::json!([1, 2])), None);
    }

    #[test]
    fn tokenizer_json_fills_the_model_vocabulary() {
        let dir = std::env::temp_dir().join(format!("garnet-vocab-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokenizer.json");
        let json = serde_json::json!({
            "model": {"type": "BPE", "vocab": {"<pad>": 0, "<eos>": 1, "<bos>": 2, "▁a": 3, "<0x41>": 4, "b": 6},
                      "merges": [["▁a", "b"]]},
            "added_tokens": [{"id": 5, "content": "<|channel>", "special": true},
                             {"id": 9, "content": "<image>", "special": true}]
        });
        std::fs::write(&path, json.to_string()).unwrap();
        let meta = from_tokenizer_json(&path, 8).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let get = |k: &str| meta.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let Some(Value::Meta(MetaValue::Array(MetaArray::String(tokens)))) = get("tokenizer.ggml.tokens") else {
            panic!("no tokens")
        };
        assert_eq!(tokens, ["<pad>", "<eos>", "<bos>", "▁a", "<0x41>", "<|channel>", "b", "[PAD7]"]);
        let Some(Value::Meta(MetaValue::Array(MetaArray::I32(types)))) = get("tokenizer.ggml.token_type") else {
            panic!("no types")
        };
        assert_eq!(types, [NORMAL, NORMAL, NORMAL, NORMAL, BYTE, USER_DEFINED, NORMAL, UNUSED]);
        assert_eq!(get("tokenizer.ggml.bos_token_id"), Some(Value::U32(2)));
        assert_eq!(get("tokenizer.ggml.unknown_token_id"), None);
    }
}
