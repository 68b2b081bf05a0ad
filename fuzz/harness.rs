//! What each fuzz target does with an input: parse it as garnet would, then use what the parser
//! accepted the way loading does. `engine/tests/fuzz_corpus.rs` replays the committed corpus and
//! crash inputs through these same functions in every `cargo test`. A target fails only by
//! panicking, aborting or hanging; errors are the expected outcome for most inputs.
#![allow(dead_code)] // each target uses one of these

use garnet::config::ModelConfig;
use garnet::gguf::GgufFile;
use garnet::store::TensorStore;
use garnet::tokenizer::Tokenizer;
use std::sync::Arc;

/// Text with spaces, special tokens, a multi-byte character and a byte-fallback candidate.
const SAMPLE: &str = "Hello <bos> wörld <start_of_turn>\u{1F600}\n";

/// A GGUF file: header, metadata, tensor table; then its config, tokenizer and weights.
pub fn gguf(data: &[u8]) {
    let Ok(file) = GgufFile::from_storage("fuzz.gguf", Arc::new(data.to_vec())) else { return };
    if let Ok(Some(tok)) = garnet::gguf::tokenizer(&file) {
        encode_decode(&tok);
    }
    let Ok(cfg) = garnet::gguf::model_config(&file) else { return };
    use_config(&cfg);
    if let Ok(store) = file.into_store() {
        let _ = garnet::weights::load(&store, &cfg);
    }
}

/// A safetensors file: header validation, then every tensor read.
pub fn safetensors(data: &[u8]) {
    let Ok(store) = TensorStore::from_storage("fuzz.safetensors", Arc::new(data.to_vec())) else { return };
    for name in store.names() {
        if let Ok(t) = store.get_any(name) {
            let _ = t.to_f32_vec();
        }
    }
}

/// A config.json: the resolved configuration and the sizes derived from it.
pub fn config(data: &[u8]) {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(cfg) = ModelConfig::from_json(&json) {
        use_config(&cfg);
    }
}

/// A tokenizer.json: loading, then encoding and decoding a sample.
pub fn tokenizer(data: &[u8]) {
    if let Ok(tok) = Tokenizer::from_json(data) {
        encode_decode(&tok);
    }
}

/// Prints every part of a request through the Python-compatible printers (`str()`, `tojson`).
const PRINT_ALL: &str = "{{ messages | tojson(indent=1, sort_keys=true) }}{{ tools | tojson }}\
    {% for m in messages %}{{ m }}{% for k, v in m | dictsort %}{{ k }}{{ v | tojson }}{% endfor %}{% endfor %}";

/// A chat request (JSON): rendered with the built-in Gemma 4 template and a template printing
/// all of it; the same bytes as a model's reply through the reply parser, whole and in pieces.
pub fn chat_request(data: &[u8]) {
    use garnet::template::{ChatTemplate, TemplateSource};
    let text = String::from_utf8_lossy(data);
    let builtin = ChatTemplate::builtin(garnet::config::Arch::Gemma4);
    let _ = builtin.render_json(&text, "<bos>", "<eos>");
    let _ = ChatTemplate::from_source(TemplateSource::Gguf, PRINT_ALL).render_json(&text, "<bos>", "<eos>");
    let _ = garnet::reply::parse_reply(&text);
    let mut parser = garnet::reply::ReplyParser::new();
    for piece in text.split_inclusive(['>', '|']) {
        let _ = parser.push(piece);
    }
    let _ = parser.finish();
}

fn use_config(cfg: &ModelConfig) {
    let _ = (cfg.variant(), cfg.layer_pattern());
    let _ = garnet::kv::cache_bytes(cfg, cfg.max_position_embeddings.min(4096));
}

fn encode_decode(tok: &Tokenizer) {
    if let Ok(ids) = tok.encode(SAMPLE, false) {
        let _ = tok.decode(&ids);
        let mut stream = tok.stream();
        for &id in &ids {
            let _ = stream.push(id);
        }
        let _ = stream.finish();
    }
}
