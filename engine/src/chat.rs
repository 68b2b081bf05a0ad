//! Gemma chat formats: each message is a turn `<|turn>{role}\n{text}<turn|>\n`, and a prompt for
//! the model's reply ends with `<|turn>model\n` (Gemma 4). Gemma 3 spells the markers
//! `<start_of_turn>` / `<end_of_turn>` and has no system role: system text opens the first user
//! turn. [`ChatFormat::for_arch`] picks the family's format.
//!
//! `<bos>` is not part of the formatted text: [`crate::tokenizer::Tokenizer::encode`] with
//! `add_bos = true` adds it. The model ends its turn with the end marker (id 106), a stop token.

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// Instructions for the model (`system`).
    System,
    /// The person talking to the model (`user`).
    User,
    /// The model itself (`model`), e.g. earlier replies in a conversation.
    Model,
    /// Results of tool calls the model made (`tool`), given back to it.
    Tool,
}

impl Role {
    /// The role's name in Gemma's turn header: `"system"`, `"user"`, `"model"` or `"tool"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Model => "model",
            Role::Tool => "tool",
        }
    }

    /// The role's name in a Hugging Face chat dict: as [`Role::as_str`], but `"assistant"` for
    /// the model (Gemma's chat templates map it to `model`).
    pub fn hf_name(self) -> &'static str {
        match self {
            Role::Model => "assistant",
            r => r.as_str(),
        }
    }
}

/// One piece of a message's content. Only text for now; images and audio are added later.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Part {
    /// Text, inserted verbatim.
    Text(String),
}

/// A call of a tool (a function) the model made, as in a Hugging Face chat dict's `tool_calls`.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    /// The function's name.
    pub name: String,
    /// Its arguments: usually a JSON object of argument names to values.
    pub arguments: serde_json::Value,
}

impl ToolCall {
    /// A call of `name` with `arguments`.
    pub fn new(name: impl Into<String>, arguments: serde_json::Value) -> Self {
        Self { name: name.into(), arguments }
    }

    /// The call as chat templates read it in an assistant message's `tool_calls`:
    /// `{"type": "function", "function": {"name": .., "arguments": ..}}`. Parsing the model's text
    /// and writing it back in Gemma 4's syntax: [`crate::reply`].
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"type": "function", "function": {"name": self.name, "arguments": self.arguments}})
    }
}

/// What a tool returned, as in a Gemma chat dict's `tool_responses`.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolResponse {
    /// The function that was called.
    pub name: String,
    /// What it returned: a JSON object, or a string.
    pub response: serde_json::Value,
}

impl ToolResponse {
    /// `name`'s result `response`.
    pub fn new(name: impl Into<String>, response: serde_json::Value) -> Self {
        Self { name: name.into(), response }
    }

    /// `{"name": .., "response": ..}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"name": self.name, "response": self.response})
    }
}

/// One message of a conversation: its author, its content parts, and the tool calls (model
/// messages) or tool results (tool messages) it carries. Build one with [`Message::new`],
/// [`Message::user`], [`Message::system`], [`Message::model`] or [`Message::tool`]; new fields
/// (images, audio) may be added.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its content, in order.
    pub content: Vec<Part>,
    /// Tools the model called in this message.
    pub tool_calls: Vec<ToolCall>,
    /// Results of tool calls, given back to the model.
    pub tool_responses: Vec<ToolResponse>,
}

impl Message {
    /// A message from `role` whose content is `text`.
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Self { role, content: vec![Part::Text(text.into())], tool_calls: Vec::new(), tool_responses: Vec::new() }
    }

    /// A user message.
    pub fn user(text: impl Into<String>) -> Self {
        Self::new(Role::User, text)
    }

    /// A system message.
    pub fn system(text: impl Into<String>) -> Self {
        Self::new(Role::System, text)
    }

    /// A message from the model (an earlier reply).
    pub fn model(text: impl Into<String>) -> Self {
        Self::new(Role::Model, text)
    }

    /// A tool message giving back `responses`, without text.
    pub fn tool(responses: Vec<ToolResponse>) -> Self {
        Self { role: Role::Tool, content: Vec::new(), tool_calls: Vec::new(), tool_responses: responses }
    }

    /// This message with `calls` as its tool calls.
    pub fn with_tool_calls(mut self, calls: Vec<ToolCall>) -> Self {
        self.tool_calls = calls;
        self
    }

    /// This message with `part` appended to its content.
    pub fn with_part(mut self, part: Part) -> Self {
        self.content.push(part);
        self
    }

    /// The text parts of the content, concatenated.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.as_str(),
            })
            .collect()
    }

    /// The message as a Hugging Face chat dict, the input of a chat template:
    /// `{"role": "user" | "system" | "assistant" | "tool", "content": ...}`, where the content
    /// is a string when it is one text part (or none: `""`), else a list of
    /// `{"type": "text", "text": ...}`; plus `"tool_calls": [{"type": "function", "function":
    /// {"name", "arguments"}}]` and `"tool_responses": [{"name", "response"}]` when present.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{json, Value};
        let content = match self.content.as_slice() {
            [] => Value::String(String::new()),
            [Part::Text(t)] => Value::String(t.clone()),
            parts => Value::Array(
                parts
                    .iter()
                    .map(|p| match p {
                        Part::Text(t) => json!({"type": "text", "text": t}),
                    })
                    .collect(),
            ),
        };
        let mut m = serde_json::Map::new();
        m.insert("role".into(), Value::String(self.role.hf_name().into()));
        m.insert("content".into(), content);
        if !self.tool_calls.is_empty() {
            m.insert("tool_calls".into(), self.tool_calls.iter().map(ToolCall::to_json).collect());
        }
        if !self.tool_responses.is_empty() {
            m.insert("tool_responses".into(), self.tool_responses.iter().map(ToolResponse::to_json).collect());
        }
        Value::Object(m)
    }
}

/// Opens a turn.
pub const TURN_START: &str = "<|turn>";
/// Closes a turn.
pub const TURN_END: &str = "<turn|>";

/// A family's turn markers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChatFormat {
    /// Opens a turn (`<|turn>`, Gemma 3: `<start_of_turn>`).
    pub start: &'static str,
    /// Closes a turn, and is the model's stop token (`<turn|>`, Gemma 3: `<end_of_turn>`).
    pub end: &'static str,
    /// Whether `system` turns exist (Gemma 4); else system text opens the first user turn.
    pub system_turns: bool,
}

impl ChatFormat {
    /// Gemma 4's format.
    pub const GEMMA4: ChatFormat = ChatFormat { start: TURN_START, end: TURN_END, system_turns: true };
    /// Gemma 3's format.
    pub const GEMMA3: ChatFormat = ChatFormat { start: "<start_of_turn>", end: "<end_of_turn>", system_turns: false };

    /// The format of a model family.
    pub fn for_arch(arch: crate::config::Arch) -> ChatFormat {
        match arch {
            crate::config::Arch::Gemma4 => ChatFormat::GEMMA4,
            crate::config::Arch::Gemma3 => ChatFormat::GEMMA3,
        }
    }

    /// Formats `messages` as turns, without `<bos>`; with `add_generation_prompt`, appends the
    /// opening of a model turn so the model writes the next reply.
    pub fn format(&self, messages: &[Message], add_generation_prompt: bool) -> String {
        let mut out = String::new();
        let mut system = String::new();
        for m in messages {
            if m.role == Role::System && !self.system_turns {
                system.push_str(&m.text());
                system.push_str("\n\n");
                continue;
            }
            out.push_str(self.start);
            out.push_str(m.role.as_str());
            out.push('\n');
            if m.role == Role::User {
                out.push_str(&std::mem::take(&mut system));
            }
            out.push_str(&m.text());
            out.push_str(self.end);
            out.push('\n');
        }
        if add_generation_prompt {
            out.push_str(self.start);
            out.push_str(Role::Model.as_str());
            out.push('\n');
        }
        out
    }
}

/// Formats `messages` as Gemma 4 turns (see [`ChatFormat::format`]).
pub fn format_chat(messages: &[Message], add_generation_prompt: bool) -> String {
    ChatFormat::GEMMA4.format(messages, add_generation_prompt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::Tokenizer;

    fn conversation() -> Vec<Message> {
        vec![
            Message::new(Role::System, "Be brief."),
            Message::new(Role::User, "Hi"),
            Message::new(Role::Model, "Hello!"),
            Message::new(Role::User, "Capital of France?"),
        ]
    }

    #[test]
    fn exact_strings() {
        let one = [Message::new(Role::User, "Hello")];
        assert_eq!(format_chat(&one, true), "<|turn>user\nHello<turn|>\n<|turn>model\n");
        assert_eq!(format_chat(&one, false), "<|turn>user\nHello<turn|>\n");
        assert_eq!(format_chat(&[], true), "<|turn>model\n");
        assert_eq!(format_chat(&[], false), "");
        assert_eq!(
            format_chat(&conversation(), true),
            "<|turn>system\nBe brief.<turn|>\n<|turn>user\nHi<turn|>\n\
             <|turn>model\nHello!<turn|>\n<|turn>user\nCapital of France?<turn|>\n\
             <|turn>model\n"
        );
    }

    #[test]
    fn encodes_turn_tokens() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/gemma4-tiny/dense_31b_like/bf16/tokenizer.json");
        let tok = Tokenizer::from_file(std::path::Path::new(path)).unwrap();
        let text = format_chat(&[Message::new(Role::User, "Hi")], true);
        let ids = tok.encode(&text, true).unwrap();
        let piece = |s: &str| tok.encode(s, false).unwrap();
        let mut want = vec![2, 105];
        want.extend(piece("user\nHi"));
        want.extend([106]);
        want.extend(piece("\n"));
        want.extend([105]);
        want.extend(piece("model\n"));
        assert_eq!(ids, want);
        assert_eq!(tok.decode(&ids).unwrap(), format!("<bos>{text}"));

        let ids = tok.encode(&format_chat(&conversation(), true), true).unwrap();
        let count = |id| ids.iter().filter(|&&i| i == id).count();
        assert_eq!((count(105), count(106)), (5, 4));
        assert_eq!(ids[..2], [2, 105]);
        let last_start = ids.iter().rposition(|&i| i == 105).unwrap();
        assert_eq!(tok.decode(&ids[last_start..]).unwrap(), "<|turn>model\n");
    }

    #[test]
    fn messages_as_hf_chat_dicts() {
        use serde_json::json;
        assert_eq!(Message::user("Hi").to_json(), json!({"role": "user", "content": "Hi"}));
        assert_eq!(Message::model("Yo").to_json(), json!({"role": "assistant", "content": "Yo"}));
        let two = Message::system("a").with_part(Part::Text("b".into()));
        assert_eq!(two.text(), "ab");
        assert_eq!(
            two.to_json(),
            json!({"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]})
        );
        let call = Message::model("").with_tool_calls(vec![ToolCall::new("get_weather", json!({"city": "Paris"}))]);
        assert_eq!(
            call.to_json(),
            json!({"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]})
        );
        let back = Message::tool(vec![ToolResponse::new("get_weather", json!({"temp": 21}))]);
        assert_eq!(
            back.to_json(),
            json!({"role": "tool", "content": "", "tool_responses": [{"name": "get_weather", "response": {"temp": 21}}]})
        );
    }

    #[test]
    fn gemma3_format_folds_system_into_the_first_user_turn() {
        let text = ChatFormat::GEMMA3.format(&conversation(), true);
        assert_eq!(
            text,
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n\
             <start_of_turn>user\nCapital of France?<end_of_turn>\n<start_of_turn>model\n"
        );
    }
}
