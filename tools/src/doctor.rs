//! `garnet doctor`: what this machine offers garnet. Lists the CPU's instruction set, the wgpu
//! adapters and CUDA devices with their limits and features, builds every shader pipeline on
//! the chosen adapter, and runs a quick self-test (the small ops-test cases) on each backend.
//! Exits non-zero when a shader fails to build or a self-test case fails.

use garnet::Error;
use garnet_kernels::opstest::BackendKind;

#[derive(clap::Args)]
pub struct Args {
    /// Skip the self-test (only list devices and build the shaders).
    #[arg(long)]
    no_selftest: bool,
}

pub fn main(a: Args) -> garnet::Result<()> {
    println!(
        "cpu: {} threads, kernels at {}",
        rayon::current_num_threads(),
        garnet_kernels::fast::Isa::detect().name()
    );
    let mut failures = 0usize;
    failures += wgpu_report(a.no_selftest)?;
    println!("cuda: backend not part of this build yet");
    if !a.no_selftest {
        failures += crate::opstest::selftest(BackendKind::Cpu)?;
    }
    if failures > 0 {
        return Err(Error::Invalid(format!("doctor: {failures} failure(s) above")));
    }
    println!("doctor: all good");
    Ok(())
}

#[cfg(feature = "wgpu")]
fn wgpu_report(no_selftest: bool) -> garnet::Result<usize> {
    use garnet_kernels::wgsl::{check, Wgpu};
    let all = check::adapter_reports();
    if all.is_empty() {
        println!("wgpu: no adapter found (without a GPU on Linux: apt install mesa-vulkan-drivers for lavapipe)");
        return Ok(0);
    }
    let yes = |b: bool| if b { "yes" } else { "no" };
    for (i, r) in all.iter().enumerate() {
        println!("wgpu adapter {i}: {}", r.description);
        println!(
            "  limits: storage binding {} MiB, buffer {} MiB, workgroup memory {} KiB, {} invocations/workgroup, \
             {} workgroups/dimension",
            r.max_binding >> 20,
            r.max_buffer >> 20,
            r.workgroup_memory >> 10,
            r.invocations,
            r.workgroups_per_dim
        );
        let sub = r.subgroups.map_or("no".to_string(), |(lo, hi)| format!("yes (sizes {lo}..{hi})"));
        println!(
            "  features: timestamp queries {}, shader-f16 {}, subgroups {sub}",
            yes(r.timestamps),
            yes(r.shader_f16)
        );
    }
    let backend = Wgpu::new()?;
    println!("wgpu: using {}", backend.gpu().describe());
    let results = check::compile_all(backend.gpu());
    let bad: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
    for (name, r) in &bad {
        if let Err(e) = r {
            println!("  shader FAILED {name}: {e}");
        }
    }
    println!("  shaders: {} of {} pipelines built", results.len() - bad.len(), results.len());
    let mut failures = bad.len();
    if !no_selftest {
        failures += crate::opstest::selftest(BackendKind::Wgpu)?;
    }
    Ok(failures)
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_report(_no_selftest: bool) -> garnet::Result<usize> {
    println!("wgpu: garnet was built without the `wgpu` feature");
    Ok(0)
}
