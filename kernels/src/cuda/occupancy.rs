//! Occupancy: how many blocks of a launch fit on one SM of an architecture, from its kernel's
//! registers and static shared memory as ptxas reports them (`kernels/cuda/ptx/usage.tsv`,
//! written and checked by `garnet ptx`) and its block size, by the rules of NVIDIA's occupancy
//! calculator: registers are allocated per warp in units of 256, shared memory per block in units
//! of 128 bytes plus 1 KiB the runtime reserves per block, and the SM caps warps and blocks. The
//! first piece of the emulator's performance model (no GPU is needed to know it).

/// One architecture's per-SM limits (CUDA C++ Programming Guide, compute capabilities table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arch {
    /// ptxas's target name.
    pub name: &'static str,
    /// Resident warps per SM.
    pub max_warps: u32,
    /// Resident blocks per SM.
    pub max_blocks: u32,
    /// Shared memory per SM at the largest carveout, bytes.
    pub smem: u32,
}

/// 32-bit registers per SM (every architecture here).
const REGS: u32 = 65536;
/// Registers are allocated per warp in units of this many.
const REG_UNIT: u32 = 256;
/// Shared memory is allocated per block in units of this many bytes ...
const SMEM_UNIT: u32 = 128;
/// ... on top of what the runtime reserves per block.
const SMEM_RESERVED: u32 = 1024;

/// A100, A10/RTX 30, L4/RTX 40, H100.
pub const ARCHS: [Arch; 4] = [
    Arch { name: "sm_80", max_warps: 64, max_blocks: 32, smem: 164 * 1024 },
    Arch { name: "sm_86", max_warps: 48, max_blocks: 16, smem: 100 * 1024 },
    Arch { name: "sm_89", max_warps: 48, max_blocks: 24, smem: 100 * 1024 },
    Arch { name: "sm_90", max_warps: 64, max_blocks: 32, smem: 228 * 1024 },
];

/// What ptxas reports of a kernel on one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Registers per thread.
    pub registers: u32,
    /// Static shared memory per block, bytes.
    pub smem: u32,
}

/// Blocks per SM and the fraction of the SM's warps they keep resident.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Occupancy {
    /// Resident blocks per SM (0: the block does not fit at all).
    pub blocks: u32,
    /// Resident warps over the SM's maximum.
    pub fraction: f64,
}

/// The occupancy of blocks of `threads` threads using `u` on `arch`.
pub fn occupancy(arch: &Arch, u: Usage, threads: u32) -> Occupancy {
    let warps = threads.div_ceil(32).max(1);
    let by_warps = arch.max_warps / warps;
    let per_warp = (u.registers * 32).div_ceil(REG_UNIT) * REG_UNIT;
    let by_regs = REGS.checked_div(per_warp).map_or(u32::MAX, |w| w / warps);
    let per_block = (u.smem + SMEM_RESERVED).div_ceil(SMEM_UNIT) * SMEM_UNIT;
    let by_smem = arch.smem / per_block;
    let blocks = arch.max_blocks.min(by_warps).min(by_regs).min(by_smem);
    Occupancy { blocks, fraction: f64::from(blocks * warps) / f64::from(arch.max_warps) }
}

/// `kernel`'s usage on `arch` from the embedded table, if listed.
pub fn usage(kernel: &str, arch: &Arch) -> Option<Usage> {
    include_str!("../../cuda/ptx/usage.tsv").lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        match f[..] {
            [k, t, r, s, _] if k == kernel && t == arch.name => {
                Some(Usage { registers: r.parse().ok()?, smem: s.parse().ok()? })
            }
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arch(name: &str) -> Arch {
        *ARCHS.iter().find(|a| a.name == name).unwrap()
    }

    /// Hand-computed with the calculator's rules.
    #[test]
    fn known_answers() {
        let u = |registers, smem| Usage { registers, smem };
        // 40 registers: 1280 per warp, 51 warps of registers, 12 blocks of 4 warps.
        let o = occupancy(&arch("sm_80"), u(40, 0), 128);
        assert_eq!((o.blocks, o.fraction), (12, 0.75));
        // The same on sm_86: 12 blocks are all 48 warps.
        assert_eq!(occupancy(&arch("sm_86"), u(40, 0), 128).blocks, 12);
        // 128 registers x 256 threads: 4096 per warp, 16 warps, 2 blocks of 8.
        let o = occupancy(&arch("sm_90"), u(128, 0), 256);
        assert_eq!((o.blocks, o.fraction), (2, 0.25));
        // Shared memory bound: (20480 + 1024) per block into 100 KiB gives 4.
        let o = occupancy(&arch("sm_86"), u(32, 20480), 128);
        assert_eq!(o.blocks, 4);
        assert!((o.fraction - 16.0 / 48.0).abs() < 1e-12);
        // Warp bound: 1024 threads on sm_86 leave room for one block.
        assert_eq!(occupancy(&arch("sm_86"), u(16, 0), 1024).blocks, 1);
        // Block bound: 32 threads, few registers: sm_86 caps at 16 blocks.
        assert_eq!(occupancy(&arch("sm_86"), u(16, 0), 32).blocks, 16);
        // Registers rounded up per warp: 33 registers take 1280 like 40 (1056 -> 1280).
        assert_eq!(occupancy(&arch("sm_80"), u(33, 0), 128).blocks, 12);
        // A block that cannot fit: 255 registers x 1024 threads.
        assert_eq!(occupancy(&arch("sm_80"), u(255, 0), 1024).blocks, 0);
    }

    /// The embedded table lists every kernel the backend launches, on every architecture.
    #[test]
    fn every_kernel_has_its_usage() {
        for k in crate::cuda::all_kernels() {
            for a in &ARCHS {
                let u = usage(k.entry, a).unwrap_or_else(|| panic!("{} on {}: not in usage.tsv", k.entry, a.name));
                assert!(u.registers > 0, "{} on {}", k.entry, a.name);
            }
        }
        // The decode matvec of Q4_K, 128 threads: resident blocks on every architecture.
        for a in &ARCHS {
            assert!(occupancy(a, usage("matvec_q4_k", a).unwrap(), 128).blocks > 0);
        }
    }
}
