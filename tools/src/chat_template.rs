//! `garnet chat-template`: renders a chat request with a checkpoint's chat template and prints the
//! prompt byte for byte (no newline added), as HF's `apply_chat_template(..., tokenize=False)`.

use garnet::config::{Arch, ModelConfig};
use garnet::gguf::GgufFile;
use garnet::template::{special_tokens, ChatTemplate, TemplateSource};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint directory, .safetensors or .gguf file: its template (chat_template.jinja,
    /// tokenizer_config.json, GGUF metadata; else the family's built-in one) and its <bos>/<eos>.
    #[arg(long)]
    model: PathBuf,
    /// A Jinja template file to use instead of the checkpoint's.
    #[arg(long)]
    template: Option<PathBuf>,
    /// The request, a JSON file: {"messages": [...], "tools": [...], "add_generation_prompt": true, ...}.
    #[arg(long)]
    request: PathBuf,
}

pub fn main(a: Args) -> garnet::Result<()> {
    let request = std::fs::read_to_string(&a.request)
        .map_err(|source| garnet::Error::Io { path: a.request.clone(), err: source })?;
    let template = match &a.template {
        Some(file) => ChatTemplate::from_file(file)?,
        None => checkpoint_template(&a.model)?,
    };
    let (bos, eos) = special_tokens(&a.model);
    let prompt = template.render_json(&request, &bos, &eos)?;
    crate::out(format_args!("{prompt}"))
}

/// The checkpoint's own template, or the built-in one of its family (read from its config).
fn checkpoint_template(model: &Path) -> garnet::Result<ChatTemplate> {
    let is_gguf = model.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    if !model.exists() {
        let source = std::io::Error::from(std::io::ErrorKind::NotFound);
        return Err(garnet::Error::Io { path: model.into(), err: source });
    }
    if is_gguf {
        let file = GgufFile::open(model)?;
        let arch = if file.architecture() == Some("gemma3") { Arch::Gemma3 } else { Arch::Gemma4 };
        return ChatTemplate::for_checkpoint(model, arch, file.chat_template());
    }
    // The family matters only for the built-in template: a checkpoint with its own template
    // renders without a config.json.
    let template = ChatTemplate::for_checkpoint(model, Arch::Gemma4, None)?;
    if let TemplateSource::BuiltIn(_) = template.source() {
        return Ok(ChatTemplate::builtin(ModelConfig::load(model)?.arch));
    }
    Ok(template)
}
