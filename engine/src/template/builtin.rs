//! The built-in chat templates, used when a checkpoint ships none: each family's turn format
//! ([`crate::chat::ChatFormat`]) written as Jinja, so that every prompt goes through one renderer.
//! Like the checkpoints' own templates they open with `bos_token`.

use crate::config::Arch;

/// Gemma 4: `<|turn>{role}\n{content}<turn|>\n` per message (`assistant` is `model`), then
/// `<|turn>model\n` with `add_generation_prompt`. Image and audio parts become their
/// placeholder tokens.
pub const GEMMA4: &str = r#"{%- macro content(message) -%}
{%- if message['content'] is string -%}
{{- message['content'] -}}
{%- elif message['content'] is iterable -%}
{%- for part in message['content'] -%}
{%- if part['type'] == 'text' -%}{{- part['text'] -}}
{%- elif part['type'] == 'image' -%}{{- '<|image|>' -}}
{%- elif part['type'] == 'audio' -%}{{- '<|audio|>' -}}
{%- endif -%}
{%- endfor -%}
{%- endif -%}
{%- endmacro -%}
{{- bos_token -}}
{%- for message in messages -%}
{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
{{- '<|turn>' ~ role ~ '\n' ~ content(message) ~ '<turn|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|turn>model\n' -}}{%- endif -%}
"#;

/// Gemma 3: `<start_of_turn>{role}\n{content}<end_of_turn>\n`; there is no system turn, so
/// system text (followed by a blank line) opens the next user turn.
pub const GEMMA3: &str = r#"{%- macro content(message) -%}
{%- if message['content'] is string -%}
{{- message['content'] -}}
{%- elif message['content'] is iterable -%}
{%- for part in message['content'] -%}
{%- if part['type'] == 'text' -%}{{- part['text'] -}}
{%- elif part['type'] == 'image' -%}{{- '<start_of_image>' -}}
{%- endif -%}
{%- endfor -%}
{%- endif -%}
{%- endmacro -%}
{{- bos_token -}}
{%- set ns = namespace(system='') -%}
{%- for message in messages -%}
{%- if message['role'] == 'system' -%}
{%- set ns.system = ns.system ~ content(message) ~ '\n\n' -%}
{%- else -%}
{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
{{- '<start_of_turn>' ~ role ~ '\n' -}}
{%- if role == 'user' -%}{{- ns.system -}}{%- set ns.system = '' -%}{%- endif -%}
{{- content(message) ~ '<end_of_turn>\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<start_of_turn>model\n' -}}{%- endif -%}
"#;

/// The built-in template of a family.
pub fn for_arch(arch: Arch) -> &'static str {
    match arch {
        Arch::Gemma4 => GEMMA4,
        Arch::Gemma3 => GEMMA3,
    }
}
