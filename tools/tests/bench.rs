//! `garnet bench` end to end on a tiny fixture: the JSON report has every field, positive and
//! finite; the table has llama-bench's rows; bad arguments are one-line errors.

#[path = "../../engine/tests/common/mod.rs"]
mod common;

use std::process::{Command, Output};

fn garnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_garnet")).args(args).output().expect("garnet runs")
}

fn tiny(layout: &str) -> String {
    common::testdata(&format!("edge_e2b_like/{layout}")).display().to_string()
}

#[test]
fn json_report_has_positive_finite_numbers() {
    let model = tiny("bf16");
    let o = garnet(&["bench", "--model", &model, "-p", "8", "-n", "4", "-r", "1", "--threads", "2", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8(o.stdout).unwrap();
    assert_eq!(stdout.trim_end().lines().count(), 1, "{stdout}");
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for key in [
        "pp_tok_s",
        "tg_tok_s",
        "decode_gb_s",
        "read_bw_gb_s",
        "decode_efficiency",
        "weight_bytes",
        "bytes_per_token",
        "params",
        "load_s",
    ] {
        let v = j[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {j}"));
        assert!(v.is_finite() && v > 0.0, "{key} = {v}");
    }
    for key in ["pp_tok_s_stddev", "tg_tok_s_stddev"] {
        assert!(j[key].as_f64().is_some_and(|v| v.is_finite() && v >= 0.0), "{key} in {j}");
    }
    assert_eq!(
        (j["p"].as_u64(), j["n"].as_u64(), j["r"].as_u64(), j["threads"].as_u64()),
        (Some(8), Some(4), Some(1), Some(2))
    );
    assert!(j["backend"].is_string() && j["model"].as_str() == Some(model.as_str()), "{j}");
    // One step reads the dense weights and the embedding table, but only one row of the PLE table.
    assert!(j["bytes_per_token"].as_u64() < j["weight_bytes"].as_u64(), "{j}");
}

#[test]
fn table_has_pp_and_tg_rows() {
    let o = garnet(&["bench", "--model", &tiny("bf16_cg"), "-p", "4", "-n", "2", "-r", "2"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.starts_with("| model"), "{out}");
    assert!(out.contains("| pp4 |") || out.contains("pp4 |"), "{out}");
    assert!(out.contains("tg2 |") && out.contains(" ± "), "{out}");
    assert!(out.contains("GB/s") && out.contains("read bandwidth"), "{out}");
}

#[test]
fn depth_is_in_the_table_and_the_json() {
    let model = tiny("bf16");
    let o = garnet(&["bench", "--model", &model, "-p", "4", "-n", "2", "-d", "16", "-r", "1"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("pp4 @ d16 |") && out.contains("tg2 @ d16 |"), "{out}");
    let o = garnet(&["bench", "--model", &model, "-p", "4", "-n", "2", "-d", "16", "-r", "1", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((j["depth"].as_u64(), j["p"].as_u64(), j["n"].as_u64()), (Some(16), Some(4), Some(2)), "{j}");
}

#[test]
fn bad_arguments_are_one_line_errors() {
    let model = tiny("bf16");
    for args in [
        vec!["bench", "--model", "/nonexistent/model", "-p", "4", "-n", "2", "-r", "1"],
        vec!["bench", "--model", &model, "-r", "0"],
        vec!["bench", "--model", &model, "-p", "0", "-n", "0"],
        vec!["bench", "--model", &model, "--threads", "0"],
        vec!["bench", "--model", &model, "-p", "300", "-n", "1", "-r", "1"],
        // The depth counts against the context: 250 + 8 positions do not fit the fixture's 256.
        vec!["bench", "--model", &model, "-d", "250", "-p", "8", "-n", "1", "-r", "1"],
        vec!["bench", "--model", &model, "-d", "18446744073709551615", "-r", "1"],
        vec!["bench", "--model", &model, "-p", "4", "-n", "1", "-r", "1", "--backend", "cuda"],
    ] {
        let o = garnet(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("garnet: error: "), "{args:?}: {err}");
    }
}

/// `--cpu-isa`: the CPU kernels of a lower level run and are named in the table and the JSON;
/// an unknown level is refused with the valid names.
#[test]
fn a_forced_cpu_level_is_named_in_the_table_and_the_json() {
    let model = tiny("bf16");
    let o = garnet(&["bench", "--model", &model, "-p", "4", "-n", "2", "-r", "1", "--cpu-isa", "portable"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("| cpu portable "), "{out}");
    let o = garnet(&["bench", "--model", &model, "-p", "4", "-n", "2", "-r", "1", "--cpu-isa", "portable", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["isa"].as_str(), Some("portable"), "{j}");
    let o = garnet(&["bench", "--model", &model, "--cpu-isa", "avx1024"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("avx1024") && err.contains("avx512-bf16"), "{err}");
}
