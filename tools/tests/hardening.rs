//! The command line at its edges (issue 14): every command survives a closed stdout (`| head`
//! ends quietly) and a full disk (one line, non-zero), outputs appear whole or not at all, sizes
//! from the command line are checked, and a model with NaN weights is an error, not a number.

#[path = "../../engine/tests/common/mod.rs"]
mod common;

use common::{copy_of, testdata, TempDir};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_garnet");

fn tiny() -> String {
    testdata("edge_e2b_like/bf16").display().to_string()
}

/// Runs garnet with `stdout` and `stdin` bytes (fed from a thread: the child may stop reading).
fn garnet_with(args: &[&str], stdout: Stdio, input: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("garnet runs");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

fn garnet(args: &[&str]) -> Output {
    garnet_with(args, Stdio::piped(), b"")
}

/// Stdout is a pipe whose reader is gone before the first write (`garnet ... | head -0`).
fn closed_stdout(args: &[&str], input: &[u8]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    garnet_with(args, Stdio::from(writer), input)
}

fn full_stdout(args: &[&str], input: &[u8]) -> Output {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    garnet_with(args, Stdio::from(full), input)
}

/// Asserts a one-line `garnet: error:` containing `want` and a non-zero exit.
fn one_line_error(o: &Output, want: &str, what: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{what}: succeeded; stderr {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: {err}");
    assert!(err.starts_with("garnet: error: ") && err.contains(want), "{what}: {err}");
}

/// Every command, with the stdin it reads; outputs go to `scratch`.
fn commands(scratch: &Path) -> Vec<(Vec<String>, &'static [u8])> {
    let model = tiny();
    let text = scratch.join("text.txt");
    std::fs::write(&text, "The quick brown fox jumps over the lazy dog. ".repeat(8)).unwrap();
    let (synth, logits) = (scratch.join("synth"), scratch.join("l.safetensors"));
    let mut cmds: Vec<(Vec<&str>, &'static [u8])> = vec![
        (vec!["run", "--model", &model, "--prompt", "Hello", "--max-tokens", "4", "--temperature", "0"], b""),
        (vec!["run", "--model", &model, "--chat", "--max-tokens", "4", "--temperature", "0"], b"hi\n"),
        (
            vec!["logits", "--model", &model, "--prompt-ids", "2,17", "--gen", "2", "--out", logits.to_str().unwrap()],
            b"",
        ),
        (vec!["info", "--model", &model], b""),
        (vec!["perplexity", "--model", &model, "--file", text.to_str().unwrap(), "--ctx", "16"], b""),
        (vec!["synth", "--arch", "e2b", "--layers", "1", "--vocab", "512", "--list"], b""),
        (vec!["synth", "--arch", "e2b", "--layers", "1", "--vocab", "512", "--out", synth.to_str().unwrap()], b""),
        (vec!["bench", "--model", &model, "-p", "4", "-n", "2", "-r", "1"], b""),
        (vec!["bench", "--model", &model, "-p", "4", "-n", "2", "-r", "1", "--json"], b""),
        (vec!["doctor", "--no-selftest"], b""),
        (vec!["ops-test", "--list"], b""),
        (vec!["ops-test", "--backend", "cpu", "--op", "softcap"], b""),
    ];
    if std::env::var_os("GARNET_CUDA_DIR").is_some() {
        cmds.push((vec!["ptx", "--check"], b""));
    }
    cmds.into_iter().map(|(a, i)| (a.into_iter().map(String::from).collect(), i)).collect()
}

#[test]
fn every_command_ends_quietly_on_a_closed_stdout() {
    let scratch = TempDir::new("closed-stdout");
    for (args, input) in commands(&scratch.0) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = closed_stdout(&args, input);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{args:?}: {err}");
        assert!(!err.contains("panicked") && !err.contains("error"), "{args:?}: {err}");
    }
}

#[test]
fn every_command_reports_a_full_disk_in_one_line() {
    let scratch = TempDir::new("full-stdout");
    for (args, input) in commands(&scratch.0) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = full_stdout(&args, input);
        let err = String::from_utf8_lossy(&o.stderr);
        if args[0] == "logits" {
            // Writes only its --out file: nothing on stdout to fail.
            assert!(o.status.success(), "{err}");
            continue;
        }
        let last = err.trim_end().lines().last().unwrap_or("");
        assert!(!o.status.success(), "{args:?} succeeded: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(last.starts_with("garnet: error: stdout: No space left on device"), "{args:?}: {err}");
        assert_eq!(err.lines().filter(|l| l.contains("error")).count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn logits_out_replaces_the_old_file_only_when_complete() {
    let dir = TempDir::new("atomic-logits");
    let out = dir.0.join("logits.safetensors");
    std::fs::write(&out, b"old").unwrap();
    let model = tiny();
    let args = ["logits", "--model", &model, "--prompt-ids", "2,17", "--gen", "3", "--out", out.to_str().unwrap()];
    // A run that fails (an id outside the vocabulary) leaves the old file as it was.
    let mut bad = args;
    bad[4] = "2,999999";
    one_line_error(&garnet(&bad), "out of range", "bad id");
    assert_eq!(std::fs::read(&out).unwrap(), b"old");
    assert!(garnet(&args).status.success());
    assert!(safetensors::SafeTensors::deserialize(&std::fs::read(&out).unwrap()).is_ok());
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 1, "stray temporaries");
}

#[test]
fn an_interrupted_synth_leaves_nothing_behind() {
    let dir = TempDir::new("interrupted");
    let out = dir.0.join("model");
    // The full 262144-token vocabulary: over 1 GB to write, interrupted as soon as it starts.
    let mut child = Command::new(BIN)
        .args(["synth", "--arch", "e2b", "--layers", "1", "--out", out.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = loop {
        if std::fs::read_dir(&dir.0).unwrap().count() > 0 {
            break true;
        }
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::yield_now();
    };
    assert!(started, "synth ended before its temporary directory appeared");
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    let left: Vec<_> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn command_line_sizes_are_checked() {
    let model = tiny();
    let out = TempDir::new("sizes");
    let o = out.0.join("o.safetensors");
    let o = o.to_str().unwrap();
    let max = u64::MAX.to_string();
    let long = "hi ".repeat(1000);
    let cases: [(&[&str], &str); 7] = [
        (&["run", "--model", &model, "--prompt", &long, "--max-tokens", &max], "context overflow"),
        (&["logits", "--model", &model, "--prompt-ids", "2", "--gen", &max, "--out", o], "--gen"),
        (&["logits", "--model", &model, "--prompt-ids", "2", "--gen", "100000000", "--out", o], "exceeds"),
        (&["bench", "--model", &model, "-r", &max], "--repetitions"),
        (&["bench", "--model", &model, "-t", "100000"], "--threads 100000"),
        (&["perplexity", "--model", &model, "--file", "/dev/zero"], "not a regular file"),
        (&["info", "--model", "/dev/zero"], "not a regular file"),
    ];
    for (args, want) in cases {
        one_line_error(&garnet(args), want, &format!("{args:?}"));
    }
    // An endless line on stdin is refused at the cap, not buffered.
    let endless = vec![b'x'; 5 << 20];
    let o = garnet_with(&["run", "--model", &model, "--chat", "--max-tokens", "1"], Stdio::piped(), &endless);
    one_line_error(&o, "longer than 4 MiB", "endless stdin line");
}

#[test]
fn nan_weights_are_errors_in_every_command() {
    let dir = copy_of("edge_e2b_like/bf16");
    let path = dir.0.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let norm = st.tensor("model.norm.weight").unwrap().data().as_ptr() as usize - bytes.as_ptr() as usize;
    let mut bytes = bytes.clone();
    for i in 0..96 {
        bytes[norm + 2 * i..norm + 2 * i + 2].copy_from_slice(&0x7fc0u16.to_le_bytes());
    }
    std::fs::write(&path, bytes).unwrap();
    let model = dir.0.to_str().unwrap();
    let text = dir.0.join("text.txt");
    std::fs::write(&text, "The quick brown fox jumps over the lazy dog. ".repeat(8)).unwrap();
    let out = dir.0.join("out.safetensors");
    let cases: [&[&str]; 4] = [
        &["logits", "--model", model, "--prompt-ids", "2,17", "--out", out.to_str().unwrap()],
        &["perplexity", "--model", model, "--file", text.to_str().unwrap(), "--ctx", "16"],
        &["run", "--model", model, "--prompt", "Hello", "--max-tokens", "8", "--temperature", "0"],
        &["run", "--model", model, "--prompt", "Hello", "--max-tokens", "8", "--backend", "cpu-ref"],
    ];
    for args in cases {
        one_line_error(&garnet(args), "NaN or infinity", &format!("{args:?}"));
    }
    assert!(!out.exists());
}

#[test]
fn broken_configs_are_one_line_errors() {
    let edits: [(&str, serde_json::Value, &str); 3] = [
        ("num_hidden_layers", 0.into(), "num_hidden_layers"),
        ("sliding_window", (1u64 << 62).into(), "sliding_window"),
        ("eos_token_id", (1u64 << 33).into(), "eos_token_id"),
    ];
    for (key, value, want) in edits {
        let dir = copy_of("edge_e2b_like/bf16");
        let mut j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.0.join("config.json")).unwrap()).unwrap();
        if key == "num_hidden_layers" {
            j.as_object_mut().unwrap().remove("layer_types");
        }
        j[key] = value;
        std::fs::write(dir.0.join("config.json"), j.to_string()).unwrap();
        one_line_error(&garnet(&["info", "--model", dir.0.to_str().unwrap()]), want, key);
    }
}
