//! Helpers shared by the engine's integration tests. Each test file uses a subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A path inside the tiny Gemma 4 fixtures (`testdata/gemma4-tiny`).
pub fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/gemma4-tiny").join(rel)
}

/// A unique temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory named after the test binary's `tag`.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("garnet-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    /// Writes `bytes` to `name` inside the directory; returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

/// A scratch copy of the fixture checkpoint `rel` (e.g. "edge_e2b_like/bf16"), to edit.
pub fn copy_of(rel: &str) -> TempDir {
    let dir = TempDir::new("copy");
    for f in std::fs::read_dir(testdata(rel)).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.0.join(f.file_name().unwrap())).unwrap();
    }
    dir
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
