//! Reading Gemma 4's replies: which text is thinking, which the answer, which a tool call, and
//! the tool calls as JSON.
//!
//! The model writes its thinking as `<|channel>thought\n...<channel|>`, then the answer; a tool
//! call as `<|tool_call>call:NAME{key:value,...}<tool_call|>`, strings quoted as `<|"|>...<|"|>`,
//! keys bare, numbers, `true`/`false`, lists `[...]` and objects `{...}` as the chat template
//! writes arguments. After its calls it writes `<|tool_response>` and waits for the results: treat
//! that token (id 50 in Gemma 4's vocabulary) as a stop token, as `<turn|>`.
//!
//! In Gemma 4's vocabulary every marker is one special token, which
//! [`crate::tokenizer::StreamDecoder`] decodes to its text: `<|channel>` 100, `<channel|>` 101,
//! `<|tool_call>` 48, `<tool_call|>` 49, `<|"|>` 52, `<|tool_response>` 50.
//!
//! [`ReplyParser`] classifies text as it streams, piece by piece (markers may arrive whole, as
//! their special tokens, or split across pieces); [`parse_reply`] reads a whole reply.

use crate::error::{Error, Result};
use serde_json::{Map, Number, Value};

/// Opens a channel (`<|channel>thought\n`).
pub const CHANNEL_START: &str = "<|channel>";
/// Closes a channel.
pub const CHANNEL_END: &str = "<channel|>";
/// Opens a tool call.
pub const TOOL_CALL_START: &str = "<|tool_call>";
/// Closes a tool call.
pub const TOOL_CALL_END: &str = "<tool_call|>";
/// Opens and closes a string inside a tool call.
pub const QUOTE: &str = "<|\"|>";
/// Written by the model after its tool calls: the results go here.
pub const TOOL_RESPONSE_START: &str = "<|tool_response>";

/// Deeper argument nesting than this is refused (a guard for the recursive parser).
const MAX_DEPTH: usize = 64;
/// A channel name longer than this is not a name: the text is thinking.
const MAX_CHANNEL_NAME: usize = 64;

/// What a piece of reply text is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// The answer shown to the user.
    Answer,
    /// Thinking (the `thought` channel, or any other named channel).
    Thought,
    /// The text of a tool call (`call:NAME{...}`), as it streams.
    ToolCall,
}

pub use crate::chat::ToolCall;

/// What [`ReplyParser`] reports.
#[derive(Clone, Debug, PartialEq)]
pub enum ReplyEvent {
    /// Text of one channel, markers removed.
    Text {
        /// Which part of the reply it is.
        channel: Channel,
        /// The text.
        text: String,
    },
    /// A tool call, complete and parsed.
    ToolCall(ToolCall),
    /// A tool call that did not parse, or was cut off.
    BadToolCall {
        /// The call's text between the markers.
        text: String,
        /// What is wrong with it.
        why: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Answer,
    /// After `<|channel>`, reading the channel's name up to its newline.
    ChannelName,
    Thought,
    ToolCall {
        in_string: bool,
    },
}

/// Classifies a streamed reply: [`ReplyParser::push`] each decoded piece, then
/// [`ReplyParser::finish`].
#[derive(Clone, Debug)]
pub struct ReplyParser {
    state: State,
    /// Text not classified yet: it may be the start of a marker.
    pending: String,
    /// The current tool call's text.
    call: String,
    /// The current channel's name, while it is read.
    name: String,
}

impl Default for ReplyParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplyParser {
    /// A parser at the start of a reply (in the answer).
    pub fn new() -> Self {
        ReplyParser { state: State::Answer, pending: String::new(), call: String::new(), name: String::new() }
    }

    /// The channel the next text belongs to.
    pub fn channel(&self) -> Channel {
        match self.state {
            State::Answer => Channel::Answer,
            State::ChannelName | State::Thought => Channel::Thought,
            State::ToolCall { .. } => Channel::ToolCall,
        }
    }

    /// Feeds the next piece of decoded text; returns what it completes. Text that may begin a
    /// marker is held until the next piece tells.
    pub fn push(&mut self, piece: &str) -> Vec<ReplyEvent> {
        self.pending.push_str(piece);
        let mut events = Vec::new();
        loop {
            let markers = self.markers();
            let found = markers.iter().filter_map(|m| self.pending.find(m).map(|i| (i, *m))).min_by_key(|(i, _)| *i);
            match found {
                Some((i, marker)) => {
                    let before = self.pending[..i].to_string();
                    self.pending.drain(..i + marker.len());
                    self.text(&before, &mut events);
                    self.marker(marker, &mut events);
                }
                None => {
                    let keep = held_back(&self.pending, &markers);
                    let ready: String = self.pending.drain(..self.pending.len() - keep).collect();
                    self.text(&ready, &mut events);
                    return events;
                }
            }
        }
    }

    /// Ends the reply: flushes held text; a tool call still open is reported as cut off.
    pub fn finish(&mut self) -> Vec<ReplyEvent> {
        let mut events = Vec::new();
        let rest = std::mem::take(&mut self.pending);
        self.text(&rest, &mut events);
        if self.state == State::ChannelName && !self.name.is_empty() {
            let name = std::mem::take(&mut self.name);
            push_text(&mut events, Channel::Thought, &name);
        }
        if let State::ToolCall { .. } = self.state {
            let text = std::mem::take(&mut self.call);
            events.push(ReplyEvent::BadToolCall { text, why: "the reply ended inside a tool call".into() });
        }
        self.state = State::Answer;
        events
    }

    /// The markers that change the state from here.
    fn markers(&self) -> Vec<&'static str> {
        match self.state {
            State::Answer => vec![CHANNEL_START, TOOL_CALL_START, TOOL_RESPONSE_START],
            State::ChannelName => vec![CHANNEL_END, "\n"],
            State::Thought => vec![CHANNEL_END],
            State::ToolCall { in_string: true } => vec![QUOTE],
            State::ToolCall { in_string: false } => vec![QUOTE, TOOL_CALL_END],
        }
    }

    fn text(&mut self, text: &str, events: &mut Vec<ReplyEvent>) {
        if text.is_empty() {
            return;
        }
        match self.state {
            State::Answer => push_text(events, Channel::Answer, text),
            State::Thought => push_text(events, Channel::Thought, text),
            State::ChannelName => {
                self.name.push_str(text);
                if self.name.len() > MAX_CHANNEL_NAME {
                    let name = std::mem::take(&mut self.name);
                    self.state = State::Thought;
                    push_text(events, Channel::Thought, &name);
                }
            }
            State::ToolCall { .. } => {
                self.call.push_str(text);
                push_text(events, Channel::ToolCall, text);
            }
        }
    }

    fn marker(&mut self, marker: &str, events: &mut Vec<ReplyEvent>) {
        self.state = match (self.state, marker) {
            (State::Answer, CHANNEL_START) => {
                self.name.clear();
                State::ChannelName
            }
            (State::Answer, TOOL_CALL_START) => {
                self.call.clear();
                State::ToolCall { in_string: false }
            }
            // The model hands over to the tools: nothing to show.
            (State::Answer, _) => State::Answer,
            (State::ChannelName, "\n") => {
                self.name.clear();
                State::Thought
            }
            (State::ChannelName | State::Thought, _) => {
                self.name.clear();
                State::Answer
            }
            (State::ToolCall { in_string }, QUOTE) => {
                self.call.push_str(QUOTE);
                push_text(events, Channel::ToolCall, QUOTE);
                State::ToolCall { in_string: !in_string }
            }
            (State::ToolCall { .. }, _) => {
                let text = std::mem::take(&mut self.call);
                events.push(match ToolCall::parse(&text) {
                    Ok(call) => ReplyEvent::ToolCall(call),
                    Err(e) => ReplyEvent::BadToolCall { text, why: e.to_string() },
                });
                State::Answer
            }
        };
    }
}

/// Appends text to the last event when it is text of the same channel.
fn push_text(events: &mut Vec<ReplyEvent>, channel: Channel, text: &str) {
    if text.is_empty() {
        return;
    }
    if let Some(ReplyEvent::Text { channel: c, text: t }) = events.last_mut() {
        if *c == channel {
            t.push_str(text);
            return;
        }
    }
    events.push(ReplyEvent::Text { channel, text: text.to_string() });
}

/// Bytes at the end of `text` that are a proper prefix of a marker (so may complete it).
fn held_back(text: &str, markers: &[&str]) -> usize {
    let mut keep = 0;
    for m in markers {
        for n in (1..m.len()).rev() {
            if n <= keep {
                break;
            }
            if text.len() >= n && text.is_char_boundary(text.len() - n) && text.ends_with(&m[..n]) {
                keep = n;
                break;
            }
        }
    }
    keep
}

/// A whole reply, split.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reply {
    /// The thinking, channels concatenated.
    pub thinking: String,
    /// The answer.
    pub content: String,
    /// The tool calls, in order.
    pub tool_calls: Vec<ToolCall>,
}

impl Reply {
    /// The assistant message to append to the conversation, in the form chat templates read:
    /// `{"role": "assistant", "content": ..., "tool_calls": [...]}` (thinking left out, as the
    /// Gemma 4 template drops it from earlier turns).
    pub fn to_message(&self) -> Value {
        let mut m = Map::new();
        m.insert("role".into(), "assistant".into());
        m.insert("content".into(), self.content.clone().into());
        if !self.tool_calls.is_empty() {
            m.insert("tool_calls".into(), self.tool_calls.iter().map(ToolCall::to_json).collect());
        }
        Value::Object(m)
    }
}

/// Splits a whole reply into thinking, answer and tool calls; a malformed tool call is an error.
pub fn parse_reply(text: &str) -> Result<Reply> {
    let mut parser = ReplyParser::new();
    let mut events = parser.push(text);
    events.extend(parser.finish());
    let mut reply = Reply::default();
    for e in events {
        match e {
            ReplyEvent::Text { channel: Channel::Answer, text } => reply.content.push_str(&text),
            ReplyEvent::Text { channel: Channel::Thought, text } => reply.thinking.push_str(&text),
            ReplyEvent::Text { channel: Channel::ToolCall, .. } => {}
            ReplyEvent::ToolCall(call) => reply.tool_calls.push(call),
            ReplyEvent::BadToolCall { why, .. } => return Err(Error::Template(format!("bad tool call: {why}"))),
        }
    }
    Ok(reply)
}

impl ToolCall {
    /// Parses a call's text: `call:NAME{key:value,...}`, with or without the
    /// `<|tool_call>`/`<tool_call|>` markers around it.
    pub fn parse(text: &str) -> Result<ToolCall> {
        let text = text.trim();
        let text = text.strip_prefix(TOOL_CALL_START).unwrap_or(text);
        let text = text.strip_suffix(TOOL_CALL_END).unwrap_or(text).trim();
        let bad = |why: &str| Error::Template(format!("tool call {}: {why}", crate::error::escape(text)));
        let rest = text.strip_prefix("call:").ok_or_else(|| bad("does not start with `call:`"))?;
        let brace = rest.find('{').ok_or_else(|| bad("no `{` after the name"))?;
        let name = rest[..brace].trim();
        if name.is_empty() {
            return Err(bad("no function name"));
        }
        let mut p = Parser { s: &rest[brace..], depth: 0 };
        let arguments = p.value().map_err(|why| bad(&why))?;
        if !arguments.is_object() {
            return Err(bad("the arguments are not an object"));
        }
        p.skip_ws();
        if !p.s.is_empty() {
            return Err(bad(&format!("unexpected text after the arguments: {}", p.s)));
        }
        Ok(ToolCall { name: name.to_string(), arguments })
    }

    /// The call in Gemma 4's syntax, as the model writes it (keys sorted, without the markers).
    pub fn to_gemma4(&self) -> String {
        let mut out = format!("call:{}", self.name);
        write_value(&self.arguments, &mut out);
        out
    }
}

/// Gemma 4's argument syntax for a JSON value: bare keys, `<|"|>`-quoted strings.
fn write_value(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push_str(QUOTE);
            out.push_str(s);
            out.push_str(QUOTE);
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by_key(|k| k.to_lowercase());
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push(':');
                write_value(&map[k], out);
            }
            out.push('}');
        }
        // As the template prints it (Python's `str(None)`); the parser reads `null` too.
        Value::Null => out.push_str("None"),
        // Floats as Python prints them (`1e-07`, `1e+20`), which is what the template writes.
        Value::Number(n) if n.is_f64() => out.push_str(&crate::template::python::float_repr(n.as_f64().unwrap_or(0.0))),
        other => out.push_str(&other.to_string()),
    }
}

/// A recursive-descent reader of Gemma 4's argument syntax.
struct Parser<'a> {
    s: &'a str,
    depth: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        self.s = self.s.trim_start();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        match self.s.strip_prefix(token) {
            Some(rest) => {
                self.s = rest;
                true
            }
            None => false,
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_ws();
        if self.eat(QUOTE) {
            return self.quoted().map(Value::String);
        }
        if self.s.starts_with('{') || self.s.starts_with('[') {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err("arguments nested too deep".into());
            }
            let v = if self.eat("{") {
                self.object()
            } else {
                self.eat("[");
                self.array()
            };
            self.depth -= 1;
            return v;
        }
        // A bare scalar runs to the next `,`, `}` or `]`.
        let end = self.s.find([',', '}', ']']).unwrap_or(self.s.len());
        let word = self.s[..end].trim();
        self.s = &self.s[end..];
        Ok(scalar(word))
    }

    fn quoted(&mut self) -> Result<String, String> {
        let end = self.s.find(QUOTE).ok_or("a string is not closed")?;
        let text = self.s[..end].to_string();
        self.s = &self.s[end + QUOTE.len()..];
        Ok(text)
    }

    fn object(&mut self) -> Result<Value, String> {
        let mut map = Map::new();
        if self.eat("}") {
            return Ok(Value::Object(map));
        }
        loop {
            let key = if self.eat(QUOTE) {
                self.quoted()?
            } else {
                let end = self.s.find(':').ok_or("a key has no `:`")?;
                let key = self.s[..end].trim();
                if key.is_empty() || key.contains([',', '{', '}', '[', ']']) {
                    return Err(format!("bad key {key:?}"));
                }
                self.s = &self.s[end..];
                key.to_string()
            };
            if !self.eat(":") {
                return Err(format!("no `:` after key {key:?}"));
            }
            let value = self.value()?;
            map.insert(key, value);
            if self.eat(",") {
                continue;
            }
            if self.eat("}") {
                return Ok(Value::Object(map));
            }
            return Err("expected `,` or `}` in an object".into());
        }
    }

    fn array(&mut self) -> Result<Value, String> {
        let mut items = Vec::new();
        if self.eat("]") {
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value()?);
            if self.eat(",") {
                continue;
            }
            if self.eat("]") {
                return Ok(Value::Array(items));
            }
            return Err("expected `,` or `]` in a list".into());
        }
    }
}

/// An unquoted value: a boolean, null (also Python's `None`), a number, else the text itself.
fn scalar(word: &str) -> Value {
    match word {
        "true" | "True" => return Value::Bool(true),
        "false" | "False" => return Value::Bool(false),
        "null" | "None" | "none" => return Value::Null,
        _ => {}
    }
    if let Ok(i) = word.parse::<i64>() {
        return Value::Number(i.into());
    }
    if let Ok(u) = word.parse::<u64>() {
        return Value::Number(u.into());
    }
    let numeric = word.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    if numeric {
        if let Some(n) = word.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(word.to_string())
}

#[cfg(test)]
mod tests;
