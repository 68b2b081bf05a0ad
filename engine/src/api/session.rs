//! [`Session`]: one conversation's KV cache and tokens, the token-level entry points (prefill,
//! step) and the text-level ones (generate, chat) that return a [`Generation`].

use super::generation::{finite, GenerateOptions, Generation, Start};
use super::{in_pool, Engine};
use crate::chat::Message;
use crate::error::{Error, Result};
use crate::model::{Forward, Logits, Runner};
use crate::sampling::Sampling;
use crate::tokenizer::Tokenizer;
use std::sync::Arc;
use std::time::Instant;

/// A conversation with the model: its KV cache and the tokens consumed so far. `Send`: a session
/// can move to another thread (sessions of one engine run concurrently).
pub struct Session {
    pub(super) fwd: Box<dyn Forward>,
    pub(super) runner: Arc<dyn Runner>,
    pub(super) tokenizer: Option<Arc<Tokenizer>>,
    pub(super) pool: Option<Arc<rayon::ThreadPool>>,
    chat: Arc<super::ChatSetup>,
    context: usize,
    chunk: usize,
    stop_tokens: Vec<u32>,
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
    fn check(&self, ids: &[u32]) -> Result<()> {
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

    fn tokenizer(&self) -> Result<Arc<Tokenizer>> {
        self.tokenizer.clone().ok_or_else(|| Error::Tokenizer("this checkpoint has no tokenizer.json".into()))
    }

    /// Raw completion: `<bos>` (at the start of a session) + `prompt`, then sampled tokens.
    pub fn generate(&mut self, prompt: &str, sampling: &Sampling) -> Result<Generation<'_>> {
        self.generate_with(prompt, sampling, GenerateOptions::default())
    }

    /// [`Session::generate`] with stop strings, logits processors, a cancel handle or a prefill
    /// progress hook.
    pub fn generate_with(
        &mut self,
        prompt: &str,
        sampling: &Sampling,
        opts: GenerateOptions,
    ) -> Result<Generation<'_>> {
        let ids = self.tokenizer()?.encode(prompt, self.position() == 0)?;
        self.generate_ids_with(&ids, sampling, opts)
    }

    /// The model's reply to a conversation: `messages` is the whole conversation so far (as
    /// HF's `apply_chat_template` takes it), rendered by the checkpoint's chat template
    /// ([`Engine::chat_template`]) with a generation prompt; the reply streams back. When the
    /// rendered prompt starts with every token this session holds (the previous call's prompt
    /// and reply), only the rest is run; otherwise the session starts over from the new prompt.
    pub fn chat(&mut self, messages: &[Message], sampling: &Sampling) -> Result<Generation<'_>> {
        self.chat_with(messages, sampling, GenerateOptions::default())
    }

    /// [`Session::chat`] with the options of [`Session::generate_with`] and the chat ones:
    /// tools, thinking and further template keys ([`GenerateOptions::tools`]).
    pub fn chat_with(
        &mut self,
        messages: &[Message],
        sampling: &Sampling,
        opts: GenerateOptions,
    ) -> Result<Generation<'_>> {
        let tok = self.tokenizer()?;
        let text = self.chat.render(messages, &opts)?;
        let ids = tok.encode(&text, false)?; // the template writes `<bos>`
        let held = self.history.len();
        if held > 0 && !(ids.len() > held && ids[..held] == self.history[..]) {
            self.reset();
        }
        let from = self.history.len();
        self.generate_ids_with(&ids[from..], sampling, opts)
    }

    /// Prefills `prompt` and returns an iterator over sampled tokens. Generation runs until a
    /// stop token, `max_new_tokens` or a full context ([`Generation::finish_reason`] says which),
    /// or until the iterator is dropped.
    pub fn generate_ids(&mut self, prompt: &[u32], sampling: &Sampling) -> Result<Generation<'_>> {
        self.generate_ids_with(prompt, sampling, GenerateOptions::default())
    }

    /// [`Session::generate_ids`] with options. Only the prompt must fit the context (the
    /// generation ends with [`crate::FinishReason::ContextFull`] when the context is full). The
    /// prompt runs in chunks of the session's `prefill_chunk`; a cancel stops it between chunks
    /// (the chunks already run stay in the conversation) and the generation yields nothing.
    pub fn generate_ids_with(
        &mut self,
        prompt: &[u32],
        sampling: &Sampling,
        mut opts: GenerateOptions,
    ) -> Result<Generation<'_>> {
        sampling.validate()?;
        self.check(prompt)?;
        if opts.stop_strings.iter().any(String::is_empty) {
            return Err(Error::Invalid("a stop string is empty".into()));
        }
        if !opts.stop_strings.is_empty() && self.tokenizer.is_none() {
            return Err(Error::Invalid("stop strings need a tokenizer; this checkpoint has none".into()));
        }
        let stop = sampling.stop_tokens.clone().unwrap_or_else(|| self.stop_tokens.clone());
        let start = Instant::now();
        let (mut logits, mut done) = (Vec::new(), 0);
        for part in prompt.chunks(self.chunk) {
            if opts.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
                break;
            }
            logits = self.run(part, Logits::Last)?;
            done += part.len();
            if let Some(hook) = &mut opts.on_prefill {
                hook(done, prompt.len());
            }
        }
        let cancelled = done < prompt.len();
        let start = Start { logits, stop, prefill_time: start.elapsed(), prompt_tokens: done, cancelled };
        Generation::new(self, sampling, opts, start)
    }
}
