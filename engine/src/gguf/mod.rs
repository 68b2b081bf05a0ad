//! GGUF v3 files (in progress).
