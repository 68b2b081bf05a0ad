//! The ops-test (`garnet ops-test`) as a test: every case of `opstest::cases()` on the fast CPU
//! backend, the WGSL backend and a CUDA device, each against the reference `RefCpu`. Without an
//! adapter (a device) the wgpu (cuda) test prints "skipped: ..." and passes. One line per case and a summary:
//! `cargo test -p garnet-kernels --test ops_test -- --nocapture`.

use garnet_kernels::opstest::{cases, run_backend};
use garnet_kernels::{BackendKind, OpSet};
use std::time::Instant;

fn check(kind: BackendKind, host_fallback: OpSet) {
    let name = kind.name();
    let start = Instant::now();
    let mut report = |case: &garnet_kernels::opstest::Case, outcome: &garnet_kernels::opstest::Outcome| {
        let message = outcome.message.as_ref().map_or(String::new(), |m| format!(": {m}"));
        println!("{name:<14}{:<30} {}{message}", outcome.status(), case.name());
    };
    let summary = match run_backend(kind, host_fallback, None, &cases(), false, &mut report) {
        Ok(s) => s,
        Err(why) => {
            println!("{name}: skipped: {why}");
            return;
        }
    };
    let failed = summary.failed.len();
    println!("{name}: {} passed, {failed} failed in {:.1?}", summary.passed, start.elapsed());
    for (case, outcome) in &summary.failed {
        println!("{name} FAILED {case}: {}", outcome.describe());
    }
    assert!(failed == 0, "{failed} ops-test cases failed on {name} (listed above)");
}

#[test]
fn ops_test_cpu() {
    check(BackendKind::Cpu, OpSet::NONE);
}

#[test]
fn ops_test_wgpu() {
    check(BackendKind::Wgpu, OpSet::NONE);
}

/// On a CUDA device; "skipped: no CUDA device" otherwise. (The emulated CUDA kernels run every
/// case through the CLI: `tools/tests/cuda.rs`.)
#[test]
fn ops_test_cuda() {
    check(BackendKind::Cuda, OpSet::NONE);
}

/// Every case on the emulated CUDA kernels with the race detector on (threads resumed in a random
/// order; an unordered conflicting access fails the case): `garnet ops-test --backend
/// cuda-emulated --races` as a test.
#[test]
fn ops_test_cuda_emulated_races() {
    let start = Instant::now();
    let mut report = |case: &Case, outcome: &garnet_kernels::opstest::Outcome| {
        let message = outcome.message.as_ref().map_or(String::new(), |m| format!(": {m}"));
        println!("races {:<30} {}{message}", outcome.status(), case.name());
    };
    let summary = match garnet_kernels::opstest::races(&cases(), 1, &mut report) {
        Ok(s) => s,
        Err(why) => {
            println!("races: skipped: {why}");
            return;
        }
    };
    let failed = summary.failed.len();
    println!("races: {} passed, {failed} failed in {:.1?}", summary.passed, start.elapsed());
    for (case, outcome) in &summary.failed {
        println!("races FAILED {case}: {}", outcome.describe());
    }
    assert!(failed == 0, "{failed} ops-test cases failed on cuda-emulated with the race detector (listed above)");
}

/// The host fallback of every op on a backend that implements only memory: each small case
/// must equal the reference exactly (it is the reference), and every call must be counted.
#[test]
fn ops_test_memory_only() {
    let backend = HostFallback::new(MemoryOnly, OpSet::NONE);
    let small: Vec<Case> = cases().into_iter().filter(|c| c.cost().0 < 2 << 20).collect();
    let mut ops = std::collections::BTreeSet::new();
    for case in &small {
        let o = run(&backend, case, false);
        assert!(o.passed && o.error == Some(0.0), "{}: {}", case.name(), o.describe());
        assert!(o.fallback_calls >= 1, "{}: not counted as a fallback call", case.name());
        ops.insert(case.op());
    }
    assert_eq!(ops.len(), Op::ALL.len(), "every op has a small case");
}

/// `--host-fallback matmul`: the fast CPU backend's matmul is bypassed (counted, and exactly
/// the reference's result), its other ops are not.
#[test]
fn forced_fallback_bypasses_the_native_kernel() {
    let forced = HostFallback::new(FastCpu::new(Precision::Reference), "matmul".parse().unwrap());
    let small = |op: Op| cases().into_iter().find(|c| c.op() == op && c.cost().0 < 1 << 20).unwrap();
    let o = run(&forced, &small(Op::Matmul), false);
    assert!(o.passed && o.error == Some(0.0) && o.fallback_calls == 1, "{}", o.describe());
    let o = run(&forced, &small(Op::Attention), false);
    assert!(o.passed && o.fallback_calls == 0, "{}", o.describe());
}

// ---- the harness itself ----

use garnet_kernels::cpu::FastCpu;
use garnet_kernels::fallback::MemoryOnly;
use garnet_kernels::opstest::moe::MoeRouteCase;
use garnet_kernels::opstest::{run, Case};
use garnet_kernels::Precision;
use garnet_kernels::*;

/// The message of the deliberate panic (not printed: see `quiet_deliberate_panic`).
const DELIBERATE: &str = "geglu: index out of bounds (deliberate)";

/// Keeps the default panic report, except for the deliberate panic's.
fn quiet_deliberate_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.to_string().contains(DELIBERATE) {
            default(info)
        }
    }));
}

/// The fast CPU backend with deliberate faults in some ops, to see the harness catch each kind:
/// a wrong value, an unwritten element, a write past the output, an error, a panic, a wrong
/// expert; and a harmless one it must accept (experts in another order).
struct Faulty(FastCpu);

impl Backend for Faulty {
    type Buf = Vec<f32>;
    type Ids = Vec<u32>;
    type Weight = HostTensor;
    fn name(&self) -> &'static str {
        "faulty"
    }
    fn alloc(&self, len: usize) -> Result<Vec<f32>> {
        self.0.alloc(len)
    }
    fn alloc_ids(&self, len: usize) -> Result<Vec<u32>> {
        self.0.alloc_ids(len)
    }
    fn buf_len(&self, buf: &Vec<f32>) -> usize {
        buf.len()
    }
    fn ids_len(&self, ids: &Vec<u32>) -> usize {
        ids.len()
    }
    fn host_weight(&self, w: &HostTensor) -> Result<HostTensor> {
        self.0.host_weight(w)
    }
    fn upload(&self, src: &[f32], dst: &mut Vec<f32>) -> Result<()> {
        self.0.upload(src, dst)
    }
    fn upload_ids(&self, src: &[u32], dst: &mut Vec<u32>) -> Result<()> {
        self.0.upload_ids(src, dst)
    }
    fn download(&self, src: &Vec<f32>, offset: usize, dst: &mut [f32]) -> Result<()> {
        self.0.download(src, offset, dst)
    }
    fn download_ids(&self, src: &Vec<u32>, dst: &mut [u32]) -> Result<()> {
        self.0.download_ids(src, dst)
    }
    fn weight(&self, t: &HostTensor) -> Result<HostTensor> {
        self.0.weight(t)
    }
    fn embed(&self, a: &EmbedArgs, table: &HostTensor, ids: &Vec<u32>, out: &mut Vec<f32>) -> Result<()> {
        self.0.embed(a, table, ids, out)
    }
    fn matmul(&self, a: &MatmulArgs, x: &Vec<f32>, w: &HostTensor, out: &mut Vec<f32>) -> Result<()> {
        self.0.matmul(a, x, w, out)?;
        out[a.n - 1] += 1.0; // a wrong value
        Ok(())
    }
    fn rms_norm(&self, a: &RmsNormArgs, x: &Vec<f32>, w: Option<&HostTensor>, out: &mut Vec<f32>) -> Result<()> {
        let keep = out[1];
        self.0.rms_norm(a, x, w, out)?;
        out[1] = keep; // an element left unwritten
        Ok(())
    }
    fn add_rms_norm(&self, a: &RmsNormArgs, x: &Vec<f32>, w: &HostTensor, residual: &mut Vec<f32>) -> Result<()> {
        self.0.add_rms_norm(a, x, w, residual)
    }
    fn rope(&self, _: &RopeArgs, _: &mut Vec<f32>) -> Result<()> {
        Err(KernelError::Unavailable { backend: "faulty", why: "rope: not written yet".into() })
    }
    fn kv_write(
        &self,
        a: &KvWriteArgs,
        k: &Vec<f32>,
        v: &Vec<f32>,
        ck: &mut Vec<f32>,
        cv: &mut Vec<f32>,
    ) -> Result<()> {
        self.0.kv_write(a, k, v, ck, cv)
    }
    fn attention(
        &self,
        a: &AttentionArgs,
        q: &Vec<f32>,
        k: &Vec<f32>,
        v: &Vec<f32>,
        ck: &Vec<f32>,
        cv: &Vec<f32>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        self.0.attention(a, q, k, v, ck, cv, out)
    }
    fn geglu(&self, _: &GegluArgs, _: &Vec<f32>, _: &Vec<f32>, _: &mut Vec<f32>) -> Result<()> {
        panic!("{DELIBERATE}")
    }
    fn softcap(&self, a: &SoftcapArgs, x: &mut Vec<f32>) -> Result<()> {
        self.0.softcap(a, x)
    }
    fn scale(&self, a: &ScaleArgs, x: &mut Vec<f32>) -> Result<()> {
        self.0.scale(a, x)?;
        x[a.len] = 0.0; // a write past the output
        Ok(())
    }
    fn add(&self, a: &AddArgs, x: &Vec<f32>, acc: &mut Vec<f32>) -> Result<()> {
        self.0.add(a, x, acc)
    }
    fn moe_route(
        &self,
        a: &RouteArgs,
        s: &Vec<f32>,
        pes: &HostTensor,
        ids: &mut Vec<u32>,
        w: &mut Vec<f32>,
    ) -> Result<()> {
        self.0.moe_route(a, s, pes, ids, w)?;
        if a.tokens == 1 {
            ids[0] = (0..a.n_experts as u32).find(|e| !ids[..a.top_k].contains(e)).unwrap();
        // a wrong expert
        } else {
            // The same experts per token in another order.
            for t in 0..a.tokens {
                ids[t * a.top_k..(t + 1) * a.top_k].reverse();
                w[t * a.top_k..(t + 1) * a.top_k].reverse();
            }
        }
        Ok(())
    }
    fn moe_experts(
        &self,
        a: &MoeArgs,
        x: &Vec<f32>,
        gu: &HostTensor,
        d: &HostTensor,
        ids: &Vec<u32>,
        w: &Vec<f32>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        self.0.moe_experts(a, x, gu, d, ids, w, out)
    }
}

/// The first default case whose name starts with `prefix`.
fn first(prefix: &str) -> Case {
    cases().into_iter().find(|c| c.name().starts_with(prefix)).unwrap()
}

#[test]
fn harness_catches_faults() {
    quiet_deliberate_panic();
    let be = Faulty(FastCpu::new(Precision::Reference));
    let check = |op: &str, pass: bool, text: &str| {
        let case = first(op);
        let o = run(&be, &case, false);
        println!("{} {}", o.describe(), case.name());
        assert_eq!(o.passed, pass, "{op}: {}", o.describe());
        assert!(o.describe().contains(text), "{op}: {:?} lacks {text:?}", o.describe());
    };
    check("matmul m=1 n=2048 k=1536 F32", false, "worst [2047]");
    check("rms_norm", false, "1 non-finite worst [1] got NaN");
    check("scale", false, "wrote past its 1536 output elements: [1536]");
    check("rope", false, "error: backend faulty unavailable: rope: not written yet");
    check("geglu", false, "panicked: geglu: index out of bounds (deliberate)");
    check("moe_route", false, "token 0: experts");
    check("softcap", true, "OK");
    let reordered = MoeRouteCase { args: RouteArgs { tokens: 3, n_experts: 128, top_k: 8 }, ties: true };
    let o = run(&be, &reordered, false);
    assert!(o.passed, "reordered experts: {}", o.describe());
    // --perf times the call and reports rates.
    let o = run(&be, &first("softcap"), true);
    let p = o.perf.expect("perf");
    assert!(p.per_call.as_nanos() > 0 && p.gb_per_s() > 0.0 && p.gflop_per_s() > 0.0, "{p:?}");
}
