#!/usr/bin/env bash
# Installs the two pieces of the CUDA toolkit `garnet ptx` uses, from PyPI, once, and prints the
# directory (pass it as `garnet ptx --cuda DIR`, or set GARNET_CUDA_DIR):
#   NVRTC 12.4 (nvidia-cuda-nvrtc-cu12): compiles kernels/cuda/*.cu to the committed PTX. The PTX
#     ISA it writes (8.4) is what the driver must understand: R550 drivers or later.
#   ptxas 12.9 (nvidia-cuda-nvcc-cu12): assembles that PTX for sm_80 ... sm_120 to check it.
# Both versions are pinned: the committed PTX is what this NVRTC writes, byte for byte.
# The cache directory is $GARNET_CACHE (default ~/.cache/garnet). No GPU or driver is needed.
set -euo pipefail
cache="${GARNET_CACHE:-$HOME/.cache/garnet}"
dir="$cache/cuda-nvrtc12.4-ptxas12.9"
nvrtc="$dir/nvidia/cuda_nvrtc/lib/libnvrtc.so.12"
ptxas="$dir/nvidia/cuda_nvcc/bin/ptxas"
if [ ! -f "$nvrtc" ] || [ ! -x "$ptxas" ]; then
    echo "fetching NVRTC 12.4 and ptxas 12.9 from PyPI (about 130 MB, once)..." >&2
    python3 -m pip install --quiet --no-deps --target "$dir" \
        nvidia-cuda-nvrtc-cu12==12.4.127 nvidia-cuda-nvcc-cu12==12.9.86 >&2
fi
echo "$dir"
