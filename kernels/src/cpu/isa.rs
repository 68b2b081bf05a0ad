//! Which SIMD instruction set the fast CPU kernels use, detected once at start-up.
//!
//! Levels, best first: AVX-512 (F/BW/VL/DQ/VBMI + VNNI int8 dot products, with `avx512_bf16` bf16 dot
//! products where present), AVX2 + FMA + F16C, and `Portable` (plain Rust written for the
//! compiler's auto-vectoriser: NEON on aarch64, SSE2 on an old x86). Every kernel has a
//! `Portable` version, so a lower level is always available and tests run each level this
//! machine supports against the scalar reference.

/// An instruction-set level of the fast CPU kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust, auto-vectorised (NEON on aarch64).
    Portable,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// x86-64 AVX-512 F/BW/VL/DQ/VBMI/VNNI (Ice Lake, Zen 4 and later), without bf16 dot products.
    Avx512,
    /// AVX-512 as above plus `avx512_bf16` (`vdpbf16ps`): Zen 4, Sapphire Rapids.
    Avx512Bf16,
}

impl Isa {
    /// The best level this CPU supports (checked with `cpuid` once per call; cache the result).
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx512 =
                has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512dq") && has!("avx512vnni");
            let avx2 = has!("avx2") && has!("fma") && has!("f16c");
            if avx512 && avx2 && has!("avx512bf16") {
                return Isa::Avx512Bf16;
            }
            if avx512 && avx2 {
                return Isa::Avx512;
            }
            if avx2 {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// Every level, lowest first.
    pub const ALL: [Isa; 4] = [Isa::Portable, Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16];

    /// Every level this CPU supports, lowest first (the op tests run each).
    pub fn supported() -> Vec<Isa> {
        let best = Isa::detect();
        Isa::ALL.into_iter().filter(|&i| i <= best).collect()
    }

    /// Short name for reports: "avx512-bf16", "avx512", "avx2", "portable".
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Avx512Bf16 => "avx512-bf16",
        }
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Isa {
    type Err = crate::KernelError;
    /// A level by its [`Isa::name`] (`--cpu-isa avx2`).
    fn from_str(s: &str) -> crate::Result<Isa> {
        Isa::ALL.into_iter().find(|i| i.name() == s).ok_or_else(|| crate::KernelError::Invalid {
            what: format!("unknown CPU level {s:?} ({})", Isa::ALL.map(Isa::name).join(", ")),
        })
    }
}
