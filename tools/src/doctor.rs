//! `garnet doctor`: what this machine offers garnet. Lists the CPU's instruction set, the wgpu
//! adapters and CUDA devices with their limits and features, builds every shader pipeline on
//! the chosen adapter, and runs a quick self-test (the small ops-test cases) on each backend.
//! Exits non-zero when a shader fails to build or a self-test case fails.

use garnet::Error;
use garnet_kernels::BackendKind;

#[derive(clap::Args)]
pub struct Args {
    /// Skip the self-test (only list devices and build the shaders).
    #[arg(long)]
    no_selftest: bool,
}

pub fn main(a: Args) -> garnet::Result<()> {
    let levels: Vec<&str> = garnet_kernels::cpu::Isa::supported().into_iter().map(|i| i.name()).collect();
    outln!(
        "cpu: {} threads, kernels at {} (--cpu-isa: {})",
        rayon::current_num_threads(),
        garnet_kernels::cpu::Isa::detect(),
        levels.join(", ")
    )?;
    let mut failures = 0usize;
    failures += wgpu_report(a.no_selftest)?;
    failures += cuda_report(a.no_selftest)?;
    if !a.no_selftest {
        failures += crate::opstest::selftest(BackendKind::Cpu)?;
        failures += crate::opstest::selftest(BackendKind::CudaEmulated)?;
    }
    if failures > 0 {
        return Err(Error::Invalid(format!("doctor: {failures} failure(s) above")));
    }
    outln!("doctor: all good")?;
    Ok(())
}

#[cfg(feature = "wgpu")]
fn wgpu_report(no_selftest: bool) -> garnet::Result<usize> {
    use garnet_kernels::wgpu::{check, Wgpu};
    let all = check::adapter_reports();
    if all.is_empty() {
        outln!("wgpu: no adapter found (without a GPU on Linux: apt install mesa-vulkan-drivers for lavapipe)")?;
        return Ok(0);
    }
    let yes = |b: bool| if b { "yes" } else { "no" };
    for (i, r) in all.iter().enumerate() {
        outln!("wgpu adapter {i}: {}", r.description)?;
        outln!(
            "  limits: storage binding {} MiB, buffer {} MiB, workgroup memory {} KiB, {} invocations/workgroup, \
             {} workgroups/dimension",
            r.max_binding >> 20,
            r.max_buffer >> 20,
            r.workgroup_memory >> 10,
            r.invocations,
            r.workgroups_per_dim
        )?;
        let sub = r.subgroups.map_or("no".to_string(), |(lo, hi)| format!("yes (sizes {lo}..{hi})"));
        outln!(
            "  features: timestamp queries {}, shader-f16 {}, subgroups {sub}",
            yes(r.timestamps),
            yes(r.shader_f16)
        )?;
    }
    let backend = Wgpu::new()?;
    outln!("wgpu: using {}", backend.gpu().describe())?;
    let results = check::compile_all(backend.gpu());
    let bad: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
    for (name, r) in &bad {
        if let Err(e) = r {
            outln!("  shader FAILED {name}: {e}")?;
        }
    }
    outln!("  shaders: {} of {} pipelines built", results.len() - bad.len(), results.len())?;
    let mut failures = bad.len();
    if !no_selftest {
        failures += crate::opstest::selftest(BackendKind::Wgpu)?;
    }
    Ok(failures)
}

/// The NVIDIA driver and the first device, then the self-test on it; "unavailable" with the
/// reason when there is none (not a failure: most machines have no NVIDIA GPU).
#[cfg(feature = "cuda")]
fn cuda_report(no_selftest: bool) -> garnet::Result<usize> {
    use garnet_kernels::cuda::driver::Driver;
    use garnet_kernels::cuda::Cuda;
    use garnet_kernels::Precision;
    let gpu = match Cuda::<Driver>::new(0, Precision::Native) {
        Ok(g) => g,
        Err(e) => {
            outln!("cuda: {e}")?;
            return Ok(0);
        }
    };
    let i = gpu.device().info();
    outln!(
        "cuda: driver {}.{}, device {}: {}, sm_{}{}, {} SMs, {} MiB",
        i.driver_version / 1000,
        i.driver_version % 1000 / 10,
        i.ordinal,
        i.name,
        i.compute_capability.0,
        i.compute_capability.1,
        i.sms,
        i.memory >> 20
    )?;
    Ok(if no_selftest { 0 } else { crate::opstest::selftest(BackendKind::Cuda)? })
}

#[cfg(not(feature = "cuda"))]
fn cuda_report(_no_selftest: bool) -> garnet::Result<usize> {
    outln!("cuda: garnet was built without the `cuda` feature")?;
    Ok(0)
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_report(_no_selftest: bool) -> garnet::Result<usize> {
    outln!("wgpu: garnet was built without the `wgpu` feature")?;
    Ok(0)
}
