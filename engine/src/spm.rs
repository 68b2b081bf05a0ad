//! SentencePiece tokenizer from a GGUF vocabulary (in progress).
