//! The CUDA backend through the `garnet` binary, on machines with and without a GPU:
//! - a fake `libcuda.so.1` (built here with gcc) whose `cuInit` fails: `--backend cuda` reports
//!   the backend unavailable with the driver's error, `--backend auto` falls back to the CPU and
//!   says why, `doctor` reports it, and nothing panics;
//! - `ops-test --backend cuda` passes on a real GPU and says "skipped: no CUDA device" otherwise;
//! - `ops-test --backend cuda-emulated` runs every CUDA kernel in the emulator against the
//!   reference, and `logits --backend cuda-emulated` agrees with the CPU on the tiny models.
#![cfg(feature = "cuda")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn garnet(args: &[&str], lib_dir: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_garnet"));
    c.args(args);
    if let Some(d) = lib_dir {
        c.env("LD_LIBRARY_PATH", d);
    }
    c.output().expect("garnet runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn testdata(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/gemma4-tiny").join(rel).display().to_string()
}

/// A `libcuda.so.1` whose `cuInit` returns CUDA_ERROR_NO_DEVICE (100), in a fresh directory.
fn fake_driver() -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("garnet-fake-cuda-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("fake.c");
    std::fs::write(&src, "int cuInit(unsigned int flags) { (void)flags; return 100; }\n").unwrap();
    let lib = dir.join("libcuda.so.1");
    let ok =
        Command::new("gcc").args(["-shared", "-fPIC", "-o"]).arg(&lib).arg(&src).status().is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: no gcc to build the fake libcuda.so.1");
        return None;
    }
    Some(dir)
}

#[test]
fn fake_driver_is_reported_and_auto_falls_back() {
    let Some(dir) = fake_driver() else { return };
    let model = testdata("dense_31b_like/bf16");
    let run = |backend: &str| {
        garnet(&["run", "--model", &model, "--prompt", "hi", "--max-tokens", "3", "--backend", backend], Some(&dir))
    };

    let o = run("cuda");
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("backend cuda unavailable: cuInit failed: CUDA_ERROR_NO_DEVICE"), "{t}");
    assert!(!t.contains("panicked"), "{t}");
    println!("--backend cuda: {}", t.lines().last().unwrap_or(""));

    let o = run("auto");
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("backend auto: cpu"), "{t}");
    assert!(t.contains("passed over: backend cuda unavailable: cuInit failed"), "{t}");
    println!("--backend auto:\n{t}");

    let o = garnet(&["doctor", "--no-selftest"], Some(&dir));
    let t = text(&o);
    assert!(t.contains("cuda: backend cuda unavailable: cuInit failed: CUDA_ERROR_NO_DEVICE"), "{t}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn ops_test_on_cuda_passes_or_says_skipped() {
    let o = garnet(&["ops-test", "--backend", "cuda"], None);
    let t = text(&o);
    if t.contains("cuda: skipped: no CUDA device") {
        println!("skipped: no CUDA device");
        return;
    }
    assert!(o.status.success(), "{t}");
    let summary = t.lines().find(|l| l.starts_with("cuda:")).expect("a summary line");
    assert!(summary.contains(" 0 failed"), "{summary}");
    println!("{summary}");
}

#[test]
fn ops_test_passes_every_case_on_cuda_emulated() {
    let o = garnet(&["ops-test", "--backend", "cuda-emulated"], None);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let summary = t.lines().find(|l| l.starts_with("cuda-emulated:")).expect("a summary line");
    assert!(summary.contains(" 0 failed"), "{summary}");
    println!("{summary}");
}

/// `--memory-model --json`: one object per kernel and case with the fields the issue names, the
/// decode matvec's figures from the emulator, and occupancy on the four architectures.
#[test]
fn memory_model_reports_json_per_kernel_and_case() {
    let o = garnet(
        &[
            "ops-test",
            "--backend",
            "cuda-emulated",
            "--op",
            "matmul",
            "--case",
            "n=2048 k=1536",
            "--memory-model",
            "--json",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON array");
    let rows = rows.as_array().expect("an array");
    let f32_row = rows.iter().find(|r| r["kernel"] == "matvec_f32").expect("matvec_f32 reported");
    // Contiguous f32 rows read by 128-bit loads: every fetched sector byte used (the partial
    // sums' stores leave it just under 1).
    assert!(f32_row["sector_efficiency"].as_f64().unwrap() > 0.95, "{f32_row}");
    for r in rows {
        for key in ["kernel", "case", "sector_efficiency", "bank_conflicts_per_request", "occupancy"] {
            assert!(!r[key].is_null(), "{key} missing in {r}");
        }
        for arch in ["sm_80", "sm_86", "sm_89", "sm_90"] {
            assert!(r["occupancy"][arch].as_f64().is_some_and(|f| f > 0.0 && f <= 1.0), "{r}");
        }
    }
    let o = garnet(&["ops-test", "--backend", "cpu", "--memory-model"], None);
    assert!(!o.status.success() && text(&o).contains("cuda-emulated only"), "{}", text(&o));
}
