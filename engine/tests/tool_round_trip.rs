//! A tool-call round trip through the whole API, on the tiny random-weight Gemma 4 checkpoint
//! with Google's Gemma 4 chat template: the tool is declared through `GenerateOptions::tool`, the
//! call forced by a grammar (random weights would never choose one), read back with
//! `Generation::reply`, answered with a tool message (rendered as Gemma's structured
//! `response:NAME{...}` block), and the conversation continues.
//!
//! The tiny vocabulary has no tool tokens, so a scratch copy of the checkpoint names its unused
//! ids 46-52 as Gemma 4's vocabulary does (`<|tool>` ... `<|"|>`), holds Google's template as
//! `chat_template.jinja` (`GARNET_GEMMA4_CHAT_TEMPLATE`, fetched by scripts/test.sh) and allows
//! 1024 positions (the template's tool declaration alone is ~200 tokens of this vocabulary).

mod common;

use garnet::reply::Channel;
use garnet::{
    Constraint, Engine, FinishReason, GenerateOptions, LoadOptions, Message, Sampling, SessionOptions, ToolResponse,
};
use serde_json::{json, Value};

const TOOL_TOKENS: [&str; 7] =
    ["<|tool>", "<tool|>", "<|tool_call>", "<tool_call|>", "<|tool_response>", "<tool_response|>", "<|\"|>"];

/// The scratch checkpoint described above, or `None` without the template.
fn checkpoint() -> Option<common::TempDir> {
    let Ok(template) = std::env::var("GARNET_GEMMA4_CHAT_TEMPLATE") else {
        eprintln!("skipped: GARNET_GEMMA4_CHAT_TEMPLATE unset");
        return None;
    };
    let dir = common::copy_of("edge_e2b_like/bf16");
    std::fs::copy(template, dir.0.join("chat_template.jinja")).unwrap();
    let mut tok: Value = serde_json::from_slice(&std::fs::read(dir.0.join("tokenizer.json")).unwrap()).unwrap();
    let rename = |id: u64| TOOL_TOKENS.get(id.wrapping_sub(46) as usize).copied();
    for t in tok["added_tokens"].as_array_mut().unwrap() {
        if let Some(name) = rename(t["id"].as_u64().unwrap()) {
            t["content"] = name.into();
        }
    }
    let vocab = tok["model"]["vocab"].as_object_mut().unwrap();
    vocab.retain(|_, id| rename(id.as_u64().unwrap()).is_none());
    for (i, name) in TOOL_TOKENS.iter().enumerate() {
        vocab.insert(name.to_string(), (46 + i).into());
    }
    dir.write("tokenizer.json", &serde_json::to_vec(&tok).unwrap());
    let mut config: Value = serde_json::from_slice(&std::fs::read(dir.0.join("config.json")).unwrap()).unwrap();
    config["max_position_embeddings"] = 1024.into(); // a text-only config: no `text_config`
    dir.write("config.json", &serde_json::to_vec(&config).unwrap());
    Some(dir)
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "minLength": 1, "maxLength": 12},
            "days": {"type": "integer", "minimum": 1, "maximum": 14},
            "unit": {"type": "string", "enum": ["c", "f"]}
        }, "required": ["city", "days", "unit"]}
    }})
}

#[test]
fn tool_call_round_trip() {
    let Some(dir) = checkpoint() else { return };
    let engine = Engine::load(&dir.0, LoadOptions::default()).unwrap();
    assert!(matches!(engine.chat_template().source(), garnet::template::TemplateSource::File(_)));
    let tok = engine.tokenizer().unwrap();
    let mut session = engine.session(SessionOptions { context: 1024, ..Default::default() }).unwrap();
    let tool = weather_tool();
    let mut conversation = vec![Message::user("What is the weather in Paris for the next 3 days?")];

    // 1. The model's turn, forced to call the tool.
    let force = Constraint::gemma4_tool_call(tok, "get_weather", &tool["function"]["parameters"]).unwrap();
    let opts = GenerateOptions::default().tool(tool.clone()).processor(force);
    let sampling = Sampling { temperature: 1.0, seed: 7, max_new_tokens: 120, ..Sampling::default() };
    let prompt = engine.render_chat(&conversation, &opts).unwrap();
    assert!(prompt.contains("<|tool>declaration:get_weather{"), "{prompt}");
    let mut gen = session.chat_with(&conversation, &sampling, opts).unwrap();
    let tokens: Vec<_> = gen.by_ref().map(|t| t.unwrap()).collect();
    assert_eq!(gen.finish_reason(), Some(&FinishReason::Constraint));
    let reply = gen.reply().unwrap();
    let text = gen.text().to_string();
    drop(gen);
    let ids: Vec<u32> = tokens.iter().map(|t| t.id).collect();
    eprintln!("call ids: {ids:?}\ncall text: {text}");
    assert_eq!((ids[0], *ids.last().unwrap()), (48, 49), "<|tool_call> ... <tool_call|>");
    assert!(tokens.iter().all(|t| t.channel == Channel::ToolCall), "every token is the call's");
    assert_eq!(reply.tool_calls.len(), 1);
    let call = &reply.tool_calls[0];
    assert_eq!(call.name, "get_weather");
    let args = call.arguments.as_object().unwrap();
    let city = args["city"].as_str().unwrap();
    assert!((1..=12).contains(&city.chars().count()), "{city:?}");
    assert!((1..=14).contains(&args["days"].as_i64().unwrap()));
    assert!(["c", "f"].contains(&args["unit"].as_str().unwrap()));

    // 2. The tool's answer goes back; the model continues its turn after it.
    conversation.push(Message::model("").with_tool_calls(reply.tool_calls.clone()));
    let result = json!({"temperature": 15, "unit": "c"});
    conversation.push(Message::tool(vec![ToolResponse::new("get_weather", result)]));
    let opts = GenerateOptions::default().tool(tool);
    let prompt = engine.render_chat(&conversation, &opts).unwrap();
    let tail = &prompt[prompt.rfind("<|turn>model").unwrap()..];
    eprintln!("prompt tail: {tail}");
    assert!(tail.contains("<|tool_response>response:get_weather{temperature:15,unit:<|\"|>c<|\"|>}<tool_response|>"));
    let held = session.tokens().len();
    let sampling = Sampling { max_new_tokens: 12, ..Sampling::greedy() };
    let mut gen = session.chat_with(&conversation, &sampling, opts).unwrap();
    let more: Vec<u32> = gen.by_ref().map(|t| t.unwrap().id).collect();
    let usage = gen.usage();
    drop(gen);
    eprintln!("continued with {more:?}; {} prompt tokens run, {held} held", usage.prompt_tokens);
    assert!(!more.is_empty());
    let full = tok.encode(&prompt, false).unwrap();
    assert_eq!(session.tokens()[..full.len()], full[..], "the session holds the rendered conversation");
}
