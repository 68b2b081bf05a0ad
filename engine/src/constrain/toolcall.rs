//! Gemma 4 tool calls as a Lark grammar: `<|tool_call>call:NAME{key:value,...}<tool_call|>`, the
//! arguments written the way Gemma 4's chat template renders a call it is shown (so the way the
//! model was trained to write one): keys bare and in sorted order (Jinja's `dictsort`, which
//! ignores case), strings between `<|"|>` tokens, numbers and `true`/`false` as in JSON, objects
//! `{key:value,...}` and arrays `[value,...]` nested the same way.
//!
//! Supported parameter schemas: `string` (`enum`, `minLength`/`maxLength` or `pattern`),
//! `integer`/`number` (bounds), `boolean`, `enum`/`const` of scalars, `object` (`properties`,
//! `required`; others optional) and `array` (`items`, `minItems`/`maxItems`), nested up to
//! [`MAX_DEPTH`] levels. Anything else is an error rather than a looser grammar.

use serde_json::{Map, Value};

use super::Constraint;
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

/// The special tokens a Gemma 4 tool call is made of.
const OPEN: &str = "<|tool_call>";
const CLOSE: &str = "<tool_call|>";
const QUOTE: &str = "<|\"|>";

/// A character of a string value: not `<`, not a control character but tab and newlines.
const STRING_CHAR: &str = r"[^<\x00-\x08\x0B\x0C\x0E-\x1F\x7F]";

/// Object / array nesting below the arguments object that a schema may use.
pub const MAX_DEPTH: usize = 4;

/// The Lark grammar of one Gemma 4 call of tool `name` whose arguments follow `parameters` (the
/// JSON schema of the tool's arguments object, as in a tool declaration): exactly
/// `<|tool_call>call:NAME{...}<tool_call|>`, nothing before or after. Required properties are
/// always written, the others may be.
///
/// String values cannot contain `<` (so the closing `<|"|>` is never spelled out in text) or
/// control characters other than tab and newlines, unless a `pattern` says otherwise. An unsupported schema, or a name that is not `[A-Za-z0-9_.-]+`, is
/// [`Error::Grammar`]. Use it with [`Constraint::lark`], or [`Constraint::gemma4_tool_call`].
pub fn tool_call_grammar(name: &str, parameters: &Value) -> Result<String> {
    let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !name_ok {
        return Err(Error::Grammar(format!("tool name {name:?}: use letters, digits, '_', '.' or '-'")));
    }
    let mut g = Builder { rules: Vec::new() };
    let args = g.object(parameters, "parameters", 0)?;
    let head = lit(&format!("call:{name}"));
    let mut out = format!("start: {OPEN} {head} {args} {CLOSE}\nq: {QUOTE}\n");
    for r in &g.rules {
        out.push_str(r.trim_end());
        out.push('\n');
    }
    Ok(out)
}

impl Constraint {
    /// Replies that are exactly one Gemma 4 call of tool `name` with arguments valid under the
    /// JSON schema `parameters` ([`tool_call_grammar`]). Fails with [`Error::Grammar`] if the
    /// vocabulary lacks the tool-call tokens (not a Gemma 4 tokenizer) or the schema is not
    /// supported.
    pub fn gemma4_tool_call(tok: &Tokenizer, name: &str, parameters: &Value) -> Result<Self> {
        for t in [OPEN, CLOSE, QUOTE] {
            if !tok.token_id(t).is_some_and(|id| tok.is_special(id)) {
                return Err(Error::Grammar(format!("the vocabulary has no special token {t} (not Gemma 4?)")));
            }
        }
        Self::lark(tok, &tool_call_grammar(name, parameters)?)
    }
}

/// Collects one rule per value, so the grammar stays linear in the schema's size.
struct Builder {
    rules: Vec<String>,
}

impl Builder {
    /// Adds rule `body` under a fresh name and returns the name.
    fn rule(&mut self, body: String) -> String {
        let name = format!("r{}", self.rules.len());
        self.rules.push(format!("{name}: {body}"));
        name
    }

    /// The rule for a value under `schema`, at JSON-pointer-ish path `at`.
    fn value(&mut self, schema: &Value, at: &str, depth: usize) -> Result<String> {
        let s = schema.as_object().ok_or_else(|| unsupported(at, "a schema must be an object"))?;
        if let Some(c) = s.get("const") {
            return Ok(self.rule(constant(c, at)?));
        }
        if let Some(e) = s.get("enum") {
            let values = e.as_array().filter(|v| !v.is_empty()).ok_or_else(|| unsupported(at, "empty enum"))?;
            let alts: Result<Vec<String>> = values.iter().map(|v| constant(v, at)).collect();
            return Ok(self.rule(alts?.join(" | ")));
        }
        match s.get("type").and_then(Value::as_str) {
            Some("string") => self.string(s, at),
            Some(t @ ("integer" | "number")) => Ok(self.rule(number(s, t))),
            Some("boolean") => Ok(self.rule("\"true\" | \"false\"".into())),
            Some("object") => self.object(schema, at, depth + 1),
            Some("array") => self.array(s, at, depth + 1),
            None if s.contains_key("properties") => self.object(schema, at, depth + 1),
            Some(t) => Err(unsupported(at, &format!("type {t:?}"))),
            None => Err(unsupported(at, "no type (a type string, enum or const is needed)")),
        }
    }

    fn string(&mut self, s: &Map<String, Value>, at: &str) -> Result<String> {
        let min = usize_kw(s, "minLength", at)?.unwrap_or(0);
        let max = usize_kw(s, "maxLength", at)?;
        if let Some(p) = s.get("pattern") {
            let p = p.as_str().ok_or_else(|| unsupported(at, "pattern must be a string"))?;
            if s.contains_key("minLength") || s.contains_key("maxLength") {
                return Err(unsupported(at, "pattern together with a length"));
            }
            // JSON-schema patterns are unanchored searches; a whole-value pattern is what tools use.
            let p = p.strip_prefix('^').unwrap_or(p);
            let p = p.strip_suffix('$').filter(|q| !q.ends_with('\\')).unwrap_or(p);
            return Ok(self.rule(format!("q /{}/ q", p.replace('/', "\\/"))));
        }
        if max.is_some_and(|m| m < min) {
            return Err(unsupported(at, "maxLength below minLength"));
        }
        let body = match max {
            Some(0) => "q q".to_string(),
            _ => {
                let max = max.map(|m| m.to_string()).unwrap_or_default();
                // A terminal that may match nothing is avoided: optional instead.
                let opt = if min == 0 { "?" } else { "" };
                format!("q /{STRING_CHAR}{{{},{max}}}/{opt} q", min.max(1))
            }
        };
        Ok(self.rule(body))
    }

    /// `{key:value,...}`: properties in `dictsort` order, required ones always present, a comma
    /// between any two written ones.
    fn object(&mut self, schema: &Value, at: &str, depth: usize) -> Result<String> {
        if depth > MAX_DEPTH {
            return Err(unsupported(at, &format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        let empty = Map::new();
        let s = schema.as_object().ok_or_else(|| unsupported(at, "a schema must be an object"))?;
        if let Some(t) = s.get("type").filter(|t| t.as_str() != Some("object")) {
            return Err(unsupported(at, &format!("type {t} where an object is needed")));
        }
        let props = match s.get("properties") {
            None => &empty,
            Some(p) => p.as_object().ok_or_else(|| unsupported(at, "properties must be an object"))?,
        };
        let required: Vec<&str> = match s.get("required") {
            None => Vec::new(),
            Some(r) => {
                let r = r.as_array().ok_or_else(|| unsupported(at, "required must be an array"))?;
                r.iter()
                    .map(|k| k.as_str().ok_or_else(|| unsupported(at, "required must list names")))
                    .collect::<Result<_>>()?
            }
        };
        if let Some(k) = required.iter().find(|k| !props.contains_key(**k)) {
            return Err(unsupported(at, &format!("required property {k:?} is not in properties")));
        }
        let mut keys: Vec<&String> = props.keys().collect();
        keys.sort_by_key(|k| k.to_lowercase());
        // From the last key back: `first` = the rest when nothing is written yet, `after` = the
        // rest after something was (each item then starts with a comma). None: empty.
        let (mut first, mut after): (Option<String>, Option<String>) = (None, None);
        for key in keys.into_iter().rev() {
            if key.is_empty() || key.contains(|c: char| c.is_control()) {
                return Err(unsupported(at, &format!("property name {key:?}")));
            }
            let value = self.value(&props[key.as_str()], &format!("{at}.{key}"), depth)?;
            let pair = format!("{} {value}", lit(&format!("{key}:")));
            let rest = after.clone().unwrap_or_default();
            let (f, a) = if required.contains(&key.as_str()) {
                (format!("{pair} {rest}"), format!("\",\" {pair} {rest}"))
            } else {
                let skip = first.clone().map(|f| format!(" | {f}")).unwrap_or_else(|| " | \"\"".into());
                (format!("{pair} {rest}{skip}"), format!("(\",\" {pair})? {rest}"))
            };
            first = Some(self.rule(f));
            after = Some(self.rule(a));
        }
        Ok(self.rule(format!("\"{{\" {} \"}}\"", first.unwrap_or_default())))
    }

    /// `[value,...]` with `minItems` / `maxItems`.
    fn array(&mut self, s: &Map<String, Value>, at: &str, depth: usize) -> Result<String> {
        if depth > MAX_DEPTH {
            return Err(unsupported(at, &format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        let items = s.get("items").ok_or_else(|| unsupported(at, "an array needs items"))?;
        let min = usize_kw(s, "minItems", at)?.unwrap_or(0);
        let max = usize_kw(s, "maxItems", at)?;
        if max.is_some_and(|m| m < min) {
            return Err(unsupported(at, "maxItems below minItems"));
        }
        if max == Some(0) {
            return Ok(self.rule("\"[\" \"]\"".into()));
        }
        let item = self.value(items, &format!("{at}[]"), depth)?;
        let more_min = min.saturating_sub(1);
        let more = match max {
            Some(1) => String::new(),
            Some(m) => format!("(\",\" {item}){{{more_min},{}}}", m - 1),
            None if more_min == 0 => format!("(\",\" {item})*"),
            None => format!("(\",\" {item}){{{more_min},}}"),
        };
        let opt = if min == 0 { "?" } else { "" };
        Ok(self.rule(format!("\"[\" ({item} {more}){opt} \"]\"")))
    }
}

/// A constant as the template renders it: a string quoted with `<|"|>`, a number or boolean as is.
fn constant(v: &Value, at: &str) -> Result<String> {
    match v {
        Value::String(s) => Ok(format!("q {} q", lit(s))),
        Value::Bool(_) | Value::Number(_) => Ok(lit(&v.to_string())),
        _ => Err(unsupported(at, &format!("constant {v} (only strings, numbers and booleans)"))),
    }
}

/// An integer or number in JSON syntax (which is also the template's), with the schema's bounds
/// enforced by llguidance's own JSON-schema compiler.
fn number(s: &Map<String, Value>, ty: &str) -> String {
    let mut sub = Map::new();
    sub.insert("type".into(), ty.into());
    for k in ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"] {
        if let Some(v) = s.get(k) {
            sub.insert(k.into(), v.clone());
        }
    }
    sub.insert("x-guidance".into(), serde_json::json!({ "whitespace_flexible": false }));
    format!("%json {}", Value::Object(sub))
}

/// A Lark string literal: JSON string syntax, DEL escaped too (Lark's lexer refuses it raw).
fn lit(s: &str) -> String {
    Value::from(s).to_string().replace('\u{7f}', "\\u007f")
}

fn usize_kw(s: &Map<String, Value>, key: &str, at: &str) -> Result<Option<usize>> {
    match s.get(key) {
        None => Ok(None),
        Some(v) => match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) => Ok(Some(n)),
            None => Err(unsupported(at, &format!("{key} must be a non-negative integer"))),
        },
    }
}

fn unsupported(at: &str, what: &str) -> Error {
    Error::Grammar(format!("tool schema {at}: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn grammar_shape() {
        let params = json!({
            "type": "object",
            "properties": {"b": {"type": "boolean"}, "A": {"enum": ["x", 2]}},
            "required": ["A"]
        });
        let g = tool_call_grammar("f", &params).unwrap();
        assert!(g.starts_with("start: <|tool_call> \"call:f\" r"), "{g}");
        assert!(g.contains("r0: \"true\" | \"false\"") && g.contains("q \"x\" q | \"2\""), "{g}");
        // A (required) sorts before b (optional), case ignored.
        let a = g.find("\"A:\"").unwrap();
        let b = g.find("\"b:\"").unwrap();
        assert!(b < a, "rules are built from the last key back: {g}");
    }

    #[test]
    fn unsupported_schemas_are_errors() {
        for (name, params) in [
            ("f g", json!({"type": "object"})),
            ("f", json!({"type": "array", "items": {"type": "string"}})),
            ("f", json!({"type": "object", "properties": {"a": {"type": "null"}}})),
            ("f", json!({"type": "object", "properties": {"a": {}}})),
            ("f", json!({"type": "object", "properties": {"a": {"enum": []}}})),
            ("f", json!({"type": "object", "properties": {"a": {"enum": [null]}}})),
            ("f", json!({"type": "object", "properties": {"a": {"type": "array"}}})),
            ("f", json!({"type": "object", "properties": {}, "required": ["x"]})),
            ("f", json!({"type": "object", "properties": {"a": {"type": "string", "maxLength": -1}}})),
            ("f", json!({"type": "object", "properties": {"a": {"type": "string", "minLength": 3, "maxLength": 2}}})),
        ] {
            let e = tool_call_grammar(name, &params).unwrap_err();
            assert!(matches!(&e, Error::Grammar(m) if !m.contains('\n')), "{e}");
        }
        let mut deep = json!({"type": "string"});
        for _ in 0..=MAX_DEPTH {
            deep = json!({"type": "array", "items": deep});
        }
        let params = json!({"type": "object", "properties": {"a": deep}});
        assert!(tool_call_grammar("f", &params).is_err());
    }
}
