//! Replays the fuzz targets' committed inputs (`fuzz/corpus/<target>`: a minimized corpus, and
//! `fuzz/regressions/<target>`: every input that ever crashed a target) through the targets' own
//! code, so CI checks them without libFuzzer or nightly. See fuzz/README.md.

#[path = "../../fuzz/harness.rs"]
mod harness;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for kind in ["corpus", "regressions"] {
        let Ok(dir) = std::fs::read_dir(root.join(kind).join(target)) else { continue };
        let mut files: Vec<_> = dir.map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            let bytes = std::fs::read(&f).unwrap();
            // A panic names the input: `cargo fuzz run <target> <file>` reproduces it.
            eprintln!("{}", f.display());
            run(&bytes);
            n += 1;
        }
    }
    n
}

#[test]
fn gguf_inputs() {
    assert!(replay("gguf", harness::gguf) > 0);
}

#[test]
fn safetensors_inputs() {
    assert!(replay("safetensors", harness::safetensors) > 0);
}

#[test]
fn config_inputs() {
    assert!(replay("config", harness::config) > 0);
}

#[test]
fn tokenizer_inputs() {
    assert!(replay("tokenizer", harness::tokenizer) > 0);
}

#[test]
fn chat_request_inputs() {
    assert!(replay("chat_request", harness::chat_request) > 0);
}
