//! Every CUDA kernel is checked against the reference: the whole ops-test case list runs on the
//! emulated CUDA backend with per-kernel counting on (the matmul cases once more with exact
//! numerics, the path of the goldens), and every entry point of every module
//! (`cuda::all_kernels()`) must have run at least once while the cases passed.
#![cfg(garnet_cuda_emu)]

use garnet_kernels::cuda::Cuda;
use garnet_kernels::opstest::{cases, run};
use garnet_kernels::Precision;
use garnet_kernels::{Backend, Op};
use std::collections::BTreeSet;

#[test]
fn the_ops_test_runs_every_cuda_kernel() {
    let mut ran = BTreeSet::new();
    let mut failed = Vec::new();
    for precision in [Precision::Native, Precision::Reference] {
        let be = Cuda::emulated(precision).unwrap();
        assert!(be.enable_profiling());
        let all = cases();
        let list = match precision {
            Precision::Native => all,
            Precision::Reference => all.into_iter().filter(|c| c.op() == Op::Matmul).collect(),
        };
        for case in list {
            let o = run(&be, &case, false);
            if !o.passed {
                failed.push(format!("{precision:?} {}: {}", case.name(), o.describe()));
            }
        }
        ran.extend(be.profile().iter().map(|(k, _, _)| *k));
    }
    assert!(failed.is_empty(), "failed on cuda-emulated:\n{}", failed.join("\n"));
    let missing: Vec<&str> =
        garnet_kernels::cuda::all_kernels().iter().map(|k| k.entry).filter(|e| !ran.contains(e)).collect();
    println!(
        "{} of {} kernels ran",
        garnet_kernels::cuda::all_kernels().len() - missing.len(),
        garnet_kernels::cuda::all_kernels().len()
    );
    assert!(missing.is_empty(), "kernels no ops-test case reaches: {missing:?}");
}
