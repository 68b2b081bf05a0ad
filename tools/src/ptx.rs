//! `garnet ptx [--check]`: the CUDA kernels' PTX from their sources.
//!
//! Compiles every `kernels/cuda/<module>.cu` with NVRTC 12.4 for compute_80 and writes
//! `kernels/cuda/ptx/<module>.ptx` (what the crate embeds and the driver JIT-compiles). With
//! `--check` it writes nothing: it fails when a committed PTX differs from what the sources give
//! (stale), when an entry point the backend launches is missing from its module, when `ptxas`
//! rejects a module for sm_80, sm_86, sm_89, sm_90 or sm_120, or when any kernel spills
//! registers. Either way it prints registers, shared memory and spills per kernel and target,
//! and writes (or checks) them as `kernels/cuda/ptx/usage.tsv`, which the crate embeds for its
//! occupancy model (`cuda::occupancy`).
//!
//! The toolkit pieces come from PyPI (`scripts/fetch-cuda.sh`): `--cuda DIR`, else
//! `$GARNET_CUDA_DIR`, else the script's cache directory. No GPU or driver is involved.

use garnet::Error;
use garnet_kernels::cuda::kernels::Module;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The targets every PTX module must assemble for.
const TARGETS: [&str; 5] = ["sm_80", "sm_86", "sm_89", "sm_90", "sm_120"];
/// The NVRTC the committed PTX comes from (its PTX ISA decides the oldest driver: 8.4, R550).
const NVRTC_VERSION: (i32, i32) = (12, 4);

#[derive(clap::Args)]
pub struct Args {
    /// Check instead of write: PTX current, every target assembles, no spills.
    #[arg(long)]
    check: bool,
    /// The directory from scripts/fetch-cuda.sh (NVRTC and ptxas wheels).
    #[arg(long)]
    cuda: Option<PathBuf>,
    /// The kernel sources (default: this checkout's kernels/cuda).
    #[arg(long)]
    src: Option<PathBuf>,
}

/// What ptxas says of one kernel on one target.
#[derive(Clone, Debug, Default)]
struct Usage {
    registers: u32,
    smem: u32,
    stack: u32,
    spill_stores: u32,
    spill_loads: u32,
}

pub fn main(a: Args) -> garnet::Result<()> {
    let src = a.src.unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernels/cuda"));
    let cuda = match a.cuda.or_else(|| std::env::var_os("GARNET_CUDA_DIR").map(PathBuf::from)) {
        Some(d) => d,
        None => {
            let cache = std::env::var_os("GARNET_CACHE")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/garnet")))
                .ok_or_else(|| Error::Invalid("ptx: no --cuda, GARNET_CUDA_DIR or HOME".into()))?;
            cache.join("cuda-nvrtc12.4-ptxas12.9")
        }
    };
    let nvrtc = cuda.join("nvidia/cuda_nvrtc/lib/libnvrtc.so.12");
    let ptxas = cuda.join("nvidia/cuda_nvcc/bin/ptxas");
    for p in [&nvrtc, &ptxas] {
        if !p.exists() {
            return Err(Error::Invalid(format!(
                "ptx: {} not found; run scripts/fetch-cuda.sh and pass its directory with --cuda",
                p.display()
            )));
        }
    }
    load_nvrtc(&nvrtc)?;
    let mut failures = Vec::new();
    let mut table: BTreeMap<(String, String), Vec<(&str, Usage)>> = BTreeMap::new();
    for m in Module::ALL {
        let ptx = compile(&src, m)?;
        let out = src.join("ptx").join(format!("{}.ptx", m.stem()));
        if a.check {
            let committed = std::fs::read_to_string(&out).unwrap_or_default();
            if committed != ptx {
                failures.push(format!("{}: stale (run `garnet ptx` and commit it)", out.display()));
            }
        } else {
            let io = |source| Error::Io { path: out.clone(), err: source };
            garnet::files::write_atomic(&out, |w| w.write_all(ptx.as_bytes()).map_err(io))?;
            outln!("wrote {}", out.display())?;
        }
        for k in garnet_kernels::cuda::all_kernels().iter().filter(|k| k.module == m) {
            if !ptx.contains(&format!(".entry {}(", k.entry)) {
                failures.push(format!("{}.ptx: no entry point {}", m.stem(), k.entry));
            }
        }
        let tmp = std::env::temp_dir().join(format!("garnet-ptx-{}-{}.ptx", std::process::id(), m.stem()));
        std::fs::write(&tmp, &ptx).map_err(|e| Error::Invalid(format!("ptx: {e}")))?;
        for target in TARGETS {
            let o = Command::new(&ptxas)
                .args(["-v", &format!("-arch={target}"), "-o", "/dev/null"])
                .arg(&tmp)
                .output()
                .map_err(|e| Error::Invalid(format!("ptx: running {}: {e}", ptxas.display())))?;
            let text = String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
            if !o.status.success() {
                failures.push(format!("{}.ptx on {target}: ptxas failed:\n{text}", m.stem()));
                continue;
            }
            for (kernel, u) in parse_ptxas(&text) {
                if u.spill_stores + u.spill_loads > 0 {
                    failures.push(format!(
                        "{}::{kernel} on {target}: spills ({} bytes stored, {} loaded)",
                        m.stem(),
                        u.spill_stores,
                        u.spill_loads
                    ));
                }
                table.entry((m.stem().to_string(), kernel)).or_default().push((target, u));
            }
        }
        let _ = std::fs::remove_file(&tmp);
    }
    print_table(&table)?;
    let usage = usage_tsv(&table);
    let out = src.join("ptx/usage.tsv");
    if a.check {
        if std::fs::read_to_string(&out).unwrap_or_default() != usage {
            failures.push(format!("{}: stale (run `garnet ptx` and commit it)", out.display()));
        }
    } else {
        let io = |source| Error::Io { path: out.clone(), err: source };
        garnet::files::write_atomic(&out, |w| w.write_all(usage.as_bytes()).map_err(io))?;
        outln!("wrote {}", out.display())?;
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("ptx: {f}");
        }
        return Err(Error::Invalid(format!("ptx --check: {} problem(s)", failures.len())));
    }
    outln!(
        "ptx: {} kernels in {} modules: {}, assembled for {}, no spills",
        table.len(),
        Module::ALL.len(),
        if a.check { "PTX current" } else { "PTX written" },
        TARGETS.join(", ")
    )?;
    Ok(())
}

/// Loads the wheel's NVRTC by path, so cudarc's lookup by name (`libnvrtc.so.12`) finds it
/// already loaded, and checks its version.
fn load_nvrtc(path: &Path) -> garnet::Result<()> {
    // SAFETY: loading NVRTC runs only its initialisers; the library stays loaded for the
    // process (leaked on purpose: cudarc keeps using it).
    let lib = unsafe { libloading::Library::new(path) }
        .map_err(|e| Error::Invalid(format!("ptx: loading {}: {e}", path.display())))?;
    std::mem::forget(lib);
    // SAFETY: only dlopens candidate names; the library was loaded above.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(Error::Invalid(format!("ptx: NVRTC at {} not usable", path.display())));
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: writes two ints.
    unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| Error::Invalid(format!("ptx: nvrtcVersion: {e:?}")))?;
    let v = (major, minor);
    if v != NVRTC_VERSION {
        return Err(Error::Invalid(format!(
            "ptx: NVRTC {}.{} found, the committed PTX is {}.{}'s (scripts/fetch-cuda.sh installs it)",
            v.0, v.1, NVRTC_VERSION.0, NVRTC_VERSION.1
        )));
    }
    Ok(())
}

fn compile(src: &Path, m: Module) -> garnet::Result<String> {
    let file = src.join(format!("{}.cu", m.stem()));
    let code = std::fs::read_to_string(&file).map_err(|e| Error::Invalid(format!("ptx: {}: {e}", file.display())))?;
    let opts = cudarc::nvrtc::CompileOptions {
        arch: Some("compute_80"),
        include_paths: vec![src.display().to_string()],
        // No FMA contraction: `a * b + c` stays two roundings, as in the host emulator (g++,
        // ISO C++) and the Rust reference, so decoding and RoPE match `quant/` bit for bit;
        // kernels that want a fused multiply-add say `fmaf`.
        options: vec!["--std=c++17".into(), "--fmad=false".into()],
        name: Some(format!("{}.cu", m.stem())),
        ..Default::default()
    };
    let ptx = cudarc::nvrtc::compile_ptx_with_opts(code, opts)
        .map_err(|e| Error::Invalid(format!("ptx: NVRTC on {}: {e:?}", file.display())))?;
    Ok(ptx.to_src())
}

/// Per kernel: ptxas -v's "Compiling entry function 'k'", "N bytes stack frame, S bytes spill
/// stores, L bytes spill loads" and "Used R registers, ... B bytes smem" lines.
fn parse_ptxas(text: &str) -> Vec<(String, Usage)> {
    let mut out: Vec<(String, Usage)> = Vec::new();
    let num_before = |line: &str, unit: &str| -> u32 {
        line.split(',')
            .find_map(|part| {
                let part = part.trim();
                let rest = part.strip_suffix(unit)?;
                rest.split_whitespace().last()?.parse().ok()
            })
            .unwrap_or(0)
    };
    for line in text.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            let name = rest.split('\'').next().unwrap_or("").to_string();
            out.push((name, Usage::default()));
        } else if let Some((_, u)) = out.last_mut() {
            if line.contains("spill stores") {
                u.stack = num_before(line, "bytes stack frame");
                u.spill_stores = num_before(line, "bytes spill stores");
                u.spill_loads = num_before(line, "bytes spill loads");
            } else if line.contains("Used") && line.contains("registers") {
                u.registers = line
                    .split("Used ")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                u.smem = num_before(line, "bytes smem");
            }
        }
    }
    out
}

/// The table as tab-separated lines: kernel, target, registers, static shared bytes, stack bytes.
fn usage_tsv(table: &BTreeMap<(String, String), Vec<(&str, Usage)>>) -> String {
    let mut s =
        String::from("# kernel\ttarget\tregisters\tshared_bytes\tstack_bytes (ptxas -v; written by `garnet ptx`)\n");
    for ((_, kernel), per) in table {
        for (t, u) in per {
            s += &format!("{kernel}\t{t}\t{}\t{}\t{}\n", u.registers, u.smem, u.stack);
        }
    }
    s
}

fn print_table(table: &BTreeMap<(String, String), Vec<(&str, Usage)>>) -> garnet::Result<()> {
    outln!(
        "{:<12} {:<24} registers (r) / shared bytes (s) / stack bytes (k) / spilled bytes per target",
        "module",
        "kernel"
    )?;
    for ((module, kernel), per) in table {
        let cells: Vec<String> = per
            .iter()
            .map(|(t, u)| format!("{t} {}r {}s {}k {}", u.registers, u.smem, u.stack, u.spill_stores + u.spill_loads))
            .collect();
        outln!("{module:<12} {kernel:<24} {}", cells.join(" | "))?;
    }
    Ok(())
}
