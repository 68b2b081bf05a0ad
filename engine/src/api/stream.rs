//! [`GenerationStream`] (feature `async`): a generation that owns its session and runs on a
//! worker thread, delivering tokens as a [`futures_core::Stream`].

use super::generation::{CancelHandle, FinishReason, GenerateOptions, Usage};
use super::session::Session;
use crate::chat::Message;
use crate::error::{Error, Result};
use crate::sampling::Sampling;
use crate::Token;
use futures_core::Stream;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;

/// What the worker hands to the stream.
#[derive(Default)]
struct Shared {
    queue: VecDeque<Result<Token>>,
    /// Set when the worker is done: the finish reason (none after an error) and the usage.
    done: Option<(Option<FinishReason>, Usage)>,
    waker: Option<Waker>,
}

/// What a stream generates from.
enum Input {
    Text(String),
    Chat(Vec<Message>),
}

/// A generation running on its own thread, as an async [`Stream`] of tokens. It owns the session
/// while it runs; [`GenerationStream::into_session`] gives it back. Dropping the stream cancels
/// the generation (the worker ends at its next token or prefill chunk).
pub struct GenerationStream {
    shared: Arc<Mutex<Shared>>,
    cancel: CancelHandle,
    worker: Option<JoinHandle<Session>>,
}

impl Session {
    /// [`Session::generate_with`] on a worker thread that owns the session, as an async stream.
    /// Errors (a prompt too long for the context...) arrive as the stream's only item.
    pub fn generate_stream(self, prompt: &str, sampling: &Sampling, opts: GenerateOptions) -> GenerationStream {
        GenerationStream::spawn(self, Input::Text(prompt.to_string()), sampling.clone(), opts)
    }

    /// [`Session::chat_with`] on a worker thread that owns the session, as an async stream.
    pub fn chat_stream(self, messages: &[Message], sampling: &Sampling, opts: GenerateOptions) -> GenerationStream {
        GenerationStream::spawn(self, Input::Chat(messages.to_vec()), sampling.clone(), opts)
    }
}

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic on the worker poisons nothing the stream cannot read on.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl GenerationStream {
    fn spawn(mut session: Session, input: Input, sampling: Sampling, mut opts: GenerateOptions) -> Self {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let cancel = opts.cancel.get_or_insert_with(CancelHandle::new).clone();
        let to_stream = shared.clone();
        let worker = std::thread::spawn(move || {
            let push = |item: Result<Token>| {
                let mut s = lock(&to_stream);
                s.queue.push_back(item);
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            };
            let started = match &input {
                Input::Text(prompt) => session.generate_with(prompt, &sampling, opts),
                Input::Chat(messages) => session.chat_with(messages, &sampling, opts),
            };
            let done = match started {
                Ok(mut gen) => {
                    for item in gen.by_ref() {
                        push(item);
                    }
                    (gen.finish_reason().cloned(), gen.usage())
                }
                Err(e) => {
                    push(Err(e));
                    (None, Usage::default())
                }
            };
            let mut s = lock(&to_stream);
            s.done = Some(done);
            if let Some(w) = s.waker.take() {
                w.wake();
            }
            drop(s);
            session
        });
        GenerationStream { shared, cancel, worker: Some(worker) }
    }

    /// The handle that cancels this generation.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Why the generation ended, once the stream has ended (`None` before, or after an error).
    pub fn finish_reason(&self) -> Option<FinishReason> {
        lock(&self.shared).done.as_ref().and_then(|d| d.0.clone())
    }

    /// What the generation cost, once the stream has ended.
    pub fn usage(&self) -> Option<Usage> {
        lock(&self.shared).done.as_ref().map(|d| d.1)
    }

    /// Waits for the worker (cancelling the generation if the stream has not ended) and returns
    /// the session, with every token generated in its conversation.
    pub fn into_session(mut self) -> Result<Session> {
        if lock(&self.shared).done.is_none() {
            self.cancel.cancel();
        }
        let worker = self.worker.take().ok_or_else(|| Error::Invalid("the stream has no worker".into()))?;
        worker.join().map_err(|_| Error::Invalid("the generation's worker thread panicked".into()))
    }
}

impl Stream for GenerationStream {
    type Item = Result<Token>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut s = lock(&self.shared);
        if let Some(item) = s.queue.pop_front() {
            return Poll::Ready(Some(item));
        }
        if s.done.is_some() {
            return Poll::Ready(None);
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for GenerationStream {
    fn drop(&mut self) {
        // The worker still owns the session: stop it; it ends on its own.
        if self.worker.is_some() {
            self.cancel.cancel();
        }
    }
}
