//! `garnet synth`: random-weight checkpoints with the exact tensor names and shapes of the released
//! Gemma 4 models (E2B, E4B, 26B-A4B, 31B), optionally cut to fewer layers, that
//! `garnet::api::Engine::load` loads and runs: test and benchmark models at real sizes without the
//! real weights.
//!
//! `--dtype bf16`: `config.json` (the released layout, settings under `text_config`) and one
//! `model.safetensors` (names under `model.language_model.`, every tensor BF16). `--dtype q8_0`
//! / `q4_0` / `q4_k_m` (or `--gguf`): one `model.gguf` in llama.cpp's gemma4 layout: matrices in
//! the dtype (q4_k_m: llama.cpp's mix, [`recipe`]), norms, scales, the router and `rope_freqs`
//! in F32; no tokenizer (the loader needs none) unless
//! `--vocab-from` gives one ([`vocab`]), so that llama.cpp loads the same file.
//! Files are written as `*.part` and renamed when complete; data is generated in parallel and
//! streamed ([`stream`]), so memory stays small for multi-GB outputs.

mod arch;
mod gguf_write;
mod recipe;
mod stream;
mod vocab;

use arch::{Plan, Spec, Variant};
use garnet::Error;
use garnet_kernels::DType;
use gguf_write::Value;
use indicatif::{ProgressBar, ProgressStyle};
use recipe::Recipe;
use std::path::{Path, PathBuf};
use std::time::Instant;
pub(crate) use stream::splitmix;

/// HF name prefix of the released (multimodal) checkpoints.
const PREFIX: &str = "model.language_model.";

#[derive(clap::Args)]
#[command(after_help = "\
Layer cuts keep the pattern: layer i is full attention when (i + 1) % p == 0 (p = 5 for E2B, 6 for the \
others) and the last layer always is.
KV sharing (E2B, E4B) scales with the cut: num_kv_shared_layers = max(1, round(S * N / L)) capped at N - p, \
so the unshared layers include a full-attention layer for the shared ones to read (S = 20 of L = 35 for E2B, \
18 of 42 for E4B; with N <= p layers there is no sharing).
Values: matrices U(-a, a) with a = sqrt(3 / row length) (the PLE table: sqrt(3 / 256)), norms and scales \
1 +- 0.1, layer_scalar 1; the same seed gives the same values in every dtype.")]
pub struct Args {
    /// Which released model's tensor names and shapes to reproduce.
    #[arg(long, value_enum)]
    arch: Variant,
    /// Keep N layers (default: all of the released model's).
    #[arg(long)]
    layers: Option<usize>,
    /// Weight dtype: bf16 (config.json + model.safetensors), or q8_0 / q4_0 / q4_k_m (model.gguf;
    /// q4_k_m is llama.cpp's mix of Q4_K and Q6_K).
    #[arg(long, default_value = "bf16", value_parser = Recipe::parse)]
    dtype: Recipe,
    /// Write model.gguf also for bf16 (matrices BF16, norms F32).
    #[arg(long)]
    gguf: bool,
    /// Seed of the random values.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Vocabulary size [default: 262144, as released]; smaller values make quick test models.
    #[arg(long)]
    vocab: Option<usize>,
    /// Write this tokenizer's vocabulary into the GGUF (a .gguf file's `tokenizer.*` keys, or a
    /// tokenizer.json as llama.cpp's gemma4 converter writes it), so llama.cpp loads the file.
    #[arg(long, value_name = "FILE")]
    vocab_from: Option<PathBuf>,
    /// Output directory (created if needed).
    #[arg(long, required_unless_present = "list")]
    out: Option<PathBuf>,
    /// Print the tensor table (name, dtype, shape) and the totals instead of writing anything.
    #[arg(long)]
    list: bool,
}

pub fn main(a: Args) -> garnet::Result<()> {
    let gguf = a.gguf || a.dtype.is_quantized();
    let (vocab_meta, vocab) = match &a.vocab_from {
        Some(_) if !gguf => {
            return Err(Error::Invalid("--vocab-from writes a GGUF: add --gguf or a block dtype".into()))
        }
        Some(path) => {
            let (meta, n) = vocab::metadata(path, a.vocab)?;
            (meta, Some(n))
        }
        None => (Vec::new(), a.vocab),
    };
    let plan = Plan::new(a.arch, a.layers, vocab).map_err(Error::Invalid)?;
    let specs = plan.tensors();
    let out = if gguf {
        gguf_output(&plan, &specs, a.dtype, a.seed, vocab_meta)
    } else {
        safetensors_output(&plan, &specs, a.dtype, a.seed)
    };
    let params: usize = specs.iter().filter(|s| s.hf.is_some()).map(Spec::numel).sum();
    let bytes = out.header.len() as u64 + stream::total_bytes(&out.jobs);
    if a.list {
        for (name, shape, dtype) in &out.tensors {
            outln!("{name}\t{}\t{shape:?}", dtype.name())?;
        }
        return outln!("{} tensors, {params} parameters, {bytes} bytes", out.tensors.len());
    }
    let Some(dir) = a.out else { return Err(Error::Invalid("--out DIR is required".into())) };
    let start = Instant::now();
    let path = dir.join(out.file);
    // The directory is built beside its final name and renamed when complete.
    let mut bytes = 0;
    garnet::files::create_dir_atomic(&dir, |tmp| {
        bytes = write_file(&tmp.join(out.file), &out.header, &out.jobs)?;
        if !gguf {
            let config = tmp.join("config.json");
            let text = serde_json::to_string_pretty(&plan.config_json()).unwrap_or_default() + "\n";
            std::fs::write(&config, text).map_err(|source| Error::Io { path: config, err: source })?;
        }
        Ok::<_, Error>(())
    })?;
    let secs = start.elapsed().as_secs_f64();
    outln!(
        "wrote {}: Gemma 4 {} ({} layers, {} KV-shared, vocab {}), {} {params} parameters, {bytes} bytes \
         ({:.2} GB) in {secs:.1} s ({:.2} GB/s)",
        path.display(),
        plan.released.name,
        plan.n_layers(),
        plan.n_shared,
        plan.vocab,
        a.dtype.name(),
        bytes as f64 / 1e9,
        bytes as f64 / 1e9 / secs.max(1e-9),
    )
}

/// A file to write: its name, header bytes, tensor table (name, shape, dtype) and data jobs.
struct Output {
    file: &'static str,
    header: Vec<u8>,
    tensors: Vec<(String, Vec<usize>, DType)>,
    jobs: Vec<stream::Job>,
}

fn job(spec: &Spec, dtype: DType, seed: u64, pad: usize) -> stream::Job {
    let key = spec.hf.as_deref().unwrap_or(&spec.gguf);
    stream::Job { init: spec.init.clone(), dtype, numel: spec.numel(), seed: stream::tensor_seed(seed, key), pad }
}

/// `model.gguf`: llama.cpp's names, every tensor (`rope_freqs` included); `vocab` metadata
/// replaces the plan's keys of the same name.
fn gguf_output(plan: &Plan, specs: &[Spec], recipe: Recipe, seed: u64, vocab: Vec<(String, Value)>) -> Output {
    let dtypes = recipe.dtypes(specs, plan.n_layers(), true);
    let tensors: Vec<gguf_write::Tensor> = specs
        .iter()
        .zip(dtypes)
        .map(|(s, dtype)| gguf_write::Tensor { name: s.gguf.clone(), shape: s.shape.clone(), dtype })
        .collect();
    let jobs = specs.iter().zip(&tensors).map(|(s, t)| job(s, t.dtype, seed, gguf_write::padding(t.nbytes()) as usize));
    Output {
        file: "model.gguf",
        header: gguf_write::header(&with_vocab(plan.gguf_metadata(recipe.file_type()), vocab), &tensors),
        jobs: jobs.collect(),
        tensors: tensors.into_iter().map(|t| (t.name, t.shape, t.dtype)).collect(),
    }
}

/// `meta` with the keys of `vocab` replaced by (or, if new, added as) `vocab`'s values.
fn with_vocab(mut meta: Vec<(String, Value)>, vocab: Vec<(String, Value)>) -> Vec<(String, Value)> {
    meta.retain(|(k, _)| !vocab.iter().any(|(v, _)| v == k));
    meta.extend(vocab);
    meta
}

/// `model.safetensors`: the released names (under [`PREFIX`]), no `rope_freqs`.
fn safetensors_output(plan: &Plan, specs: &[Spec], recipe: Recipe, seed: u64) -> Output {
    let dtypes = recipe.dtypes(specs, plan.n_layers(), false);
    let (specs, dtypes): (Vec<&Spec>, Vec<DType>) = specs.iter().zip(dtypes).filter(|(s, _)| s.hf.is_some()).unzip();
    let jobs: Vec<stream::Job> = specs.iter().zip(dtypes).map(|(s, d)| job(s, d, seed, 0)).collect();
    let tensors: Vec<(String, Vec<usize>, DType)> = specs
        .iter()
        .zip(&jobs)
        .map(|(s, j)| (format!("{PREFIX}{}", s.hf.as_deref().unwrap_or_default()), s.shape.clone(), j.dtype))
        .collect();
    let mut entries = serde_json::Map::new();
    let mut offset = 0u64;
    for ((name, shape, dtype), j) in tensors.iter().zip(&jobs) {
        let end = offset + stream::total_bytes(std::slice::from_ref(j));
        entries.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype.name(), "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    entries.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let mut json = serde_json::Value::Object(entries).to_string().into_bytes();
    // safetensors pads the header with spaces so the data section starts 8-byte aligned.
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut header = (json.len() as u64).to_le_bytes().to_vec();
    header.extend(json);
    Output { file: "model.safetensors", header, tensors, jobs }
}

/// Writes `header` and the jobs' data to `path` (atomically, see [`garnet::files::write_atomic`]),
/// with a progress bar on stderr for outputs over 1 GiB. Returns the bytes written.
fn write_file(path: &Path, header: &[u8], jobs: &[stream::Job]) -> garnet::Result<u64> {
    let total = header.len() as u64 + stream::total_bytes(jobs);
    let bar = if total > 1 << 30 { ProgressBar::new(total) } else { ProgressBar::hidden() };
    let style = ProgressStyle::with_template("writing {bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}");
    bar.set_style(style.unwrap_or_else(|_| ProgressStyle::default_bar()));
    let mut data = 0;
    let written = garnet::files::write_atomic(path, |out| {
        let io = |source| Error::Io { path: path.to_path_buf(), err: source };
        out.write_all(header).map_err(io)?;
        bar.inc(header.len() as u64);
        data = stream::write(&mut &mut *out, jobs, &bar).map_err(io)?;
        Ok::<_, Error>(())
    });
    bar.finish_and_clear();
    written.map(|()| header.len() as u64 + data)
}
