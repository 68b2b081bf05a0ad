//! [`Session`]: one conversation's KV cache and tokens, the token-level entry points (prefill,
//! step) and the text-level ones (generate, chat) that return a [`Generation`].

use super::finite;
use super::{in_pool, Engine};
use crate::error::{Error, Result};
use crate::model::{Forward, Logits, Runner};
use crate::tokenizer::Tokenizer;
use std::sync::Arc;

/// A conversation with the model: its KV cache and the tokens consumed so far. `Send`: a session
/// can move to another thread (sessions of one engine run concurrently).
pub struct Session {
    pub(super) fwd: Box<dyn Forward>,
    pub(super) runner: Arc<dyn Runner>,
    pub(super) tokenizer: Option<Arc<Tokenizer>>,
    pub(super) pool: Option<Arc<rayon::ThreadPool>>,
    pub(super) chat: Arc<super::ChatSetup>,
    pub(super) context: usize,
    pub(super) chunk: usize,
    pub(super) stop_tokens: Vec<u32>,
    pub(super) history: Vec<u32>,
    /// A generated token not yet run through the model (it ended a generation).
    pub(super) pending: Option<u32>,
}

impl Session {
    pub(super) fn new(engine: &Engine, fwd: Box<dyn Forward>, context: usize, chunk: usize) -> Session {
        Session {
            fwd,
            runner: engine.runner.clone(),
            tokenizer: engine.tokenizer.clone(),
            pool: engine.pool.clone(),
            chat: engine.chat.clone(),
            context,
            chunk,
            stop_tokens: engine.stop_tokens(),
            history: vec![],
            pending: None,
        }
    }

    /// Positions this session can hold (the requested context, capped at the model's maximum).
    pub fn context(&self) -> usize {
        self.context
    }

    /// Tokens in the conversation so far (the next token's position).
    pub fn position(&self) -> usize {
        self.fwd.position() + self.pending.is_some() as usize
    }

    /// Every token consumed so far.
    pub fn tokens(&self) -> &[u32] {
        &self.history
    }

    /// Forgets the conversation.
    pub fn reset(&mut self) {
        self.fwd.reset();
        self.history.clear();
        self.pending = None;
    }

    /// Runs `ids` as one prompt (in chunks); returns the last token's logits `[vocab]`.
    pub fn prefill(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        self.run(ids, Logits::Last)
    }

    /// Like [`Session::prefill`] but returns every token's logits, `[ids.len(), vocab]` row-major.
    pub fn prefill_all(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        self.run(ids, Logits::All)
    }

    /// Like [`Session::prefill`] but returns the logits of `ids[from..]`, `[ids.len() - from, vocab]`:
    /// the LM head runs only for those rows (perplexity scores half of each window).
    pub fn prefill_from(&mut self, ids: &[u32], from: usize) -> Result<Vec<f32>> {
        self.run(ids, Logits::From(from))
    }

    /// Feeds one token; returns its logits `[vocab]`.
    pub fn step(&mut self, id: u32) -> Result<Vec<f32>> {
        self.run(&[id], Logits::Last)
    }

    /// Runs `ids` (after the pending token, if any) on the engine's threads; checked first.
    pub(super) fn run(&mut self, ids: &[u32], want: Logits) -> Result<Vec<f32>> {
        self.check(ids)?;
        let pending = self.pending.take();
        let fwd = &mut self.fwd;
        let out = in_pool(&self.pool, || match pending {
            Some(p) => {
                let all: Vec<u32> = std::iter::once(p).chain(ids.iter().copied()).collect();
                fwd.forward(&all, want.shifted(1))
            }
            None => fwd.forward(ids, want),
        })?;
        let out = finite(out, self.runner.config().vocab_size)?;
        self.history.extend_from_slice(ids);
        Ok(out)
    }

    /// Checks ids against the vocabulary and `ids.len()` more positions against the context.
    pub(super) fn check(&self, ids: &[u32]) -> Result<()> {
        if ids.is_empty() {
            return Err(Error::Invalid("empty token sequence".into()));
        }
        let vocab = self.runner.config().vocab_size;
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::TokenOutOfRange { id, vocab });
        }
        match self.position().checked_add(ids.len()) {
            Some(need) if need <= self.context => Ok(()),
            need => Err(Error::ContextOverflow { need: need.unwrap_or(usize::MAX), ctx: self.context }),
        }
    }

    pub(super) fn tokenizer(&self) -> Result<Arc<Tokenizer>> {
        self.tokenizer.clone().ok_or_else(|| Error::Tokenizer("this checkpoint has no tokenizer.json".into()))
    }
}
