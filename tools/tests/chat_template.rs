//! `garnet chat-template`: the prompt on stdout byte for byte as HF renders it (testdata/chat),
//! and one-line errors for bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn garnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_garnet")).args(args).output().expect("garnet runs")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn path(rel: &str) -> String {
    root().join(rel).display().to_string()
}

fn golden(rel: &str) -> Vec<u8> {
    std::fs::read(root().join("testdata/chat").join(rel)).unwrap()
}

/// Asserts `out` failed with one line on stderr containing `what`.
fn fails_with(out: &Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded: {err}");
    assert!(out.stdout.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("garnet: error: ") && err.contains(what), "{err}");
}

#[test]
fn renders_the_builtin_template_of_a_checkpoint_without_one() {
    let model = path("testdata/gemma4-tiny/dense_31b_like/bf16");
    for name in ["basic", "tools_nested", "image_audio_parts", "no_generation_prompt"] {
        let request = path(&format!("testdata/chat/requests/{name}.json"));
        let out = garnet(&["chat-template", "--model", &model, "--request", &request]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, golden(&format!("builtin-gemma4/{name}.txt")), "{name}");
    }
}

#[test]
fn renders_a_template_file() {
    let Some(template) = std::env::var_os("GARNET_GEMMA4_CHAT_TEMPLATE").filter(|p| !p.is_empty()) else {
        eprintln!("skipped: GARNET_GEMMA4_CHAT_TEMPLATE unset");
        return;
    };
    let template = template.to_str().unwrap();
    let model = path("testdata/gemma4-tiny/dense_31b_like/bf16");
    for name in ["thinking_on", "tool_call_and_response", "unicode_whitespace"] {
        let request = path(&format!("testdata/chat/requests/{name}.json"));
        let out = garnet(&["chat-template", "--model", &model, "--template", template, "--request", &request]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, golden(&format!("gemma4/{name}.txt")), "{name}");
    }
}

#[test]
fn bad_input_is_one_line() {
    let dir = std::env::temp_dir().join(format!("garnet-chat-template-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = path("testdata/gemma4-tiny/dense_31b_like/bf16");
    let request = path("testdata/chat/requests/basic.json");
    let bad_json = dir.join("bad.json");
    std::fs::write(&bad_json, "{\"messages\": [").unwrap();
    let raises = dir.join("raises.jinja");
    std::fs::write(&raises, "{{ raise_exception('System role not supported') }}").unwrap();
    let broken = dir.join("broken.jinja");
    std::fs::write(&broken, "{% for m in messages %}").unwrap();
    let s = |p: &Path| p.display().to_string();

    fails_with(&garnet(&["chat-template", "--model", &model, "--request", &s(&bad_json)]), "not valid JSON");
    fails_with(&garnet(&["chat-template", "--model", &model, "--request", "/nonexistent.json"]), "/nonexistent.json");
    fails_with(&garnet(&["chat-template", "--model", "/nonexistent", "--request", &request]), "/nonexistent");
    let args = ["chat-template", "--model", &model, "--request", &request, "--template"];
    fails_with(&garnet(&[&args[..], &[&s(&raises)]].concat()), "System role not supported");
    fails_with(&garnet(&[&args[..], &[&s(&broken)]].concat()), "chat template");
    fails_with(&garnet(&[&args[..], &["/nonexistent.jinja"]].concat()), "/nonexistent.jinja");
    let _ = std::fs::remove_dir_all(&dir);
}
