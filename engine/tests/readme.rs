//! The README's library example is `engine/examples/generate.rs`, word for word, and it runs as
//! written on the shipped tiny checkpoint and (when `GARNET_GEMMA3_GGUF` names it) on Gemma 3.

#[allow(dead_code)]
#[path = "../examples/generate.rs"]
mod example;

use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn the_readme_block_is_the_example_file() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = &readme[readme.find("## As a library").expect("an 'As a library' section")..];
    let start = section.find("```rust\n").expect("a rust block") + "```rust\n".len();
    let block = &section[start..];
    let block = &block[..block.find("```\n").expect("the block's end")];
    let file = std::fs::read_to_string(root().join("engine/examples/generate.rs")).unwrap();
    assert_eq!(block, file, "README.md's library example differs from engine/examples/generate.rs");
}

#[test]
fn the_example_runs_on_the_tiny_checkpoint() {
    let model = root().join("testdata/gemma4-tiny/edge_e2b_like/bf16");
    let mut out = Vec::new();
    example::run(model.to_str().unwrap(), "The capital of France is", &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with('\n') && text.len() > 1, "{text:?}");
}

#[test]
fn the_example_runs_on_gemma3() {
    let Ok(path) = std::env::var("GARNET_GEMMA3_GGUF") else {
        println!("skipped: GARNET_GEMMA3_GGUF not set");
        return;
    };
    let mut out = Vec::new();
    example::run(&path, "The capital of France is", &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("France"), "{text:?}");
}
