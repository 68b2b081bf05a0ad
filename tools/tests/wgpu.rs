//! The WGSL backend through the `garnet` binary: `doctor` builds every shader, `ops-test
//! --backend wgpu` passes every case, and `logits --backend wgpu` agrees with `--backend cpu` on
//! every tiny Gemma 4 variant. Without a wgpu adapter (Mesa's lavapipe in CI) each test says
//! "skipped" and passes.
#![cfg(feature = "wgpu")]

use safetensors::SafeTensors;
use std::path::PathBuf;
use std::process::{Command, Output};

fn garnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_garnet")).args(args).output().expect("garnet runs")
}

fn have_adapter() -> bool {
    let any = !garnet_kernels::wgpu::adapters().is_empty();
    if !any {
        eprintln!("skipped: no wgpu adapter (apt install mesa-vulkan-drivers)");
    }
    any
}

fn testdata(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/gemma4-tiny").join(rel).display().to_string()
}

fn f32s(st: &SafeTensors, name: &str) -> Vec<f32> {
    st.tensor(name).unwrap().data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

#[test]
fn doctor_builds_every_shader() {
    if !have_adapter() {
        return;
    }
    let o = garnet(&["doctor", "--no-selftest"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    let built = stdout.lines().find(|l| l.contains("pipelines built")).expect("a shader line");
    let nums: Vec<&str> = built.split_whitespace().filter(|w| w.parse::<u32>().is_ok()).collect();
    assert_eq!(nums.len(), 2, "{built}");
    assert_eq!(nums[0], nums[1], "{built}");
    println!("{built}");
}

#[test]
fn ops_test_passes_every_case_on_wgpu() {
    if !have_adapter() {
        return;
    }
    let o = garnet(&["ops-test", "--backend", "wgpu"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    let summary = stdout.lines().find(|l| l.starts_with("wgpu:")).expect("a summary line");
    assert!(summary.contains(" 0 failed"), "{summary}");
    println!("{summary}");
}

#[test]
fn logits_on_wgpu_agree_with_cpu() {
    if !have_adapter() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("garnet-wgpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for variant in ["dense_31b_like", "moe_26b_a4b_like", "edge_e2b_like", "edge_e4b_like"] {
        let mut outs = Vec::new();
        for backend in ["cpu", "wgpu"] {
            let out = dir.join(format!("{variant}-{backend}.safetensors"));
            let o = garnet(&[
                "logits",
                "--model",
                &testdata(&format!("{variant}/bf16")),
                "--prompt-ids",
                "2,17,93,401,7,255,64,300,12,5",
                "--gen",
                "12",
                "--backend",
                backend,
                "--out",
                out.to_str().unwrap(),
            ]);
            assert!(o.status.success(), "{variant} {backend}: {}", String::from_utf8_lossy(&o.stderr));
            outs.push(std::fs::read(&out).unwrap());
        }
        let (cpu, gpu) = (SafeTensors::deserialize(&outs[0]).unwrap(), SafeTensors::deserialize(&outs[1]).unwrap());
        assert_eq!(
            cpu.tensor("gen_ids").unwrap().data(),
            gpu.tensor("gen_ids").unwrap().data(),
            "{variant}: greedy ids"
        );
        for name in ["prefill_logits", "step_logits"] {
            let (a, b) = (f32s(&cpu, name), f32s(&gpu, name));
            let e = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            println!("{variant} {name}: max |wgpu - cpu| = {e:.2e}");
            assert!(e < 1e-3, "{variant} {name}: {e}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
