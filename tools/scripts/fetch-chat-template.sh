#!/usr/bin/env bash
# Fetches Google's Gemma 4 chat template (google-gemma-4-31B-it.jinja, as vendored by llama.cpp)
# from the llama-cpp-python sdist on PyPI once, verifies it and prints its path.
#   Usage: tools/scripts/fetch-chat-template.sh
#   Cache: $GARNET_CACHE (default ~/.cache/garnet)
#   e.g.   GARNET_GEMMA4_CHAT_TEMPLATE=$(tools/scripts/fetch-chat-template.sh) cargo test -p garnet --test chat_template
# Needs python3 with pip (it only talks to PyPI). Prints nothing but the path on stdout.
set -euo pipefail

version=0.3.36
member="vendor/llama.cpp/models/templates/google-gemma-4-31B-it.jinja"
# sha256 of that file in llama-cpp-python 0.3.36's sdist.
sha=SHA_PLACEHOLDER
cache="${GARNET_CACHE:-$HOME/.cache/garnet}"
dest="$cache/chat-templates"
out="$dest/google-gemma-4-31B-it.jinja"

if [ -f "$out" ] && [ "$(sha256sum "$out" | cut -d' ' -f1)" = "$sha" ]; then
    echo "$out"
    exit 0
fi

mkdir -p "$dest"
tmp="$(mktemp -d "$dest/tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "fetching the Gemma 4 chat template from llama-cpp-python $version's sdist (about 60 MB, once)..." >&2
python3 -m pip download --quiet --no-deps --no-binary :all: --no-build-isolation \
    --dest "$tmp" "llama-cpp-python==$version" >&2
python3 - "$tmp" "$member" > "$tmp/template.jinja" <<'PY'
import glob, sys, tarfile
tmp, member = sys.argv[1], sys.argv[2]
(sdist,) = glob.glob(f"{tmp}/llama_cpp_python-*.tar.gz")
with tarfile.open(sdist) as t:
    (name,) = [n for n in t.getnames() if n.endswith("/" + member)]
    sys.stdout.buffer.write(t.extractfile(name).read())
PY
got="$(sha256sum "$tmp/template.jinja" | cut -d' ' -f1)"
if [ "$got" != "$sha" ]; then
    echo "fetch-chat-template.sh: sha256 $got, expected $sha" >&2
    exit 1
fi
mv "$tmp/template.jinja" "$out"
echo "$out"
