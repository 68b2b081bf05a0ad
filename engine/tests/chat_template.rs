//! Chat templates against HF transformers' own renders (testdata/chat, written by
//! tools/scripts/make_chat_goldens.py), byte for byte, and tool calls through the Gemma 4 template
//! and back. Google's templates are fetched at test setup (scripts/test.sh):
//! `GARNET_GEMMA4_CHAT_TEMPLATE` (the Gemma 4 Jinja file) and `GARNET_GEMMA3_TOKENIZER_CONFIG`
//! (Gemma 3's tokenizer_config.json); tests needing one say "skipped" when it is unset.

use garnet::config::Arch;
use garnet::gguf::GgufFile;
use garnet::reply::{parse_reply, ToolCall};
use garnet::template::{special_tokens, ChatTemplate, TemplateSource};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn chat_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/chat")
}

fn env_path(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            eprintln!("skipped: {var} unset");
            None
        }
    }
}

/// Renders every request with `template` and compares with `testdata/chat/<golden>/`; returns
/// how many were compared.
fn check_goldens(template: &ChatTemplate, golden: &str, bos: &str, eos: &str) -> usize {
    let mut requests: Vec<PathBuf> = std::fs::read_dir(chat_dir().join("requests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    requests.sort();
    assert!(requests.len() >= 15);
    for path in &requests {
        let name = path.file_stem().unwrap().to_str().unwrap();
        let request = std::fs::read_to_string(path).unwrap();
        let got = template.render_json(&request, bos, eos);
        let expected = chat_dir().join(golden).join(format!("{name}.txt"));
        if expected.exists() {
            let want = std::fs::read_to_string(&expected).unwrap();
            let got = got.unwrap_or_else(|e| panic!("{golden}/{name}: {e}"));
            assert_eq!(got, want, "{golden}/{name}");
        } else {
            // HF's render raised: so must ours, with the template's message.
            let why = std::fs::read_to_string(chat_dir().join(golden).join(format!("{name}.error"))).unwrap();
            let err = got.expect_err(&format!("{golden}/{name}: rendered, HF raised {why}")).to_string();
            assert!(err.contains(why.trim()), "{golden}/{name}: {err}");
        }
    }
    requests.len()
}

#[test]
fn builtin_templates_match_hf() {
    assert_eq!(check_goldens(&ChatTemplate::builtin(Arch::Gemma4), "builtin-gemma4", "<bos>", "<eos>"), 15);
    assert_eq!(check_goldens(&ChatTemplate::builtin(Arch::Gemma3), "builtin-gemma3", "<bos>", "<eos>"), 15);
}

#[test]
fn goldens_record_their_renderer() {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(chat_dir().join("goldens.json")).unwrap()).unwrap();
    assert_eq!(meta["transformers"], "5.25.0");
}

#[test]
fn gemma4_template_matches_hf() {
    let Some(path) = env_path("GARNET_GEMMA4_CHAT_TEMPLATE") else { return };
    let template = ChatTemplate::from_file(&path).unwrap();
    check_goldens(&template, "gemma4", "<bos>", "<eos>");

    // The same file as a checkpoint's chat_template.jinja.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&path, dir.path().join("chat_template.jinja")).unwrap();
    let template = ChatTemplate::for_checkpoint(dir.path(), Arch::Gemma4, Some("unused")).unwrap();
    assert!(matches!(template.source(), TemplateSource::File(_)));
    check_goldens(&template, "gemma4", "<bos>", "<eos>");
}

#[test]
fn gemma3_template_matches_hf() {
    let Some(config) = env_path("GARNET_GEMMA3_TOKENIZER_CONFIG") else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&config, dir.path().join("tokenizer_config.json")).unwrap();
    let template = ChatTemplate::for_checkpoint(dir.path(), Arch::Gemma3, None).unwrap();
    assert!(matches!(template.source(), TemplateSource::TokenizerConfig(_)));
    let (bos, eos) = special_tokens(dir.path());
    assert_eq!((bos.as_str(), eos.as_str()), ("<bos>", "<end_of_turn>"));
    check_goldens(&template, "gemma3", &bos, &eos);
}

#[test]
fn gguf_chat_template_key() {
    // A GGUF v3 file with no tensors and one metadata string.
    let template = "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}";
    let mut bytes = b"GGUF".to_vec();
    bytes.extend(3u32.to_le_bytes());
    bytes.extend(0u64.to_le_bytes());
    bytes.extend(1u64.to_le_bytes());
    for (i, s) in ["tokenizer.chat_template", template].iter().enumerate() {
        bytes.extend((s.len() as u64).to_le_bytes());
        bytes.extend(s.as_bytes());
        if i == 0 {
            bytes.extend(8u32.to_le_bytes()); // string
        }
    }
    let file = GgufFile::from_storage("t.gguf", Arc::new(bytes)).unwrap();
    assert_eq!(file.chat_template(), Some(template));
    let t = ChatTemplate::for_checkpoint(Path::new("t.gguf"), Arch::Gemma4, file.chat_template()).unwrap();
    assert_eq!(t.source(), &TemplateSource::Gguf);
    assert_eq!(t.render(&json!({"messages": [{"role": "user", "content": "x"}]}), "<b>", "").unwrap(), "<b>x");

    let Some(path) = env_path("GARNET_GEMMA3_GGUF") else { return };
    let file = GgufFile::open(&path).unwrap();
    // Gemma 3 270M's GGUF carries no template: the built-in one serves.
    let t = ChatTemplate::for_checkpoint(&path, Arch::Gemma3, file.chat_template()).unwrap();
    assert_eq!(t.source(), &TemplateSource::BuiltIn(Arch::Gemma3));
    assert_eq!(special_tokens(&path), ("<bos>".to_string(), "<eos>".to_string()));
}

/// The text between the last `<|tool_call>` and its `<tool_call|>` in a render.
fn last_call(text: &str) -> &str {
    let start = text.rfind("<|tool_call>").expect("a tool call") + "<|tool_call>".len();
    let end = start + text[start..].find("<tool_call|>").unwrap();
    &text[start..end]
}

#[test]
fn tool_calls_round_trip_through_the_gemma4_template() {
    let Some(path) = env_path("GARNET_GEMMA4_CHAT_TEMPLATE") else { return };
    let template = ChatTemplate::from_file(&path).unwrap();
    let arguments = [
        json!({}),
        json!({"city": "Paris"}),
        json!({"q": "a, b: {c} [d] \"e\" 'f'\nnew line, ünï 😀", "n": -3, "x": 2.5, "big": 1e20, "tiny": 1.5e-7}),
        json!({"flag": true, "off": false, "none": null, "list": [1, "two", [3.0], {"k": "v"}], "Upper": 1}),
        json!({"nested": {"deeper": {"deepest": [{"a": []}, {}]}, "b": "x"}}),
    ];
    for args in arguments {
        let call = ToolCall { name: "do_it".into(), arguments: args.clone() };
        let request = json!({
            "messages": [{"role": "user", "content": "go"}, {"role": "assistant", "tool_calls": [call.to_json()]}],
            "add_generation_prompt": true,
        });
        let prompt = template.render(&request, "<bos>", "<eos>").unwrap();
        let written = last_call(&prompt);
        let parsed = ToolCall::parse(written).unwrap_or_else(|e| panic!("{written}: {e}"));
        assert_eq!(parsed.name, "do_it");
        assert_eq!(parsed.arguments, args, "{written}");
        // garnet writes calls exactly as the template does.
        assert_eq!(call.to_gemma4(), written);

        // The model's reply -> the assistant message -> the template writes the same call.
        let reply = parse_reply(&format!("<|channel>thought\nhm<channel|><|tool_call>{written}<tool_call|>")).unwrap();
        assert_eq!(reply.thinking, "hm");
        let request = json!({"messages": [{"role": "user", "content": "go"}, reply.to_message()]});
        let again = template.render(&request, "<bos>", "<eos>").unwrap();
        assert_eq!(last_call(&again), written);
    }
}

#[test]
fn jinja_semantics_match_hf() {
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(chat_dir().join(name)).unwrap()).unwrap()
    };
    let (snippets, expected) = (read("snippets.json"), read("snippets.expected.json"));
    // As text: its key order is what `tojson`, `.items()` and printing show.
    let request = std::fs::read_to_string(chat_dir().join("snippets.request.json")).unwrap();
    let mut wrong = Vec::new();
    for s in snippets.as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        let template = ChatTemplate::from_source(TemplateSource::Gguf, s["template"].as_str().unwrap());
        let got = template.render_json(&request, "<bos>", "<eos>");
        let want = &expected[name];
        match (got, want["text"].as_str()) {
            (Ok(got), Some(want)) if got == want => {}
            (Err(_), None) => {}
            (got, want) => wrong.push(format!("{name}:\n  got  {got:?}\n  want {want:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
