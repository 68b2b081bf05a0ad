//! Gemma chat formats: each message is a turn `<|turn>{role}\n{text}<turn|>\n`, and a prompt for
//! the model's reply ends with `<|turn>model\n` (Gemma 4). Gemma 3 spells the markers
//! `<start_of_turn>` / `<end_of_turn>` and has no system role: system text opens the first user
//! turn. [`ChatFormat::for_arch`] picks the family's format.
//!
//! `<bos>` is not part of the formatted text: [`crate::tokenizer::Tokenizer::encode`] with
//! `add_bos = true` adds it. The model ends its turn with the end marker (id 106), a stop token.

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Instructions for the model (`system`).
    System,
    /// The person talking to the model (`user`).
    User,
    /// The model itself (`model`), e.g. earlier replies in a conversation.
    Model,
}

impl Role {
    /// The role's name in the turn header: `"system"`, `"user"` or `"model"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Model => "model",
        }
    }
}

/// One message of a conversation.
#[derive(Clone, Debug)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its text, inserted verbatim.
    pub content: String,
}

impl Message {
    /// A message from `role` with `content`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into() }
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
                system.push_str(&m.content);
                system.push_str("\n\n");
                continue;
            }
            out.push_str(self.start);
            out.push_str(m.role.as_str());
            out.push('\n');
            if m.role == Role::User {
                out.push_str(&std::mem::take(&mut system));
            }
            out.push_str(&m.content);
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
    fn gemma3_format_folds_system_into_the_first_user_turn() {
        let text = ChatFormat::GEMMA3.format(&conversation(), true);
        assert_eq!(
            text,
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n\
             <start_of_turn>user\nCapital of France?<end_of_turn>\n<start_of_turn>model\n"
        );
    }
}
