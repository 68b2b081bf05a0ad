//! Hooks that see a step's logits before the sampler does: grammar constraints
//! ([`crate::constrain`]) and callers' own processors. They run on the host, so a generation
//! with a processor reads every step's logits back (no on-device greedy shortcut).

use crate::error::Result;

/// Changes the next token's logits before sampling, and is told which token was chosen.
pub trait LogitsProcessor: Send {
    /// Edits `logits` (`[vocab]`) in place, e.g. sets forbidden tokens to `f32::NEG_INFINITY`.
    /// `history` is every token of the session so far, the prompt included.
    fn process(&mut self, logits: &mut [f32], history: &[u32]) -> Result<()>;

    /// Called with the token sampled from the processed logits.
    fn accept(&mut self, _token: u32) -> Result<()> {
        Ok(())
    }

    /// True once the processor allows no further token (a grammar that is complete): the
    /// generation then ends as if a stop token had been sampled.
    fn is_finished(&self) -> bool {
        false
    }
}
