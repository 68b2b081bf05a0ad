#!/usr/bin/env python3
"""Writes the quantizer reference vectors q_Q6_K.bin and q_Q5_0.bin with ggml's own C quantizers.

Each file is `nb` blocks of inputs as little-endian f32, followed by the `nb` blocks that ggml's
reference quantizer (`quantize_row_q6_K_ref`, `quantize_row_q5_0_ref` in ggml-quants.c) writes for
them. garnet's code plays no part: the inputs come from Python's seeded `random`, the bytes from
ggml through ctypes (no numpy needed). kernels/tests/quant.rs checks `quant::quantize` against them.

Inputs: gaussian blocks of a few scales, then hard blocks: all zeros, one huge value among small
ones, a negative maximum, equal-magnitude maxima of both signs (the first one wins), a constant
block, values so small that the f16 scale underflows, and (Q6_K) sub-blocks that are zero next to
non-zero ones.

Run (2026-12-07) as:
    python3 kernels/tests/data/quant/make_vectors.py \\
        /tmp/llama/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin/libggml-base.so
with llama.cpp as vendored by llama-cpp-python 0.3.36 (libggml-base 0.25.3, built without FMA
contraction: ggml-base is compiled for baseline x86-64).
"""

import ctypes
import os
import random
import struct
import sys
from array import array

HERE = os.path.dirname(os.path.abspath(__file__))

# name: (ggml function, elements per block, bytes per block)
FORMATS = {
    "Q6_K": ("quantize_row_q6_K_ref", 256, 210),
    "Q5_0": ("quantize_row_q5_0_ref", 32, 22),
}


def f32(v):
    """`v` rounded to f32, as the bytes will hold it."""
    return struct.unpack("<f", struct.pack("<f", v))[0]


def gaussian(rng, n, sigma):
    return [rng.gauss(0.0, sigma) for _ in range(n)]


def hard_blocks(rng, n):
    """Blocks of `n` values that exercise the quantizers' edge cases."""
    blocks = [[0.0] * n]
    huge = gaussian(rng, n, 0.02)
    huge[n // 3] = 1.0e4
    blocks.append(huge)
    neg = gaussian(rng, n, 0.5)
    neg[7] = -3.0
    blocks.append(neg)
    tie = gaussian(rng, n, 0.1)
    tie[5], tie[n - 2] = 1.5, -1.5
    blocks.append(tie)
    tie2 = list(tie)
    tie2[5], tie2[n - 2] = -1.5, 1.5
    blocks.append(tie2)
    blocks.append([0.75] * n)
    blocks.append([-0.75] * n)
    blocks.append(gaussian(rng, n, 1.0e-6))
    if n == 256:
        zero_subs = gaussian(rng, n, 1.0)
        for s in (0, 3, 4, 15):
            zero_subs[16 * s : 16 * (s + 1)] = [0.0] * 16
        blocks.append(zero_subs)
        mixed = gaussian(rng, n, 0.01)
        mixed[16 * 9 : 16 * 10] = gaussian(rng, 16, 10.0)
        blocks.append(mixed)
    return blocks


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_vectors.py PATH/TO/libggml-base.so")
    lib = ctypes.CDLL(sys.argv[1])
    for name, (func, elems, size) in FORMATS.items():
        rng = random.Random(f"garnet {name}")
        blocks = [gaussian(rng, elems, s) for s in (0.02, 0.02, 0.02, 0.02, 1.0, 1.0, 37.0, 0.001)]
        blocks += hard_blocks(rng, elems)
        values = array("f", [f32(v) for b in blocks for v in b])
        nb = len(blocks)
        out = ctypes.create_string_buffer(nb * size)
        quantize = getattr(lib, func)
        quantize.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        quantize.restype = None
        src = (ctypes.c_float * len(values)).from_buffer(values)
        quantize(src, out, len(values))
        assert sys.byteorder == "little"
        path = os.path.join(HERE, f"q_{name}.bin")
        with open(path, "wb") as f:
            f.write(values.tobytes())
            f.write(out.raw)
        print(f"{path}: {nb} blocks")


if __name__ == "__main__":
    main()
