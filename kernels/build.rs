//! Compiles the CUDA kernels (`cuda/*.cu`) as host C++ against the emulator header
//! (`cuda/emu/cuda_emu.h`) into a static library, so the CUDA backend can run without a GPU
//! (`Cuda::emulated`, `garnet ops-test --backend cuda-emulated`).
//!
//! Without a C++ compiler the build goes on: the `garnet_cuda_emu` cfg stays unset and the
//! emulated backend reports itself unavailable, with this reason. With one, a kernel source that
//! does not compile fails the build (with the compiler's message).

fn main() {
    println!("cargo:rustc-check-cfg=cfg(garnet_cuda_emu)");
    println!("cargo:rerun-if-changed=cuda");
    // One translation unit per kernel file: cuda/emu/<module>.cpp.
    let mut units: Vec<_> = std::fs::read_dir("cuda/emu")
        .expect("kernels/cuda/emu exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cpp"))
        .collect();
    units.sort();
    let mut build = cc::Build::new();
    build.cpp(true);
    let have_compiler = build.try_get_compiler().is_ok_and(|c| c.to_command().arg("--version").output().is_ok());
    if !have_compiler {
        println!("cargo:warning=no C++ compiler: the CUDA emulator is not built");
        return;
    }
    let ok = build
        .std("c++17")
        .files(&units)
        .include("cuda")
        .define("GARNET_CUDA_EMU", None)
        .opt_level(2)
        // The kernels are written for the device: unused parameters and the like are expected.
        .warnings(false)
        .try_compile("garnet_cuda_emu");
    match ok {
        Ok(()) => println!("cargo:rustc-cfg=garnet_cuda_emu"),
        Err(e) => panic!("the CUDA kernels do not compile as host C++ (kernels/cuda): {e}"),
    }
}
