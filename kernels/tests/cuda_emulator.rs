//! The CUDA emulator checks itself (kernels `kernels/cuda/emu/selftest.cpp`): the ldmatrix + mma
//! fragments, used as the PTX ISA documents them, give the plain product; the faults a GPU
//! would hang on or silently get wrong are reported as errors naming the fault; writes past the
//! end of a buffer are caught by its guard bytes, and reads there give NaN; misaligned vector
//! accesses are errors; the race detector catches unordered accesses and passes ordered ones.
#![cfg(garnet_cuda_emu)]

use garnet_kernels::cuda::device::{Device, Dims, Params};
use garnet_kernels::cuda::kernels::{EmuLaunch, Kernel, Module};
use garnet_kernels::cuda::Emulator;
use garnet_kernels::KernelError;
use std::ffi::{c_char, c_void};

extern "C" {
    fn garnet_emu_selftest_mma(l: *const EmuLaunch, p: *const c_void, err: *mut c_char, n: usize) -> i32;
    fn garnet_emu_selftest_fault(l: *const EmuLaunch, p: *const c_void, err: *mut c_char, n: usize) -> i32;
    fn garnet_emu_selftest_mem(l: *const EmuLaunch, p: *const c_void, err: *mut c_char, n: usize) -> i32;
    fn garnet_emu_selftest_race(l: *const EmuLaunch, p: *const c_void, err: *mut c_char, n: usize) -> i32;
}

// Host-only kernels: the module is never looked up (the emulator runs `emu`).
const MMA: Kernel = Kernel { module: Module::Matmul, entry: "selftest_mma", emu: Some(garnet_emu_selftest_mma) };
const FAULT: Kernel = Kernel { module: Module::Matmul, entry: "selftest_fault", emu: Some(garnet_emu_selftest_fault) };
const MEM: Kernel = Kernel { module: Module::Matmul, entry: "selftest_mem", emu: Some(garnet_emu_selftest_mem) };
const RACE: Kernel = Kernel { module: Module::Matmul, entry: "selftest_race", emu: Some(garnet_emu_selftest_race) };

#[repr(C)]
#[derive(Clone, Copy)]
struct MmaParams {
    a: u64,
    b: u64,
    d: u64,
}
// SAFETY: repr(C), plain numbers, mirrors `MmaParams` in selftest.cpp.
unsafe impl Params for MmaParams {}

#[repr(C)]
#[derive(Clone, Copy)]
struct FaultParams {
    out: u64,
    which: u32,
    pad: u32,
}
// SAFETY: repr(C), plain numbers, mirrors `FaultParams` in selftest.cpp.
unsafe impl Params for FaultParams {}

fn bf16(x: f32) -> u16 {
    half::bf16::from_f32(x).to_bits()
}

fn bytes<T: Copy>(v: &[T]) -> Vec<u8> {
    // SAFETY: plain numbers viewed as their bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }.to_vec()
}

#[test]
fn ldmatrix_and_mma_fragments_give_the_product() {
    let dev = Emulator::new().unwrap();
    // Distinct small integers: every product and sum is exact in f32, so any misplaced element
    // shows up as a wrong value.
    let a: Vec<f32> = (0..256).map(|i| ((i * 7 % 23) as f32) - 11.0).collect();
    let bt: Vec<f32> = (0..128).map(|i| ((i * 5 % 19) as f32) - 9.0).collect(); // [n][k]
    let (ma, mb, md) = (dev.alloc(512).unwrap(), dev.alloc(256).unwrap(), dev.alloc(512).unwrap());
    dev.write(&ma, 0, &bytes(&a.iter().map(|&x| bf16(x)).collect::<Vec<_>>())).unwrap();
    dev.write(&mb, 0, &bytes(&bt.iter().map(|&x| bf16(x)).collect::<Vec<_>>())).unwrap();
    let p = MmaParams { a: dev.ptr(&ma), b: dev.ptr(&mb), d: dev.ptr(&md) };
    dev.launch(MMA, Dims::linear(1, 32), &p).unwrap();
    let mut out = vec![0u8; 512];
    dev.read(&md, 0, &mut out).unwrap();
    let d: Vec<f32> = out.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    for m in 0..16 {
        for n in 0..8 {
            let want: f32 = (0..16).map(|k| a[m * 16 + k] * bt[n * 16 + k]).sum();
            assert_eq!(d[m * 8 + n], want, "D[{m}][{n}]");
        }
    }
}

fn fault(which: u32, threads: u32) -> (Result<(), KernelError>, Vec<f32>) {
    let dev = Emulator::new().unwrap();
    let mem = dev.alloc(64).unwrap();
    let init: Vec<f32> = (0..16).map(|i| i as f32 + 100.0).collect();
    dev.write(&mem, 0, &bytes(&init)).unwrap();
    let r = dev.launch(FAULT, Dims::linear(2, threads), &FaultParams { out: dev.ptr(&mem), which, pad: 0 });
    let mut out = vec![0u8; 64];
    dev.read(&mem, 0, &mut out).unwrap();
    (r, out.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
}

fn message(r: Result<(), KernelError>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(()) => panic!("the emulator missed the fault"),
    }
}

#[test]
fn an_early_return_before_a_barrier_is_an_error() {
    let m = message(fault(0, 64).0);
    assert!(m.contains("__syncthreads after a thread of the block returned"), "{m}");
    assert!(m.contains("block 0,0,0"), "{m}");
}

#[test]
fn a_divergent_shuffle_is_an_error() {
    let m = message(fault(1, 32).0);
    assert!(m.contains("returned while its warp waits for it in a collective (mask ffffffff)"), "{m}");
}

#[test]
fn cp_async_lands_at_the_wait() {
    let (r, out) = fault(2, 32);
    r.unwrap();
    assert_eq!(out[0], 0.0, "read before the wait sees the old shared value");
    assert_eq!(out[1], 104.0, "read after the wait sees the copy");
}

#[test]
fn a_correct_kernel_runs_clean() {
    let (r, out) = fault(3, 64);
    r.unwrap();
    assert_eq!(out[0], 32.0);
}

#[test]
fn a_write_past_the_end_is_an_error() {
    let m = message(fault(4, 32).0);
    assert!(m.contains("kernel selftest_fault wrote past the end of a 64-byte buffer (guard byte 0)"), "{m}");
}

#[test]
fn a_read_past_the_end_gives_nan() {
    let (r, out) = fault(5, 32);
    r.unwrap();
    assert!(out[0].is_nan(), "{}", out[0]);
}

#[test]
fn a_misaligned_vector_access_is_an_error() {
    let m = message(fault(6, 32).0);
    assert!(m.contains("vector access not aligned to its size"), "{m}");
}

#[repr(C)]
#[derive(Clone, Copy)]
struct MemParams {
    input: u64,
    which: u32,
    pad: u32,
}
// SAFETY: repr(C), plain numbers, mirrors `MemParams` in selftest.cpp.
unsafe impl Params for MemParams {}

/// The memory model on hand-made one-warp kernels whose answers are known: (requests, bytes,
/// sectors, lines) for global accesses, (requests, wavefronts) for shared ones.
#[test]
fn the_memory_model_gives_the_known_answers() {
    let run = |which: u32| {
        let dev = Emulator::new().unwrap();
        dev.model_memory();
        let input = dev.alloc(4096 * 4).unwrap();
        dev.launch(MEM, Dims::linear(1, 32), &MemParams { input: dev.ptr(&input), which, pad: 0 }).unwrap();
        let stats = dev.memory_stats();
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].2, 32);
        stats[0].1
    };
    let global = |which| {
        let m = run(which);
        (m.global_requests, m.global_bytes, m.global_sectors, m.global_lines)
    };
    assert_eq!(global(0), (1, 128, 4, 1), "coalesced floats");
    assert_eq!(global(1), (1, 128, 32, 8), "floats 32 bytes apart");
    assert_eq!(global(2), (1, 4, 1, 1), "one float for every lane");
    assert_eq!(global(3), (1, 512, 16, 4), "coalesced float4");
    assert_eq!(run(0).sector_efficiency(), 1.0);
    assert_eq!(run(1).sector_efficiency(), 0.125);
    let shared = |which| {
        let m = run(which);
        (m.shared_requests, m.shared_wavefronts)
    };
    assert_eq!(shared(4), (1, 1), "consecutive floats");
    assert_eq!(shared(5), (1, 32), "one bank, 32 words");
    assert_eq!(shared(6), (1, 2), "two-way conflict");
    assert_eq!(shared(7), (1, 1), "broadcast");
    assert_eq!(shared(8), (1, 4), "float4: four phases of 8 lanes");
    assert_eq!(run(5).bank_conflicts_per_request(), 31.0);
    assert_eq!(run(8).bank_conflicts_per_request(), 0.0, "four phases are no conflict");
}

/// Runs race self-test `which` on `blocks` blocks of 64 threads with the detector on (`seed`),
/// or off (`None`): the launch's result and `out`.
fn race(which: u32, blocks: u32, seed: Option<u64>) -> (Result<(), KernelError>, Vec<f32>) {
    let dev = Emulator::new().unwrap();
    if let Some(seed) = seed {
        dev.detect_races(seed);
    }
    let mem = dev.alloc(256).unwrap();
    let init: Vec<f32> = (0..64).map(|i| i as f32).collect();
    dev.write(&mem, 0, &bytes(&init)).unwrap();
    let r = dev.launch(RACE, Dims::linear(blocks, 64), &FaultParams { out: dev.ptr(&mem), which, pad: 0 });
    let mut out = vec![0u8; 256];
    dev.read(&mem, 0, &mut out).unwrap();
    (r, out.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
}

#[test]
fn a_shared_write_write_race_is_caught_and_a_barrier_orders_it() {
    let m = message(race(0, 1, Some(1)).0);
    assert!(m.contains("selftest_race: data race on shared memory at 0x"), "{m}");
    assert!(m.contains("thread (0,0,0)") && m.contains("thread (32,0,0)"), "{m}");
    assert!(m.contains("store by") && m.contains("(no __syncthreads between)"), "{m}");
    race(1, 1, Some(1)).0.unwrap();
}

#[test]
fn a_read_after_write_across_lanes_needs_a_syncwarp() {
    let m = message(race(2, 1, Some(1)).0);
    assert!(m.contains("data race on shared memory"), "{m}");
    assert!(m.contains("thread (0,0,0)") && m.contains("thread (1,0,0)"), "{m}");
    assert!(m.contains("(no __syncthreads or warp collective between)"), "{m}");
    race(3, 1, Some(1)).0.unwrap();
}

#[test]
fn two_blocks_storing_one_global_word_race() {
    race(4, 1, Some(1)).0.unwrap();
    let m = message(race(4, 2, Some(1)).0);
    assert!(m.contains("data race on global memory at 0x") && m.contains("(byte 0 of a 256-byte buffer)"), "{m}");
    assert!(m.contains("block (0,0,0) thread (0,0,0)") && m.contains("block (1,0,0) thread (0,0,0)"), "{m}");
    assert!(m.contains("(different blocks)"), "{m}");
}

#[test]
fn loads_of_one_word_by_every_thread_do_not_race() {
    race(5, 2, Some(1)).0.unwrap();
}

#[test]
fn a_neighbour_read_before_its_store_races() {
    // Thread i loads out[i + 1], which thread i + 1 stores: caught whichever runs first.
    for seed in 0..4 {
        let m = message(race(6, 1, Some(seed)).0);
        assert!(m.contains("data race on global memory") && m.contains("(byte "), "{m}");
    }
}

#[test]
fn race_mode_resumes_threads_in_a_random_order() {
    let order = |seed| race(7, 1, seed).1;
    let identity: Vec<f32> = (0..64).map(|i| i as f32).collect();
    // Without race mode, thread order: the last to reach the barrier completes it and goes on.
    let fixed: Vec<f32> = std::iter::once(63.0).chain((0..63).map(|i| i as f32)).collect();
    assert_eq!(order(None), fixed, "thread order without race mode");
    let (a, b) = (order(Some(1)), order(Some(2)));
    assert_ne!(a, fixed);
    assert_ne!(a, b, "two seeds, two orders");
    assert_eq!(a, order(Some(1)), "one seed, one order");
    let mut sorted = a.clone();
    sorted.sort_by(f32::total_cmp);
    assert_eq!(sorted, identity, "every thread once");
}
