//! Kernel entry points and the PTX modules holding them. Each op file declares its kernels as
//! [`Kernel`] constants with `kernel!` (module, entry name; the emulator entry is
//! `garnet_emu_<entry>`) and lists them in its `KERNELS`; [`super::all_kernels`] gathers them for
//! `garnet ptx --check`, which verifies every entry is in its module.
//!
//! A kernel specialised per weight dtype has one entry per device dtype, `<kernel>_<suffix>`,
//! indexed by the dtype's device code: `per_dtype!` builds such a table from the one list of
//! device dtypes, `for_device_dtypes!` (mirrored by `FOR_EACH_DTYPE` in `weights.cuh`, which
//! instantiates the entries in the `.cu` files and the emulator).

/// A `.cu` file under `kernels/cuda/`, compiled to one PTX module (`kernels/cuda/ptx/*.ptx`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Module {
    /// `elementwise.cu`: scale, add, softcap, geglu.
    Elementwise,
    /// `norm.cu`: rms_norm, add_rms_norm.
    Norm,
    /// `rope.cu`: rope.
    Rope,
    /// `embed.cu`: embedding and PLE row gather.
    Embed,
    /// `matmul.cu`: decode matvec, prefill GEMM (tensor cores, and an exact f32 path).
    Matmul,
    /// `attention.cu`: prefill and split decode attention, kv_write.
    Attention,
    /// `moe.cu`: routing and the selected experts' FFN.
    Moe,
    /// `sample.cu`: the next token on the device (argmax).
    Sample,
}

impl Module {
    /// Every module, in build order.
    pub const ALL: [Module; 8] = [
        Module::Elementwise,
        Module::Norm,
        Module::Rope,
        Module::Embed,
        Module::Matmul,
        Module::Attention,
        Module::Moe,
        Module::Sample,
    ];

    /// The file stem: `kernels/cuda/<stem>.cu` and `kernels/cuda/ptx/<stem>.ptx`.
    pub fn stem(self) -> &'static str {
        match self {
            Module::Elementwise => "elementwise",
            Module::Norm => "norm",
            Module::Rope => "rope",
            Module::Embed => "embed",
            Module::Matmul => "matmul",
            Module::Attention => "attention",
            Module::Moe => "moe",
            Module::Sample => "sample",
        }
    }

    /// The committed PTX (what `garnet ptx` last wrote).
    pub fn ptx(self) -> &'static str {
        match self {
            Module::Elementwise => include_str!("../../cuda/ptx/elementwise.ptx"),
            Module::Norm => include_str!("../../cuda/ptx/norm.ptx"),
            Module::Rope => include_str!("../../cuda/ptx/rope.ptx"),
            Module::Embed => include_str!("../../cuda/ptx/embed.ptx"),
            Module::Matmul => include_str!("../../cuda/ptx/matmul.ptx"),
            Module::Attention => include_str!("../../cuda/ptx/attention.ptx"),
            Module::Moe => include_str!("../../cuda/ptx/moe.ptx"),
            Module::Sample => include_str!("../../cuda/ptx/sample.ptx"),
        }
    }
}

/// An emulator entry point: `garnet_emu_<entry>` in `kernels/cuda/emu/<module>.cpp`, which runs
/// the whole grid and returns 0, or 1 with a message in the buffer.
pub type EmuFn = unsafe extern "C" fn(*const EmuLaunch, *const std::ffi::c_void, *mut std::ffi::c_char, usize) -> i32;

/// `emu::Launch`: grid and block sizes, where to add the memory model's totals (null: off), and
/// whether to run the race detector (threads resumed in an order drawn from `seed`).
#[repr(C)]
pub struct EmuLaunch {
    /// Blocks (x, y, z).
    pub grid: [u32; 3],
    /// Threads per block (x, y, z).
    pub block: [u32; 3],
    /// The launch's memory-model totals, or null.
    pub mem: *mut MemStats,
    /// The seed of the random scheduling order (with `races`).
    pub seed: u64,
    /// Nonzero: the race detector, and threads resumed in a random order.
    pub races: u32,
}

/// `emu::MemStats`: the memory-transaction model's totals (see `cuda_emu.h`): warp-level global
/// requests, the distinct bytes their lanes use, the 32-byte sectors and 128-byte lines those
/// touch; shared-memory requests and the wavefronts they take (bank conflicts add wavefronts).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemStats {
    /// Warp-level global loads and stores.
    pub global_requests: u64,
    /// Distinct bytes the lanes of those requests use.
    pub global_bytes: u64,
    /// 32-byte sectors they touch.
    pub global_sectors: u64,
    /// 128-byte lines they touch.
    pub global_lines: u64,
    /// Warp-level shared-memory loads and stores.
    pub shared_requests: u64,
    /// Wavefronts those take.
    pub shared_wavefronts: u64,
    /// Wavefronts they would take without bank conflicts: their phases (one per request of
    /// 4-byte accesses, two of 8-byte, four of 16-byte).
    pub shared_phases: u64,
}

impl MemStats {
    /// Bytes used over bytes fetched in whole sectors (1 when every fetched byte is used).
    pub fn sector_efficiency(&self) -> f64 {
        self.global_bytes as f64 / (32 * self.global_sectors).max(1) as f64
    }

    /// Extra wavefronts per shared request (0 without bank conflicts).
    pub fn bank_conflicts_per_request(&self) -> f64 {
        self.shared_wavefronts.saturating_sub(self.shared_phases) as f64 / self.shared_requests.max(1) as f64
    }

    /// `self - o`, field by field (`o` an earlier snapshot of the same totals).
    pub fn minus(&self, o: &MemStats) -> MemStats {
        MemStats {
            global_requests: self.global_requests.saturating_sub(o.global_requests),
            global_bytes: self.global_bytes.saturating_sub(o.global_bytes),
            global_sectors: self.global_sectors.saturating_sub(o.global_sectors),
            global_lines: self.global_lines.saturating_sub(o.global_lines),
            shared_requests: self.shared_requests.saturating_sub(o.shared_requests),
            shared_wavefronts: self.shared_wavefronts.saturating_sub(o.shared_wavefronts),
            shared_phases: self.shared_phases.saturating_sub(o.shared_phases),
        }
    }

    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &MemStats) {
        self.global_requests += o.global_requests;
        self.global_bytes += o.global_bytes;
        self.global_sectors += o.global_sectors;
        self.global_lines += o.global_lines;
        self.shared_requests += o.shared_requests;
        self.shared_wavefronts += o.shared_wavefronts;
        self.shared_phases += o.shared_phases;
    }
}

/// A kernel entry point.
#[derive(Clone, Copy)]
pub struct Kernel {
    /// Its module.
    pub module: Module,
    /// Its name in the PTX.
    pub entry: &'static str,
    /// Its emulator entry (`None` when this build has no emulator).
    pub emu: Option<EmuFn>,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}::{}", self.module.stem(), self.entry)
    }
}

impl PartialEq for Kernel {
    fn eq(&self, other: &Self) -> bool {
        self.module == other.module && self.entry == other.entry
    }
}
impl Eq for Kernel {}
impl std::hash::Hash for Kernel {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.module.hash(h);
        self.entry.hash(h);
    }
}

/// A [`Kernel`] constant: `kernel!(Module, "entry")`, declaring the emulator entry
/// `garnet_emu_<entry>` where the emulator is built (its symbols exist only then).
macro_rules! kernel {
    ($module:ident, $entry:expr) => {{
        #[cfg(garnet_cuda_emu)]
        extern "C" {
            #[link_name = concat!("garnet_emu_", $entry)]
            fn emu(
                l: *const $crate::cuda::kernels::EmuLaunch,
                p: *const std::ffi::c_void,
                err: *mut std::ffi::c_char,
                n: usize,
            ) -> i32;
        }
        #[cfg(garnet_cuda_emu)]
        let emu = Some(emu as $crate::cuda::kernels::EmuFn);
        #[cfg(not(garnet_cuda_emu))]
        let emu = None;
        $crate::cuda::kernels::Kernel { module: $crate::cuda::kernels::Module::$module, entry: $entry, emu }
    }};
}
pub(crate) use kernel;

/// The one list of the dtypes the CUDA kernels decode on the device, as entry-point suffixes in
/// device-code order (`Format::kernel_code`, checked by the test below; `FOR_EACH_DTYPE` in
/// `weights.cuh` is the same list): `for_device_dtypes!(m!(args))` is
/// `[m!(args "f32"), m!(args "f16"), ...]`.
macro_rules! for_device_dtypes {
    ($m:ident!($($args:tt)*)) => {
        [
            $m!($($args)* "f32"),
            $m!($($args)* "f16"),
            $m!($($args)* "bf16"),
            $m!($($args)* "q8_0"),
            $m!($($args)* "q4_0"),
            $m!($($args)* "q4_1"),
            $m!($($args)* "q5_0"),
            $m!($($args)* "q5_1"),
            $m!($($args)* "q2_k"),
            $m!($($args)* "q3_k"),
            $m!($($args)* "q4_k"),
            $m!($($args)* "q5_k"),
            $m!($($args)* "q6_k"),
            $m!($($args)* "q8_k"),
        ]
    };
}
pub(crate) use for_device_dtypes;

/// The entry `<prefix><suffix>` of `module` (a [`for_device_dtypes!`] item).
macro_rules! dtype_kernel {
    ($module:ident, $prefix:literal, $suffix:literal) => {
        $crate::cuda::kernels::kernel!($module, concat!($prefix, $suffix))
    };
}
pub(crate) use dtype_kernel;

/// One kernel per device dtype, indexed by the device code: `per_dtype!(Module, "matvec_")` is
/// `[kernel!(Module, "matvec_f32"), kernel!(Module, "matvec_f16"), ...]`.
macro_rules! per_dtype {
    ($module:ident, $prefix:literal) => {{
        use $crate::cuda::kernels::dtype_kernel;
        $crate::cuda::kernels::for_device_dtypes!(dtype_kernel!($module, $prefix,))
    }};
}
pub(crate) use per_dtype;

/// How many dtypes the device decodes: the length of every [`per_dtype!`] table (a list of
/// another length does not compile where a table is declared `[Kernel; DEVICE_DTYPES]`).
pub(crate) const DEVICE_DTYPES: usize = {
    let (mut i, mut n) = (0, 0);
    while i < crate::quant::FORMATS.len() {
        if crate::quant::FORMATS[i].kernel_code.is_some() {
            n += 1;
        }
        i += 1;
    }
    n
};

/// `N` kernels: the `Some` entries of `tables`, in order (`KERNELS` lists built from per-dtype
/// tables). Fails to compile if they are not exactly `N`.
pub(crate) const fn gather<const N: usize>(tables: &[&[Option<Kernel>]]) -> [Kernel; N] {
    let mut out: [Option<Kernel>; N] = [None; N];
    let (mut t, mut n) = (0, 0);
    while t < tables.len() {
        let mut i = 0;
        while i < tables[t].len() {
            if let Some(k) = tables[t][i] {
                assert!(n < N, "more kernels than declared");
                out[n] = Some(k);
                n += 1;
            }
            i += 1;
        }
        t += 1;
    }
    assert!(n == N, "fewer kernels than declared");
    let mut all = [match out[0] {
        Some(k) => k,
        None => panic!("no kernels"),
    }; N];
    let mut i = 0;
    while i < N {
        if let Some(k) = out[i] {
            all[i] = k;
        }
        i += 1;
    }
    all
}

/// `Some` of each kernel of a table (for [`gather`]).
pub(crate) const fn some<const N: usize>(table: [Kernel; N]) -> [Option<Kernel>; N] {
    let mut out = [None; N];
    let mut i = 0;
    while i < N {
        out[i] = Some(table[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::quant::FORMATS;

    /// `for_device_dtypes!` lists the formats with a device code, in code order, by their
    /// lower-case names.
    #[test]
    fn device_dtypes_follow_the_format_table() {
        macro_rules! suffix {
            ($s:literal) => {
                $s
            };
        }
        let suffixes = for_device_dtypes!(suffix!());
        let names: Vec<String> = FORMATS
            .iter()
            .filter(|f| f.kernel_code.is_some())
            .map(|f| (f.kernel_code, f.name.to_lowercase()))
            .enumerate()
            .map(|(i, (code, name))| {
                assert_eq!(code, Some(i as u32), "{name}");
                name
            })
            .collect();
        assert_eq!(suffixes.as_slice(), names.as_slice());
    }
}
