//! The public API: [`Engine`] (a loaded model, shared) and [`Session`] (a conversation with its
//! own KV cache), plus the streaming [`Generation`] iterator.

use crate::chat::{ChatFormat, Message};
use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::model::{Forward, Logits, Model, Runner};
use crate::sampling::{Sampler, Sampling};
use crate::store::TensorStore;
use crate::tokenizer::{StreamDecoder, Tokenizer};
use garnet_kernels::{Backend, HostFallback, WithBackend};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use garnet_kernels::{BackendKind, OpSet, Precision};

/// Load progress callback: (bytes made resident so far, total bytes).
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// How to load a model.
#[derive(Clone, Default)]
pub struct LoadOptions {
    /// Which backend runs the model.
    pub backend: BackendKind,
    /// Numerical mode.
    pub precision: Precision,
    /// `tokenizer.json` to use instead of the one next to the weights.
    pub tokenizer: Option<PathBuf>,
    /// Called as weights become resident (a progress bar for large models).
    pub progress: Option<Progress>,
    /// Quantize the float matrices at load (`Q8_0`, `Q4_0` or `Q4_K`); see [`crate::weights::quantize`].
    pub quant: Option<garnet_kernels::DType>,
    /// Ops forced through the host fallback (`--host-fallback`: bring-up and tests).
    pub host_fallback: OpSet,
    /// The CPU backend's instruction-set level (`--cpu-isa`); `None`: the best this CPU has.
    pub cpu_isa: Option<garnet_kernels::cpu::Isa>,
}

/// How to open a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// Positions of context (prompt + generation); capped at the model's maximum.
    pub context: usize,
    /// Prompt tokens per forward chunk (bounds scratch memory).
    pub prefill_chunk: usize,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions { context: 4096, prefill_chunk: 512 }
    }
}

/// Facts about a loaded checkpoint.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    /// The file or directory.
    pub path: PathBuf,
    /// Bytes of the weights the model uses.
    pub weight_bytes: u64,
    /// Parameters the model uses (the PLE table included).
    pub params: u64,
    /// Bytes of all tensors in the checkpoint files.
    pub file_bytes: u64,
    /// With load-time quantization: the bytes the same weights had before it.
    pub unquantized_bytes: Option<u64>,
    /// Which backend runs the model.
    pub backend: &'static str,
    /// With [`BackendKind::Auto`]: why each backend before the one chosen could not run.
    pub fallback: Vec<String>,
}

/// A loaded model. Cheap to share (`Send + Sync`); sessions share its weights.
pub struct Engine {
    runner: Arc<dyn Runner>,
    tokenizer: Option<Arc<Tokenizer>>,
    info: ModelInfo,
}

impl Engine {
    /// Loads a checkpoint: a safetensors directory or file (with `config.json`), or a `.gguf` file
    /// (config and vocabulary from its metadata). Weights are memory-mapped and checked against
    /// the config; the tokenizer is `tokenizer.json` next to the weights when present, else the
    /// GGUF vocabulary. O(header) on the CPU.
    pub fn load(path: impl AsRef<Path>, opts: LoadOptions) -> Result<Engine> {
        let mut why = Vec::new();
        let backend = opts.backend.resolve(&mut why);
        let o = garnet_kernels::OpenOptions {
            precision: opts.precision,
            host_fallback: opts.host_fallback,
            cpu_isa: opts.cpu_isa,
        };
        Self::load_with(path.as_ref(), opts, why, |load| garnet_kernels::open(backend, o, load)?)
    }

    /// [`Engine::load`] onto a backend the caller made (`opts.backend` is not used): a backend
    /// in bring-up, or [`garnet_kernels::fallback::MemoryOnly`] (every op through the host
    /// fallback). Ops the backend does not support, and those of `opts.host_fallback`, run
    /// through the host fallback.
    pub fn load_on<B: Backend + Clone>(path: impl AsRef<Path>, opts: LoadOptions, backend: B) -> Result<Engine> {
        let forced = opts.host_fallback;
        Self::load_with(path.as_ref(), opts, Vec::new(), |load| {
            load.with(&|| Ok(HostFallback::new(backend.clone(), forced)))
        })
    }

    /// Reads the checkpoint, then `make` puts the model on its backend.
    fn load_with(
        path: &Path,
        opts: LoadOptions,
        fallback: Vec<String>,
        make: impl FnOnce(Load<'_>) -> Result<Arc<dyn Runner>>,
    ) -> Result<Engine> {
        let (cfg, store, vocab_tokenizer) = open_checkpoint(path, true)?;
        let (mut host, ple_table) = crate::weights::load(&store, &cfg)?;
        let mut loaded_bytes = 0u64;
        host.for_each(&mut |t| loaded_bytes += t.nbytes() as u64);
        if let Some(q) = opts.quant {
            host = crate::weights::quantize(&host, q)?;
        }
        let (mut weight_bytes, mut params) = (0u64, 0u64);
        host.for_each(&mut |t| {
            weight_bytes += t.nbytes() as u64;
            params += t.numel() as u64;
        });
        let ple_table_bytes = ple_table.as_ref().map_or(0, |t| t.nbytes() as u64);
        if let Some(t) = &ple_table {
            weight_bytes += ple_table_bytes;
            params += t.numel() as u64;
        }
        let reference = opts.precision == Precision::Reference;
        let mut done = 0u64;
        let mut progress = |n: usize| {
            done += n as u64;
            if let Some(p) = &opts.progress {
                p(done, weight_bytes);
            }
        };
        let runner = make(Load { cfg, host: &host, ple_table, reference, progress: &mut progress })?;
        let tok_path = opts.tokenizer.clone().unwrap_or_else(|| dir_of(path).join("tokenizer.json"));
        let tokenizer = match (tok_path.exists(), opts.tokenizer.is_some()) {
            (true, _) | (false, true) => Some(Arc::new(Tokenizer::from_file(&tok_path)?)),
            (false, false) => vocab_tokenizer.map(Arc::new),
        };
        let info = ModelInfo {
            path: path.to_path_buf(),
            weight_bytes,
            params,
            file_bytes: store.total_bytes(),
            unquantized_bytes: opts.quant.map(|_| loaded_bytes + ple_table_bytes),
            backend: runner.backend_name(),
            fallback,
        };
        Ok(Engine { runner, tokenizer, info })
    }

    /// The resolved model configuration.
    pub fn config(&self) -> &ModelConfig {
        self.runner.config()
    }

    /// The tokenizer, if the checkpoint has one.
    pub fn tokenizer(&self) -> Option<&Tokenizer> {
        self.tokenizer.as_deref()
    }

    /// Sizes and backend of the loaded model.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The backend's work counters: dispatches, copies, submissions and host syncs (device
    /// backends; zero on the CPU).
    pub fn device_stats(&self) -> garnet_kernels::DeviceStats {
        self.runner.stats()
    }

    /// Starts timing every op on the device (timestamp queries); false when the backend cannot.
    pub fn enable_profiling(&self) -> bool {
        self.runner.enable_profiling()
    }

    /// Device time per op since [`Engine::enable_profiling`], slowest first.
    pub fn profile(&self) -> garnet_kernels::OpTimes {
        self.runner.profile()
    }

    /// Calls per op that ran through the host fallback since load (ops the backend does not
    /// implement, or forced by [`LoadOptions::host_fallback`]).
    pub fn fallback_calls(&self) -> Vec<(garnet_kernels::Op, u64)> {
        self.runner.fallback_calls()
    }

    /// A new session with its own KV cache.
    pub fn session(&self, opts: SessionOptions) -> Result<Session> {
        let cfg = self.config();
        let max = cfg.max_position_embeddings;
        if opts.context == 0 || opts.prefill_chunk == 0 {
            return Err(Error::Invalid("context and prefill_chunk must be positive".into()));
        }
        if opts.context > max {
            return Err(Error::Invalid(format!("context {} exceeds the model's maximum {max}", opts.context)));
        }
        let (context, chunk) = (opts.context, opts.prefill_chunk.min(opts.context));
        // The buffers are sized from the config and the caller's context: check before allocating.
        let bytes = crate::kv::cache_bytes(cfg, context)
            .and_then(|kv| kv.checked_add(crate::model::scratch_bytes(cfg, chunk)?));
        let host = matches!(self.runner.backend_name(), "cpu" | "cpu-ref" | "cuda-emulated");
        match bytes {
            Some(b) if !host || crate::kv::host_can_allocate(b) => {}
            _ => {
                let need = bytes.map_or("more than 2^64".into(), |b| format!("{:.1} GB", b as f64 / 1e9));
                let why = format!(
                    "a session of {context} positions needs {need} of buffers, more than this machine can allocate"
                );
                return Err(Error::Invalid(why));
            }
        }
        let fwd = self.runner.clone().new_state(context, chunk)?;
        Ok(Session {
            fwd,
            runner: self.runner.clone(),
            tokenizer: self.tokenizer.clone(),
            context,
            history: vec![],
            pending: None,
        })
    }
}

/// The configuration, tensors and (GGUF) vocabulary of the checkpoint at `path`: a `.gguf` file,
/// a safetensors directory, or a `.safetensors` file with `config.json` beside it. A file is
/// opened as weights before its directory's config is read, so a file that is not a checkpoint
/// is reported as such, not as a missing `config.json`.
pub(crate) fn open_checkpoint(path: &Path, vocab: bool) -> Result<(ModelConfig, TensorStore, Option<Tokenizer>)> {
    if path.extension().is_some_and(|e| e == "gguf") {
        let file = GgufFile::open(path)?;
        let cfg = crate::gguf::model_config(&file)?;
        let tokenizer = if vocab { crate::gguf::tokenizer(&file)? } else { None };
        return Ok((cfg, file.into_store()?, tokenizer));
    }
    let meta = std::fs::metadata(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    if meta.is_dir() {
        return Ok((ModelConfig::load(path)?, TensorStore::open(path)?, None));
    }
    let store = TensorStore::open(path)?;
    Ok((ModelConfig::load(path)?, store, None))
}

fn dir_of(path: &Path) -> &Path {
    if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(Path::new("."))
    }
}

/// A conversation with the model: its KV cache and the tokens consumed so far.
pub struct Session {
    fwd: Box<dyn Forward>,
    runner: Arc<dyn Runner>,
    tokenizer: Option<Arc<Tokenizer>>,
    context: usize,
    history: Vec<u32>,
    /// A generated token not yet run through the model (it ended a generation).
    pending: Option<u32>,
}

impl Session {
    /// Positions this session can hold.
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

    fn run(&mut self, ids: &[u32], want: Logits) -> Result<Vec<f32>> {
        self.check(ids, 0)?;
        let out = match self.pending.take() {
            Some(p) => {
                let all: Vec<u32> = std::iter::once(p).chain(ids.iter().copied()).collect();
                self.fwd.forward(&all, want.shifted(1))
            }
            None => self.fwd.forward(ids, want),
        }?;
        let out = finite(out, self.runner.config().vocab_size)?;
        self.history.extend_from_slice(ids);
        Ok(out)
    }

    /// Checks ids against the vocabulary and `ids.len() + more` positions against the context.
    fn check(&self, ids: &[u32], more: usize) -> Result<()> {
        if ids.is_empty() {
            return Err(Error::Invalid("empty token sequence".into()));
        }
        let vocab = self.runner.config().vocab_size;
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::TokenOutOfRange { id, vocab });
        }
        let need = self.position().checked_add(ids.len()).and_then(|n| n.checked_add(more));
        match need {
            Some(need) if need <= self.context => {}
            _ => return Err(Error::ContextOverflow { need: need.unwrap_or(usize::MAX), ctx: self.context }),
        }
        Ok(())
    }

    fn tokenizer(&self) -> Result<Arc<Tokenizer>> {
        self.tokenizer.clone().ok_or_else(|| Error::Tokenizer("this checkpoint has no tokenizer.json".into()))
    }

    /// Raw completion: `<bos>` (at the start of a session) + `prompt`, then sampled tokens.
    pub fn generate(&mut self, prompt: &str, sampling: &Sampling) -> Result<Generation<'_>> {
        let ids = self.tokenizer()?.encode(prompt, self.position() == 0)?;
        self.generate_ids(&ids, sampling)
    }

    /// A chat turn in the model family's format; the model's reply streams back. Later turns
    /// continue the conversation: the model's previous turn is closed if it did not end so.
    pub fn chat(&mut self, messages: &[Message], sampling: &Sampling) -> Result<Generation<'_>> {
        let tok = self.tokenizer()?;
        let format = ChatFormat::for_arch(self.runner.config().arch);
        let mut text = format.format(messages, true);
        if self.position() > 0 {
            let closed = tok.token_id(format.end).is_some_and(|id| self.history.last() == Some(&id));
            let close = if closed { String::new() } else { format.end.to_string() };
            text.insert_str(0, &format!("{close}\n"));
        }
        let ids = tok.encode(&text, self.position() == 0)?;
        self.generate_ids(&ids, sampling)
    }

    /// Prefills `prompt` and returns an iterator over sampled tokens. Generation stops at a stop
    /// token (not yielded), after `max_new_tokens`, or when the iterator is dropped.
    pub fn generate_ids(&mut self, prompt: &[u32], sampling: &Sampling) -> Result<Generation<'_>> {
        sampling.validate()?;
        self.check(prompt, sampling.max_new_tokens)?;
        let sampler = Sampler::new(sampling)?;
        let cfg = self.runner.config();
        let mut stop = sampling.stop_tokens.clone().unwrap_or_else(|| cfg.eos_token_ids.clone());
        if sampling.stop_tokens.is_none() {
            let end = ChatFormat::for_arch(cfg.arch).end;
            if let Some(id) = self.tokenizer.as_ref().and_then(|t| t.token_id(end)) {
                stop.push(id);
            }
        }
        let decoder = self.tokenizer.clone().map(StreamDecoder::new);
        let start = Instant::now();
        let logits = self.prefill(prompt)?;
        Ok(Generation {
            prefill_time: start.elapsed(),
            prompt_tokens: prompt.len(),
            session: self,
            sampler,
            logits,
            stop,
            remaining: sampling.max_new_tokens,
            repeat_last_n: sampling.repeat_last_n,
            decoder,
            device_greedy: sampling.temperature == 0.0 && sampling.repetition_penalty == 1.0,
        })
    }
}

/// `logits` (rows of `vocab`) if every value is finite: the model's raw output is checked before
/// any sampling, scoring or penalty sees it, so broken weights or a broken backend are an error.
fn finite(logits: Vec<f32>, vocab: usize) -> Result<Vec<f32>> {
    match logits.iter().position(|x| !x.is_finite()) {
        None => Ok(logits),
        Some(i) => {
            Err(Error::NonFinite(format!("{} at row {}, token id {}", logits[i], i / vocab.max(1), i % vocab.max(1))))
        }
    }
}

/// One generated token.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// The offending id.
    pub id: u32,
    /// The text this token completes (may be empty while a multi-byte character is incomplete).
    pub text: String,
    /// Log-probability of the token under the model's distribution.
    pub logprob: f32,
}

/// Streaming generation: an iterator of tokens. Dropping it stops generation; the session keeps
/// every token generated so far in its cache.
pub struct Generation<'a> {
    session: &'a mut Session,
    sampler: Sampler,
    logits: Vec<f32>,
    stop: Vec<u32>,
    remaining: usize,
    repeat_last_n: usize,
    decoder: Option<StreamDecoder>,
    /// Greedy sampling with no repetition penalty: tokens after the first are chosen by the
    /// backend's `argmax` (one 8-byte read per token instead of the logits).
    device_greedy: bool,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Wall time of the prompt's prefill.
    pub prefill_time: Duration,
}

impl Generation<'_> {
    /// Text held back at the end (an incomplete UTF-8 sequence), decoded lossily.
    pub fn finish(&mut self) -> Result<String> {
        self.decoder.as_mut().map_or(Ok(String::new()), |d| d.finish())
    }

    fn next_token(&mut self) -> Result<Option<Token>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        // The token yielded last time runs now, so each token reaches the caller one forward
        // pass earlier (and a dropped iterator leaves it pending, not computed for nothing).
        let (id, logprob) = match self.session.pending.take() {
            // Greedy without penalties: chosen on the device, only the id comes back.
            Some(prev) if self.device_greedy => self.session.fwd.step_greedy(prev)?,
            pending => {
                if let Some(prev) = pending {
                    let logits = self.session.fwd.forward(&[prev], Logits::Last)?;
                    self.logits = finite(logits, self.session.runner.config().vocab_size)?;
                }
                let history = self.session.tokens();
                let recent = match self.repeat_last_n {
                    0 => history,
                    n => &history[history.len().saturating_sub(n)..],
                };
                self.sampler.sample(&self.logits, recent)?
            }
        };
        // Every sampled token, a stop token (e.g. `<turn|>`) included, belongs to the
        // conversation; it is run through the model when the next token (or prompt) needs it.
        self.session.pending = Some(id);
        self.session.history.push(id);
        if self.stop.contains(&id) {
            self.remaining = 0;
            return Ok(None);
        }
        self.remaining -= 1;
        let text = match &mut self.decoder {
            Some(d) => d.push(id)?,
            None => String::new(),
        };
        Ok(Some(Token { id, text, logprob }))
    }
}

impl Iterator for Generation<'_> {
    type Item = Result<Token>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_token() {
            Ok(t) => t.map(Ok),
            Err(e) => {
                self.remaining = 0;
                Some(Err(e))
            }
        }
    }
}

/// [`Engine::load`]'s model construction on the backend [`garnet_kernels::open`] chose.
struct Load<'a> {
    cfg: ModelConfig,
    host: &'a crate::weights::Weights<garnet_kernels::HostTensor>,
    ple_table: Option<garnet_kernels::HostTensor>,
    reference: bool,
    progress: &'a mut dyn FnMut(usize),
}

impl WithBackend for Load<'_> {
    type Output = Result<Arc<dyn Runner>>;
    fn with<B: Backend>(self, make: &dyn Fn() -> garnet_kernels::Result<HostFallback<B>>) -> Self::Output {
        let model = Model::new(self.cfg, make()?, self.host, self.ple_table, self.reference, self.progress)?;
        Ok(Arc::new(model))
    }
}
