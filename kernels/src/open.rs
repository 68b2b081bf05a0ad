//! Which backend, with which numerics, opened by name: the one [`BackendKind`], the one
//! [`Precision`] and the one [`open`] that the engine's API, `garnet ops-test` and `garnet
//! doctor` use.

use crate::backend::Backend;
use crate::error::{KernelError, Result};
use crate::fallback::HostFallback;
use crate::op::OpSet;

/// A backend garnet can run on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// The fast CPU backend (SIMD kernels chosen at start-up, rayon threads).
    #[default]
    Cpu,
    /// The scalar CPU reference backend (the oracle; slow).
    CpuRef,
    /// WGSL compute shaders through wgpu (Vulkan, Metal, DX12; f32 activations).
    Wgpu,
    /// CUDA PTX through cudarc on the first GPU (sm_80 or later; only the driver is needed).
    Cuda,
    /// The CUDA kernels on the host emulator (for tests: every kernel runs as C++; slow).
    CudaEmulated,
    /// The best backend that can run here: CUDA, else a hardware wgpu adapter, else the CPU
    /// ([`BackendKind::resolve`]).
    Auto,
}

impl BackendKind {
    /// Every backend, `auto` last.
    pub const ALL: [BackendKind; 6] = [
        BackendKind::Cpu,
        BackendKind::CpuRef,
        BackendKind::Wgpu,
        BackendKind::Cuda,
        BackendKind::CudaEmulated,
        BackendKind::Auto,
    ];

    /// The name on the command line: `cpu`, `cpu-ref`, `wgpu`, `cuda`, `cuda-emulated`, `auto`.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::CpuRef => "cpu-ref",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
            BackendKind::CudaEmulated => "cuda-emulated",
            BackendKind::Auto => "auto",
        }
    }

    /// [`BackendKind::Auto`] made concrete: CUDA when a device answers, else wgpu on a hardware
    /// adapter (a software one such as lavapipe is slower than the CPU backend), else the CPU.
    /// Each backend passed over adds its reason to `why`. Other kinds are returned as they are.
    pub fn resolve(self, why: &mut Vec<String>) -> BackendKind {
        if self != BackendKind::Auto {
            return self;
        }
        match crate::cuda::probe() {
            Ok(()) => return BackendKind::Cuda,
            Err(e) => why.push(e.to_string()),
        }
        #[cfg(feature = "wgpu")]
        match crate::wgpu::hardware_adapter() {
            Ok(_) => return BackendKind::Wgpu,
            Err(e) => why.push(e),
        }
        BackendKind::Cpu
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for BackendKind {
    type Err = KernelError;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| KernelError::Invalid {
            what: format!("unknown backend {s:?} ({})", Self::ALL.map(|k| k.name()).join(", ")),
        })
    }
}

/// The numerics of a backend: how matrix products take their activations, and whether the
/// engine rounds its embedding scales to the weight dtype.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// As the model runs natively (the default): the embedding scales rounded to the weight
    /// dtype; the fast CPU backend quantizes matmul activations as llama.cpp does (8-bit blocks
    /// against block formats, bf16 in prefill GEMMs where the CPU has bf16 dot products); CUDA
    /// runs prefill GEMMs on tensor cores (bf16 / f16 activations, f32 accumulation).
    #[default]
    Native,
    /// HF transformers' f32 reference: f32 activations in every matmul, scales kept in f32 (what
    /// `garnet logits` and the golden tests use).
    Reference,
}

impl Precision {
    /// `native` or `reference`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Native => "native",
            Precision::Reference => "reference",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = KernelError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "native" => Ok(Precision::Native),
            "reference" => Ok(Precision::Reference),
            _ => Err(KernelError::Invalid { what: format!("unknown precision {s:?} (native, reference)") }),
        }
    }
}

/// What to do with a backend once [`open`] has chosen its type (the backends are distinct
/// types, so the caller's code is generic over them).
pub trait WithBackend {
    /// What [`WithBackend::with`] returns.
    type Output;
    /// Runs on the opened backend. `make` opens it (again: the ops-test makes a fresh backend
    /// after a case panicked), wrapped in the host fallback.
    fn with<B: Backend>(self, make: &dyn Fn() -> Result<HostFallback<B>>) -> Self::Output;
}

/// How [`open`] sets a backend up besides its kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Numerics.
    pub precision: Precision,
    /// Ops forced through the host fallback (`--host-fallback`).
    pub host_fallback: OpSet,
    /// The fast CPU backend's instruction-set level (`--cpu-isa`); `None`: the best this CPU
    /// has. Other backends ignore it.
    pub cpu_isa: Option<crate::cpu::Isa>,
}

/// Opens backend `kind` (`auto` resolved as [`BackendKind::resolve`] does) as `o` says, every op
/// in `o.host_fallback` forced through the host fallback, and hands it to `w`. Fails with
/// [`KernelError::Unavailable`] for a backend this build left out or a CPU level this CPU lacks;
/// a backend that cannot start here fails in `make`.
pub fn open<W: WithBackend>(kind: BackendKind, o: OpenOptions, w: W) -> Result<W::Output> {
    fn wrap<B: Backend>(b: B, forced: OpSet) -> HostFallback<B> {
        HostFallback::new(b, forced)
    }
    let (precision, f) = (o.precision, o.host_fallback);
    Ok(match kind.resolve(&mut Vec::new()) {
        BackendKind::Cpu => {
            let cpu = crate::cpu::FastCpu::at(o.cpu_isa, precision)?;
            w.with(&|| Ok(wrap(cpu, f)))
        }
        BackendKind::CpuRef => w.with(&|| Ok(wrap(crate::reference::RefCpu::new(), f))),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => w.with(&|| Ok(wrap(crate::wgpu::Wgpu::new()?, f))),
        #[cfg(not(feature = "wgpu"))]
        BackendKind::Wgpu => {
            return Err(KernelError::Unavailable {
                backend: "wgpu",
                why: "garnet was built without the `wgpu` feature".into(),
            })
        }
        BackendKind::Cuda => w.with(&|| Ok(wrap(crate::cuda::Cuda::new(0, precision)?, f))),
        BackendKind::CudaEmulated => w.with(&|| Ok(wrap(crate::cuda::Cuda::emulated(precision)?, f))),
        BackendKind::Auto => unreachable!("resolve never returns Auto"),
    })
}
