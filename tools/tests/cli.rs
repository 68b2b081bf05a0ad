//! The `garnet` binary end to end: `logits` reproduces the goldens file for file, `run` streams
//! text, `info` describes, and bad input exits non-zero with one line on stderr.

use safetensors::SafeTensors;
use std::path::PathBuf;
use std::process::{Command, Output};

fn garnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_garnet")).args(args).output().expect("garnet runs")
}

fn testdata(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/gemma4-tiny").join(rel).display().to_string()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("garnet-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn f32s(st: &SafeTensors, name: &str) -> Vec<f32> {
    st.tensor(name).unwrap().data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

fn i64s(st: &SafeTensors, name: &str) -> Vec<i64> {
    st.tensor(name).unwrap().data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect()
}

fn max_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn logits_command_reproduces_the_goldens() {
    for variant in ["dense_31b_like", "moe_26b_a4b_like", "edge_e2b_like", "edge_e4b_like"] {
        let gold_bytes = std::fs::read(testdata(&format!("{variant}/golden_bf16w_f32.safetensors"))).unwrap();
        let gold = SafeTensors::deserialize(&gold_bytes).unwrap();
        let ids: Vec<String> = i64s(&gold, "prompt_ids").iter().map(|i| i.to_string()).collect();
        let out = tmp(&format!("{variant}.safetensors"));
        let o = garnet(&[
            "logits",
            "--model",
            &testdata(&format!("{variant}/bf16_cg")),
            "--prompt-ids",
            &ids.join(","),
            "--gen",
            "20",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{variant}: {}", String::from_utf8_lossy(&o.stderr));
        let mine_bytes = std::fs::read(&out).unwrap();
        let mine = SafeTensors::deserialize(&mine_bytes).unwrap();
        assert_eq!(mine.tensor("prefill_logits").unwrap().shape(), [40, 512]);
        assert_eq!(mine.tensor("step_logits").unwrap().shape(), [20, 512]);
        assert_eq!(i64s(&mine, "gen_ids"), i64s(&gold, "gen_ids"), "{variant}");
        let e1 = max_err(&f32s(&mine, "prefill_logits"), &f32s(&gold, "prefill_logits"));
        let e2 = max_err(&f32s(&mine, "step_logits"), &f32s(&gold, "step_logits"));
        assert!(e1 < 2e-3 && e2 < 2e-3, "{variant}: prefill {e1}, steps {e2}");
    }
}

#[test]
fn run_streams_text_and_reports_speed() {
    let model = testdata("edge_e4b_like/bf16");
    let args = ["run", "--model", &model, "--prompt", "Hello world", "--max-tokens", "12", "--temperature", "0"];
    let o = garnet(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("tok/s"), "{err}");
    // Greedy is deterministic: a second run prints the same text.
    let again = garnet(&args);
    assert_eq!(o.stdout, again.stdout);
}

#[test]
fn info_describes_the_checkpoint() {
    let o = garnet(&["info", "--model", &testdata("moe_26b_a4b_like/bf16_cg")]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("8 experts, top-2"), "{out}");
    assert!(out.contains("SSF SSF"), "{out}");
    assert!(out.contains("kv cache"), "{out}");
}

#[test]
fn bad_input_is_one_line_and_nonzero() {
    let model = testdata("dense_31b_like/bf16");
    let out = tmp("bad.safetensors");
    let cases: Vec<Vec<&str>> = vec![
        vec!["info", "--model", "/nonexistent/model"],
        vec!["logits", "--model", &model, "--prompt-ids", "2,999999", "--out", out.to_str().unwrap()],
        vec!["run", "--model", &model, "--prompt", "hi", "--ctx", "100000000"],
        vec!["run", "--model", &model, "--prompt", "hi", "--top-p", "0"],
        vec!["run", "--model", &model, "--prompt", "hi", "--backend", "cuda"],
    ];
    for args in cases {
        let o = garnet(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("garnet: error: "), "{args:?}: {err}");
    }
}

fn garnet_stdin(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_garnet"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("garnet runs");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn run_json_schema_output_is_valid_json() {
    let model = testdata("edge_e2b_like/bf16");
    let schema = tmp("schema.json");
    let s = r#"{"type":"object","properties":{"color":{"enum":["red","blue"]},"ok":{"type":"boolean"}},"required":["color","ok"]}"#;
    std::fs::write(&schema, s).unwrap();
    let o = garnet(&[
        "run",
        "--model",
        &model,
        "--prompt",
        "hi",
        "--json-schema",
        schema.to_str().unwrap(),
        "--max-tokens",
        "64",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    assert!(["red", "blue"].contains(&v["color"].as_str().unwrap()), "{v}");
    assert!(v["ok"].is_boolean(), "{v}");
    assert!(err.contains("[constraint complete |") || err.contains("[stop: "), "{err}");
}

#[test]
fn run_regex_output_matches() {
    let model = testdata("edge_e2b_like/bf16");
    let o = garnet(&["run", "--model", &model, "--prompt", "hi", "--regex", "[0-9]{3}", "--max-tokens", "16"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.len() == 3 && out.bytes().all(|b| b.is_ascii_digit()), "{out:?}");
}

#[test]
fn run_chat_keeps_the_conversation() {
    let model = testdata("edge_e2b_like/bf16");
    let args = ["run", "--model", &model, "--chat", "--system", "Be brief.", "--max-tokens", "6", "--temperature", "0"];
    let o = garnet_stdin(&args, "hello\nand again\n");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let finishes: Vec<&str> = err.lines().filter(|l| l.starts_with('[') && l.contains("generated tokens")).collect();
    assert_eq!(finishes.len(), 2, "{err}");
    assert!(finishes.iter().all(|l| l.contains(" prompt + ")), "{err}");
}

#[test]
fn run_bad_structured_output_input_is_one_line() {
    let model = testdata("edge_e2b_like/bf16");
    let bad = tmp("bad-schema.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let tools = tmp("tools.json");
    let t = r#"[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]"#;
    std::fs::write(&tools, t).unwrap();
    let (bad, tools) = (bad.to_str().unwrap(), tools.to_str().unwrap());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["run", "--model", &model, "--prompt", "hi", "--json-schema", bad], "not valid JSON"),
        (
            vec!["run", "--model", &model, "--prompt", "hi", "--json-schema", "/nonexistent/s.json"],
            "/nonexistent/s.json",
        ),
        (vec!["run", "--model", &model, "--prompt", "hi", "--regex", "(["], "grammar"),
        (vec!["run", "--model", &model, "--chat", "--tools", tools, "--force-tool", "nope"], "no tool of that name"),
        // The tiny tokenizer has no tool-call tokens.
        (vec!["run", "--model", &model, "--chat", "--tools", tools, "--force-tool", "get_weather"], "<|tool_call>"),
        (vec!["run", "--model", &model, "--chat", "--tools", bad], "not valid JSON"),
    ];
    for (args, want) in cases {
        let o = garnet_stdin(&args, "hi\n");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("garnet: error: ") && err.contains(want), "{args:?}: {err}");
    }
}
