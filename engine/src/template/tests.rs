use super::*;
use crate::chat::{ChatFormat, Message, Role};
use serde_json::json;

fn render(template: &str, request: &str) -> Result<String> {
    ChatTemplate::from_source(TemplateSource::Gguf, template).render_json(request, "<bos>", "<eos>")
}

#[test]
fn builtins_match_chat_format() {
    let conversation = [
        Message::new(Role::System, "Be brief."),
        Message::new(Role::User, "Hi"),
        Message::new(Role::Model, "Hello!"),
        Message::new(Role::User, "Capital of France?"),
    ];
    let messages: Vec<_> = conversation.iter().map(Message::to_json).collect();
    for (arch, format) in [(Arch::Gemma4, ChatFormat::GEMMA4), (Arch::Gemma3, ChatFormat::GEMMA3)] {
        for gen in [false, true] {
            let request = json!({"messages": messages, "add_generation_prompt": gen});
            let got = ChatTemplate::builtin(arch).render(&request, "<bos>", "<eos>").unwrap();
            assert_eq!(got, format!("<bos>{}", format.format(&conversation, gen)), "{arch:?} {gen}");
        }
    }
}

#[test]
fn builtin_exact_strings_with_parts() {
    let request = r#"{"messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What?"},
        {"type": "audio"}]}, {"role": "assistant", "content": "A cat."}], "add_generation_prompt": true}"#;
    let g4 = ChatTemplate::builtin(Arch::Gemma4).render_json(request, "<bos>", "<eos>").unwrap();
    assert_eq!(g4, "<bos><|turn>user\n<|image|>What?<|audio|><turn|>\n<|turn>model\nA cat.<turn|>\n<|turn>model\n");
    let g3 = ChatTemplate::builtin(Arch::Gemma3).render_json(request, "<bos>", "<eos>").unwrap();
    assert_eq!(
        g3,
        "<bos><start_of_turn>user\n<start_of_image>What?<end_of_turn>\n<start_of_turn>model\nA cat.<end_of_turn>\n\
         <start_of_turn>model\n"
    );
}

#[test]
fn python_printing_and_whitespace() {
    let t = "{% for m in messages %}\n  {{ m.content }}|{{ m.n }}|{{ m.get('x') }}\n{% endfor %}\n";
    let got = render(t, r#"{"messages": [{"content": "a", "n": 1.0}, {"content": [1, "b"], "n": true, "x": null}]}"#);
    // Nulls are dropped from messages, so `get` finds nothing: None.
    assert_eq!(got.unwrap(), "  a|1.0|None\n  [1, 'b']|True|None\n");
}

#[test]
fn tojson_is_json_dumps() {
    let t = "{{ tools | tojson }}#{{ tools | tojson(indent=2) }}#{{ tools[0] | tojson(sort_keys=true, separators=(',', ':')) }}";
    let got = render(t, r#"{"messages": [], "tools": [{"z": "é<&>\"\n", "a": [1, 2.5e-7, null, {}], "m": []}]}"#);
    assert_eq!(
        got.unwrap(),
        "[{\"z\": \"é<&>\\\"\\n\", \"a\": [1, 2.5e-07, null, {}], \"m\": []}]#\
         [\n  {\n    \"z\": \"é<&>\\\"\\n\",\n    \"a\": [\n      1,\n      2.5e-07,\n      null,\n      {}\n    ],\n    \"m\": []\n  }\n]#\
         {\"a\":[1,2.5e-07,null,{}],\"m\":[],\"z\":\"é<&>\\\"\\n\"}"
    );
    let ascii = render("{{ 'é😀' | tojson(ensure_ascii=true) }}", r#"{"messages": []}"#).unwrap();
    assert_eq!(ascii, r#""\u00e9\ud83d\ude00""#);
}

#[test]
fn context_variables() {
    let t =
        "{{ bos_token }}{{ eos_token }}|{{ add_generation_prompt }}|{{ tools }}|{{ enable_thinking }}|{{ extra.k }}";
    let got = render(t, r#"{"messages": [], "enable_thinking": false, "extra": {"k": "v"}}"#).unwrap();
    assert_eq!(got, "<bos><eos>|False|None|False|v");
    let got = render("{{ bos_token }}", r#"{"messages": [], "bos_token": "B"}"#).unwrap();
    assert_eq!(got, "B");
}

#[test]
fn reasoning_is_aliased() {
    let t = "{% for m in messages %}{{ m | tojson }};{% endfor %}";
    let got = render(t, r#"{"messages": [{"role": "assistant", "content": "x", "reasoning": "r"}, {"role": "user"}]}"#);
    assert_eq!(
        got.unwrap(),
        r#"{"thinking": "r", "role": "assistant", "content": "x", "reasoning": "r", "reasoning_content": "r"};{"role": "user"};"#
    );
}

#[test]
fn loop_controls_methods_and_exceptions() {
    let t = "{% for i in range(5, -1, -1) %}{% if i == 1 %}{% break %}{% endif %}{% if i == 3 %}{% continue %}{% endif %}{{ i }}{% endfor %}\
             {{ '  a,b '.strip().split(',') }}{{ 'abc'.startswith('a') }}{% for k, v in {'x': 1}.items() %}{{ k }}{{ v }}{% endfor %}";
    assert_eq!(render(t, r#"{"messages": []}"#).unwrap(), "542['a', 'b']Truex1");
    let err = render("{{ raise_exception('no system role') }}", r#"{"messages": []}"#).unwrap_err().to_string();
    assert!(err.contains("no system role") && !err.contains('\n'), "{err}");
    let year = render("{{ strftime_now('%Y') }}", r#"{"messages": []}"#).unwrap();
    assert!(year.len() == 4 && year.starts_with('2'), "{year}");
}

#[test]
fn bad_requests_and_templates_are_errors() {
    for request in ["", "[]", "{}", r#"{"messages": 3}"#, r#"{"messages": [1]}"#, "{\"messages\": [", "nul"] {
        assert!(render("x", request).is_err(), "{request}");
    }
    for template in ["{% for %}", "{{ x.y.z() }}", "{% for i in range(10**9) %}{% endfor %}"] {
        assert!(render(template, r#"{"messages": []}"#).is_err(), "{template}");
    }
    let forever = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}";
    assert!(render(forever, r#"{"messages": []}"#).is_err());
}

#[test]
fn template_sources() {
    let dir = tempfile::tempdir().unwrap();
    let ggufless = ChatTemplate::for_checkpoint(dir.path(), Arch::Gemma3, None).unwrap();
    assert_eq!(ggufless.source(), &TemplateSource::BuiltIn(Arch::Gemma3));
    let from_gguf = ChatTemplate::for_checkpoint(dir.path(), Arch::Gemma4, Some("G")).unwrap();
    assert_eq!(from_gguf.source(), &TemplateSource::Gguf);

    let config = dir.path().join("tokenizer_config.json");
    let list = json!({"chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}],
                      "bos_token": {"content": "<s>"}, "eos_token": "</s>"});
    std::fs::write(&config, list.to_string()).unwrap();
    let t = ChatTemplate::for_checkpoint(dir.path(), Arch::Gemma4, Some("G")).unwrap();
    assert_eq!(t.source(), &TemplateSource::TokenizerConfig(config.clone()));
    assert_eq!(t.render_json(r#"{"messages": []}"#, "", "").unwrap(), "D");
    assert_eq!(t.render_json(r#"{"messages": [], "tools": []}"#, "", "").unwrap(), "T");
    assert_eq!(special_tokens(dir.path()), ("<s>".to_string(), "</s>".to_string()));

    std::fs::write(dir.path().join("chat_template.jinja"), "J{{ bos_token }}\n").unwrap();
    let t = ChatTemplate::for_checkpoint(&dir.path().join("model.safetensors"), Arch::Gemma4, None).unwrap();
    assert!(matches!(t.source(), TemplateSource::File(_)));
    assert_eq!(t.render_json(r#"{"messages": []}"#, "<b>", "").unwrap(), "J<b>");
    // A GGUF file's neighbours are not its files.
    let t = ChatTemplate::for_checkpoint(&dir.path().join("m.gguf"), Arch::Gemma4, Some("G")).unwrap();
    assert_eq!(t.source(), &TemplateSource::Gguf);

    std::fs::write(&config, r#"{"chat_template": [{"name": "tool_use", "template": "T"}]}"#).unwrap();
    let only_tools = ChatTemplate::from_tokenizer_config(&config).unwrap().unwrap();
    assert!(only_tools.render_json(r#"{"messages": []}"#, "", "").is_err());
    std::fs::write(&config, r#"{"chat_template": 5}"#).unwrap();
    assert!(ChatTemplate::from_tokenizer_config(&config).is_err());
}
