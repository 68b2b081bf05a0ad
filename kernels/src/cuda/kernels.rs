//! Kernel entry points and the PTX modules holding them. Each op file declares its kernels as
//! [`Kernel`] constants with `kernel!` (module, entry name, emulator entry) and lists them in its
//! `KERNELS`; [`super::all_kernels`] gathers them for `garnet ptx --check`, which verifies every
//! entry is in its module.

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
    /// `matvec.cu`: decode matvec.
    Matvec,
    /// `gemm.cu`: prefill GEMM (tensor cores, and an exact f32 path).
    Gemm,
    /// `attention.cu`: prefill and split decode attention, kv_write.
    Attention,
    /// `moe.cu`: routing and the selected experts' FFN.
    Moe,
    /// `sample.cu`: the next token on the device (argmax).
    Sample,
}

impl Module {
    /// Every module, in build order.
    pub const ALL: [Module; 9] = [
        Module::Elementwise,
        Module::Norm,
        Module::Rope,
        Module::Embed,
        Module::Matvec,
        Module::Gemm,
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
            Module::Matvec => "matvec",
            Module::Gemm => "gemm",
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
            Module::Matvec => include_str!("../../cuda/ptx/matvec.ptx"),
            Module::Gemm => include_str!("../../cuda/ptx/gemm.ptx"),
            Module::Attention => include_str!("../../cuda/ptx/attention.ptx"),
            Module::Moe => include_str!("../../cuda/ptx/moe.ptx"),
            Module::Sample => include_str!("../../cuda/ptx/sample.ptx"),
        }
    }
}

/// An emulator entry point: `garnet_emu_<entry>` in `kernels/cuda/emu/<module>.cpp`, which runs
/// the whole grid and returns 0, or 1 with a message in the buffer.
pub type EmuFn = unsafe extern "C" fn(*const EmuLaunch, *const std::ffi::c_void, *mut std::ffi::c_char, usize) -> i32;

/// `emu::Launch`: grid and block sizes.
#[repr(C)]
pub struct EmuLaunch {
    /// Blocks (x, y, z).
    pub grid: [u32; 3],
    /// Threads per block (x, y, z).
    pub block: [u32; 3],
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

/// A [`Kernel`] constant: `kernel!(Module, "entry", garnet_emu_entry)`, declaring the emulator
/// entry where the emulator is built (its symbols exist only then).
macro_rules! kernel {
    ($module:ident, $entry:literal, $emu:ident) => {{
        #[cfg(garnet_cuda_emu)]
        extern "C" {
            fn $emu(
                l: *const $crate::cuda::kernels::EmuLaunch,
                p: *const std::ffi::c_void,
                err: *mut std::ffi::c_char,
                n: usize,
            ) -> i32;
        }
        #[cfg(garnet_cuda_emu)]
        let emu = Some($emu as $crate::cuda::kernels::EmuFn);
        #[cfg(not(garnet_cuda_emu))]
        let emu = None;
        $crate::cuda::kernels::Kernel { module: $crate::cuda::kernels::Module::$module, entry: $entry, emu }
    }};
}
pub(crate) use kernel;
