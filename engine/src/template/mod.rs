//! Chat templates: the checkpoint's own Jinja template rendered as HF transformers renders it
//! (`apply_chat_template`), with a built-in per-family template when the checkpoint has none.
//!
//! Where the template comes from ([`ChatTemplate::for_checkpoint`]), first found wins:
//! `chat_template.jinja` next to the weights, `tokenizer_config.json`'s `chat_template` (a
//! string, or a list of `{name, template}`: `tool_use` when the request has tools, else
//! `default`), the GGUF key `tokenizer.chat_template`, then [`builtin`].
//!
//! The request is HF's: `{"messages": [...], "tools": [...], "add_generation_prompt": bool, ...}`;
//! every other key (`enable_thinking`, ...) reaches the template as a variable, as
//! `apply_chat_template`'s keyword arguments do. The rendered prompt starts with `bos_token` when
//! the template writes it (all Gemma templates and the built-ins do): tokenize it without adding
//! another `<bos>`.

pub mod builtin;
pub mod python;

use crate::config::Arch;
use crate::error::{Error, Result};
use indexmap::IndexMap;
use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, ErrorKind, Value};
use std::path::{Path, PathBuf};

/// Instructions (roughly bytecode steps) one render may run: long conversations render in far
/// fewer, and a template that loops forever fails instead of hanging.
const FUEL: u64 = 200_000_000;

/// Where a [`ChatTemplate`] was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateSource {
    /// A Jinja file: `chat_template.jinja` next to the weights, or one the caller named.
    File(PathBuf),
    /// The `chat_template` key of this `tokenizer_config.json`.
    TokenizerConfig(PathBuf),
    /// The GGUF metadata key `tokenizer.chat_template`.
    Gguf,
    /// The family's built-in template ([`builtin`]).
    BuiltIn(Arch),
}

/// A chat template, ready to render requests.
#[derive(Clone, Debug)]
pub struct ChatTemplate {
    source: TemplateSource,
    /// `(name, template)`; a single template is named `default`.
    templates: Vec<(String, String)>,
}

impl ChatTemplate {
    /// The template of the checkpoint at `path` (a directory, a weights file in one, or a GGUF
    /// file whose metadata template the caller read into `gguf_template`), else the built-in one
    /// of `arch`. A GGUF file's directory is not searched: files there may belong to other models.
    pub fn for_checkpoint(path: &Path, arch: Arch, gguf_template: Option<&str>) -> Result<Self> {
        let is_gguf = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
        let dir = if path.is_dir() { Some(path) } else { path.parent().filter(|_| !is_gguf) };
        if let Some(dir) = dir {
            let jinja = dir.join("chat_template.jinja");
            if jinja.is_file() {
                return Self::from_file(&jinja);
            }
            let config = dir.join("tokenizer_config.json");
            if config.is_file() {
                if let Some(t) = Self::from_tokenizer_config(&config)? {
                    return Ok(t);
                }
            }
        }
        if let Some(text) = gguf_template {
            return Ok(Self::from_source(TemplateSource::Gguf, text));
        }
        Ok(Self::builtin(arch))
    }

    /// A template read from a Jinja file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|err| Error::Io { path: path.into(), err })?;
        Ok(Self::from_source(TemplateSource::File(path.into()), &text))
    }

    /// The `chat_template` of a `tokenizer_config.json`, or `None` when it has none.
    pub fn from_tokenizer_config(path: &Path) -> Result<Option<Self>> {
        let bytes = std::fs::read(path).map_err(|err| Error::Io { path: path.into(), err })?;
        let bad = |why: String| Error::Config { path: path.into(), why };
        let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        let source = TemplateSource::TokenizerConfig(path.into());
        match json.get("chat_template") {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(text)) => Ok(Some(Self::from_source(source, text))),
            Some(serde_json::Value::Array(list)) => {
                let mut templates = Vec::new();
                for item in list {
                    let name = item.get("name").and_then(|v| v.as_str());
                    let text = item.get("template").and_then(|v| v.as_str());
                    let (Some(name), Some(text)) = (name, text) else {
                        return Err(bad("chat_template list entries need a name and a template".into()));
                    };
                    templates.push((name.to_string(), text.to_string()));
                }
                Ok(Some(ChatTemplate { source, templates }))
            }
            Some(_) => Err(bad("chat_template is neither a string nor a list".into())),
        }
    }

    /// The family's built-in template.
    pub fn builtin(arch: Arch) -> Self {
        Self::from_source(TemplateSource::BuiltIn(arch), builtin::for_arch(arch))
    }

    /// A template from its text.
    pub fn from_source(source: TemplateSource, text: &str) -> Self {
        ChatTemplate { source, templates: vec![("default".into(), text.to_string())] }
    }

    /// Where the template came from.
    pub fn source(&self) -> &TemplateSource {
        &self.source
    }

    /// The template text used for a request with (`tools`) or without tools, as HF picks it.
    pub fn text(&self, tools: bool) -> Result<&str> {
        let find = |name: &str| self.templates.iter().find(|(n, _)| n == name).map(|(_, t)| t.as_str());
        let picked = if tools { find("tool_use").or_else(|| find("default")) } else { find("default") };
        picked.ok_or_else(|| {
            let names: Vec<&str> = self.templates.iter().map(|(n, _)| n.as_str()).collect();
            Error::Template(format!("no default chat template among {names:?}"))
        })
    }

    /// Renders `request` (HF's chat request). Object keys reach the template in the order
    /// `serde_json` keeps them (sorted, unless its `preserve_order` feature is on); use
    /// [`ChatTemplate::render_json`] to keep a JSON text's order.
    pub fn render(&self, request: &serde_json::Value, bos: &str, eos: &str) -> Result<String> {
        self.render_value(Value::from(minijinja::value::Serde(request)), bos, eos)
    }

    /// Renders a request given as JSON text, its objects' keys in the text's order (as Python's
    /// `json.load` keeps them, which `tojson` and `.items()` show).
    pub fn render_json(&self, request: &str, bos: &str, eos: &str) -> Result<String> {
        let value: Value =
            serde_json::from_str(request).map_err(|e| Error::Template(format!("request is not valid JSON: {e}")))?;
        self.render_value(value, bos, eos)
    }

    fn render_value(&self, request: Value, bos: &str, eos: &str) -> Result<String> {
        if request.kind() != ValueKind::Map {
            return Err(Error::Template("the request must be a JSON object".into()));
        }
        let get = |key: &str| request.get_attr(key).ok().filter(|v| !v.is_undefined() && !v.is_none());
        let messages = get("messages").ok_or_else(|| Error::Template("the request has no messages".into()))?;
        let messages = normalize_messages(&messages)?;
        let tools = get("tools");
        let text = self.text(tools.is_some())?;

        // As `apply_chat_template`: special tokens, then the caller's keyword arguments, then
        // the named parameters of `render_jinja_template`.
        let mut ctx: IndexMap<Value, Value> = IndexMap::new();
        ctx.insert("bos_token".into(), bos.into());
        ctx.insert("eos_token".into(), eos.into());
        for (k, v) in entries(&request) {
            ctx.insert(k, v);
        }
        ctx.insert("messages".into(), messages);
        ctx.insert("tools".into(), tools.unwrap_or(Value::from(())));
        ctx.insert("documents".into(), get("documents").unwrap_or(Value::from(())));
        ctx.insert("add_generation_prompt".into(), get("add_generation_prompt").unwrap_or(Value::from(false)));

        let env = environment();
        env.render_str(text, Value::from_object(ctx)).map_err(template_error)
    }
}

/// A jinja error as one line: what failed, where, and why.
fn template_error(e: minijinja::Error) -> Error {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    Error::Template(msg)
}

/// An environment with HF's settings: `trim_blocks`, `lstrip_blocks`, no trailing newline kept,
/// loop controls, Python's string and dict methods, Python's printing of values (also by `trim`
/// and `string`), HF's `tojson`,
/// `raise_exception` and `strftime_now`.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(false)
        .build()
        .expect("the default delimiters are valid");
    env.set_syntax(syntax);
    env.set_fuel(Some(FUEL));
    env.set_unknown_method_callback(|state, value, method, args| {
        if let Some(v) = value.as_str().and_then(|s| python::string_method(s, method, args)) {
            return Ok(v);
        }
        minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
    });
    env.set_formatter(|out, _state, value| {
        let mut s = String::new();
        python::py_str(value, &mut s);
        out.write_str(&s).map_err(|_| minijinja::Error::from(ErrorKind::WriteFailure))
    });
    env.add_filter("tojson", |v: &Value, kwargs: Kwargs| python::tojson(v, kwargs));
    env.add_filter("trim", |v: &Value, chars: Option<String>| python::trim(v, chars));
    env.add_filter("string", |v: &Value| python::string(v));
    env.add_filter("dictsort", python::dictsort);
    env.add_test("sequence", |v: &Value| python::is_sequence(v));
    env.add_function("raise_exception", |msg: String| -> std::result::Result<Value, minijinja::Error> {
        Err(minijinja::Error::new(ErrorKind::InvalidOperation, format!("raise_exception: {msg}")))
    });
    env.add_function("strftime_now", |format: String| python::strftime_now(&format));
    env
}

/// A map's entries in its order.
fn entries(map: &Value) -> Vec<(Value, Value)> {
    let Ok(keys) = map.try_iter() else { return Vec::new() };
    keys.map(|k| {
        let v = map.get_item(&k).unwrap_or(Value::UNDEFINED);
        (k, v)
    })
    .collect()
}

/// Reasoning text is passed under these names; the first non-null one is copied to `thinking`
/// and `reasoning_content` (HF's `_alias_reasoning_fields`).
const REASONING_FIELDS: [&str; 3] = ["reasoning_content", "thinking", "reasoning"];

/// The messages as HF hands them to the template: each an object, keys whose value is `null`
/// dropped (`_normalize_chat_messages`), reasoning aliased.
fn normalize_messages(messages: &Value) -> Result<Value> {
    if messages.kind() != ValueKind::Seq {
        return Err(Error::Template("messages must be a list".into()));
    }
    let mut out = Vec::new();
    for (i, message) in messages.try_iter().into_iter().flatten().enumerate() {
        if message.kind() != ValueKind::Map {
            return Err(Error::Template(format!("message {i} is not an object")));
        }
        let kept: Vec<(Value, Value)> = entries(&message).into_iter().filter(|(_, v)| !v.is_none()).collect();
        let reasoning = REASONING_FIELDS
            .iter()
            .find_map(|f| kept.iter().find(|(k, _)| k.as_str() == Some(f)).map(|(_, v)| v.clone()));
        let mut map: IndexMap<Value, Value> = IndexMap::new();
        // Python's `{"thinking": r, **message, "reasoning_content": r}`: an existing key keeps its
        // place, and takes the later value.
        if let Some(r) = &reasoning {
            map.insert("thinking".into(), r.clone());
        }
        for (k, v) in kept {
            map.insert(k, v);
        }
        if let Some(r) = reasoning {
            map.insert("reasoning_content".into(), r);
        }
        out.push(Value::from_object(map));
    }
    Ok(Value::from(out))
}

/// The `<bos>` and `<eos>` strings of the checkpoint at `path`: `tokenizer_config.json`'s
/// `bos_token` / `eos_token` next to it, else the GGUF vocabulary's, else Gemma's.
pub fn special_tokens(path: &Path) -> (String, String) {
    let mut bos = "<bos>".to_string();
    let mut eos = "<eos>".to_string();
    let is_gguf = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    if is_gguf {
        if let Ok(file) = crate::gguf::GgufFile::open(path) {
            let token = |key: &str| {
                let id = file.get(key)?.as_u64()? as usize;
                file.get("tokenizer.ggml.tokens")?.as_strings()?.get(id).cloned()
            };
            bos = token("tokenizer.ggml.bos_token_id").unwrap_or(bos);
            eos = token("tokenizer.ggml.eos_token_id").unwrap_or(eos);
        }
        return (bos, eos);
    }
    let dir = if path.is_dir() { path } else { path.parent().unwrap_or(path) };
    let Ok(bytes) = std::fs::read(dir.join("tokenizer_config.json")) else { return (bos, eos) };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return (bos, eos) };
    // A token is a string or an `AddedToken` object with `content`.
    let token = |key: &str| {
        let v = json.get(key)?;
        v.as_str().or_else(|| v.get("content")?.as_str()).map(str::to_string)
    };
    (token("bos_token").unwrap_or(bos), token("eos_token").unwrap_or(eos))
}

#[cfg(test)]
mod tests;
