//! The vocabulary as llguidance sees it: a byte trie over every token, built once per tokenizer.
//!
//! Text tokens are their bytes. Special tokens (and the stop tokens) are llguidance's marker byte
//! 0xFF followed by their name, e.g. `\xFF<|tool_call>`: no grammar over text can produce them,
//! while a Lark grammar can name them (`<|tool_call>`), since llguidance looks special tokens up
//! in the trie under that marker.

use std::panic::catch_unwind;
use std::sync::Arc;

use llguidance::toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};
use llguidance::ParserFactory;

use super::grammar_error;
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

/// A tokenizer's vocabulary as the grammar engine sees it: the byte trie and the compiled slices
/// that speed up mask computation. Built once per [`Tokenizer`] ([`GrammarVocab::of`]) and shared
/// by every [`Constraint`](super::Constraint) on it.
pub struct GrammarVocab {
    pub(super) factory: ParserFactory,
    /// Tokens in the tokenizer (logits rows beyond it are padding).
    pub(super) vocab: usize,
    /// Tokens that end a reply by default: end of turn and `<eos>`.
    pub(super) stops: Vec<u32>,
    /// Bit `id` set: token `id` is text (not special, not a stop token).
    pub(super) text: Vec<u32>,
}

impl std::fmt::Debug for GrammarVocab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrammarVocab").field("vocab", &self.vocab).field("stops", &self.stops).finish_non_exhaustive()
    }
}

/// The token environment llguidance asks for: our trie, tokenizing greedily. Declared
/// non-canonical, so llguidance never forces a tokenization of its own on the model.
struct TrieEnv {
    trie: TokTrie,
}

impl TokenizerEnv for TrieEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        self.trie.greedy_tokenize(s)
    }

    fn tokenize_is_canonical(&self) -> bool {
        false
    }
}

impl GrammarVocab {
    /// The grammar vocabulary of `tok`, built on the first call (about a second for a 262k
    /// vocabulary) and cached in the tokenizer. Fails if the vocabulary has no stop token.
    pub fn of(tok: &Tokenizer) -> Result<Arc<GrammarVocab>> {
        let cached = |v: &Arc<dyn std::any::Any + Send + Sync>| v.clone().downcast::<GrammarVocab>().ok();
        if let Some(v) = tok.grammar_vocab.get().and_then(cached) {
            return Ok(v);
        }
        let v = Arc::new(Self::build(tok)?);
        // Two threads may race to build; both results are equal, the first one stays.
        let slot = tok.grammar_vocab.get_or_init(|| v.clone());
        Ok(cached(slot).unwrap_or(v))
    }

    fn build(tok: &Tokenizer) -> Result<GrammarVocab> {
        let vocab = tok.vocab_size();
        let mut stops: Vec<u32> = ["<turn|>", "<end_of_turn>"].iter().filter_map(|s| tok.token_id(s)).collect();
        stops.extend(tok.eos_id());
        stops.retain(|&id| (id as usize) < vocab);
        stops.dedup();
        if stops.is_empty() {
            return Err(Error::Grammar("the vocabulary has no end-of-turn or <eos> token to stop on".into()));
        }
        let mut text = vec![0u32; vocab.div_ceil(32)];
        let mut words = Vec::with_capacity(vocab);
        for id in 0..vocab as u32 {
            let bytes = tok.token_bytes(id).unwrap_or_default();
            if tok.is_special(id) || stops.contains(&id) {
                // llguidance's convention: 0xFF (never in UTF-8) then the name, so no grammar
                // over text can match a special token, and a grammar can name it.
                words.push([&[TokTrie::SPECIAL_TOKEN_MARKER][..], &bytes].concat());
            } else {
                text[id as usize / 32] |= 1 << (id % 32);
                words.push(bytes);
            }
        }
        let mut info = TokRxInfo::new(vocab as u32, stops[0]);
        info.tok_bos = tok.bos_id();
        // `TokTrie::from` asserts on its input: caught, since the vocabulary comes from a file.
        let built = catch_unwind(|| {
            let trie = TokTrie::from(&info, &words).with_eos_tokens(&stops);
            let env: TokEnv = Arc::new(TrieEnv { trie });
            ParserFactory::new_simple(&env)
        });
        let mut factory = built
            .map_err(|_| Error::Grammar("cannot build a token trie from this vocabulary".into()))?
            .map_err(|e| grammar_error("token trie", &e))?;
        factory.quiet();
        Ok(GrammarVocab { factory, vocab, stops, text })
    }

    /// Tokens in the tokenizer's vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.vocab
    }

    /// The tokens a [`Constraint`](super::Constraint) lets end the reply unless told others
    /// ([`Constraint::with_stop_tokens`](super::Constraint::with_stop_tokens)): end of turn (`<turn|>` / `<end_of_turn>`) and `<eos>`.
    pub fn stop_tokens(&self) -> &[u32] {
        &self.stops
    }

    pub(super) fn is_text(&self, id: u32) -> bool {
        self.text.get(id as usize / 32).is_some_and(|w| w >> (id % 32) & 1 == 1)
    }
}
