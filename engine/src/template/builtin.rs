//! The built-in chat templates, used when a checkpoint ships none: each family's turn format
//! ([`crate::chat::ChatFormat`]) written as Jinja, so that every prompt goes through one renderer.
//! Like the checkpoints' own templates they open with `bos_token`.

use crate::config::Arch;

/// Gemma 4: `<|turn>{role}\n{content}<turn|>\n` per message (`assistant` is `model`), then
/// `<|turn>model\n` with `add_generation_prompt`. Image and audio parts become their
/// placeholder tokens.
pub const GEMMA4: &str = include_str!("gemma4.jinja");

/// Gemma 3: `<start_of_turn>{role}\n{content}<end_of_turn>\n`; there is no system turn, so
/// system text (followed by a blank line) opens the next user turn.
pub const GEMMA3: &str = include_str!("gemma3.jinja");

/// The built-in template of a family.
pub fn for_arch(arch: Arch) -> &'static str {
    match arch {
        Arch::Gemma4 => GEMMA4,
        Arch::Gemma3 => GEMMA3,
    }
}
