//! The public API: [`Engine`] (a loaded model, shared) and [`Session`] (a conversation with its
//! own KV cache), plus the streaming [`Generation`] iterator (`GenerationStream` with the
//! `async` feature).

mod generation;
mod session;
#[cfg(feature = "async")]
mod stream;

pub use generation::{CancelHandle, FinishReason, GenerateOptions, Generation, Token, Usage};
pub use session::Session;
#[cfg(feature = "async")]
pub use stream::GenerationStream;

use crate::chat::{ChatFormat, Message};
use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::model::{Model, Runner};
use crate::store::TensorStore;
use crate::template::ChatTemplate;
use crate::tokenizer::Tokenizer;
use garnet_kernels::{Backend, HostFallback, WithBackend};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use garnet_kernels::cpu::Isa;
pub use garnet_kernels::{BackendKind, DType, DeviceStats, KernelError, Op, OpSet, OpTimes, Precision};

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
    /// Quantize the float matrices at load ([`DType::Q8_0`], [`DType::Q4_0`] or [`DType::Q4_K`]);
    /// see [`crate::weights::quantize`].
    pub quant: Option<DType>,
    /// Ops forced through the host fallback (`--host-fallback`: bring-up and tests).
    pub host_fallback: OpSet,
    /// The CPU backend's instruction-set level (`--cpu-isa`); `None`: the best this CPU has.
    pub cpu_isa: Option<Isa>,
    /// Worker threads of the CPU kernels: `Some(n)` gives the engine its own pool of `n` threads,
    /// which runs every forward pass, sampling and logits processor of its sessions; `None` uses
    /// rayon's global pool (one thread per core unless `RAYON_NUM_THREADS` says otherwise).
    pub threads: Option<usize>,
}

/// How to open a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// Positions of context (prompt + generation); a value over the model's maximum
    /// (`max_position_embeddings`) is capped to it ([`Session::context`] says what was used).
    pub context: usize,
    /// Prompt tokens per forward chunk (bounds scratch memory; a cancel interrupts a prefill
    /// between chunks).
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
    pool: Option<Arc<rayon::ThreadPool>>,
    chat: Arc<ChatSetup>,
}

/// The checkpoint's chat template and the `<bos>` / `<eos>` strings it renders.
pub(crate) struct ChatSetup {
    pub template: ChatTemplate,
    pub bos: String,
    pub eos: String,
}

/// Runs `f` in `pool` (the engine's own threads), or on the caller's thread when there is none.
pub(crate) fn in_pool<R: Send>(pool: &Option<Arc<rayon::ThreadPool>>, f: impl FnOnce() -> R + Send) -> R {
    match pool {
        Some(p) => p.install(f),
        None => f(),
    }
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
        let pool = match opts.threads {
            None => None,
            Some(0) => return Err(Error::Invalid("threads must be positive".into())),
            Some(n) => {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build();
                Some(Arc::new(pool.map_err(|e| Error::Invalid(format!("a pool of {n} threads: {e}")))?))
            }
        };
        let (cfg, store, vocab_tokenizer) = open_checkpoint(path, true)?;
        let (mut host, ple_table) = crate::weights::load(&store, &cfg)?;
        let mut loaded_bytes = 0u64;
        host.for_each(&mut |t| loaded_bytes += t.nbytes() as u64);
        if let Some(q) = opts.quant {
            host = in_pool(&pool, || crate::weights::quantize(&host, q))?;
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
        let gguf_template = match path.extension().is_some_and(|e| e == "gguf") {
            true => GgufFile::open(path)?.chat_template().map(str::to_string),
            false => None,
        };
        let template = ChatTemplate::for_checkpoint(path, runner.config().arch, gguf_template.as_deref())?;
        let (bos, eos) = crate::template::special_tokens(path);
        let chat = Arc::new(ChatSetup { template, bos, eos });
        Ok(Engine { runner, tokenizer, info, pool, chat })
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
    pub fn device_stats(&self) -> DeviceStats {
        self.runner.stats()
    }

    /// Starts timing every op on the device (timestamp queries); false when the backend cannot.
    pub fn enable_profiling(&self) -> bool {
        self.runner.enable_profiling()
    }

    /// Device time per op since [`Engine::enable_profiling`], slowest first.
    pub fn profile(&self) -> OpTimes {
        self.runner.profile()
    }

    /// Calls per op that ran through the host fallback since load (ops the backend does not
    /// implement, or forced by [`LoadOptions::host_fallback`]).
    pub fn fallback_calls(&self) -> Vec<(Op, u64)> {
        self.runner.fallback_calls()
    }

    /// The token ids that end a generation by default (when [`crate::Sampling::stop_tokens`] is
    /// `None`): the checkpoint's end-of-sequence ids and the chat format's end-of-turn token.
    /// To stop on more, pass `Some` of these extended.
    pub fn stop_tokens(&self) -> Vec<u32> {
        let cfg = self.config();
        let mut stop = cfg.eos_token_ids.clone();
        // The end of a turn, and Gemma 4's `<|tool_response>`: the model waits for a tool's result.
        for end in [ChatFormat::for_arch(cfg.arch).end, crate::reply::TOOL_RESPONSE_START] {
            if let Some(id) = self.tokenizer.as_ref().and_then(|t| t.token_id(end)) {
                if !stop.contains(&id) {
                    stop.push(id);
                }
            }
        }
        stop
    }

    /// The chat template [`Session::chat`] renders: the checkpoint's own (`chat_template.jinja`,
    /// `tokenizer_config.json`, GGUF metadata), else the family's built-in format.
    pub fn chat_template(&self) -> &ChatTemplate {
        &self.chat.template
    }

    /// The prompt [`Session::chat`] would run for `messages` (the whole conversation) with the
    /// chat options of `opts`, `<bos>` included.
    pub fn render_chat(&self, messages: &[Message], opts: &GenerateOptions) -> Result<String> {
        self.chat.render(messages, opts)
    }

    /// Worker threads the CPU kernels of this engine's sessions run on.
    pub fn threads(&self) -> usize {
        self.pool.as_ref().map_or_else(rayon::current_num_threads, |p| p.current_num_threads())
    }

    /// A new session with its own KV cache. A context over the model's maximum is capped to it.
    pub fn session(&self, opts: SessionOptions) -> Result<Session> {
        let cfg = self.config();
        let max = cfg.max_position_embeddings;
        if opts.context == 0 || opts.prefill_chunk == 0 {
            return Err(Error::Invalid("context and prefill_chunk must be positive".into()));
        }
        let context = opts.context.min(max);
        let chunk = opts.prefill_chunk.min(context);
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
        Ok(Session::new(self, fwd, context, chunk))
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
    let meta = std::fs::metadata(path).map_err(|source| Error::Io { path: path.to_path_buf(), err: source })?;
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

impl ChatSetup {
    /// The template's rendering of `messages` with the chat options of `opts`, as HF's
    /// `apply_chat_template(messages, tools=..., add_generation_prompt=True, enable_thinking=...)`.
    pub fn render(&self, messages: &[Message], opts: &GenerateOptions) -> Result<String> {
        let mut request = opts.template_args.clone();
        request.insert("messages".into(), chat_dicts(messages).into());
        if !opts.tools.is_empty() {
            request.insert("tools".into(), opts.tools.clone().into());
        }
        request.insert("enable_thinking".into(), opts.enable_thinking.into());
        request.insert("add_generation_prompt".into(), true.into());
        self.template.render(&serde_json::Value::Object(request), &self.bos, &self.eos)
    }
}

/// The HF chat dicts of `messages`, a tool message's responses folded into the model message
/// before it as its `tool_responses` (Gemma's own form, which its template renders as structured
/// `response:NAME{...}` blocks; a `tool` role message is read for its `content` only).
fn chat_dicts(messages: &[Message]) -> Vec<serde_json::Value> {
    let mut out: Vec<serde_json::Value> = Vec::with_capacity(messages.len());
    for m in messages {
        let mut dict = m.to_json();
        let calls = |p: &&mut serde_json::Value| p["role"] == "assistant" && p.get("tool_calls").is_some();
        if let Some(prev) = out.last_mut().filter(calls).filter(|_| m.role == crate::chat::Role::Tool) {
            let new = dict["tool_responses"].take();
            if let (Some(obj), serde_json::Value::Array(new)) = (prev.as_object_mut(), new) {
                let list = obj.entry("tool_responses").or_insert_with(|| serde_json::Value::Array(vec![]));
                if let Some(list) = list.as_array_mut() {
                    list.extend(new);
                }
                continue;
            }
        }
        out.push(dict);
    }
    out
}

/// `logits` (rows of `vocab`) if every value is finite: the model's raw output is checked before
/// any sampling, scoring or penalty sees it, so broken weights or a broken backend are an error.
pub(super) fn finite(logits: Vec<f32>, vocab: usize) -> Result<Vec<f32>> {
    match logits.iter().position(|x| !x.is_finite()) {
        None => Ok(logits),
        Some(i) => {
            Err(Error::NonFinite(format!("{} at row {}, token id {}", logits[i], i / vocab.max(1), i % vocab.max(1))))
        }
    }
}
