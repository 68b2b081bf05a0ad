//! [`Generation`]: the streaming iterator of generated tokens, with what ends it
//! ([`FinishReason`]), what it cost ([`Usage`]) and what shapes it ([`GenerateOptions`]: stop
//! strings, logits processors, a [`CancelHandle`], a prefill progress hook).

use super::finite;
use super::session::Session;
use crate::chat::Message;
use crate::error::{Error, Result};
use crate::logits::LogitsProcessor;
use crate::model::Logits;
use crate::reply::{Channel, Reply, ReplyParser};
use crate::sampling::{Sampler, Sampling};
use crate::tokenizer::StreamDecoder;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Stops a generation from anywhere: cloneable, `Send + Sync`. A cancel is seen between prefill
/// chunks and before each token; the generation then ends with [`FinishReason::Cancelled`].
#[derive(Clone, Debug, Default)]
pub struct CancelHandle(Arc<AtomicBool>);

impl CancelHandle {
    /// A handle not cancelled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every generation holding this handle (or a clone) to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`CancelHandle::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A prefill progress hook: called after each prompt chunk with (prompt tokens run, prompt tokens).
pub type PrefillHook = Box<dyn FnMut(usize, usize) + Send>;

/// What shapes a generation beyond its [`Sampling`]: build with [`GenerateOptions::default`] and
/// the methods below, or set the fields.
#[derive(Default)]
pub struct GenerateOptions {
    /// Strings that end the generation where they appear in its text, even across token
    /// boundaries: the text before the stop string is delivered, the stop string is not.
    pub stop_strings: Vec<String>,
    /// Edit each step's logits before sampling, in order (grammar constraints, biases). With a
    /// processor every step's logits are read back to the host.
    pub processors: Vec<Box<dyn LogitsProcessor>>,
    /// Cancels the generation, its prefill included.
    pub cancel: Option<CancelHandle>,
    /// Called after each prefill chunk.
    pub on_prefill: Option<PrefillHook>,
    /// Chat only: the tools the model may call (JSON-schema function declarations, as the chat
    /// template's `tools`).
    pub tools: Vec<serde_json::Value>,
    /// Chat only: the template's `enable_thinking` (Gemma 4 thinks before answering).
    pub enable_thinking: bool,
    /// Chat only: further keys for the chat template, passed as they are.
    pub template_args: serde_json::Map<String, serde_json::Value>,
}

impl GenerateOptions {
    /// Adds a stop string.
    pub fn stop_string(mut self, s: impl Into<String>) -> Self {
        self.stop_strings.push(s.into());
        self
    }

    /// Adds a logits processor (run after those added before).
    pub fn processor(mut self, p: impl LogitsProcessor + 'static) -> Self {
        self.processors.push(Box::new(p));
        self
    }

    /// Sets the cancel handle (a clone of `c`).
    pub fn cancel(mut self, c: &CancelHandle) -> Self {
        self.cancel = Some(c.clone());
        self
    }

    /// Chat only: adds a tool the model may call (a JSON-schema function declaration).
    pub fn tool(mut self, declaration: serde_json::Value) -> Self {
        self.tools.push(declaration);
        self
    }

    /// Chat only: lets the model think before answering (`enable_thinking`).
    pub fn thinking(mut self, on: bool) -> Self {
        self.enable_thinking = on;
        self
    }

    /// Sets the prefill progress hook.
    pub fn on_prefill(mut self, f: impl FnMut(usize, usize) + Send + 'static) -> Self {
        self.on_prefill = Some(Box::new(f));
        self
    }
}

impl std::fmt::Debug for GenerateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerateOptions")
            .field("stop_strings", &self.stop_strings)
            .field("processors", &self.processors.len())
            .field("cancel", &self.cancel)
            .field("on_prefill", &self.on_prefill.is_some())
            .field("tools", &self.tools.len())
            .field("enable_thinking", &self.enable_thinking)
            .finish()
    }
}

/// Why a generation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FinishReason {
    /// The model produced this stop token (the last yielded token).
    Stop(u32),
    /// The text reached this stop string (the text before it was delivered).
    StopString(String),
    /// [`Sampling::max_new_tokens`] tokens were generated.
    Length,
    /// The session's context is full.
    ContextFull,
    /// A [`CancelHandle`] was cancelled.
    Cancelled,
    /// A logits processor said it is finished (e.g. a grammar is complete).
    Constraint,
}

/// What a generation cost.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// Prompt tokens run (fewer than the prompt's when a cancel stopped the prefill).
    pub prompt_tokens: usize,
    /// Tokens generated (yielded), a final stop token included.
    pub generated_tokens: usize,
    /// Wall time of the prompt's prefill.
    pub prefill_time: Duration,
    /// Wall time spent producing the generated tokens (the caller's time between them excluded).
    pub decode_time: Duration,
}

/// One generated token.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Token {
    /// The token id.
    pub id: u32,
    /// The text this token delivers: the text it completes, less any text held back because it
    /// may be the start of a stop string or of a multi-byte character; the last token of a
    /// generation also delivers everything held back (a stop token's own text is never part of it).
    pub text: String,
    /// Log-probability of the token under the model's distribution (log-softmax of the raw
    /// logits, before the sampling transforms and logits processors).
    pub logprob: f32,
    /// The [`Sampling::top_logprobs`] most likely tokens under the same distribution with their
    /// log-probabilities, most likely first.
    pub top_logprobs: Vec<(u32, f32)>,
    /// Thinking, answer or tool call ([`crate::reply`]): the markers that open a channel or a
    /// call belong to it, as do those that close it.
    pub channel: Channel,
}

/// Where a generation starts: what the session's prefill left.
pub(super) struct Start {
    pub logits: Vec<f32>,
    pub stop: Vec<u32>,
    pub prefill_time: Duration,
    pub prompt_tokens: usize,
    pub cancelled: bool,
}

/// Streaming generation: an iterator of tokens, ending at a stop token (yielded last), a stop
/// string, `max_new_tokens`, a full context, a processor's end or a cancel; then
/// [`Generation::finish_reason`] says which and [`Generation::usage`] what it cost. Iterate
/// with `gen.by_ref()` to keep `gen` for them. Dropping it stops generation; the session keeps
/// every token generated so far. A cancel seen before a token drops text still held back (at
/// most the start of a stop string or of a multi-byte character).
pub struct Generation<'a> {
    session: &'a mut Session,
    sampler: Sampler,
    logits: Vec<f32>,
    stop: Vec<u32>,
    remaining: usize,
    repeat_last_n: usize,
    top_logprobs: usize,
    decoder: Option<StreamDecoder>,
    /// Greedy sampling with no repetition penalty, processor or top log-probabilities: tokens
    /// after the first are chosen by the backend's `argmax` (8 bytes read per token).
    device_greedy: bool,
    processors: Vec<Box<dyn LogitsProcessor>>,
    stop_strings: Vec<String>,
    /// Decoded text not delivered yet (it may start a stop string).
    held: String,
    cancel: Option<CancelHandle>,
    finish: Option<FinishReason>,
    /// An error was yielded: the generation is over, without a finish reason.
    failed: bool,
    usage: Usage,
    /// Tracks the channel of the text delivered.
    parser: ReplyParser,
    /// The text delivered.
    text: String,
}

impl<'a> Generation<'a> {
    pub(super) fn new(
        session: &'a mut Session,
        sampling: &Sampling,
        opts: GenerateOptions,
        start: Start,
    ) -> Result<Self> {
        let sampler = Sampler::new(sampling)?;
        let device_greedy = sampling.temperature == 0.0
            && sampling.repetition_penalty == 1.0
            && sampling.top_logprobs == 0
            && opts.processors.is_empty();
        let decoder = session.tokenizer.clone().map(StreamDecoder::new);
        Ok(Generation {
            session,
            sampler,
            logits: start.logits,
            stop: start.stop,
            remaining: sampling.max_new_tokens,
            repeat_last_n: sampling.repeat_last_n,
            top_logprobs: sampling.top_logprobs,
            decoder,
            device_greedy,
            processors: opts.processors,
            stop_strings: opts.stop_strings,
            held: String::new(),
            cancel: opts.cancel,
            finish: start.cancelled.then_some(FinishReason::Cancelled),
            failed: false,
            usage: Usage { prompt_tokens: start.prompt_tokens, prefill_time: start.prefill_time, ..Usage::default() },
            parser: ReplyParser::new(),
            text: String::new(),
        })
    }

    /// Why the generation ended; `None` while it runs (or after an error).
    pub fn finish_reason(&self) -> Option<&FinishReason> {
        self.finish.as_ref()
    }

    /// Tokens and time so far.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(CancelHandle::is_cancelled)
    }

    fn next_token(&mut self) -> Result<Option<Token>> {
        if self.finish.is_some() || self.failed {
            return Ok(None);
        }
        let why = if self.cancelled() {
            Some(FinishReason::Cancelled)
        } else if self.remaining == 0 {
            Some(FinishReason::Length)
        } else if self.session.position() >= self.session.context() {
            Some(FinishReason::ContextFull)
        } else {
            None
        };
        if why.is_some() {
            self.finish = why;
            return Ok(None);
        }
        let mut token = self.sample()?;
        let id = token.id;
        // Every sampled token, a stop token (e.g. `<turn|>`) included, belongs to the
        // conversation; it is run through the model when the next token (or prompt) needs it.
        self.session.pending = Some(id);
        self.session.history.push(id);
        self.usage.generated_tokens += 1;
        if self.stop.contains(&id) {
            self.finish = Some(FinishReason::Stop(id));
            let text = self.flush()?;
            token.channel = self.classify(&text);
            token.text = text;
            return Ok(Some(token));
        }
        self.remaining -= 1;
        if let Some(d) = &mut self.decoder {
            let piece = d.push(id)?;
            self.held.push_str(&piece);
        }
        let mut text = self.deliver();
        if self.finish.is_none() {
            self.finish = if self.remaining == 0 {
                Some(FinishReason::Length)
            } else if self.processors.iter().any(|p| p.is_finished()) {
                Some(FinishReason::Constraint)
            } else if self.session.position() >= self.session.context() {
                Some(FinishReason::ContextFull)
            } else if self.cancelled() {
                Some(FinishReason::Cancelled)
            } else {
                None
            };
            if self.finish.is_some() {
                text.push_str(&self.flush()?);
            }
        }
        token.channel = self.classify(&text);
        token.text = text;
        Ok(Some(token))
    }

    /// The channel of text delivered now, which is also kept for [`Generation::reply`].
    fn classify(&mut self, text: &str) -> Channel {
        let before = self.parser.channel();
        self.parser.push(text);
        self.text.push_str(text);
        if before == Channel::Answer {
            self.parser.channel()
        } else {
            before
        }
    }

    /// The text generated so far split into thinking, answer and tool calls (Gemma 4's
    /// markers; other models' text is all answer). A malformed tool call is an error.
    pub fn reply(&self) -> Result<Reply> {
        crate::reply::parse_reply(&self.text)
    }

    /// All the text generated so far, markers included.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Runs the pending token and chooses the next: its id and log-probabilities (no text yet).
    fn sample(&mut self) -> Result<Token> {
        let s = &mut *self.session;
        let vocab = s.runner.config().vocab_size;
        // The token yielded last time runs now, so each token reaches the caller one forward
        // pass earlier (and a dropped iterator leaves it pending, not computed for nothing).
        match s.pending.take() {
            // Greedy without penalties: chosen on the device, only the id comes back.
            Some(prev) if self.device_greedy => {
                let (id, logprob) = super::in_pool(&s.pool, || s.fwd.step_greedy(prev))?;
                return Ok(Token {
                    id,
                    text: String::new(),
                    logprob,
                    top_logprobs: Vec::new(),
                    channel: Channel::Answer,
                });
            }
            Some(prev) => {
                let fwd = &mut s.fwd;
                let logits = super::in_pool(&s.pool, || fwd.forward(&[prev], Logits::Last))?;
                self.logits = finite(logits, vocab)?;
            }
            None => {}
        }
        let history = &s.history;
        let raw = if self.processors.is_empty() { None } else { Some(self.logits.clone()) };
        for p in &mut self.processors {
            p.process(&mut self.logits, history)?;
        }
        let recent = match self.repeat_last_n {
            0 => &history[..],
            n => &history[history.len().saturating_sub(n)..],
        };
        let id = self.sampler.pick(&self.logits, recent)?;
        for p in &mut self.processors {
            p.accept(id)?;
        }
        let (logprob, top_logprobs) =
            crate::sampling::logprobs(raw.as_deref().unwrap_or(&self.logits), id, self.top_logprobs);
        Ok(Token { id, text: String::new(), logprob, top_logprobs, channel: Channel::Answer })
    }

    /// The held text that cannot be the start of a stop string; on a stop string, the text
    /// before it (and the generation finishes).
    fn deliver(&mut self) -> String {
        let first = self.stop_strings.iter().filter_map(|s| self.held.find(s.as_str()).map(|at| (at, s))).min();
        if let Some((at, s)) = first {
            self.finish = Some(FinishReason::StopString(s.clone()));
            let text = self.held[..at].to_string();
            self.held.clear();
            return text;
        }
        let keep = self.stop_strings.iter().map(|s| prefix_suffix(&self.held, s)).max().unwrap_or(0);
        let rest = self.held.split_off(self.held.len() - keep);
        std::mem::replace(&mut self.held, rest)
    }

    /// Everything held back, at the end of the generation (a stop string found in it still cuts).
    fn flush(&mut self) -> Result<String> {
        if let Some(d) = &mut self.decoder {
            let tail = d.finish()?;
            self.held.push_str(&tail);
        }
        let was = self.finish.take();
        let text = self.deliver();
        let cut = self.finish.take();
        self.finish = cut.or(was);
        Ok(text + &std::mem::take(&mut self.held))
    }
}

/// Length of the longest end of `text` that is a proper beginning of `stop`.
fn prefix_suffix(text: &str, stop: &str) -> usize {
    (1..stop.len().min(text.len() + 1))
        .rev()
        .find(|&k| stop.is_char_boundary(k) && text.ends_with(&stop[..k]))
        .unwrap_or(0)
}

impl Iterator for Generation<'_> {
    type Item = Result<Token>;
    fn next(&mut self) -> Option<Self::Item> {
        let t0 = Instant::now();
        let pool = self.session.pool.clone();
        let out = super::in_pool(&pool, || self.next_token());
        self.usage.decode_time += t0.elapsed();
        match out {
            Ok(t) => t.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// The text-level entry points: they start a [`Generation`].
impl Session {
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
