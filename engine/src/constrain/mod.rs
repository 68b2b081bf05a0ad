//! Structured output: a [`Constraint`] restricts generation to a JSON schema, a regex or a
//! Lark-style grammar by masking the next token's logits, a [`LogitsProcessor`] between the
//! model's logits and the sampler. The grammar engine is `llguidance`: it walks a byte trie of the
//! vocabulary against the grammar's lexer and Earley parser and returns the allowed set as a
//! bitmask (well under a millisecond for a 262k vocabulary).
//!
//! The trie ([`GrammarVocab`]) is built once per tokenizer, from [`Tokenizer::token_bytes`], so
//! it is the same for a `tokenizer.json` and a GGUF vocabulary, and cached in the tokenizer; each
//! constraint then only compiles its grammar and owns a parser.
//!
//! What the mask allows, per step: text tokens whose bytes keep the output a prefix of something
//! the grammar accepts; a special token (control tokens such as `<|tool_call>`, `<unusedN>`, image
//! markers) only where a Lark grammar names it; the stop tokens (end of turn, `<eos>`) exactly
//! when the output so far is complete; never a padding row of the logits beyond the tokenizer's
//! vocabulary. JSON-schema and regex constraints, and Lark grammars that name no special token,
//! never allow one.
//!
//! Special tokens in a Lark grammar (llguidance's syntax), in rules only, not in terminals:
//! `<|tool_call>` by its name as the tokenizer spells it, `<[48]>` by id, `<[46-52,98]>` any of
//! ids and ranges, `<[^1,106]>` any token but those, `<[*]>` any token. Stop tokens stay the
//! constraint's own: allowed once the output is complete, never because a grammar names them. [`tool_call_grammar`] builds such a
//! grammar for a Gemma 4 tool call.
//!
//! ```no_run
//! # fn demo(tok: &garnet::tokenizer::Tokenizer) -> garnet::Result<()> {
//! use garnet::logits::LogitsProcessor;
//! let schema = serde_json::json!({"type": "object", "properties": {"n": {"type": "integer"}}});
//! let mut c = garnet::Constraint::json_schema(tok, &schema)?;
//! let mut logits = vec![0.0f32; tok.vocab_size()];
//! c.process(&mut logits, &[])?; // disallowed tokens are now -inf
//! # Ok(()) }
//! ```

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::Matcher;

use crate::logits::LogitsProcessor;
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

mod toolcall;
mod vocab;

pub use toolcall::tool_call_grammar;
pub use vocab::GrammarVocab;

/// A grammar the generated reply must follow: a [`LogitsProcessor`] that sets every token the
/// grammar does not allow next to `-inf`, and advances its parser with each sampled token.
///
/// The reply ends either with a stop token (allowed exactly when the grammar is complete) or when
/// the grammar can take nothing more ([`LogitsProcessor::is_finished`]).
pub struct Constraint {
    vocab: Arc<GrammarVocab>,
    matcher: Matcher,
    stops: Vec<u32>,
    /// A stop token was accepted.
    ended: bool,
    /// Scratch: the allowed set of the current step, one bit per token.
    allowed: Vec<u32>,
}

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Constraint").field("stops", &self.stops).field("ended", &self.ended).finish_non_exhaustive()
    }
}

impl Constraint {
    /// Replies that are JSON values valid under `schema` (JSON Schema; llguidance supports the
    /// usual keywords: types, `properties`/`required`, `enum`/`const`, `items`, `minItems`/
    /// `maxItems`, string lengths and patterns, numeric bounds, `anyOf`, local `$ref`).
    ///
    /// The JSON is compact (no whitespace between tokens) unless the schema's `"x-guidance"`
    /// object says otherwise (e.g. `{"whitespace_flexible": true}`). An invalid or unsupported
    /// schema is [`Error::Grammar`].
    pub fn json_schema(tok: &Tokenizer, schema: &serde_json::Value) -> Result<Self> {
        let mut schema = schema.clone();
        if let Some(obj) = schema.as_object_mut() {
            // Flexible whitespace lets a model pad forever between tokens; compact JSON is
            // also fewer tokens.
            obj.entry("x-guidance").or_insert_with(|| serde_json::json!({ "whitespace_flexible": false }));
        }
        Self::new(tok, TopLevelGrammar::from_json_schema(schema))
    }

    /// Replies that match the regular expression `rx` as a whole (Rust `regex` syntax, no
    /// anchors needed). An invalid regex is [`Error::Grammar`].
    pub fn regex(tok: &Tokenizer, rx: &str) -> Result<Self> {
        Self::new(tok, TopLevelGrammar::from_regex(rx))
    }

    /// Replies in the language of a Lark-style grammar (llguidance's syntax: rules in lower
    /// case, terminals in upper case or `/regex/` or `"literal"`, the start rule `start`,
    /// `%json { ... }` for an embedded JSON schema, and special tokens such as `<|tool_call>` or
    /// `<[48]>` in rules, see the [module docs](crate::constrain)). An invalid grammar, or one naming a
    /// special token the vocabulary lacks, is [`Error::Grammar`].
    pub fn lark(tok: &Tokenizer, grammar: &str) -> Result<Self> {
        Self::new(tok, TopLevelGrammar::from_lark(grammar.to_owned()))
    }

    fn new(tok: &Tokenizer, grammar: TopLevelGrammar) -> Result<Self> {
        let vocab = GrammarVocab::of(tok)?;
        // llguidance reports bad grammars as errors; the catch is for any assertion it trips
        // on input it did not foresee, so a user's grammar can never take the process down.
        let parser = catch_unwind(AssertUnwindSafe(|| vocab.factory.create_parser(grammar)))
            .map_err(|_| Error::Grammar("the grammar compiler failed on this input".into()))?
            .map_err(|e| grammar_error("invalid", &e))?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(Error::Grammar(format!("invalid: {}", one_line(&e))));
        }
        let stops = vocab.stops.clone();
        Ok(Constraint { vocab, matcher, stops, ended: false, allowed: Vec::new() })
    }

    /// Ends replies on `stops` instead of the vocabulary's end-of-turn and `<eos>` tokens (e.g. a
    /// chat template's own end token). Each id must be in the vocabulary, and at least one given.
    pub fn with_stop_tokens(mut self, stops: &[u32]) -> Result<Self> {
        if stops.is_empty() {
            return Err(Error::Invalid("a constraint needs at least one stop token".into()));
        }
        if let Some(&id) = stops.iter().find(|&&id| id as usize >= self.vocab.vocab) {
            return Err(Error::TokenOutOfRange { id, vocab: self.vocab.vocab });
        }
        self.stops = stops.to_vec();
        Ok(self)
    }

    /// The tokens that end the reply when the grammar is complete.
    pub fn stop_tokens(&self) -> &[u32] {
        &self.stops
    }

    /// Whether the output so far is complete under the grammar (a stop token may follow).
    pub fn is_complete(&mut self) -> Result<bool> {
        if self.ended || self.grammar_stopped() {
            return Ok(true);
        }
        self.matcher.is_accepting().map_err(|e| grammar_error("parser", &e))
    }

    /// The parser can take no more text (the grammar ended), as opposed to failed.
    fn grammar_stopped(&self) -> bool {
        self.matcher.is_stopped() && !self.matcher.is_error()
    }

    /// Fills `self.allowed` with this step's allowed set.
    fn compute_allowed(&mut self) -> Result<()> {
        let complete = self.is_complete()?;
        let words = self.vocab.text.len();
        self.allowed.clear();
        if self.ended || self.matcher.is_stopped() {
            self.allowed.resize(words, 0);
        } else {
            let mask = self.matcher.compute_mask().map_err(|e| grammar_error("parser", &e))?;
            // llguidance allows a special token only where the grammar names it (text lexemes
            // never take the 0xFF marker); the stop tokens are overridden below.
            self.allowed.extend(mask.as_slice().iter().take(words));
            self.allowed.resize(words, 0);
            if let Some(last) = self.allowed.last_mut() {
                // Bits past the vocabulary in the last word: padding rows.
                let tail = self.vocab.vocab % 32;
                if tail != 0 {
                    *last &= (1u32 << tail) - 1;
                }
            }
        }
        // llguidance treats the vocabulary's stops as end of text: they are only the
        // constraint's to allow, and only its own (see `with_stop_tokens`).
        for &s in &self.vocab.stops {
            self.allowed[s as usize / 32] &= !(1u32 << (s % 32));
        }
        for &s in &self.stops {
            let (w, bit) = (s as usize / 32, 1u32 << (s % 32));
            if complete {
                self.allowed[w] |= bit;
            } else {
                self.allowed[w] &= !bit;
            }
        }
        if self.allowed.iter().all(|&w| w == 0) {
            return Err(Error::Grammar("no token can continue the output".into()));
        }
        Ok(())
    }
}

impl LogitsProcessor for Constraint {
    fn process(&mut self, logits: &mut [f32], _history: &[u32]) -> Result<()> {
        self.compute_allowed()?;
        // Rows past the tokenizer's vocabulary (padding) get a zero word: always masked.
        for (i, chunk) in logits.chunks_mut(32).enumerate() {
            let w = self.allowed.get(i).copied().unwrap_or(0);
            if w == u32::MAX {
                continue;
            }
            for (j, l) in chunk.iter_mut().enumerate() {
                if w >> j & 1 == 0 {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
        Ok(())
    }

    fn accept(&mut self, token: u32) -> Result<()> {
        if self.stops.contains(&token) {
            if !self.is_complete()? {
                return Err(Error::Grammar(format!("stop token {token} before the output is complete")));
            }
            self.ended = true;
            return Ok(());
        }
        if self.ended || self.matcher.is_stopped() {
            return Err(Error::Grammar(format!("token {token} after the output is complete")));
        }
        if token as usize >= self.vocab.vocab {
            return Err(Error::Grammar(format!("token {token} is not in the vocabulary")));
        }
        if self.vocab.stops.contains(&token) {
            return Err(Error::Grammar(format!("stop token {token} is not one this constraint ends on")));
        }
        let ok = self.matcher.validate_tokens(&[token]).map_err(|e| grammar_error("parser", &e))?;
        if ok != 1 {
            let what = if self.vocab.is_text(token) { "token" } else { "special token" };
            return Err(Error::Grammar(format!("{what} {token} does not fit the grammar here")));
        }
        self.matcher.consume_token(token).map_err(|e| grammar_error("parser", &e))
    }

    fn is_finished(&self) -> bool {
        self.ended || self.grammar_stopped()
    }
}

/// A multi-line message (regex errors draw a caret under the input) as one line, capped: some
/// messages carry a grammar dump.
fn one_line(s: &str) -> String {
    let line = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(400) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

/// llguidance's message as [`Error::Grammar`].
fn grammar_error(what: &str, e: &impl std::fmt::Display) -> Error {
    Error::Grammar(format!("{what}: {}", one_line(&e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SentencePiece vocabulary: control tokens, a user-defined marker and newline, the 256
    /// byte tokens, a few pieces. `eos` / `<end_of_turn>` as given.
    fn vocab(with_stops: bool) -> Tokenizer {
        let mut tokens: Vec<String> =
            ["<pad>", "<eos>", "<bos>", "<unk>", "<end_of_turn>", "<start_of_image>", "\n"].map(String::from).to_vec();
        let mut types = vec![3, 3, 3, 2, 3, 4, 4];
        if !with_stops {
            tokens[1] = "<pad1>".into();
            tokens[4] = "<pad2>".into();
        }
        tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
        types.extend([6; 256]);
        for piece in ["a", "b", "ab", "▁a", "1", "12", "{\"", "\":"] {
            tokens.push(piece.into());
            types.push(1);
        }
        let scores = vec![0.0; tokens.len()];
        let eos = with_stops.then_some(1);
        Tokenizer::from_vocab(tokens, scores, types, Some(2), eos, false).unwrap()
    }

    #[test]
    fn specials_stops_and_bytes() {
        let tok = vocab(true);
        let id = |s: &str| tok.token_id(s).unwrap();
        for (s, special) in [("<eos>", true), ("<unk>", true), ("<start_of_image>", true)] {
            if let Some(i) = tok.token_id(s) {
                assert_eq!(tok.is_special(i), special, "{s}");
            }
        }
        assert!(!tok.is_special(id("\n")) && !tok.is_special(id("<0x41>")));
        assert_eq!(tok.token_bytes(id("▁a")).unwrap(), b" a");
        assert_eq!(tok.token_bytes(id("<0xFF>")).unwrap(), [0xFF]);
        let v = GrammarVocab::of(&tok).unwrap();
        assert_eq!(v.stop_tokens(), [id("<end_of_turn>"), id("<eos>")]);
        assert!(Arc::ptr_eq(&v, &GrammarVocab::of(&tok).unwrap()), "built once per tokenizer");
        assert!(v.is_text(id("ab")) && v.is_text(id("\n")) && !v.is_text(id("<start_of_image>")));
        assert!(!v.is_text(id("<eos>")) && !v.is_text(tok.vocab_size() as u32));

        // `[ab]+`: pieces of a and b only; the stops once something was written.
        let mut c = Constraint::regex(&tok, "[ab]+").unwrap();
        let allowed = |c: &mut Constraint| {
            let mut logits = vec![0.0; tok.vocab_size() + 40];
            c.process(&mut logits, &[]).unwrap();
            let ok: Vec<String> = (0..logits.len())
                .filter(|&i| logits[i].is_finite())
                .map(|i| tok.token_str(i as u32).unwrap_or_default())
                .collect();
            ok
        };
        assert_eq!(allowed(&mut c), ["<0x61>", "<0x62>", "a", "b", "ab"]);
        c.accept(id("ab")).unwrap();
        assert_eq!(allowed(&mut c), ["<eos>", "<end_of_turn>", "<0x61>", "<0x62>", "a", "b", "ab"]);
    }

    /// The allowed tokens of `c`'s next step, by name.
    fn allowed(tok: &Tokenizer, c: &mut Constraint) -> Vec<String> {
        let mut logits = vec![0.0; tok.vocab_size() + 40];
        c.process(&mut logits, &[]).unwrap();
        (0..logits.len())
            .filter(|&i| logits[i].is_finite())
            .map(|i| tok.token_str(i as u32).unwrap_or_default())
            .collect()
    }

    #[test]
    fn special_tokens_named_in_a_grammar() {
        let tok = vocab(true);
        let img = tok.token_id("<start_of_image>").unwrap();
        // By name and by id: allowed exactly where the grammar has it.
        for g in ["start: \"b\" <start_of_image> \"a\"", &format!("start: \"b\" <[{img}]> \"a\"")] {
            let mut c = Constraint::lark(&tok, g).unwrap();
            assert_eq!(allowed(&tok, &mut c), ["<0x62>", "b"]);
            c.accept(tok.token_id("b").unwrap()).unwrap();
            assert_eq!(allowed(&tok, &mut c), ["<start_of_image>"]);
            c.accept(img).unwrap();
            assert_eq!(allowed(&tok, &mut c), ["<0x61>", "a"]);
            assert!(c.accept(img).is_err());
        }
        // Any token but the stops: every special but the stops, which wait for the end.
        let mut c = Constraint::lark(&tok, "start: <[*]> \"a\"").unwrap();
        let all = allowed(&tok, &mut c);
        assert!(all.contains(&"<pad>".to_string()) && all.contains(&"<start_of_image>".to_string()));
        assert!(!all.contains(&"<eos>".to_string()) && !all.contains(&"<end_of_turn>".to_string()));
        // A grammar over text never allows one.
        let mut c = Constraint::regex(&tok, "[^a]").unwrap();
        assert!(allowed(&tok, &mut c).iter().all(|t| !t.starts_with('<') || t.starts_with("<0x")));
        assert!(Constraint::lark(&tok, "start: <nope>").is_err());
    }

    #[test]
    fn a_vocabulary_without_stop_tokens_is_an_error() {
        let tok = vocab(false);
        let e = Constraint::regex(&tok, "a").unwrap_err();
        assert!(matches!(&e, Error::Grammar(m) if m.contains("no end-of-turn")), "{e}");
    }
}
