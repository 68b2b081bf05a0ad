use super::*;
use serde_json::json;

/// Feeds `pieces` one by one and merges the events of consecutive text of one channel.
fn run(pieces: &[&str]) -> Vec<ReplyEvent> {
    let mut p = ReplyParser::new();
    let mut events = Vec::new();
    for piece in pieces {
        for e in p.push(piece) {
            merge(&mut events, e);
        }
    }
    for e in p.finish() {
        merge(&mut events, e);
    }
    events
}

fn merge(events: &mut Vec<ReplyEvent>, e: ReplyEvent) {
    if let (Some(ReplyEvent::Text { channel: a, text }), ReplyEvent::Text { channel: b, text: t }) =
        (events.last_mut(), &e)
    {
        if a == b {
            text.push_str(t);
            return;
        }
    }
    events.push(e);
}

fn text(channel: Channel, t: &str) -> ReplyEvent {
    ReplyEvent::Text { channel, text: t.into() }
}

/// Every way of cutting `s` into pieces at character boundaries: 1, 2 or 3 pieces.
fn splits(s: &str) -> Vec<Vec<String>> {
    let cuts: Vec<usize> = (0..=s.len()).filter(|&i| s.is_char_boundary(i)).collect();
    let mut out = vec![vec![s.to_string()]];
    for &a in &cuts {
        out.push(vec![s[..a].into(), s[a..].into()]);
        for &b in cuts.iter().filter(|&&b| b >= a) {
            out.push(vec![s[..a].into(), s[a..b].into(), s[b..].into()]);
        }
    }
    out
}

#[test]
fn answer_only() {
    assert_eq!(run(&["Hello", " world"]), vec![text(Channel::Answer, "Hello world")]);
    assert_eq!(run(&[]), vec![]);
}

#[test]
fn thought_then_answer_however_split() {
    let reply = "<|channel>thought\nLet me think <about> it.<channel|>The answer is 4.";
    let want = vec![text(Channel::Thought, "Let me think <about> it."), text(Channel::Answer, "The answer is 4.")];
    for pieces in splits(reply) {
        let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
        assert_eq!(run(&pieces), want, "{pieces:?}");
    }
}

#[test]
fn empty_thought_channel_emits_nothing() {
    assert_eq!(run(&["<|channel>", "thought\n", "<channel|>", "Hi"]), vec![text(Channel::Answer, "Hi")]);
    assert_eq!(run(&["<|channel>thought<channel|>Hi"]), vec![text(Channel::Answer, "Hi")]);
}

#[test]
fn held_text_is_released_when_it_is_no_marker() {
    let mut p = ReplyParser::new();
    assert_eq!(p.push("a <|chan"), vec![text(Channel::Answer, "a ")]);
    assert_eq!(p.push("ge"), vec![text(Channel::Answer, "<|change")]);
    assert_eq!(p.push("<"), vec![]);
    assert_eq!(p.finish(), vec![text(Channel::Answer, "<")]);
}

#[test]
fn channel_reports_the_state() {
    let mut p = ReplyParser::new();
    assert_eq!(p.channel(), Channel::Answer);
    p.push("<|channel>thought\n");
    assert_eq!(p.channel(), Channel::Thought);
    p.push("x<channel|><|tool_call>");
    assert_eq!(p.channel(), Channel::ToolCall);
}

#[test]
fn tool_call_streams_and_parses_however_split() {
    let reply = "Sure.<|tool_call>call:get_weather{city:<|\"|>Paris, \"FR\"<tool_call|>}<|\"|>,days:3}<tool_call|><|tool_response>";
    let body = "call:get_weather{city:<|\"|>Paris, \"FR\"<tool_call|>}<|\"|>,days:3}";
    let call =
        ToolCall { name: "get_weather".into(), arguments: json!({"city": "Paris, \"FR\"<tool_call|>}", "days": 3}) };
    let want = vec![text(Channel::Answer, "Sure."), text(Channel::ToolCall, body), ReplyEvent::ToolCall(call)];
    for pieces in splits(reply) {
        let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
        assert_eq!(run(&pieces), want, "{pieces:?}");
    }
}

#[test]
fn cut_off_and_malformed_calls() {
    let events = run(&["<|tool_call>call:f{a:1"]);
    assert!(matches!(events.last(), Some(ReplyEvent::BadToolCall { why, .. }) if why.contains("ended")));
    let events = run(&["<|tool_call>f{a:1}<tool_call|>"]);
    assert!(matches!(events.last(), Some(ReplyEvent::BadToolCall { text, .. }) if text == "f{a:1}"));
    assert!(parse_reply("<|tool_call>call:f{a:1<tool_call|>").is_err());
}

#[test]
fn parses_every_value_kind() {
    let text = "call:set{ s:<|\"|>a:b,{c}[d]<|\"|>, i:-12, u:18446744073709551615, f:2.5, e:1e-05, t:true, \
                n:null, py:None, T:True, list:[1,<|\"|>x<|\"|>,[],{}], obj:{k:{<|\"|>quoted key<|\"|>:false}}, \
                empty:<|\"|><|\"|>, bare:hello world}";
    let call = ToolCall::parse(text).unwrap();
    assert_eq!(call.name, "set");
    assert_eq!(
        call.arguments,
        json!({
            "s": "a:b,{c}[d]", "i": -12, "u": 18446744073709551615u64, "f": 2.5, "e": 1e-5, "t": true,
            "n": null, "py": null, "T": true, "list": [1, "x", [], {}], "obj": {"k": {"quoted key": false}},
            "empty": "", "bare": "hello world"
        })
    );
    assert_eq!(ToolCall::parse("<|tool_call>call:noargs{}<tool_call|>").unwrap().arguments, json!({}));
}

#[test]
fn rejects_malformed_calls() {
    for bad in [
        "",
        "call:",
        "call:{a:1}",
        "call:f",
        "call:f{a:1",
        "call:f{a:<|\"|>open}",
        "call:f{a:1}}",
        "call:f{a 1}",
        "call:f{a:[1,2}",
        "call:f[1]",
        "f{a:1}",
    ] {
        assert!(ToolCall::parse(bad).is_err(), "{bad:?}");
    }
    let deep = format!("call:f{{a:{}{}}}", "[".repeat(100), "]".repeat(100));
    assert!(ToolCall::parse(&deep).is_err());
}

#[test]
fn gemma4_syntax_round_trips() {
    let args = json!({
        "query": "C'est \"ça\", {x}: [y] \n<b>", "limit": 10, "ratio": 0.25, "exact": false, "none": null,
        "filters": {"tags": ["a", "b"], "range": {"from": -1, "to": 1e20}}, "Zeta": [], "alpha": {}
    });
    let call = ToolCall { name: "search_web".into(), arguments: args };
    let written = call.to_gemma4();
    assert!(written.starts_with("call:search_web{alpha:{},exact:false,"), "{written}");
    assert_eq!(ToolCall::parse(&written).unwrap(), call);
}

#[test]
fn whole_reply_and_message() {
    let reply = parse_reply(
        "<|channel>thought\nneed weather<channel|><|tool_call>call:weather{city:<|\"|>Oslo<|\"|>}<tool_call|>\
         <|tool_call>call:time{}<tool_call|><|tool_response>",
    )
    .unwrap();
    assert_eq!(reply.thinking, "need weather");
    assert_eq!(reply.content, "");
    assert_eq!(reply.tool_calls.len(), 2);
    assert_eq!(
        reply.to_message(),
        json!({"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "weather", "arguments": {"city": "Oslo"}}},
            {"type": "function", "function": {"name": "time", "arguments": {}}}
        ]})
    );
}
